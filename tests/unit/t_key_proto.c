/*
 * Unit tests for smtpd/key_proto: the worker <-> key process messages.
 * Tables of valid and invalid datagrams for both parsers, encoder round
 * trips and bounds, and every truncation of a valid message (a short
 * datagram must be refused, never read past).
 */
#include "config.h"

#include <string.h>

#include "key_proto.h"
#include "tap.h"

#define S(x) (const uint8_t *)(x), sizeof(x) - 1

struct key_case {
	const char     *name;
	const uint8_t  *in;
	size_t		len;
	enum key_status want;
};

static const struct key_case requests[] = {
	{ "pkcs1", S("\1\1\0\3\0\0\0\7\1ab"), KEY_OK },
	{ "pss, no md", S("\1\2\0\2\0\0\0\7\0x"), KEY_OK },
	{ "ecdsa", S("\1\3\0\2\0\0\0\7\3x"), KEY_OK },
	{ "empty", S(""), KEY_EHDR },
	{ "short header", S("\1\1\0\3\0\0\0"), KEY_EHDR },
	{ "wrong version", S("\2\1\0\3\0\0\0\7\1ab"), KEY_EHDR },
	{ "length too long", S("\1\1\0\4\0\0\0\7\1ab"), KEY_EHDR },
	{ "length too short", S("\1\1\0\2\0\0\0\7\1ab"), KEY_EHDR },
	{ "unknown kind", S("\1\4\0\3\0\0\0\7\1ab"), KEY_ETYPE },
	{ "kind 0", S("\1\0\0\3\0\0\0\7\1ab"), KEY_ETYPE },
	{ "a reply from a worker", S("\1\x81\0\1\0\0\0\7x"), KEY_ETYPE },
	{ "md only, no data", S("\1\1\0\1\0\0\0\7\1"), KEY_EPAYLOAD },
	{ "no payload", S("\1\1\0\0\0\0\0\7"), KEY_EPAYLOAD },
	{ "unknown md", S("\1\1\0\3\0\0\0\7\4ab"), KEY_EPAYLOAD },
};

static const struct key_case replies[] = {
	{ "ok", S("\1\x81\0\2\0\0\0\7sg"), KEY_OK },
	{ "no", S("\1\x82\0\0\0\0\0\7"), KEY_OK },
	{ "ok without a signature", S("\1\x81\0\0\0\0\0\7"), KEY_EPAYLOAD },
	{ "no with a payload", S("\1\x82\0\1\0\0\0\7x"), KEY_EPAYLOAD },
	{ "a request from the key process", S("\1\1\0\2\0\0\0\7\1x"),
	    KEY_ETYPE },
	{ "short", S("\1\x81\0"), KEY_EHDR },
};

static void
t_requests(void)
{
	struct tls_sign r;
	uint32_t	id;
	size_t		i;

	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		const struct key_case *c = &requests[i];

		t_int_eq(key_request_parse(c->in, c->len, &id, &r), c->want,
		    c->name);
	}
	(void)key_request_parse(S("\1\1\0\3\0\0\1\2\1ab"), &id, &r);
	t_int_eq(id, 0x102, "request id");
	t_int_eq(r.ts_kind, TLS_SIGN_RSA_PKCS1, "request kind");
	t_int_eq(r.ts_md, TLS_MD_SHA256, "request md");
	t_ok(r.ts_len == 2 && memcmp(r.ts_data, "ab", 2) == 0, "request data");
}

static void
t_replies(void)
{
	struct key_reply r;
	size_t		 i;

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		const struct key_case *c = &replies[i];

		t_int_eq(key_reply_parse(c->in, c->len, &r), c->want, c->name);
	}
}

static void
t_roundtrip(void)
{
	static struct tls_sign q, back;
	uint8_t		       buf[KEY_MSG_MAX], sig[TLS_SIGN_MAX];
	struct key_reply       r;
	uint32_t	       id = 0;
	size_t		       n;

	q.ts_kind = TLS_SIGN_RSA_PSS;
	q.ts_md = TLS_MD_NONE;
	q.ts_len = TLS_SIGN_MAX; /* the largest block */
	memset(q.ts_data, 0xa5, q.ts_len);
	n = key_request_make(buf, sizeof(buf), 0xdeadbeef, &q);
	t_int_eq((long long)n, KEY_MSG_MAX, "largest request fits");
	t_int_eq(key_request_parse(buf, n, &id, &back), KEY_OK,
	    "largest request parses");
	t_ok(id == 0xdeadbeef && back.ts_len == q.ts_len &&
		memcmp(back.ts_data, q.ts_data, q.ts_len) == 0,
	    "request round trip");
	t_int_eq((long long)key_request_make(buf, n - 1, 1, &q), 0,
	    "no room: nothing written");
	q.ts_len = TLS_SIGN_MAX + 1;
	t_int_eq((long long)key_request_make(buf, sizeof(buf), 1, &q), 0,
	    "over TLS_SIGN_MAX");
	q.ts_len = 0;
	t_int_eq((long long)key_request_make(buf, sizeof(buf), 1, &q), 0,
	    "empty digest");
	memset(sig, 0x5a, sizeof(sig));
	n = key_reply_make(buf, sizeof(buf), KEY_R_OK, 7, sig, sizeof(sig));
	t_int_eq(key_reply_parse(buf, n, &r), KEY_OK, "largest reply");
	t_ok(r.kr_id == 7 && r.kr_len == sizeof(sig) &&
		memcmp(r.kr_sig, sig, sizeof(sig)) == 0,
	    "reply round trip");
	t_int_eq((long long)key_reply_make(buf, sizeof(buf), KEY_R_NO, 7, sig,
		     1),
	    0, "a refusal carries nothing");
	t_int_eq((long long)key_reply_make(buf, sizeof(buf), KEY_R_OK, 7, sig,
		     0),
	    0, "an empty signature");
	/* a longer datagram than any message: refused before the length */
	t_int_eq(key_request_parse(buf, KEY_MSG_MAX + 1, &id, &back), KEY_EHDR,
	    "over KEY_MSG_MAX");
}

static void
t_truncated(void)
{
	uint8_t		buf[KEY_MSG_MAX];
	struct tls_sign q, back;
	uint32_t	id;
	size_t		n, i;
	bool		all = true;

	memset(&q, 0, sizeof(q));
	q.ts_kind = TLS_SIGN_ECDSA;
	q.ts_md = TLS_MD_SHA384;
	q.ts_len = 48;
	n = key_request_make(buf, sizeof(buf), 3, &q);
	for (i = 0; i < n; i++)
		all = all && key_request_parse(buf, i, &id, &back) != KEY_OK;
	t_ok(all, "every truncation of a request is refused");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "requests", t_requests },
		{ "replies", t_replies },
		{ "roundtrip", t_roundtrip },
		{ "truncated", t_truncated },
	};

	return T_RUN(cases);
}
