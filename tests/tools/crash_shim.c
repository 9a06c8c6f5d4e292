/*
 * crash-shim.so: test helper (built for `make check`, never installed),
 * loaded with LD_PRELOAD into one daemon to make it die on one message,
 * as a library bug would (an abort in GMime or gumbo, a SIGSEGV), with no
 * hook in the product code. It interposes libc calls that read message
 * data and, when the data read holds SMTPGATE_CRASH_MARKER, kills the
 * process with SMTPGATE_CRASH_SIGNAL: ABRT (abort(), the default) or SEGV
 * (a write through a null pointer).
 *
 *   SMTPGATE_CRASH_ON=pread   spoold reads the envelope and the header
 *                             block with pread(2)
 *   SMTPGATE_CRASH_ON=mmap    deliverd's workers map the queue file
 *                             (only files under a "/queue/" directory)
 *
 * SMTPGATE_CRASH_COUNT (optional) names a file that gets one byte appended
 * per crash, so a test can count them. It is opened when the shim loads:
 * deliverd's workers may open nothing for writing once they confine
 * themselves (Landlock), a descriptor they inherited still works.
 *
 * SMTPGATE_CRASH_PARENT=KILL (optional) first kills the parent with SIGKILL:
 * the message takes the whole deliverd with it (its scheduler), as an OOM
 * kill of the service or a crash of the scheduler would.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void *volatile shim_null; /* the compiler cannot know it is NULL */
static int shim_count_fd = -1;

__attribute__((constructor)) static void
shim_init(void)
{
	const char *count = getenv("SMTPGATE_CRASH_COUNT");

	if (count != NULL)
		shim_count_fd = open(count, O_WRONLY | O_APPEND | O_CREAT,
		    0666);
}

static bool
shim_on(const char *what)
{
	const char *on = getenv("SMTPGATE_CRASH_ON");

	return on != NULL && strcmp(on, what) == 0;
}

static void
shim_check(const void *p, size_t n)
{
	const char *m = getenv("SMTPGATE_CRASH_MARKER"), *sig;

	if (m == NULL || *m == '\0' || p == NULL ||
	    memmem(p, n, m, strlen(m)) == NULL)
		return;
	if (shim_count_fd != -1 && write(shim_count_fd, "x", 1) != 1) {
		/* best effort: the test counts */
	}
	if ((sig = getenv("SMTPGATE_CRASH_PARENT")) != NULL &&
	    strcmp(sig, "KILL") == 0)
		(void)kill(getppid(), SIGKILL);
	sig = getenv("SMTPGATE_CRASH_SIGNAL");
	if (sig != NULL && strcmp(sig, "SEGV") == 0)
		*(volatile int *)shim_null =
		    1; /* a real fault, as a bug makes */
	abort();
}

ssize_t
pread(int fd, void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, void *, size_t, off_t);
	ssize_t r;

	if (real == NULL)
		real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT,
		    "pread");
	r = real(fd, buf, n, off);
	if (r > 0 && shim_on("pread"))
		shim_check(buf, (size_t)r);
	return r;
}

ssize_t
__pread_chk(int fd, void *buf, size_t n, off_t off, size_t bufsz)
{
	(void)bufsz;
	return pread(fd, buf, n, off);
}

/* The bytes of fd (a regular file under a queue/ directory) from off,
 * or 0. */
static size_t
shim_queue_file(int fd, off_t off)
{
	char	    link[64], path[4096];
	struct stat st;
	ssize_t	    n;

	if (fd < 0 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size <= off)
		return 0;
	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) <= 0)
		return 0;
	path[n] = '\0';
	return strstr(path, "/queue/") != NULL ? (size_t)(st.st_size - off) : 0;
}

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static void *(*real)(void *, size_t, int, int, int, off_t);
	void  *p;
	size_t n;

	if (real == NULL)
		real = (void *(*)(void *, size_t, int, int, int,
		    off_t))dlsym(RTLD_NEXT, "mmap");
	p = real(addr, len, prot, flags, fd, off);
	/* never past the end of the file: those pages would SIGBUS */
	if (p != MAP_FAILED && (prot & PROT_READ) && shim_on("mmap") &&
	    (n = shim_queue_file(fd, off)) > 0)
		shim_check(p, n < len ? n : len);
	return p;
}
