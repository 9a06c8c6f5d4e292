/*
 * key_proto: encode and parse the worker <-> key process messages
 * (format in key_proto.h). Pure and bounded: no I/O, no allocation.
 */
#include "config.h"

#include <string.h>

#include "key_proto.h"

static void
key_put_hdr(uint8_t *p, uint8_t type, size_t len, uint32_t id)
{
	p[0] = KEY_VERSION;
	p[1] = type;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[4] = (uint8_t)(id >> 24);
	p[5] = (uint8_t)(id >> 16);
	p[6] = (uint8_t)(id >> 8);
	p[7] = (uint8_t)id;
}

/* The header: 0 and type, id, payload length; -1 if malformed. */
static int
key_get_hdr(const uint8_t *p, size_t len, uint8_t *type_r, uint32_t *id_r,
    size_t *plen_r)
{
	if (len < KEY_HDR_LEN || len > KEY_MSG_MAX || p[0] != KEY_VERSION)
		return -1;
	*plen_r = (size_t)p[2] << 8 | p[3];
	if (*plen_r != len - KEY_HDR_LEN)
		return -1;
	*type_r = p[1];
	*id_r = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
	    (uint32_t)p[6] << 8 | p[7];
	return 0;
}

size_t
key_request_make(uint8_t *buf, size_t bufsz, uint32_t id,
    const struct tls_sign *r)
{
	if (r->ts_len == 0 || r->ts_len > TLS_SIGN_MAX ||
	    bufsz < KEY_HDR_LEN + 1 + r->ts_len)
		return 0;
	key_put_hdr(buf, r->ts_kind, 1 + r->ts_len, id);
	buf[KEY_HDR_LEN] = r->ts_md;
	memcpy(buf + KEY_HDR_LEN + 1, r->ts_data, r->ts_len);
	return KEY_HDR_LEN + 1 + r->ts_len;
}

enum key_status
key_request_parse(const void *buf, size_t len, uint32_t *id_r,
    struct tls_sign *r)
{
	const uint8_t *p = buf;
	uint8_t	       type;
	size_t	       plen;

	memset(r, 0, sizeof(*r));
	if (key_get_hdr(p, len, &type, id_r, &plen) == -1)
		return KEY_EHDR;
	if (type != TLS_SIGN_RSA_PKCS1 && type != TLS_SIGN_RSA_PSS &&
	    type != TLS_SIGN_ECDSA)
		return KEY_ETYPE;
	if (plen < 2 || plen - 1 > TLS_SIGN_MAX ||
	    p[KEY_HDR_LEN] > TLS_MD_SHA512)
		return KEY_EPAYLOAD;
	r->ts_kind = type;
	r->ts_md = p[KEY_HDR_LEN];
	r->ts_len = plen - 1;
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
	key_put_hdr(buf, type, len, id);
	if (len > 0)
		memcpy(buf + KEY_HDR_LEN, sig, len);
	return KEY_HDR_LEN + len;
}

enum key_status
key_reply_parse(const void *buf, size_t len, struct key_reply *r)
{
	const uint8_t *p = buf;
	size_t	       plen;

	memset(r, 0, sizeof(*r));
	if (key_get_hdr(p, len, &r->kr_type, &r->kr_id, &plen) == -1)
		return KEY_EHDR;
	if (r->kr_type != KEY_R_OK && r->kr_type != KEY_R_NO)
		return KEY_ETYPE;
	if ((r->kr_type == KEY_R_OK) != (plen > 0) || plen > TLS_SIGN_MAX)
		return KEY_EPAYLOAD;
	r->kr_sig = p + KEY_HDR_LEN;
	r->kr_len = plen;
	return KEY_OK;
}
