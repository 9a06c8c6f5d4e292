/*
 * slowsync-shim.so: test helper (built for `make check`, never installed),
 * loaded with LD_PRELOAD into one daemon to give it a slow disk: while
 * the file SMTPGATE_SLOWSYNC_FLAG exists, each fsync(2), fdatasync(2) and
 * msync(2) with MS_SYNC first sleeps SMTPGATE_SLOWSYNC_MS milliseconds
 * (default 1000), and the file FLAG.in exists while one sleeps (so a test
 * knows the process is inside its sync). No hook in the product code.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void
shim_wait(void)
{
	const char     *flag = getenv("SMTPGATE_SLOWSYNC_FLAG");
	const char     *ms = getenv("SMTPGATE_SLOWSYNC_MS");
	long		n = ms != NULL ? strtol(ms, NULL, 10) : 1000;
	char		in[4096];
	struct timespec ts;
	int		fd;

	if (flag == NULL || access(flag, F_OK) != 0 || n <= 0)
		return;
	(void)snprintf(in, sizeof(in), "%s.in", flag);
	if ((fd = open(in, O_WRONLY | O_CREAT | O_CLOEXEC, 0666)) != -1)
		(void)close(fd);
	ts.tv_sec = n / 1000;
	ts.tv_nsec = (n % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1)
		;
	(void)unlink(in);
}

int
fsync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	shim_wait();
	return real(fd);
}

int
fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	shim_wait();
	return real(fd);
}

int
msync(void *addr, size_t len, int flags)
{
	static int (*real)(void *, size_t, int);

	if (real == NULL)
		real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
	if (flags & MS_SYNC)
		shim_wait();
	return real(addr, len, flags);
}
