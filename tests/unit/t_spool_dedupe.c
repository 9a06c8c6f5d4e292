/*
 * Unit tests for the X-Letter-Id index of libspool (spool_dedupe.c, issue
 * 18 item 3): put/get per account, bounds (key too long, bad QID), the
 * pruning phase (only entries older than dedupe_window go, a few per
 * call, resumed where it stopped; 0 keeps all), and an older database.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spool.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(64) << 20)
#define Q1  "0000000000001AAAAAAA"
#define Q2  "0000000000002AAAAAAA"
#define DAY 86400

static char tdir[64];

static void
t_put_get(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_dedupe",
	    MAP);
	struct spool_txn *t = t_wtxn(sp);
	char		  q[QID_SIZE], longer[300];
	int64_t		  when = 0;

	t_int_eq(spool_dedupe_get(t, "acme", "L1", &when, q), SPOOL_ENOTFOUND,
	    "empty");
	t_int_eq(spool_dedupe_put(t, "acme", "L1", Q1, 1000), 0, "put");
	t_ok(spool_dedupe_get(t, "acme", "L1", &when, q) == 0 && when == 1000 &&
		strcmp(q, Q1) == 0,
	    "get: time and QID");
	t_int_eq(spool_dedupe_get(t, "other", "L1", &when, q), SPOOL_ENOTFOUND,
	    "per account");
	t_int_eq(spool_dedupe_get(t, "acme", "L", &when, q), SPOOL_ENOTFOUND,
	    "no prefix match");
	t_int_eq(spool_dedupe_put(t, "acme", "L1", Q2, 2000), 0, "put again");
	t_ok(spool_dedupe_get(t, "acme", "L1", &when, q) == 0 && when == 2000 &&
		strcmp(q, Q2) == 0,
	    "replaced");
	t_int_eq(spool_dedupe_put(t, "acme", "L1", "not-a-qid", 1), EINVAL,
	    "bad QID");
	t_int_eq(spool_dedupe_put(t, "acme", "", Q1, 1), EINVAL, "empty id");
	memset(longer, 'x', 255);
	longer[255] = '\0';
	t_int_eq(spool_dedupe_put(t, longer, longer, Q1, 1), SPOOL_ETOOBIG,
	    "255-byte login and id: too long for a key");
	t_int_eq(spool_dedupe_get(t, longer, longer, &when, q), SPOOL_ETOOBIG,
	    "and the lookup says so");
	t_int_eq(spool_dedupe_put(t, "acme", longer, Q1, 1), 0,
	    "a 255-byte id fits");
	spool_abort(&t);
	spool_close(&sp);
}

static size_t
found_ids(struct spool *sp)
{
	struct spool_txn *t = t_wtxn(sp);
	char		  id[16], q[QID_SIZE];
	size_t		  i, n = 0;

	for (i = 0; i < 40; i++) {
		(void)snprintf(id, sizeof(id), "L%02zu", i);
		n += spool_dedupe_get(t, i % 2 ? "acme" : "beta", id, NULL,
			 q) == 0;
	}
	spool_abort(&t);
	return n;
}

/* 40 entries, the even ones two days old, the odd ones an hour old. */
static void
t_prune(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_dedupe",
	    MAP);
	struct spool_txn	*t = t_wtxn(sp);
	struct spool_retention	 rt = { .rt_dedupe = DAY };
	struct spool_prune_stats ps;
	int64_t			 now = 10 * DAY;
	char			 id[16], q[QID_SIZE];
	size_t			 i, rounds = 0;
	bool			 ok = true;

	for (i = 0; i < 40; i++) {
		(void)snprintf(id, sizeof(id), "L%02zu", i);
		ok &= spool_dedupe_put(t, i % 2 ? "acme" : "beta", id, Q1,
			  i % 2 ? now - 3600 : now - 2 * DAY) == 0;
	}
	t_ok(ok, "40 entries");
	t_int_eq(spool_commit(&t), 0, "commit");
	rt.rt_dedupe = 0;
	memset(&ps, 0, sizeof(ps));
	do
		t_int_eq(spool_prune(sp, now, &rt, 100, &ps), 0,
		    "prune, window 0");
	while (ps.ps_more && ++rounds < 50);
	t_ok(ps.ps_dedupe == 0 && found_ids(sp) == 40,
	    "dedupe_window 0 prunes nothing");
	rt.rt_dedupe = DAY;
	memset(&ps, 0, sizeof(ps));
	rounds = 0;
	do
		t_int_eq(spool_prune(sp, now, &rt, 3, &ps), 0,
		    "prune, three at a time");
	while (ps.ps_more && ++rounds < 200);
	t_int_eq((long long)ps.ps_dedupe, 20,
	    "the 20 older than the window removed");
	t_ok(ps.ps_txns > 7, "in several transactions (%zu)", ps.ps_txns);
	t_int_eq((long long)found_ids(sp), 20, "the 20 younger kept");
	t = t_wtxn(sp);
	t_ok(spool_dedupe_get(t, "beta", "L00", NULL, q) == SPOOL_ENOTFOUND &&
		spool_dedupe_get(t, "acme", "L01", NULL, q) == 0,
	    "which ones");
	spool_abort(&t);
	memset(&ps, 0, sizeof(ps));
	rounds = 0;
	do
		t_int_eq(spool_prune(sp, now + 2 * DAY, &rt, 100, &ps), 0,
		    "later");
	while (ps.ps_more && ++rounds < 50);
	t_ok(ps.ps_dedupe == 20 && found_ids(sp) == 0, "then the rest");
	spool_close(&sp);
}

/* An environment from before issue 18: "dedupe" dropped (LMDB). */
static void
t_older_database(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_dedupe",
	    MAP);
	struct spool_txn	*t;
	char			 q[QID_SIZE];
	static const char *const dbs[] = { "dedupe", NULL };

	t_spool_old(&sp, tdir, MAP, dbs, NULL);
	t = t_wtxn(sp);
	t_ok(spool_dedupe_get(t, "acme", "L1", NULL, q) == SPOOL_ENOTFOUND &&
		spool_dedupe_put(t, "acme", "L1", Q1, 1) == 0,
	    "with an empty index");
	t_int_eq(spool_commit(&t), 0, "commit");
	t_spool_reader_opens(&sp, tdir, MAP);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "put_get", t_put_get },
		{ "prune", t_prune },
		{ "older_database", t_older_database },
	};

	return T_RUN_RMTREE(cases, tdir);
}
