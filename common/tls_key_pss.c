/*
 * tls_key_pss: EMSA-PSS encoding with OpenSSL (tls_key_pss.h). OpenSSL
 * 3.0 has the encoding alone only in the deprecated RSA API (built on
 * Debian), hence the API level, as in tls_key.c.
 */
#include "config.h"

#define OPENSSL_API_COMPAT 0x10101000L

#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "tls_key_pss.h"
#include "xmem.h"

struct tls_key_pss {
	RSA *kp_rsa; /* the public key: its size and bits */
};

struct tls_key_pss *
tls_key_pss_new(const uint8_t *n, size_t nlen)
{
	struct tls_key_pss *p;
	BIGNUM		   *bn = NULL, *e = NULL;
	RSA		   *rsa = NULL;

	if (nlen == 0 || nlen > TLS_SIGN_MAX ||
	    (bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (e = BN_new()) == NULL || BN_set_word(e, RSA_F4) != 1 ||
	    (rsa = RSA_new()) == NULL || RSA_set0_key(rsa, bn, e, NULL) != 1) {
		BN_free(bn);
		BN_free(e);
		RSA_free(rsa);
		ERR_clear_error();
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->kp_rsa = rsa;
	return p;
}

int
tls_key_pss_encode(const struct tls_key_pss *p, uint8_t md,
    const uint8_t *digest, size_t dlen, struct tls_sign *r)
{
	const EVP_MD *h = md == TLS_MD_SHA256 ? EVP_sha256()
	    : md == TLS_MD_SHA384	      ? EVP_sha384()
	    : md == TLS_MD_SHA512	      ? EVP_sha512()
					      : NULL;
	int	      k = RSA_size(p->kp_rsa);

	memset(r, 0, sizeof(*r));
	if (h == NULL || dlen != (size_t)EVP_MD_get_size(h) || k <= 0 ||
	    (size_t)k > sizeof(r->ts_data))
		return -1;
	/* sLen -1: as long as the digest */
	if (RSA_padding_add_PKCS1_PSS_mgf1(p->kp_rsa, r->ts_data, digest, h, h,
		-1) != 1) {
		ERR_clear_error();
		return -1;
	}
	r->ts_kind = TLS_SIGN_RSA_PSS;
	r->ts_md = TLS_MD_NONE;
	r->ts_len = (size_t)k;
	return 0;
}

void
tls_key_pss_free(struct tls_key_pss **pp)
{
	if (pp == NULL || *pp == NULL)
		return;
	RSA_free((*pp)->kp_rsa);
	free(*pp);
	*pp = NULL;
}
