/*
 * libFuzzer target for trackd/trackd_proto: one datagram, read by both
 * the backend's query parser (the bytes of an HTTP process that may be
 * taken over) and the HTTP process's reply parser. Whatever they accept
 * must keep their promises: fields inside the datagram and within the
 * limits, re-encodable to the same bytes. Also routes the bytes as a
 * path. Seeds: tests/fuzz/corpus/trackd_proto/.
 */
#include <stdlib.h>
#include <string.h>

#include "trackd_proto.h"

static void
fuzz_inside(const void *p, size_t n, const uint8_t *data, size_t size)
{
	if (n > 0 &&
	    ((const uint8_t *)p < data || (const uint8_t *)p + n > data + size))
		abort();
}

static void
fuzz_query(const uint8_t *data, size_t size)
{
	static uint8_t	out[TP_QUERY_MAX];
	struct tp_query q;
	size_t		n;

	if (tp_query_parse(data, size, &q) != TP_OK)
		return;
	if (q.q_type == TP_Q_HIT) {
		if (q.q_toklen == 0 || q.q_toklen > TP_TOKEN_MAX ||
		    q.q_clientlen > TP_CLIENT_MAX || q.q_ualen > TP_UA_MAX ||
		    memchr(q.q_tok, '/', q.q_toklen) != NULL ||
		    (q.q_ualen > 0 && memchr(q.q_ua, '\0', q.q_ualen) != NULL))
			abort();
		fuzz_inside(q.q_tok, q.q_toklen, data, size);
		fuzz_inside(q.q_client, q.q_clientlen, data, size);
		fuzz_inside(q.q_ua, q.q_ualen, data, size);
	} else if (q.q_type != TP_Q_RELOAD)
		abort();
	n = tp_query_make(out, sizeof(out), &q);
	if (n != size || memcmp(out, data, size) != 0)
		abort();
}

static void
fuzz_reply(const uint8_t *data, size_t size)
{
	static uint8_t	out[TP_REPLY_MAX];
	struct tp_reply r;
	size_t		n;

	if (tp_reply_parse(data, size, &r) != TP_OK)
		return;
	if (r.r_type == TP_R_ANSWER) {
		if (r.r_status < 100 || r.r_status > 599 ||
		    r.r_bodylen > TP_BODY_MAX || r.r_loclen > TP_LOC_MAX ||
		    (r.r_loclen > 0) != (r.r_status == 302) ||
		    (r.r_loclen > 0 &&
			(memchr(r.r_loc, '\n', r.r_loclen) ||
			    memchr(r.r_loc, '\r', r.r_loclen))))
			abort();
		fuzz_inside(r.r_body, r.r_bodylen, data, size);
		fuzz_inside(r.r_loc, r.r_loclen, data, size);
	} else if (r.r_type != TP_R_RELOADED || r.r_logdest > 1)
		abort();
	n = tp_reply_make(out, sizeof(out), &r);
	if (n != size || memcmp(out, data, size) != 0)
		abort();
}

static void
fuzz_route(const uint8_t *data, size_t size)
{
	char	    path[300];
	const char *tok;
	char	    kind;
	int	    rt;

	if (size >= sizeof(path))
		return;
	memcpy(path, data, size);
	path[size] = '\0';
	rt = tp_route(path, &kind, &tok);
	if (rt != -1 && (tok != path + 3 || strchr("ocu", kind) == NULL))
		abort();
	if (rt == 0 && (strchr(tok, '/') != NULL || *tok == '\0'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	fuzz_query(data, size);
	fuzz_reply(data, size);
	fuzz_route(data, size);
	return 0;
}
