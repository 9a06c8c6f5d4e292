#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"

bool
priv_is_root(void)
{
	return geteuid() == 0;
}

int
priv_lookup(const char *user, uid_t *uid_r, gid_t *gid_r)
{
	struct passwd *pw;

	if ((pw = getpwnam(user)) == NULL)
		return -1;
	*uid_r = pw->pw_uid;
	*gid_r = pw->pw_gid;
	return 0;
}

int
priv_lookup_group(const char *group, gid_t *gid_r)
{
	struct group *gr;

	if ((gr = getgrnam(group)) == NULL)
		return -1;
	*gid_r = gr->gr_gid;
	return 0;
}

/*
 * After the drop: no execve() gains privileges (a set-ID program, file
 * capabilities), and no process of the same uid may ptrace us or read
 * /proc/PID/mem (keys, the TLS key, the envelope key): explicit, not left
 * to the fs.suid_dumpable sysctl (1 would make us dumpable). No core
 * files either, for the same reason.
 */
static void
priv_harden(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_fatal("prctl");
}

static void
priv_drop_to(const char *user, uid_t uid, gid_t gid, const gid_t *groups,
    int ngroups, const char *jail)
{
	if (uid == 0)
		log_fatalx("user %s is uid 0; refusing to run as root", user);
	if (jail != NULL && (chroot(jail) == -1 || chdir("/") == -1))
		log_fatal("chroot %s", jail);
	if (setgroups((size_t)ngroups, groups) == -1 ||
	    setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1)
		log_fatal("drop privileges to %s", user);
	if (setresuid(0, 0, 0) != -1 || geteuid() == 0 || getuid() == 0)
		log_fatalx("privileges could be regained; refusing to run");
	priv_harden();
	log_debug("running as %s (uid %ld, gid %ld)%s%s", user, (long)uid,
	    (long)gid, jail ? ", chroot " : "", jail ? jail : "");
}

/* Not root: false (nothing to drop). Else user's uid and gid, or fatal. */
static bool
priv_drop_user(const char *user, uid_t *uid_r, gid_t *gid_r)
{
	if (!priv_is_root()) {
		log_debug("not root: running as uid %ld, no privilege drop",
		    (long)getuid());
		return false;
	}
	if (priv_lookup(user, uid_r, gid_r) == -1)
		log_fatalx(
		    "unknown user %s (create it, see contrib/sysusers.d)",
		    user);
	return true;
}

void
priv_drop(const char *user, const char *group, const char *jail)
{
	uid_t uid;
	gid_t gid, groups[2];
	int   ngroups = 1;

	if (!priv_drop_user(user, &uid, &gid))
		return;
	groups[0] = gid;
	if (group != NULL && priv_lookup_group(group, &groups[1]) == 0 &&
	    groups[1] != gid)
		ngroups = 2;
	priv_drop_to(user, uid, gid, groups, ngroups, jail);
}

void
priv_drop_only(const char *user, const char *group, const char *jail)
{
	uid_t uid;
	gid_t gid;

	if (!priv_drop_user(user, &uid, &gid))
		return;
	if (priv_lookup_group(group, &gid) == -1)
		log_fatalx(
		    "unknown group %s (create it, see contrib/sysusers.d)",
		    group);
	priv_drop_to(user, uid, gid, &gid, 1, jail);
}
