/*
 * Envelope tags (spool.h): the lookup process (smtpd_lka.c) tags the
 * account it authenticated, spoold checks the tag before it files a
 * message under that account. The key lives in db/, which only the
 * spool's owner can reach: an smtpd worker can copy a tag it was given,
 * never make one for another account. The only file that uses HMAC.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fsx.h"
#include "spool.h"

#define SPOOL_TAG_FILE	"envelope.key"
#define SPOOL_TAG_CTX	"smtpgate envelope account v1\n"

static int
spool_tag_read(const char *path, unsigned char key[SPOOL_TAG_KEYLEN])
{
	struct stat	st;
	ssize_t		n;
	int		fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno;
	if (fstat(fd, &st) == -1)
		rc = errno;
	else if (!S_ISREG(st.st_mode) || st.st_size != SPOOL_TAG_KEYLEN ||
	    (st.st_mode & 077) != 0 || st.st_uid != geteuid())
		rc = EPERM;	/* not ours or readable by others: never use it */
	else if ((n = read(fd, key, SPOOL_TAG_KEYLEN)) != SPOOL_TAG_KEYLEN)
		rc = n == -1 ? errno : EIO;
	(void)close(fd);	/* read-only */
	return rc;
}

/* Writes a new key beside the final name, then link(2): the first wins. */
static int
spool_tag_create(const char *dir, const char *path)
{
	unsigned char	key[SPOOL_TAG_KEYLEN];
	char		tmp[4200];
	int		fd, rc = 0;

	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
		return errno ? errno : EIO;
	if (str_printf(tmp, sizeof(tmp), "%s/.%s.%ld", dir, SPOOL_TAG_FILE,
	    (long)getpid()) == -1)
		return ENAMETOOLONG;
	(void)unlink(tmp);	/* a leftover of a crash: ours to replace */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600)) == -1)
		return errno;
	if (fchmod(fd, 0600) == -1 || fsx_write_all(fd, key, sizeof(key)) == -1 ||
	    fsync(fd) == -1)
		rc = errno;
	if (close(fd) == -1 && rc == 0)
		rc = errno;
	if (rc == 0 && link(tmp, path) == -1 && errno != EEXIST)
		rc = errno;
	(void)unlink(tmp);	/* linked or failed: the name is not needed */
	if (rc == 0 && fsx_fsync_dir(dir) == -1)
		rc = errno;
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int
spool_tag_load(const char *spool_dir, unsigned char key[SPOOL_TAG_KEYLEN])
{
	char	dir[4096], path[4200];
	int	rc;

	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_DB, NULL) == -1 ||
	    str_printf(path, sizeof(path), "%s/%s", dir, SPOOL_TAG_FILE) == -1)
		return ENAMETOOLONG;
	if ((rc = spool_tag_read(path, key)) != ENOENT)
		return rc;
	if ((rc = spool_tag_create(dir, path)) != 0)
		return rc;
	return spool_tag_read(path, key);
}

int
spool_tag_made(const char *spool_dir, time_t *made_r)
{
	char		path[4200];
	struct stat	st;

	if (spool_path(path, sizeof(path), spool_dir, SPOOL_DB, SPOOL_TAG_FILE) == -1)
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
	unsigned char	 md[EVP_MAX_MD_SIZE], msg[512];
	unsigned int	 mdlen = 0, i;
	size_t		 cl = sizeof(SPOOL_TAG_CTX) - 1, al = strlen(account);

	hex_r[0] = '\0';
	if (cl + al > sizeof(msg))
		return;		/* longer than any login: an empty tag never matches */
	memcpy(msg, SPOOL_TAG_CTX, cl);
	memcpy(msg + cl, account, al);
	if (HMAC(EVP_sha256(), key, SPOOL_TAG_KEYLEN, msg, cl + al, md, &mdlen) ==
	    NULL || mdlen * 2 + 1 != SPOOL_TAG_HEX)
		return;
	for (i = 0; i < mdlen; i++)
		(void)snprintf(hex_r + 2 * i, 3, "%02x", md[i]);
}

bool
spool_tag_ok(const unsigned char key[SPOOL_TAG_KEYLEN], const char *account,
    const char *hex)
{
	char	want[SPOOL_TAG_HEX];

	spool_tag_make(key, account, want);
	return want[0] != '\0' && strlen(hex) == SPOOL_TAG_HEX - 1 &&
	    CRYPTO_memcmp(want, hex, SPOOL_TAG_HEX - 1) == 0;
}
