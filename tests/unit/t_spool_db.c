/*
 * Unit tests for the LMDB side of libspool: every record type, the
 * schedule's consistency, events (JSON, counters, outbox, log; the export
 * is t_spool_export),
 * schema version, map full and read-only opening by another process.
 * Each case works in a fresh temporary spool under /tmp.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bounce.h"
#include "buf.h"
#include "json.h"
#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h" /* meta access, fake schema changes, old records */
#include "tap.h"
#include "tfix.h"

#define Q1  "0000000000001AAAAAAA"
#define Q2  "0000000000002AAAAAAA"
#define MAP (INT64_C(64) << 20)

static char tdir[64];

static struct spool *
db_fresh(void)
{
	return t_spool_fresh(tdir, sizeof(tdir), "t_spool_db", MAP);
}

/* ---- accounts, senders, dkim, stoplist, permfail */

static int
count_cb(const void *x, void *arg)
{
	(void)x;
	(*(int *)arg)++;
	return 0;
}

static int
acct_count(const struct spool_account *a, void *arg)
{
	return count_cb(a, arg);
}

static void
t_accounts(void)
{
	struct spool	    *sp = db_fresh();
	struct spool_txn    *t = t_wtxn(sp);
	struct spool_account a, g;
	int		     n = 0;

	memset(&a, 0, sizeof(a));
	(void)str_copy(a.ac_login, sizeof(a.ac_login), "demo.demo@smtpgate");
	(void)str_copy(a.ac_pwhash, sizeof(a.ac_pwhash), "$y$j9T$salt$hash");
	(void)cidr_parse("192.0.2.0/24", &a.ac_ips[0]);
	(void)cidr_parse("2001:db8::/32", &a.ac_ips[1]);
	a.ac_nips = 2;
	a.ac_sandbox = true;
	(void)str_copy(a.ac_callback_url, sizeof(a.ac_callback_url),
	    "http://127.0.0.1:1/cb");
	a.ac_callback_format = SPOOL_CB_STREAM;
	a.ac_senders = SPOOL_SENDERS_REGISTERED;
	a.ac_created = 1764432245;
	t_int_eq(spool_account_put(t, &a), 0, "put");
	t_int_eq(spool_account_get(t, "nobody", &g), SPOOL_ENOTFOUND,
	    "missing");
	t_int_eq(spool_account_get(t, a.ac_login, &g), 0, "get");
	t_ok(memcmp(&a, &g, sizeof(a)) == 0, "every field survives");
	(void)str_copy(a.ac_login, sizeof(a.ac_login), "other");
	a.ac_nips = 0;
	(void)spool_account_put(t, &a);
	t_int_eq(spool_account_iter(t, acct_count, &n), 0, "iter");
	t_int_eq(n, 2, "two accounts");
	t_int_eq(spool_account_by_ip(t, "192.0.2.77", &g), 0, "by ip v4");
	t_str_eq(g.ac_login, "demo.demo@smtpgate", "right account");
	t_int_eq(spool_account_by_ip(t, "2001:db8::5", &g), 0, "by ip v6");
	t_int_eq(spool_account_by_ip(t, "198.51.100.1", &g), SPOOL_ENOTFOUND,
	    "no ip match");
	(void)spool_sender_put(t, "other", "a@b", SPOOL_SENDER_APPROVED);
	(void)spool_stop_put(t, "other", "x@y");
	t_int_eq(spool_account_del(t, "other"), 0, "del");
	t_int_eq(spool_account_get(t, "other", &g), SPOOL_ENOTFOUND, "gone");
	t_ok(!spool_stop_has(t, "other", "x@y"), "its stoplist went too");
	t_int_eq(spool_account_del(t, "other"), SPOOL_ENOTFOUND, "del twice");
	t_int_eq(spool_commit(&t), 0, "commit");
	spool_close(&sp);
}

struct kv_list {
	struct buf b;
};

static int
sender_cb(const char *key, enum spool_sender_status s, void *arg)
{
	struct kv_list *l = arg;

	(void)buf_printf(&l->b, "%s=%s;", key, spool_sender_status_name(s));
	return 0;
}

static void
t_senders(void)
{
	struct spool		*sp = db_fresh();
	struct spool_txn	*t = t_wtxn(sp);
	enum spool_sender_status s;
	struct kv_list		 l;

	t_int_eq(spool_sender_put(t, "L", "Boss@Example.COM",
		     SPOOL_SENDER_APPROVED),
	    0, "put");
	(void)spool_sender_put(t, "L", "@Example.org", SPOOL_SENDER_PROHIBITED);
	(void)spool_sender_put(t, "L2", "x@example.com",
	    SPOOL_SENDER_ONMODERATION);
	t_int_eq(spool_sender_get(t, "L", "boss@example.com", &s), 0,
	    "get lower");
	t_int_eq(s, SPOOL_SENDER_APPROVED, "status");
	t_int_eq(spool_sender_get(t, "L", "BOSS@EXAMPLE.COM", &s), 0,
	    "get upper");
	t_int_eq(spool_sender_get(t, "L2", "boss@example.com", &s),
	    SPOOL_ENOTFOUND, "per account");
	t_int_eq(spool_sender_put(t, "L", "a@b", 9), EINVAL, "bad status");
	buf_init(&l.b, 4096);
	t_int_eq(spool_sender_iter(t, "L", sender_cb, &l), 0, "iter");
	t_str_eq(l.b.data, "@example.org=prohibited;boss@example.com=approved;",
	    "lower-cased, sorted");
	t_int_eq(spool_sender_del(t, "L", "@EXAMPLE.ORG"), 0, "del");
	t_int_eq(spool_sender_get(t, "L", "@example.org", &s), SPOOL_ENOTFOUND,
	    "deleted");
	buf_release(&l.b);
	spool_abort(&t);
	spool_close(&sp);
}

static int
dkim_cb(const struct spool_dkim *d, void *arg)
{
	struct kv_list *l = arg;

	(void)buf_printf(&l->b, "%s/%s/%s/%d%s;", d->dk_domain, d->dk_selector,
	    d->dk_keyfile, (int)d->dk_alg, d->dk_default ? "*" : "");
	return 0;
}

static void
dkim_add(struct spool_txn *t, const char *login, const char *dom,
    const char *sel)
{
	struct spool_dkim d;

	memset(&d, 0, sizeof(d));
	(void)str_copy(d.dk_login, sizeof(d.dk_login), login);
	(void)str_copy(d.dk_domain, sizeof(d.dk_domain), dom);
	(void)str_copy(d.dk_selector, sizeof(d.dk_selector), sel);
	(void)snprintf(d.dk_keyfile, sizeof(d.dk_keyfile), "%s.%s.pem", sel,
	    dom);
	d.dk_alg = sel[0] == 'e' ? SPOOL_DKIM_ED25519 : SPOOL_DKIM_RSA;
	d.dk_default = strcmp(sel, "s1") == 0;
	if (spool_dkim_put(t, &d) != 0)
		t_diag("dkim_put failed");
}

static void
t_dkim(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct kv_list	  l;

	dkim_add(t, "L", "Example.COM", "s1");
	dkim_add(t, "L", "example.com", "ed1");
	dkim_add(t, "L", "example.comx", "s1");
	dkim_add(t, "L", "a.example", "s2");
	dkim_add(t, "M", "example.com", "s9");
	buf_init(&l.b, 4096);
	t_int_eq(spool_dkim_iter(t, "L", "EXAMPLE.com", dkim_cb, &l), 0,
	    "iter domain");
	t_str_eq(l.b.data,
	    "example.com/ed1/ed1.example.com.pem/2;"
	    "example.com/s1/s1.Example.COM.pem/1*;",
	    "one domain only, lower-cased");
	buf_reset(&l.b);
	(void)spool_dkim_iter(t, "L", NULL, dkim_cb, &l);
	t_ok(strstr(l.b.data, "a.example/s2") == l.b.data &&
		strstr(l.b.data, "s9") == NULL,
	    "all of one account: %s", l.b.data);
	t_int_eq(spool_dkim_del(t, "L", "example.com", "s1"), 0,
	    "del selector");
	t_int_eq(spool_dkim_del(t, "L", "example.com", "s1"), SPOOL_ENOTFOUND,
	    "del again");
	t_int_eq(spool_dkim_del(t, "L", "Example.com", NULL), 0, "del domain");
	buf_reset(&l.b);
	(void)spool_dkim_iter(t, "L", NULL, dkim_cb, &l);
	t_str_eq(l.b.data,
	    "a.example/s2/s2.a.example.pem/1;example.comx/s1/"
	    "s1.example.comx.pem/1*;",
	    "prefix delete kept example.comx");
	buf_release(&l.b);
	spool_abort(&t);
	spool_close(&sp);
}

static int
stop_cb(const char *addr, void *arg)
{
	struct kv_list *l = arg;

	(void)buf_printf(&l->b, "%s;", addr);
	return 0;
}

static void
t_stop_permfail(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct kv_list	  l;

	t_int_eq(spool_stop_put(t, "L", "Bad@Example.com"), 0, "stop put");
	(void)spool_stop_put(t, "L", "another@x");
	t_ok(spool_stop_has(t, "L", "bad@example.COM"), "has, any case");
	t_ok(!spool_stop_has(t, "M", "bad@example.com"), "per account");
	buf_init(&l.b, 1024);
	(void)spool_stop_iter(t, "L", stop_cb, &l);
	t_str_eq(l.b.data, "another@x;bad@example.com;", "stop iter");
	t_int_eq(spool_stop_del(t, "L", "BAD@example.com"), 0, "stop del");
	t_ok(!spool_stop_has(t, "L", "bad@example.com"), "stop gone");
	t_int_eq(spool_permfail_put(t, "L", "Gone@Example.com", 1764432245,
		     "550 5.1.1 no such user"),
	    0, "permfail put");
	t_ok(spool_permfail_has(t, "L", "gone@example.com"), "permfail has");
	t_ok(!spool_permfail_has(t, "M", "gone@example.com"),
	    "permfail per account");
	t_int_eq(spool_permfail_del(t, "L", "gone@EXAMPLE.com"), 0,
	    "permfail del");
	t_ok(!spool_permfail_has(t, "L", "gone@example.com"), "permfail gone");
	buf_release(&l.b);
	spool_abort(&t);
	spool_close(&sp);
}

static int
pf_cb(const struct spool_permfail *pf, void *arg)
{
	struct kv_list *l = arg;

	(void)buf_printf(&l->b, "%s/%s/%s/%s/%llu;", pf->pf_login, pf->pf_addr,
	    pf->pf_reason, pf->pf_qid, (unsigned long long)pf->pf_issue);
	return 0;
}

/*
 * Suppression entries (issue 15): a record of the first format (version,
 * tag 1 = when, tag 2 = reply) still decodes; the new fields round-trip;
 * iteration covers one account (after a given address) or all of them.
 */
static void
t_permfail_rec(void)
{
	struct spool	     *sp = db_fresh();
	struct spool_txn     *t = t_wtxn(sp);
	struct spool_permfail pf;
	struct spool_key      k;
	struct kv_list	      l;
	uint8_t		      old[64], be[8];
	size_t		      n = 0;

	old[n++] = SPOOL_REC_VERSION;
	old[n++] = 1;
	spool_be32_put(old + n, 8);
	n += 4;
	spool_be64_put(be, 1764432245);
	memcpy(old + n, be, 8);
	n += 8;
	old[n++] = 2;
	spool_be32_put(old + n, 9);
	n += 4;
	memcpy(old + n, "550 5.1.1", 9);
	n += 9;
	spool_key_init(&k);
	spool_key_str(&k, "A");
	spool_key_lstr(&k, "old@x.test");
	t_int_eq(spool_db_put(t, SPOOL_DB_PERMFAIL, &k, old, n), 0,
	    "old-format record");
	t_int_eq(spool_permfail_get(t, "A", "OLD@x.test", &pf), 0,
	    "old record decodes");
	t_ok(pf.pf_when == 1764432245 &&
		strcmp(pf.pf_reply, "550 5.1.1") == 0 &&
		pf.pf_reason[0] == '\0' && pf.pf_qid[0] == '\0' &&
		pf.pf_issue == 0,
	    "old record: date and reply, no reason/qid/issue");
	memset(&pf, 0, sizeof(pf));
	(void)str_copy(pf.pf_login, sizeof(pf.pf_login), "A");
	(void)str_copy(pf.pf_addr, sizeof(pf.pf_addr), "new@x.test");
	(void)str_copy(pf.pf_reason, sizeof(pf.pf_reason), "bad-mailbox");
	(void)str_copy(pf.pf_qid, sizeof(pf.pf_qid), Q1);
	pf.pf_issue = 7;
	pf.pf_when = 1764432246;
	t_int_eq(spool_permfail_set(t, &pf), 0, "set");
	pf.pf_login[0] = 'B';
	t_int_eq(spool_permfail_set(t, &pf), 0, "set, other account");
	memset(&pf, 0, sizeof(pf));
	t_int_eq(spool_permfail_get(t, "A", "new@x.test", &pf), 0, "get");
	t_ok(pf.pf_when == 1764432246 &&
		strcmp(pf.pf_reason, "bad-mailbox") == 0 &&
		strcmp(pf.pf_qid, Q1) == 0 && pf.pf_issue == 7,
	    "new fields round-trip");
	t_ok(spool_permfail_has(t, "A", "old@x.test"), "has (old record)");
	t_int_eq(spool_permfail_get(t, "C", "new@x.test", &pf), SPOOL_ENOTFOUND,
	    "absent");
	buf_init(&l.b, 1024);
	(void)spool_permfail_iter(t, NULL, NULL, pf_cb, &l);
	t_str_eq(l.b.data,
	    "A/new@x.test/bad-mailbox/" Q1 "/7;A/old@x.test///0;"
	    "B/new@x.test/bad-mailbox/" Q1 "/7;",
	    "iter, every account");
	buf_reset(&l.b);
	(void)spool_permfail_iter(t, "A", "new@x.test", pf_cb, &l);
	t_str_eq(l.b.data, "A/old@x.test///0;",
	    "iter one account after an address");
	t_int_eq(spool_account_del(t, "B"), SPOOL_ENOTFOUND, "no account B");
	buf_release(&l.b);
	spool_abort(&t);
	spool_close(&sp);
}

/* ---- issues */

static int
issue_cb(const struct spool_issue *s, void *arg)
{
	struct kv_list *l = arg;

	(void)buf_printf(&l->b, "%llu:%s:%s:%s;", (unsigned long long)s->su_id,
	    s->su_login, s->su_date, s->su_has_name ? s->su_name : "(null)");
	return 0;
}

static void
t_issues(void)
{
	struct spool	  *sp = db_fresh();
	struct spool_txn  *t = t_wtxn(sp);
	struct spool_issue a, b;
	struct kv_list	   l;

	t_int_eq(spool_issue_find(t, "L", "2026-11-29", "spring", &a),
	    SPOOL_ENOTFOUND, "none yet");
	t_int_eq(spool_issue_find_or_create(t, "L", "2026-11-29", "spring", &a),
	    0, "create");
	t_int_eq((long long)a.su_id, 1, "ids start at 1");
	(void)spool_issue_find_or_create(t, "L", "2026-11-29", NULL, &b);
	t_int_eq((long long)b.su_id, 2, "no name: another issue");
	t_ok(!b.su_has_name, "null name");
	(void)spool_issue_find_or_create(t, "L", "2026-11-29", "", &b);
	t_int_eq((long long)b.su_id, 3, "empty name differs from null");
	(void)spool_issue_find_or_create(t, "L", "2026-11-30", "spring", &b);
	t_int_eq((long long)b.su_id, 4, "another day");
	(void)spool_issue_find_or_create(t, "M", "2026-11-29", "spring", &b);
	t_int_eq((long long)b.su_id, 5, "another account");
	(void)spool_issue_find_or_create(t, "L", "2026-11-29", "spring", &b);
	t_int_eq((long long)b.su_id, 1, "found again");
	b.su_msgs = 3;
	b.su_rcpts = 7;
	b.su_blocked = true;
	t_int_eq(spool_issue_put(t, &b), 0, "put");
	t_int_eq(spool_commit(&t), 0, "commit");
	(void)spool_begin(sp, false, &t);
	t_int_eq(spool_issue_find(t, "L", "2026-11-29", "spring", &a), 0,
	    "find in read txn");
	t_ok(a.su_msgs == 3 && a.su_rcpts == 7 && a.su_blocked &&
		strcmp(a.su_name, "spring") == 0 &&
		strcmp(a.su_date, "2026-11-29") == 0,
	    "fields kept");
	buf_init(&l.b, 1024);
	(void)spool_issue_iter(t, issue_cb, &l);
	t_str_eq(l.b.data,
	    "1:L:2026-11-29:spring;2:L:2026-11-29:(null);3:L:2026-11-29:;"
	    "4:L:2026-11-30:spring;5:M:2026-11-29:spring;",
	    "iter by id");
	t_int_eq(spool_issue_find_or_create(t, "L", "2026-12-01", NULL, &a),
	    EROFS, "no create in a read txn");
	t_int_eq(spool_issue_find(t, "L", "bad-date", NULL, &a), EINVAL,
	    "bad date");
	buf_release(&l.b);
	spool_abort(&t);
	spool_close(&sp);
}

/* ---- messages, recipients, schedule */

static struct spool_msg *
msg_new(const char *qid)
{
	struct spool_msg *m = calloc(1, sizeof(*m));

	(void)str_copy(m->sm_qid, sizeof(m->sm_qid), qid);
	(void)str_copy(m->sm_login, sizeof(m->sm_login), "L");
	m->sm_arrival = 1764432245;
	m->sm_size = 4096;
	m->sm_issue = 1;
	(void)str_copy(m->sm_from, sizeof(m->sm_from), "s@example.com");
	(void)str_copy(m->sm_message_id, sizeof(m->sm_message_id), "<id@x>");
	(void)str_copy(m->sm_letter_id, sizeof(m->sm_letter_id), "L-1");
	m->sm_has_letter_id = true;
	m->sm_nrcpt = m->sm_npending = 2;
	(void)str_copy(m->sm_dkim, sizeof(m->sm_dkim),
	    "DKIM-Signature: v=1;\r\n\tb=x\r\n");
	m->sm_body_off = 333;
	return m;
}

static void
rcpt_init(struct spool_rcpt *r, const char *qid, uint32_t idx, int64_t next)
{
	memset(r, 0, sizeof(*r));
	(void)str_copy(r->sr_qid, sizeof(r->sr_qid), qid);
	r->sr_idx = idx;
	(void)snprintf(r->sr_addr, sizeof(r->sr_addr), "r%u@example.org", idx);
	r->sr_state = SPOOL_RS_QUEUED;
	r->sr_next = next;
}

static int
sched_cb(int64_t due, const char *qid, uint32_t idx, void *arg)
{
	struct kv_list *l = arg;

	(void)buf_printf(&l->b, "%lld:%c:%u;", (long long)due, qid[12], idx);
	return 0;
}

static const char *
sched_list(struct spool_txn *t, int64_t now, struct kv_list *l)
{
	buf_reset(&l->b);
	if (spool_sched_due(t, now, 1000, sched_cb, l) != 0)
		return "(error)";
	return l->b.data != NULL ? l->b.data : "";
}

static int
rcpt_idx_cb(const struct spool_rcpt *r, void *arg)
{
	struct kv_list *l = arg;

	(void)buf_printf(&l->b, "%u,", r->sr_idx);
	return 0;
}

static int
msg_cb(const struct spool_msg *m, void *arg)
{
	struct kv_list *l = arg;

	(void)buf_printf(&l->b, "%c;", m->sm_qid[12]);
	return 0;
}

static void
t_messages(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct spool_msg *m = msg_new(Q2), *g = calloc(1, sizeof(*g));
	struct spool_rcpt r, gr;
	struct kv_list	  l;
	uint32_t	  i;

	buf_init(&l.b, 1 << 16);
	t_int_eq(spool_msg_put(t, m), 0, "msg put");
	t_int_eq(spool_msg_get(t, Q2, g), 0, "msg get");
	t_ok(memcmp(m, g, sizeof(*m)) == 0, "every field survives");
	t_int_eq(spool_msg_get(t, Q1, g), SPOOL_ENOTFOUND, "missing");
	t_int_eq(spool_msg_get(t, "../x", g), EINVAL, "bad qid");
	(void)str_copy(m->sm_qid, sizeof(m->sm_qid), Q1);
	(void)spool_msg_put(t, m);
	(void)spool_msg_iter(t, msg_cb, &l);
	t_str_eq(l.b.data, "1;2;", "msg iter in qid order");
	rcpt_init(&r, Q1, 0, 100);
	(void)str_copy(r.sr_reply, sizeof(r.sr_reply), "451 4.7.1 later");
	(void)str_copy(r.sr_hop, sizeof(r.sr_hop), "mx[192.0.2.2]:25");
	r.sr_attempts = 2;
	r.sr_last = 90;
	t_int_eq(spool_rcpt_put(t, &r), 0, "rcpt put");
	t_int_eq(spool_rcpt_get(t, Q1, 0, &gr), 0, "rcpt get");
	t_ok(memcmp(&r, &gr, sizeof(r)) == 0, "rcpt fields survive");
	for (i = 1; i <= 300; i++) {
		rcpt_init(&r, Q1, i, 1000 + i);
		r.sr_state = SPOOL_RS_DELIVERED;
		(void)spool_rcpt_put(t, &r);
	}
	buf_reset(&l.b);
	(void)spool_rcpt_iter(t, Q1, rcpt_idx_cb, &l);
	t_ok(strncmp(l.b.data, "0,1,2,", 6) == 0 &&
		strstr(l.b.data, "254,255,256,257,") != NULL && l.b.len > 900,
	    "rcpt iter in index order");
	t_int_eq(spool_rcpt_iter(t, Q2, rcpt_idx_cb, &l), 0,
	    "other message: none");
	free(m);
	free(g);
	buf_release(&l.b);
	spool_abort(&t);
	spool_close(&sp);
}

static void
t_schedule(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct spool_msg *m = msg_new(Q1);
	struct spool_rcpt r;
	struct kv_list	  l;
	int64_t		  due;

	buf_init(&l.b, 4096);
	(void)spool_msg_put(t, m);
	t_int_eq(spool_sched_next(t, &due), SPOOL_ENOTFOUND, "empty schedule");
	rcpt_init(&r, Q1, 0, 100);
	(void)spool_rcpt_put(t, &r);
	rcpt_init(&r, Q1, 1, 50);
	(void)spool_rcpt_put(t, &r);
	t_str_eq(sched_list(t, 49, &l), "", "nothing due before 50");
	t_str_eq(sched_list(t, 100, &l), "50:1:1;100:1:0;",
	    "both due, time order");
	t_int_eq(spool_sched_next(t, &due), 0, "next");
	t_int_eq(due, 50, "next is 50");
	r.sr_state = SPOOL_RS_DEFERRED;
	r.sr_next = 300;
	(void)spool_rcpt_put(t, &r);
	t_str_eq(sched_list(t, 1000, &l), "100:1:0;300:1:1;",
	    "deferred: moved");
	r.sr_state = SPOOL_RS_DELIVERED;
	(void)spool_rcpt_put(t, &r);
	t_str_eq(sched_list(t, 1000, &l), "100:1:0;", "delivered: unscheduled");
	r.sr_state = SPOOL_RS_QUEUED;
	r.sr_next = 10;
	(void)spool_rcpt_put(t, &r);
	t_int_eq(spool_msg_hold(t, Q1, true, 0), 0, "hold");
	t_str_eq(sched_list(t, 1000, &l), "", "held: nothing scheduled");
	rcpt_init(&r, Q1, 2, 5);
	(void)spool_rcpt_put(t, &r);
	t_str_eq(sched_list(t, 1000, &l), "", "put while held: not scheduled");
	(void)spool_msg_get(t, Q1, m);
	t_ok(m->sm_held, "sm_held set");
	t_int_eq(spool_msg_hold(t, Q1, false, 777), 0, "release");
	t_str_eq(sched_list(t, 1000, &l), "777:1:0;777:1:1;777:1:2;",
	    "release: all due now");
	l.b.len = 0;
	(void)spool_sched_due(t, 1000, 2, sched_cb, &l);
	t_str_eq(l.b.data, "777:1:0;777:1:1;", "max respected");
	t_int_eq(spool_msg_del(t, Q1), 0, "msg del");
	t_str_eq(sched_list(t, 10000, &l), "", "schedule emptied");
	t_int_eq(spool_rcpt_get(t, Q1, 0, &r), SPOOL_ENOTFOUND,
	    "recipients gone");
	t_int_eq(spool_msg_get(t, Q1, m), SPOOL_ENOTFOUND, "message gone");
	free(m);
	buf_release(&l.b);
	spool_abort(&t);
	spool_close(&sp);
}

/* ---- events */

struct log_list {
	struct buf b;
	uint64_t   seqs[64];
	size_t	   n;
	char	   json[4096];
};

static int
log_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct log_list *l = arg;

	(void)buf_printf(&l->b, "%llu,", (unsigned long long)seq);
	if (l->n < 64)
		l->seqs[l->n++] = seq;
	(void)str_ncopy(l->json, sizeof(l->json), json,
	    len < 4095 ? len : 4095);
	return 0;
}

static int
outbox_cb(uint64_t seq, int64_t dt, const char *json, size_t len, void *arg)
{
	struct log_list *l = arg;

	(void)buf_printf(&l->b, "%llu:%lld:%c,", (unsigned long long)seq,
	    (long long)dt, len > 0 ? json[0] : '?');
	return 0;
}

static const char *
jstr(const struct json_val *o, const char *k)
{
	const struct json_val *v = json_get(o, k);

	return v != NULL ? json_string(v) : NULL;
}

static void
check_event_json(const char *json)
{
	struct json_val	      *v;
	const struct json_val *is, *gate;
	char		       err[128];
	int64_t		       n = 0;

	v = json_parse(json, err, sizeof(err));
	if (!t_ok(v != NULL, "event JSON parses (%s)", err))
		return;
	t_ok(jstr(v, "id") != NULL && strlen(jstr(v, "id")) > 9 &&
		jstr(v, "id")[8] == '-',
	    "id is instance-seq: %s", jstr(v, "id"));
	t_str_eq(jstr(v, "event"), "bounced", "event");
	t_str_eq(jstr(v, "class"), "remote", "class");
	t_str_eq(jstr(v, "dt"), "2025-11-29T16:04:05Z", "dt");
	t_str_eq(jstr(v, "account"), "L", "account");
	t_str_eq(jstr(v, "queue_id"), Q1, "queue_id");
	is = json_get(v, "issue");
	t_ok(is != NULL && json_integer(json_get(is, "id"), &n) && n == 1,
	    "issue.id");
	t_str_eq(is != NULL ? jstr(is, "name") : NULL, "spring", "issue.name");
	t_str_eq(is != NULL ? jstr(is, "date") : NULL, "2026-11-29",
	    "issue.date");
	gate = json_get(v, "gate");
	t_ok(gate != NULL && json_type(json_get(gate, "uniq")) == JSON_STRING &&
		strcmp(jstr(gate, "uniq"), "L-1") == 0,
	    "gate.uniq");
	t_str_eq(jstr(v, "from"), "s@example.com", "from");
	t_str_eq(jstr(v, "to"), "r@example.org", "to");
	t_ok(json_type(json_get(v, "message_id")) == JSON_NULL,
	    "message_id null");
	t_str_eq(jstr(v, "msg"), "550 5.1.1 \"quoted\" \xc3\xa9",
	    "msg escaped");
	t_ok(json_integer(json_get(v, "attempt"), &n) && n == 3, "attempt");
	t_ok(json_get(v, "sandbox") != NULL &&
		json_type(json_get(v, "sandbox")) == JSON_BOOL,
	    "sandbox");
	t_str_eq(jstr(v, "hop"), "mx[192.0.2.1]:25", "hop when given");
	t_ok(json_get(v, "tls") == NULL, "tls omitted");
	json_val_free(&v);
}

static void
t_events(void)
{
	struct spool	    *sp = db_fresh();
	struct spool_txn    *t = t_wtxn(sp);
	struct spool_account a;
	struct spool_issue   is;
	struct spool_event   ev;
	struct log_list	     l;
	uint64_t	     seq = 0;

	memset(&a, 0, sizeof(a));
	(void)str_copy(a.ac_login, sizeof(a.ac_login), "L");
	(void)str_copy(a.ac_callback_url, sizeof(a.ac_callback_url),
	    "http://127.0.0.1:9/");
	(void)spool_account_put(t, &a);
	(void)str_copy(a.ac_login, sizeof(a.ac_login), "NOCB");
	a.ac_callback_url[0] = '\0';
	(void)spool_account_put(t, &a);
	(void)spool_issue_find_or_create(t, "L", "2026-11-29", "spring", &is);
	t_ev_init(&ev, SPOOL_EV_BOUNCED, SPOOL_CL_REMOTE, "L", Q1, is.su_id);
	ev.ev_uniq = "L-1";
	ev.ev_msg = "550 5.1.1 \"quoted\" \xc3\xa9";
	ev.ev_attempt = 3;
	ev.ev_hop = "mx[192.0.2.1]:25";
	ev.ev_category = "bad-mailbox";
	t_int_eq(spool_event_add(t, &ev, &seq), 0, "add bounced");
	t_int_eq((long long)seq, 1, "seq 1");
	buf_init(&l.b, 4096);
	l.n = 0;
	(void)spool_log_iter(t, false, 0, log_cb, &l);
	check_event_json(l.json);
	t_ok(strstr(l.json,
		 "\"event\":\"bounced\",\"class\":\"remote\",\"dt\"") != NULL,
	    "CONTRACT key order");
	t_ok(strstr(l.json, ",\"category\":\"bad-mailbox\"}") != NULL,
	    "category last (issue 15): %s", l.json);
	t_ev_init(&ev, SPOOL_EV_DELIVERED, SPOOL_CL_NONE, "L", Q2, is.su_id);
	(void)spool_event_add(t, &ev, &seq);
	l.n = 0;
	(void)spool_log_iter(t, false, 2, log_cb, &l);
	t_ok(strstr(l.json, "\"class\"") == NULL &&
		strstr(l.json, "\"hop\"") == NULL &&
		strstr(l.json, "\"category\"") == NULL,
	    "no class or category on delivered, no hop when not given");
	t_ev_init(&ev, SPOOL_EV_DEFERRED, SPOOL_CL_NONE, "L", Q1, is.su_id);
	ev.ev_tls = "TLSv1.3";
	(void)spool_event_add(t, &ev, NULL);
	t_ev_init(&ev, SPOOL_EV_BOUNCED, SPOOL_CL_POLICY, "L", Q1, is.su_id);
	(void)spool_event_add(t, &ev, NULL);
	t_ev_init(&ev, SPOOL_EV_BOUNCED, SPOOL_CL_EXPIRED, "L", Q1, is.su_id);
	(void)spool_event_add(t, &ev, &seq);
	l.n = 0;
	(void)spool_log_iter(t, false, seq, log_cb, &l);
	t_ok(strstr(l.json, "\"category\":\"expired\"") != NULL,
	    "an expiry without a category is \"expired\"");
	t_ev_init(&ev, SPOOL_EV_BOUNCED, SPOOL_CL_ADMIN, "NOCB", Q2, 0);
	t_int_eq(spool_event_add(t, &ev, &seq), 0, "event without issue");
	l.n = 0;
	(void)spool_log_iter(t, false, seq, log_cb, &l);
	t_ok(strstr(l.json,
		 "\"issue\":{\"id\":null,\"name\":null,\"date\":null}") != NULL,
	    "issue 0: nulls");
	t_ev_init(&ev, SPOOL_EV_DELIVERED, SPOOL_CL_NONE, "GHOST", Q2, 0);
	t_int_eq(spool_event_add(t, &ev, NULL), 0,
	    "event for an unknown account");
	(void)spool_issue_get(t, is.su_id, &is);
	t_ok(is.su_delivered == 1 && is.su_deferred == 1 &&
		is.su_bounced_remote == 1 && is.su_bounced_policy == 1 &&
		is.su_bounced_expired == 1 && is.su_bounced_admin == 0,
	    "issue counters by type and class");
	t_ok(is.su_bounced_cat[BOUNCE_BAD_MAILBOX] == 1 &&
		is.su_bounced_cat[BOUNCE_POLICY] == 1 &&
		is.su_bounced_cat[BOUNCE_EXPIRED] == 1 &&
		is.su_bounced_cat[BOUNCE_OTHER] == 0,
	    "issue counters by category, stored and read back (issue 15)");

	buf_reset(&l.b);
	(void)spool_log_iter(t, false, 0, log_cb, &l);
	t_str_eq(l.b.data, "1,2,3,4,5,6,7,", "log forward");
	buf_reset(&l.b);
	(void)spool_log_iter(t, true, 0, log_cb, &l);
	t_str_eq(l.b.data, "7,6,5,4,3,2,1,", "log reverse");
	buf_reset(&l.b);
	(void)spool_log_iter(t, true, 4, log_cb, &l);
	t_str_eq(l.b.data, "4,3,2,1,", "log reverse from 4");
	buf_reset(&l.b);
	(void)spool_log_iter(t, false, 6, log_cb, &l);
	t_str_eq(l.b.data, "6,7,", "log forward from 6");
	buf_reset(&l.b);
	(void)spool_log_iter(t, true, 100, log_cb, &l);
	t_ok(strncmp(l.b.data, "7,6,", 4) == 0, "reverse from past the end");
	buf_reset(&l.b);
	(void)spool_log_iter_qid(t, Q2, log_cb, &l);
	t_str_eq(l.b.data, "2,6,7,", "log of one message");
	buf_reset(&l.b);
	(void)spool_outbox_iter(t, "L", 0, outbox_cb, &l);
	t_str_eq(l.b.data,
	    "1:1764432245:{,2:1764432245:{,3:1764432245:{,4:1764432245:{,"
	    "5:1764432245:{,",
	    "outbox: callback accounts only, with the event time");
	t_int_eq(spool_outbox_del(t, "L", 2), 0, "outbox del");
	t_int_eq(spool_outbox_del(t, "L", 2), SPOOL_ENOTFOUND,
	    "outbox del twice");
	buf_reset(&l.b);
	(void)spool_outbox_iter(t, "L", 3, outbox_cb, &l);
	t_str_eq(l.b.data, "3:1764432245:{,4:1764432245:{,5:1764432245:{,",
	    "outbox from 3");
	buf_reset(&l.b);
	(void)spool_outbox_iter(t, "NOCB", 0, outbox_cb, &l);
	t_str_eq(l.b.data, "", "no outbox for an account without a URL");
	t_int_eq(spool_commit(&t), 0, "commit");
	buf_release(&l.b);
	spool_close(&sp);
}

static void
t_version(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);

	t_int_eq(spool_db_meta_put_u64(t, "version", 999), 0,
	    "fake a newer schema");
	(void)spool_commit(&t);
	spool_close(&sp);
	t_int_eq(spool_open(tdir, MAP, MAP, 0, &sp), SPOOL_EVERSION,
	    "open: version mismatch");
	t_ok(sp == NULL, "no handle");
	t_int_eq(spool_open(tdir, MAP, MAP, SPOOL_RDONLY, &sp), SPOOL_EVERSION,
	    "read-only too");
	t_int_eq(spool_open("/nonexistent/x", MAP, MAP, SPOOL_RDONLY, &sp),
	    ENOENT, "read-only of a missing spool: ENOENT");
}

static void
t_map_full(void)
{
	struct spool	 *sp;
	struct spool_txn *t;
	struct spool_msg *m = msg_new(Q1);
	char		  dir[] = "/tmp/t_spool_full.XXXXXX", cmd[64];
	int		  rc = 0, i;

	if (mkdtemp(dir) == NULL)
		abort();
	t_int_eq(spool_open(dir, 256 * 1024, 256 * 1024, 0, &sp), 0,
	    "open with a 256 KiB map and no room to grow");
	t = t_wtxn(sp);
	memset(m->sm_dkim, 'x', sizeof(m->sm_dkim) - 1);
	for (i = 0; i < 1000 && rc == 0; i++) {
		(void)snprintf(m->sm_qid, sizeof(m->sm_qid), "%020d", i);
		rc = spool_msg_put(t, m);
	}
	t_int_eq(rc, SPOOL_EFULL, "put until SPOOL_EFULL");
	t_ok(i > 5 && i < 1000, "after %d records", i);
	spool_abort(&t);
	t = t_wtxn(sp);
	(void)snprintf(m->sm_qid, sizeof(m->sm_qid), "%020d", 1);
	t_int_eq(spool_msg_put(t, m), 0, "usable again after abort");
	t_int_eq(spool_commit(&t), 0, "commit");
	t_ok(strstr(spool_strerror(SPOOL_EFULL), "lmdb_map_max") != NULL,
	    "EFULL text");
	spool_close(&sp);
	free(m);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		t_diag("cannot remove %s", dir);
}

/* Child: open read-only (optionally as another uid in the owner's group)
 * and read the account; exit 0 on success. */
static int
ro_child(bool drop, gid_t group)
{
	struct spool	    *sp;
	struct spool_txn    *t;
	struct spool_account a;
	pid_t		     pid;
	int		     st;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		if (drop &&
		    (setgroups(1, &group) == -1 || setgid(65534) == -1 ||
			setuid(65534) == -1))
			_exit(3);
		if (spool_open(tdir, MAP, MAP, SPOOL_RDONLY, &sp) != 0)
			_exit(4);
		if (spool_begin(sp, true, &t) != EROFS ||
		    spool_begin(sp, false, &t) != 0 ||
		    spool_account_get(t, "L", &a) != 0)
			_exit(5);
		(void)spool_renew(t);
		spool_abort(&t);
		spool_close(&sp);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void
t_readonly(void)
{
	struct spool	    *sp = db_fresh();
	struct spool_txn    *t = t_wtxn(sp);
	struct spool_account a;
	struct stat	     ds, ls, dbs;
	char		     p[128];

	memset(&a, 0, sizeof(a));
	(void)str_copy(a.ac_login, sizeof(a.ac_login), "L");
	(void)spool_account_put(t, &a);
	(void)spool_commit(&t);
	(void)snprintf(p, sizeof(p), "%s/db/data.mdb", tdir);
	t_ok(stat(p, &ds) == 0 && (ds.st_mode & 0777) == 0640,
	    "data.mdb 0640 under umask 077");
	(void)snprintf(p, sizeof(p), "%s/db/lock.mdb", tdir);
	t_ok(stat(p, &ls) == 0 && (ls.st_mode & 0777) == 0660,
	    "lock.mdb 0660 under umask 077");
	(void)snprintf(p, sizeof(p), "%s/db", tdir);
	t_ok(stat(p, &dbs) == 0 && (dbs.st_mode & 0777) == 0750, "db/ 0750");
	spool_close(&sp); /* one handle per process: the child opens its own */
	t_int_eq(ro_child(false, 0), 0, "read-only open in another process");
	if (geteuid() != 0) {
		t_ok(true, "# SKIP other uid: not root");
		return;
	}
	(void)chmod(tdir, 0755);
	t_int_eq(ro_child(true, ds.st_gid), 0,
	    "read-only as another uid in the group");
}

/* ---- record encoding */

static void
t_records(void)
{
	struct spool	 *sp = db_fresh();
	struct spool_txn *t = t_wtxn(sp);
	struct spool_msg *m = msg_new(Q1), *g = calloc(1, sizeof(*g));
	struct spool_key  k;
	struct buf	  b;
	size_t		  n, full, bad = 0;
	uint8_t		  extra[6] = { 250, 0, 0, 0, 1, 'x' };

	buf_init(&b, SPOOL_REC_MAX);
	t_int_eq(spool_rec_enc_msg(m, &b), 0, "encode");
	full = b.len;
	t_ok(b.data[0] == SPOOL_REC_VERSION, "starts with the version byte");
	for (n = 1; n < full; n++)
		if (spool_rec_dec_msg(b.data, n, g) == 0 && n != full) {
			/* a cut on a field boundary decodes, with fields missing */
			if (memcmp(m, g, sizeof(*m)) == 0)
				bad++;
		}
	t_int_eq((long long)bad, 0,
	    "no truncation decodes to the whole record");
	t_int_eq(spool_rec_dec_msg(b.data, 0, g), SPOOL_ECORRUPT,
	    "empty: corrupt");
	(void)buf_append(&b, extra, sizeof(extra));
	t_int_eq(spool_rec_dec_msg(b.data, b.len, g), 0, "unknown tag ignored");
	t_ok(memcmp(m, g, sizeof(*m)) == 0, "and the rest decodes");
	t_int_eq(spool_rec_dec_msg(b.data, b.len - 1, g), SPOOL_ECORRUPT,
	    "cut inside a value");
	b.data[0] = 2;
	t_int_eq(spool_rec_dec_msg(b.data, b.len, g), SPOOL_ECORRUPT,
	    "unknown version");
	spool_key_init(&k);
	spool_key_raw(&k, Q2, 20);
	t_int_eq(spool_db_put(t, SPOOL_DB_MESSAGES, &k, "\1\3\0\0\0\x7f", 6), 0,
	    "store garbage");
	t_int_eq(spool_msg_get(t, Q2, g), SPOOL_ECORRUPT,
	    "get: SPOOL_ECORRUPT");
	memset(m->sm_subject, 's', sizeof(m->sm_subject));
	buf_reset(&b);
	t_int_eq(spool_rec_enc_msg(m, &b), SPOOL_ETOOBIG,
	    "unterminated field refused");
	free(m);
	free(g);
	buf_release(&b);
	spool_abort(&t);
	spool_close(&sp);
}

static const struct t_case cases[] = {
	{ "accounts", t_accounts },
	{ "senders", t_senders },
	{ "dkim", t_dkim },
	{ "stop_permfail", t_stop_permfail },
	{ "permfail_rec", t_permfail_rec },
	{ "issues", t_issues },
	{ "messages", t_messages },
	{ "schedule", t_schedule },
	{ "events", t_events },
	{ "version", t_version },
	{ "map_full", t_map_full },
	{ "readonly", t_readonly },
	{ "records", t_records },
};

int
main(void)
{
	(void)umask(077); /* modes must not depend on it */
	return T_RUN_RMTREE(cases, tdir);
}
