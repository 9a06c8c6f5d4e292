/*
 * Unit tests for the TLS reporting counters of libspool (spool_tlsrpt.c,
 * issue 17 item 4): counting per day, domain, policy, result and MX host
 * with the policy strings, the iteration of one day (and one domain), the
 * cap of rows per day, the pruning of old days, and an older database;
 * failures per sending and receiving IP and EHLO name (RFC 8460 4.4), a
 * row stored before those fields, and the cap of failure rows per domain.
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
	t_int_eq(spool_tlsrpt_add(t, T0 + 10, &r, NULL), 0, "add");
	t_int_eq(spool_tlsrpt_add(t, T0 + DAY - 1, &r, NULL), 0,
	    "add, same day");
	row(&r, "a.test", "certificate-host-mismatch", "mx2.a.test");
	t_int_eq(spool_tlsrpt_add(t, T0 + 20, &r, NULL), 0, "a failure");
	row(&r, "b.test", "success", "mx.b.test");
	t_int_eq(spool_tlsrpt_add(t, T0 + DAY, &r, NULL), 0, "next day");
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
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), EINVAL, "no domain");
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
		rc = spool_tlsrpt_add(t, T0, &r, NULL);
	}
	t_int_eq(rc, 0, "past the cap: no error");
	t_ok(walk(t, T0, NULL).n == SPOOL_TLSRPT_DAY_MAX,
	    "at most SPOOL_TLSRPT_DAY_MAX rows a day");
	row(&r, "c.test", "success", "mx0.test");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), 0, "an existing row");
	t_ok(walk(t, T0, "c.test").total == SPOOL_TLSRPT_DAY_MAX + 1,
	    "still counts");
	row(&r, "d.test", "success", "mx.d.test");
	t_int_eq(spool_tlsrpt_add(t, T0 + 10 * DAY, &r, NULL), 0,
	    "ten days on");
	t_ok(walk(t, T0, NULL).n == SPOOL_TLSRPT_DAY_MAX, "day 1 kept");
	t_int_eq(spool_tlsrpt_add(t, T0 + SPOOL_TLSRPT_DAYS * DAY, &r, NULL), 0,
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
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), 0, "the writer created it");
	t_int_eq(spool_commit(&t), 0, "commit");
	t_spool_reader_opens(&sp, tdir, MAP);
}

static void
conn(struct spool_tlsrpt_row *r, const char *sip, const char *rip,
    const char *helo)
{
	(void)str_copy(r->tr_sip, sizeof(r->tr_sip), sip);
	(void)str_copy(r->tr_rip, sizeof(r->tr_rip), rip);
	(void)str_copy(r->tr_helo, sizeof(r->tr_helo), helo);
}

struct rows {
	size_t			n;
	struct spool_tlsrpt_row r[8];
};

static int
rows_cb(const struct spool_tlsrpt_row *r, void *arg)
{
	struct rows *s = arg;

	if (s->n < 8)
		s->r[s->n] = *r;
	s->n++;
	return 0;
}

static struct rows
all(struct spool_txn *t, const char *dom)
{
	struct rows s;

	memset(&s, 0, sizeof(s));
	t_int_eq(spool_tlsrpt_iter(t, T0, dom, rows_cb, &s), 0, "iter");
	return s;
}

/* Failures per (result, MX, sending IP, receiving IP, EHLO name);
 * successes per MX host whatever their addresses. */
static void
t_addresses(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_tlsrpt",
	    MAP);
	struct spool_txn       *t = t_wtxn(sp);
	struct spool_tlsrpt_row r;
	struct rows		s;

	row(&r, "a.test", "certificate-expired", "mx.a.test");
	conn(&r, "127.0.0.2", "192.0.2.1", "mx.a.test");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), 0, "a failure");
	t_int_eq(spool_tlsrpt_add(t, T0 + 1, &r, NULL), 0, "the same again");
	conn(&r, "127.0.0.2", "2001:db8::1", "mx.a.test");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), 0, "another peer");
	row(&r, "a.test", "success", "mx.a.test");
	conn(&r, "127.0.0.2", "192.0.2.1", "mx.a.test");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), 0, "a success");
	conn(&r, "127.0.0.3", "192.0.2.9", "other");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), 0, "a success elsewhere");
	s = all(t, "a.test");
	t_int_eq((long long)s.n, 3, "two failure rows, one success row");
	t_str_eq(s.r[0].tr_rip, "192.0.2.1", "receiving-ip");
	t_str_eq(s.r[0].tr_sip, "127.0.0.2", "sending-mta-ip");
	t_str_eq(s.r[0].tr_helo, "mx.a.test", "receiving-mx-helo");
	t_int_eq((long long)s.r[0].tr_count, 2, "counted together");
	t_str_eq(s.r[1].tr_rip, "2001:db8::1", "IPv6 receiving-ip");
	t_int_eq((long long)s.r[2].tr_count, 2, "successes per MX host");
	t_ok(s.r[2].tr_sip[0] == '\0' && s.r[2].tr_rip[0] == '\0',
	    "no addresses in the success row");
	spool_abort(&t);
	spool_close(&sp);
}

static void
put_raw(struct spool_txn *t, const char *key, size_t klen, const char *val,
    size_t vlen)
{
	struct spool_key k;

	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	t_int_eq(spool_db_put(t, SPOOL_DB_TLSRPT, &k, val, vlen), 0, "put");
}

/* Day 20000 = 0x4e20. */
#define OLDKEY \
	"\0\0\x4e\x20" \
	"a.test\0sts\0certificate-expired\0mx.a.test\0"
/* sip, rip, helo, then a part that is not "overflow" (NUL-ended) */
#define BADEXT "1.2.3.4\0\0\0bogus"
#define OLDVAL "\x01\0\0\0\0\0\0\0\x07version: STSv1\0*.a.test\0"

/* A failure row written before the addresses existed (its exact bytes). */
static void
t_row_before_addresses(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_tlsrpt",
	    MAP);
	struct spool_txn       *t = t_wtxn(sp);
	struct spool_tlsrpt_row r;
	struct rows		s;

	put_raw(t, OLDKEY, sizeof(OLDKEY) - 1, OLDVAL, sizeof(OLDVAL) - 1);
	s = all(t, NULL);
	t_int_eq((long long)s.n, 1, "the old row decodes");
	t_ok(s.r[0].tr_count == 7 && strcmp(s.r[0].tr_mx, "mx.a.test") == 0 &&
		strcmp(s.r[0].tr_pstr, "version: STSv1") == 0,
	    "its count, MX host and policy string");
	t_ok(s.r[0].tr_sip[0] == '\0' && s.r[0].tr_rip[0] == '\0' &&
		s.r[0].tr_helo[0] == '\0' && !s.r[0].tr_overflow,
	    "without addresses");
	row(&r, "a.test", "certificate-expired", "mx.a.test");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), 0, "no addresses");
	conn(&r, "127.0.0.2", "192.0.2.1", "");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, NULL), 0, "with addresses");
	s = all(t, NULL);
	t_ok(s.n == 2 && s.r[0].tr_count == 8 && s.r[1].tr_count == 1,
	    "one more in the old row; a new row with the addresses");
	put_raw(t, OLDKEY BADEXT, sizeof(OLDKEY BADEXT), OLDVAL,
	    sizeof(OLDVAL) - 1);
	memset(&s, 0, sizeof(s));
	t_int_eq(spool_tlsrpt_iter(t, T0, NULL, rows_cb, &s), SPOOL_ECORRUPT,
	    "an unknown part after the addresses is corrupt");
	spool_abort(&t);
	spool_close(&sp);
}

/* At most SPOOL_TLSRPT_DETAIL_MAX failure rows per domain and day; the
 * failures past it are counted per policy and result type only. */
static void
t_detail_cap(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_tlsrpt",
	    MAP);
	struct spool_txn       *t = t_wtxn(sp);
	struct spool_tlsrpt_row r;
	struct seen		s;
	struct rows		rs;
	char			ip[32], dom[300], mx[300];
	bool			over = false, anyover = false;
	int			i, rc = 0;

	for (i = 0; i < SPOOL_TLSRPT_DETAIL_MAX && rc == 0; i++) {
		(void)snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		row(&r, "e.test", "certificate-expired", "mx.e.test");
		conn(&r, "127.0.0.1", ip, "");
		rc = spool_tlsrpt_add(t, T0, &r, &over);
		anyover |= over;
	}
	t_ok(rc == 0 && !anyover, "up to the cap: no overflow");
	row(&r, "e.test", "success", "mx.e.test");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, &over), 0, "a success");
	t_ok(!over, "successes are not failure details");
	row(&r, "e.test", "certificate-expired", "mx2.e.test");
	conn(&r, "127.0.0.1", "192.0.2.7", "mx2.e.test");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, &over), 0, "past the cap");
	t_ok(over, "the overflow row is new: the caller logs it");
	conn(&r, "127.0.0.1", "192.0.2.8", "");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, &over), 0, "past the cap again");
	t_ok(!over, "logged once");
	row(&r, "e.test", "certificate-expired", "mx.e.test");
	conn(&r, "127.0.0.1", "10.0.0.0", "");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, &over), 0, "an existing row");
	s = walk(t, T0, "e.test");
	t_int_eq((long long)s.n, SPOOL_TLSRPT_DETAIL_MAX + 2,
	    "the cap, the success row and one overflow row");
	t_int_eq((long long)s.total, SPOOL_TLSRPT_DETAIL_MAX + 4,
	    "every session counted");
	rs = all(t,
	    "e.test"); /* the overflow row's empty MX host sorts first */
	t_ok(rs.r[0].tr_overflow && rs.r[0].tr_count == 2 &&
		strcmp(rs.r[0].tr_result, "certificate-expired") == 0 &&
		rs.r[0].tr_mx[0] == '\0' && rs.r[0].tr_rip[0] == '\0',
	    "the overflow row: two sessions, no MX host, no address");
	t_ok(!rs.r[1].tr_overflow, "the others are details");
	row(&r, "f.test", "certificate-expired", "mx.f.test");
	conn(&r, "127.0.0.1", "192.0.2.7", "");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, &over), 0, "another domain");
	t_ok(!over && !walk(t, T0, "f.test").fail.tr_overflow,
	    "has its own cap");
	/* a failure whose key is too long with the EHLO name drops it; one
	 * too long without it too is counted in the overflow row */
	memset(dom, 'd', 240);
	(void)str_copy(dom + 240, sizeof(dom) - 240, ".test");
	memset(mx, 'm', 200);
	mx[200] = '\0';
	row(&r, dom, "starttls-not-supported", mx);
	conn(&r, "127.0.0.1", "192.0.2.7", dom);
	t_int_eq(spool_tlsrpt_add(t, T0, &r, &over), 0, "a long key");
	rs = all(t, dom);
	t_ok(rs.n == 1 && !over && rs.r[0].tr_helo[0] == '\0' &&
		strcmp(rs.r[0].tr_rip, "192.0.2.7") == 0,
	    "counted with the addresses, without the EHLO name");
	memset(mx, 'm', 255);
	mx[255] = '\0';
	row(&r, dom, "starttls-not-supported", mx);
	conn(&r, "127.0.0.1", "192.0.2.7", "");
	t_int_eq(spool_tlsrpt_add(t, T0, &r, &over), 0, "a longer key");
	rs = all(t, dom);
	t_ok(rs.n == 2 && over && rs.r[0].tr_overflow && !rs.r[1].tr_overflow,
	    "counted in the overflow row");
	spool_abort(&t);
	spool_close(&sp);
}

/* spoolctl tls-report --send's record of the URIs a report went to: per
 * day, domain and URI; kept SPOOL_TLSRPT_DAYS days; an older database. */
static void
t_sent(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_tlsrpt",
	    MAP);
	struct spool_txn	*t = t_wtxn(sp);
	static const char *const dbs[] = { "tlsrpt_sent", NULL };
	const char		*u = "https://r.test/x";
	int64_t			 when = 0;

	t_int_eq(spool_tlsrpt_sent_get(t, T0, "a.test", u, NULL),
	    SPOOL_ENOTFOUND, "not sent yet");
	t_int_eq(spool_tlsrpt_sent_put(t, T0 + DAY + 5, T0 + 7, "a.test", u), 0,
	    "put");
	t_int_eq(spool_tlsrpt_sent_get(t, T0 + 100, "a.test", u, &when), 0,
	    "sent, any time of the day");
	t_int_eq(when, T0 + DAY + 5, "when");
	t_int_eq(spool_tlsrpt_sent_get(t, T0, "a.test", "mailto:x@y", NULL),
	    SPOOL_ENOTFOUND, "another uri");
	t_int_eq(spool_tlsrpt_sent_get(t, T0 + DAY, "a.test", u, NULL),
	    SPOOL_ENOTFOUND, "another day");
	t_int_eq(spool_tlsrpt_sent_get(t, T0, "b.test", u, NULL),
	    SPOOL_ENOTFOUND, "another domain");
	t_int_eq(spool_tlsrpt_sent_put(t, T0, T0, "", u), EINVAL, "no domain");
	t_int_eq(spool_tlsrpt_sent_prune(t, T0 + SPOOL_TLSRPT_DAYS * DAY - 1),
	    0, "prune on the last day kept");
	t_int_eq(spool_tlsrpt_sent_get(t, T0, "a.test", u, NULL), 0, "kept");
	t_int_eq(spool_tlsrpt_sent_put(t, T0 + SPOOL_TLSRPT_DAYS * DAY,
		     T0 + SPOOL_TLSRPT_DAYS * DAY, "c.test", u),
	    0, "a put 31 days later");
	t_int_eq(spool_tlsrpt_sent_get(t, T0, "a.test", u, NULL),
	    SPOOL_ENOTFOUND, "pruned");
	t_int_eq(spool_commit(&t), 0, "commit");
	t_spool_old(&sp, tdir, MAP, dbs, NULL);
	t = t_wtxn(sp);
	t_int_eq(spool_tlsrpt_sent_put(t, T0, T0, "a.test", u), 0,
	    "the writer of an older database created it");
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
		{ "addresses", t_addresses },
		{ "row_before_addresses", t_row_before_addresses },
		{ "detail_cap", t_detail_cap },
		{ "sent", t_sent },
	};

	return T_RUN_RMTREE(cases, tdir);
}
