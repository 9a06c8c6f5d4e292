/*
 * Unit tests of the bounds h-astate added to libspool: the count of an
 * account's issues per day (spool_issue_day_count, kept by
 * spool_issue_find_or_create and spool_issue_del, gone with the day's last
 * issue) and the bound on the opened/clicked events of one recipient's
 * copy (spool_engage_admit over the counts spool_engage_first keeps;
 * a value of "" from before the count is one event), and the eviction
 * that makes room in a full MTA-STS policy cache (spool_mtasts_evict).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(64) << 20)

static char tdir[64];

static uint64_t
day_count(struct spool_txn *t, const char *login, const char *date)
{
	uint64_t n = 99;

	if (spool_issue_day_count(t, login, date, &n) != 0)
		return 99;
	return n;
}

static void
t_issue_day(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_bounds",
	    MAP);
	struct spool_txn	*t = t_wtxn(sp);
	struct spool_issue	 is[3], other;
	static const char *const names[] = { "a", "b", NULL };
	size_t			 i, meta0 = t_count(t, SPOOL_DB_META);

	t_int_eq((long long)day_count(t, "acc", "2026-12-07"), 0, "none yet");
	for (i = 0; i < 3; i++)
		t_ok(spool_issue_find_or_create(t, "acc", "2026-12-07",
			 names[i], &is[i]) == 0,
		    "issue %zu", i);
	t_int_eq(spool_issue_find_or_create(t, "acc", "2026-12-07", "a",
		     &other),
	    0, "an existing one");
	t_int_eq(spool_issue_find_or_create(t, "acc", "2026-12-08", "a",
		     &other),
	    0, "another day");
	t_int_eq(spool_issue_find_or_create(t, "bob", "2026-12-07", "a",
		     &other),
	    0, "another account");
	t_int_eq((long long)day_count(t, "acc", "2026-12-07"), 3,
	    "three issues (finding one again does not count)");
	t_int_eq((long long)day_count(t, "acc", "2026-12-08"), 1, "one");
	t_int_eq(spool_issue_del(t, is[0].su_id), 0, "del");
	t_int_eq((long long)day_count(t, "acc", "2026-12-07"), 2, "two left");
	t_ok(spool_issue_del(t, is[1].su_id) == 0 &&
		spool_issue_del(t, is[2].su_id) == 0,
	    "del the others");
	t_int_eq((long long)day_count(t, "acc", "2026-12-07"), 0, "none left");
	/* issue_seq, acc's 2026-12-08 and bob's count: not acc's 2026-12-07 */
	t_int_eq((long long)t_count(t, SPOOL_DB_META), (long long)meta0 + 3,
	    "the count's record went with the day's last issue");
	/* an issue from before the count: its deletion leaves no negative */
	t_int_eq(spool_issue_day_add(t, "bob", "2026-12-07", -1), 0, "bob");
	t_int_eq(spool_issue_del(t, other.su_id), 0, "del an uncounted one");
	t_int_eq((long long)day_count(t, "bob", "2026-12-07"), 0,
	    "not below 0");
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_engage_bound(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_bounds",
	    MAP);
	struct spool_txn *t = t_wtxn(sp);
	struct spool_key  k;
	char		  q[QID_SIZE];
	uint8_t		  type = SPOOL_EV_CLICKED;
	bool		  ok, full, first;
	int		  i, admitted = 0, said = 0;

	t_mkqid(q, 1700000000, 1);
	for (i = 0; i < SPOOL_ENGAGE_HITS_MAX + 50; i++) {
		if (spool_engage_admit(t, q, 7, SPOOL_EV_OPENED, &ok, &full) !=
		    0)
			break;
		said += full;
		if (ok &&
		    spool_engage_first(t, q, 7, SPOOL_EV_OPENED, &first) == 0) {
			t_ok(first == (admitted == 0), "first only once");
			admitted++;
		}
	}
	t_int_eq(admitted, SPOOL_ENGAGE_HITS_MAX, "opens: up to the bound");
	t_int_eq(said, 1, "the bound reported once");
	t_ok(spool_engage_admit(t, q, 8, SPOOL_EV_OPENED, &ok, &full) == 0 &&
		ok,
	    "another recipient of the message has its own count");
	t_ok(spool_engage_admit(t, q, 7, SPOOL_EV_CLICKED, &ok, &full) == 0 &&
		ok,
	    "and clicks theirs");
	/* a record from before the count ("") is one event */
	spool_key_init(&k);
	spool_key_raw(&k, q, QID_LEN);
	spool_key_be32(&k, 9);
	spool_key_raw(&k, &type, 1);
	t_int_eq(spool_db_put(t, SPOOL_DB_ENGAGE_FIRST, &k, "", 0), 0, "old");
	t_ok(spool_engage_first(t, q, 9, SPOOL_EV_CLICKED, &first) == 0 &&
		!first,
	    "an old record: not the first");
	for (i = 0; i < SPOOL_ENGAGE_HITS_MAX - 2; i++)
		(void)spool_engage_first(t, q, 9, SPOOL_EV_CLICKED, &first);
	t_ok(spool_engage_admit(t, q, 9, SPOOL_EV_CLICKED, &ok, &full) == 0 &&
		!ok && full,
	    "an old record counted as one: full after %d more",
	    SPOOL_ENGAGE_HITS_MAX - 1);
	t_int_eq(spool_engage_admit(t, "bad", 0, SPOOL_EV_OPENED, &ok, &full),
	    EINVAL, "a bad queue id");
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_mtasts_evict(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_bounds",
	    MAP);
	struct spool_txn       *t = t_wtxn(sp);
	struct spool_mtasts_rec r, got;
	char			d[64], old[64];
	size_t			i;

	t_int_eq(spool_mtasts_evict(t, old, sizeof(old)), SPOOL_ENOTFOUND,
	    "empty: nothing to evict");
	memset(&r, 0, sizeof(r));
	(void)snprintf(r.mr_id, sizeof(r.mr_id), "id1");
	(void)snprintf(r.mr_policy, sizeof(r.mr_policy),
	    "version: STSv1\nmode: enforce\nmx: mx.test\nmax_age: 86400");
	for (i = 0; i < SPOOL_MTASTS_MAX; i++) {
		/* none expired at 100; d1234.test expires first */
		r.mr_expires = i == 1234 ? 200 : 100000 + (int64_t)i;
		(void)snprintf(d, sizeof(d), "d%zu.test", i);
		if (spool_mtasts_put(t, d, &r, 100) != 0)
			break;
	}
	t_int_eq((long long)i, SPOOL_MTASTS_MAX, "full");
	t_int_eq(spool_mtasts_put(t, "new.test", &r, 100), ENOSPC, "refused");
	t_int_eq(spool_mtasts_evict(t, old, sizeof(old)), 0, "evict");
	t_str_eq(old, "d1234.test", "the one that expires first");
	t_int_eq(spool_mtasts_get(t, "d1234.test", &got), SPOOL_ENOTFOUND,
	    "gone");
	t_int_eq(spool_mtasts_put(t, "new.test", &r, 100), 0, "room for one");
	t_int_eq((long long)t_count(t, SPOOL_DB_MTASTS), SPOOL_MTASTS_MAX,
	    "still at the bound");
	spool_abort(&t);
	spool_close(&sp);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "issue_day", t_issue_day },
		{ "engage_bound", t_engage_bound },
		{ "mtasts_evict", t_mtasts_evict },
	};

	return T_RUN_RMTREE(cases, tdir);
}
