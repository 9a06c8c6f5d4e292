/*
 * Unit tests for the spool directory side of libspool: the tree and incoming
 * write (spool_tree_create, spool_in_*, spool_scan/move/unlink,
 * spool_tmp_cleanup), including a crash (fork + _exit) between each step
 * of the durable write: incoming/new must then hold nothing or the whole
 * file, and spool_tmp_cleanup must remove what is left in tmp/.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "fsx.h"
#include "spool.h"
#include "tap.h"
#include "tfix.h"

static char tdir[64];
static char msg[100000]; /* the message every crash test writes */

static struct conf *
tree_fresh(void)
{
	return t_spool_conf(tdir, sizeof(tdir), "t_spool_dir");
}

static mode_t
mode_of(const char *rel)
{
	struct stat st;
	char	    p[1200];

	(void)snprintf(p, sizeof(p), "%s/%s", tdir, rel);
	if (lstat(p, &st) == -1)
		return 0;
	return st.st_mode;
}

static void
t_tree(void)
{
	struct conf *cf = tree_fresh();

	t_int_eq(spool_tree_create(cf), 0, "create");
	t_int_eq(spool_tree_create(cf), 0, "again: idempotent");
	t_int_eq(mode_of("incoming/tmp") & 07777, 0770, "incoming/tmp 0770");
	t_int_eq(mode_of("incoming/new") & 07777, 0770, "incoming/new 0770");
	t_int_eq(mode_of("queue") & 07777, 0700, "queue 0700");
	t_int_eq(mode_of("quarantine") & 07777, 0700, "quarantine 0700");
	t_int_eq(mode_of("keys") & 07777, 0700, "keys 0700");
	t_int_eq(mode_of("db") & 07777, 0750, "db 0750");
	t_ok(S_ISFIFO(mode_of("trigger")) &&
		(mode_of("trigger") & 07777) == 0660,
	    "trigger FIFO 0660");
	conf_free(&cf);
}

static int
scan_cb(const char *name, void *arg)
{
	struct buf *b = arg;

	(void)buf_printf(b, "%c%c,", name[0], name[19]);
	return 0;
}

static int
scan_stop(const char *name, void *arg)
{
	(void)name;
	(void)arg;
	return 42;
}

static void
touch(const char *rel, time_t age)
{
	struct timeval tv[2];
	char	       p[512];
	int	       fd;

	(void)snprintf(p, sizeof(p), "%s/%s", tdir, rel);
	if ((fd = open(p, O_WRONLY | O_CREAT, 0640)) != -1)
		(void)close(fd);
	tv[0].tv_sec = tv[1].tv_sec = time(NULL) - age;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	(void)utimes(p, tv);
}

/* As root: owners from the configuration, and a root-made event log. */
static void
t_tree_owners(void)
{
	struct conf *cf;
	struct stat  st;
	char	     p[512];

	if (geteuid() != 0 || getpwnam("nobody") == NULL ||
	    getgrnam("nogroup") == NULL) {
		t_ok(true, "# SKIP not root or no nobody/nogroup");
		return;
	}
	cf = tree_fresh();
	free(cf->cf_spoold_user);
	free(cf->cf_group);
	free(cf->cf_event_log);
	cf->cf_spoold_user = strdup("nobody");
	cf->cf_group = strdup("nogroup");
	free(cf->cf_smtpd_group);
	cf->cf_smtpd_group = strdup(
	    "nogroup"); /* issue 14: incoming/'s group */
	(void)snprintf(p, sizeof(p), "%s/events.jsonl", tdir);
	cf->cf_event_log = strdup(p);
	touch("events.jsonl", 0);
	t_int_eq(spool_tree_create(cf), 0, "create as root");
	(void)snprintf(p, sizeof(p), "%s/incoming/tmp", tdir);
	t_ok(stat(p, &st) == 0 && st.st_uid == getpwnam("nobody")->pw_uid &&
		st.st_gid == getgrnam("nogroup")->gr_gid,
	    "incoming/tmp: spoold_user:smtpd_group");
	(void)snprintf(p, sizeof(p), "%s/keys", tdir);
	t_ok(stat(p, &st) == 0 && st.st_uid == 0, "keys: deliverd_user");
	(void)snprintf(p, sizeof(p), "%s/events.jsonl", tdir);
	t_ok(stat(p, &st) == 0 && st.st_uid == getpwnam("nobody")->pw_uid,
	    "root's event log handed to spoold_user");
	free(cf->cf_spoold_user);
	cf->cf_spoold_user = strdup("no-such-user-here");
	t_int_eq(spool_tree_create(cf), EINVAL, "unknown user: EINVAL");
	conf_free(&cf);
}

/* A link, a second name or a wrong type below spool_dir is refused by
 * name and left alone (issue 14 item 1; as root: tests/blackbox/test_symlink.py). */
static void
t_tree_refuses(void)
{
	static const struct {
		const char *rel;
		const char *how; /* "link", "hardlink", "file" */
		const char *why;
	} c[] = {
		{ "queue", "link", "it is a symbolic link" },
		{ "db/lock.mdb", "link", "it is a symbolic link" },
		{ "trigger", "link", "it is a symbolic link" },
		{ "db/data.mdb", "hardlink",
		    "it has more than one name (a hard link)" },
		{ "quarantine", "file", "it is not a directory" },
	};
	struct conf *cf;
	struct stat  before, after;
	char	     p[1200], outside[1200], why[4400], want[1400];
	size_t	     i;
	int	     fd, rc;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		cf = tree_fresh();
		(void)spool_tree_create(cf);
		(void)snprintf(p, sizeof(p), "%s/%s", tdir, c[i].rel);
		(void)snprintf(outside, sizeof(outside), "%s.outside", tdir);
		if ((fd = open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0604)) !=
		    -1)
			(void)close(fd);
		(void)chmod(outside, 0604);
		(void)stat(outside, &before);
		(void)unlink(p);
		(void)rmdir(p);
		rc = strcmp(c[i].how, "link") == 0	? symlink(outside, p)
		    : strcmp(c[i].how, "hardlink") == 0 ? link(outside, p)
		    : (fd = open(p, O_WRONLY | O_CREAT, 0600)) == -1
		    ? -1
		    : close(fd);
		if (!t_ok(rc == 0, "%s: plant a %s", c[i].rel, c[i].how))
			continue;
		rc = spool_tree_create_err(cf, why, sizeof(why));
		(void)snprintf(want, sizeof(want), "refusing %s: %s", p,
		    c[i].why);
		t_ok(rc == SPOOL_EUNSAFE, "%s (%s): SPOOL_EUNSAFE, got %d",
		    c[i].rel, c[i].how, rc);
		t_str_eq(why, want, c[i].rel);
		t_ok(stat(outside, &after) == 0 &&
			after.st_mode == before.st_mode &&
			after.st_uid == before.st_uid,
		    "%s: the target is untouched", c[i].rel);
		(void)unlink(outside);
		conf_free(&cf);
	}
}

static void
t_scan_move(void)
{
	struct conf *cf = tree_fresh();
	struct buf   b;
	size_t	     n;

	(void)spool_tree_create(cf);
	touch("incoming/new/2000000000000000000B", 0);
	touch("incoming/new/1000000000000000000A", 0);
	touch("incoming/new/.1000000000000000000C", 0);
	touch("incoming/new/junk", 0);
	buf_init(&b, 1024);
	t_int_eq(spool_scan(tdir, SPOOL_NEW, scan_cb, &b), 0, "scan");
	t_str_eq(b.data, "1A,2B,", "sorted, only queue ids");
	t_int_eq(spool_scan(tdir, SPOOL_NEW, scan_stop, NULL), 42,
	    "callback stops the scan");
	t_int_eq(spool_move(tdir, "1000000000000000000A", SPOOL_NEW,
		     SPOOL_QUEUE),
	    0, "move");
	t_int_eq(spool_sync(tdir, SPOOL_QUEUE), 0, "sync");
	t_ok(mode_of("queue/1000000000000000000A") != 0, "moved");
	t_int_eq(spool_move(tdir, "1000000000000000000A", SPOOL_NEW,
		     SPOOL_QUEUE),
	    ENOENT, "move again: ENOENT");
	t_int_eq(spool_unlink(tdir, SPOOL_QUEUE, "1000000000000000000A"), 0,
	    "unlink");
	t_int_eq(spool_unlink(tdir, SPOOL_QUEUE, "1000000000000000000A"),
	    ENOENT, "unlink again");
	touch("incoming/tmp/old", 3600);
	touch("incoming/tmp/.old.tmp", 3600);
	touch("incoming/tmp/young", 10);
	t_int_eq(spool_tmp_cleanup(tdir, 600, &n), 0, "cleanup");
	t_int_eq((long long)n, 2, "two old files removed");
	t_ok(mode_of("incoming/tmp/young") != 0 &&
		mode_of("incoming/tmp/old") == 0,
	    "young kept, old gone");
	buf_release(&b);
	conf_free(&cf);
}

static void
t_in_ok(void)
{
	struct conf    *cf = tree_fresh();
	struct spool_in in;
	char		p[512], *data;
	size_t		len;

	(void)spool_tree_create(cf);
	(void)umask(077);
	t_int_eq(spool_in_create(tdir, &in), 0, "create");
	t_ok(qid_ok(in.sn_qid), "fresh qid");
	t_int_eq(spool_in_write(&in, msg, sizeof(msg)), 0, "write");
	t_int_eq((long long)in.sn_size, (long long)sizeof(msg), "size counted");
	t_int_eq(spool_in_commit(&in), 0, "commit");
	(void)snprintf(p, sizeof(p), "incoming/new/%s", in.sn_qid);
	/* spoold reads it as the directory's owner (issue 14) */
	t_int_eq(mode_of(p) & 07777, 0644, "0644 whatever the umask");
	t_ok(fsx_read_file(in.sn_new, sizeof(msg), &data, &len) == 0 &&
		len == sizeof(msg) && memcmp(data, msg, len) == 0,
	    "complete in new/");
	free(data);
	(void)snprintf(p, sizeof(p), "incoming/tmp/%s", in.sn_qid);
	t_ok(mode_of(p) == 0, "not in tmp/");
	spool_in_abort(&in);
	t_ok(mode_of(in.sn_new + strlen(tdir) + 1) != 0,
	    "abort after commit keeps it");

	t_int_eq(spool_in_create(tdir, &in), 0, "create 2");
	(void)spool_in_write(&in, "x", 1);
	spool_in_abort(&in);
	spool_in_abort(&in);
	(void)snprintf(p, sizeof(p), "incoming/tmp/%s", in.sn_qid);
	t_ok(mode_of(p) == 0, "abort (twice) removes tmp");

	/* the two-step commit (smtpd's shared directory fsync) */
	t_int_eq(spool_in_create(tdir, &in), 0, "create 2-step");
	(void)spool_in_write(&in, "x", 1);
	t_int_eq(spool_in_commit_file(&in), 0, "commit_file");
	(void)snprintf(p, sizeof(p), "incoming/new/%s", in.sn_qid);
	t_ok(mode_of(p) != 0, "commit_file: renamed into new/");
	(void)snprintf(p, sizeof(p), "incoming/tmp/%s", in.sn_qid);
	t_ok(mode_of(p) == 0, "commit_file: not in tmp/");
	spool_in_uncommit(&in);
	(void)snprintf(p, sizeof(p), "incoming/new/%s", in.sn_qid);
	t_ok(mode_of(p) == 0, "uncommit removes it from new/");
	t_int_eq(spool_in_commit_file(&in), EBADF, "commit_file twice: EBADF");

	t_int_eq(spool_in_create(tdir, &in), 0, "create 3");
	(void)snprintf(p, sizeof(p), "%s/incoming/new", tdir);
	t_rmtree(p);
	t_ok(spool_in_commit(&in) != 0, "commit fails without new/");
	(void)snprintf(p, sizeof(p), "incoming/tmp/%s", in.sn_qid);
	t_ok(mode_of(p) == 0, "failed commit: tmp file gone");
	conf_free(&cf);
}

/* Crash points of the durable write, in order. */
enum crash {
	C_CREATED,
	C_HALF,
	C_WRITTEN,
	C_FSYNCED,
	C_RENAMED,
	C_COMMITTED,
	C_N
};
static const char *const crash_names[C_N] = { "after create", "mid-write",
	"after write", "after fsync", "after rename", "after commit" };

/* The child runs spool_in_* and the same system calls spool_in_commit
 * makes, and dies with _exit at point c (no cleanup, like a crash). */
static void
crash_child(enum crash c)
{
	struct spool_in in;

	if (spool_in_create(tdir, &in) != 0)
		_exit(2);
	if (c == C_CREATED)
		_exit(0);
	if (spool_in_write(&in, msg,
		c == C_HALF ? sizeof(msg) / 2 : sizeof(msg)) != 0)
		_exit(2);
	if (c == C_HALF || c == C_WRITTEN)
		_exit(0);
	if (c == C_COMMITTED)
		_exit(spool_in_commit(&in) == 0 ? 0 : 2);
	if (fsync(in.sn_fd) == -1 || close(in.sn_fd) == -1)
		_exit(2);
	if (c == C_FSYNCED)
		_exit(0);
	if (rename(in.sn_tmp, in.sn_new) == -1)
		_exit(2);
	_exit(0); /* C_RENAMED: the directory was not fsynced */
}

struct crash_check {
	size_t n, complete;
};

static int
crash_scan(const char *name, void *arg)
{
	struct crash_check *cc = arg;
	char		    p[512], *data;
	size_t		    len;

	cc->n++;
	(void)snprintf(p, sizeof(p), "%s/incoming/new/%s", tdir, name);
	if (fsx_read_file(p, sizeof(msg) + 1, &data, &len) == 0) {
		if (len == sizeof(msg) && memcmp(data, msg, len) == 0)
			cc->complete++;
		free(data);
	}
	return 0;
}

static void
t_crash(void)
{
	struct conf	  *cf;
	struct crash_check cc;
	struct spool_in	   in;
	enum crash	   c;
	size_t		   n;
	pid_t		   pid;
	int		   st;

	for (c = 0; c < C_N; c++) {
		cf = tree_fresh();
		(void)spool_tree_create(cf);
		if ((pid = fork()) == 0)
			crash_child(c);
		t_ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
			WEXITSTATUS(st) == 0,
		    "%s: child ran", crash_names[c]);
		memset(&cc, 0, sizeof(cc));
		(void)spool_scan(tdir, SPOOL_NEW, crash_scan, &cc);
		t_ok(cc.n == cc.complete, "%s: new/ holds only complete files",
		    crash_names[c]);
		t_int_eq((long long)cc.n, c >= C_RENAMED ? 1 : 0,
		    crash_names[c]);
		t_int_eq(spool_tmp_cleanup(tdir, 0, &n), 0, "cleanup");
		t_int_eq((long long)n, c >= C_RENAMED ? 0 : 1,
		    "leftover in tmp/ removed");
		t_int_eq(spool_in_create(tdir, &in), 0, "writing works again");
		spool_in_abort(&in);
		conf_free(&cf);
	}
}

static const struct t_case cases[] = {
	{ "tree", t_tree },
	{ "tree_owners", t_tree_owners },
	{ "tree_refuses", t_tree_refuses },
	{ "scan_move", t_scan_move },
	{ "in_ok", t_in_ok },
	{ "crash", t_crash },
};

int
main(void)
{
	size_t i;

	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('a' + i % 26);
	return T_RUN_RMTREE(cases, tdir);
}
