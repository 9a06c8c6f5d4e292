/*
 * Unit tests for the delivery log's indexes (spool_index.c) and the
 * retention (spool_prune.c): index entries written with each event and
 * issue, the readers by type, issue, account and date, the build of an
 * older database (one made here with LMDB directly: the new databases
 * dropped), and pruning: what goes, what stays (young events, events of
 * queued messages, issues they count in), its budget per transaction.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "spool_index.h"
#include "spool_rec.h" /* raw counts of the index databases */
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(256) << 20)
#define T0  INT64_C(1798761600) /* 2027-01-01T00:00:00Z */
#define DAY 86400

static char tdir[64];

static struct spool *
db_fresh(void)
{
	return t_spool_fresh(tdir, sizeof(tdir), "t_spool_index", MAP);
}

static uint64_t
issue(struct spool_txn *t, const char *login, int64_t dt)
{
	struct spool_issue is;
	char		   date[11];

	spool_date(dt, date);
	if (spool_issue_find_or_create(t, login, date, NULL, &is) != 0)
		abort();
	return is.su_id;
}

static uint64_t
event(struct spool_txn *t, enum spool_ev_type type, const char *login,
    int64_t dt, unsigned n)
{
	struct spool_event ev;
	char		   q[QID_SIZE], to[64];
	uint64_t	   seq;

	t_mkqid(q, dt, n);
	(void)snprintf(to, sizeof(to), "r%u@dest.example", n);
	memset(&ev, 0, sizeof(ev));
	ev.ev_type = type;
	ev.ev_class = type == SPOOL_EV_BOUNCED ? SPOOL_CL_REMOTE
					       : SPOOL_CL_NONE;
	ev.ev_dt = dt;
	ev.ev_login = login;
	ev.ev_qid = q;
	ev.ev_issue = issue(t, login, dt);
	ev.ev_to = to;
	ev.ev_msg = type == SPOOL_EV_BOUNCED ? "550 5.1.1 unknown" : "250 ok";
	if (spool_event_add(t, &ev, &seq) != 0)
		abort();
	return seq;
}

static const char *
by_type(struct spool_txn *t, enum spool_ev_type type, bool reverse, size_t max)
{
	static struct t_seqs l;

	memset(&l, 0, sizeof(l));
	l.max = max;
	(void)spool_log_iter_type(t, type, reverse, t_seqs_cb, &l);
	return l.s;
}

static const char *
by_issue(struct spool_txn *t, uint64_t id, bool reverse)
{
	static struct t_seqs l;

	memset(&l, 0, sizeof(l));
	(void)spool_log_iter_issue(t, id, reverse, t_seqs_cb, &l);
	return l.s;
}

/* Five events: delivered, bounced, deferred, bounced (account B), bounced. */
static void
five_events(struct spool *sp)
{
	struct spool_txn *t = t_txn(sp, true);

	event(t, SPOOL_EV_DELIVERED, "A", T0, 1);
	event(t, SPOOL_EV_BOUNCED, "A", T0 + 10, 2);
	event(t, SPOOL_EV_DEFERRED, "A", T0 + 20, 3);
	event(t, SPOOL_EV_BOUNCED, "B", T0 + DAY, 4);
	event(t, SPOOL_EV_BOUNCED, "A", T0 + DAY, 5);
	t_commit(&t);
}

static void
t_maintained(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t;

	five_events(sp);
	t = t_txn(sp, false);
	t_ok(spool_log_indexed(t), "a new database is indexed from the start");
	t_str_eq(by_type(t, SPOOL_EV_BOUNCED, true, 0), "5,4,2,",
	    "bounced, newest first");
	t_str_eq(by_type(t, SPOOL_EV_BOUNCED, false, 0), "2,4,5,",
	    "bounced, oldest first");
	t_str_eq(by_type(t, SPOOL_EV_BOUNCED, true, 2), "5,4,",
	    "the callback stops it");
	t_str_eq(by_type(t, SPOOL_EV_DELIVERED, true, 0), "1,", "delivered");
	t_str_eq(by_type(t, SPOOL_EV_DEFERRED, false, 0), "3,", "deferred");
	/* issues: A day 1 = 1, B day 2 = 2, A day 2 = 3 */
	t_str_eq(by_issue(t, 1, false), "1,2,3,", "issue 1's events");
	t_str_eq(by_issue(t, 2, true), "4,", "issue 2's events");
	t_str_eq(by_issue(t, 3, true), "5,", "issue 3's events");
	t_str_eq(by_issue(t, 9, true), "", "no such issue: nothing");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_STATUS), 5,
	    "one status key per event");
	t_int_eq((long long)t_count(t, SPOOL_DB_ISSUE_DATE), 3,
	    "one date key per issue");
	spool_abort(&t);
	spool_close(&sp);
}

struct ids {
	char s[256];
};

static int
ids_cb(const struct spool_issue *is, void *arg)
{
	struct ids *l = arg;
	size_t	    o = strlen(l->s);

	(void)snprintf(l->s + o, sizeof(l->s) - o, "%llu,",
	    (unsigned long long)is->su_id);
	return 0;
}

static const char *
issues_sel(struct spool_txn *t, const char *login, const char *date)
{
	static struct ids l;

	memset(&l, 0, sizeof(l));
	(void)spool_issue_iter_sel(t, login, date, ids_cb, &l);
	return l.s;
}

static void
t_issues_sel(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t;

	five_events(sp);
	t = t_txn(sp, true);
	issue(t, "B", T0); /* 4: B on day 1, created after the others */
	t_commit(&t);
	t = t_txn(sp, false);
	t_str_eq(issues_sel(t, NULL, NULL), "1,2,3,4,", "all");
	t_str_eq(issues_sel(t, NULL, "2027-01-01"), "1,4,", "by date");
	t_str_eq(issues_sel(t, NULL, "2027-01-02"), "2,3,", "the other date");
	t_str_eq(issues_sel(t, NULL, "2027-01-03"), "",
	    "a date without issues");
	t_str_eq(issues_sel(t, "A", NULL), "1,3,", "by account, id order");
	t_str_eq(issues_sel(t, "B", "2027-01-01"), "4,", "account and date");
	t_str_eq(issues_sel(t, "AB", NULL), "", "no prefix confusion");
	spool_abort(&t);
	spool_close(&sp);
}

/* Makes the database look like one written before the indexes: the new
 * databases dropped, the build markers gone (LMDB directly). */
static const char *const old_dbs[] = { "dlog_status", "dlog_issue",
	"issue_date", NULL };
static const char *const old_marks[] = { "records_idx", "records_idx_next",
	NULL };

static void
t_migrate(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t;
	unsigned	  i;

	/* more than one build chunk of events */
	t = t_txn(sp, true);
	for (i = 0; i < SPOOL_INDEX_CHUNK + 5; i++)
		event(t, i % 4 == 0 ? SPOOL_EV_BOUNCED : SPOOL_EV_DELIVERED,
		    "A", T0 + i, i + 1);
	t_commit(&t);
	t_spool_old(&sp, tdir, MAP, old_dbs, old_marks);
	t = t_txn(sp, false);
	t_ok(spool_log_indexed(t), "indexed after the build");
	t_str_eq(by_type(t, SPOOL_EV_BOUNCED, true, 3), "20005,20001,19997,",
	    "bounced, newest first, across the chunks");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_STATUS),
	    SPOOL_INDEX_CHUNK + 5, "every old event indexed once");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_ISSUE),
	    SPOOL_INDEX_CHUNK + 5, "and by issue");
	t_str_eq(issues_sel(t, NULL, "2027-01-01"), "1,", "old issues by date");
	spool_abort(&t);
	t_spool_remigrate(&sp, tdir, MAP, SPOOL_DB_DLOG_STATUS,
	    SPOOL_INDEX_CHUNK + 5);
}

/* ---- retention */

static void
queued(struct spool_txn *t, int64_t dt, unsigned n, uint32_t pending)
{
	struct spool_msg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		abort();
	t_mkqid(m->sm_qid, dt, n);
	(void)str_copy(m->sm_login, sizeof(m->sm_login), "A");
	m->sm_arrival = dt;
	m->sm_nrcpt = m->sm_npending = pending;
	if (spool_msg_put(t, m) != 0)
		abort();
	free(m);
}

static bool
has_issue(struct spool_txn *t, uint64_t id)
{
	struct spool_issue is;

	return spool_issue_get(t, id, &is) == 0;
}

static struct spool_prune_stats
prune_all(struct spool *sp, int64_t now, size_t budget)
{
	struct spool_retention	 rt = { .rt_dlog = 10 * DAY,
		  .rt_issues = 20 * DAY,
		  .rt_permfail = 30 * DAY };
	struct spool_prune_stats ps;
	size_t			 guard = 0;

	memset(&ps, 0, sizeof(ps));
	do {
		if (spool_prune(sp, now, &rt, budget, &ps) != 0 ||
		    ++guard > 1000)
			abort();
	} while (ps.ps_more);
	return ps;
}

/*
 * Days 0..39, one event per day (0: bounced, else delivered), message n
 * on day n; the message of day 5 is still queued. Permanent failures at
 * days 0 and 35. Pruned at day 40: log 10 days, issues 20, permfail 30.
 */
static void
t_prune(void)
{
	struct spool		*sp = db_fresh();
	struct spool_txn	*t = t_txn(sp, true);
	struct spool_prune_stats ps;
	char			 q[QID_SIZE];
	unsigned		 d;

	for (d = 0; d < 40; d++)
		event(t, d % 3 == 0 ? SPOOL_EV_BOUNCED : SPOOL_EV_DELIVERED,
		    "A", T0 + d * DAY, d);
	queued(t, T0 + 5 * DAY, 5, 1);
	queued(t, T0 + 7 * DAY, 7, 0); /* a leftover record: nothing pending */
	(void)spool_permfail_put(t, "A", "old@dest.example", T0, "550 x");
	(void)spool_permfail_put(t, "A", "new@dest.example", T0 + 35 * DAY,
	    "550 x");
	t_commit(&t);
	ps = prune_all(sp, T0 + 40 * DAY, 3);
	t_int_eq((long long)ps.ps_dlog, 29,
	    "events older than 10 days, but day 5's");
	t_int_eq((long long)ps.ps_kept, 1, "the queued message's event kept");
	t_int_eq((long long)ps.ps_unexported, 29, "none had been exported");
	t_int_eq((long long)ps.ps_permfail, 1, "one old permanent failure");
	/* issues older than 20 days, but not from the day before day 5 on */
	t_int_eq((long long)ps.ps_issues, 4, "issues of days 0..3");
	t_ok(ps.ps_txns >= (29 + 1 + 4) / 3,
	    "at most 3 deletions per transaction (%zu)", ps.ps_txns);
	t = t_txn(sp, false);
	t_str_eq(by_type(t, SPOOL_EV_BOUNCED, false, 0), "31,34,37,40,",
	    "bounced: the last 10 days");
	t_str_eq(by_type(t, SPOOL_EV_DELIVERED, false, 2), "6,32,",
	    "delivered: day 5 (queued), then the last 10 days");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG), 11, "11 events left");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_STATUS), 11,
	    "status keys with them");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_ISSUE), 11,
	    "issue keys with them");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_QID), 11,
	    "dlog_qid with them");
	t_str_eq(by_issue(t, 2, false), "", "a pruned issue's events are gone");
	t_ok(!has_issue(t, 1) && !has_issue(t, 4),
	    "issues of days 0 and 3 gone");
	t_ok(has_issue(t, 5) && has_issue(t, 6) && has_issue(t, 40),
	    "issues from the day before the oldest queued message kept");
	t_str_eq(issues_sel(t, "A", "2027-01-01"), "",
	    "no index entry left (account)");
	t_str_eq(issues_sel(t, NULL, "2027-01-01"), "",
	    "no index entry left (date)");
	t_ok(!spool_permfail_has(t, "A", "old@dest.example"),
	    "old permfail gone");
	t_ok(spool_permfail_has(t, "A", "new@dest.example"),
	    "young permfail kept");
	spool_abort(&t);
	ps = prune_all(sp, T0 + 40 * DAY, 1000);
	t_ok(ps.ps_dlog == 0 && ps.ps_issues == 0 && ps.ps_permfail == 0 &&
		ps.ps_kept == 1,
	    "a second pass finds nothing more");
	t = t_txn(sp, true);
	t_mkqid(q, T0 + 5 * DAY, 5);
	(void)spool_msg_del(t, q);
	t_commit(&t);
	ps = prune_all(sp, T0 + 40 * DAY, 1000);
	t_int_eq((long long)ps.ps_dlog, 1,
	    "once delivered, its old event goes too");
	t_ok(ps.ps_issues > 0, "and the issues it held");
	spool_close(&sp);
}

static void
t_prune_budget(void)
{
	struct spool		*sp = db_fresh();
	struct spool_txn	*t = t_txn(sp, true);
	struct spool_retention	 rt = { .rt_dlog = DAY };
	struct spool_prune_stats ps;
	unsigned		 i;

	for (i = 0; i < 50; i++)
		event(t, SPOOL_EV_DELIVERED, "A", T0, i);
	t_commit(&t);
	memset(&ps, 0, sizeof(ps));
	t_int_eq(spool_prune(sp, T0 + 2 * DAY, &rt, 20, &ps), 0, "one call");
	t_ok(ps.ps_dlog == 20 && ps.ps_more && ps.ps_txns == 1,
	    "one transaction removes at most the budget, and says there is "
	    "more");
	t_int_eq(spool_prune(sp, T0 + 2 * DAY, &rt, 0, &ps), EINVAL,
	    "budget 0 refused");
	spool_close(&sp);
}

static const struct t_case cases[] = {
	{ "maintained", t_maintained },
	{ "issues_sel", t_issues_sel },
	{ "migrate", t_migrate },
	{ "prune", t_prune },
	{ "prune_budget", t_prune_budget },
};

int
main(void)
{
	return T_RUN_RMTREE(cases, tdir);
}
