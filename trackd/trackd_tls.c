/*
 * trackd_tls: GnuTLS's side of the key process (trackd_tls.h). GnuTLS
 * calls the external key's sign_hash with the digest (ECDSA, RSA-PSS: the
 * signature algorithm names the hash) or, for PKCS#1 v1.5
 * (GNUTLS_SIGN_RSA_RAW), the DigestInfo; TLS 1.3 hashes its signature
 * input first. The info callback tells which signature algorithms the
 * key process answers, so GnuTLS negotiates no other.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "log.h"
#include "tls_key_pss.h"
#include "trackd_tls.h"
#include "xmem.h"

#define TRACKD_TLS_CHAIN_MAX 16

struct trackd_tls {
	gnutls_pcert_st	      t_pcert[TRACKD_TLS_CHAIN_MAX];
	unsigned	      t_npcert;
	gnutls_privkey_t      t_key;
	gnutls_pk_algorithm_t t_pk; /* GNUTLS_PK_RSA or GNUTLS_PK_ECDSA */
	unsigned	      t_bits;
	struct tls_key_pss   *t_pss; /* RSA: the PSS encoding */
	trackd_tls_sign_fn   *t_sign;
	void		     *t_arg;
};

static struct trackd_tls *trackd_tls_cur;

static uint8_t
trackd_tls_md(gnutls_digest_algorithm_t d)
{
	return d == GNUTLS_DIG_SHA256 ? TLS_MD_SHA256
	    : d == GNUTLS_DIG_SHA384  ? TLS_MD_SHA384
	    : d == GNUTLS_DIG_SHA512  ? TLS_MD_SHA512
				      : TLS_MD_NONE;
}

static bool
trackd_tls_is_pss(gnutls_sign_algorithm_t a)
{
	return a == GNUTLS_SIGN_RSA_PSS_RSAE_SHA256 ||
	    a == GNUTLS_SIGN_RSA_PSS_RSAE_SHA384 ||
	    a == GNUTLS_SIGN_RSA_PSS_RSAE_SHA512;
}

/* What the key process answers for this key. */
static bool
trackd_tls_algo_ok(const struct trackd_tls *t, gnutls_sign_algorithm_t a)
{
	if (trackd_tls_md(gnutls_sign_get_hash_algorithm(a)) == TLS_MD_NONE)
		return false;
	if (t->t_pk == GNUTLS_PK_RSA)
		return a == GNUTLS_SIGN_RSA_SHA256 ||
		    a == GNUTLS_SIGN_RSA_SHA384 ||
		    a == GNUTLS_SIGN_RSA_SHA512 || trackd_tls_is_pss(a);
	return gnutls_sign_get_pk_algorithm(a) == GNUTLS_PK_ECDSA;
}

/* GnuTLS's request as the key process's; -1: not one it answers. */
static int
trackd_tls_request(const struct trackd_tls *t, gnutls_sign_algorithm_t a,
    const gnutls_datum_t *hash, struct tls_sign *r)
{
	gnutls_digest_algorithm_t d;
	unsigned		  n = sizeof(r->ts_data);
	uint8_t			  md;

	memset(r, 0, sizeof(*r));
	if (t->t_pk == GNUTLS_PK_RSA && a == GNUTLS_SIGN_RSA_RAW) {
		/* PKCS#1 v1.5: the DigestInfo (TLS 1.0's MD5+SHA1 is none) */
		if (gnutls_decode_ber_digest_info(hash, &d, r->ts_data, &n) !=
			0 ||
		    (md = trackd_tls_md(d)) == TLS_MD_NONE ||
		    n != gnutls_hash_get_len(d))
			return -1;
		r->ts_kind = TLS_SIGN_RSA_PKCS1;
		r->ts_md = md;
		r->ts_len = n;
		return 0;
	}
	if (!trackd_tls_algo_ok(t, a))
		return -1;
	d = gnutls_sign_get_hash_algorithm(a);
	md = trackd_tls_md(d);
	if (hash->size != gnutls_hash_get_len(d))
		return -1;
	if (t->t_pk == GNUTLS_PK_RSA)
		return trackd_tls_is_pss(a)
		    ? tls_key_pss_encode(t->t_pss, md, hash->data, hash->size,
			  r)
		    : -1; /* PKCS#1 v1.5 comes as RSA_RAW */
	r->ts_kind = TLS_SIGN_ECDSA;
	r->ts_md = md;
	r->ts_len = hash->size;
	memcpy(r->ts_data, hash->data, hash->size);
	return 0;
}

static int
trackd_tls_sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t a, void *arg,
    unsigned flags, const gnutls_datum_t *hash, gnutls_datum_t *signature)
{
	struct trackd_tls *t = arg;
	struct tls_sign	   req;
	uint8_t		   sig[TLS_SIGN_MAX];
	size_t		   n = 0;

	(void)key;
	(void)flags; /* RSA-PSS: the algorithm says so too */
	if (trackd_tls_request(t, a, hash, &req) == -1) {
		log_warnx("tls: signature %s not offered: handshake refused",
		    gnutls_sign_get_name(a) != NULL ? gnutls_sign_get_name(a)
						    : "unknown");
		return GNUTLS_E_INVALID_REQUEST;
	}
	if (t->t_sign(t->t_arg, &req, sig, sizeof(sig), &n) == -1 || n == 0)
		return GNUTLS_E_PK_SIGN_FAILED;
	if ((signature->data = gnutls_malloc(n)) == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	memcpy(signature->data, sig, n);
	signature->size = (unsigned)n;
	return 0;
}

static int
trackd_tls_info(gnutls_privkey_t key, unsigned flags, void *arg)
{
	struct trackd_tls *t = arg;

	(void)key;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO)
		return trackd_tls_algo_ok(t, GNUTLS_FLAGS_TO_SIGN_ALGO(flags));
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)t->t_pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)t->t_bits;
	if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
		return t->t_pk == GNUTLS_PK_RSA ? GNUTLS_SIGN_RSA_SHA256
						: GNUTLS_SIGN_ECDSA_SHA256;
	return -1;
}

static int
trackd_tls_retrieve_cb(gnutls_session_t s, const gnutls_datum_t *req_ca,
    int nreq, const gnutls_pk_algorithm_t *pk, int npk, gnutls_pcert_st **pcert,
    unsigned *npcert, gnutls_privkey_t *key)
{
	struct trackd_tls *t = trackd_tls_cur;

	(void)s;
	(void)req_ca;
	(void)nreq;
	(void)pk;
	(void)npk;
	if (t == NULL)
		return -1;
	*pcert = t->t_pcert; /* GnuTLS neither frees nor changes them */
	*npcert = t->t_npcert;
	*key = t->t_key;
	return 0;
}

trackd_tls_cb *
trackd_tls_retrieve(void)
{
	gnutls_certificate_retrieve_function2 *fn = trackd_tls_retrieve_cb;

	return (trackd_tls_cb *)fn;
}

/* The certificate's key: which, how large, and RSA's modulus. */
static int
trackd_tls_pubkey(struct trackd_tls *t, char *err, size_t errsz)
{
	gnutls_datum_t m = { NULL, 0 }, e = { NULL, 0 };
	int	       pk;

	pk = gnutls_pubkey_get_pk_algorithm(t->t_pcert[0].pubkey, &t->t_bits);
	if (pk != GNUTLS_PK_RSA && pk != GNUTLS_PK_ECDSA) {
		(void)snprintf(err, errsz,
		    "certificate key is neither RSA nor EC");
		return -1;
	}
	t->t_pk = (gnutls_pk_algorithm_t)pk;
	if (pk != GNUTLS_PK_RSA)
		return 0;
	if (gnutls_pubkey_export_rsa_raw2(t->t_pcert[0].pubkey, &m, &e, 0) == 0)
		t->t_pss = tls_key_pss_new(m.data, m.size);
	gnutls_free(m.data);
	gnutls_free(e.data);
	if (t->t_pss == NULL) {
		(void)snprintf(err, errsz, "certificate's RSA key");
		return -1;
	}
	return 0;
}

struct trackd_tls *
trackd_tls_new(const char *cert_pem, trackd_tls_sign_fn *sign, void *arg,
    char *err, size_t errsz)
{
	struct trackd_tls *t = xcalloc(1, sizeof(*t));
	gnutls_datum_t	   pem = { (unsigned char *)(uintptr_t)cert_pem,
		    (unsigned)strlen(cert_pem) };
	int		   rc;

	t->t_sign = sign;
	t->t_arg = arg;
	t->t_npcert = TRACKD_TLS_CHAIN_MAX;
	if ((rc = gnutls_pcert_list_import_x509_raw(t->t_pcert, &t->t_npcert,
		 &pem, GNUTLS_X509_FMT_PEM, 0)) < 0 ||
	    t->t_npcert == 0) {
		(void)snprintf(err, errsz, "certificate: %s",
		    gnutls_strerror(rc));
		t->t_npcert = 0;
		goto fail;
	}
	if (trackd_tls_pubkey(t, err, errsz) == -1)
		goto fail;
	if ((rc = gnutls_privkey_init(&t->t_key)) < 0 ||
	    (rc = gnutls_privkey_import_ext4(t->t_key, t, NULL,
		 trackd_tls_sign_hash, NULL, NULL, trackd_tls_info, 0)) < 0) {
		(void)snprintf(err, errsz, "external key: %s",
		    gnutls_strerror(rc));
		goto fail;
	}
	trackd_tls_cur = t;
	return t;
fail:
	trackd_tls_free(&t);
	return NULL;
}

void
trackd_tls_free(struct trackd_tls **tp)
{
	struct trackd_tls *t = *tp;
	unsigned	   i;

	if (t == NULL)
		return;
	if (trackd_tls_cur == t)
		trackd_tls_cur = NULL;
	if (t->t_key != NULL)
		gnutls_privkey_deinit(t->t_key);
	for (i = 0; i < t->t_npcert; i++)
		gnutls_pcert_deinit(&t->t_pcert[i]);
	tls_key_pss_free(&t->t_pss);
	free(t);
	*tp = NULL;
}
