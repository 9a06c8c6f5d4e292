/*
 * Unit tests for cluster mode's spool side (spool_cluster.h, issue 19):
 * the journal entry codec, the journal of a spool opened with
 * SPOOL_CLUSTER (and its absence without), the mirror's writes, issue
 * blocks and the deterministic issue ids in two separate environments.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spool_key.h"
#include "spool_rec.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(64) << 20)

static char tdir[64], tdir2[64];

static struct spool *
t_open(char *dir, size_t dirsz, const char *name, unsigned flags)
{
	struct spool *sp = NULL;

	t_fresh_dir(dir, dirsz, name);
	if (spool_open(dir, MAP, MAP, flags, &sp) != 0) {
		t_diag("spool_open %s failed", dir);
		abort();
	}
	return sp;
}

/* ---- the codec */

static void
t_codec(void)
{
	static const uint8_t good_put[] = { 1, 3, 0, 2, 'a', 0, 1, 0, 0, 0, 1,
		1 };
	static const uint8_t good_del[] = { 1, 0, 0, 2, 'a', 0, 0 };
	const struct {
		const char    *what;
		const uint8_t *p;
		size_t	       n;
	} bad[] = {
		{ "version 2", (const uint8_t[]){ 2, 0, 0, 1, 'a', 0 }, 6 },
		{ "kind out of range",
		    (const uint8_t[]){ 1, SPOOL_CK_N, 0, 1, 'a', 0 }, 6 },
		{ "empty key", (const uint8_t[]){ 1, 0, 0, 0, 0 }, 5 },
		{ "key of 512", (const uint8_t[]){ 1, 0, 2, 0, 'a', 0 }, 6 },
		{ "key longer than input",
		    (const uint8_t[]){ 1, 0, 0, 9, 'a', 0 }, 6 },
		{ "flag 2", (const uint8_t[]){ 1, 0, 0, 1, 'a', 2 }, 6 },
		{ "trailing after delete",
		    (const uint8_t[]){ 1, 0, 0, 1, 'a', 0, 0 }, 7 },
		{ "value shorter",
		    (const uint8_t[]){ 1, 0, 0, 1, 'a', 1, 0, 0, 0, 2, 'x' },
		    11 },
		{ "value longer",
		    (const uint8_t[]){ 1, 0, 0, 1, 'a', 1, 0, 0, 0, 0, 'x' },
		    11 },
		{ "value over the cap",
		    (const uint8_t[]){ 1, 0, 0, 1, 'a', 1, 0, 0x20, 0, 0 },
		    10 },
	};
	struct spool_centry e, d;
	struct buf	    b;
	size_t		    i;

	t_ok(spool_centry_dec(good_put, sizeof(good_put), &e) == 0 &&
		e.ce_kind == SPOOL_CK_STOPLIST && e.ce_klen == 2 &&
		e.ce_vlen == 1 && e.ce_val != NULL && e.ce_val[0] == 1,
	    "a put decodes");
	t_ok(spool_centry_dec(good_del, sizeof(good_del), &e) == 0 &&
		e.ce_kind == SPOOL_CK_ACCOUNTS && e.ce_val == NULL,
	    "a delete decodes");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		t_int_eq(spool_centry_dec(bad[i].p, bad[i].n, &e),
		    SPOOL_ECORRUPT, bad[i].what);
	/* every prefix of a good entry is refused (a torn value) */
	for (i = 0; i < sizeof(good_put); i++)
		if (spool_centry_dec(good_put, i, &e) != SPOOL_ECORRUPT)
			break;
	t_int_eq((long long)i, sizeof(good_put), "every prefix refused");
	/* round trip */
	e = (struct spool_centry){ .ce_kind = SPOOL_CK_ISSUE_BLOCK,
		.ce_key = (const uint8_t *)"k\0",
		.ce_klen = 2,
		.ce_val = (const uint8_t *)"vv",
		.ce_vlen = 2 };
	buf_init(&b, 1024);
	t_int_eq(spool_centry_enc(&e, &b), 0, "encode");
	t_ok(spool_centry_dec(b.data, b.len, &d) == 0 &&
		d.ce_kind == e.ce_kind && d.ce_klen == 2 && d.ce_vlen == 2 &&
		memcmp(d.ce_val, "vv", 2) == 0,
	    "round trip");
	e.ce_klen = 0;
	t_int_eq(spool_centry_enc(&e, &b), SPOOL_ECORRUPT, "no empty key");
	buf_release(&b);
}

/* ---- the journal */

static int
t_journal_cb(uint64_t seq, const struct spool_centry *e, void *arg)
{
	(void)buf_printf(arg, "%llu:%s:%s%s,", (unsigned long long)seq,
	    spool_ckind_name(e->ce_kind), (const char *)e->ce_key + 0,
	    e->ce_val == NULL ? "-" : "+");
	return 0;
}

static void
t_journal_str(struct spool *sp, struct buf *b)
{
	struct spool_txn *t = t_txn(sp, false);

	buf_reset(b);
	t_int_eq(spool_cjournal_iter(t, 0, SIZE_MAX, t_journal_cb, b), 0,
	    "journal walk");
	(void)buf_putc(b, '\0');
	spool_abort(&t);
}

static void
t_account(struct spool_txn *t, const char *login)
{
	struct spool_account a;

	memset(&a, 0, sizeof(a));
	(void)str_copy(a.ac_login, sizeof(a.ac_login), login);
	t_int_eq(spool_account_put(t, &a), 0, "account put");
}

static void
t_journal(void)
{
	struct spool	  *sp = t_open(tdir, sizeof(tdir), "t_spool_cluster",
		 SPOOL_CLUSTER);
	struct spool_issue si;
	struct spool_txn  *t = t_wtxn(sp);
	struct buf	   b;
	uint64_t	   v = 0;
	size_t		   n = 9;
	bool		   has;

	buf_init(&b, 1 << 20);
	t_account(t, "acme");
	t_int_eq(spool_stop_put(t, "acme", "X@Y.test"), 0, "stop put");
	t_int_eq(spool_sender_del(t, "acme", "nobody"), SPOOL_ENOTFOUND,
	    "deleting nothing");
	/* queue records are not policy */
	t_int_eq(spool_issue_find_or_create(t, "acme", "2026-12-07", NULL, &si),
	    0, "issue");
	t_commit(&t);
	t_journal_str(sp, &b);
	t_str_eq(b.data, "1:accounts:acme+,2:stoplist:acme+,",
	    "puts journaled in order, nothing else");
	t = t_wtxn(sp);
	t_int_eq(spool_account_del(t, "acme"), 0, "account del");
	t_commit(&t);
	t_journal_str(sp, &b);
	t_str_eq(b.data,
	    "1:accounts:acme+,2:stoplist:acme+,3:accounts:acme-,"
	    "4:stoplist:acme-,",
	    "the account's delete and its prefix's");
	t = t_txn(sp, false);
	t_ok(spool_cjournal_has(t, SPOOL_CK_STOPLIST,
		 (const uint8_t *)"acme\0x@y.test", 14, &has) == 0 &&
		has,
	    "has: the lower-cased key");
	t_ok(spool_cjournal_has(t, SPOOL_CK_SENDERS,
		 (const uint8_t *)"acme\0x@y.test", 14, &has) == 0 &&
		!has,
	    "has: not another kind");
	spool_abort(&t);
	/* the mirror's writes are not journaled */
	t = t_wtxn(sp);
	spool_txn_nojournal(t);
	t_account(t, "bolt");
	t_commit(&t);
	t = t_wtxn(sp);
	t_int_eq(spool_cjournal_drop(t, 3), 0, "drop up to 3");
	t_ok(spool_cjournal_count(t, &n) == 0 && n == 1, "one left");
	t_commit(&t);
	t_journal_str(sp, &b);
	t_str_eq(b.data, "4:stoplist:acme-,",
	    "the mirror's write is not there");
	/* overflowed: no more entries until clusterd clears the flag */
	t = t_wtxn(sp);
	t_int_eq(spool_cjournal_set_overflow(t, true), 0, "overflow");
	t_int_eq(spool_stop_put(t, "bolt", "a@b.test"), 0, "stop put");
	t_ok(spool_cjournal_count(t, &n) == 0 && n == 1, "not journaled");
	t_int_eq(spool_cjournal_set_overflow(t, false), 0, "cleared");
	t_int_eq(spool_stop_del(t, "bolt", "a@b.test"), 0, "stop del");
	t_ok(spool_cjournal_count(t, &n) == 0 && n == 2, "journaled again");
	t_commit(&t);
	spool_close(&sp);
	/* single node: no journal at all, not even its counter */
	sp = t_open(tdir, sizeof(tdir), "t_spool_cluster", 0);
	t = t_wtxn(sp);
	t_account(t, "acme");
	t_int_eq(spool_stop_put(t, "acme", "x@y.test"), 0, "stop put");
	t_ok(spool_cjournal_count(t, &n) == 0 && n == 0, "single node: none");
	t_int_eq(spool_cluster_meta_get(t, "cluster_out_seq", &v),
	    SPOOL_ENOTFOUND, "single node: no seq");
	t_commit(&t);
	spool_close(&sp);
	buf_release(&b);
	t_rmtree(tdir);
}

/* ---- the journal's instance and entry digests (the mark's names) */

static void
t_instance_of(struct spool *sp, char *hex, int want)
{
	struct spool_txn *t = t_txn(sp, false);

	t_int_eq(spool_cjournal_instance(t, false, hex), want, "instance read");
	spool_abort(&t);
}

static void
t_instance(void)
{
	struct spool *a = t_open(tdir, sizeof(tdir), "t_spool_cluster",
			 SPOOL_CLUSTER),
		     *b = t_open(tdir2, sizeof(tdir2), "t_spool_cluster2",
			 SPOOL_CLUSTER);
	char x[SPOOL_CJ_INSTANCE_HEX + 1], y[sizeof(x)], z[sizeof(x)];
	struct spool_txn *t;
	struct spool_key  k;
	size_t		  n = 0;

	t_instance_of(a, x, SPOOL_ENOTFOUND);
	t = t_wtxn(a);
	t_int_eq(spool_stop_put(t, "acme", "x@y.test"), 0, "stop put");
	t_commit(&t);
	t_instance_of(a, x, 0);
	t_ok(strlen(x) == 32 && strspn(x, "0123456789abcdef") == 32,
	    "the first entry creates it: 32 hex digits");
	t = t_wtxn(a);
	t_int_eq(spool_stop_put(t, "acme", "z@y.test"), 0, "stop put");
	t_commit(&t);
	t_instance_of(a, y, 0);
	t_str_eq(y, x, "the next entry keeps it");
	t = t_wtxn(b);
	t_int_eq(spool_stop_put(t, "acme", "x@y.test"), 0, "stop put on b");
	t_commit(&t);
	t_instance_of(b, y, 0);
	t_ok(strcmp(x, y) != 0, "another LMDB, another instance");
	/* a journal from before instances: its entries stay, one is made */
	t = t_wtxn(a);
	spool_key_init(&k);
	spool_key_str(&k, "cluster_out_instance");
	t_int_eq(spool_db_del(t, SPOOL_DB_META, &k), 0, "forget it");
	t_commit(&t);
	t = t_wtxn(a);
	t_int_eq(spool_cjournal_instance(t, true, y), 0, "made on first use");
	t_ok(strcmp(x, y) != 0, "a new one");
	t_int_eq(spool_cjournal_instance_new(t, z), 0, "renewed");
	t_ok(strcmp(z, y) != 0, "renewed: another one");
	t_ok(spool_cjournal_count(t, &n) == 0 && n == 2, "entries kept");
	t_commit(&t);
	t_instance_of(a, y, 0);
	t_str_eq(y, z, "the renewed one stays");
	spool_close(&a);
	spool_close(&b);
	/* single node: none */
	a = t_open(tdir, sizeof(tdir), "t_spool_cluster", 0);
	t = t_wtxn(a);
	t_int_eq(spool_stop_put(t, "acme", "x@y.test"), 0, "stop put");
	t_commit(&t);
	t_instance_of(a, x, SPOOL_ENOTFOUND);
	spool_close(&a);
	t_rmtree(tdir);
	t_rmtree(tdir2);
}

static void
t_digest(void)
{
	struct spool_centry e = { .ce_kind = SPOOL_CK_STOPLIST,
		.ce_key = (const uint8_t *)"acme\0x@y.test",
		.ce_klen = 14,
		.ce_val = (const uint8_t *)"\1",
		.ce_vlen = 1 };
	uint8_t		    d1[SPOOL_CJ_DIGEST], d2[SPOOL_CJ_DIGEST];

	t_int_eq(spool_centry_digest(7, &e, d1), 0, "digest");
	t_int_eq(spool_centry_digest(7, &e, d2), 0, "digest again");
	t_ok(memcmp(d1, d2, sizeof(d1)) == 0, "the same entry: the same");
	t_int_eq(spool_centry_digest(8, &e, d2), 0, "another seq");
	t_ok(memcmp(d1, d2, sizeof(d1)) != 0, "another seq: another digest");
	e.ce_val = NULL;
	e.ce_vlen = 0;
	t_int_eq(spool_centry_digest(7, &e, d2), 0, "a delete");
	t_ok(memcmp(d1, d2, sizeof(d1)) != 0, "a delete: another digest");
	e.ce_klen = 0;
	t_int_eq(spool_centry_digest(7, &e, d2), SPOOL_ECORRUPT, "no key");
}

/* ---- the mirror */

static int
t_copy_cb(uint64_t seq, const struct spool_centry *e, void *arg)
{
	(void)seq;
	return spool_cluster_apply(arg, e);
}

/* Applies a's journal to b as clusterd would. */
static void
t_mirror(struct spool *a, struct spool *b)
{
	struct spool_txn *ta = t_txn(a, false), *tb = t_wtxn(b);

	spool_txn_nojournal(tb);
	t_int_eq(spool_cjournal_iter(ta, 0, SIZE_MAX, t_copy_cb, tb), 0,
	    "apply a's journal to b");
	t_commit(&tb);
	spool_abort(&ta);
	ta = t_wtxn(a);
	(void)spool_cjournal_drop(ta, UINT64_MAX);
	t_commit(&ta);
}

static void
t_apply(void)
{
	struct spool *a = t_open(tdir, sizeof(tdir), "t_spool_cluster",
			 SPOOL_CLUSTER),
		     *b = t_open(tdir2, sizeof(tdir2), "t_spool_cluster2",
			 SPOOL_CLUSTER);
	struct spool_account acc;
	struct spool_issue   si, sb;
	struct spool_txn    *t;
	struct spool_centry  e;
	size_t		     n = 9;

	t = t_wtxn(a);
	t_account(t, "acme");
	t_int_eq(spool_stop_put(t, "acme", "x@y.test"), 0, "stop put");
	t_int_eq(spool_issue_find_or_create(t, "acme", "2026-12-07", "spring",
		     &si),
	    0, "issue on a");
	t_int_eq(spool_issue_set_blocked(t, &si, true), 0, "block it");
	t_commit(&t);
	t_mirror(a, b);
	t = t_txn(b, false);
	t_int_eq(spool_account_get(t, "acme", &acc), 0, "b has the account");
	t_ok(spool_stop_has(t, "acme", "x@y.test"), "b has the stop entry");
	t_ok(spool_issue_find(t, "acme", "2026-12-07", "spring", &sb) == 0 &&
		sb.su_blocked && sb.su_id == si.su_id,
	    "b has the blocked issue, under a's id");
	t_ok(spool_cjournal_count(t, &n) == 0 && n == 0,
	    "b journaled none of it");
	spool_abort(&t);
	t = t_wtxn(a);
	t_int_eq(spool_stop_del(t, "acme", "x@y.test"), 0, "stop del");
	t_int_eq(spool_issue_set_blocked(t, &si, false), 0, "unblock");
	t_commit(&t);
	t_mirror(a, b);
	t = t_wtxn(b);
	spool_txn_nojournal(t);
	t_ok(!spool_stop_has(t, "acme", "x@y.test"), "b lost the stop entry");
	t_ok(spool_issue_find(t, "acme", "2026-12-07", "spring", &sb) == 0 &&
		!sb.su_blocked,
	    "b's issue unblocked");
	e = (struct spool_centry){ .ce_kind = SPOOL_CK_ACCOUNTS,
		.ce_key = (const uint8_t *)"evil",
		.ce_klen = 5,
		.ce_val = (const uint8_t *)"\1\7",
		.ce_vlen = 2 };
	t_int_eq(spool_cluster_apply(t, &e), SPOOL_ECORRUPT,
	    "a row that does not decode is refused");
	e.ce_kind = SPOOL_CK_ISSUE_BLOCK;
	e.ce_val = NULL;
	t_int_eq(spool_cluster_apply(t, &e), SPOOL_ECORRUPT,
	    "an issue key that does not parse is refused");
	t_commit(&t);
	spool_close(&a);
	spool_close(&b);
	t_rmtree(tdir);
	t_rmtree(tdir2);
}

/* ---- issue ids (item 5) */

static uint64_t
t_issue(struct spool *sp, const char *login, const char *date, const char *name)
{
	struct spool_issue si;
	struct spool_txn  *t = t_wtxn(sp);

	si.su_id = 0;
	if (spool_issue_find_or_create(t, login, date, name, &si) != 0)
		t_diag("find_or_create %s failed", login);
	t_commit(&t);
	return si.su_id;
}

static void
t_ids(void)
{
	struct spool *a = t_open(tdir, sizeof(tdir), "t_spool_cluster",
			 SPOOL_CLUSTER),
		     *b = t_open(tdir2, sizeof(tdir2), "t_spool_cluster2",
			 SPOOL_CLUSTER);
	struct spool_issue si;
	struct spool_txn  *t;
	uint64_t	   x, y, n = 0;

	/* b files others first: ids do not depend on the order */
	(void)t_issue(b, "zed", "2026-12-07", NULL);
	x = t_issue(a, "acme", "2026-12-07", "spring");
	y = t_issue(b, "acme", "2026-12-07", "spring");
	t_ok(x == y && x > 2, "same key, same id in two environments");
	t_ok(x == spool_issue_cluster_id("acme", "2026-12-07", "spring"),
	    "the hash's id");
	t_ok(x < (UINT64_C(1) << 52), "JSON-safe (52 bits)");
	t_ok(t_issue(a, "acme", "2026-12-07", "spring") == x,
	    "found again, not filed twice");
	t_ok(t_issue(a, "acme", "2026-12-08", "spring") != x, "another day");
	t_ok(t_issue(a, "acme2", "2026-12-07", "spring") != x,
	    "another account");
	t_ok(t_issue(a, "acme", "2026-12-07", NULL) !=
		t_issue(a, "acme", "2026-12-07", ""),
	    "no name and an empty name differ");
	/* a collision: the id taken by another key is probed past */
	t = t_wtxn(b);
	memset(&si, 0, sizeof(si));
	si.su_id = spool_issue_cluster_id("acme", "2026-12-09", "x");
	(void)str_copy(si.su_login, sizeof(si.su_login), "other");
	(void)str_copy(si.su_date, sizeof(si.su_date), "2026-12-09");
	t_int_eq(spool_issue_put(t, &si), 0, "squat the id");
	t_commit(&t);
	x = t_issue(b, "acme", "2026-12-09", "x");
	t_ok(x == si.su_id + 1, "collision: the next id");
	t = t_txn(b, false);
	t_ok(spool_cluster_meta_get(t, "issue_id_collisions", &n) == 0 &&
		n == 1,
	    "collision counted");
	spool_abort(&t);
	spool_close(&a);
	spool_close(&b);
	/* single node: unchanged, ids count up from 1 */
	a = t_open(tdir, sizeof(tdir), "t_spool_cluster", 0);
	t_int_eq((long long)t_issue(a, "acme", "2026-12-07", "spring"), 1,
	    "single node: 1");
	t_int_eq((long long)t_issue(a, "acme", "2026-12-07", NULL), 2,
	    "single node: 2");
	spool_close(&a);
	t_rmtree(tdir);
	t_rmtree(tdir2);
}

/* A database from before cluster mode: a reader fails clearly, the first
 * writer creates cluster_out, and a cluster node journals into it. */
static void
t_older_database(void)
{
	static const char *const old_dbs[] = { "cluster_out", NULL };
	struct spool	 *sp = t_open(tdir, sizeof(tdir), "t_spool_cluster", 0);
	struct spool_txn *t;
	size_t		  n = 9;

	t_spool_old(&sp, tdir, MAP, old_dbs, NULL);
	t_spool_reader_opens(&sp, tdir, MAP);
	t_int_eq(spool_open(tdir, MAP, MAP, SPOOL_CLUSTER, &sp), 0,
	    "a cluster node opens it");
	t = t_wtxn(sp);
	t_int_eq(spool_stop_put(t, "acme", "a@b.test"), 0, "stop put");
	t_ok(spool_cjournal_count(t, &n) == 0 && n == 1, "journaled");
	t_commit(&t);
	spool_close(&sp);
	t_rmtree(tdir);
}

/* The node claim: made once, kept across a reopen (the same spool is the
 * same gateway), another environment has another. */
static void
t_claim(void)
{
	char a[SPOOL_CLAIM_LEN + 1], b[SPOOL_CLAIM_LEN + 1],
	    c[SPOOL_CLAIM_LEN + 1];
	struct spool *sp = t_open(tdir, sizeof(tdir), "t_spool_cluster", 0);
	struct spool *sp2 = t_open(tdir2, sizeof(tdir2), "t_spool_cluster2", 0);

	t_int_eq(spool_cluster_node_claim(sp, a), 0, "claim made");
	t_ok(strlen(a) == SPOOL_CLAIM_LEN &&
		strspn(a, "0123456789abcdef") == SPOOL_CLAIM_LEN,
	    "32 hex digits: %s", a);
	t_int_eq(spool_cluster_node_claim(sp, b), 0, "claim read");
	t_str_eq(b, a, "the same claim again");
	spool_close(&sp);
	t_int_eq(spool_open(tdir, MAP, MAP, 0, &sp), 0, "reopened");
	t_int_eq(spool_cluster_node_claim(sp, b), 0, "claim after reopen");
	t_str_eq(b, a, "kept across a reopen");
	t_int_eq(spool_cluster_node_claim(sp2, c), 0, "other spool's claim");
	t_ok(strcmp(c, a) != 0, "another spool, another claim");
	spool_close(&sp);
	spool_close(&sp2);
	t_rmtree(tdir);
	t_rmtree(tdir2);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "codec", t_codec },
		{ "older_database", t_older_database },
		{ "journal", t_journal },
		{ "instance", t_instance },
		{ "digest", t_digest },
		{ "apply", t_apply },
		{ "ids", t_ids },
		{ "claim", t_claim },
	};

	return T_RUN(cases);
}
