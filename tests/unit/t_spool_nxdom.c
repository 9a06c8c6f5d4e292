/*
 * Unit tests for the NXDOMAIN sightings of libspool (spool_nxdom.c): a
 * run's start kept across sightings, case-folded keys, forget, a run
 * restarted after SPOOL_NXDOM_KEEP without a sighting, the bound, the
 * pruning phase (only entries last seen before the keep go, a few per
 * call), and an older database.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "spool_rec.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(256) << 20)
#define DAY 86400

static char tdir[64];

static void
t_seen_forget(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_nxdom",
	    MAP);
	struct spool_txn *t = t_wtxn(sp);
	int64_t		  first = 0, now = 100 * DAY;

	t_int_eq(spool_nxdom_seen(t, "nx.example", now, &first), 0, "first");
	t_ok(first == now, "a new run starts now");
	t_int_eq(spool_nxdom_seen(t, "NX.Example", now + 3600, &first), 0,
	    "again, another case");
	t_ok(first == now, "the run's start is kept");
	t_int_eq(spool_nxdom_seen(t, "nx.example", now + 20 * DAY, &first), 0,
	    "20 days later");
	t_ok(first == now, "still the same run (seen within the keep)");
	t_int_eq(spool_nxdom_seen(t, "nx.example", now + 51 * DAY, &first), 0,
	    "31 days after the last sighting");
	t_ok(first == now + 51 * DAY, "a new run");
	t_int_eq(spool_nxdom_forget(t, "Nx.Example"), 0, "forget");
	t_int_eq(spool_nxdom_forget(t, "nx.example"), SPOOL_ENOTFOUND,
	    "forgotten");
	t_int_eq(spool_nxdom_seen(t, "nx.example", now + 52 * DAY, &first), 0,
	    "seen after the forget");
	t_ok(first == now + 52 * DAY, "starts over");
	t_int_eq(spool_nxdom_seen(t, "", now, &first), EINVAL, "empty domain");
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_bound(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_nxdom",
	    MAP);
	struct spool_txn *t = t_wtxn(sp);
	char		  d[32];
	int64_t		  first;
	size_t		  i;
	bool		  ok = true;

	for (i = 0; i < SPOOL_NXDOM_MAX; i++) {
		(void)snprintf(d, sizeof(d), "d%zu.example", i);
		ok &= spool_nxdom_seen(t, d, 1000, &first) == 0;
	}
	t_ok(ok, "%d domains", SPOOL_NXDOM_MAX);
	t_int_eq(spool_nxdom_seen(t, "one.more.example", 1000, &first), ENOSPC,
	    "one more: ENOSPC");
	t_int_eq(spool_nxdom_seen(t, "d7.example", 2000, &first), 0,
	    "a known one is still seen");
	t_ok(first == 1000, "its run kept");
	t_int_eq((long long)t_count(t, SPOOL_DB_NXDOM), SPOOL_NXDOM_MAX,
	    "nothing added");
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_prune(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_nxdom",
	    MAP);
	struct spool_txn	*t = t_wtxn(sp);
	struct spool_retention	 rt = { 0 };
	struct spool_prune_stats ps;
	int64_t			 now = 100 * DAY, first;
	char			 d[32];
	size_t			 i, rounds = 0;
	bool			 ok = true;

	/* the even ones last seen 31 days ago, the odd ones a day ago */
	for (i = 0; i < 40; i++) {
		(void)snprintf(d, sizeof(d), "d%02zu.example", i);
		ok &= spool_nxdom_seen(t, d, i % 2 ? now - DAY : now - 31 * DAY,
			  &first) == 0;
	}
	t_ok(ok, "40 domains");
	t_commit(&t);
	memset(&ps, 0, sizeof(ps));
	do
		t_int_eq(spool_prune(sp, now, &rt, 3, &ps), 0,
		    "prune, three at a time");
	while (ps.ps_more && ++rounds < 200);
	t_int_eq((long long)ps.ps_nxdom, 20, "the 20 not seen for 30 days");
	t = t_wtxn(sp);
	t_int_eq((long long)t_count(t, SPOOL_DB_NXDOM), 20, "20 kept");
	t_ok(spool_nxdom_forget(t, "d00.example") == SPOOL_ENOTFOUND &&
		spool_nxdom_forget(t, "d01.example") == 0,
	    "which ones");
	spool_abort(&t);
	spool_close(&sp);
}

/* An environment from before the nxdomain database (LMDB). */
static void
t_older_database(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_nxdom",
	    MAP);
	struct spool_txn	*t;
	int64_t			 first;
	static const char *const dbs[] = { "nxdomain", NULL };

	t_spool_old(&sp, tdir, MAP, dbs, NULL);
	t = t_wtxn(sp);
	t_ok(spool_nxdom_forget(t, "a.example") == SPOOL_ENOTFOUND &&
		spool_nxdom_seen(t, "a.example", 1, &first) == 0,
	    "with an empty database");
	t_commit(&t);
	t_spool_reader_opens(&sp, tdir, MAP);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "seen_forget", t_seen_forget },
		{ "bound", t_bound },
		{ "prune", t_prune },
		{ "older_database", t_older_database },
	};

	return T_RUN_RMTREE(cases, tdir);
}
