/*
 * Unit tests for smtpd/lka_proto: the worker <-> lookup process messages.
 * Tables of valid and invalid datagrams for both parsers, encoder round
 * trips, and every truncation of a valid message (a datagram protocol has
 * no trickle: a short datagram must be refused, never read past).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lka_proto.h"
#include "tap.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1
#define TAG  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct lka_case {
	const char     *name;
	const uint8_t  *in;
	size_t		len;
	enum lka_status want;
	enum lka_type	type; /* for LKA_OK */
	const char     *a;    /* address, user or login */
	const char     *pass;
};

/* The status of case c, and the type if the message is valid: true if so. */
static bool
lka_case_ok(const struct lka_case *c, enum lka_status st, enum lka_type type)
{
	t_int_eq(st, c->want, c->name);
	if (st != LKA_OK)
		return false;
	t_int_eq(type, c->type, c->name);
	return true;
}

static const struct lka_case queries[] = {
	{ "pin",
	    S("\1\1\0\x09\0\0\0\7"
	      "127.0.0.1"),
	    LKA_OK, LKA_Q_PIN, "127.0.0.1", NULL },
	{ "pin v6", S("\1\1\0\3\0\0\0\1::1"), LKA_OK, LKA_Q_PIN, "::1", NULL },
	{ "auth", S("\1\2\0\6\0\0\0\2\2alpw!"), LKA_OK, LKA_Q_AUTH, "al",
	    "pw!" },
	{ "auth, empty password", S("\1\2\0\3\0\0\0\2\2al"), LKA_OK, LKA_Q_AUTH,
	    "al", "" },
	{ "short header", S("\1\1\0"), LKA_EHDR, 0, NULL, NULL },
	{ "empty", S(""), LKA_EHDR, 0, NULL, NULL },
	{ "wrong version", S("\2\1\0\1\0\0\0\0x"), LKA_EHDR, 0, NULL, NULL },
	{ "length too long",
	    S("\1\1\0\x09\0\0\0\0"
	      "127.0.0."),
	    LKA_EHDR, 0, NULL, NULL },
	{ "length too short", S("\1\1\0\1\0\0\0\0ab"), LKA_EHDR, 0, NULL,
	    NULL },
	{ "reply type from a worker", S("\1\x81\0\0\0\0\0\0"), LKA_ETYPE, 0,
	    NULL, NULL },
	{ "unknown type", S("\1\x7f\0\0\0\0\0\0"), LKA_ETYPE, 0, NULL, NULL },
	{ "empty address", S("\1\1\0\0\0\0\0\0"), LKA_EPAYLOAD, 0, NULL, NULL },
	{ "address with a space", S("\1\1\0\3\0\0\0\0a b"), LKA_EPAYLOAD, 0,
	    NULL, NULL },
	{ "address with NUL", S("\1\1\0\3\0\0\0\0a\0b"), LKA_EPAYLOAD, 0, NULL,
	    NULL },
	{ "auth without user", S("\1\2\0\1\0\0\0\0\0"), LKA_EPAYLOAD, 0, NULL,
	    NULL },
	{ "auth user past the end", S("\1\2\0\3\0\0\0\0\5ab"), LKA_EPAYLOAD, 0,
	    NULL, NULL },
	{ "auth no payload", S("\1\2\0\0\0\0\0\0"), LKA_EPAYLOAD, 0, NULL,
	    NULL },
	{ "auth NUL in user", S("\1\2\0\4\0\0\0\0\2a\0p"), LKA_EPAYLOAD, 0,
	    NULL, NULL },
	{ "auth NUL in password", S("\1\2\0\4\0\0\0\0\1ap\0"), LKA_EPAYLOAD, 0,
	    NULL, NULL },
};

static void
t_queries(void)
{
	struct lka_query q = { 0 };
	enum lka_status	 st;
	size_t		 i;

	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		st = lka_query_parse(queries[i].in, queries[i].len, &q);
		if (!lka_case_ok(&queries[i], st, q.lq_type))
			continue;
		if (q.lq_type == LKA_Q_PIN)
			t_ok(q.lq_addrlen == strlen(queries[i].a) &&
				memcmp(q.lq_addr, queries[i].a, q.lq_addrlen) ==
				    0,
			    "%s: address", queries[i].name);
		else
			t_ok(q.lq_userlen == strlen(queries[i].a) &&
				memcmp(q.lq_user, queries[i].a, q.lq_userlen) ==
				    0 &&
				q.lq_passlen == strlen(queries[i].pass) &&
				memcmp(q.lq_pass, queries[i].pass,
				    q.lq_passlen) == 0,
			    "%s: user and password", queries[i].name);
	}
}

static const struct lka_case replies[] = {
	{ "ok",
	    S("\1\x81\0\x43\0\0\0\x09"
	      "al\0" TAG),
	    LKA_OK, LKA_R_OK, "al", NULL },
	{ "no", S("\1\x82\0\0\0\0\0\x09"), LKA_OK, LKA_R_NO, NULL, NULL },
	{ "temp", S("\1\x83\0\0\0\0\0\x09"), LKA_OK, LKA_R_TEMP, NULL, NULL },
	{ "no with payload", S("\1\x82\0\1\0\0\0\x09x"), LKA_EPAYLOAD, 0, NULL,
	    NULL },
	{ "ok without NUL",
	    S("\1\x81\0\2\0\0\0\x09"
	      "al"),
	    LKA_EPAYLOAD, 0, NULL, NULL },
	{ "ok, empty login",
	    S("\1\x81\0\x41\0\0\0\x09"
	      "\0" TAG),
	    LKA_EPAYLOAD, 0, NULL, NULL },
	{ "ok, short tag",
	    S("\1\x81\0\x06\0\0\0\x09"
	      "al\0abc"),
	    LKA_EPAYLOAD, 0, NULL, NULL },
	{ "ok, upper-case tag",
	    S("\1\x81\0\x43\0\0\0\x09"
	      "al\0"
	      "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcde"
	      "f"),
	    LKA_EPAYLOAD, 0, NULL, NULL },
	{ "ok, control byte in login",
	    S("\1\x81\0\x43\0\0\0\x09"
	      "a\n\0" TAG),
	    LKA_EPAYLOAD, 0, NULL, NULL },
	{ "query type from the lka", S("\1\1\0\1\0\0\0\x09x"), LKA_ETYPE, 0,
	    NULL, NULL },
};

static void
t_replies(void)
{
	struct lka_reply r = { 0 };
	enum lka_status	 st;
	size_t		 i;

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		st = lka_reply_parse(replies[i].in, replies[i].len, &r);
		if (!lka_case_ok(&replies[i], st, r.lr_type))
			continue;
		t_int_eq(r.lr_id, 9, replies[i].name);
		if (replies[i].a != NULL) {
			t_str_eq(r.lr_login, replies[i].a, replies[i].name);
			t_str_eq(r.lr_tag, TAG, replies[i].name);
		}
	}
}

static void
t_roundtrip(void)
{
	uint8_t		 b[LKA_MSG_MAX];
	char		 user[LKA_USER_MAX + 2], pass[LKA_PASS_MAX + 2];
	struct lka_query q;
	struct lka_reply r;
	size_t		 n;

	n = lka_query_pin(b, sizeof(b), 0xdeadbeef, "2001:db8::1");
	t_ok(n > 0 && lka_query_parse(b, n, &q) == LKA_OK &&
		q.lq_id == 0xdeadbeef && q.lq_addrlen == 11,
	    "pin round trip");
	memset(user, 'u', sizeof(user));
	memset(pass, 'p', sizeof(pass));
	n = lka_query_auth(b, sizeof(b), 7, user, LKA_USER_MAX, pass,
	    LKA_PASS_MAX);
	t_ok(n > 0 && lka_query_parse(b, n, &q) == LKA_OK &&
		q.lq_userlen == LKA_USER_MAX && q.lq_passlen == LKA_PASS_MAX,
	    "auth round trip at the limits");
	t_int_eq(lka_query_auth(b, sizeof(b), 7, user, LKA_USER_MAX + 1, pass,
		     1),
	    0, "user over the limit is not encoded");
	t_int_eq(lka_query_auth(b, sizeof(b), 7, user, 1, pass,
		     LKA_PASS_MAX + 1),
	    0, "password over the limit is not encoded");
	t_int_eq(lka_query_pin(b, 10, 1, "127.0.0.1"), 0, "pin does not fit");
	n = lka_reply_make(b, sizeof(b), LKA_R_OK, 42, "acme", TAG);
	t_ok(n > 0 && lka_reply_parse(b, n, &r) == LKA_OK && r.lr_id == 42 &&
		strcmp(r.lr_login, "acme") == 0,
	    "ok reply round trip");
	t_int_eq(lka_reply_make(b, sizeof(b), LKA_R_OK, 1, "acme", "abc"), 0,
	    "a short tag is not encoded");
	n = lka_reply_make(b, sizeof(b), LKA_R_TEMP, 3, NULL, NULL);
	t_ok(n == LKA_HDR_LEN && lka_reply_parse(b, n, &r) == LKA_OK &&
		r.lr_type == LKA_R_TEMP,
	    "temp reply round trip");
}

/* Every proper prefix of a valid message is refused. */
static void
t_truncated(void)
{
	uint8_t		 b[LKA_MSG_MAX];
	struct lka_query q;
	struct lka_reply r;
	size_t		 n, i;
	bool		 ok = true;

	n = lka_query_auth(b, sizeof(b), 5, "user", 4, "secret", 6);
	for (i = 0; i < n; i++)
		ok &= lka_query_parse(b, i, &q) != LKA_OK;
	t_ok(ok, "truncated queries are refused");
	n = lka_reply_make(b, sizeof(b), LKA_R_OK, 5, "acme", TAG);
	for (ok = true, i = 0; i < n; i++)
		ok &= lka_reply_parse(b, i, &r) != LKA_OK;
	t_ok(ok, "truncated replies are refused");
	t_int_eq(lka_msg_parse(b, LKA_MSG_MAX + 1, &(struct lka_msg){ 0 }),
	    LKA_EHDR, "a datagram over the maximum is refused");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "queries", t_queries },
		{ "replies", t_replies },
		{ "roundtrip", t_roundtrip },
		{ "truncated", t_truncated },
	};

	return T_RUN(cases);
}
