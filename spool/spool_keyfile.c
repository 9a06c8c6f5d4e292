/* The secret key files in db/ (see spool_keyfile.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "fsx.h"
#include "spool.h"
#include "spool_keyfile.h"

#define SPOOL_KEYFILE_MAX 64

static int
spool_keyfile_read(const struct spool_keyfile *kf, const char *path,
    unsigned char *key)
{
	struct stat st;
	ssize_t	    n;
	int	    fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno;
	if (fstat(fd, &st) == -1)
		rc = errno;
	else if (!S_ISREG(st.st_mode) || st.st_size != (off_t)kf->kf_len ||
	    (st.st_mode & kf->kf_forbid) != 0 ||
	    (kf->kf_own && st.st_uid != geteuid()))
		rc = EPERM; /* not ours or open to others: never use it */
	else if ((n = read(fd, key, kf->kf_len)) != (ssize_t)kf->kf_len)
		rc = n == -1 ? errno : EIO;
	(void)close(fd); /* read-only */
	return rc;
}

/*
 * Writes a new key beside the final name, then renames it there unless
 * the name exists (RENAME_NOREPLACE): the first wins, and the key never
 * has two names (the spool tree check refuses a file with two: with
 * link(2) and unlink(2), a daemon starting meanwhile stopped on it). A
 * file system without RENAME_NOREPLACE gets link(2) and unlink(2).
 */
static int
spool_keyfile_create(const struct spool_keyfile *kf, const char *dir,
    const char *path)
{
	unsigned char key[SPOOL_KEYFILE_MAX];
	char	      tmp[4200];
	int	      fd, rc = 0;

	if (kf->kf_len > sizeof(key))
		return EINVAL;
	if (getrandom(key, kf->kf_len, 0) != (ssize_t)kf->kf_len)
		return errno ? errno : EIO;
	if (str_printf(tmp, sizeof(tmp), "%s/.%s.%ld", dir, kf->kf_name,
		(long)getpid()) == -1)
		return ENAMETOOLONG;
	(void)unlink(tmp); /* a leftover of a crash: ours to replace */
	if ((fd = open(tmp,
		 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) ==
	    -1)
		return errno;
	/* fchmod: the umask must not narrow kf_mode (a group that reads it) */
	if (fchmod(fd, kf->kf_mode) == -1 ||
	    fsx_write_all(fd, key, kf->kf_len) == -1 || fsync(fd) == -1)
		rc = errno;
	if (close(fd) == -1 && rc == 0)
		rc = errno;
	if (rc == 0 &&
	    renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == -1) {
		if (errno == EINVAL || errno == ENOSYS) {
			if (link(tmp, path) == -1 && errno != EEXIST)
				rc = errno;
		} else if (errno != EEXIST)
			rc = errno;
	}
	(void)unlink(tmp); /* renamed, linked or failed: not needed */
	if (rc == 0 && fsx_fsync_dir(dir) == -1)
		rc = errno;
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int
spool_keyfile_load(const struct spool_keyfile *kf, const char *spool_dir,
    bool create, unsigned char *key)
{
	char dir[4096], path[4200];
	int  rc;

	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_DB, NULL) == -1 ||
	    str_printf(path, sizeof(path), "%s/%s", dir, kf->kf_name) == -1)
		return ENAMETOOLONG;
	if ((rc = spool_keyfile_read(kf, path, key)) != ENOENT || !create)
		return rc;
	if ((rc = spool_keyfile_create(kf, dir, path)) != 0)
		return rc;
	return spool_keyfile_read(kf, path, key);
}
