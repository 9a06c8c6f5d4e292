/*
 * t_spool_outbox: the per-account callback outbox (listing accounts,
 * reading one account, ageing out with counters, the migration from the
 * first outbox) and the finished-message markers.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h" /* spool_outbox_put, and the first outbox to migrate */
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(64) << 20)

static char tdir[64];

static struct spool *
db_fresh(void)
{
	return t_spool_fresh(tdir, sizeof(tdir), "t_spool_outbox", MAP);
}

static int
list_cb(uint64_t seq, int64_t dt, const char *json, size_t len, void *arg)
{
	(void)buf_printf(arg, "%llu@%lld:%.*s,", (unsigned long long)seq,
	    (long long)dt, (int)len, json);
	return 0;
}

static const char *
list(struct spool_txn *t, const char *login, struct buf *b)
{
	buf_reset(b);
	(void)spool_outbox_iter(t, login, 0, list_cb, b);
	return b->data != NULL ? b->data : "";
}

/* Every account with entries, in order, with its oldest time. */
static const char *
accounts(struct spool_txn *t, struct buf *b)
{
	char	login[SPOOL_LOGIN_MAX] = "";
	int64_t dt;

	buf_reset(b);
	while (spool_outbox_next_account(t, login, login, &dt) == 0)
		(void)buf_printf(b, "%s@%lld,", login, (long long)dt);
	return b->data != NULL ? b->data : "";
}

static void
t_accounts(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct buf	  b;
	char		  login[SPOOL_LOGIN_MAX];

	buf_init(&b, 1 << 20);
	t_int_eq(spool_outbox_next_account(t, "", login, NULL), SPOOL_ENOTFOUND,
	    "empty outbox");
	(void)spool_outbox_put(t, "b", 1, 100, "{1}", 3);
	(void)spool_outbox_put(t, "a", 2, 101, "{2}", 3);
	(void)spool_outbox_put(t, "ab", 3, 102, "{3}", 3);
	(void)spool_outbox_put(t, "b", 4, 103, "{4}", 3);
	(void)spool_outbox_put(t, "a", 5, 104, "{5}", 3);
	t_int_eq(spool_outbox_put(t, "", 6, 1, "{}", 2), EINVAL,
	    "no entry without a login");
	t_str_eq(accounts(t, &b), "a@101,ab@102,b@100,",
	    "accounts in order, oldest time");
	t_str_eq(list(t, "a", &b), "2@101:{2},5@104:{5},",
	    "one account, sequence order");
	t_str_eq(list(t, "b", &b), "1@100:{1},4@103:{4},", "another account");
	t_str_eq(list(t, "c", &b), "", "an account without entries");
	t_int_eq(spool_outbox_del(t, "a", 2), 0, "del");
	t_int_eq(spool_outbox_del(t, "b", 2), SPOOL_ENOTFOUND,
	    "del: the account matters");
	(void)spool_outbox_del(t, "a", 5);
	t_str_eq(accounts(t, &b), "ab@102,b@100,",
	    "an emptied account is no longer listed");
	t_int_eq(spool_outbox_next_account(t, "b", login, NULL),
	    SPOOL_ENOTFOUND, "after the last");
	t_int_eq(spool_commit(&t), 0, "commit");
	buf_release(&b);
	spool_close(&sp);
}

static void
t_drop_old(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct buf	  b;
	uint64_t	  seq, v;
	size_t		  n;

	buf_init(&b, 1 << 20);
	for (seq = 1; seq <= 10; seq++) {
		(void)spool_outbox_put(t, "dead", seq, (int64_t)seq * 10, "{}",
		    2);
		(void)spool_outbox_put(t, "live", 100 + seq, (int64_t)seq * 10,
		    "{}", 2);
	}
	t_int_eq(spool_outbox_drop_old(t, "dead", 55, 3, &n), 0,
	    "drop, at most 3");
	t_int_eq((long long)n, 3, "3 dropped");
	t_int_eq(spool_outbox_drop_old(t, "dead", 55, 100, &n), 0,
	    "drop the rest that is old");
	t_int_eq((long long)n, 2, "then 2: the one at 60 is younger");
	t_str_eq(list(t, "dead", &b),
	    "6@60:{},7@70:{},8@80:{},9@90:{},10@100:{},", "young kept");
	t_int_eq(spool_outbox_drop_old(t, "dead", 55, 100, &n), 0, "again");
	t_int_eq((long long)n, 0, "nothing more");
	(void)spool_outbox_dropped(t, "dead", &v);
	t_int_eq((long long)v, 5, "the account's counter");
	(void)spool_outbox_dropped(t, "live", &v);
	t_int_eq((long long)v, 0, "another account: untouched");
	t_str_eq(accounts(t, &b), "dead@60,live@10,",
	    "the other account keeps its entries");
	(void)spool_outbox_drop_old(t, "live", INT64_MAX, 100, &n);
	t_int_eq((long long)n, 10, "drop all");
	(void)spool_outbox_dropped(t, NULL, &v);
	t_int_eq((long long)v, 15, "the total");
	t_int_eq(spool_commit(&t), 0, "commit");
	buf_release(&b);
	spool_close(&sp);
}

/* An outbox entry as the first outbox stored it: BE64 seq -> login NUL JSON. */
static int
old_put(struct spool_txn *t, uint64_t seq, const char *login, const char *json)
{
	struct spool_key k;
	struct buf	 v;
	int		 rc;

	spool_key_init(&k);
	spool_key_be64(&k, seq);
	buf_init(&v, 4096);
	(void)buf_append(&v, login, strlen(login) + 1);
	(void)buf_puts(&v, json);
	rc = spool_db_put(t, SPOOL_DB_OUTBOX, &k, v.data, v.len);
	buf_release(&v);
	return rc;
}

static void
t_migrate(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct buf	  b;
	uint64_t	  seq;
	size_t		  nold = 0, nb = 0;
	int64_t		  t0 = (int64_t)time(NULL);

	buf_init(&b, 64 << 20);
	/* more than one migration transaction (10,000 entries each) */
	for (seq = 1; seq <= 25001; seq++)
		(void)old_put(t, seq, seq % 2 ? "odd" : "even", "{\"id\":1}");
	t_int_eq(spool_commit(&t), 0, "an outbox of the first kind");
	spool_close(&sp);
	t_int_eq(spool_open(tdir, MAP, MAP, SPOOL_RDONLY, &sp), 0,
	    "a reader opens it");
	t = NULL;
	(void)spool_begin(sp, false, &t);
	t_str_eq(accounts(t, &b), "", "a reader does not migrate");
	spool_abort(&t);
	spool_close(&sp);
	t_int_eq(spool_open(tdir, MAP, MAP, 0, &sp), 0,
	    "a writer opens it and migrates");
	t = t_wtxn(sp);
	(void)spool_db_iter(t, SPOOL_DB_OUTBOX, NULL, 0, false, t_count_rec,
	    &nold);
	t_int_eq((long long)nold, 0, "the first outbox is empty");
	(void)list(t, "odd", &b);
	t_ok(strncmp(b.data, "1@", 2) == 0 &&
		strstr(b.data, ":{\"id\":1},3@") != NULL,
	    "entries keep their sequence and JSON");
	t_ok(strtoll(b.data + 2, NULL, 10) >= t0, "and age from the migration");
	for (const char *p = b.data; (p = strchr(p, ',')) != NULL; p++)
		nb++;
	t_int_eq((long long)nb, 12501, "every odd entry");
	(void)list(t, "even", &b);
	t_ok(strstr(b.data, "25000@") != NULL, "the even ones too");
	spool_abort(&t);
	spool_close(&sp);
	t_int_eq(spool_open(tdir, MAP, MAP, 0, &sp), 0,
	    "opening again: nothing to do");
	spool_close(&sp);
	buf_release(&b);
}

static void
t_done(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct spool_msg *m = calloc(1, sizeof(*m));
	int64_t		  when = 0;
	size_t		  n;

	/* QIDs: 13 hex digits of arrival microseconds; 1e6 us = 0xF4240 */
	(void)str_copy(m->sm_qid, sizeof(m->sm_qid),
	    "00000000F4240AAAAAAA"); /* 1 s */
	(void)str_copy(m->sm_login, sizeof(m->sm_login), "L");
	m->sm_nrcpt = 1;
	(void)spool_msg_put(t, m);
	t_int_eq(spool_done_get(t, m->sm_qid, NULL), SPOOL_ENOTFOUND,
	    "no marker while pending");
	t_int_eq(spool_msg_del(t, m->sm_qid), 0, "message finished");
	t_int_eq(spool_done_get(t, m->sm_qid, &when), 0, "marker left");
	t_ok(when > 0, "with the time");
	t_int_eq(spool_msg_del(t, m->sm_qid), SPOOL_ENOTFOUND,
	    "deleting again");
	(void)spool_done_put(t, "00000001E8480AAAAAAA", 5); /* 2 s */
	(void)spool_done_put(t, "00000002DC6C0AAAAAAA", 5); /* 3 s */
	t_int_eq(spool_done_put(t, "nope", 5), EINVAL, "not a QID");
	t_int_eq(spool_done_prune(t, 3, 100, &n), 0, "prune before 3 s");
	t_int_eq((long long)n, 2, "two older ones");
	t_int_eq(spool_done_get(t, "00000002DC6C0AAAAAAA", NULL), 0,
	    "the younger one stays");
	(void)spool_done_put(t, "000000000F424AAAAAAA", 5); /* 0.1 s */
	(void)spool_done_put(t, "00000000186A0AAAAAAA", 5); /* 0.1 s */
	t_int_eq(spool_done_prune(t, 10, 1, &n), 0, "prune at most 1");
	t_int_eq((long long)n, 1, "one");
	t_int_eq(spool_done_get(t, "000000000F424AAAAAAA", NULL),
	    SPOOL_ENOTFOUND, "the oldest");
	t_int_eq(spool_commit(&t), 0, "commit");
	free(m);
	spool_close(&sp);
}

static const struct t_case cases[] = {
	{ "accounts", t_accounts },
	{ "drop_old", t_drop_old },
	{ "migrate", t_migrate },
	{ "done", t_done },
};

int
main(void)
{
	return T_RUN_RMTREE(cases, tdir);
}
