/*
 * key_proto: encode and parse the worker <-> key process messages
 * (format in key_proto.h). Pure and bounded: no I/O, no allocation.
 */
#include "config.h"

#include <string.h>

#include "key_proto.h"
#include "peer_hdr.h"

size_t
key_request_make(uint8_t *buf, size_t bufsz, uint32_t id,
    const struct tls_sign *r)
{
	if (r->ts_len == 0 || r->ts_len > TLS_SIGN_MAX ||
	    bufsz < KEY_HDR_LEN + 1 + r->ts_len)
		return 0;
	peer_hdr_put(buf, KEY_VERSION, r->ts_kind, 1 + r->ts_len, id);
	buf[KEY_HDR_LEN] = r->ts_md;
	memcpy(buf + KEY_HDR_LEN + 1, r->ts_data, r->ts_len);
	return KEY_HDR_LEN + 1 + r->ts_len;
}

enum key_status
key_request_parse(const void *buf, size_t len, uint32_t *id_r,
    struct tls_sign *r)
{
	const uint8_t  *p = buf;
	struct peer_hdr h;

	memset(r, 0, sizeof(*r));
	if (peer_hdr_get(p, len, KEY_MSG_MAX, KEY_VERSION, &h) == -1)
		return KEY_EHDR;
	*id_r = h.ph_id;
	if (h.ph_type != TLS_SIGN_RSA_PKCS1 && h.ph_type != TLS_SIGN_RSA_PSS &&
	    h.ph_type != TLS_SIGN_ECDSA)
		return KEY_ETYPE;
	if (h.ph_len < 2 || h.ph_len - 1 > TLS_SIGN_MAX ||
	    p[KEY_HDR_LEN] > TLS_MD_SHA512)
		return KEY_EPAYLOAD;
	r->ts_kind = h.ph_type;
	r->ts_md = p[KEY_HDR_LEN];
	r->ts_len = h.ph_len - 1;
	memcpy(r->ts_data, p + KEY_HDR_LEN + 1, r->ts_len);
	return KEY_OK;
}

size_t
key_reply_make(uint8_t *buf, size_t bufsz, uint8_t type, uint32_t id,
    const uint8_t *sig, size_t len)
{
	if ((type != KEY_R_OK && type != KEY_R_NO) ||
	    (type == KEY_R_OK && (len == 0 || sig == NULL)) ||
	    (type == KEY_R_NO && len != 0) || len > TLS_SIGN_MAX ||
	    bufsz < KEY_HDR_LEN + len)
		return 0;
	peer_hdr_put(buf, KEY_VERSION, type, len, id);
	if (len > 0)
		memcpy(buf + KEY_HDR_LEN, sig, len);
	return KEY_HDR_LEN + len;
}

enum key_status
key_reply_parse(const void *buf, size_t len, struct key_reply *r)
{
	const uint8_t  *p = buf;
	struct peer_hdr h;

	memset(r, 0, sizeof(*r));
	if (peer_hdr_get(p, len, KEY_MSG_MAX, KEY_VERSION, &h) == -1)
		return KEY_EHDR;
	r->kr_type = h.ph_type;
	r->kr_id = h.ph_id;
	if (r->kr_type != KEY_R_OK && r->kr_type != KEY_R_NO)
		return KEY_ETYPE;
	if ((r->kr_type == KEY_R_OK) != (h.ph_len > 0) ||
	    h.ph_len > TLS_SIGN_MAX)
		return KEY_EPAYLOAD;
	r->kr_sig = p + KEY_HDR_LEN;
	r->kr_len = h.ph_len;
	return KEY_OK;
}
