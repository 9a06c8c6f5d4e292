/*
 * spoolctl_cquery: `issues --cluster`, `bounces --cluster` and `query
 * --cluster` (issue 19) read PostgreSQL (cluster_dsn), where clusterd
 * ships every node's events and issue counters. The commands stay in
 * spoolctl_stats.c and spoolctl_query.c and get decoded rows; libpq is
 * reached through clusterd/cluster_policy.h's connection (STYLE L2: the
 * cluster sync's wrapper). Bounded: connect_timeout 5 (unless the DSN sets
 * its own), statement_timeout 10 s; a server that cannot be reached or
 * fails the statement is one line and exit 1. Every value travels as a
 * parameter (PQexecParams); rows are streamed (single-row mode), so memory
 * is one row (one issue) whatever the answer's size.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "buf.h"
#include "cluster_policy.h"
#include "conf.h"
#include "json.h"
#include "log.h"
#include "spoolctl.h"
#include "statq.h"
#include "statq_sql.h"

/* The first line of a libpq message (they end in "\n", some have more). */
static const char *
ctl_pg_line(const char *msg, char *dst, size_t dstsz)
{
	size_t n = strcspn(msg != NULL ? msg : "", "\n");

	if (msg == NULL || n == 0)
		return "unknown error";
	(void)str_ncopy(dst, dstsz, msg, n < dstsz ? n : dstsz - 1);
	return dst;
}

/* Connects (cpol_connect: connect_timeout 5 unless the DSN sets its own,
 * statement_timeout 10 s) or exits: 2 when cluster_dsn is not set (a
 * configuration matter), 1 when PostgreSQL cannot be reached. */
static PGconn *
ctl_pg_connect(const struct ctl *ctl, const char *cmd)
{
	PGconn *c;
	char	err[512];

	if (ctl->cf->cf_cluster_dsn == NULL || ctl->cf->cf_cluster_dsn[0] == 0)
		ctl_usage("%s --cluster: cluster_dsn is not set (a single "
			  "gateway: leave out --cluster)",
		    cmd);
	if ((c = cpol_connect(ctl->cf->cf_cluster_dsn, err, sizeof(err))) ==
	    NULL)
		ctl_die("%s --cluster: cannot reach PostgreSQL (cluster_dsn): "
			"%s",
		    cmd, err[0] != '\0' ? err : "unknown error");
	return c;
}

/*
 * Runs sql with its n parameters and hands each row to fn until fn
 * returns non-zero, then returns 1 (the connection closed: the rest is
 * abandoned), or 0 when the rows ran out. A failure (also the statement
 * timeout, or a cluster without clusterd's schema) exits 1.
 */
static int
ctl_pg_rows(PGconn *c, const char *cmd, const char *sql,
    const char *const *params, size_t n, int (*fn)(const PGresult *, void *),
    void *arg)
{
	PGresult *r;
	char	  line[512];
	size_t	  i;
	int	  stop = 0;

	/* -v: the statement and its parameters, to EXPLAIN it (bench/) */
	log_debug("%s --cluster: %s", cmd, sql);
	for (i = 0; i < n && log_is_verbose(); i++)
		log_debug("$%zu = %s", i + 1,
		    params[i] != NULL ? params[i] : "NULL");
	if (!PQsendQueryParams(c, sql, (int)n, NULL, params, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(c)) {
		(void)ctl_pg_line(PQerrorMessage(c), line, sizeof(line));
		PQfinish(c);
		ctl_die("%s --cluster: PostgreSQL: %s", cmd, line);
	}
	while (!stop && (r = PQgetResult(c)) != NULL) {
		switch (PQresultStatus(r)) {
		case PGRES_SINGLE_TUPLE:
			stop = fn(r, arg) || ctl_out_broken();
			break;
		case PGRES_TUPLES_OK:
			break;
		default:
			(void)ctl_pg_line(PQresultErrorMessage(r), line,
			    sizeof(line));
			PQclear(r);
			PQfinish(c);
			ctl_die("%s --cluster: PostgreSQL: %s", cmd, line);
		}
		PQclear(r);
	}
	if (stop)
		PQfinish(c);
	return stop;
}

/* Column i of a single-row result, NULL for SQL NULL. */
static const char *
ctl_pg_val(const PGresult *r, int i)
{
	return PQgetisnull(r, 0, i) ? NULL : PQgetvalue(r, 0, i);
}

static uint64_t
ctl_pg_u64(const PGresult *r, int i)
{
	const char *v = ctl_pg_val(r, i);

	return v != NULL ? strtoull(v, NULL, 10) : 0;
}

/* ---- query --cluster */

struct ctl_cquery {
	const struct statq *q;
	struct json_gen	   *jg;
	int64_t		    skip; /* windows: rows still to skip */
	int64_t		    got;  /* rows read, skipped ones included */
};

static int
ctl_cquery_row(const PGresult *r, void *arg)
{
	struct ctl_cquery *cq = arg;
	struct statq_row   row;

	cq->got++;
	if (cq->skip > 0) {
		cq->skip--;
		return 0;
	}
	memset(&row, 0, sizeof(row));
	row.qr_to = ctl_pg_val(r, STATQ_SQL_COL_TO);
	row.qr_dt = ctl_pg_val(r, STATQ_SQL_COL_DT);
	row.qr_msg = ctl_pg_val(r, STATQ_SQL_COL_MSG);
	row.qr_status = ctl_pg_val(r, STATQ_SQL_COL_STATUS);
	row.qr_issue_id = ctl_pg_u64(r, STATQ_SQL_COL_ISSUE_ID);
	row.qr_issue_name = ctl_pg_val(r, STATQ_SQL_COL_ISSUE_NAME);
	row.qr_uniq = ctl_pg_val(r, STATQ_SQL_COL_UNIQ);
	row.qr_category = ctl_pg_val(r, STATQ_SQL_COL_CATEGORY);
	row.qr_url = ctl_pg_val(r, STATQ_SQL_COL_URL);
	statq_select(cq->q, &row, cq->jg);
	return 0;
}

/* One statement of query --cluster; 1 if the output stopped. */
static int
ctl_cquery_run(PGconn *c, const struct statq *q, const char *account,
    const int64_t *win, struct ctl_cquery *cq)
{
	struct statq_sql s;
	char		 err[256];
	int		 stop;

	if ((win == NULL ? statq_sql_build(q, account, &s, err, sizeof(err))
			 : statq_sql_build_window(q, account, win[0], win[1],
			       win[2], &s, err, sizeof(err))) == -1) {
		PQfinish(c);
		ctl_usage("query: %s", err);
	}
	stop = ctl_pg_rows(c, "query", s.qs_text.data, s.qs_param, s.qs_nparam,
	    ctl_cquery_row, cq);
	statq_sql_free(&s);
	return stop;
}

/*
 * A newest-first request with a limit (the seed's) reads the last day,
 * then the week before, the month before, and the rest, until it has
 * skip + first rows: each statement plans only its windows' partitions.
 */
#define CTL_CQ_WINDOWS 4
static const int64_t ctl_cq_back[CTL_CQ_WINDOWS] = { 86400, 8 * 86400,
	36 * 86400, 0 };

void
ctl_cluster_query(struct ctl *ctl, const struct statq *q, const char *account,
    struct json_gen *jg)
{
	const int64_t	 *back = ctl_cq_back;
	struct ctl_cquery cq = { .q = q, .jg = jg, .skip = q->q_skip };
	int64_t		  win[3], need, hi = 0;
	PGconn		 *c = ctl_pg_connect(ctl, "query");
	size_t		  i;

	if (q->q_first < 0 || !statq_order_is_newest_first(q) ||
	    q->q_skip > INT64_MAX - q->q_first) {
		cq.skip = 0;
		if (ctl_cquery_run(c, q, account, NULL, &cq) == 0)
			PQfinish(c);
		return;
	}
	need = q->q_skip + q->q_first;
	for (i = 0; i < CTL_CQ_WINDOWS && cq.got < need; i++) {
		win[0] = back[i] != 0 ? ctl->now - back[i] : 0;
		win[1] = hi;
		win[2] = need - cq.got;
		if (ctl_cquery_run(c, q, account, win, &cq) != 0)
			return;
		hi = win[0];
	}
	PQfinish(c);
}

/* ---- bounces --cluster */

struct ctl_cbounces {
	int (*fn)(uint64_t, const char *, size_t, void *);
	void   *arg;
	int64_t got;
};

static int
ctl_cbounces_row(const PGresult *r, void *arg)
{
	struct ctl_cbounces *cb = arg;
	const char	    *body = ctl_pg_val(r, 0);

	cb->got++;
	return body != NULL ? cb->fn(0, body, strlen(body), cb->arg) : 0;
}

/* "2026-12-07 00:00:00+00", or NULL for 0 (that side open). */
static const char *
ctl_cq_time(int64_t t, char *dst, size_t dstsz)
{
	time_t	  tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(dst, dstsz, "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
		return NULL;
	return dst;
}

/* The newest `last`, read in the day windows of query --cluster. */
void
ctl_cluster_bounces(struct ctl *ctl, int64_t last, const char *cat,
    int (*fn)(uint64_t, const char *json, size_t, void *), void *arg)
{
	static const char sql[] =
	    "SELECT body::text FROM smtpgate.events"
	    " WHERE type = 'bounced' AND ($2::text IS NULL OR category = $2)"
	    " AND ($3::timestamptz IS NULL OR dt >= $3)"
	    " AND ($4::timestamptz IS NULL OR dt < $4)"
	    " ORDER BY dt DESC, node DESC, id DESC LIMIT $1::bigint";
	struct ctl_cbounces cb = { .fn = fn, .arg = arg };
	const char	   *params[4];
	char		    n[24], lo[32], hi[32];
	int64_t		    top = 0, bottom;
	PGconn		   *c = ctl_pg_connect(ctl, "bounces");
	size_t		    i;

	for (i = 0; i < CTL_CQ_WINDOWS && cb.got < last; i++) {
		bottom = ctl_cq_back[i] != 0 ? ctl->now - ctl_cq_back[i] : 0;
		(void)str_printf(n, sizeof(n), "%lld",
		    (long long)(last - cb.got));
		params[0] = n;
		params[1] = cat;
		params[2] = ctl_cq_time(bottom, lo, sizeof(lo));
		params[3] = ctl_cq_time(top, hi, sizeof(hi));
		if (ctl_pg_rows(c, "bounces", sql, params, 4, ctl_cbounces_row,
			&cb) != 0)
			return;
		top = bottom;
	}
	PQfinish(c);
}

/* ---- issues --cluster */

/*
 * issue_counts.counters: the issue as `spoolctl issues --json` prints it
 * (clusterd/cluster_counts.c) ("bounced": {"policy": N, ...} is
 * "bounced.policy" here; bounced_by_category.C are the categories).
 */
#define CTL_CI(name, member) \
	{ \
		name, offsetof(struct spool_issue, member) \
	}
static const struct {
	const char *name;
	size_t	    off;
} ctl_ci_names[] = {
	CTL_CI("messages", su_msgs),
	CTL_CI("recipients", su_rcpts),
	CTL_CI("delivered", su_delivered),
	CTL_CI("deferred", su_deferred),
	CTL_CI("bounced.policy", su_bounced_policy),
	CTL_CI("bounced.remote", su_bounced_remote),
	CTL_CI("bounced.expired", su_bounced_expired),
	CTL_CI("bounced.admin", su_bounced_admin),
	CTL_CI("opens.unique", su_opens_unique),
	CTL_CI("opens.total", su_opens),
	CTL_CI("clicks.unique", su_clicks_unique),
	CTL_CI("clicks.total", su_clicks),
	CTL_CI("unsubscribed", su_unsubscribed),
	CTL_CI("complained", su_complained),
	CTL_CI("duplicates", su_duplicates),
};

struct ctl_cissues {
	struct ctl	  *ctl;
	struct spool_txn  *txn; /* the local mirror: is the issue blocked */
	struct spool_issue si;	/* the issue being summed */
	int64_t		   nodes;
	int (*fn)(const struct spool_issue *, int64_t, void *);
	void *arg;
};

static void
ctl_ci_add(struct spool_issue *si, const char *name, int64_t v)
{
	size_t i;
	int    c;

	if (v <= 0)
		return;
	if (strncmp(name, "bounced_by_category.", 20) == 0) {
		if ((c = bounce_cat_parse(name + 20)) != BOUNCE_NONE &&
		    c < SPOOL_CAT_MAX)
			si->su_bounced_cat[c] += (uint64_t)v;
		return;
	}
	for (i = 0; i < sizeof(ctl_ci_names) / sizeof(ctl_ci_names[0]); i++)
		if (strcmp(name, ctl_ci_names[i].name) == 0) {
			*(uint64_t *)(void *)((char *)si +
			    ctl_ci_names[i].off) += (uint64_t)v;
			return;
		}
}

/* Adds one node's counters (JSON text) to si; unknown names are skipped
 * (a newer node's counters), bad JSON counts nothing. Blocked on one node
 * is blocked (issue blocks are policy, mirrored to every node). */
static void
ctl_ci_counters(struct spool_issue *si, const char *text)
{
	const struct json_val *top, *sub;
	struct json_val	      *root;
	char		       err[128], name[160];
	int64_t		       v;
	size_t		       i, j;
	bool		       blocked;

	if (text == NULL || (root = json_parse(text, err, sizeof(err))) == NULL)
		return;
	for (i = 0; json_type(root) == JSON_OBJECT && i < json_len(root); i++) {
		top = json_at(root, i);
		if (strcmp(json_key_at(root, i), "blocked") == 0) {
			if (json_boolean(top, &blocked) && blocked)
				si->su_blocked = true;
			continue;
		}
		if (json_integer(top, &v)) {
			ctl_ci_add(si, json_key_at(root, i), v);
			continue;
		}
		for (j = 0; json_type(top) == JSON_OBJECT && j < json_len(top);
		     j++) {
			sub = json_at(top, j);
			if (json_integer(sub, &v) &&
			    str_printf(name, sizeof(name), "%s.%s",
				json_key_at(root, i), json_key_at(top, j)) > 0)
				ctl_ci_add(si, name, v);
		}
	}
	json_val_free(&root);
}

static int
ctl_ci_flush(struct ctl_cissues *ci)
{
	int rc;

	if (ci->nodes == 0)
		return 0;
	rc = ci->fn(&ci->si, ci->nodes, ci->arg);
	memset(&ci->si, 0, sizeof(ci->si));
	ci->nodes = 0;
	return rc;
}

/* Columns: account, issue, day, name, counters (by account, issue). */
static int
ctl_ci_row(const PGresult *r, void *arg)
{
	struct ctl_cissues *ci = arg;
	const char	   *account = ctl_pg_val(r, 0), *day = ctl_pg_val(r, 2);
	const char	   *name = ctl_pg_val(r, 3);
	uint64_t	    id = ctl_pg_u64(r, 1);

	if (account == NULL || day == NULL)
		return 0;
	if (ci->nodes > 0 &&
	    (ci->si.su_id != id || strcmp(ci->si.su_login, account) != 0) &&
	    ctl_ci_flush(ci) != 0)
		return 1;
	if (ci->nodes++ == 0) {
		ci->si.su_id = id;
		(void)str_copy(ci->si.su_login, sizeof(ci->si.su_login),
		    account);
		(void)str_copy(ci->si.su_date, sizeof(ci->si.su_date), day);
		ci->si.su_has_name = name != NULL;
		(void)str_copy(ci->si.su_name, sizeof(ci->si.su_name),
		    name != NULL ? name : "");
	}
	ctl_ci_counters(&ci->si, ctl_pg_val(r, 4));
	return 0;
}

void
ctl_cluster_issues(struct ctl *ctl, const char *account, const char *date,
    int (*fn)(const struct spool_issue *, int64_t, void *), void *arg)
{
	static const char sql[] =
	    "SELECT account, issue, day::text, name, counters::text"
	    " FROM smtpgate.issue_counts"
	    " WHERE ($1::text IS NULL OR account = $1)"
	    " AND ($2::date IS NULL OR day = $2::date)"
	    " ORDER BY day, account, issue, node";
	struct ctl_cissues ci = { .fn = fn, .arg = arg };
	const char	  *params[2] = { account, date };

	PGconn *c = ctl_pg_connect(ctl, "issues");

	if (ctl_pg_rows(c, "issues", sql, params, 2, ctl_ci_row, &ci) == 0)
		PQfinish(c);
	(void)ctl_ci_flush(&ci);
}
