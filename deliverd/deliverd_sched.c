/*
 * The scheduler: the only deliverd process that writes LMDB. It takes due
 * recipients from the schedule index, groups them by message and next hop
 * into jobs, hands jobs to idle workers over pipes (at most
 * dest_concurrency per hop), and commits the workers' results in batched
 * write transactions: delivered, deferred (retry_schedule), bounced
 * (remote, expired). In-flight state is memory only ("claims"): after a
 * restart every due entry is simply picked again. This file holds the
 * main loop (common/ev.c), the children (common/kids.c) and the stop;
 * deliverd_sched.h lists the rest.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_dest.h"
#include "deliverd_sched.h"
#include "kids.h"
#include "log.h"
#include "sig.h"
#include "spool.h"
#include "spool_cluster.h"
#include "trigger.h"
#include "xmem.h"

/* ---- children (common/kids.c): slots 0..nw-1 are the workers, slot nw
 * the callback sender; a slot starts at most once a second, so a child
 * that dies at once cannot make us fork in a tight loop */

static const struct kids_policy deliverd_sched_kids_policy = {
	.kp_interval_ms = 1000,
	.kp_retry_ms = 1000,
};

static void
deliverd_sched_close_spool(struct sched *s)
{
	spool_close(&s->sp);
}

void
deliverd_sched_open_spool(struct sched *s)
{
	int rc;

	if (s->sp != NULL)
		return;
	if ((rc = spool_open(s->cf->cf_spool_dir, s->cf->cf_lmdb_map_size,
		 s->cf->cf_lmdb_map_max,
		 SPOOL_CLUSTER_IF(s->cf->cf_cluster_dsn), &s->sp)) != 0)
		log_fatalx("spool_open %s: %s", s->cf->cf_spool_dir,
		    spool_strerror(rc));
}

static void
deliverd_sched_close_others(struct sched *s, size_t keep)
{
	size_t i;

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

/* What a new child needs; it runs in the child only. */
struct deliverd_sched_fork {
	struct sched *s;
	size_t	      i;	/* worker index, or nw: the callback sender */
	int	      job, res; /* the worker's pipe ends */
	int	      job_w, res_r; /* the scheduler's: closed in the worker */
	pid_t	      parent;
};

/* In a new child: die with the scheduler (a kill -9 of it must not leave
 * a second callback sender draining the outbox after a restart). */
static void __attribute__((noreturn)) deliverd_sched_child(void *arg)
{
	struct deliverd_sched_fork *f = arg;

	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != f->parent)
		_exit(0); /* the scheduler died before prctl */
	/* neither a worker nor the callback sender talks to PostgreSQL */
	conf_forget_secrets(f->s->cf);
	if (f->i == f->s->nw) {
		deliverd_sched_close_others(f->s, (size_t)-1);
		deliverd_callback_main(f->s->cf);
	}
	(void)close(f->job_w);
	(void)close(f->res_r);
	deliverd_sched_close_others(f->s, f->i);
	deliverd_worker_main(f->s->cf, f->job, f->res, (int)f->i);
}

static void deliverd_sched_on_worker(struct ev *, int, unsigned, void *);

/* Forks worker i. The LMDB handle is closed around the fork (never
 * carried into a child); the loop opens it again after the turn. */
static pid_t
deliverd_sched_spawn_worker(struct sched *s, size_t i)
{
	struct deliverd_sched_worker *w = &s->w[i];
	struct deliverd_sched_fork f = { .s = s, .i = i, .parent = getpid() };
	int			   job[2], res[2];
	pid_t			   pid;

	if (pipe2(job, O_CLOEXEC) == -1 || pipe2(res, O_CLOEXEC) == -1)
		log_fatal("pipe");
	deliverd_sched_close_spool(s);
	f.job = job[0];
	f.res = res[1];
	f.job_w = job[1];
	f.res_r = res[0];
	if ((pid = kids_fork_fn(deliverd_sched_child, &f)) == -1)
		log_fatal("fork");
	(void)close(job[0]);
	(void)close(res[1]);
	(void)fcntl(res[0], F_SETFL, O_NONBLOCK);
	w->pid = pid;
	w->to_fd = job[1];
	w->from_fd = res[0];
	w->njobs = 0;
	w->nuncommitted = 0;
	w->last_hop[0] = '\0';
	buf_reset(&w->in);
	if (ev_fd_add(s->ev, w->from_fd, EV_READ, deliverd_sched_on_worker,
		w) == -1)
		log_fatal("ev_fd_add");
	return pid;
}

static pid_t
deliverd_sched_spawn(struct kids *k, size_t slot, void *arg)
{
	struct sched		  *s = arg;
	struct deliverd_sched_fork f = { .s = s,
		.i = slot,
		.parent = getpid() };
	pid_t			   pid;

	(void)k;
	if (slot < s->nw)
		return deliverd_sched_spawn_worker(s, slot);
	deliverd_sched_close_spool(s);
	if ((pid = kids_fork_fn(deliverd_sched_child, &f)) == -1)
		log_fatal("fork");
	return pid;
}

static void
deliverd_sched_worker_gone(struct sched *s, struct deliverd_sched_worker *w)
{
	size_t i;

	for (i = 0; i < w->njobs; i++) {
		/* its recipients were not committed: they will be picked again */
		log_warnx("worker %ld exited with a job for %s", (long)w->pid,
		    w->jobs[i]->j.dj_qid);
		deliverd_sched_job_release(s, w->jobs[i]);
	}
	w->njobs = 0;
	deliverd_sched_poison_work(s, w, NULL);
	if (w->to_fd != -1)
		(void)close(w->to_fd);
	if (w->from_fd != -1) {
		ev_fd_del(s->ev, w->from_fd);
		(void)close(w->from_fd);
	}
	w->to_fd = w->from_fd = -1;
	w->pid = -1;
}

static void
deliverd_sched_exit(struct kids *k, size_t slot, pid_t pid, int status,
    int64_t delay_ms, void *arg)
{
	struct sched *s = arg;

	(void)k;
	(void)delay_ms;
	if (slot == s->nw) {
		if (!s->stopping)
			log_warnx(
			    "callback sender exited (status %d); restarting",
			    status);
		return;
	}
	if (slot >= s->nw)
		return;
	if (WIFSIGNALED(status) ||
	    (WIFEXITED(status) && WEXITSTATUS(status) != 0))
		log_warnx("worker %ld exited (status %d)", (long)pid, status);
	deliverd_sched_poison_check(s, &s->w[slot], status);
	deliverd_sched_worker_gone(s, &s->w[slot]);
}

/* ---- the loop (common/ev.c): signals, the trigger FIFO and the workers'
 * result pipes are its sources; the scheduler's own deadlines (scan,
 * export, commit retry) bound each turn */

/* True when a scan is due now (and allowed: deliverd_sched_can_scan). */
static bool
deliverd_sched_scan_due(const struct sched *s)
{
	if (!deliverd_sched_can_scan(s))
		return false;
	return (s->rescan && s->nqueue < SCHED_QUEUE_LOW) ||
	    (s->next_due != 0 && s->next_due <= deliverd_now()) ||
	    ev_clock_ms() - s->last_scan_ms >= SCHED_RESCAN_MS;
}

static int64_t
deliverd_sched_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int
deliverd_sched_poll_timeout(struct sched *s)
{
	int64_t ms = SCHED_RESCAN_MS;

	if (s->stopping)
		return 200;
	if (deliverd_sched_scan_due(s))
		return 0;
	if (s->export_pending)
		ms = deliverd_sched_min(ms, SCHED_EXPORT_MS);
	if (s->next_due != 0 && deliverd_sched_can_scan(s))
		ms = deliverd_sched_min(ms,
		    (s->next_due - deliverd_now()) * 1000);
	if (s->retry.pending)
		ms = deliverd_sched_min(ms, s->retry.next_ms - ev_clock_ms());
	if (s->nqueue > 0 || s->dests != NULL) /* a token, a state's end */
		ms = deliverd_sched_min(ms, deliverd_dest_wait_ms(s));
	return ms < 0 ? 0 : (int)ms;
}

static void
deliverd_sched_on_trigger(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct sched *s = arg;

	(void)e;
	(void)revents;
	trigger_drain(fd);
	s->rescan = true;
}

static void
deliverd_sched_on_worker(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct deliverd_sched_worker *w = arg;
	struct sched		     *s = w->sched;

	(void)revents;
	deliverd_sched_read_worker(s, w);
	if (w->from_fd == -1) /* EOF: read_worker closed it */
		ev_fd_del(e, fd);
}

/* Signals wait for the end of the turn: a worker's last results are read
 * before its exit is handled. */
static void
deliverd_sched_on_signal(struct ev *e, unsigned sigs, void *arg)
{
	struct sched *s = arg;

	(void)e;
	s->sigflags |= sigs;
}

/* Workers finish their job and exit on EOF of their job pipe; the
 * callback sender stops on SIGTERM (its POSTs stay in the outbox). */
static void
deliverd_sched_finish_children(struct sched *s)
{
	size_t i;

	for (i = 0; i < s->nw; i++)
		if (s->w[i].to_fd != -1) {
			(void)close(s->w[i].to_fd);
			s->w[i].to_fd = -1;
		}
	if (kids_pid(s->kids, s->nw) != 0)
		(void)kill(kids_pid(s->kids, s->nw), SIGTERM);
}

static void
deliverd_sched_reload(struct sched *s)
{
	struct conf *ncf;
	char	     err[1024];

	if ((ncf = conf_load(s->cf->cf_path, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s (keeping the old configuration)", err);
		return;
	}
	log_info("configuration reloaded; replacing workers");
	(void)deliverd_bounce_load(ncf, false);
	/* Old workers finish their job and exit on EOF; the conf they
	 * were forked with stays valid in their own address space. */
	conf_free(&s->cf);
	s->cf = ncf;
	deliverd_dest_reload(s); /* before the new workers fork */
	deliverd_sched_finish_children(s);
}

static void
deliverd_sched_signals(struct sched *s)
{
	unsigned sigs = s->sigflags;

	s->sigflags = 0;
	if (sigs & SIG_TERM) {
		s->stopping = true;
		kids_hold(s->kids, true);
	}
	/* every turn, not only on SIG_CHLD: an exit is never left unreaped */
	kids_reap(s->kids);
	if ((sigs & SIG_HUP) && !s->stopping)
		deliverd_sched_reload(s);
}

static void
deliverd_sched_loop_once(struct sched *s)
{
	(void)ev_run_once(s->ev, deliverd_sched_poll_timeout(s));
	deliverd_sched_signals(s);
	deliverd_sched_open_spool(s); /* closed if a child was started */
}

static void
deliverd_sched_stop(struct sched *s)
{
	int64_t deadline = ev_clock_ms() + SCHED_STOP_GRACE_MS;

	log_info("stopping: waiting for workers to finish their transactions");
	kids_hold(s->kids, true);
	deliverd_sched_finish_children(s);
	/* a failing commit is retried for the whole grace */
	while ((kids_alive(s->kids) > 0 || s->retry.pending) &&
	    ev_clock_ms() <= deadline) {
		deliverd_sched_loop_once(s);
		deliverd_sched_commit(s, false);
		deliverd_sched_export(s, false);
	}
	kids_signal(s->kids, SIGKILL);
	deliverd_sched_commit(s, true);
	if (s->retry.pending)
		log_warnx("stopping with %zu outcomes not recorded (%s): their "
			  "recipients "
			  "are sent again after the restart",
		    s->nres, spool_strerror(s->retry.rc));
	deliverd_sched_export(s, true);
	deliverd_sched_poison_close();
}

static int
deliverd_sched_orphan_cb(const char *name, void *arg)
{
	struct sched	 *s = arg;
	struct spool_txn *txn = NULL;
	struct spool_msg *m;
	int		  rc;

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

/* The loop's sources and the children; fatal if they cannot be had. */
static void
deliverd_sched_setup(struct sched *s)
{
	/* signals, the trigger, one pipe per worker, the key process's
	 * socket; the children's timer and the key process's restart */
	if ((s->ev = ev_new(s->nw + 3, 2)) == NULL ||
	    ev_signal(s->ev, deliverd_sched_on_signal, s) == -1 ||
	    ev_fd_add(s->ev, s->trigger_fd, EV_READ, deliverd_sched_on_trigger,
		s) == -1)
		log_fatal("ev");
	s->kids = kids_new(s->ev, s->nw + 1, 0, &deliverd_sched_kids_policy,
	    deliverd_sched_spawn, deliverd_sched_exit, s);
	if (s->kids == NULL)
		log_fatal("kids_new");
	deliverd_key_watch(s->ev); /* the DKIM key process, restarted */
}

void
deliverd_sched_main(struct conf *cf, int trigger_fd)
{
	struct sched *s;
	size_t	      i;

	log_set_procname("deliverd");
	s = xcalloc(1, sizeof(*s));
	s->cf = cf;
	s->trigger_fd = trigger_fd;
	TAILQ_INIT(&s->queue);
	s->nw = (size_t)cf->cf_deliverd_workers;
	s->claims_max = SCHED_CLAIMS_BASE + SCHED_CLAIMS_PER_WORKER * s->nw;
	s->w = xcalloc(s->nw, sizeof(*s->w));
	for (i = 0; i < s->nw; i++) {
		s->w[i].pid = -1;
		s->w[i].to_fd = s->w[i].from_fd = -1;
		s->w[i].sched = s;
		buf_init(&s->w[i].in, 4 * DELIVERD_LINE_MAX);
	}
	deliverd_sched_setup(s);
	deliverd_sched_open_spool(
	    s); /* creates the environment before any child opens it */
	deliverd_sched_poison_open(s);
	deliverd_dest_init(s); /* the workers inherit the shaping */
	kids_start(s->kids);
	deliverd_sched_open_spool(s);
	(void)spool_scan(cf->cf_spool_dir, SPOOL_QUEUE,
	    deliverd_sched_orphan_cb, s);
	log_info("started: %zu workers, %s", s->nw,
	    cf->cf_relayhost[0] ? cf->cf_relayhost : "MX delivery");
	s->rescan = true;
	deliverd_sched_rekey(s);
	while (!s->stopping) {
		deliverd_sched_clock(s);
		if (deliverd_sched_scan_due(s))
			deliverd_sched_scan(s);
		deliverd_dest_tick(s);
		deliverd_sched_dispatch(s);
		deliverd_sched_loop_once(s);
		/* workers without outcomes in this batch get their next job
		 * before the commit's fsyncs */
		deliverd_sched_dispatch(s);
		deliverd_sched_commit(s, false);
		deliverd_sched_export(s, false);
	}
	deliverd_sched_stop(s);
	deliverd_dest_free(s);
	spool_close(&s->sp);
	log_info("stopped");
	exit(0);
}
