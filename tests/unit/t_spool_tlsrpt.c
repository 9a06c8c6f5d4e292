/*
 * Unit tests for the TLS reporting counters of libspool (spool_tlsrpt.c,
 * issue 17 item 4): counting per day, domain, policy, result and MX host
 * with the policy strings, the iteration of one day (and one domain), the
 * cap of rows per day, the pruning of old days, and an older database.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(256) << 20)
#define DAY 86400
#define T0  (INT64_C(20000) * DAY) /* a UTC midnight */

static char tdir[64];

static void
row(struct spool_tlsrpt_row *r, const char *dom, const char *res,
    const char *mx)
{
	memset(r, 0, sizeof(*r));
	(void)str_copy(r->tr_domain, sizeof(r->tr_domain), dom);
	(void)str_copy(r->tr_policy, sizeof(r->tr_policy), "sts");
	(void)str_copy(r->tr_result, sizeof(r->tr_result), res);
	(void)str_copy(r->tr_mx, sizeof(r->tr_mx), mx);
	(void)str_copy(r->tr_pstr, sizeof(r->tr_pstr),
	    "version: STSv1\nmode: enforce");
	(void)str_copy(r->tr_mxpat, sizeof(r->tr_mxpat), "*.mx.test");
}

struct seen {
	size_t			n;
	uint64_t		total;
	struct spool_tlsrpt_row fail; /* the last failure row */
};

static int
seen_cb(const struct spool_tlsrpt_row *r, void *arg)
{
	struct seen *s = arg;

	s->n++;
	s->total += r->tr_count;
	if (strcmp(r->tr_result, "success") != 0)
		s->fail = *r;
	return 0;
}

static struct seen
walk(struct spool_txn *t, int64_t day, const char *dom)
{
	struct seen s;

	memset(&s, 0, sizeof(s));
	t_int_eq(spool_tlsrpt_iter(t, day, dom, seen_cb, &s), 0, "iter");
	return s;
}

static void
t_counting(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_tlsrpt",
	    MAP);
	struct spool_txn       *t = t_wtxn(sp);
	struct spool_tlsrpt_row r;
	struct seen		s;

	row(&r, "A.test", "success", "mx1.a.test");
	t_int_eq(spool_tlsrpt_add(t, T0 + 10, &r), 0, "add");
	t_int_eq(spool_tlsrpt_add(t, T0 + DAY - 1, &r), 0, "add, same day");
	row(&r, "a.test", "certificate-host-mismatch", "mx2.a.test");
	t_int_eq(spool_tlsrpt_add(t, T0 + 20, &r), 0, "a failure");
	row(&r, "b.test", "success", "mx.b.test");
	t_int_eq(spool_tlsrpt_add(t, T0 + DAY, &r), 0, "next day");
	s = walk(t, T0, NULL);
	t_ok(s.n == 2 && s.total == 3, "day 1: two rows, three sessions");
	t_str_eq(s.fail.tr_domain, "a.test", "domain lower-cased");
	t_str_eq(s.fail.tr_result, "certificate-host-mismatch", "result");
	t_str_eq(s.fail.tr_mx, "mx2.a.test", "MX host");
	t_str_eq(s.fail.tr_pstr, "version: STSv1\nmode: enforce",
	    "policy strings");
	t_str_eq(s.fail.tr_mxpat, "*.mx.test", "MX patterns");
	s = walk(t, T0 + DAY + 5, NULL);
	t_ok(s.n == 1 && s.total == 1, "day 2: its own row");
	t_ok(walk(t, T0, "b.test").n == 0, "b.test not on day 1");
	t_ok(walk(t, T0, "A.TEST").n == 2, "domain filter, any case");
	t_ok(walk(t, T0, "a.tes").n == 0, "no prefix match");
	row(&r, "", "success", "mx");
	t_int_eq(spool_tlsrpt_add(t, T0, &r), EINVAL, "no domain");
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_cap_and_prune(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_tlsrpt",
	    MAP);
	struct spool_txn       *t = t_wtxn(sp);
	struct spool_tlsrpt_row r;
	char			mx[64];
	size_t			i;
	int			rc = 0;

	for (i = 0; i < SPOOL_TLSRPT_DAY_MAX + 5 && rc == 0; i++) {
		(void)snprintf(mx, sizeof(mx), "mx%zu.test", i);
		row(&r, "c.test", "success", mx);
		rc = spool_tlsrpt_add(t, T0, &r);
	}
	t_int_eq(rc, 0, "past the cap: no error");
	t_ok(walk(t, T0, NULL).n == SPOOL_TLSRPT_DAY_MAX,
	    "at most SPOOL_TLSRPT_DAY_MAX rows a day");
	row(&r, "c.test", "success", "mx0.test");
	t_int_eq(spool_tlsrpt_add(t, T0, &r), 0, "an existing row");
	t_ok(walk(t, T0, "c.test").total == SPOOL_TLSRPT_DAY_MAX + 1,
	    "still counts");
	row(&r, "d.test", "success", "mx.d.test");
	t_int_eq(spool_tlsrpt_add(t, T0 + 10 * DAY, &r), 0, "ten days on");
	t_ok(walk(t, T0, NULL).n == SPOOL_TLSRPT_DAY_MAX, "day 1 kept");
	t_int_eq(spool_tlsrpt_add(t, T0 + SPOOL_TLSRPT_DAYS * DAY, &r), 0,
	    "SPOOL_TLSRPT_DAYS on");
	t_ok(walk(t, T0, NULL).n == 0, "day 1 pruned");
	t_ok(walk(t, T0 + 10 * DAY, NULL).n == 1, "a younger day kept");
	spool_abort(&t);
	spool_close(&sp);
}

/* An environment from before issue 17: "tlsrpt" dropped (LMDB). */
static void
t_older_database(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_tlsrpt",
	    MAP);
	struct spool_txn	*t;
	struct spool_tlsrpt_row	 r;
	static const char *const dbs[] = { "tlsrpt", NULL };

	t_spool_old(&sp, tdir, MAP, dbs, NULL);
	t = t_wtxn(sp);
	row(&r, "a.test", "success", "mx");
	t_int_eq(spool_tlsrpt_add(t, T0, &r), 0, "the writer created it");
	t_int_eq(spool_commit(&t), 0, "commit");
	t_spool_reader_opens(&sp, tdir, MAP);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "count", t_counting },
		{ "cap_and_prune", t_cap_and_prune },
		{ "older_database", t_older_database },
	};

	return T_RUN_RMTREE(cases, tdir);
}
