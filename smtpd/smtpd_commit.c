/*
 * smtpd_commit: a small pool of threads per worker that run
 * spool_in_commit() (fsync the file, rename into incoming/new, fsync the
 * directory) so the event loop keeps serving other sessions while the
 * disk works, and several commits of one worker overlap. The loop submits
 * a session and polls smtpd_commit_fd(); smtpd_commit_take() returns the
 * sessions whose commit finished, with ss_commit_rc set. A session is
 * never freed while its commit is in flight (ss_committing).
 * Nothing else is shared with the threads: each touches only the
 * struct spool_in of the session it was given.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "smtpd.h"
#include "xmem.h"

#define SMTPD_COMMIT_STACK	(256 * 1024)

struct smtpd_cq {
	struct smtpd_session	**q_v;
	size_t			  q_n, q_cap;
};

static pthread_mutex_t	 cm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cm_cond = PTHREAD_COND_INITIALIZER;
static struct smtpd_cq	 cm_todo, cm_done;
static int		 cm_pipe[2] = { -1, -1 };

static void
smtpd_cq_push(struct smtpd_cq *q, struct smtpd_session *s)
{
	if (q->q_n == q->q_cap) {
		q->q_cap = q->q_cap ? q->q_cap * 2 : 64;
		q->q_v = xreallocarray(q->q_v, q->q_cap, sizeof(*q->q_v));
	}
	q->q_v[q->q_n++] = s;
}

static void *
smtpd_commit_thread(void *arg)
{
	struct smtpd_session	*s;
	int			 rc;

	(void)arg;
	for (;;) {
		(void)pthread_mutex_lock(&cm_lock);
		while (cm_todo.q_n == 0)
			(void)pthread_cond_wait(&cm_cond, &cm_lock);
		s = cm_todo.q_v[0];
		memmove(cm_todo.q_v, cm_todo.q_v + 1,
		    (cm_todo.q_n - 1) * sizeof(*cm_todo.q_v));
		cm_todo.q_n--;
		(void)pthread_mutex_unlock(&cm_lock);

		rc = spool_in_commit(&s->ss_file);

		(void)pthread_mutex_lock(&cm_lock);
		s->ss_commit_rc = rc;
		smtpd_cq_push(&cm_done, s);
		(void)pthread_mutex_unlock(&cm_lock);
		if (write(cm_pipe[1], "", 1) == -1) {
			/* full pipe: the loop is awake and will take all done */
		}
	}
	return NULL;
}

int
smtpd_commit_init(int nthreads)
{
	pthread_attr_t	attr;
	pthread_t	t;
	sigset_t	all, old;
	int		i, rc;

	if (pipe2(cm_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		log_fatal("pipe");
	(void)pthread_attr_init(&attr);
	(void)pthread_attr_setstacksize(&attr, SMTPD_COMMIT_STACK);
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Signals stay with the loop thread (its handlers write a self-pipe). */
	sigfillset(&all);
	(void)pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nthreads; i++)
		if ((rc = pthread_create(&t, &attr, smtpd_commit_thread, NULL)) != 0) {
			errno = rc;
			log_fatal("pthread_create");
		}
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	(void)pthread_attr_destroy(&attr);
	return cm_pipe[0];
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
	char	b[256];
	size_t	n;
	bool	more;

	while (read(cm_pipe[0], b, sizeof(b)) > 0)
		;
	(void)pthread_mutex_lock(&cm_lock);
	n = cm_done.q_n < max ? cm_done.q_n : max;
	memcpy(v, cm_done.q_v, n * sizeof(*v));
	memmove(cm_done.q_v, cm_done.q_v + n, (cm_done.q_n - n) * sizeof(*v));
	cm_done.q_n -= n;
	more = cm_done.q_n > 0;
	(void)pthread_mutex_unlock(&cm_lock);
	if (more && write(cm_pipe[1], "", 1) == -1) {
		/* more remain: wake the loop again (a full pipe wakes it too) */
	}
	return n;
}
