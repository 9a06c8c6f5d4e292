/*
 * landlock: a process confines itself (landlock.h). Used by deliverd's
 * delivery workers (deliverd_worker.c), deliverd's callback sender
 * (deliverd_callback.c), spoold's metrics child (spoold_metrics.c) and
 * spoolctl tls-report --send (spoolctl_tlsrpt_send.c); each names the files it may still open, the system trees come from
 * here:
 *   /etc (resolver, hosts, CA certificates), /usr, /lib, /lib64, /bin,
 *     /sbin (libraries loaded late: NSS, gconv, OpenSSL's configuration),
 *     read-only;
 *   /dev/null read-write, /dev/urandom and /dev/random read-only.
 * A system tree that holds spool_dir is not granted (logged once). The
 * domain also keeps the process from ptracing processes outside it (the
 * key processes are not dumpable besides). Signals are not scoped (ABI 6
 * could): a confined process could always kill its own user's processes,
 * which stops mail but reveals nothing, and tests/tools/crash_shim.c kills
 * deliverd's scheduler from a worker to simulate its crash.
 *
 * Kernels without Landlock (or an ABI this file does not know) leave the
 * process unconfined: 0 with the reason, which the caller logs once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "landlock.h"
#include "log.h"

/* <linux/landlock.h> of the oldest kernel headers we build with may lack
 * the later ABIs: the values are the kernel's UAPI. */
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH	  1
#define LL_FS_EXECUTE		  (1ULL << 0)
#define LL_FS_WRITE_FILE	  (1ULL << 1)
#define LL_FS_READ_FILE		  (1ULL << 2)
#define LL_FS_READ_DIR		  (1ULL << 3)
#define LL_FS_REMOVE_FILE	  (1ULL << 5)
#define LL_FS_MAKE_REG		  (1ULL << 8)
#define LL_FS_ABI1		  ((1ULL << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define LL_FS_REFER		  (1ULL << 13)	     /* ABI 2 */
#define LL_FS_TRUNCATE		  (1ULL << 14)	     /* ABI 3 */
#define LL_FS_IOCTL_DEV		  (1ULL << 15)	     /* ABI 5 */

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule	    445
#define SYS_landlock_restrict_self  446
#endif

struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;	     /* ABI 6: not used (see above) */
};

struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t	 parent_fd;
} __attribute__((packed));

static const char *const landlock_sys[] = {
	"/etc",
	"/usr",
	"/lib",
	"/lib64",
	"/bin",
	"/sbin",
};

/* Is dir (a real path) spool's ancestor, or spool itself? */
static bool
landlock_holds(const char *dir, const char *spool)
{
	size_t n = strlen(dir);

	return strncmp(spool, dir, n) == 0 &&
	    (spool[n] == '\0' || spool[n] == '/' || strcmp(dir, "/") == 0);
}

/* One rule: access beneath path (a file or a directory); a path that is
 * not there is skipped. -1 on another error. */
static int
landlock_allow(int rs, const char *path, uint64_t access)
{
	struct ll_path_beneath pb;
	struct stat	       st;
	int		       fd, rc;

	if ((fd = open(path, O_PATH | O_CLOEXEC)) == -1)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	/* a file takes only the rights that apply to files */
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE |
		    LL_FS_TRUNCATE | LL_FS_IOCTL_DEV;
	memset(&pb, 0, sizeof(pb));
	pb.allowed_access = access;
	pb.parent_fd = fd;
	rc = (int)syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb,
	    0);
	(void)close(fd);
	return rc == -1 ? -1 : 0;
}

/* The profile's rights as Landlock's, for this ABI. */
static uint64_t
landlock_rights(unsigned access, int abi)
{
	uint64_t r = 0;

	if (access & LANDLOCK_READ)
		r |= LL_FS_READ_FILE | LL_FS_READ_DIR;
	if (access & LANDLOCK_WRITE)
		r |= LL_FS_WRITE_FILE | (abi >= 3 ? LL_FS_TRUNCATE : 0);
	if (access & LANDLOCK_MAKE) /* a rename within the directory */
		r |= LL_FS_MAKE_REG | LL_FS_REMOVE_FILE;
	return r;
}

int
landlock_confine(const char *spool_dir, const struct landlock_path *paths,
    size_t npaths, const char *who, char *why, size_t whysz)
{
	struct ll_ruleset_attr ra;
	char		       spool[PATH_MAX], real[PATH_MAX];
	uint64_t	       rdir, rw;
	size_t		       i, rasz;
	int		       abi, rs;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LL_CREATE_RULESET_VERSION);
	if (abi < 1) {
		(void)snprintf(why, whysz,
		    "this kernel has no Landlock (%s): %s can read the DKIM "
		    "keys",
		    strerror(errno), who);
		return 0;
	}
	if (realpath(spool_dir, spool) == NULL) {
		(void)snprintf(why, whysz, "spool_dir %s: %s", spool_dir,
		    strerror(errno));
		return -1;
	}
	rdir = landlock_rights(LANDLOCK_READ, abi);
	rw = landlock_rights(LANDLOCK_READ | LANDLOCK_WRITE, abi);
	memset(&ra, 0, sizeof(ra));
	ra.handled_access_fs = LL_FS_ABI1;
	ra.handled_access_fs |= (abi >= 2 ? LL_FS_REFER : 0) |
	    (abi >= 3 ? LL_FS_TRUNCATE : 0) | (abi >= 5 ? LL_FS_IOCTL_DEV : 0);
	rasz = sizeof(ra.handled_access_fs);
	if ((rs = (int)syscall(SYS_landlock_create_ruleset, &ra, rasz, 0)) ==
	    -1) {
		(void)snprintf(why, whysz, "landlock_create_ruleset: %s",
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(landlock_sys) / sizeof(landlock_sys[0]); i++) {
		if (realpath(landlock_sys[i], real) == NULL)
			continue;
		if (landlock_holds(real, spool)) {
			log_warnx("%s holds spool_dir: not readable by %s",
			    real, who);
			continue;
		}
		if (landlock_allow(rs, real, rdir) == -1)
			goto fail;
	}
	if (landlock_allow(rs, "/dev/null", rw) == -1 ||
	    landlock_allow(rs, "/dev/urandom", LL_FS_READ_FILE) == -1 ||
	    landlock_allow(rs, "/dev/random", LL_FS_READ_FILE) == -1)
		goto fail;
	for (i = 0; i < npaths; i++)
		if (paths[i].lp_path != NULL && paths[i].lp_path[0] != '\0' &&
		    landlock_allow(rs, paths[i].lp_path,
			landlock_rights(paths[i].lp_access, abi)) == -1)
			goto fail;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    syscall(SYS_landlock_restrict_self, rs, 0) == -1)
		goto fail;
	(void)close(rs);
	(void)snprintf(why, whysz, "Landlock ABI %d", abi);
	return 1;
fail:
	(void)snprintf(why, whysz, "Landlock: %s", strerror(errno));
	(void)close(rs);
	return -1;
}
