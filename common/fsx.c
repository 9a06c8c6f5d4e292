#include "config.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsx.h"
#include "xmem.h"

int
fsx_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t	    w;

	while (n > 0) {
		if ((w = write(fd, c, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t
fsx_read_full(int fd, void *p, size_t n)
{
	char   *c = p;
	size_t	got = 0;
	ssize_t r;

	while (got < n) {
		if ((r = read(fd, c + got, n - got)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int
fsx_fsync_dirfd(int dirfd)
{
	while (fsync(dirfd) == -1)
		if (errno != EINTR)
			return -1;
	return 0;
}

int
fsx_fsync_dir(const char *dir)
{
	int fd, rc, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsx_fsync_dirfd(fd);
	saved = errno;
	(void)close(fd); /* read-only fd: close cannot lose data */
	errno = saved;
	return rc;
}

static int
fsx_dirname(const char *path, char *dir, size_t dirsz)
{
	char tmp[4096];

	if (str_copy(tmp, sizeof(tmp), path) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (str_copy(dir, dirsz, dirname(tmp)) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
fsx_rename_durable(const char *from, const char *to)
{
	char fdir[4096], tdir[4096];

	if (fsx_dirname(from, fdir, sizeof(fdir)) == -1 ||
	    fsx_dirname(to, tdir, sizeof(tdir)) == -1)
		return -1;
	if (rename(from, to) == -1)
		return -1;
	if (fsx_fsync_dir(tdir) == -1)
		return -1;
	if (strcmp(fdir, tdir) != 0 && fsx_fsync_dir(fdir) == -1)
		return -1;
	return 0;
}

int
fsx_write_durable(const char *dir, const char *name, const void *p, size_t n,
    mode_t mode)
{
	char tmp[4096], dst[4096];
	int  fd, saved;

	if (str_printf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) == -1 ||
	    str_printf(dst, sizeof(dst), "%s/%s", dir, name) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) ==
	    -1)
		return -1;
	if (fsx_write_all(fd, p, n) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) == -1)
		goto fail;
	return fsx_fsync_dir(dir);
fail:
	saved = errno;
	if (fd != -1)
		(void)close(fd);
	(void)unlink(tmp);
	errno = saved;
	return -1;
}

int
fsx_mkdirs(const char *path, mode_t mode)
{
	char  tmp[4096];
	char *p;

	if (str_copy(tmp, sizeof(tmp), path) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

int
fsx_read_file(const char *path, size_t max, char **data_r, size_t *len_r)
{
	struct stat st;
	int	    fd, saved;
	char	   *p;
	ssize_t	    n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail;
	if ((size_t)st.st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	p = xmalloc((size_t)st.st_size + 1);
	if ((n = fsx_read_full(fd, p, (size_t)st.st_size)) == -1) {
		free(p);
		goto fail;
	}
	p[n] = '\0';
	(void)close(fd);
	*data_r = p;
	*len_r = (size_t)n;
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return -1;
}

int
fsx_open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	char tmp[4096], *p, *slash;
	int  fd = dirfd, next, saved;

	if (str_copy(tmp, sizeof(tmp), rel) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
		*slash = '\0';
		if (*p == '\0')
			continue; /* "a//b" */
		next = openat(fd, p,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		saved = errno;
		if (fd != dirfd)
			(void)close(fd); /* read-only directory */
		if (next == -1) {
			errno = saved;
			return -1;
		}
		fd = next;
	}
	next = openat(fd, *p != '\0' ? p : ".", flags | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	saved = errno;
	if (fd != dirfd)
		(void)close(fd);
	errno = saved;
	return next;
}

/* A fresh temporary beside name: ".name.XXXXXXXX.tmp", created O_EXCL. */
static int
fsx_tmp_create(int dirfd, const char *name, char *tmp, size_t tmpsz,
    mode_t mode)
{
	uint32_t r;
	int	 fd, tries;

	for (tries = 0; tries < 16; tries++) {
		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			r = (uint32_t)getpid() * 2654435761u + (uint32_t)tries;
		if (str_printf(tmp, tmpsz, ".%s.%08x.tmp", name, r) == -1) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = openat(dirfd, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd != -1 || errno != EEXIST)
			return fd;
	}
	return -1;
}

int
fsx_write_durable_at(int dirfd, const char *name, const void *p, size_t n,
    mode_t mode, uid_t uid, gid_t gid)
{
	char tmp[4096];
	int  fd, saved;

	if ((fd = fsx_tmp_create(dirfd, name, tmp, sizeof(tmp), mode)) == -1)
		return -1;
	if ((uid != (uid_t)-1 && fchown(fd, uid, gid) == -1) ||
	    fchmod(fd, mode) == -1 || fsx_write_all(fd, p, n) == -1 ||
	    fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) == -1)
		goto fail;
	return fsx_fsync_dirfd(dirfd);
fail:
	saved = errno;
	if (fd != -1)
		(void)close(fd);
	(void)unlinkat(dirfd, tmp, 0); /* ours: made O_EXCL above */
	errno = saved;
	return -1;
}

/* ".NAME.tmp" or ".NAME.XXXXXXXX.tmp" (NAME not empty). */
static bool
fsx_tmp_name(const char *n)
{
	size_t len = strlen(n);

	return n[0] == '.' && len > 5 && strcmp(n + len - 4, ".tmp") == 0 &&
	    n[1] != '.';
}

int
fsx_sweep(const char *dir, time_t max_age, bool (*want)(const char *),
    size_t *n_r)
{
	struct dirent *de;
	struct stat    st;
	DIR	      *d;
	time_t	       now = time(NULL);

	*n_r = 0;
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    (want != NULL && !want(de->d_name)) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			-1 ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime < max_age)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			(*n_r)++;
	}
	(void)closedir(d); /* read-only directory stream */
	return 0;
}

int
fsx_sweep_tmp(const char *dir, time_t max_age, size_t *n_r)
{
	return fsx_sweep(dir, max_age, fsx_tmp_name, n_r);
}
