/*
 * eio-shim.so: test helper (built for `make check`, never installed),
 * loaded with LD_PRELOAD into a daemon to make its LMDB writes fail with
 * EIO, as a failing disk would, with no hook in the product code. While
 * the file named by SMTPGATE_EIO_FLAG exists, every write (pwrite, writev,
 * pwritev) to a file whose path ends in "/data.mdb" fails with EIO; the
 * test creates and removes the flag to start and end the fault. LMDB
 * writes a commit's pages before its meta page, so a failed commit leaves
 * the database as it was.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static bool
shim_fails(int fd)
{
	const char *flag = getenv("SMTPGATE_EIO_FLAG");
	char	    link[64], path[4096];
	ssize_t	    n;
	size_t	    len, sfx = strlen("/data.mdb");

	if (flag == NULL || *flag == '\0' || access(flag, F_OK) == -1)
		return false;
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return false;
	path[n] = '\0';
	len = (size_t)n;
	return len >= sfx && strcmp(path + len - sfx, "/data.mdb") == 0;
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);

	if (real == NULL)
		real = (ssize_t(*)(int, const void *, size_t,
		    off_t))dlsym(RTLD_NEXT, "pwrite");
	if (shim_fails(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	static ssize_t (*real)(int, const struct iovec *, int);

	if (real == NULL)
		real = (ssize_t(*)(int, const struct iovec *,
		    int))dlsym(RTLD_NEXT, "writev");
	if (shim_fails(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd, iov, cnt);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	static ssize_t (*real)(int, const struct iovec *, int, off_t);

	if (real == NULL)
		real = (ssize_t(*)(int, const struct iovec *, int,
		    off_t))dlsym(RTLD_NEXT, "pwritev");
	if (shim_fails(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd, iov, cnt, off);
}
