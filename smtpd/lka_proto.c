/*
 * lka_proto: encode and parse the worker <-> lookup process messages
 * (format in lka_proto.h). Pure and bounded: no I/O, no allocation.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "lka_proto.h"
#include "peer_hdr.h"

enum lka_status
lka_msg_parse(const void *buf, size_t len, struct lka_msg *m_r)
{
	const uint8_t  *p = buf;
	struct peer_hdr h;

	memset(m_r, 0, sizeof(*m_r));
	if (peer_hdr_get(p, len, LKA_MSG_MAX, LKA_VERSION, &h) == -1)
		return LKA_EHDR;
	m_r->lg_type = h.ph_type;
	m_r->lg_id = h.ph_id;
	m_r->lg_payload = p + LKA_HDR_LEN;
	m_r->lg_len = h.ph_len;
	return LKA_OK;
}

/* Printable ASCII only: what goes into logs and envelopes. */
static bool
lka_text_ok(const uint8_t *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static bool
lka_no_nul(const uint8_t *s, size_t n)
{
	return memchr(s, '\0', n) == NULL;
}

enum lka_status
lka_query_parse(const void *buf, size_t len, struct lka_query *q_r)
{
	struct lka_msg	m;
	enum lka_status st;
	size_t		ul;

	memset(q_r, 0, sizeof(*q_r));
	if ((st = lka_msg_parse(buf, len, &m)) != LKA_OK)
		return st;
	q_r->lq_id = m.lg_id;
	switch (m.lg_type) {
	case LKA_Q_PIN:
		if (m.lg_len == 0 || m.lg_len > LKA_ADDR_MAX ||
		    !lka_text_ok(m.lg_payload, m.lg_len))
			return LKA_EPAYLOAD;
		q_r->lq_type = LKA_Q_PIN;
		q_r->lq_addr = (const char *)m.lg_payload;
		q_r->lq_addrlen = m.lg_len;
		return LKA_OK;
	case LKA_Q_AUTH:
		if (m.lg_len < 1 || (ul = m.lg_payload[0]) == 0 ||
		    ul + 1 > m.lg_len || m.lg_len - 1 - ul > LKA_PASS_MAX ||
		    !lka_no_nul(m.lg_payload + 1, m.lg_len - 1))
			return LKA_EPAYLOAD;
		q_r->lq_type = LKA_Q_AUTH;
		q_r->lq_user = (const char *)m.lg_payload + 1;
		q_r->lq_userlen = ul;
		q_r->lq_pass = (const char *)m.lg_payload + 1 + ul;
		q_r->lq_passlen = m.lg_len - 1 - ul;
		return LKA_OK;
	default:
		return LKA_ETYPE;
	}
}

static bool
lka_hex_ok(const uint8_t *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* "login\0tag": a printable login and a 64-digit lower-case hex tag. */
static enum lka_status
lka_reply_ok_payload(const struct lka_msg *m, struct lka_reply *r)
{
	const uint8_t *nul = memchr(m->lg_payload, '\0', m->lg_len);
	size_t	       ll, tl;

	if (nul == NULL)
		return LKA_EPAYLOAD;
	ll = (size_t)(nul - m->lg_payload);
	tl = m->lg_len - ll - 1;
	if (ll == 0 || ll >= sizeof(r->lr_login) ||
	    tl != sizeof(r->lr_tag) - 1 || !lka_text_ok(m->lg_payload, ll) ||
	    !lka_hex_ok(nul + 1, tl))
		return LKA_EPAYLOAD;
	memcpy(r->lr_login, m->lg_payload, ll);
	r->lr_login[ll] = '\0';
	memcpy(r->lr_tag, nul + 1, tl);
	r->lr_tag[tl] = '\0';
	return LKA_OK;
}

enum lka_status
lka_reply_parse(const void *buf, size_t len, struct lka_reply *r_r)
{
	struct lka_msg	m;
	enum lka_status st;

	memset(r_r, 0, sizeof(*r_r));
	if ((st = lka_msg_parse(buf, len, &m)) != LKA_OK)
		return st;
	r_r->lr_id = m.lg_id;
	switch (m.lg_type) {
	case LKA_R_OK:
		r_r->lr_type = LKA_R_OK;
		return lka_reply_ok_payload(&m, r_r);
	case LKA_R_NO:
	case LKA_R_TEMP:
		if (m.lg_len != 0)
			return LKA_EPAYLOAD;
		r_r->lr_type = (enum lka_type)m.lg_type;
		return LKA_OK;
	default:
		return LKA_ETYPE;
	}
}

size_t
lka_query_pin(void *out, size_t outsz, uint32_t id, const char *addr)
{
	size_t n = strlen(addr);

	if (n == 0 || n > LKA_ADDR_MAX || outsz < LKA_HDR_LEN + n)
		return 0;
	peer_hdr_put(out, LKA_VERSION, LKA_Q_PIN, n, id);
	memcpy((uint8_t *)out + LKA_HDR_LEN, addr, n);
	return LKA_HDR_LEN + n;
}

size_t
lka_query_auth(void *out, size_t outsz, uint32_t id, const char *user,
    size_t userlen, const char *pass, size_t passlen)
{
	uint8_t *p = out;
	size_t	 n = 1 + userlen + passlen;

	if (userlen == 0 || userlen > LKA_USER_MAX || passlen > LKA_PASS_MAX ||
	    outsz < LKA_HDR_LEN + n)
		return 0;
	peer_hdr_put(p, LKA_VERSION, LKA_Q_AUTH, n, id);
	p[LKA_HDR_LEN] = (uint8_t)userlen;
	memcpy(p + LKA_HDR_LEN + 1, user, userlen);
	memcpy(p + LKA_HDR_LEN + 1 + userlen, pass, passlen);
	return LKA_HDR_LEN + n;
}

size_t
lka_reply_make(void *out, size_t outsz, enum lka_type type, uint32_t id,
    const char *login, const char *tag)
{
	uint8_t *p = out;
	size_t	 ll, tl, n = 0;

	if (type == LKA_R_OK) {
		ll = strlen(login);
		tl = strlen(tag);
		n = ll + 1 + tl;
		if (ll == 0 || ll >= LKA_LOGIN_MAX || tl != LKA_TAG_MAX - 1 ||
		    outsz < LKA_HDR_LEN + n)
			return 0;
		memcpy(p + LKA_HDR_LEN, login, ll + 1);
		memcpy(p + LKA_HDR_LEN + ll + 1, tag, tl);
	} else if (outsz < LKA_HDR_LEN)
		return 0;
	peer_hdr_put(p, LKA_VERSION, (uint8_t)type, n, id);
	return LKA_HDR_LEN + n;
}
