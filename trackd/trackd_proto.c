/*
 * trackd_proto: encode and parse the messages between trackd's HTTP
 * process and its backend (format in trackd_proto.h). Pure and bounded:
 * no I/O, no allocation.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "trackd_proto.h"

static void
tp_put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static size_t
tp_get16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

static void
tp_put_hdr(uint8_t *p, uint8_t type, size_t len, uint32_t id)
{
	p[0] = TP_VERSION;
	p[1] = type;
	tp_put16(p + 2, len);
	p[4] = (uint8_t)(id >> 24);
	p[5] = (uint8_t)(id >> 16);
	p[6] = (uint8_t)(id >> 8);
	p[7] = (uint8_t)id;
}

/* The frame: type, id, payload; TP_EHDR unless it is one whole message
 * of at most max bytes. */
static enum tp_status
tp_frame(const uint8_t *p, size_t len, size_t max, uint8_t *type_r,
    uint32_t *id_r, const uint8_t **pl_r, size_t *pllen_r)
{
	if (len < TP_HDR_LEN || len > max || p[0] != TP_VERSION ||
	    tp_get16(p + 2) != len - TP_HDR_LEN)
		return TP_EHDR;
	*type_r = p[1];
	*id_r = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
	    (uint32_t)p[6] << 8 | p[7];
	*pl_r = p + TP_HDR_LEN;
	*pllen_r = len - TP_HDR_LEN;
	return TP_OK;
}

static bool
tp_tok_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool
tp_tok_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n == 0 || n > TP_TOKEN_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!tp_tok_char(s[i]))
			return false;
	return true;
}

static bool
tp_client_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n > TP_CLIENT_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f') ||
			(s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' ||
			s[i] == '.'))
			return false;
	return true;
}

/* No NUL, no control character (a log line, an event's field). */
static bool
tp_text_ok(const uint8_t *s, size_t n, uint8_t lo)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < lo || s[i] == 0x7f)
			return false;
	return true;
}

static bool
tp_method_ok(char kind, uint8_t m)
{
	if (kind != 'o' && kind != 'c' && kind != 'u')
		return false;
	return m == TP_M_GET || m == TP_M_HEAD ||
	    (m == TP_M_POST && kind == 'u');
}

static enum tp_status
tp_hit_parse(const uint8_t *pl, size_t n, struct tp_query *q)
{
	size_t tl, cl, ul;

	if (n < TP_HIT_FIXED)
		return TP_EPAYLOAD;
	tl = pl[2];
	cl = pl[3];
	ul = tp_get16(pl + 4);
	if (TP_HIT_FIXED + tl + cl + ul != n ||
	    !tp_method_ok((char)pl[0], pl[1]) ||
	    !tp_tok_ok(pl + TP_HIT_FIXED, tl) ||
	    !tp_client_ok(pl + TP_HIT_FIXED + tl, cl) || ul > TP_UA_MAX ||
	    !tp_text_ok(pl + TP_HIT_FIXED + tl + cl, ul, 0x20))
		return TP_EPAYLOAD;
	q->q_kind = (char)pl[0];
	q->q_method = pl[1];
	q->q_tok = (const char *)pl + TP_HIT_FIXED;
	q->q_toklen = tl;
	q->q_client = q->q_tok + tl;
	q->q_clientlen = cl;
	q->q_ua = q->q_client + cl;
	q->q_ualen = ul;
	return TP_OK;
}

enum tp_status
tp_query_parse(const void *buf, size_t len, struct tp_query *q_r)
{
	const uint8_t *pl;
	size_t	       n;
	uint8_t	       type;
	enum tp_status st;

	memset(q_r, 0, sizeof(*q_r));
	if ((st = tp_frame(buf, len, TP_QUERY_MAX, &type, &q_r->q_id, &pl,
		 &n)) != TP_OK)
		return st;
	switch (type) {
	case TP_Q_HIT:
		q_r->q_type = TP_Q_HIT;
		return tp_hit_parse(pl, n, q_r);
	case TP_Q_RELOAD:
		q_r->q_type = TP_Q_RELOAD;
		return n == 0 ? TP_OK : TP_EPAYLOAD;
	default:
		return TP_ETYPE;
	}
}

static enum tp_status
tp_answer_parse(const uint8_t *pl, size_t n, struct tp_reply *r)
{
	size_t bl, ll;

	if (n < TP_ANSWER_FIXED)
		return TP_EPAYLOAD;
	r->r_status = (uint16_t)tp_get16(pl);
	r->r_flags = pl[2];
	r->r_ctype = pl[3];
	bl = tp_get16(pl + 4);
	ll = tp_get16(pl + 6);
	if (TP_ANSWER_FIXED + bl + ll != n || r->r_status < 100 ||
	    r->r_status > 599 || (r->r_flags & ~TP_F_ALL) != 0 ||
	    r->r_ctype > TP_CT_HTML || bl > TP_BODY_MAX || ll > TP_LOC_MAX ||
	    (ll > 0) != (r->r_status == 302) ||
	    !tp_text_ok(pl + TP_ANSWER_FIXED + bl, ll, 0x21))
		return TP_EPAYLOAD;
	r->r_body = pl + TP_ANSWER_FIXED;
	r->r_bodylen = bl;
	r->r_loc = (const char *)r->r_body + bl;
	r->r_loclen = ll;
	return TP_OK;
}

enum tp_status
tp_reply_parse(const void *buf, size_t len, struct tp_reply *r_r)
{
	const uint8_t *pl;
	size_t	       n;
	uint8_t	       type;
	enum tp_status st;

	memset(r_r, 0, sizeof(*r_r));
	if ((st = tp_frame(buf, len, TP_REPLY_MAX, &type, &r_r->r_id, &pl,
		 &n)) != TP_OK)
		return st;
	switch (type) {
	case TP_R_ANSWER:
		r_r->r_type = TP_R_ANSWER;
		return tp_answer_parse(pl, n, r_r);
	case TP_R_RELOADED:
		r_r->r_type = TP_R_RELOADED;
		if (n != 1 || pl[0] > 1)
			return TP_EPAYLOAD;
		r_r->r_logdest = pl[0];
		return TP_OK;
	default:
		return TP_ETYPE;
	}
}

size_t
tp_query_make(void *out, size_t outsz, const struct tp_query *q)
{
	uint8_t *p = out;
	size_t	 n;

	if (q->q_type == TP_Q_RELOAD) {
		if (outsz < TP_HDR_LEN)
			return 0;
		tp_put_hdr(p, TP_Q_RELOAD, 0, q->q_id);
		return TP_HDR_LEN;
	}
	n = TP_HIT_FIXED + q->q_toklen + q->q_clientlen + q->q_ualen;
	if (q->q_type != TP_Q_HIT || outsz < TP_HDR_LEN + n ||
	    !tp_method_ok(q->q_kind, q->q_method) ||
	    !tp_tok_ok((const uint8_t *)q->q_tok, q->q_toklen) ||
	    !tp_client_ok((const uint8_t *)q->q_client, q->q_clientlen) ||
	    q->q_ualen > TP_UA_MAX ||
	    !tp_text_ok((const uint8_t *)q->q_ua, q->q_ualen, 0x20))
		return 0;
	tp_put_hdr(p, TP_Q_HIT, n, q->q_id);
	p += TP_HDR_LEN;
	p[0] = (uint8_t)q->q_kind;
	p[1] = q->q_method;
	p[2] = (uint8_t)q->q_toklen;
	p[3] = (uint8_t)q->q_clientlen;
	tp_put16(p + 4, q->q_ualen);
	memcpy(p + TP_HIT_FIXED, q->q_tok, q->q_toklen);
	if (q->q_clientlen > 0)
		memcpy(p + TP_HIT_FIXED + q->q_toklen, q->q_client,
		    q->q_clientlen);
	if (q->q_ualen > 0)
		memcpy(p + TP_HIT_FIXED + q->q_toklen + q->q_clientlen, q->q_ua,
		    q->q_ualen);
	return TP_HDR_LEN + n;
}

static size_t
tp_answer_make(uint8_t *p, size_t outsz, const struct tp_reply *r)
{
	size_t n = TP_ANSWER_FIXED + r->r_bodylen + r->r_loclen;

	if (outsz < TP_HDR_LEN + n || r->r_status < 100 || r->r_status > 599 ||
	    (r->r_flags & ~TP_F_ALL) != 0 || r->r_ctype > TP_CT_HTML ||
	    r->r_bodylen > TP_BODY_MAX || r->r_loclen > TP_LOC_MAX ||
	    (r->r_loclen > 0) != (r->r_status == 302) ||
	    !tp_text_ok((const uint8_t *)r->r_loc, r->r_loclen, 0x21))
		return 0;
	tp_put_hdr(p, TP_R_ANSWER, n, r->r_id);
	p += TP_HDR_LEN;
	tp_put16(p, r->r_status);
	p[2] = r->r_flags;
	p[3] = r->r_ctype;
	tp_put16(p + 4, r->r_bodylen);
	tp_put16(p + 6, r->r_loclen);
	if (r->r_bodylen > 0)
		memcpy(p + TP_ANSWER_FIXED, r->r_body, r->r_bodylen);
	if (r->r_loclen > 0)
		memcpy(p + TP_ANSWER_FIXED + r->r_bodylen, r->r_loc,
		    r->r_loclen);
	return TP_HDR_LEN + n;
}

size_t
tp_reply_make(void *out, size_t outsz, const struct tp_reply *r)
{
	uint8_t *p = out;

	if (r->r_type == TP_R_ANSWER)
		return tp_answer_make(p, outsz, r);
	if (r->r_type != TP_R_RELOADED || outsz < TP_HDR_LEN + 1 ||
	    r->r_logdest > 1)
		return 0;
	tp_put_hdr(p, TP_R_RELOADED, 1, r->r_id);
	p[TP_HDR_LEN] = r->r_logdest;
	return TP_HDR_LEN + 1;
}

int
tp_route(const char *path, char *kind_r, const char **tok_r)
{
	if (path[0] != '/' || path[1] == '\0' || path[2] != '/' ||
	    strchr("ocu", path[1]) == NULL)
		return -1;
	*kind_r = path[1];
	*tok_r = path + 3;
	return tp_tok_ok((const uint8_t *)*tok_r, strlen(*tok_r)) ? 0 : 1;
}
