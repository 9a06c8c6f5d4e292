/*
 * Unit tests for smtpd/smtpd_commit: the per-worker commit pool and its
 * shared directory fsync. fsync(2) and rename(2) are wrapped at link time
 * (-Wl,--wrap) so the test sees every directory fsync, can hold one while
 * more messages arrive, and can make one fail:
 *   - every committed message is in incoming/new and its session has rc 0;
 *   - messages renamed while a directory fsync runs share the next one
 *     (two directory fsyncs for 1 + N messages, not 1 + N; three if the
 *     last thread is still between its rename and the list);
 *   - no session is answered before a directory fsync that began after
 *     its rename has returned;
 *   - a failed directory fsync fails exactly the sessions it covered and
 *     removes their files from incoming/new;
 *   - if incoming/new is replaced, the next fsync is on the new one.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "ev.h"
#include "smtpd.h"
#include "spool.h"
#include "tap.h"
#include "tfix.h"

#define NLATE 10

int __real_fsync(int);
int __real_rename(const char *, const char *);
int __wrap_fsync(int);
int __wrap_rename(const char *, const char *);

static pthread_mutex_t w_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  w_cond = PTHREAD_COND_INITIALIZER;
static int	       w_dir_syncs; /* directory fsyncs begun */
static int	       w_renames;   /* renames returned */
static int   w_hold_until; /* first dir fsync waits for this many renames */
static int   w_fail_from;  /* dir fsyncs from this one (1-based) fail */
static int   w_renames_at_sync[8]; /* renames returned when sync k began */
static ino_t w_last_dir_ino;	   /* the directory the last dir fsync was on */

int
__wrap_fsync(int fd)
{
	struct stat st;
	int	    nth;

	if (fstat(fd, &st) == -1 || !S_ISDIR(st.st_mode))
		return __real_fsync(fd);
	(void)pthread_mutex_lock(&w_lock);
	nth = ++w_dir_syncs;
	w_last_dir_ino = st.st_ino;
	if (nth < 8)
		w_renames_at_sync[nth] = w_renames;
	(void)pthread_cond_broadcast(&w_cond);
	/* hold the first one until the late messages are all renamed */
	while (nth == 1 && w_renames < w_hold_until)
		(void)pthread_cond_wait(&w_cond, &w_lock);
	(void)pthread_mutex_unlock(&w_lock);
	if (w_fail_from > 0 && nth >= w_fail_from) {
		errno = EIO;
		return -1;
	}
	return __real_fsync(fd);
}

int
__wrap_rename(const char *from, const char *to)
{
	int rc = __real_rename(from, to);

	(void)pthread_mutex_lock(&w_lock);
	w_renames++;
	(void)pthread_cond_broadcast(&w_cond);
	(void)pthread_mutex_unlock(&w_lock);
	return rc;
}

static char	  tdir[64];
static struct ev *loop; /* the commit threads wake it */

static void
tree_fresh(void)
{
	struct conf *cf = t_spool_conf(tdir, sizeof(tdir), "t_smtpd_commit");

	if (spool_tree_create(cf) != 0)
		abort();
	conf_free(&cf);
}

static struct smtpd_session *
session_with_message(void)
{
	struct smtpd_session *s = calloc(1, sizeof(*s));

	if (s == NULL || spool_in_create(tdir, &s->ss_file) != 0 ||
	    spool_in_write(&s->ss_file, "Subject: x\r\n\r\nbody\r\n", 20) != 0)
		abort();
	return s;
}

/* Takes n finished sessions within 10 s; returns how many came. */
static size_t
take(struct smtpd_session **got, size_t n)
{
	size_t have = 0;
	int    waited = 0;

	while (have < n && waited < 10000) {
		if (ev_run_once(loop, 100) == 0)
			waited += 100;
		have += smtpd_commit_take(got + have, n - have);
	}
	return have;
}

static bool
in_new(const struct smtpd_session *s)
{
	struct stat st;

	return stat(s->ss_file.sn_new, &st) == 0;
}

static void
reset_wraps(int hold_until, int fail_from)
{
	(void)pthread_mutex_lock(&w_lock);
	w_dir_syncs = w_renames = 0;
	w_hold_until = hold_until;
	w_fail_from = fail_from;
	memset(w_renames_at_sync, 0, sizeof(w_renames_at_sync));
	(void)pthread_mutex_unlock(&w_lock);
}

/* One message in, then NLATE while its directory fsync is held. */
static void
run_batch(struct smtpd_session **all, struct smtpd_session **got)
{
	size_t i;

	for (i = 0; i < 1 + NLATE; i++)
		all[i] = session_with_message();
	smtpd_commit_submit(all[0]);
	(void)pthread_mutex_lock(&w_lock);
	while (w_dir_syncs == 0)
		(void)pthread_cond_wait(&w_cond, &w_lock);
	(void)pthread_mutex_unlock(&w_lock);
	for (i = 1; i < 1 + NLATE; i++)
		smtpd_commit_submit(all[i]);
	t_int_eq((long long)take(got, 1 + NLATE), 1 + NLATE,
	    "every session came back");
}

static void
test_shared_dir_fsync(void)
{
	struct smtpd_session *all[1 + NLATE], *got[1 + NLATE];
	size_t		      i, ok = 0, present = 0;

	tree_fresh();
	reset_wraps(1 + NLATE, 0);
	run_batch(all, got);
	for (i = 0; i < 1 + NLATE; i++) {
		ok += got[i]->ss_commit_rc == 0;
		present += in_new(all[i]);
	}
	t_int_eq((long long)ok, 1 + NLATE, "all committed");
	t_int_eq((long long)present, 1 + NLATE, "all in incoming/new");
	t_ok(w_dir_syncs == 2 || w_dir_syncs == 3,
	    "1 + 10 messages share directory fsyncs (%d)", w_dir_syncs);
	/* no one answered before an fsync that began after its rename */
	t_int_eq(w_renames_at_sync[1], 1,
	    "first fsync began after the first rename");
	t_int_eq(w_renames_at_sync[w_dir_syncs], 1 + NLATE,
	    "the last fsync began after every rename");
	for (i = 0; i < 1 + NLATE; i++)
		free(all[i]);
}

static void
test_failed_dir_fsync(void)
{
	struct smtpd_session *all[1 + NLATE], *got[1 + NLATE];
	size_t		      i, failed = 0, present = 0;

	tree_fresh();
	reset_wraps(1 + NLATE, 2); /* the late messages' fsyncs fail */
	run_batch(all, got);
	for (i = 1; i < 1 + NLATE; i++) {
		failed += all[i]->ss_commit_rc == EIO;
		present += in_new(all[i]);
	}
	t_int_eq(all[0]->ss_commit_rc, 0, "the first message committed");
	t_ok(in_new(all[0]), "and is in incoming/new");
	t_int_eq((long long)failed, NLATE, "the late ones failed with EIO");
	t_int_eq((long long)present, 0, "and were removed from incoming/new");
	for (i = 0; i < 1 + NLATE; i++)
		free(all[i]);

	/* the next commit opens the directory afresh and succeeds */
	reset_wraps(0, 0);
	all[0] = session_with_message();
	smtpd_commit_submit(all[0]);
	t_int_eq((long long)take(got, 1), 1, "a later commit came back");
	t_int_eq(all[0]->ss_commit_rc, 0, "and succeeded");
	t_ok(in_new(all[0]), "and is in incoming/new");
	free(all[0]);
}

static void
test_file_error(void)
{
	struct smtpd_session *s, *got[1];
	char		      tmp[4096];

	tree_fresh();
	reset_wraps(0, 0);
	s = session_with_message();
	(void)str_copy(tmp, sizeof(tmp), s->ss_file.sn_tmp);
	/* the target directory is gone: the rename fails */
	(void)snprintf(s->ss_file.sn_new, sizeof(s->ss_file.sn_new),
	    "%s/no/such/dir/x", tdir);
	smtpd_commit_submit(s);
	t_int_eq((long long)take(got, 1), 1, "came back");
	t_int_eq(s->ss_commit_rc, ENOENT, "rename error reported");
	t_int_eq(access(tmp, F_OK), -1, "tmp file removed");
	t_int_eq(w_dir_syncs, 0, "no directory fsync for a failed file");
	free(s);
}

/* incoming/new replaced while smtpd runs: the fsync follows the name */
static void
test_dir_replaced(void)
{
	struct smtpd_session *s, *got[1];
	struct stat	      st;
	char		      newdir[128], old[160];

	tree_fresh();
	reset_wraps(0, 0);
	s = session_with_message();
	smtpd_commit_submit(s);
	t_int_eq((long long)take(got, 1), 1, "first commit");
	free(s);
	(void)snprintf(newdir, sizeof(newdir), "%s/incoming/new", tdir);
	(void)snprintf(old, sizeof(old), "%s.old", newdir);
	if (rename(newdir, old) == -1 || mkdir(newdir, 0770) == -1 ||
	    stat(newdir, &st) == -1)
		abort();
	s = session_with_message();
	smtpd_commit_submit(s);
	t_int_eq((long long)take(got, 1), 1, "second commit");
	t_int_eq(s->ss_commit_rc, 0, "succeeded");
	t_ok(in_new(s), "in the new incoming/new");
	t_ok(w_last_dir_ino == st.st_ino, "its fsync was on the new directory");
	free(s);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "shared directory fsync", test_shared_dir_fsync },
		{ "failed directory fsync", test_failed_dir_fsync },
		{ "file commit error", test_file_error },
		{ "incoming/new replaced", test_dir_replaced },
	};
	int rc;

	loop = t_wake_loop();
	smtpd_commit_init(4, loop);
	rc = T_RUN(cases);
	smtpd_commit_stop();
	ev_free(&loop);
	t_rmtree(tdir);
	return rc;
}
