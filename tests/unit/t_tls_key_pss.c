/*
 * Unit tests for common/tls_key_pss: the block trackd's HTTP process makes
 * from GnuTLS's digest is one the key's side (tls_key_sign) accepts as a
 * PSS encoding, and its signature verifies as RSA-PSS (salt as long as
 * the digest, MGF1 of the same hash) with OpenSSL; for SHA-256/384/512
 * and moduli of 2048, 2049 (a leading zero byte) and 3072 bits. A block
 * that is no encoding (what a raw decryption would ask) is refused.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "tap.h"
#include "tls_key.h"
#include "tls_key_pss.h"

struct t_pss_key {
	EVP_PKEY	   *k_pkey;
	struct tls_key	   *k_key; /* tls_key_load's */
	struct tls_key_pss *k_pss;
};

static X509 *
t_pss_cert(EVP_PKEY *pk)
{
	X509	  *x = X509_new();
	X509_NAME *n;

	if (x == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL ||
	    X509_set_pubkey(x, pk) != 1 ||
	    (n = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
		(const unsigned char *)"pss.test", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, n) != 1 ||
	    X509_sign(x, pk, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The certificate (x) or the key (pk) as a PEM file. */
static bool
t_pss_write(const char *path, X509 *x, EVP_PKEY *pk)
{
	FILE *f = fopen(path, "w");
	bool  ok;

	if (f == NULL)
		return false;
	ok = x != NULL
	    ? PEM_write_X509(f, x) == 1
	    : PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
	return fclose(f) == 0 && ok;
}

/* A key of bits, through files as the key process reads it. */
static bool
t_pss_key_new(unsigned bits, struct t_pss_key *k)
{
	char dir[] = "/tmp/t_tls_key_pss.XXXXXX", cert[64], key[64], err[256];
	uint8_t n[TLS_SIGN_MAX];
	BIGNUM *bn = NULL;
	X509   *x = NULL;
	bool	ok;

	memset(k, 0, sizeof(*k));
	if ((k->k_pkey = EVP_RSA_gen(bits)) == NULL || mkdtemp(dir) == NULL ||
	    (x = t_pss_cert(k->k_pkey)) == NULL) {
		X509_free(x);
		return false;
	}
	(void)snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	(void)snprintf(key, sizeof(key), "%s/key.pem", dir);
	ok = t_pss_write(cert, x, NULL) && t_pss_write(key, NULL, k->k_pkey);
	X509_free(x);
	if (ok &&
	    (k->k_key = tls_key_load(cert, key, err, sizeof(err))) == NULL)
		t_diag("tls_key_load: %s", err);
	(void)unlink(cert);
	(void)unlink(key);
	(void)rmdir(dir);
	if (k->k_key == NULL ||
	    EVP_PKEY_get_bn_param(k->k_pkey, OSSL_PKEY_PARAM_RSA_N, &bn) != 1 ||
	    BN_num_bytes(bn) > (int)sizeof(n))
		ok = false;
	else
		k->k_pss = tls_key_pss_new(n, (size_t)BN_bn2bin(bn, n));
	BN_free(bn);
	return ok && k->k_pss != NULL;
}

static void
t_pss_key_free(struct t_pss_key *k)
{
	tls_key_pss_free(&k->k_pss);
	tls_key_free(&k->k_key);
	EVP_PKEY_free(k->k_pkey);
}

/* OpenSSL's verdict on sig as RSA-PSS over digest. */
static bool
t_pss_verifies(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *digest,
    size_t dlen, const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
	bool	      ok;

	ok = c != NULL && EVP_PKEY_verify_init(c) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(c, md) == 1 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) == 1 &&
	    EVP_PKEY_verify(c, sig, siglen, digest, dlen) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

static void
t_pss_sizes(void)
{
	static const unsigned bits[] = { 2048, 2049, 3072 };
	static const struct {
		uint8_t	    md;
		const char *name;
		const EVP_MD *(*evp)(void);
	} mds[] = {
		{ TLS_MD_SHA256, "SHA-256", EVP_sha256 },
		{ TLS_MD_SHA384, "SHA-384", EVP_sha384 },
		{ TLS_MD_SHA512, "SHA-512", EVP_sha512 },
	};
	struct t_pss_key k;
	struct tls_sign	 req;
	const char	*why;
	uint8_t		 digest[64], sig[TLS_SIGN_MAX];
	size_t		 i, j, dlen, siglen;

	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		if (!t_ok(t_pss_key_new(bits[i], &k), "RSA-%u key", bits[i])) {
			t_pss_key_free(&k);
			continue;
		}
		for (j = 0; j < sizeof(mds) / sizeof(mds[0]); j++) {
			dlen = (size_t)EVP_MD_get_size(mds[j].evp());
			(void)RAND_bytes(digest, (int)dlen);
			t_ok(tls_key_pss_encode(k.k_pss, mds[j].md, digest,
				 dlen, &req) == 0 &&
				req.ts_kind == TLS_SIGN_RSA_PSS &&
				req.ts_len ==
				    (size_t)EVP_PKEY_get_size(k.k_pkey),
			    "RSA-%u %s: a block of the modulus's size", bits[i],
			    mds[j].name);
			t_ok(tls_key_sign(k.k_key, &req, sig, sizeof(sig),
				 &siglen, &why) == 0,
			    "RSA-%u %s: the key's side signs it", bits[i],
			    mds[j].name);
			t_ok(t_pss_verifies(k.k_pkey, mds[j].evp(), digest,
				 dlen, sig, siglen),
			    "RSA-%u %s: an RSA-PSS signature of the digest",
			    bits[i], mds[j].name);
			t_ok(tls_key_pss_encode(k.k_pss, mds[j].md, digest,
				 dlen - 1, &req) == -1,
			    "RSA-%u %s: a digest of the wrong length: refused",
			    bits[i], mds[j].name);
		}
		t_pss_key_free(&k);
	}
}

static void
t_pss_not_an_encoding(void)
{
	struct t_pss_key k;
	struct tls_sign	 req;
	const char	*why = NULL;
	uint8_t		 sig[TLS_SIGN_MAX];
	size_t		 siglen;
	int		 rc;

	if (!t_ok(t_pss_key_new(2048, &k), "RSA-2048 key")) {
		t_pss_key_free(&k);
		return;
	}
	memset(&req, 0, sizeof(req));
	req.ts_kind = TLS_SIGN_RSA_PSS;
	req.ts_len = 256;
	(void)RAND_bytes(req.ts_data + 1, 255); /* below the modulus */
	rc = tls_key_sign(k.k_key, &req, sig, sizeof(sig), &siglen, &why);
	t_ok(rc == -1 && why != NULL && strcmp(why, "not a PSS encoding") == 0,
	    "a block that is no PSS encoding: refused (%s)",
	    rc == 0	      ? "signed"
		: why != NULL ? why
			      : "?");
	t_ok(tls_key_pss_encode(k.k_pss, TLS_MD_NONE, sig, 32, &req) == -1,
	    "no digest algorithm: refused");
	t_pss_key_free(&k);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "sizes", t_pss_sizes },
		{ "not_an_encoding", t_pss_not_an_encoding },
	};

	return T_RUN(cases);
}
