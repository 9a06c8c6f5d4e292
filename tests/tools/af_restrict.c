/*
 * af-restrict: test helper (built for `make check`, never installed) that
 * runs a program as systemd's RestrictAddressFamilies= would: a seccomp
 * filter makes socket(2) fail with EAFNOSUPPORT for every address family
 * not named, then the program is executed. So a black-box test can run a
 * daemon with the families its unit file allows and see what breaks.
 *
 *   af-restrict unix,inet,inet6[,netlink] PROGRAM [ARG...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AF_MAXN 8

#if defined(__x86_64__)
#define AF_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AF_ARCH AUDIT_ARCH_AARCH64
#else
#error "af-restrict: add this architecture's AUDIT_ARCH_*"
#endif

static int
af_parse(char *list, unsigned *fam, size_t *n)
{
	static const struct {
		const char *name;
		unsigned    af;
	} names[] = { { "unix", AF_UNIX }, { "inet", AF_INET },
		{ "inet6", AF_INET6 }, { "netlink", AF_NETLINK } };
	char  *w, *save = NULL;
	size_t i;

	for (w = strtok_r(list, ",", &save); w != NULL;
	     w = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(w, names[i].name) == 0)
				break;
		if (i == sizeof(names) / sizeof(names[0]) || *n == AF_MAXN)
			return -1;
		fam[(*n)++] = names[i].af;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct sock_filter f[8 + 2 * AF_MAXN];
	struct sock_fprog  prog;
	unsigned	   fam[AF_MAXN];
	size_t		   n = 0, k = 0, i;

	if (argc < 3 || af_parse(argv[1], fam, &n) == -1) {
		(void)fprintf(stderr,
		    "usage: af-restrict FAMILY,... PROGRAM "
		    "[ARG...]\n");
		return 2;
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    AF_ARCH, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
	    SECCOMP_RET_KILL_PROCESS); /* another ABI: refuse, don't guess */
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, nr));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
	    SYS_socket, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
	    SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, args[0]));
	for (i = 0; i < n; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
		    fam[i], 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
		    SECCOMP_RET_ALLOW);
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
	    SECCOMP_RET_ERRNO | (EAFNOSUPPORT & SECCOMP_RET_DATA));
	prog.len = (unsigned short)k;
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1) {
		perror("af-restrict: seccomp");
		return 1;
	}
	(void)execv(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
