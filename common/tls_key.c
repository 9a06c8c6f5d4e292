/*
 * tls_key: the key's process signs, the others ask (tls_key.h).
 *
 * The asking side uses RSA_METHOD and EC_KEY_METHOD, deprecated in
 * OpenSSL 3.0 but built (Debian's libssl3 is), hence the API level
 * below for this file only. A key with such a method is "foreign" to
 * OpenSSL 3: EVP and libssl take the legacy path and call its hooks
 * (rsa_sign for PKCS#1 v1.5, rsa_priv_enc with no padding for PSS after
 * encoding the block, ECDSA sign). A provider would avoid the deprecated
 * calls at several times the code. The key's side uses EVP only.
 */
#include "config.h"

#define OPENSSL_API_COMPAT 0x10101000L

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ev.h"
#include "tls.h"
#include "tls_key.h"
#include "xmem.h"

struct tls_key {
	EVP_PKEY *tk_pkey;
	int	  tk_type; /* EVP_PKEY_RSA or EVP_PKEY_EC */
	int	  tk_bits;
};

/* What the workers may ask for: what tls_key_sign answers. */
#define TLS_KEY_SIGALGS \
	"ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:" \
	"rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:" \
	"RSA+SHA256:RSA+SHA384:RSA+SHA512"

static tls_key_signer_fn *tls_key_signer_cb;
static RSA_METHOD	 *tls_key_rsa_meth;
static EC_KEY_METHOD	 *tls_key_ec_meth;

static const EVP_MD *
tls_key_md(uint8_t md)
{
	switch (md) {
	case TLS_MD_SHA256:
		return EVP_sha256();
	case TLS_MD_SHA384:
		return EVP_sha384();
	case TLS_MD_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

static uint8_t
tls_key_md_nid(int nid)
{
	return nid == NID_sha256 ? TLS_MD_SHA256
	    : nid == NID_sha384	 ? TLS_MD_SHA384
	    : nid == NID_sha512	 ? TLS_MD_SHA512
				 : TLS_MD_NONE;
}

static void
tls_key_err(char *err, size_t errsz, const char *what)
{
	tls_err_text(err, errsz, what, "not a PEM private key");
}

/* ---- the asking side */

void
tls_key_signer(tls_key_signer_fn *fn)
{
	tls_key_signer_cb = fn;
}

/* One request: the signature's length, or -1. */
static int
tls_key_ask(uint8_t kind, uint8_t md, const unsigned char *in, size_t inlen,
    unsigned char *out, size_t outsz)
{
	struct tls_sign req;
	size_t		n = 0;
	int		rc;

	if (tls_key_signer_cb == NULL || inlen == 0 || inlen > TLS_SIGN_MAX)
		return -1;
	memset(&req, 0, sizeof(req));
	req.ts_kind = kind;
	req.ts_md = md;
	req.ts_len = inlen;
	memcpy(req.ts_data, in, inlen);
	rc = tls_key_signer_cb(&req, out, outsz, &n);
	return rc == 0 && n > 0 && n <= outsz ? (int)n : -1;
}

static int
tls_key_rsa_sign(int type, const unsigned char *m, unsigned int mlen,
    unsigned char *sig, unsigned int *siglen, const RSA *rsa)
{
	int n;

	n = tls_key_ask(TLS_SIGN_RSA_PKCS1, tls_key_md_nid(type), m, mlen, sig,
	    (size_t)RSA_size(rsa));
	if (n != RSA_size(rsa))
		return 0;
	*siglen = (unsigned)n;
	return 1;
}

/* PSS only: libssl encodes the block and asks for the bare operation. */
static int
tls_key_rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	if (padding != RSA_NO_PADDING || flen != RSA_size(rsa))
		return -1;
	return tls_key_ask(TLS_SIGN_RSA_PSS, TLS_MD_NONE, from, (size_t)flen,
	    to, (size_t)RSA_size(rsa));
}

static int
tls_key_rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	(void)flen;
	(void)from;
	(void)to;
	(void)rsa;
	(void)padding;
	return -1; /* never: no RSA key exchange */
}

static int
tls_key_ec_sign(int type, const unsigned char *dgst, int dlen,
    unsigned char *sig, unsigned int *siglen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	int n;

	(void)kinv;
	(void)r;
	if (dlen <= 0)
		return 0;
	n = tls_key_ask(TLS_SIGN_ECDSA, tls_key_md_nid(type), dgst,
	    (size_t)dlen, sig, (size_t)ECDSA_size(ec));
	if (n <= 0)
		return 0;
	*siglen = (unsigned)n;
	return 1;
}

static ECDSA_SIG *
tls_key_ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	unsigned char	     der[256];
	const unsigned char *p = der;
	unsigned int	     n = 0;
	int		     type;

	type = dlen == 32 ? NID_sha256
	    : dlen == 48  ? NID_sha384
	    : dlen == 64  ? NID_sha512
			  : NID_undef;
	if (ECDSA_size(ec) > (int)sizeof(der) ||
	    tls_key_ec_sign(type, dgst, dlen, der, &n, kinv, r, ec) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, (long)n);
}

static int
tls_key_methods(void)
{
	int (*psetup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;

	if (tls_key_rsa_meth == NULL) {
		if ((tls_key_rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) ==
			NULL ||
		    RSA_meth_set1_name(tls_key_rsa_meth, "smtpgate key") != 1 ||
		    RSA_meth_set_sign(tls_key_rsa_meth, tls_key_rsa_sign) !=
			1 ||
		    RSA_meth_set_priv_enc(tls_key_rsa_meth,
			tls_key_rsa_priv_enc) != 1 ||
		    RSA_meth_set_priv_dec(tls_key_rsa_meth,
			tls_key_rsa_priv_dec) != 1)
			return -1;
	}
	if (tls_key_ec_meth == NULL) {
		if ((tls_key_ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) ==
		    NULL)
			return -1;
		EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), NULL, &psetup, NULL);
		EC_KEY_METHOD_set_sign(tls_key_ec_meth, tls_key_ec_sign, psetup,
		    tls_key_ec_sign_sig);
	}
	return 0;
}

/* The certificate's RSA public key with the asking method. */
static EVP_PKEY *
tls_key_proxy_rsa(EVP_PKEY *pub)
{
	BIGNUM	 *n = NULL, *e = NULL;
	RSA	 *rsa = NULL;
	EVP_PKEY *pk = NULL;

	if (EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_E, &e) != 1 ||
	    (rsa = RSA_new()) == NULL ||
	    RSA_set_method(rsa, tls_key_rsa_meth) != 1 ||
	    RSA_set0_key(rsa, n, e, NULL) != 1)
		goto fail;
	n = e = NULL; /* the RSA's now */
	if ((pk = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_RSA(pk, rsa) != 1)
		goto fail;
	return pk;
fail:
	EVP_PKEY_free(pk);
	RSA_free(rsa);
	BN_free(n);
	BN_free(e);
	return NULL;
}

static EVP_PKEY *
tls_key_proxy_ec(EVP_PKEY *pub)
{
	const EC_KEY *src = EVP_PKEY_get0_EC_KEY(pub);
	EC_KEY	     *ec = NULL;
	EVP_PKEY     *pk = NULL;

	if (src == NULL || (ec = EC_KEY_new()) == NULL ||
	    EC_KEY_set_method(ec, tls_key_ec_meth) != 1 ||
	    EC_KEY_set_group(ec, EC_KEY_get0_group(src)) != 1 ||
	    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src)) != 1)
		goto fail;
	if ((pk = EVP_PKEY_new()) == NULL ||
	    EVP_PKEY_assign_EC_KEY(pk, ec) != 1)
		goto fail;
	return pk;
fail:
	EVP_PKEY_free(pk);
	EC_KEY_free(ec);
	return NULL;
}

EVP_PKEY *
tls_key_proxy_pkey(EVP_PKEY *pub)
{
	if (tls_key_methods() == -1)
		return NULL;
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA)
		return tls_key_proxy_rsa(pub);
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC)
		return tls_key_proxy_ec(pub);
	return NULL;
}

int
tls_key_proxy_use(SSL_CTX *c, char *err, size_t errsz)
{
	X509	 *x = SSL_CTX_get0_certificate(c);
	EVP_PKEY *pub, *pk = NULL;

	errno = 0;
	if (x == NULL || (pub = X509_get0_pubkey(x)) == NULL) {
		tls_key_err(err, errsz, "certificate without a public key");
		return -1;
	}
	if (tls_key_methods() == -1) {
		tls_key_err(err, errsz, "key methods");
		return -1;
	}
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA)
		pk = tls_key_proxy_rsa(pub);
	else if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC)
		pk = tls_key_proxy_ec(pub);
	else {
		(void)snprintf(err, errsz,
		    "certificate key is neither RSA nor EC");
		return -1;
	}
	if (pk == NULL || SSL_CTX_use_PrivateKey(c, pk) != 1 ||
	    SSL_CTX_set1_sigalgs_list(c, TLS_KEY_SIGALGS) != 1) {
		tls_key_err(err, errsz, "certificate's public key");
		EVP_PKEY_free(pk);
		return -1;
	}
	EVP_PKEY_free(pk); /* the context holds its reference */
	return 0;
}

/* ---- the key's side */

static int
tls_key_no_password(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

static X509 *
tls_key_cert(const char *cert, char *err, size_t errsz)
{
	FILE *f;
	X509 *x;

	errno = 0;
	if ((f = fopen(cert, "r")) == NULL) {
		tls_key_err(err, errsz, cert);
		return NULL;
	}
	x = PEM_read_X509(f, NULL, tls_key_no_password, NULL);
	(void)fclose(f); /* read only */
	if (x == NULL)
		tls_key_err(err, errsz, cert);
	return x;
}

static EVP_PKEY *
tls_key_read(const char *key, char *err, size_t errsz)
{
	BIO	 *b;
	EVP_PKEY *pk;

	errno = 0;
	/* a BIO, not stdio: its buffer of the PEM text is freed with it,
	 * and this process keeps the key anyway */
	if ((b = BIO_new_file(key, "r")) == NULL) {
		tls_key_err(err, errsz, key);
		return NULL;
	}
	pk = PEM_read_bio_PrivateKey(b, NULL, tls_key_no_password, NULL);
	BIO_free(b);
	if (pk == NULL)
		tls_key_err(err, errsz, key);
	return pk;
}

struct tls_key *
tls_key_load(const char *cert, const char *key, char *err, size_t errsz)
{
	struct tls_key *k;
	X509	       *x;
	EVP_PKEY       *pk;

	ERR_clear_error();
	if ((x = tls_key_cert(cert, err, errsz)) == NULL)
		return NULL;
	if ((pk = tls_key_read(key, err, errsz)) == NULL) {
		X509_free(x);
		return NULL;
	}
	if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA &&
	    EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC) {
		(void)snprintf(err, errsz, "%s: neither an RSA nor an EC key",
		    key);
		goto fail;
	}
	if (X509_check_private_key(x, pk) != 1) {
		ERR_clear_error();
		(void)snprintf(err, errsz, "%s: key does not match certificate",
		    key);
		goto fail;
	}
	X509_free(x);
	k = xcalloc(1, sizeof(*k));
	k->tk_pkey = pk;
	k->tk_type = EVP_PKEY_get_base_id(pk);
	k->tk_bits = EVP_PKEY_get_bits(pk);
	return k;
fail:
	X509_free(x);
	EVP_PKEY_free(pk);
	return NULL;
}

void
tls_key_free(struct tls_key **kp)
{
	if (kp == NULL || *kp == NULL)
		return;
	EVP_PKEY_free((*kp)->tk_pkey);
	free(*kp);
	*kp = NULL;
}

/*
 * Is em (the RSA_size block a PSS signature exponentiates) an EMSA-PSS
 * encoding with md as hash and MGF1 hash and a salt of md's length (RFC
 * 8017 9.1.2 steps 4-10, without the message: TLS 1.3 and libssl use
 * that salt)? What a raw decryption would be asked for is not.
 */
static bool
tls_key_pss_ok(const uint8_t *em, size_t k, int modbits, const EVP_MD *md)
{
	uint8_t db[TLS_SIGN_MAX];
	size_t	hlen = (size_t)EVP_MD_get_size(md), emlen = k, dblen, i;
	int	msbits = (modbits - 1) & 7;
	bool	ok = true;

	if (msbits == 0) { /* the block starts with a zero byte */
		if (em[0] != 0)
			return false;
		em++;
		emlen--;
	}
	if (emlen < 2 * hlen + 2 || emlen > sizeof(db) ||
	    em[emlen - 1] != 0xbc ||
	    (msbits != 0 && (em[0] & (0xff << msbits)) != 0))
		return false;
	dblen = emlen - hlen - 1;
	if (PKCS1_MGF1(db, (long)dblen, em + dblen, (long)hlen, md) != 0)
		return false;
	for (i = 0; i < dblen; i++)
		db[i] ^= em[i];
	if (msbits != 0)
		db[0] &= (uint8_t)(0xff >> (8 - msbits));
	for (i = 0; i < dblen - hlen - 1; i++)
		ok = ok && db[i] == 0;
	ok = ok && db[dblen - hlen - 1] == 0x01;
	explicit_bzero(db, sizeof(db));
	return ok;
}

/* Which operation a request asks for, or why not. */
static const char *
tls_key_check(const struct tls_key *k, const struct tls_sign *r,
    const EVP_MD **md_r)
{
	const EVP_MD *md = tls_key_md(r->ts_md);

	*md_r = md;
	if (r->ts_len == 0 || r->ts_len > TLS_SIGN_MAX)
		return "bad length";
	switch (r->ts_kind) {
	case TLS_SIGN_RSA_PKCS1:
	case TLS_SIGN_ECDSA:
		if (k->tk_type !=
		    (r->ts_kind == TLS_SIGN_ECDSA ? EVP_PKEY_EC : EVP_PKEY_RSA))
			return "not this key's type";
		if (md == NULL || r->ts_len != (size_t)EVP_MD_get_size(md))
			return "not a digest of SHA-256/384/512";
		return NULL;
	case TLS_SIGN_RSA_PSS:
		if (k->tk_type != EVP_PKEY_RSA ||
		    r->ts_len != (size_t)EVP_PKEY_get_size(k->tk_pkey))
			return "not a block of this key";
		if (tls_key_pss_ok(r->ts_data, r->ts_len, k->tk_bits,
			EVP_sha256()) ||
		    tls_key_pss_ok(r->ts_data, r->ts_len, k->tk_bits,
			EVP_sha384()) ||
		    tls_key_pss_ok(r->ts_data, r->ts_len, k->tk_bits,
			EVP_sha512()))
			return NULL;
		return "not a PSS encoding";
	default:
		return "unknown operation";
	}
}

int
tls_key_sign(struct tls_key *k, const struct tls_sign *r, uint8_t *sig,
    size_t sigsz, size_t *siglen_r, const char **why_r)
{
	EVP_PKEY_CTX *c;
	const EVP_MD *md;
	size_t	      n = sigsz;
	int	      ok;

	*siglen_r = 0;
	if ((*why_r = tls_key_check(k, r, &md)) != NULL)
		return -1;
	*why_r = "signing failed";
	if ((c = EVP_PKEY_CTX_new(k->tk_pkey, NULL)) == NULL)
		return -1;
	ok = EVP_PKEY_sign_init(c) == 1;
	if (ok && k->tk_type == EVP_PKEY_RSA)
		ok = EVP_PKEY_CTX_set_rsa_padding(c,
			 r->ts_kind == TLS_SIGN_RSA_PSS
			     ? RSA_NO_PADDING
			     : RSA_PKCS1_PADDING) == 1;
	if (ok && md != NULL)
		ok = EVP_PKEY_CTX_set_signature_md(c, md) == 1;
	ok = ok && EVP_PKEY_sign(c, sig, &n, r->ts_data, r->ts_len) == 1;
	EVP_PKEY_CTX_free(c);
	ERR_clear_error();
	if (!ok || n == 0 || n > sigsz)
		return -1;
	*siglen_r = n;
	*why_r = NULL;
	return 0;
}

/* ---- a key process's start status (tls_key.h) */

void
tls_key_status_send(int ctl, const char *err)
{
	char   msg[TLS_KEY_STATUS_MAX];
	size_t n = 1;

	msg[0] = 'K';
	if (err != NULL) {
		n = strlen(err);
		if (n > sizeof(msg) - 1)
			n = sizeof(msg) - 1;
		memcpy(msg + 1, err, n);
		n++;
	}
	if (send(ctl, msg, n, MSG_NOSIGNAL) != (ssize_t)n)
		_exit(1); /* the parent is gone or gave up */
}

int
tls_key_status_wait(int ctl, char *err, size_t errsz)
{
	struct pollfd pfd = { .fd = ctl, .events = POLLIN };
	char	      msg[TLS_KEY_STATUS_MAX + 1];
	int64_t	      end = ev_clock_ms() + TLS_KEY_STATUS_WAIT_MS, left;
	ssize_t	      n = -1;

	while ((left = end - ev_clock_ms()) > 0) {
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			break;
		n = recv(ctl, msg, sizeof(msg) - 1, MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		break;
	}
	if (n >= 1 && msg[0] == 'K') {
		msg[n] = '\0';
		if (n == 1)
			return 0;
		(void)snprintf(err, errsz, "%s", msg + 1);
		return -1;
	}
	(void)snprintf(err, errsz, "key process: %s",
	    n == 0 ? "exited while loading the key"
		   : "no answer while loading the key");
	return -1;
}
