/*
 * An LD_PRELOAD shim for a kernel without Landlock (built without it, or
 * not in its lsm= list): landlock_create_ruleset fails with ENOSYS, every
 * other system call made through syscall(3) goes to libc's. The daemons
 * must then log that they run unconfined and go on working
 * (test_confine.py).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>

long syscall(long number, ...);

long
syscall(long number, ...)
{
	static long (*real)(long, ...);
	long	a[6];
	va_list ap;
	int	i;

	va_start(ap, number);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_landlock_create_ruleset) {
		errno = ENOSYS;
		return -1;
	}
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "syscall");
	return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
