/* Unit tests for common/priv. As root the drops run in child processes
 * (to "nobody"); as an ordinary user priv_drop must be a no-op. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "priv.h"
#include "tap.h"

static void
t_lookup(void)
{
	uid_t uid = 1;
	gid_t gid = 1;

	t_ok(priv_is_root() == (geteuid() == 0), "priv_is_root");
	t_ok(priv_lookup("root", &uid, &gid) == 0 && uid == 0 && gid == 0,
	    "root is 0:0");
	t_ok(priv_lookup("no-such-user-smtpgate", &uid, &gid) == -1,
	    "unknown user");
	t_ok(priv_lookup_group("root", &gid) == 0 && gid == 0, "group root");
	t_ok(priv_lookup_group("no-such-group-smtpgate", &gid) == -1,
	    "unknown group");
}

struct drop_args {
	const char *user, *group, *jail, *must_not_see;
};

/* In the child: 0 dropped and cannot regain, 10+ a check failed. */
static int
drop_run(void *arg)
{
	const struct drop_args *a = arg;

	priv_drop(a->user, a->group, a->jail);
	if (priv_is_root() && geteuid() == 0)
		return 10;
	if (geteuid() == 0 || getuid() == 0 || getegid() == 0)
		return 11;
	if (setuid(0) == 0 || seteuid(0) == 0)
		return 12;
	if (a->must_not_see != NULL && access(a->must_not_see, F_OK) == 0)
		return 13;
	return 0;
}

/* Runs priv_drop(user, group, jail) in a child; returns its exit status
 * (drop_run), 128 + the signal that killed it, or -1. */
static int
drop_child(const char *user, const char *group, const char *jail,
    const char *must_not_see)
{
	struct drop_args a = { user, group, jail, must_not_see };
	int		 st;

	if ((st = t_child(drop_run, &a)) == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void
t_drop(void)
{
	char	       jail[64];
	struct passwd *pw;

	if (!priv_is_root()) {
		uid_t before = getuid();

		priv_drop("nobody", NULL, NULL);
		t_ok(getuid() == before, "not root: priv_drop is a no-op");
		t_diag("not root: the root-only checks are skipped");
		return;
	}
	if ((pw = getpwnam("nobody")) == NULL) {
		t_diag("no user nobody: skipping the drop checks");
		return;
	}
	t_int_eq(drop_child("nobody", NULL, NULL, NULL), 0,
	    "drop to nobody: ids changed, root cannot be regained");
	t_int_eq(drop_child("no-such-user-smtpgate", NULL, NULL, NULL), 1,
	    "unknown user is fatal (exit 1)");
	t_int_eq(drop_child("root", NULL, NULL, NULL), 1,
	    "a uid 0 user is refused");
	(void)snprintf(jail, sizeof(jail), "/tmp/t_priv.XXXXXX");
	if (!t_ok(mkdtemp(jail) != NULL, "setup: mkdtemp: %s", strerror(errno)))
		return;
	t_int_eq(drop_child("nobody", "root", jail, "/etc/passwd"), 0,
	    "drop with chroot: outside files invisible");
	(void)rmdir(jail);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "lookup", t_lookup },
		{ "drop", t_drop },
	};

	log_init("t_priv", LOG_DEST_STDERR);
	return T_RUN(cases);
}
