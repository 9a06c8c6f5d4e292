/*
 * deliverd_landlock: a delivery worker confines itself (Landlock, the
 * kernel's unprivileged file-access sandbox) once it is set up, before it
 * takes a job. The workers run as deliverd_user, which owns keys/ (the
 * DKIM private keys) and the database's key files (db/track.key among
 * them: the tracking tokens come from the key process too); uid and mode bits
 * cannot keep them from a worker taken over through a parser bug, a
 * Landlock domain can. Nothing may be written, created, removed or
 * executed; reading is allowed only beneath:
 *   the system's read-only trees: /etc (resolver, hosts, CA certificates),
 *     /usr, /lib, /lib64, /bin, /sbin (libraries loaded late: NSS, gconv);
 *   /dev/null, /dev/urandom, /dev/random;
 *   spool_dir/queue/ (the message files);
 *   spool_dir/db/data.mdb, and lock.mdb read-write (LMDB, already open);
 *   the files the configuration names that a worker reads while it runs:
 *     tls_ca_file, relayhost_tls_ca_file, mta_sts_ca_file (libcurl reads
 *     it per fetch), dnssec_trust_anchor.
 * A system tree that holds spool_dir is not granted (logged once). The
 * domain also keeps the worker from ptracing processes outside it (the
 * key process is not dumpable besides). Signals are not scoped (ABI 6
 * could): a worker could always kill its own user's processes, which
 * stops delivery but reveals nothing, and tests/tools/crash_shim.c kills
 * the scheduler from a worker to simulate its crash.
 *
 * Kernels without Landlock (or an ABI this file does not know) leave the
 * workers unconfined: 0 with the reason, which the worker logs once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conf.h"
#include "deliverd.h"
#include "log.h"
#include "spool.h"

/* <linux/landlock.h> of the oldest kernel headers we build with may lack
 * the later ABIs: the values are the kernel's UAPI. */
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH	  1
#define LL_FS_EXECUTE		  (1ULL << 0)
#define LL_FS_WRITE_FILE	  (1ULL << 1)
#define LL_FS_READ_FILE		  (1ULL << 2)
#define LL_FS_READ_DIR		  (1ULL << 3)
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

static const char *const deliverd_landlock_sys[] = {
	"/etc",
	"/usr",
	"/lib",
	"/lib64",
	"/bin",
	"/sbin",
};

/* Is dir (a real path) spool's ancestor, or spool itself? */
static bool
deliverd_landlock_holds(const char *dir, const char *spool)
{
	size_t n = strlen(dir);

	return strncmp(spool, dir, n) == 0 &&
	    (spool[n] == '\0' || spool[n] == '/' || strcmp(dir, "/") == 0);
}

/* One rule: access beneath path (a file or a directory); a path that is
 * not there is skipped. -1 on another error. */
static int
deliverd_landlock_allow(int rs, const char *path, uint64_t access)
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

/* The spool's files a worker reads: queue/ and the database. */
static int
deliverd_landlock_spool(int rs, const char *spool_dir, uint64_t rdir,
    uint64_t rw)
{
	char path[PATH_MAX];

	if (spool_path(path, sizeof(path), spool_dir, SPOOL_QUEUE, NULL) ==
		-1 ||
	    deliverd_landlock_allow(rs, path, rdir) == -1)
		return -1;
	if (snprintf(path, sizeof(path), "%s/db/data.mdb", spool_dir) >=
		(int)sizeof(path) ||
	    deliverd_landlock_allow(rs, path, LL_FS_READ_FILE) == -1)
		return -1;
	if (snprintf(path, sizeof(path), "%s/db/lock.mdb", spool_dir) >=
		(int)sizeof(path) ||
	    deliverd_landlock_allow(rs, path, rw) == -1)
		return -1;
	return 0;
}

int
deliverd_landlock(const struct conf *cf, char *why, size_t whysz)
{
	struct ll_ruleset_attr ra;
	char		       spool[PATH_MAX], real[PATH_MAX];
	uint64_t	       rdir = LL_FS_READ_FILE | LL_FS_READ_DIR;
	uint64_t	       rw = LL_FS_READ_FILE | LL_FS_WRITE_FILE;
	size_t		       i, rasz;
	int		       abi, rs;
	const char	      *conf_files[] = { cf->cf_tls_ca_file,
			   cf->cf_relayhost_tls_ca_file, cf->cf_mta_sts_ca_file,
			   cf->cf_dnssec_trust_anchor };

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LL_CREATE_RULESET_VERSION);
	if (abi < 1) {
		(void)snprintf(why, whysz,
		    "this kernel has no Landlock (%s): the delivery workers "
		    "can read the DKIM keys",
		    strerror(errno));
		return 0;
	}
	if (realpath(cf->cf_spool_dir, spool) == NULL) {
		(void)snprintf(why, whysz, "spool_dir %s: %s", cf->cf_spool_dir,
		    strerror(errno));
		return -1;
	}
	memset(&ra, 0, sizeof(ra));
	ra.handled_access_fs = LL_FS_ABI1;
	rw |= abi >= 3 ? LL_FS_TRUNCATE : 0;
	ra.handled_access_fs |= (abi >= 2 ? LL_FS_REFER : 0) |
	    (abi >= 3 ? LL_FS_TRUNCATE : 0) | (abi >= 5 ? LL_FS_IOCTL_DEV : 0);
	rasz = sizeof(ra.handled_access_fs);
	if ((rs = (int)syscall(SYS_landlock_create_ruleset, &ra, rasz, 0)) ==
	    -1) {
		(void)snprintf(why, whysz, "landlock_create_ruleset: %s",
		    strerror(errno));
		return -1;
	}
	for (i = 0; i <
	     sizeof(deliverd_landlock_sys) / sizeof(deliverd_landlock_sys[0]);
	     i++) {
		if (realpath(deliverd_landlock_sys[i], real) == NULL)
			continue;
		if (deliverd_landlock_holds(real, spool)) {
			log_warnx("%s holds spool_dir: not readable by the "
				  "delivery workers",
			    real);
			continue;
		}
		if (deliverd_landlock_allow(rs, real, rdir) == -1)
			goto fail;
	}
	if (deliverd_landlock_allow(rs, "/dev/null", rw) == -1 ||
	    deliverd_landlock_allow(rs, "/dev/urandom", LL_FS_READ_FILE) ==
		-1 ||
	    deliverd_landlock_allow(rs, "/dev/random", LL_FS_READ_FILE) == -1 ||
	    deliverd_landlock_spool(rs, spool, rdir, rw) == -1)
		goto fail;
	for (i = 0; i < sizeof(conf_files) / sizeof(conf_files[0]); i++)
		if (conf_files[i][0] != '\0' &&
		    deliverd_landlock_allow(rs, conf_files[i], rdir) == -1)
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
