/*
 * The scheduler: the only deliverd process that writes LMDB. It takes due
 * recipients from the schedule index, groups them by message and next hop
 * into jobs, hands jobs to idle workers over pipes (at most
 * dest_concurrency per hop), and commits the workers' results in batched
 * write transactions: delivered, deferred (retry_schedule), bounced
 * (remote, expired). In-flight state is memory only ("claims"): after a
 * restart every due entry is simply picked again. This file holds the
 * main loop, the children and the stop; deliverd_sched.h lists the rest.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_sched.h"
#include "log.h"
#include "sig.h"
#include "spool.h"
#include "trigger.h"
#include "xmem.h"

/* ---- children */

static void
deliverd_sched_close_spool(struct sched *s)
{
	spool_close(&s->sp);
}

void
deliverd_sched_open_spool(struct sched *s)
{
	int	 rc;

	if (s->sp != NULL)
		return;
	if ((rc = spool_open(s->cf->cf_spool_dir, s->cf->cf_lmdb_map_size,
	    s->cf->cf_lmdb_map_max, 0, &s->sp)) != 0)
		log_fatalx("spool_open %s: %s", s->cf->cf_spool_dir, spool_strerror(rc));
}

static void
deliverd_sched_close_others(struct sched *s, size_t keep)
{
	size_t	 i;

	for (i = 0; i < s->nw; i++) {
		if (i == keep)
			continue;
		if (s->w[i].to_fd != -1)
			(void)close(s->w[i].to_fd);
		if (s->w[i].from_fd != -1)
			(void)close(s->w[i].from_fd);
	}
	(void)close(s->trigger_fd);
}

/* In a new child: die with the scheduler (a kill -9 of it must not leave
 * a second callback sender draining the outbox after a restart). */
static void
deliverd_sched_child(pid_t parent)
{
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0);	/* the scheduler died before prctl */
}

/* Forks worker i. The LMDB handle is closed around the fork (never
 * carried into a child). */
static void
deliverd_sched_spawn_worker(struct sched *s, size_t i)
{
	int	 job[2], res[2];
	pid_t	 pid, parent = getpid();

	if (pipe2(job, O_CLOEXEC) == -1 || pipe2(res, O_CLOEXEC) == -1)
		log_fatal("pipe");
	deliverd_sched_close_spool(s);
	if ((pid = fork()) == -1)
		log_fatal("fork");
	if (pid == 0) {
		deliverd_sched_child(parent);
		(void)close(job[1]);
		(void)close(res[0]);
		deliverd_sched_close_others(s, i);
		deliverd_worker_main(s->cf, job[0], res[1], (int)i);
	}
	(void)close(job[0]);
	(void)close(res[1]);
	(void)fcntl(res[0], F_SETFL, O_NONBLOCK);
	s->w[i].pid = pid;
	s->w[i].to_fd = job[1];
	s->w[i].from_fd = res[0];
	s->w[i].njobs = 0;
	s->w[i].nuncommitted = 0;
	s->w[i].last_hop[0] = '\0';
	buf_reset(&s->w[i].in);
}

static void
deliverd_sched_spawn_callback(struct sched *s)
{
	pid_t	 pid, parent = getpid();

	deliverd_sched_close_spool(s);
	if ((pid = fork()) == -1)
		log_fatal("fork");
	if (pid == 0) {
		deliverd_sched_child(parent);
		deliverd_sched_close_others(s, (size_t)-1);
		deliverd_callback_main(s->cf);
	}
	s->cb_pid = pid;
}

static void
deliverd_sched_spawn_missing(struct sched *s)
{
	static int64_t	 last_ms;
	size_t		 i;

	/* a child that dies at once must not make us fork in a tight loop */
	if (deliverd_now_ms() - last_ms < 1000)
		return;
	last_ms = deliverd_now_ms();

	for (i = 0; i < s->nw; i++)
		if (s->w[i].pid == -1 && !s->stopping)
			deliverd_sched_spawn_worker(s, i);
	if (s->cb_pid == -1 && !s->stopping)
		deliverd_sched_spawn_callback(s);
	s->respawn = false;
	deliverd_sched_open_spool(s);
}

static void
deliverd_sched_worker_gone(struct sched *s, struct deliverd_sched_worker *w)
{
	size_t	 i;

	for (i = 0; i < w->njobs; i++) {
		/* its recipients were not committed: they will be picked again */
		log_warnx("worker %ld exited with a job for %s", (long)w->pid,
		    w->jobs[i]->j.dj_qid);
		deliverd_sched_job_release(s, w->jobs[i]);
	}
	w->njobs = 0;
	if (w->to_fd != -1)
		(void)close(w->to_fd);
	if (w->from_fd != -1)
		(void)close(w->from_fd);
	w->to_fd = w->from_fd = -1;
	w->pid = -1;
	s->respawn = true;
}

static void
deliverd_sched_reap(struct sched *s)
{
	pid_t	 pid;
	int	 status;
	size_t	 i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == s->cb_pid) {
			if (!s->stopping)
				log_warnx("callback sender exited (status %d); restarting", status);
			s->cb_pid = -1;
			s->respawn = true;
			continue;
		}
		for (i = 0; i < s->nw; i++) {
			if (s->w[i].pid != pid)
				continue;
			if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0))
				log_warnx("worker %ld exited (status %d)", (long)pid, status);
			deliverd_sched_worker_gone(s, &s->w[i]);
		}
	}
}

/* ---- main loop */

/* True when a scan is due now (and allowed: deliverd_sched_can_scan). */
static bool
deliverd_sched_scan_due(const struct sched *s)
{
	if (!deliverd_sched_can_scan(s))
		return false;
	return (s->rescan && s->nqueue < SCHED_QUEUE_LOW) ||
	    (s->next_due != 0 && s->next_due <= deliverd_now()) ||
	    deliverd_now_ms() - s->last_scan_ms >= SCHED_RESCAN_MS;
}

static int64_t
deliverd_sched_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int
deliverd_sched_poll_timeout(struct sched *s)
{
	int64_t	 ms = SCHED_RESCAN_MS;

	if (deliverd_sched_scan_due(s))
		return 0;
	if (s->respawn)
		ms = 1000;
	if (s->export_pending)
		ms = deliverd_sched_min(ms, SCHED_EXPORT_MS);
	if (s->next_due != 0 && deliverd_sched_can_scan(s))
		ms = deliverd_sched_min(ms, (s->next_due - deliverd_now()) * 1000);
	if (s->retry.pending)
		ms = deliverd_sched_min(ms, s->retry.next_ms - deliverd_now_ms());
	return ms < 0 ? 0 : (int)ms;
}

static void
deliverd_sched_signals(struct sched *s)
{
	unsigned	 sigs = sig_take();
	struct conf	*ncf;
	char		 err[1024];
	size_t		 i;

	if (sigs & SIG_CHLD)
		deliverd_sched_reap(s);
	if (sigs & SIG_TERM)
		s->stopping = true;
	if ((sigs & SIG_HUP) && !s->stopping) {
		if ((ncf = conf_load(s->cf->cf_path, err, sizeof(err))) == NULL) {
			log_warnx("reload: %s (keeping the old configuration)", err);
			return;
		}
		log_info("configuration reloaded; replacing workers");
		/* Old workers finish their job and exit on EOF; the conf they
		 * were forked with stays valid in their own address space. */
		conf_free(&s->cf);
		s->cf = ncf;
		for (i = 0; i < s->nw; i++)
			if (s->w[i].to_fd != -1) {
				(void)close(s->w[i].to_fd);
				s->w[i].to_fd = -1;
			}
		if (s->cb_pid != -1)
			(void)kill(s->cb_pid, SIGTERM);
	}
}

static void
deliverd_sched_loop_once(struct sched *s)
{
	struct pollfd	*pfd;
	size_t		 i, n = 0;
	int		 rc;

	pfd = xcalloc(s->nw + 2, sizeof(*pfd));
	pfd[n].fd = sig_fd();
	pfd[n++].events = POLLIN;
	pfd[n].fd = s->trigger_fd;
	pfd[n++].events = POLLIN;
	for (i = 0; i < s->nw; i++) {
		pfd[n].fd = s->w[i].from_fd;
		pfd[n++].events = POLLIN;
	}
	rc = poll(pfd, n, s->stopping ? 200 : deliverd_sched_poll_timeout(s));
	if (rc == -1 && errno != EINTR)
		log_fatal("poll");
	if (rc > 0 && (pfd[1].revents & POLLIN)) {
		trigger_drain(s->trigger_fd);
		s->rescan = true;
	}
	for (i = 0; rc > 0 && i < s->nw; i++)
		if (s->w[i].from_fd != -1 && (pfd[i + 2].revents & (POLLIN | POLLHUP)))
			deliverd_sched_read_worker(s, &s->w[i]);
	free(pfd);
	deliverd_sched_signals(s);
	deliverd_sched_reap(s);
}

static void
deliverd_sched_stop(struct sched *s)
{
	int64_t	 deadline = deliverd_now_ms() + SCHED_STOP_GRACE_MS;
	size_t	 i, alive;

	log_info("stopping: waiting for workers to finish their transactions");
	for (i = 0; i < s->nw; i++)
		if (s->w[i].to_fd != -1) {
			(void)close(s->w[i].to_fd);
			s->w[i].to_fd = -1;
		}
	if (s->cb_pid != -1)
		(void)kill(s->cb_pid, SIGTERM);
	for (;;) {
		for (alive = 0, i = 0; i < s->nw; i++)
			alive += s->w[i].pid != -1;
		/* a failing commit is retried for the whole grace */
		if ((alive == 0 && s->cb_pid == -1 && !s->retry.pending) ||
		    deliverd_now_ms() > deadline)
			break;
		deliverd_sched_loop_once(s);
		deliverd_sched_commit(s, false);
		deliverd_sched_export(s, false);
	}
	for (i = 0; i < s->nw; i++)
		if (s->w[i].pid != -1)
			(void)kill(s->w[i].pid, SIGKILL);
	if (s->cb_pid != -1)
		(void)kill(s->cb_pid, SIGKILL);
	deliverd_sched_commit(s, true);
	if (s->retry.pending)
		log_warnx("stopping with %zu outcomes not recorded (%s): their recipients "
		    "are sent again after the restart", s->nres, spool_strerror(s->retry.rc));
	deliverd_sched_export(s, true);
}

static int
deliverd_sched_orphan_cb(const char *name, void *arg)
{
	struct sched		*s = arg;
	struct spool_txn	*txn = NULL;
	struct spool_msg	*m;
	int			 rc;

	if (!qid_ok(name) || spool_begin(s->sp, false, &txn) != 0)
		return 0;
	m = xmalloc(sizeof(*m));
	rc = spool_msg_get(txn, name, m);
	spool_abort(&txn);
	free(m);
	if (rc == SPOOL_ENOTFOUND) {
		/* finished, but the unlink after the commit did not happen */
		log_info("%s: removing finished queue file", name);
		(void)spool_unlink(s->cf->cf_spool_dir, SPOOL_QUEUE, name);
	}
	return 0;
}

void
deliverd_sched_main(struct conf *cf, int trigger_fd)
{
	struct sched	*s;
	size_t		 i;

	log_set_procname("deliverd");
	s = xcalloc(1, sizeof(*s));
	s->cf = cf;
	s->trigger_fd = trigger_fd;
	s->cb_pid = -1;
	TAILQ_INIT(&s->queue);
	s->nw = (size_t)cf->cf_deliverd_workers;
	s->claims_max = SCHED_CLAIMS_BASE + SCHED_CLAIMS_PER_WORKER * s->nw;
	s->w = xcalloc(s->nw, sizeof(*s->w));
	for (i = 0; i < s->nw; i++) {
		s->w[i].pid = -1;
		s->w[i].to_fd = s->w[i].from_fd = -1;
		buf_init(&s->w[i].in, 4 * DELIVERD_LINE_MAX);
	}
	deliverd_sched_open_spool(s);	/* creates the environment before any child opens it */
	deliverd_sched_spawn_missing(s);
	(void)spool_scan(cf->cf_spool_dir, SPOOL_QUEUE, deliverd_sched_orphan_cb, s);
	log_info("started: %zu workers, %s", s->nw, cf->cf_relayhost[0] ?
	    cf->cf_relayhost : "MX delivery");
	s->rescan = true;
	deliverd_sched_rekey(s);
	while (!s->stopping) {
		deliverd_sched_clock(s);
		if (s->respawn)
			deliverd_sched_spawn_missing(s);
		if (deliverd_sched_scan_due(s))
			deliverd_sched_scan(s);
		deliverd_sched_dispatch(s);
		deliverd_sched_loop_once(s);
		/* workers without outcomes in this batch get their next job
		 * before the commit's fsyncs */
		deliverd_sched_dispatch(s);
		deliverd_sched_commit(s, false);
		deliverd_sched_export(s, false);
	}
	deliverd_sched_stop(s);
	spool_close(&s->sp);
	log_info("stopped");
	exit(0);
}
