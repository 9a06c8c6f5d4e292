/*
 * Unit tests for trackd/trackd_proto: the messages between trackd's HTTP
 * process and its backend. Tables of valid and hostile datagrams for the
 * backend's parser (the HTTP process is not trusted) and the HTTP
 * process's, encoder round trips and refusals, every truncation of a
 * valid message (a datagram has no trickle: short is refused, never read
 * past), and the HTTP side's routing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "trackd_proto.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

struct tp_case {
	const char    *name;
	const uint8_t *in;
	size_t	       len;
	enum tp_status want;
	enum tp_type   type; /* for TP_OK */
};

static const struct tp_case queries[] = {
	{ "hit: open, GET, client, UA",
	    S("\1\1\0\x15\0\0\0\7o\0\4\x09\0\2ABCD127.0.0.1ua"), TP_OK,
	    TP_Q_HIT },
	{ "hit: POST /u/, no client, no UA",
	    S("\1\1\0\x07\0\0\0\1u\2\1\0\0\0T"), TP_OK, TP_Q_HIT },
	{ "hit: HEAD /c/, v6 client", S("\1\1\0\x0a\0\0\0\1c\1\1\3\0\0x::1"),
	    TP_OK, TP_Q_HIT },
	{ "reload", S("\1\2\0\0\0\0\0\3"), TP_OK, TP_Q_RELOAD },
	{ "reload with a payload", S("\1\2\0\1\0\0\0\3x"), TP_EPAYLOAD, 0 },
	{ "empty", S(""), TP_EHDR, 0 },
	{ "short header", S("\1\1\0"), TP_EHDR, 0 },
	{ "wrong version", S("\2\2\0\0\0\0\0\3"), TP_EHDR, 0 },
	{ "length longer than the datagram",
	    S("\1\1\0\x09\0\0\0\1u\2\1\0\0\0T"), TP_EHDR, 0 },
	{ "length shorter than the datagram",
	    S("\1\1\0\x06\0\0\0\1u\2\1\0\0\0T"), TP_EHDR, 0 },
	{ "a reply type from the HTTP process", S("\1\x81\0\0\0\0\0\0"),
	    TP_ETYPE, 0 },
	{ "unknown type", S("\1\x7f\0\0\0\0\0\0"), TP_ETYPE, 0 },
	{ "hit: payload shorter than its fixed part",
	    S("\1\1\0\3\0\0\0\1o\0\1"), TP_EPAYLOAD, 0 },
	{ "hit: field lengths past the payload",
	    S("\1\1\0\x07\0\0\0\1o\0\1\0\0\x10T"), TP_EPAYLOAD, 0 },
	{ "hit: field lengths short of the payload",
	    S("\1\1\0\x08\0\0\0\1o\0\1\0\0\0TT"), TP_EPAYLOAD, 0 },
	{ "hit: unknown kind", S("\1\1\0\x07\0\0\0\1x\0\1\0\0\0T"), TP_EPAYLOAD,
	    0 },
	{ "hit: POST on /o/", S("\1\1\0\x07\0\0\0\1o\2\1\0\0\0T"), TP_EPAYLOAD,
	    0 },
	{ "hit: unknown method", S("\1\1\0\x07\0\0\0\1u\3\1\0\0\0T"),
	    TP_EPAYLOAD, 0 },
	{ "hit: empty token", S("\1\1\0\x06\0\0\0\1o\0\0\0\0\0"), TP_EPAYLOAD,
	    0 },
	{ "hit: a slash in the token", S("\1\1\0\x08\0\0\0\1o\0\2\0\0\0T/"),
	    TP_EPAYLOAD, 0 },
	{ "hit: NUL in the token", S("\1\1\0\x08\0\0\0\1o\0\2\0\0\0T\0"),
	    TP_EPAYLOAD, 0 },
	{ "hit: a letter in the client",
	    S("\1\1\0\x0b\0\0\0\1o\0\1\4\0\0Tx.1."), TP_EPAYLOAD, 0 },
	{ "hit: a scope in the client", S("\1\1\0\x0a\0\0\0\1o\0\1\3\0\0T1%e"),
	    TP_EPAYLOAD, 0 },
	{ "hit: NUL in the UA", S("\1\1\0\x09\0\0\0\1o\0\1\0\0\2Ta\0"),
	    TP_EPAYLOAD, 0 },
	{ "hit: CR LF in the UA", S("\1\1\0\x0b\0\0\0\1o\0\1\0\0\4Ta\r\nb"),
	    TP_EPAYLOAD, 0 },
};

static const struct tp_case replies[] = {
	{ "answer: 200 GIF nocache",
	    S("\1\x81\0\x0b\0\0\0\5\0\xc8\1\1\0\3\0\0GIF"), TP_OK,
	    TP_R_ANSWER },
	{ "answer: 302 with a location",
	    S("\1\x81\0\x0f\0\0\0\5\1\x2e\1\0\0\0\0\7http://"), TP_OK,
	    TP_R_ANSWER },
	{ "answer: 405 with Allow", S("\1\x81\0\x08\0\0\0\5\1\x95\2\0\0\0\0\0"),
	    TP_OK, TP_R_ANSWER },
	{ "reloaded", S("\1\x82\0\1\0\0\0\5\1"), TP_OK, TP_R_RELOADED },
	{ "reloaded: a third destination", S("\1\x82\0\1\0\0\0\5\2"),
	    TP_EPAYLOAD, 0 },
	{ "a request type from the backend", S("\1\2\0\0\0\0\0\3"), TP_ETYPE,
	    0 },
	{ "answer: status 99", S("\1\x81\0\x08\0\0\0\5\0\x63\0\0\0\0\0\0"),
	    TP_EPAYLOAD, 0 },
	{ "answer: status 600", S("\1\x81\0\x08\0\0\0\5\2\x58\0\0\0\0\0\0"),
	    TP_EPAYLOAD, 0 },
	{ "answer: unknown flag", S("\1\x81\0\x08\0\0\0\5\0\xc8\x08\0\0\0\0\0"),
	    TP_EPAYLOAD, 0 },
	{ "answer: unknown content type",
	    S("\1\x81\0\x08\0\0\0\5\0\xc8\0\3\0\0\0\0"), TP_EPAYLOAD, 0 },
	{ "answer: a location without 302",
	    S("\1\x81\0\x09\0\0\0\5\0\xc8\0\0\0\0\0\1x"), TP_EPAYLOAD, 0 },
	{ "answer: 302 without a location",
	    S("\1\x81\0\x08\0\0\0\5\1\x2e\0\0\0\0\0\0"), TP_EPAYLOAD, 0 },
	{ "answer: a header split in the location",
	    S("\1\x81\0\x0b\0\0\0\5\1\x2e\0\0\0\0\0\3a\nb"), TP_EPAYLOAD, 0 },
	{ "answer: a space in the location",
	    S("\1\x81\0\x0b\0\0\0\5\1\x2e\0\0\0\0\0\3a b"), TP_EPAYLOAD, 0 },
	{ "answer: body length past the payload",
	    S("\1\x81\0\x09\0\0\0\5\0\xc8\0\0\0\2\0\0x"), TP_EPAYLOAD, 0 },
};

static void
t_table(const struct tp_case *v, size_t n, bool query)
{
	struct tp_query q;
	struct tp_reply r;
	enum tp_status	st;
	size_t		i;

	for (i = 0; i < n; i++) {
		st = query ? tp_query_parse(v[i].in, v[i].len, &q)
			   : tp_reply_parse(v[i].in, v[i].len, &r);
		t_int_eq(st, v[i].want, v[i].name);
		if (st == TP_OK)
			t_int_eq(query ? q.q_type : r.r_type, v[i].type,
			    v[i].name);
	}
}

static void
t_queries(void)
{
	t_table(queries, sizeof(queries) / sizeof(queries[0]), true);
}

static void
t_replies(void)
{
	t_table(replies, sizeof(replies) / sizeof(replies[0]), false);
}

/* Every proper prefix of every valid message is refused. */
static void
t_truncated(void)
{
	struct tp_query q;
	struct tp_reply r;
	size_t		i, k, bad = 0;

	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
		for (k = 0; queries[i].want == TP_OK && k < queries[i].len; k++)
			bad += tp_query_parse(queries[i].in, k, &q) == TP_OK;
	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
		for (k = 0; replies[i].want == TP_OK && k < replies[i].len; k++)
			bad += tp_reply_parse(replies[i].in, k, &r) == TP_OK;
	t_int_eq((long long)bad, 0, "no truncated message is accepted");
}

static void
t_hit_roundtrip(void)
{
	static char	tok[TP_TOKEN_MAX + 1], ua[TP_UA_MAX + 2];
	uint8_t		out[TP_QUERY_MAX + 16];
	struct tp_query q = { .q_type = TP_Q_HIT,
		.q_id = 0xdeadbeef,
		.q_kind = 'c',
		.q_method = TP_M_HEAD,
		.q_tok = tok,
		.q_client = "2001:db8::1",
		.q_clientlen = 11,
		.q_ua = ua };
	struct tp_query back;
	size_t		n;

	memset(tok, 'A', TP_TOKEN_MAX);
	memset(ua, 0xc3, TP_UA_MAX + 1); /* bytes of UTF-8 pass */
	q.q_toklen = TP_TOKEN_MAX;
	q.q_ualen = TP_UA_MAX;
	n = tp_query_make(out, sizeof(out), &q);
	t_int_eq((long long)n, TP_QUERY_MAX - (TP_CLIENT_MAX - 11),
	    "the largest token and UA fit");
	t_ok(tp_query_parse(out, n, &back) == TP_OK && back.q_id == q.q_id &&
		back.q_kind == 'c' && back.q_method == TP_M_HEAD &&
		back.q_toklen == TP_TOKEN_MAX &&
		memcmp(back.q_tok, tok, TP_TOKEN_MAX) == 0 &&
		back.q_clientlen == 11 &&
		memcmp(back.q_client, "2001:db8::1", 11) == 0 &&
		back.q_ualen == TP_UA_MAX,
	    "and come back as sent");
	q.q_toklen = TP_TOKEN_MAX + 1;
	t_int_eq((long long)tp_query_make(out, sizeof(out), &q), 0,
	    "a longer token is refused");
	q.q_toklen = 3;
	q.q_ualen = TP_UA_MAX + 1;
	t_int_eq((long long)tp_query_make(out, sizeof(out), &q), 0,
	    "a longer UA is refused");
	q.q_ualen = 3;
	q.q_method = TP_M_POST;
	t_int_eq((long long)tp_query_make(out, sizeof(out), &q), 0,
	    "POST on /c/ is refused");
	q.q_method = TP_M_GET;
	t_int_eq((long long)tp_query_make(out, 10, &q), 0,
	    "a buffer too small");
}

static void
t_answer_roundtrip(void)
{
	static uint8_t	body[TP_BODY_MAX + 1];
	static char	loc[TP_LOC_MAX + 1];
	static uint8_t	out[TP_REPLY_MAX];
	struct tp_reply r = { .r_type = TP_R_ANSWER,
		.r_id = 7,
		.r_status = 302,
		.r_flags = TP_F_NOCACHE,
		.r_ctype = TP_CT_TEXT,
		.r_body = body,
		.r_bodylen = TP_BODY_MAX,
		.r_loc = loc,
		.r_loclen = TP_LOC_MAX };
	struct tp_reply back;
	size_t		n;

	memset(loc, 'h', sizeof(loc));
	n = tp_reply_make(out, sizeof(out), &r);
	t_int_eq((long long)n, TP_REPLY_MAX, "the largest answer fits");
	t_ok(tp_reply_parse(out, n, &back) == TP_OK && back.r_id == 7 &&
		back.r_status == 302 && back.r_flags == TP_F_NOCACHE &&
		back.r_bodylen == TP_BODY_MAX && back.r_loclen == TP_LOC_MAX,
	    "and comes back as sent");
	r.r_loclen = TP_LOC_MAX + 1;
	t_int_eq((long long)tp_reply_make(out, sizeof(out), &r), 0,
	    "a longer location is refused");
	r.r_loclen = 0;
	t_int_eq((long long)tp_reply_make(out, sizeof(out), &r), 0,
	    "302 without a location is refused");
	r = (struct tp_reply){ .r_type = TP_R_RELOADED,
		.r_id = 9,
		.r_logdest = 1 };
	n = tp_reply_make(out, sizeof(out), &r);
	t_ok(n == TP_HDR_LEN + 1 && tp_reply_parse(out, n, &back) == TP_OK &&
		back.r_type == TP_R_RELOADED && back.r_logdest == 1,
	    "reloaded round trip");
}

static void
t_route(void)
{
	static const struct {
		const char *path;
		int	    want;
		char	    kind;
	} v[] = {
		{ "/o/AbC_-9", 0, 'o' },
		{ "/c/x", 0, 'c' },
		{ "/u/x", 0, 'u' },
		{ "/o/", 1, 'o' },
		{ "/c/https://evil.example/", 1, 'c' },
		{ "/o/tok/x", 1, 'o' },
		{ "/x/tok", -1, 0 },
		{ "/", -1, 0 },
		{ "/o", -1, 0 },
		{ "", -1, 0 },
		{ "o/tok", -1, 0 },
		{ "/favicon.ico", -1, 0 },
	};
	const char *tok;
	char	    kind;
	size_t	    i;
	int	    rt;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		kind = 0;
		rt = tp_route(v[i].path, &kind, &tok);
		t_ok(rt == v[i].want && (rt == -1 || kind == v[i].kind),
		    "route %s", v[i].path);
	}
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "queries", t_queries },
		{ "replies", t_replies },
		{ "truncated", t_truncated },
		{ "hit_roundtrip", t_hit_roundtrip },
		{ "answer_roundtrip", t_answer_roundtrip },
		{ "route", t_route },
	};

	return T_RUN(cases);
}
