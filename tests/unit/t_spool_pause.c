/*
 * Unit tests for the pauses (spool_pause.c, issue 15 item 7): the
 * account's own pause before the domain's, lower-cased domains, the
 * order of the listing, the cap of SPOOL_PAUSE_MAX, and an older
 * database without the pauses database (made here with LMDB directly).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "spool.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(64) << 20)

static char tdir[64];

static int
t_put(struct spool_txn *t, const char *domain, const char *login, int64_t since)
{
	struct spool_pause pz;

	memset(&pz, 0, sizeof(pz));
	(void)str_copy(pz.pz_domain, sizeof(pz.pz_domain), domain);
	(void)str_copy(pz.pz_login, sizeof(pz.pz_login), login);
	pz.pz_since = since;
	return spool_pause_put(t, &pz);
}

static int
t_list_cb(const struct spool_pause *pz, void *arg)
{
	(void)buf_printf(arg, "%s/%s/%lld,", pz->pz_domain, pz->pz_login,
	    (long long)pz->pz_since);
	return 0;
}

static void
t_semantics(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_pause",
	    MAP);
	struct spool_txn  *t = t_wtxn(sp);
	struct spool_pause pz;
	struct buf	   b;
	size_t		   n = 99;

	t_ok(spool_pause_count(t, &n) == 0 && n == 0, "none at first");
	t_int_eq(spool_pause_find(t, "a.test", "acc", &pz), SPOOL_ENOTFOUND,
	    "not paused");
	t_int_eq(t_put(t, "A.Test", "acc", 10), 0, "account pause");
	t_int_eq(t_put(t, "a.test", "acc", 11), SPOOL_EEXIST, "twice: exists");
	t_int_eq(t_put(t, "", "", 11), EINVAL, "no domain");
	t_ok(spool_pause_find(t, "a.test", "acc", &pz) == 0 &&
		pz.pz_since == 10 && strcmp(pz.pz_login, "acc") == 0,
	    "found, lower-cased, first time kept");
	t_int_eq(spool_pause_find(t, "a.test", "other", &pz), SPOOL_ENOTFOUND,
	    "another account's mail is not paused");
	t_int_eq(t_put(t, "a.test", "", 20), 0, "domain pause");
	t_ok(spool_pause_find(t, "a.test", "other", &pz) == 0 &&
		pz.pz_login[0] == '\0' && pz.pz_since == 20,
	    "the domain's pause holds everyone");
	t_ok(spool_pause_find(t, "a.test", "acc", &pz) == 0 &&
		pz.pz_since == 10,
	    "the account's own pause first");
	t_ok(spool_pause_find(t, "b.test", "acc", &pz) == SPOOL_ENOTFOUND,
	    "other domain");
	(void)t_put(t, "0.test", "zz", 30);
	buf_init(&b, 4096);
	t_int_eq(spool_pause_iter(t, t_list_cb, &b), 0, "iter");
	t_str_eq(b.data, "0.test/zz/30,a.test//20,a.test/acc/10,",
	    "by domain, domain first");
	buf_release(&b);
	t_int_eq(spool_pause_del(t, "a.test", ""), 0, "resume the domain");
	t_int_eq(spool_pause_del(t, "a.test", ""), SPOOL_ENOTFOUND,
	    "twice: not found");
	t_ok(spool_pause_find(t, "a.test", "acc", &pz) == 0,
	    "the account's stays");
	t_ok(spool_pause_count(t, &n) == 0 && n == 2, "two left");
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_cap(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_pause",
	    MAP);
	struct spool_txn *t = t_wtxn(sp);
	char		  d[64];
	unsigned	  i;
	int		  rc = 0;

	for (i = 0; i < SPOOL_PAUSE_MAX && rc == 0; i++) {
		(void)snprintf(d, sizeof(d), "d%u.test", i);
		rc = t_put(t, d, "", 1);
	}
	t_int_eq(rc, 0, "SPOOL_PAUSE_MAX pauses");
	t_int_eq(t_put(t, "one-more.test", "", 1), EDQUOT, "one more: EDQUOT");
	t_int_eq(t_put(t, "d0.test", "", 1), SPOOL_EEXIST,
	    "an existing one: exists");
	t_int_eq(spool_pause_del(t, "d0.test", ""), 0, "resume one");
	t_int_eq(t_put(t, "one-more.test", "", 1), 0, "then there is room");
	t_int_eq(spool_commit(&t), 0, "commit");
	spool_close(&sp);
}

/* An environment from before the pauses: "pauses" dropped (LMDB). */
static const char *const old_dbs[] = { "pauses", NULL };

static void
t_older_database(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_pause",
	    MAP);
	struct spool_txn *t;
	size_t		  n = 99;

	t_spool_old(&sp, tdir, MAP, old_dbs, NULL);
	t = t_wtxn(sp);
	t_ok(spool_pause_count(t, &n) == 0 && n == 0,
	    "with an empty pauses database");
	t_int_eq(t_put(t, "x.test", "", 1), 0, "that takes pauses");
	t_int_eq(spool_commit(&t), 0, "commit");
	t_spool_reader_opens(&sp, tdir, MAP);
	t_rmtree(tdir);
}

/* spool_pause_key_parse: the keys spool_pause_put makes, and bad ones */
static void
t_key_parse(void)
{
	char d[SPOOL_DOMAIN_MAX], l[SPOOL_LOGIN_MAX];

	t_ok(spool_pause_key_parse("ex.org\0acc\0", 11, d, sizeof(d), l,
		 sizeof(l)) == 0 &&
		strcmp(d, "ex.org") == 0 && strcmp(l, "acc") == 0,
	    "domain and account: %s %s", d, l);
	t_ok(spool_pause_key_parse("ex.org\0\0", 8, d, sizeof(d), l,
		 sizeof(l)) == 0 &&
		strcmp(d, "ex.org") == 0 && l[0] == '\0',
	    "domain-wide");
	t_ok(spool_pause_key_parse("ex.org\0", 7, d, sizeof(d), l, sizeof(l)) ==
		SPOOL_ECORRUPT,
	    "no account part");
	t_ok(spool_pause_key_parse("ex.org", 6, d, sizeof(d), l, sizeof(l)) ==
		SPOOL_ECORRUPT,
	    "no NUL");
	t_ok(spool_pause_key_parse("\0acc\0", 5, d, sizeof(d), l, sizeof(l)) ==
		SPOOL_ECORRUPT,
	    "empty domain");
	t_ok(spool_pause_key_parse("ex.org\0a\0c\0", 11, d, sizeof(d), l,
		 sizeof(l)) == SPOOL_ECORRUPT,
	    "three parts");
	t_ok(spool_pause_key_parse("ex.org\0acc", 10, d, sizeof(d), l,
		 sizeof(l)) == SPOOL_ECORRUPT,
	    "account not terminated");
	t_ok(spool_pause_key_parse("ex.org\0acc\0", 11, d, 6, l, sizeof(l)) ==
		SPOOL_ECORRUPT,
	    "domain longer than its room");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "semantics", t_semantics },
		{ "cap", t_cap },
		{ "older_database", t_older_database },
		{ "key_parse", t_key_parse },
	};

	return T_RUN(cases);
}
