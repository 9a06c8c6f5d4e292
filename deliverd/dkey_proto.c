/*
 * dkey_proto: encode and parse the worker <-> key process messages
 * (format in dkey_proto.h). Pure and bounded: no I/O, no allocation.
 */
#include "config.h"

#include <string.h>

#include "dkey_proto.h"
#include "peer_hdr.h"
#include "qid.h"

_Static_assert(DKEY_OUT_MAX >= 2048 && DKEY_OUT_MAX <= UINT16_MAX,
    "a signature, a public key or a batch of tokens in one datagram");
_Static_assert(DKEY_TOKENS_PAYLOAD <= DKEY_REQ_MAX - DKEY_HDR_LEN,
    "a tokens request within the request bound");

size_t
dkey_tokens_count(const struct dkey_req *r)
{
	return ((r->dq_what & DKEY_TOK_OPEN) != 0) +
	    ((r->dq_what & DKEY_TOK_UNSUB) != 0) + (size_t)r->dq_links;
}

static bool
dkey_tokens_ok(const struct dkey_req *r)
{
	return strnlen(r->dq_qid, sizeof(r->dq_qid)) == QID_LEN &&
	    qid_ok(r->dq_qid) &&
	    (r->dq_what & ~(DKEY_TOK_OPEN | DKEY_TOK_UNSUB)) == 0 &&
	    r->dq_links <= DKEY_LINKS_MAX && dkey_tokens_count(r) > 0;
}

bool
dkey_name_ok(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > DKEY_NAME_MAX || name[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '@' || c == '.' ||
			c == '_' || c == '-'))
			return false;
	}
	return true;
}

size_t
dkey_request_make(uint8_t *buf, size_t bufsz, uint32_t id,
    const struct dkey_req *r)
{
	size_t	 nl = strnlen(r->dq_name, sizeof(r->dq_name)), len;
	uint8_t *pl = buf + DKEY_HDR_LEN;

	if (r->dq_type == DKEY_Q_TOKENS) {
		len = DKEY_TOKENS_PAYLOAD;
		if (nl != 0 || !dkey_tokens_ok(r) || bufsz < DKEY_HDR_LEN + len)
			return 0;
		memcpy(pl, r->dq_qid, QID_LEN);
		pl[QID_LEN] = (uint8_t)(r->dq_idx >> 24);
		pl[QID_LEN + 1] = (uint8_t)(r->dq_idx >> 16);
		pl[QID_LEN + 2] = (uint8_t)(r->dq_idx >> 8);
		pl[QID_LEN + 3] = (uint8_t)r->dq_idx;
		pl[QID_LEN + 4] = r->dq_what;
		pl[QID_LEN + 5] = (uint8_t)(r->dq_links >> 8);
		pl[QID_LEN + 6] = (uint8_t)r->dq_links;
		peer_hdr_put(buf, DKEY_VERSION, r->dq_type, len, id);
		return DKEY_HDR_LEN + len;
	}
	if (!dkey_name_ok(r->dq_name, nl))
		return 0;
	switch (r->dq_type) {
	case DKEY_Q_PUB:
		len = nl;
		if (bufsz < DKEY_HDR_LEN + len)
			return 0;
		memcpy(buf + DKEY_HDR_LEN, r->dq_name, nl);
		break;
	case DKEY_Q_RSA:
	case DKEY_Q_ED25519:
		len = 1 + nl + DKEY_DIGEST_LEN;
		if (bufsz < DKEY_HDR_LEN + len)
			return 0;
		buf[DKEY_HDR_LEN] = (uint8_t)nl;
		memcpy(buf + DKEY_HDR_LEN + 1, r->dq_name, nl);
		memcpy(buf + DKEY_HDR_LEN + 1 + nl, r->dq_digest,
		    DKEY_DIGEST_LEN);
		break;
	default:
		return 0;
	}
	peer_hdr_put(buf, DKEY_VERSION, r->dq_type, len, id);
	return DKEY_HDR_LEN + len;
}

enum dkey_status
dkey_request_parse(const void *buf, size_t len, uint32_t *id_r,
    struct dkey_req *r)
{
	const uint8_t  *p = buf, *pl;
	struct peer_hdr h;
	size_t		nl;

	memset(r, 0, sizeof(*r));
	if (peer_hdr_get(p, len, DKEY_REQ_MAX, DKEY_VERSION, &h) == -1)
		return DKEY_EHDR;
	*id_r = h.ph_id;
	pl = p + DKEY_HDR_LEN;
	switch (h.ph_type) {
	case DKEY_Q_PUB:
		nl = h.ph_len;
		if (!dkey_name_ok((const char *)pl, nl))
			return DKEY_EPAYLOAD;
		memcpy(r->dq_name, pl, nl);
		break;
	case DKEY_Q_RSA:
	case DKEY_Q_ED25519:
		if (h.ph_len < 1)
			return DKEY_EPAYLOAD;
		nl = pl[0];
		if (h.ph_len != 1 + nl + DKEY_DIGEST_LEN ||
		    !dkey_name_ok((const char *)pl + 1, nl))
			return DKEY_EPAYLOAD;
		memcpy(r->dq_name, pl + 1, nl);
		memcpy(r->dq_digest, pl + 1 + nl, DKEY_DIGEST_LEN);
		break;
	case DKEY_Q_TOKENS:
		if (h.ph_len != DKEY_TOKENS_PAYLOAD)
			return DKEY_EPAYLOAD;
		memcpy(r->dq_qid, pl, QID_LEN);
		r->dq_qid[QID_LEN] = '\0';
		r->dq_idx = (uint32_t)pl[QID_LEN] << 24 |
		    (uint32_t)pl[QID_LEN + 1] << 16 |
		    (uint32_t)pl[QID_LEN + 2] << 8 | pl[QID_LEN + 3];
		r->dq_what = pl[QID_LEN + 4];
		r->dq_links = (uint16_t)(pl[QID_LEN + 5] << 8 |
		    pl[QID_LEN + 6]);
		if (!dkey_tokens_ok(r))
			return DKEY_EPAYLOAD;
		break;
	default:
		return DKEY_ETYPE;
	}
	r->dq_type = h.ph_type;
	return DKEY_OK;
}

size_t
dkey_reply_make(uint8_t *buf, size_t bufsz, uint8_t type, uint32_t id,
    const uint8_t *out, size_t len)
{
	if ((type != DKEY_R_OK && type != DKEY_R_NO) ||
	    (type == DKEY_R_OK && (len == 0 || out == NULL)) ||
	    (type == DKEY_R_NO && len != 0) || len > DKEY_OUT_MAX ||
	    bufsz < DKEY_HDR_LEN + len)
		return 0;
	peer_hdr_put(buf, DKEY_VERSION, type, len, id);
	if (len > 0)
		memcpy(buf + DKEY_HDR_LEN, out, len);
	return DKEY_HDR_LEN + len;
}

enum dkey_status
dkey_reply_parse(const void *buf, size_t len, struct dkey_reply *r)
{
	const uint8_t  *p = buf;
	struct peer_hdr h;

	memset(r, 0, sizeof(*r));
	if (peer_hdr_get(p, len, DKEY_REP_MAX, DKEY_VERSION, &h) == -1)
		return DKEY_EHDR;
	r->dr_type = h.ph_type;
	r->dr_id = h.ph_id;
	if (r->dr_type != DKEY_R_OK && r->dr_type != DKEY_R_NO)
		return DKEY_ETYPE;
	if ((r->dr_type == DKEY_R_OK) != (h.ph_len > 0) ||
	    h.ph_len > DKEY_OUT_MAX)
		return DKEY_EPAYLOAD;
	r->dr_out = p + DKEY_HDR_LEN;
	r->dr_len = h.ph_len;
	return DKEY_OK;
}
