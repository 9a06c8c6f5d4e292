/*
 * Unit tests for deliverd/dkey_proto: the worker <-> DKIM key process
 * messages. Tables of valid and invalid datagrams for both parsers (key
 * file names that leave keys/ or are not the spool's; tokens requests
 * with a bad QID, too many links, no token or an unknown flag), encoder
 * round trips and bounds, and every truncation of a valid message (a short datagram
 * must be refused, never read past).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dkey_proto.h"
#include "tap.h"

#define S(x)		 (const uint8_t *)(x), sizeof(x) - 1
#define D32		 "0123456789abcdef0123456789abcdef"
#define QID		 "0123456789ABCDEF0123"
#define TOK(what, links) S("\1\4\0\x1b\0\0\0\7" QID "\0\0\0\1" what links)

struct dkey_case {
	const char	*name;
	const uint8_t	*in;
	size_t		 len;
	enum dkey_status want;
};

static const struct dkey_case requests[] = {
	{ "pub", S("\1\1\0\5\0\0\0\7a.pem"), DKEY_OK },
	{ "rsa", S("\1\2\0\x26\0\0\0\7\5a.pem" D32), DKEY_OK },
	{ "ed25519", S("\1\3\0\x26\0\0\0\7\5a.pem" D32), DKEY_OK },
	{ "spoolctl's name", S("\1\1\0\x18\0\0\0\7shop_ex-1.example_s1.pem"),
	    DKEY_OK },
	{ "empty", S(""), DKEY_EHDR },
	{ "short header", S("\1\1\0\5\0\0\0"), DKEY_EHDR },
	{ "wrong version", S("\2\1\0\5\0\0\0\7a.pem"), DKEY_EHDR },
	{ "length too long", S("\1\1\0\6\0\0\0\7a.pem"), DKEY_EHDR },
	{ "length too short", S("\1\1\0\4\0\0\0\7a.pem"), DKEY_EHDR },
	{ "type 0", S("\1\0\0\5\0\0\0\7a.pem"), DKEY_ETYPE },
	{ "type 5", S("\1\5\0\5\0\0\0\7a.pem"), DKEY_ETYPE },
	{ "tokens", TOK("\3", "\0\2"), DKEY_OK },
	{ "tokens, the open one", TOK("\1", "\0\0"), DKEY_OK },
	{ "tokens, one link", TOK("\0", "\0\1"), DKEY_OK },
	{ "tokens, 500 links", TOK("\3", "\1\xf4"), DKEY_OK },
	{ "tokens, 501 links", TOK("\0", "\1\xf5"), DKEY_EPAYLOAD },
	{ "tokens, 65535 links", TOK("\0", "\xff\xff"), DKEY_EPAYLOAD },
	{ "tokens, none", TOK("\0", "\0\0"), DKEY_EPAYLOAD },
	{ "tokens, an unknown flag", TOK("\x83", "\0\0"), DKEY_EPAYLOAD },
	{ "tokens, a lower-case QID",
	    S("\1\4\0\x1b\0\0\0\7"
	      "0123456789abcdef0123\0\0\0\1\1\0\0"),
	    DKEY_EPAYLOAD },
	{ "tokens, a NUL in the QID",
	    S("\1\4\0\x1b\0\0\0\7"
	      "0123456789\0BCDEF0123\0\0\0\1\1\0\0"),
	    DKEY_EPAYLOAD },
	{ "tokens, a key file name", S("\1\4\0\5\0\0\0\7a.pem"),
	    DKEY_EPAYLOAD },
	{ "tokens, a byte short", S("\1\4\0\x1a\0\0\0\7" QID "\0\0\0\1\1\0"),
	    DKEY_EPAYLOAD },
	{ "tokens, a byte over", S("\1\4\0\x1c\0\0\0\7" QID "\0\0\0\1\1\0\0\0"),
	    DKEY_EPAYLOAD },
	{ "a reply from a worker", S("\1\x81\0\1\0\0\0\7x"), DKEY_ETYPE },
	{ "pub, no name", S("\1\1\0\0\0\0\0\7"), DKEY_EPAYLOAD },
	{ "pub, a path", S("\1\1\0\x0f\0\0\0\7../db/track.key"),
	    DKEY_EPAYLOAD },
	{ "pub, a slash", S("\1\1\0\5\0\0\0\7a/pem"), DKEY_EPAYLOAD },
	{ "pub, a dot file", S("\1\1\0\4\0\0\0\7.pem"), DKEY_EPAYLOAD },
	{ "pub, a NUL", S("\1\1\0\5\0\0\0\7a\0pem"), DKEY_EPAYLOAD },
	{ "pub, a space", S("\1\1\0\5\0\0\0\7a pem"), DKEY_EPAYLOAD },
	{ "rsa, no payload", S("\1\2\0\0\0\0\0\7"), DKEY_EPAYLOAD },
	{ "rsa, digest short",
	    S("\1\2\0\x25\0\0\0\7\5a.pem" D32 ""
	      ""),
	    DKEY_EHDR },
	{ "rsa, name length past the end", S("\1\2\0\x26\0\0\0\7\6a.pem" D32),
	    DKEY_EPAYLOAD },
	{ "rsa, empty name", S("\1\2\0\x21\0\0\0\7\0" D32), DKEY_EPAYLOAD },
	{ "rsa, 31-byte digest",
	    S("\1\2\0\x25\0\0\0\7\5a.pem"
	      "0123456789abcdef0123456789abcde"),
	    DKEY_EPAYLOAD },
};

static const struct dkey_case replies[] = {
	{ "ok", S("\1\x81\0\2\0\0\0\7sg"), DKEY_OK },
	{ "no", S("\1\x82\0\0\0\0\0\7"), DKEY_OK },
	{ "ok without a payload", S("\1\x81\0\0\0\0\0\7"), DKEY_EPAYLOAD },
	{ "no with a payload", S("\1\x82\0\1\0\0\0\7x"), DKEY_EPAYLOAD },
	{ "a request from the key process", S("\1\1\0\5\0\0\0\7a.pem"),
	    DKEY_ETYPE },
	{ "short", S("\1\x81\0"), DKEY_EHDR },
};

static void
t_requests(void)
{
	struct dkey_req r;
	uint32_t	id;
	size_t		i;

	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		const struct dkey_case *c = &requests[i];

		t_int_eq(dkey_request_parse(c->in, c->len, &id, &r), c->want,
		    c->name);
	}
	(void)dkey_request_parse(S("\1\3\0\x26\0\0\1\2\5a.pem" D32), &id, &r);
	t_int_eq(id, 0x102, "request id");
	t_int_eq(r.dq_type, DKEY_Q_ED25519, "request type");
	t_ok(strcmp(r.dq_name, "a.pem") == 0, "request name");
	t_ok(memcmp(r.dq_digest, D32, 32) == 0, "request digest");
}

static void
t_replies(void)
{
	struct dkey_reply r;
	size_t		  i;

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		const struct dkey_case *c = &replies[i];

		t_int_eq(dkey_reply_parse(c->in, c->len, &r), c->want, c->name);
	}
}

static void
t_roundtrip(void)
{
	static struct dkey_req q, back;
	uint8_t		       buf[DKEY_REP_MAX], out[DKEY_OUT_MAX];
	struct dkey_reply      r;
	uint32_t	       id = 0;
	size_t		       n;

	q.dq_type = DKEY_Q_RSA;
	memset(q.dq_name, 'k', DKEY_NAME_MAX); /* the longest name */
	memset(q.dq_digest, 0xa5, sizeof(q.dq_digest));
	n = dkey_request_make(buf, sizeof(buf), 0xdeadbeef, &q);
	t_int_eq((long long)n, DKEY_REQ_MAX, "largest request fits");
	t_int_eq(dkey_request_parse(buf, n, &id, &back), DKEY_OK,
	    "largest request parses");
	t_ok(id == 0xdeadbeef && strcmp(back.dq_name, q.dq_name) == 0 &&
		memcmp(back.dq_digest, q.dq_digest, 32) == 0,
	    "request round trip");
	t_int_eq((long long)dkey_request_make(buf, n - 1, 1, &q), 0,
	    "no room: nothing written");
	(void)snprintf(q.dq_name, sizeof(q.dq_name), "../keys/x");
	t_int_eq((long long)dkey_request_make(buf, sizeof(buf), 1, &q), 0,
	    "a path is never sent");
	q.dq_name[0] = '\0';
	t_int_eq((long long)dkey_request_make(buf, sizeof(buf), 1, &q), 0,
	    "nor an empty name");
	memset(out, 0x5a, sizeof(out));
	n = dkey_reply_make(buf, sizeof(buf), DKEY_R_OK, 7, out, sizeof(out));
	t_int_eq(dkey_reply_parse(buf, n, &r), DKEY_OK, "largest reply");
	t_ok(r.dr_id == 7 && r.dr_len == sizeof(out) &&
		memcmp(r.dr_out, out, sizeof(out)) == 0,
	    "reply round trip");
	t_int_eq((long long)dkey_reply_make(buf, sizeof(buf), DKEY_R_NO, 7, out,
		     1),
	    0, "a refusal carries nothing");
	t_int_eq((long long)dkey_reply_make(buf, sizeof(buf), DKEY_R_OK, 7, out,
		     0),
	    0, "an empty answer");
	t_int_eq(dkey_request_parse(buf, DKEY_REQ_MAX + 1, &id, &back),
	    DKEY_EHDR, "over DKEY_REQ_MAX");
}

static void
t_truncated(void)
{
	uint8_t		buf[DKEY_REQ_MAX];
	struct dkey_req q, back;
	uint32_t	id;
	size_t		n, i;
	bool		all = true;

	memset(&q, 0, sizeof(q));
	q.dq_type = DKEY_Q_ED25519;
	(void)snprintf(q.dq_name, sizeof(q.dq_name), "acc_example.com_e1.pem");
	n = dkey_request_make(buf, sizeof(buf), 3, &q);
	for (i = 0; i < n; i++)
		all = all && dkey_request_parse(buf, i, &id, &back) != DKEY_OK;
	t_ok(all, "every truncation of a request is refused");
}

static void
t_tokens(void)
{
	static uint8_t	  out[DKEY_OUT_MAX + 1], buf[DKEY_REP_MAX + 1];
	struct dkey_req	  q, back;
	struct dkey_reply r;
	uint8_t		  req[DKEY_REQ_MAX];
	uint32_t	  id = 0;
	size_t		  n, i;
	bool		  all = true;

	(void)dkey_request_parse(TOK("\3", "\0\2"), &id, &back);
	t_ok(strcmp(back.dq_qid, QID) == 0 && back.dq_idx == 1 &&
		back.dq_what == 3 && back.dq_links == 2 &&
		back.dq_name[0] == '\0',
	    "tokens: the fields");
	t_int_eq((int)dkey_tokens_count(&back), 4, "tokens: four asked for");

	memset(&q, 0, sizeof(q));
	q.dq_type = DKEY_Q_TOKENS;
	(void)snprintf(q.dq_qid, sizeof(q.dq_qid), "%s", QID);
	q.dq_idx = 0xdeadbeef;
	q.dq_what = DKEY_TOK_OPEN | DKEY_TOK_UNSUB;
	q.dq_links = DKEY_LINKS_MAX;
	n = dkey_request_make(req, sizeof(req), 9, &q);
	t_int_eq((int)n, DKEY_HDR_LEN + DKEY_TOKENS_PAYLOAD, "tokens: made");
	t_ok(dkey_request_parse(req, n, &id, &back) == DKEY_OK && id == 9 &&
		memcmp(&q, &back, sizeof(q)) == 0,
	    "tokens: round trip");
	for (i = 0; i < n; i++)
		all = all && dkey_request_parse(req, i, &id, &back) != DKEY_OK;
	t_ok(all, "tokens: every truncation refused");
	q.dq_links = DKEY_LINKS_MAX + 1;
	t_int_eq((int)dkey_request_make(req, sizeof(req), 9, &q), 0,
	    "tokens: 501 links not made");
	q.dq_links = 0;
	q.dq_what = 0;
	t_int_eq((int)dkey_request_make(req, sizeof(req), 9, &q), 0,
	    "tokens: none not made");
	q.dq_what = DKEY_TOK_OPEN;
	q.dq_qid[3] = 'x';
	t_int_eq((int)dkey_request_make(req, sizeof(req), 9, &q), 0,
	    "tokens: a bad QID not made");

	/* the largest batch fits a reply, one byte more does not */
	memset(out, 'A', sizeof(out));
	n = dkey_reply_make(buf, sizeof(buf), DKEY_R_OK, 5, out,
	    DKEY_TOKENS_MAX * SPOOL_TRACK_TOKEN_LEN);
	t_int_eq((int)n, DKEY_REP_MAX, "tokens: 502 tokens in a reply");
	t_ok(dkey_reply_parse(buf, n, &r) == DKEY_OK &&
		r.dr_len == DKEY_OUT_MAX,
	    "tokens: 502 tokens parsed");
	t_int_eq((int)dkey_reply_make(buf, sizeof(buf), DKEY_R_OK, 5, out,
		     DKEY_OUT_MAX + 1),
	    0, "tokens: one byte over not made");
	peer_hdr_put(buf, DKEY_VERSION, DKEY_R_OK, DKEY_OUT_MAX + 1, 5);
	t_ok(dkey_reply_parse(buf, DKEY_REP_MAX + 1, &r) != DKEY_OK,
	    "tokens: one byte over refused");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "requests", t_requests },
		{ "replies", t_replies },
		{ "roundtrip", t_roundtrip },
		{ "truncated", t_truncated },
		{ "tokens", t_tokens },
	};

	return T_RUN(cases);
}
