/*
 * smtpd_commit: a small pool of threads per worker that commit received
 * messages (fsync the file, rename it into incoming/new, fsync the
 * directory) so the event loop keeps serving other sessions while the
 * disk works, and several commits of one worker overlap. The loop submits
 * a session; a finished commit wakes the loop (ev_wakeup), and
 * smtpd_commit_take() returns the sessions whose commit finished, with
 * ss_commit_rc set. A session is never freed while its commit is in
 * flight (ss_committing).
 *
 * The directory fsync is shared (group commit): after its rename a thread
 * puts the session on the "renamed" list. If no thread is syncing the
 * directory, it becomes the syncer: it takes the whole list, fsyncs
 * incoming/new once, and hands every session on it to the loop; it repeats
 * while the list refills. A session is on the list only after its rename
 * returned, and the syncer takes the list before its fsync begins, so each
 * fsync covers the renames of every session it answers for: the guarantee
 * of spool_in_commit() (no 250 before the file and its name are on disk)
 * holds with one directory fsync for many messages. Threads that are not
 * syncing go on with the next file fsync meanwhile.
 * Nothing else is shared with the threads: each touches only the
 * struct spool_in of the sessions it was given.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ev.h"
#include "fsx.h"
#include "log.h"
#include "smtpd.h"
#include "xmem.h"

#define SMTPD_COMMIT_STACK (256 * 1024)

struct smtpd_cq {
	struct smtpd_session **cq_v;
	size_t		       cq_n, cq_cap;
};

static pthread_mutex_t cm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  cm_cond = PTHREAD_COND_INITIALIZER;
static struct smtpd_cq cm_todo, cm_renamed, cm_done;
static bool	       cm_syncing; /* a thread is syncing the directory */
static bool	       cm_stop;	   /* smtpd_commit_stop(): threads return */
static pthread_t      *cm_threads;
static int	       cm_nthreads;
static int	   cm_dirfd = -1; /* incoming/new, kept open by the syncer */
static struct stat cm_dirst;	  /* what cm_dirfd is */
static struct ev  *cm_ev;	  /* the loop to wake: commits done */

static void
smtpd_cq_push(struct smtpd_cq *q, struct smtpd_session *s)
{
	if (q->cq_n == q->cq_cap) {
		q->cq_cap = q->cq_cap ? q->cq_cap * 2 : 64;
		q->cq_v = xreallocarray(q->cq_v, q->cq_cap, sizeof(*q->cq_v));
	}
	q->cq_v[q->cq_n++] = s;
}

static void
smtpd_commit_wake(void)
{
	ev_wakeup(cm_ev);
}

/*
 * fsync incoming/new; 0 or an errno. Called by the syncer only. The
 * descriptor is kept open, but it must still be the directory the renames
 * went to (by name): if incoming/new was replaced, it is opened again.
 */
static int
smtpd_commit_syncdir(const char *dir)
{
	struct stat st;
	int	    rc;

	if (stat(dir, &st) == -1)
		return errno;
	if (cm_dirfd != -1 &&
	    (st.st_ino != cm_dirst.st_ino || st.st_dev != cm_dirst.st_dev)) {
		(void)close(cm_dirfd); /* read-only fd: nothing to lose */
		cm_dirfd = -1;
	}
	if (cm_dirfd == -1) {
		if ((cm_dirfd = open(dir,
			 O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
			return errno;
		if (fstat(cm_dirfd, &cm_dirst) == -1) {
			rc = errno;
			(void)close(cm_dirfd);
			cm_dirfd = -1;
			return rc;
		}
	}
	if (fsx_fsync_dirfd(cm_dirfd) == -1) {
		rc = errno;
		/* a fresh descriptor next time */
		(void)close(cm_dirfd);
		cm_dirfd = -1;
		return rc;
	}
	return 0;
}

/*
 * Called with cm_lock held and cm_syncing set: syncs until the renamed
 * list is empty; returns with the lock held and cm_syncing cleared.
 */
static void
smtpd_commit_sync_all(struct smtpd_cq *batch)
{
	size_t i;
	int    rc;

	while (cm_renamed.cq_n > 0) {
		for (i = 0; i < cm_renamed.cq_n; i++)
			smtpd_cq_push(batch, cm_renamed.cq_v[i]);
		cm_renamed.cq_n = 0;
		(void)pthread_mutex_unlock(&cm_lock);

		rc = smtpd_commit_syncdir(batch->cq_v[0]->ss_file.sn_newdir);
		for (i = 0; i < batch->cq_n; i++) {
			if (rc != 0)
				spool_in_uncommit(&batch->cq_v[i]->ss_file);
			batch->cq_v[i]->ss_commit_rc = rc;
		}

		(void)pthread_mutex_lock(&cm_lock);
		for (i = 0; i < batch->cq_n; i++)
			smtpd_cq_push(&cm_done, batch->cq_v[i]);
		batch->cq_n = 0;
		smtpd_commit_wake();
	}
	cm_syncing = false;
}

static void *
smtpd_commit_thread(void *arg)
{
	struct smtpd_session *s;
	struct smtpd_cq	      batch = { NULL, 0, 0 };
	int		      rc;

	(void)arg;
	for (;;) {
		(void)pthread_mutex_lock(&cm_lock);
		while (cm_todo.cq_n == 0 && !cm_stop)
			(void)pthread_cond_wait(&cm_cond, &cm_lock);
		if (cm_todo.cq_n == 0) { /* stopping, nothing left */
			(void)pthread_mutex_unlock(&cm_lock);
			break;
		}
		s = cm_todo.cq_v[0];
		memmove(cm_todo.cq_v, cm_todo.cq_v + 1,
		    (cm_todo.cq_n - 1) * sizeof(*cm_todo.cq_v));
		cm_todo.cq_n--;
		(void)pthread_mutex_unlock(&cm_lock);

		rc = spool_in_commit_file(&s->ss_file);

		(void)pthread_mutex_lock(&cm_lock);
		if (rc != 0) {
			s->ss_commit_rc = rc;
			smtpd_cq_push(&cm_done, s);
			smtpd_commit_wake();
		} else {
			smtpd_cq_push(&cm_renamed, s);
			if (!cm_syncing) {
				cm_syncing = true;
				smtpd_commit_sync_all(&batch);
			}
		}
		(void)pthread_mutex_unlock(&cm_lock);
	}
	free(batch.cq_v);
	return NULL;
}

void
smtpd_commit_init(int nthreads, struct ev *ev)
{
	pthread_attr_t attr;
	sigset_t       all, old;
	int	       i, rc;

	cm_ev = ev;
	cm_threads = xcalloc((size_t)nthreads, sizeof(*cm_threads));
	(void)pthread_attr_init(&attr);
	(void)pthread_attr_setstacksize(&attr, SMTPD_COMMIT_STACK);
	/* Signals stay with the loop thread (its handlers write a self-pipe). */
	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		if ((rc = pthread_create(&cm_threads[i], &attr,
			 smtpd_commit_thread, NULL)) != 0) {
			errno = rc;
			log_fatal("pthread_create");
		}
		cm_nthreads++;
	}
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	(void)pthread_attr_destroy(&attr);
}

void
smtpd_commit_stop(void)
{
	int i;

	(void)pthread_mutex_lock(&cm_lock);
	cm_stop = true;
	(void)pthread_cond_broadcast(&cm_cond);
	(void)pthread_mutex_unlock(&cm_lock);
	/* each thread finishes what was submitted, then returns */
	for (i = 0; i < cm_nthreads; i++)
		(void)pthread_join(cm_threads[i], NULL);
	free(cm_threads);
	cm_threads = NULL;
	cm_nthreads = 0;
	if (cm_dirfd != -1)
		(void)close(cm_dirfd); /* read-only fd */
	cm_dirfd = -1;
}

void
smtpd_commit_submit(struct smtpd_session *s)
{
	s->ss_committing = true;
	(void)pthread_mutex_lock(&cm_lock);
	smtpd_cq_push(&cm_todo, s);
	(void)pthread_cond_signal(&cm_cond);
	(void)pthread_mutex_unlock(&cm_lock);
}

size_t
smtpd_commit_take(struct smtpd_session **v, size_t max)
{
	size_t n;
	bool   more;

	(void)pthread_mutex_lock(&cm_lock);
	n = cm_done.cq_n < max ? cm_done.cq_n : max;
	memcpy(v, cm_done.cq_v, n * sizeof(*v));
	memmove(cm_done.cq_v, cm_done.cq_v + n,
	    (cm_done.cq_n - n) * sizeof(*v));
	cm_done.cq_n -= n;
	more = cm_done.cq_n > 0;
	(void)pthread_mutex_unlock(&cm_lock);
	if (more)
		smtpd_commit_wake(); /* more remain: wake again */
	return n;
}
