/*
 * cluster_seal: the policy rows' values sealed in PostgreSQL
 * (cluster_secret_file; clusterd(8) "Sealed rows"). Without it
 * smtpgate.policy holds, readable by whoever reads the database, the DKIM
 * private keys, the accounts' password hashes and callback signing
 * secrets; and whoever may write to it can add an account or a key that
 * every node applies. With it, each value is AES-256-GCM under a key
 * that every node has in a file: a row's value is
 *
 *	CSEAL_MAGIC (8 bytes) | nonce (12, random) | ciphertext | tag (16)
 *
 * with the kind's name, a NUL and the row's key as additional data (a
 * value moved to another row does not open). Keys stay in clear (they
 * order the rows: logins, domains, addresses) and a deletion is a NULL
 * value, so the database can still drop rows, not read or add them.
 *
 * A second key (cluster_secret_file_accept) is only ever used to open:
 * during a key rotation the nodes accept values sealed with either key,
 * and `spoolctl cluster seal` rewrites those that open only with the
 * accepted one under the key in force (clusterd(8) "Changing the key").
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "buf.h"
#include "cluster_policy.h"
#include "log.h"

#define CSEAL_KEYLEN   32
#define CSEAL_NONCELEN 12
#define CSEAL_TAGLEN   16
#define CSEAL_HDR      (CSEAL_MAGICLEN + CSEAL_NONCELEN)

static unsigned char cseal_key[CSEAL_KEYLEN];
static bool	     cseal_have;
static unsigned char cseal_akey[CSEAL_KEYLEN]; /* accepted, never sealed with */
static bool	     cseal_ahave;

static int
cseal_hex(int c)
{
	return c >= '0' && c <= '9' ? c - '0'
	    : c >= 'a' && c <= 'f'  ? c - 'a' + 10
	    : c >= 'A' && c <= 'F'  ? c - 'A' + 10
				    : -1;
}

/* The 32-byte key in fp (closed here), path naming it, into key. 0, or
 * -1 with err. */
static int
cseal_read_fp(FILE *fp, const char *path, unsigned char *key, char *err,
    size_t errsz)
{
	char	    line[CSEAL_KEYLEN * 2 + 3];
	struct stat st;
	size_t	    n, i;

	n = fread(line, 1, sizeof(line) - 1, fp);
	if (fstat(fileno(fp), &st) == -1 || (st.st_mode & S_IROTH)) {
		(void)fclose(fp);
		explicit_bzero(line, sizeof(line));
		(void)snprintf(err, errsz,
		    "%s: readable by every user (chmod o-r)", path);
		return -1;
	}
	(void)fclose(fp);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	for (i = 0; n == CSEAL_KEYLEN * 2 && i < CSEAL_KEYLEN; i++) {
		if (cseal_hex(line[2 * i]) < 0 || cseal_hex(line[2 * i + 1]) < 0)
			break;
		key[i] = (unsigned char)(cseal_hex(line[2 * i]) << 4 |
		    cseal_hex(line[2 * i + 1]));
	}
	explicit_bzero(line, sizeof(line));
	if (n != CSEAL_KEYLEN * 2 || i != CSEAL_KEYLEN) {
		explicit_bzero(key, CSEAL_KEYLEN);
		(void)snprintf(err, errsz,
		    "%s: not 64 hexadecimal digits (openssl rand -hex 32)",
		    path);
		return -1;
	}
	return 0;
}

int
cseal_load_fp(FILE *fp, const char *path, FILE *afp, const char *apath,
    char *err, size_t errsz)
{
	int rc;

	cseal_forget();
	rc = cseal_read_fp(fp, path, cseal_key, err, errsz);
	if (afp != NULL && rc == -1)
		(void)fclose(afp);
	if (rc == -1)
		return -1;
	cseal_have = true;
	if (afp == NULL)
		return 0;
	if (cseal_read_fp(afp, apath, cseal_akey, err, errsz) == -1) {
		cseal_forget();
		return -1;
	}
	if (memcmp(cseal_akey, cseal_key, CSEAL_KEYLEN) == 0) {
		explicit_bzero(cseal_akey, sizeof(cseal_akey));
		return 0; /* the same key twice: nothing to accept */
	}
	cseal_ahave = true;
	return 0;
}

int
cseal_load(const char *path, const char *accept, char *err, size_t errsz)
{
	FILE *fp, *afp = NULL;

	cseal_forget();
	if (path == NULL || path[0] == '\0') {
		if (accept != NULL && accept[0] != '\0') {
			(void)snprintf(err, errsz,
			    "cluster_secret_file_accept is set but "
			    "cluster_secret_file is not");
			return -1;
		}
		return 0;
	}
	if ((fp = fopen(path, "re")) == NULL) {
		(void)snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (accept != NULL && accept[0] != '\0' &&
	    (afp = fopen(accept, "re")) == NULL) {
		(void)fclose(fp);
		(void)snprintf(err, errsz, "%s: %s", accept, strerror(errno));
		return -1;
	}
	return cseal_load_fp(fp, path, afp, accept, err, errsz);
}

void
cseal_forget(void)
{
	explicit_bzero(cseal_key, sizeof(cseal_key));
	explicit_bzero(cseal_akey, sizeof(cseal_akey));
	cseal_have = cseal_ahave = false;
}

bool
cseal_accepting(void)
{
	return cseal_ahave;
}

bool
cseal_on(void)
{
	return cseal_have;
}

bool
cseal_is_sealed(const uint8_t *v, size_t n)
{
	return v != NULL && n >= CSEAL_MAGICLEN &&
	    memcmp(v, CSEAL_MAGIC, CSEAL_MAGICLEN) == 0;
}

/* The kind's name, a NUL, the key: what the tag also covers. */
static bool
cseal_aad(EVP_CIPHER_CTX *c, const struct spool_centry *e)
{
	const char *kind = spool_ckind_name(e->ce_kind);
	int	    n;

	return EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)kind,
		   (int)strlen(kind) + 1) == 1 &&
	    EVP_CipherUpdate(c, NULL, &n, e->ce_key, (int)e->ce_klen) == 1;
}

int
cseal_seal(const struct spool_centry *e, struct buf *out)
{
	EVP_CIPHER_CTX *c;
	unsigned char  *p;
	int		n, m, ok;

	buf_reset(out);
	if (!cseal_have || e->ce_val == NULL || e->ce_vlen > INT32_MAX / 2)
		return -1;
	if (buf_reserve(out, CSEAL_HDR + e->ce_vlen + CSEAL_TAGLEN) == -1)
		return -1;
	p = (unsigned char *)out->data;
	memcpy(p, CSEAL_MAGIC, CSEAL_MAGICLEN);
	if (RAND_bytes(p + CSEAL_MAGICLEN, CSEAL_NONCELEN) != 1 ||
	    (c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	ok = EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, cseal_key,
		 p + CSEAL_MAGICLEN) == 1 &&
	    cseal_aad(c, e) &&
	    EVP_EncryptUpdate(c, p + CSEAL_HDR, &n, e->ce_val,
		(int)e->ce_vlen) == 1 &&
	    EVP_EncryptFinal_ex(c, p + CSEAL_HDR + n, &m) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CSEAL_TAGLEN,
		p + CSEAL_HDR + n + m) == 1;
	EVP_CIPHER_CTX_free(c);
	if (!ok)
		return -1;
	out->len = CSEAL_HDR + (size_t)n + (size_t)m + CSEAL_TAGLEN;
	return 0;
}

/* The value of e opened with key into out (reserved). Its length, or -1. */
static long
cseal_try(const struct spool_centry *e, const unsigned char *key,
    struct buf *out)
{
	EVP_CIPHER_CTX *c;
	unsigned char	tag[CSEAL_TAGLEN];
	size_t		clen = e->ce_vlen - CSEAL_HDR - CSEAL_TAGLEN;
	int		n = 0, m = 0, ok;

	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	memcpy(tag, e->ce_val + e->ce_vlen - CSEAL_TAGLEN, CSEAL_TAGLEN);
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key,
		 e->ce_val + CSEAL_MAGICLEN) == 1 &&
	    cseal_aad(c, e) &&
	    EVP_DecryptUpdate(c, (unsigned char *)out->data, &n,
		e->ce_val + CSEAL_HDR, (int)clen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CSEAL_TAGLEN, tag) ==
		1 &&
	    EVP_DecryptFinal_ex(c, (unsigned char *)out->data + n, &m) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? (long)n + m : -1;
}

int
cseal_open(struct spool_centry *e, struct buf *out, char *err, size_t errsz)
{
	size_t clen;
	long   len;
	int    rc = 0;

	if (e->ce_val == NULL) /* a deletion: never sealed */
		return 0;
	if (!cseal_is_sealed(e->ce_val, e->ce_vlen)) {
		if (!cseal_have)
			return 0;
		(void)snprintf(err, errsz,
		    "not sealed, and cluster_secret_file is set (written "
		    "without it: spoolctl cluster seal)");
		return -1;
	}
	if (!cseal_have) {
		(void)snprintf(err, errsz,
		    "sealed, and cluster_secret_file is not set");
		return -1;
	}
	if (e->ce_vlen < CSEAL_HDR + CSEAL_TAGLEN ||
	    e->ce_vlen > INT32_MAX / 2) {
		(void)snprintf(err, errsz, "a sealed value of %zu bytes",
		    e->ce_vlen);
		return -1;
	}
	clen = e->ce_vlen - CSEAL_HDR - CSEAL_TAGLEN;
	buf_reset(out);
	if (buf_reserve(out, clen + 1) == -1) {
		(void)snprintf(err, errsz, "out of memory");
		return -1;
	}
	len = cseal_try(e, cseal_key, out);
	if (len < 0 && cseal_ahave) {
		len = cseal_try(e, cseal_akey, out);
		rc = 1;
	}
	if (len < 0) {
		explicit_bzero(out->data, clen + 1);
		buf_reset(out);
		(void)snprintf(err, errsz,
		    "does not open with cluster_secret_file%s (another key, or "
		    "changed in the database)",
		    cseal_ahave ? " nor cluster_secret_file_accept" : "");
		return -1;
	}
	out->len = (size_t)len;
	e->ce_val = (const uint8_t *)out->data;
	e->ce_vlen = out->len;
	return rc;
}
