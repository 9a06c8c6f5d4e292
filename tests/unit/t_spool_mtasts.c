/*
 * Unit tests for the MTA-STS policy cache of libspool (spool_mtasts.c,
 * issue 17 item 2): put/get by domain (any case), bad input, the pruning
 * of expired records, the bound (a full cache refuses a new domain unless
 * expired ones can go), and an older database without "mtasts".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spool.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(64) << 20)

static char tdir[64];

static struct spool_mtasts_rec
rec(int64_t expires, const char *id)
{
	struct spool_mtasts_rec r;

	memset(&r, 0, sizeof(r));
	r.mr_expires = expires;
	r.mr_fetched = expires - 100;
	(void)snprintf(r.mr_id, sizeof(r.mr_id), "%s", id);
	(void)snprintf(r.mr_policy, sizeof(r.mr_policy),
	    "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 100");
	return r;
}

static void
t_put_get(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_mtasts",
	    MAP);
	struct spool_txn       *t = t_wtxn(sp);
	struct spool_mtasts_rec r = rec(5000, "abc1"), got;

	t_int_eq(spool_mtasts_get(t, "example.com", &got), SPOOL_ENOTFOUND,
	    "empty");
	t_int_eq(spool_mtasts_put(t, "Example.COM", &r, 1000), 0, "put");
	t_ok(spool_mtasts_get(t, "example.com", &got) == 0 &&
		got.mr_expires == 5000 && got.mr_fetched == 4900 &&
		strcmp(got.mr_id, "abc1") == 0 &&
		strcmp(got.mr_policy, r.mr_policy) == 0,
	    "get in another case: every field");
	r = rec(6000, "abc2");
	t_int_eq(spool_mtasts_put(t, "example.com", &r, 1000), 0, "replace");
	t_ok(spool_mtasts_get(t, "example.com", &got) == 0 &&
		strcmp(got.mr_id, "abc2") == 0,
	    "replaced");
	t_int_eq(spool_mtasts_put(t, "", &r, 1000), EINVAL, "empty domain");
	memset(r.mr_id, 'x', sizeof(r.mr_id));
	t_int_eq(spool_mtasts_put(t, "a.test", &r, 1000), EINVAL,
	    "unterminated id");
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_prune_and_bound(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_mtasts",
	    MAP);
	struct spool_txn       *t = t_wtxn(sp);
	struct spool_mtasts_rec r;
	char			d[64];
	size_t			i, n = 0;

	for (i = 0; i < SPOOL_MTASTS_MAX; i++) {
		r = rec(i < 10 ? 500 : 5000, "id");
		(void)snprintf(d, sizeof(d), "d%zu.test", i);
		if (spool_mtasts_put(t, d, &r, 100) != 0)
			break;
	}
	t_int_eq((long long)i, SPOOL_MTASTS_MAX, "filled to the bound");
	r = rec(5000, "id");
	t_int_eq(spool_mtasts_put(t, "new.test", &r, 100), ENOSPC,
	    "full, nothing expired: a new domain is refused");
	t_int_eq(spool_mtasts_put(t, "d20.test", &r, 100), 0,
	    "a known domain is still updated");
	t_int_eq(spool_mtasts_put(t, "new.test", &r, 1000), 0,
	    "full, 10 expired: they go and the new one is kept");
	t_int_eq((long long)t_count(t, SPOOL_DB_MTASTS), SPOOL_MTASTS_MAX - 9,
	    "10 pruned, 1 added");
	t_int_eq(spool_mtasts_prune(t, 10000, &n), 0, "prune all");
	t_int_eq((long long)n, SPOOL_MTASTS_MAX - 9, "every one expired");
	t_int_eq((long long)t_count(t, SPOOL_DB_MTASTS), 0, "empty");
	spool_abort(&t);
	spool_close(&sp);
}

/* An environment from before issue 17: "mtasts" dropped (LMDB); a reader
 * fails clearly until a writer opened it, which creates the empty cache. */
static void
t_older_database(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_mtasts",
	    MAP);
	struct spool_txn	*t;
	struct spool_mtasts_rec	 r = rec(5000, "x"), got;
	static const char *const dbs[] = { "mtasts", NULL };

	t_spool_old(&sp, tdir, MAP, dbs, NULL);
	t = t_wtxn(sp);
	t_ok(spool_mtasts_get(t, "a.test", &got) == SPOOL_ENOTFOUND &&
		spool_mtasts_put(t, "a.test", &r, 1) == 0,
	    "with an empty cache");
	t_int_eq(spool_commit(&t), 0, "commit");
	t_spool_reader_opens(&sp, tdir, MAP);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "put_get", t_put_get },
		{ "prune_and_bound", t_prune_and_bound },
		{ "older_database", t_older_database },
	};

	return T_RUN_RMTREE(cases, tdir);
}
