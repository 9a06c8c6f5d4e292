/*
 * Unit tests for one account's stored events (spool_evsel.c, issue 18):
 * the per-account index written with each event and removed by the
 * pruning, the chunked reader and its bounds, the seek from a time and
 * from an id, the build of an older database (dlog_acct dropped here with
 * LMDB directly), and the callback sender's last success/error record.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "spool_index.h"
#include "spool_rec.h" /* raw counts of the index */
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(256) << 20)
#define T0  INT64_C(1798761600) /* 2027-01-01T00:00:00Z */
#define DAY 86400

static char tdir[64];

static struct spool *
db_fresh(void)
{
	return t_spool_fresh(tdir, sizeof(tdir), "t_spool_evsel", MAP);
}

static void
event(struct spool_txn *t, const char *login, int64_t dt, unsigned n)
{
	struct spool_event ev;
	char		   to[64];

	(void)snprintf(to, sizeof(to), "r%u@dest.example", n);
	memset(&ev, 0, sizeof(ev));
	ev.ev_type = SPOOL_EV_DELIVERED;
	ev.ev_dt = dt;
	ev.ev_login = login;
	ev.ev_to = to;
	ev.ev_msg = "250 ok";
	if (spool_event_add(t, &ev, NULL) != 0)
		abort();
}

/* Every event of login in [from, to], read max at a time; the chunks
 * are separated by "|". */
static const char *
by_acct(struct spool_txn *t, const char *login, uint64_t from, uint64_t to,
    size_t max)
{
	static struct t_seqs l;
	uint64_t	     next;

	memset(&l, 0, sizeof(l));
	for (;;) {
		if (spool_log_iter_account(t, login, from, to, max, t_seqs_cb,
			&l, &next) != 0)
			return "error";
		if (next == 0)
			return l.s;
		(void)str_copy(l.s + strlen(l.s), sizeof(l.s) - strlen(l.s),
		    "|");
		from = next;
	}
}

/* A: 1, 2, 3, 5, 6 (T0, +10, +20, +DAY, +DAY); B: 4 (+DAY). */
static struct spool *
six_events(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_txn(sp, true);

	event(t, "A", T0, 1);
	event(t, "A", T0 + 10, 2);
	event(t, "A", T0 + 20, 3);
	event(t, "B", T0 + DAY, 4);
	event(t, "A", T0 + DAY, 5);
	event(t, "A", T0 + DAY, 6);
	t_commit(&t);
	return sp;
}

static void
t_read(void)
{
	struct spool	 *sp = six_events();
	struct spool_txn *t = t_txn(sp, false);
	uint64_t	  next;

	t_ok(spool_log_acct_indexed(t), "a new database is indexed");
	t_str_eq(by_acct(t, "A", 1, UINT64_MAX, 100), "1,2,3,5,6,",
	    "A's, oldest first");
	t_str_eq(by_acct(t, "B", 1, UINT64_MAX, 100), "4,", "B's only");
	t_str_eq(by_acct(t, "C", 1, UINT64_MAX, 100), "",
	    "none of an unknown account");
	t_str_eq(by_acct(t, "A", 2, 5, 100), "2,3,5,", "from and to included");
	t_str_eq(by_acct(t, "A", 1, UINT64_MAX, 2), "1,2,|3,5,|6,",
	    "chunks of two resume");
	t_int_eq(spool_log_iter_account(t, "A", 1, 9, 0, t_seqs_cb, NULL,
		     &next),
	    EINVAL, "max 0 refused");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_ACCT), 6,
	    "one index key per event");
	spool_abort(&t);
	spool_close(&sp);
}

static uint64_t
seq_at(struct spool_txn *t, int64_t dt)
{
	uint64_t seq = 0;

	if (spool_log_seq_at(t, dt, &seq) != 0)
		abort();
	return seq;
}

static void
t_seek(void)
{
	struct spool	 *sp = six_events();
	struct spool_txn *t = t_txn(sp, false);
	char		  inst[9], mine, id[64];
	uint64_t	  seq = 0;

	t_int_eq((long long)seq_at(t, T0 - 1), 1,
	    "before everything: the first");
	t_int_eq((long long)seq_at(t, T0), 1, "at the first's time");
	t_int_eq((long long)seq_at(t, T0 + 5), 2, "between: the next");
	t_int_eq((long long)seq_at(t, T0 + 20), 3, "exact");
	t_int_eq((long long)seq_at(t, T0 + 21), 4,
	    "the next day's first (B's)");
	t_int_eq((long long)seq_at(t, T0 + 2 * DAY), 7,
	    "after everything: one past");
	if (spool_db_instance(t, inst) != 0)
		abort();
	(void)snprintf(id, sizeof(id), "%s-5", inst);
	t_int_eq(spool_event_id_seq(t, id, &seq), 0, "an id of this spool");
	t_int_eq((long long)seq, 5, "its sequence number");
	mine = inst[0];
	inst[0] = mine == '0' ? '1' : '0';
	(void)snprintf(id, sizeof(id), "%s-5", inst);
	t_int_eq(spool_event_id_seq(t, id, &seq), SPOOL_ENOTFOUND,
	    "another spool's id");
	t_int_eq(spool_event_id_seq(t, "2027-01-01", &seq), EINVAL,
	    "not an id");
	inst[0] = mine; /* this spool's again */
	(void)snprintf(id, sizeof(id), "%s-5x", inst);
	t_int_eq(spool_event_id_seq(t, id, &seq), EINVAL, "trailing bytes");
	(void)snprintf(id, sizeof(id), "%s-0", inst);
	t_int_eq(spool_event_id_seq(t, id, &seq), EINVAL, "sequence 0");
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_prune(void)
{
	struct spool		*sp = six_events();
	struct spool_retention	 rt = { .rt_dlog = DAY / 2,
		  .rt_issues = 20 * DAY,
		  .rt_permfail = 30 * DAY };
	struct spool_prune_stats ps;
	struct spool_txn	*t;

	memset(&ps, 0, sizeof(ps));
	t_int_eq(spool_prune(sp, T0 + DAY, &rt, 100, &ps), 0, "prune");
	t_int_eq((long long)ps.ps_dlog, 3, "the first day's events go");
	t = t_txn(sp, false);
	t_str_eq(by_acct(t, "A", 1, UINT64_MAX, 100), "5,6,",
	    "and their index keys");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_ACCT), 3,
	    "none left behind");
	spool_abort(&t);
	spool_close(&sp);
}

/* dlog_acct dropped and its markers gone: a database before issue 18. */
static const char *const old_dbs[] = { "dlog_acct", NULL };
static const char *const old_marks[] = { "acct_idx", "acct_idx_next", NULL };

static void
t_migrate(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t;
	unsigned	  i;

	t = t_txn(sp, true);
	for (i = 0; i < SPOOL_INDEX_CHUNK + 5; i++)
		event(t, i % 2 == 0 ? "A" : "B", T0 + i, i + 1);
	t_commit(&t);
	t_spool_old(&sp, tdir, MAP, old_dbs, old_marks);
	t = t_txn(sp, false);
	t_ok(spool_log_acct_indexed(t), "indexed after the build");
	t_int_eq((long long)t_count(t, SPOOL_DB_DLOG_ACCT),
	    SPOOL_INDEX_CHUNK + 5,
	    "every old event indexed once, across the chunks");
	t_str_eq(by_acct(t, "B", SPOOL_INDEX_CHUNK, UINT64_MAX, 100),
	    "20000,20002,20004,", "B's last ones");
	spool_abort(&t);
	t_spool_remigrate(&sp, tdir, MAP, SPOOL_DB_DLOG_ACCT,
	    SPOOL_INDEX_CHUNK + 5);
}

static void
t_cb_state(void)
{
	struct spool	     *sp = db_fresh();
	struct spool_txn     *t = t_txn(sp, true);
	struct spool_cb_state s;
	char		      big[600];

	t_int_eq(spool_cb_state_get(t, "A", &s), 0, "nothing recorded: zeros");
	t_ok(s.cs_last_ok == 0 && s.cs_last_err == 0 && s.cs_err[0] == '\0',
	    "never");
	t_int_eq(spool_cb_state_note(t, "A", T0, "HTTP 500"), 0, "an error");
	t_int_eq(spool_cb_state_note(t, "A", T0 + 5, NULL), 0,
	    "then a success");
	t_commit(&t);
	t = t_txn(sp, false);
	t_int_eq(spool_cb_state_get(t, "A", &s), 0, "read back");
	t_ok(s.cs_last_err == T0 && s.cs_last_ok == T0 + 5, "both times kept");
	t_str_eq(s.cs_err, "HTTP 500", "the error text kept after the success");
	t_int_eq(spool_cb_state_get(t, "B", &s), 0, "another account: its own");
	t_ok(s.cs_last_ok == 0, "nothing for B");
	spool_abort(&t);
	t = t_txn(sp, true);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	t_int_eq(spool_cb_state_note(t, "A", T0 + 9, big), 0, "a long error");
	t_int_eq(spool_cb_state_get(t, "A", &s), 0, "read back");
	t_int_eq((long long)strlen(s.cs_err), (long long)sizeof(s.cs_err) - 1,
	    "truncated");
	spool_abort(&t);
	spool_close(&sp);
}

static const struct t_case cases[] = {
	{ "read", t_read },
	{ "seek", t_seek },
	{ "prune", t_prune },
	{ "migrate", t_migrate },
	{ "cb_state", t_cb_state },
};

int
main(void)
{
	return T_RUN_RMTREE(cases, tdir);
}
