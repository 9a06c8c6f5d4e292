#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "pkey.h"

/* The password callback: a DKIM key for an unattended signer must not be
 * encrypted, so never prompt; remember that a password was wanted. */
static int
pkey_no_password(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(bool *)arg = true;
	return -1;
}

static int
pkey_fail(char *err, size_t errsz, const char *why)
{
	(void)str_copy(err, errsz, why);
	ERR_clear_error();
	return -1;
}

/* "v=DKIM1; k=ALG; p=" + base64(der) into r->pk_txt. */
static int
pkey_txt(struct pkey_info *r, const char *alg, const unsigned char *der,
    size_t derlen, char *err, size_t errsz)
{
	unsigned char b64[sizeof(r->pk_txt)];
	int	      n;

	if (derlen > (sizeof(b64) - 1) / 4 * 3)
		return pkey_fail(err, errsz,
		    "public key too large for a TXT record");
	n = EVP_EncodeBlock(b64, der, (int)derlen);
	if (n < 0 ||
	    str_printf(r->pk_txt, sizeof(r->pk_txt), "v=DKIM1; k=%s; p=%.*s",
		alg, n, (const char *)b64) == -1)
		return pkey_fail(err, errsz,
		    "public key too large for a TXT record");
	return 0;
}

static int
pkey_rsa(EVP_PKEY *pk, struct pkey_info *r, char *err, size_t errsz)
{
	unsigned char *der = NULL;
	char	       why[128];
	int	       n, rc;

	r->pk_alg = PKEY_RSA;
	r->pk_bits = EVP_PKEY_get_bits(pk);
	if (r->pk_bits < PKEY_RSA_MIN_BITS || r->pk_bits > PKEY_RSA_MAX_BITS) {
		(void)snprintf(why, sizeof(why),
		    "RSA key has %d bits: DKIM needs %d to %d", r->pk_bits,
		    PKEY_RSA_MIN_BITS, PKEY_RSA_MAX_BITS);
		return pkey_fail(err, errsz, why);
	}
	if ((n = i2d_PUBKEY(pk, &der)) <= 0)
		return pkey_fail(err, errsz,
		    "cannot encode the RSA public key");
	rc = pkey_txt(r, "rsa", der, (size_t)n, err, errsz);
	OPENSSL_free(der);
	return rc;
}

static int
pkey_ed25519(EVP_PKEY *pk, struct pkey_info *r, char *err, size_t errsz)
{
	unsigned char raw[64];
	size_t	      n = sizeof(raw);

	r->pk_alg = PKEY_ED25519;
	r->pk_bits = 256;
	if (EVP_PKEY_get_raw_public_key(pk, raw, &n) != 1 || n != 32)
		return pkey_fail(err, errsz,
		    "cannot read the Ed25519 public key");
	return pkey_txt(r, "ed25519", raw, n, err, errsz);
}

int
pkey_inspect(const char *pem, size_t len, struct pkey_info *r, char *err,
    size_t errsz)
{
	BIO	 *bio;
	EVP_PKEY *pk;
	bool	  wanted_pw = false;
	int	  rc;

	memset(r, 0, sizeof(*r));
	if (errsz > 0)
		err[0] = '\0';
	if (len == 0 || len > PKEY_PEM_MAX)
		return pkey_fail(err, errsz,
		    len == 0 ? "empty key file" : "key file too large");
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return pkey_fail(err, errsz, "out of memory");
	/* the _ex name: deliverd_dkim.c interposes PEM_read_bio_PrivateKey
	 * for libopendkim, so this never meets its key cache */
	pk = PEM_read_bio_PrivateKey_ex(bio, NULL, pkey_no_password, &wanted_pw,
	    NULL, NULL);
	BIO_free(bio);
	if (pk == NULL)
		return pkey_fail(err, errsz,
		    wanted_pw ? "the key is encrypted: give an unencrypted PEM "
				"private key"
			      : "not a PEM private key");
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		rc = pkey_rsa(pk, r, err, errsz);
		break;
	case EVP_PKEY_ED25519:
		rc = pkey_ed25519(pk, r, err, errsz);
		break;
	default:
		rc = pkey_fail(err, errsz,
		    "unsupported key type: DKIM keys are RSA (>= 1024 bits) or "
		    "Ed25519");
		break;
	}
	EVP_PKEY_free(pk);
	return rc;
}

const char *
pkey_alg_name(enum pkey_alg alg)
{
	return alg == PKEY_ED25519 ? "ed25519" : "rsa";
}

int
pkey_txt_zone(const struct pkey_info *r, const char *selector,
    const char *domain, struct buf *out)
{
	size_t len = strlen(r->pk_txt), off, n;

	if (buf_printf(out, "%s._domainkey.%s. IN TXT", selector, domain) == -1)
		return -1;
	for (off = 0; off < len; off += n) {
		n = len - off > 255 ? 255 : len - off;
		if (buf_printf(out, " \"%.*s\"", (int)n, r->pk_txt + off) == -1)
			return -1;
	}
	return 0;
}
