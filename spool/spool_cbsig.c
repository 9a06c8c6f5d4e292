/* Callback signatures: see spool_cbsig.h. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "spool_cbsig.h"

#define SPOOL_CBSIG_MDLEN 32

const char *
spool_cbsig_secret_check(const char *s)
{
	size_t i, len = strlen(s);

	if (len < SPOOL_CBSIG_SECRET_MIN)
		return "shorter than 16 bytes";
	if (len > SPOOL_CB_SECRET_MAX)
		return "longer than 256 bytes";
	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~') /* also any byte >= 0x80 */
			return "not printable ASCII (no spaces, tabs, line "
			       "breaks "
			       "or other characters)";
	return NULL;
}

size_t
spool_cbsig_count(const struct spool_account *a)
{
	size_t i, n = 0;

	for (i = 0; i < SPOOL_CB_SECRETS; i++)
		if (a->ac_cb_secret[i][0] != '\0')
			n++;
	return n;
}

static void
spool_cbsig_hex(const unsigned char *md, size_t n, char *dst)
{
	static const char digits[] = "0123456789abcdef";
	size_t		  i;

	for (i = 0; i < n; i++) {
		dst[2 * i] = digits[md[i] >> 4];
		dst[2 * i + 1] = digits[md[i] & 15];
	}
	dst[2 * n] = '\0';
}

int
spool_cbsig_fingerprint(const char *secret, char dst[SPOOL_CBSIG_FPR_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int  mdlen = 0;

	dst[0] = '\0';
	if (EVP_Digest(secret, strlen(secret), md, &mdlen, EVP_sha256(),
		NULL) != 1 ||
	    mdlen < SPOOL_CBSIG_FPR_LEN / 2)
		return -1;
	spool_cbsig_hex(md, SPOOL_CBSIG_FPR_LEN / 2, dst);
	return 0;
}

/* HMAC-SHA256(secret, pre || body) as hex into hex[65]: 0 or -1. The two
 * parts go through one MAC context: the body is never copied. */
static int
spool_cbsig_hmac(EVP_MAC *mac, const char *secret, const char *pre,
    size_t prelen, const void *body, size_t len, char *hex)
{
	EVP_MAC_CTX  *ctx;
	OSSL_PARAM    params[2];
	char	      digest[] = "SHA256";
	unsigned char md[SPOOL_CBSIG_MDLEN];
	size_t	      mdlen = 0;
	int	      rc = -1;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_MAC_CTX_new(mac)) == NULL)
		return -1;
	if (EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret),
		params) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)pre, prelen) == 1 &&
	    EVP_MAC_update(ctx, body, len) == 1 &&
	    EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) == 1 &&
	    mdlen == sizeof(md)) {
		spool_cbsig_hex(md, sizeof(md), hex);
		rc = 0;
	}
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(md, sizeof(md));
	return rc;
}

int
spool_cbsig_header(const struct spool_account *a, int64_t t, const void *body,
    size_t len, char *dst, size_t dstsz)
{
	EVP_MAC *mac;
	char	 pre[32], hex[2 * SPOOL_CBSIG_MDLEN + 1];
	size_t	 i, off;
	int	 n, rc = 1;

	dst[0] = '\0';
	if (spool_cbsig_count(a) == 0)
		return 0;
	n = snprintf(pre, sizeof(pre), "%" PRId64 ".", t);
	if (n < 0 || (size_t)n >= sizeof(pre) || dstsz < SPOOL_CBSIG_HDR_MAX ||
	    (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return -1;
	off = (size_t)snprintf(dst, dstsz, SPOOL_CBSIG_HEADER ": t=%" PRId64,
	    t);
	for (i = 0; i < SPOOL_CB_SECRETS && rc == 1; i++) {
		if (a->ac_cb_secret[i][0] == '\0')
			continue;
		if (spool_cbsig_hmac(mac, a->ac_cb_secret[i], pre, (size_t)n,
			body, len, hex) == -1)
			rc = -1;
		else
			off += (size_t)snprintf(dst + off, dstsz - off,
			    ",v1=%s", hex);
	}
	EVP_MAC_free(mac);
	if (rc == -1)
		dst[0] = '\0';
	return rc;
}
