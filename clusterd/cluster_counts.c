/*
 * Per-issue counters (issue 19 item 4): every 10 s clusterd upserts this
 * node's row of smtpgate.issue_counts for the issues that may have
 * changed: the issues of today and yesterday (UTC; filing counts messages
 * and recipients there), and the issues named by the events shipped
 * since the last publish (deliveries, bounces, opens, clicks days later).
 * At the first publish after start, and when more than CD_TOUCHED_MAX
 * issues were touched, every issue of the last CD_COUNTS_DAYS days is
 * published. At most CD_COUNTS_MAX issues per publish; a row is rewritten
 * only when its counters changed. The columns are the cluster-wide sums'
 * inputs; `counters` is the issue as `spoolctl issues --json` prints it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clusterd.h"
#include "json.h"
#include "log.h"
#include "spool.h"
#include "xmem.h"

#define CD_COUNTS_ROWS 500 /* issues per INSERT */

static const char cd_counts_sql[] =
    "INSERT INTO smtpgate.issue_counts (account, issue, node, day, name, "
    "msgs, rcpts, delivered, deferred, bounced, opens, clicks, "
    "unsubscribed, complained, duplicates, counters, updated) "
    "SELECT r->>'account', (r->>'id')::bigint, $1, (r->>'date')::date, "
    "r->>'name', (r->>'messages')::bigint, (r->>'recipients')::bigint, "
    "(r->>'delivered')::bigint, (r->>'deferred')::bigint, "
    "(r->'bounced'->>'policy')::bigint + (r->'bounced'->>'remote')::bigint "
    "+ (r->'bounced'->>'expired')::bigint + "
    "(r->'bounced'->>'admin')::bigint, (r->'opens'->>'total')::bigint, "
    "(r->'clicks'->>'total')::bigint, (r->>'unsubscribed')::bigint, "
    "(r->>'complained')::bigint, (r->>'duplicates')::bigint, r, now() "
    "FROM jsonb_array_elements($2::jsonb) r "
    "ON CONFLICT (account, issue, node) DO UPDATE SET day = EXCLUDED.day, "
    "name = EXCLUDED.name, msgs = EXCLUDED.msgs, rcpts = EXCLUDED.rcpts, "
    "delivered = EXCLUDED.delivered, deferred = EXCLUDED.deferred, "
    "bounced = EXCLUDED.bounced, opens = EXCLUDED.opens, "
    "clicks = EXCLUDED.clicks, unsubscribed = EXCLUDED.unsubscribed, "
    "complained = EXCLUDED.complained, duplicates = EXCLUDED.duplicates, "
    "counters = EXCLUDED.counters, updated = now() "
    "WHERE smtpgate.issue_counts.counters IS DISTINCT FROM "
    "EXCLUDED.counters";

void
cd_touch_issue(struct cd *cd, uint64_t id)
{
	size_t i;

	if (id == 0 || cd->counts_full)
		return;
	for (i = 0; i < cd->ntouched; i++)
		if (cd->touched[i] == id)
			return;
	if (cd->ntouched == CD_TOUCHED_MAX) {
		cd->counts_full = true;
		cd->ntouched = 0;
		return;
	}
	cd->touched[cd->ntouched++] = id;
}


/* The issues of one publish, as JSON arrays of CD_COUNTS_ROWS (read in
 * one LMDB transaction, sent to PostgreSQL after it ended). */
#define CD_COUNTS_CHUNKS (CD_COUNTS_MAX / CD_COUNTS_ROWS)
struct cd_counts {
	struct json_gen *g;
	size_t		 rows, total;
	uint64_t	 seen[CD_COUNTS_ROWS]; /* ids in this chunk: an
						* INSERT may not name one
						* twice */
	char		*chunk[CD_COUNTS_CHUNKS];
	size_t		 nchunk;
};

static void
cd_counts_cut(struct cd_counts *c)
{
	size_t len;

	if (c->rows == 0)
		return;
	json_arr_end(c->g);
	c->chunk[c->nchunk++] = xstrdup(json_gen_result(c->g, &len));
	json_gen_clear(c->g);
	c->rows = 0;
}

static int
cd_counts_cb(const struct spool_issue *si, void *arg)
{
	struct cd_counts *c = arg;
	size_t		  i;

	for (i = 0; i < c->rows; i++)
		if (c->seen[i] == si->su_id)
			return 0;
	if (c->total == CD_COUNTS_MAX)
		return 1;
	if (c->rows == 0)
		json_arr_begin(c->g);
	spool_issue_json(c->g, si);
	json_obj_end(c->g);
	c->seen[c->rows] = si->su_id;
	c->total++;
	if (++c->rows == CD_COUNTS_ROWS)
		cd_counts_cut(c);
	return 0;
}

/* Issues of the `days` UTC days up to today. */
static int
cd_counts_days(struct spool_txn *t, struct cd_counts *c, int days)
{
	time_t	  now = time(NULL);
	struct tm tm;
	char	  day[11];
	int	  i, rc = 0;

	for (i = 0; i < days && rc == 0; i++) {
		time_t d = now - (time_t)i * 86400;

		(void)gmtime_r(&d, &tm);
		(void)strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		rc = spool_issue_iter_sel(t, NULL, day, cd_counts_cb, c);
	}
	return rc == 1 ? 0 : rc;
}

static int
cd_counts_touched(struct cd *cd, struct spool_txn *t, struct cd_counts *c)
{
	struct spool_issue si;
	size_t		   i;
	int		   rc;

	for (i = 0; i < cd->ntouched; i++) {
		rc = spool_issue_get(t, cd->touched[i], &si);
		if (rc == SPOOL_ENOTFOUND)
			continue; /* pruned, or another node's id */
		if (rc != 0)
			return rc;
		if (cd_counts_cb(&si, c) == 1)
			break;
	}
	return 0;
}

/* The chunks, each one INSERT; 0 or -1. */
static int
cd_counts_send(struct cd *cd, struct cd_counts *c)
{
	const char *vals[2] = { cd->node, NULL };
	size_t	    i;

	for (i = 0; i < c->nchunk; i++) {
		vals[1] = c->chunk[i];
		if (cd_exec(cd, "issue counts", cd_counts_sql, 2, vals) == -1)
			return -1;
	}
	return 0;
}

int
cd_counts_publish(struct cd *cd)
{
	struct cd_counts *c;
	struct spool_txn *t;
	size_t		  i;
	int		  rc;

	if (cd->pg == NULL)
		return -1;
	c = xcalloc(1, sizeof(*c));
	if ((rc = spool_begin(cd->sp, false, &t)) != 0) {
		free(c);
		return -1;
	}
	c->g = json_gen_new(false);
	rc = cd_counts_days(t, c, cd->counts_full ? CD_COUNTS_DAYS : 2);
	if (rc == 0)
		rc = cd_counts_touched(cd, t, c);
	spool_abort(&t);
	cd_counts_cut(c);
	if (rc != 0)
		log_warnx("issue counts: %s", spool_strerror(rc));
	else if ((rc = cd_counts_send(cd, c)) == 0) {
		cd->ntouched = 0;
		cd->counts_full = false;
	}
	for (i = 0; i < c->nchunk; i++)
		free(c->chunk[i]);
	json_gen_free(&c->g);
	free(c);
	return rc != 0 ? -1 : 0;
}
