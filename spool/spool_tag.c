/*
 * Envelope tags (spool.h): the lookup process (smtpd_lka.c) tags the
 * account it authenticated, spoold checks the tag before it files a
 * message under that account. The key lives in db/, which only the
 * spool's owner can reach: an smtpd worker can copy a tag it was given,
 * never make one for another account. The only file that uses HMAC.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "spool.h"
#include "spool_keyfile.h"

#define SPOOL_TAG_FILE "envelope.key"
#define SPOOL_TAG_CTX  "smtpgate envelope account v1\n"

static const struct spool_keyfile spool_tag_keyfile = {
	SPOOL_TAG_FILE, SPOOL_TAG_KEYLEN, 0600, /* only the spool's owner */
	077, true, /* not ours or readable by others: never use it */
};

int
spool_tag_load(const char *spool_dir, unsigned char key[SPOOL_TAG_KEYLEN])
{
	return spool_keyfile_load(&spool_tag_keyfile, spool_dir, true, key);
}

int
spool_tag_made(const char *spool_dir, time_t *made_r)
{
	char	    path[4200];
	struct stat st;

	if (spool_path(path, sizeof(path), spool_dir, SPOOL_DB,
		SPOOL_TAG_FILE) == -1)
		return ENAMETOOLONG;
	if (lstat(path, &st) == -1)
		return errno;
	*made_r = st.st_mtime;
	return 0;
}

void
spool_tag_make(const unsigned char key[SPOOL_TAG_KEYLEN], const char *account,
    char hex_r[SPOOL_TAG_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE], msg[512];
	unsigned int  mdlen = 0, i;
	size_t	      cl = sizeof(SPOOL_TAG_CTX) - 1, al = strlen(account);

	hex_r[0] = '\0';
	if (cl + al > sizeof(msg))
		return; /* longer than any login: an empty tag never matches */
	memcpy(msg, SPOOL_TAG_CTX, cl);
	memcpy(msg + cl, account, al);
	if (HMAC(EVP_sha256(), key, SPOOL_TAG_KEYLEN, msg, cl + al, md,
		&mdlen) == NULL ||
	    mdlen * 2 + 1 != SPOOL_TAG_HEX)
		return;
	for (i = 0; i < mdlen; i++)
		(void)snprintf(hex_r + 2 * i, 3, "%02x", md[i]);
}

bool
spool_tag_ok(const unsigned char key[SPOOL_TAG_KEYLEN], const char *account,
    const char *hex)
{
	char want[SPOOL_TAG_HEX];

	spool_tag_make(key, account, want);
	return want[0] != '\0' && strlen(hex) == SPOOL_TAG_HEX - 1 &&
	    CRYPTO_memcmp(want, hex, SPOOL_TAG_HEX - 1) == 0;
}
