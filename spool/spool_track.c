/*
 * Engagement tracking (spool_track.h): the tracking key, the tokens and
 * the records of what a tracked message links to.
 *
 * A token is base64url (no padding) of 29 bytes: the payload (kind byte,
 * the QID's ten bytes, recipient index BE32, link number BE16) and the
 * first 12 bytes of HMAC-SHA256(key, context || payload). Decoding is
 * strict (the two spare bits of the last character must be zero), so no
 * two strings name the same token.
 *
 * Records live in the `track` database under the QID (arrival order):
 * the fields in spool_rec's encoding, links as repeated tag 20 and
 * recipients as repeated tag 21, both in index order. The database is
 * appended to spool_db's table: a writer's open creates it in an older
 * environment (nothing to build: it starts empty), a reader that opens
 * one no writer has opened since fails with SPOOL_EVERSION.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "spool_key.h"
#include "spool_keyfile.h"
#include "spool_rec.h"
#include "spool_track.h"
#include "xmem.h"

#define SPOOL_TRACK_CTX	     "smtpgate track v1\n"
#define SPOOL_TRACK_PAYLOAD  17 /* kind, qid[10], idx[4], link[2] */
#define SPOOL_TRACK_MACLEN   12
#define SPOOL_TRACK_RAW	     (SPOOL_TRACK_PAYLOAD + SPOOL_TRACK_MACLEN)
#define SPOOL_TRACK_B64LEN   ((SPOOL_TRACK_RAW * 8 + 5) / 6) /* 39 */
#define SPOOL_TRACK_TAG_LINK 20
#define SPOOL_TRACK_TAG_RCPT 21
#define SPOOL_TRACK_TAG_PLAN 22
#define SPOOL_TRACK_PLAN_MAX (1u << 20)

_Static_assert(SPOOL_TRACK_B64LEN < SPOOL_TRACK_TOKEN_MAX, "token size");
_Static_assert(SPOOL_TRACK_B64LEN == SPOOL_TRACK_TOKEN_LEN, "token length");

/*
 * ---- the key: db/track.key, 0600, spoold_user's (the spool tree fixes an
 * older 0640). Its readers, deliverd's key process (signs: its delivery
 * workers never read it) and trackd's backend
 * (verifies), run as that user: they write the database. Group smtpgate
 * (spoolctl's read-only operators) could forge tokens with it.
 */

static const struct spool_keyfile spool_track_keyfile = {
	SPOOL_TRACK_KEY_FILE, SPOOL_TRACK_KEYLEN, 0600, 077,
	false, /* open to the group or others: never use it */
};

int
spool_track_key_load(const char *spool_dir, bool create,
    unsigned char key[SPOOL_TRACK_KEYLEN])
{
	return spool_keyfile_load(&spool_track_keyfile, spool_dir, create, key);
}

/* ---- tokens */

static const char spool_track_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
spool_track_b64val(int c)
{
	const char *p;

	if (c == '\0' || (p = strchr(spool_track_b64, c)) == NULL)
		return -1;
	return (int)(p - spool_track_b64);
}

static void
spool_track_b64enc(const uint8_t *in, size_t n, char *out)
{
	uint32_t acc = 0;
	size_t	 i, o = 0;
	int	 bits = 0;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = spool_track_b64[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = spool_track_b64[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* Exactly SPOOL_TRACK_RAW bytes from SPOOL_TRACK_B64LEN characters; -1 on
 * any other length, a foreign character or non-zero spare bits. */
static int
spool_track_b64dec(const char *s, size_t len, uint8_t out[SPOOL_TRACK_RAW])
{
	uint32_t acc = 0;
	size_t	 i, o = 0;
	int	 bits = 0, v;

	if (len != SPOOL_TRACK_B64LEN)
		return -1;
	for (i = 0; i < len; i++) {
		if ((v = spool_track_b64val((unsigned char)s[i])) == -1)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == SPOOL_TRACK_RAW)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (o != SPOOL_TRACK_RAW || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return 0;
}

static int
spool_track_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
spool_track_kind_ok(int k)
{
	return k == SPOOL_TRACK_OPEN || k == SPOOL_TRACK_CLICK ||
	    k == SPOOL_TRACK_UNSUB;
}

/*
 * A keyed HMAC-SHA256 context, reused for every token (spool_track.h):
 * EVP_MAC_init without a key starts over from the key set once, a fifth
 * of the cost of keying per token (HMAC()).
 */
struct spool_track_signer {
	EVP_MAC_CTX *ts_ctx;
};

struct spool_track_signer *
spool_track_signer_new(const unsigned char key[SPOOL_TRACK_KEYLEN])
{
	struct spool_track_signer *s;
	EVP_MAC			  *mac;
	OSSL_PARAM		   p[] = {
				OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
				    (char *)"SHA256", 0),
				OSSL_PARAM_construct_end(),
	};

	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->ts_ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context holds its own reference */
	if (s->ts_ctx == NULL ||
	    EVP_MAC_init(s->ts_ctx, key, SPOOL_TRACK_KEYLEN, p) != 1) {
		spool_track_signer_free(s);
		return NULL;
	}
	return s;
}

void
spool_track_signer_free(struct spool_track_signer *s)
{
	if (s == NULL)
		return;
	EVP_MAC_CTX_free(s->ts_ctx); /* cleanses the keyed state */
	free(s);
}

static int
spool_track_mac(struct spool_track_signer *s, const uint8_t *payload,
    uint8_t mac[SPOOL_TRACK_MACLEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t	      mdlen = 0;
	int	      ok;

	ok = EVP_MAC_init(s->ts_ctx, NULL, 0, NULL) == 1 &&
	    EVP_MAC_update(s->ts_ctx, (const unsigned char *)SPOOL_TRACK_CTX,
		sizeof(SPOOL_TRACK_CTX) - 1) == 1 &&
	    EVP_MAC_update(s->ts_ctx, payload, SPOOL_TRACK_PAYLOAD) == 1 &&
	    EVP_MAC_final(s->ts_ctx, md, &mdlen, sizeof(md)) == 1 &&
	    mdlen >= SPOOL_TRACK_MACLEN;
	if (ok)
		memcpy(mac, md, SPOOL_TRACK_MACLEN);
	OPENSSL_cleanse(md, sizeof(md));
	return ok ? 0 : -1;
}

int
spool_track_token_with(struct spool_track_signer *s,
    const struct spool_track_ref *r, char *out, size_t outlen)
{
	uint8_t raw[SPOOL_TRACK_RAW];
	size_t	i;

	if (outlen <= SPOOL_TRACK_B64LEN ||
	    !spool_track_kind_ok((int)r->tk_kind) ||
	    strnlen(r->tk_qid, QID_SIZE) != QID_LEN || !qid_ok(r->tk_qid) ||
	    (r->tk_kind != SPOOL_TRACK_CLICK && r->tk_link != 0))
		return -1;
	raw[0] = (uint8_t)r->tk_kind;
	for (i = 0; i < QID_LEN / 2; i++)
		raw[1 + i] = (uint8_t)(spool_track_hex(r->tk_qid[2 * i]) << 4 |
		    spool_track_hex(r->tk_qid[2 * i + 1]));
	spool_be32_put(raw + 11, r->tk_idx);
	raw[15] = (uint8_t)(r->tk_link >> 8);
	raw[16] = (uint8_t)r->tk_link;
	if (spool_track_mac(s, raw, raw + SPOOL_TRACK_PAYLOAD) == -1)
		return -1;
	spool_track_b64enc(raw, sizeof(raw), out);
	return 0;
}

int
spool_track_token(const unsigned char key[SPOOL_TRACK_KEYLEN],
    const struct spool_track_ref *r, char *out, size_t outlen)
{
	struct spool_track_signer *s;
	int			   rc;

	if ((s = spool_track_signer_new(key)) == NULL)
		return -1;
	rc = spool_track_token_with(s, r, out, outlen);
	spool_track_signer_free(s);
	return rc;
}

int
spool_track_parse(const unsigned char key[SPOOL_TRACK_KEYLEN], const char *tok,
    size_t len, struct spool_track_ref *r)
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t		  raw[SPOOL_TRACK_RAW], mac[SPOOL_TRACK_MACLEN];
	struct spool_track_signer *s;
	size_t			   i;
	int			   rc;

	if (spool_track_b64dec(tok, len, raw) == -1 ||
	    (s = spool_track_signer_new(key)) == NULL)
		return -1;
	rc = spool_track_mac(s, raw, mac);
	spool_track_signer_free(s);
	if (rc == -1 ||
	    CRYPTO_memcmp(mac, raw + SPOOL_TRACK_PAYLOAD, sizeof(mac)) != 0 ||
	    !spool_track_kind_ok(raw[0]))
		return -1;
	memset(r, 0, sizeof(*r));
	r->tk_kind = (enum spool_track_kind)raw[0];
	for (i = 0; i < QID_LEN / 2; i++) {
		r->tk_qid[2 * i] = hex[raw[1 + i] >> 4];
		r->tk_qid[2 * i + 1] = hex[raw[1 + i] & 15];
	}
	r->tk_qid[QID_LEN] = '\0';
	r->tk_idx = spool_be32_get(raw + 11);
	r->tk_link = (uint16_t)(raw[15] << 8 | raw[16]);
	if (r->tk_kind != SPOOL_TRACK_CLICK && r->tk_link != 0)
		return -1;
	return 0;
}

/* ---- records */

#define KM struct spool_track_msg
#define KSTR(tag, m) \
	{ \
		tag, SPOOL_F_STR, offsetof(KM, m), sizeof(((KM *)0)->m) \
	}
#define KNUM(tag, ty, m) \
	{ \
		tag, ty, offsetof(KM, m), sizeof(((KM *)0)->m) \
	}
static const struct spool_rec_field spool_track_fields[] = {
	KSTR(1, km_login),
	KNUM(2, SPOOL_F_U64, km_issue),
	KSTR(3, km_uniq),
	KSTR(4, km_message_id),
	KSTR(5, km_from),
	KNUM(6, SPOOL_F_I64, km_arrival),
	KNUM(7, SPOOL_F_U32, km_track),
	KSTR(8, km_host),
};
#undef KSTR
#undef KNUM
#undef KM
#define SPOOL_TRACK_NFIELDS \
	(sizeof(spool_track_fields) / sizeof(spool_track_fields[0]))

static int
spool_track_key(struct spool_key *k, const char *qid)
{
	if (!qid_ok(qid))
		return EINVAL;
	spool_key_init(k);
	spool_key_str(k, qid);
	return 0;
}

static int
spool_track_enc(const struct spool_track_msg *m, struct buf *b)
{
	size_t i;
	int    rc;

	if ((rc = spool_rec_enc(spool_track_fields, SPOOL_TRACK_NFIELDS, m,
		 b)) != 0)
		return rc;
	for (i = 0; i < m->km_nlinks; i++)
		if ((rc = spool_rec_tlv(b, SPOOL_TRACK_TAG_LINK, m->km_links[i],
			 strlen(m->km_links[i]))) != 0)
			return rc;
	for (i = 0; i < m->km_nrcpts; i++)
		if ((rc = spool_rec_tlv(b, SPOOL_TRACK_TAG_RCPT, m->km_rcpts[i],
			 strlen(m->km_rcpts[i]))) != 0)
			return rc;
	if (m->km_plan != NULL &&
	    (rc = spool_rec_tlv(b, SPOOL_TRACK_TAG_PLAN, m->km_plan,
		 m->km_planlen)) != 0)
		return rc;
	return 0;
}

int
spool_track_put(struct spool_txn *t, const char *qid,
    const struct spool_track_msg *m)
{
	struct spool_key k;
	struct buf	 b;
	int		 rc;

	if (spool_track_key(&k, qid) != 0 ||
	    m->km_nlinks > SPOOL_TRACK_LINKS_MAX || m->km_nrcpts > UINT32_MAX ||
	    m->km_planlen > SPOOL_TRACK_PLAN_MAX)
		return EINVAL;
	buf_init(&b, 64 * (size_t)SPOOL_REC_MAX);
	if ((rc = spool_track_enc(m, &b)) == 0)
		rc = spool_db_put(t, SPOOL_DB_TRACK, &k, b.data, b.len);
	buf_release(&b);
	return rc;
}

/* Appends a copy of one repeated string (at most SPOOL_REC_MAX bytes). */
static int
spool_track_add(char ***v, size_t *n, const uint8_t *val, size_t len)
{
	char *s;

	if (memchr(val, '\0', len) != NULL ||
	    *n >= SIZE_MAX / sizeof(char *) - 1)
		return SPOOL_ECORRUPT;
	s = xmalloc(len + 1);
	memcpy(s, val, len);
	s[len] = '\0';
	*v = xreallocarray(*v, *n + 1, sizeof(char *));
	(*v)[(*n)++] = s;
	return 0;
}

static int
spool_track_extra(uint8_t tag, const uint8_t *val, size_t len, void *arg)
{
	struct spool_track_msg *m = arg;

	if (tag == SPOOL_TRACK_TAG_LINK) {
		if (m->km_nlinks >= SPOOL_TRACK_LINKS_MAX)
			return SPOOL_ECORRUPT;
		return spool_track_add(&m->km_links, &m->km_nlinks, val, len);
	}
	if (tag == SPOOL_TRACK_TAG_RCPT)
		return spool_track_add(&m->km_rcpts, &m->km_nrcpts, val, len);
	if (tag == SPOOL_TRACK_TAG_PLAN) {
		if (m->km_plan != NULL || len > SPOOL_TRACK_PLAN_MAX)
			return SPOOL_ECORRUPT;
		m->km_plan = xmalloc(len + 1);
		memcpy(m->km_plan, val, len);
		m->km_planlen = len;
		return 0;
	}
	return 0; /* a newer writer's field */
}

int
spool_track_get(struct spool_txn *t, const char *qid, struct spool_track_msg *m)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	memset(m, 0, sizeof(*m));
	if (spool_track_key(&k, qid) != 0)
		return SPOOL_ENOTFOUND;
	if ((rc = spool_db_get(t, SPOOL_DB_TRACK, &k, &v, &len)) != 0)
		return rc;
	rc = spool_rec_dec(spool_track_fields, SPOOL_TRACK_NFIELDS, v, len, m,
	    spool_track_extra, m);
	if (rc != 0)
		spool_track_msg_free(m);
	return rc;
}

void
spool_track_msg_free(struct spool_track_msg *m)
{
	size_t i;

	for (i = 0; i < m->km_nlinks; i++)
		free(m->km_links[i]);
	for (i = 0; i < m->km_nrcpts; i++)
		free(m->km_rcpts[i]);
	free(m->km_links);
	free(m->km_rcpts);
	free(m->km_plan);
	m->km_plan = NULL;
	m->km_planlen = 0;
	m->km_links = m->km_rcpts = NULL;
	m->km_nlinks = m->km_nrcpts = 0;
}

int
spool_track_del(struct spool_txn *t, const char *qid)
{
	struct spool_key k;

	if (spool_track_key(&k, qid) != 0)
		return SPOOL_ENOTFOUND;
	return spool_db_del(t, SPOOL_DB_TRACK, &k);
}

bool
spool_track_has(struct spool_txn *t, const char *qid)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;

	return spool_track_key(&k, qid) == 0 &&
	    spool_db_get(t, SPOOL_DB_TRACK, &k, &v, &len) == 0;
}
