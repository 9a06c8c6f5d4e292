/*
 * The scheduler: the only deliverd process that writes LMDB. It takes due
 * recipients from the schedule index, groups them by message and next hop
 * into jobs, hands jobs to idle workers over pipes (at most
 * dest_concurrency per hop), and commits the workers' results in batched
 * write transactions: delivered, deferred (retry_schedule), bounced
 * (remote, expired). In-flight state is memory only ("claims"): after a
 * restart every due entry is simply picked again.
 */
#include "config.h"

/* before <signal.h>: its si_fd macro collides with struct spool_in */
#include "spool.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/queue.h>
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
#include "log.h"
#include "sig.h"
#include "spool.h"
#include "trigger.h"
#include "xmem.h"

#define SCHED_SCAN_MAX		2000	/* new recipients taken per scan */
#define SCHED_QUEUE_LOW		64	/* scan again when fewer jobs wait */
#define SCHED_RESCAN_MS		5000	/* safety rescan (lost trigger) */
#define SCHED_STOP_GRACE_MS	10000
#define SCHED_CLAIM_BUCKETS	65536
#define SCHED_EXPORT_MS		200
#define SCHED_DEPTH		2	/* jobs queued per worker: no idle gap */

struct deliverd_sched_claim {
	struct deliverd_sched_claim	*next;
	char			 qid[QID_SIZE];
	uint32_t		 idx;
};

struct deliverd_sched_job {
	TAILQ_ENTRY(deliverd_sched_job)	 link;
	struct deliverd_job	 j;
};
TAILQ_HEAD(deliverd_sched_jobq, deliverd_sched_job);

struct deliverd_sched_worker {
	pid_t			 pid;
	int			 to_fd, from_fd;
	struct buf		 in;
	struct deliverd_sched_job	*jobs[SCHED_DEPTH];	/* in flight, oldest first */
	size_t			 njobs;
	size_t			 nuncommitted;	/* done, outcome not committed yet */
	char			 last_hop[SPOOL_DOMAIN_MAX + 8];
};

struct deliverd_sched_sig {
	char		 qid[QID_SIZE];
	char		*sig;
};

struct sched {
	struct conf		*cf;
	int			 trigger_fd;
	struct spool		*sp;
	struct deliverd_sched_worker	*w;
	size_t			 nw;
	pid_t			 cb_pid;
	struct deliverd_sched_claim	*claims[SCHED_CLAIM_BUCKETS];
	size_t			 nclaims;
	struct deliverd_sched_jobq	 queue;
	size_t			 nqueue;
	uint64_t		 next_job_id;
	/* the current batch of results */
	struct deliverd_result	*res;
	size_t			 nres, capres;
	struct deliverd_sig	*sigs;
	size_t			 nsigs, capsigs;
	struct deliverd_sched_job	**done;
	size_t			 ndone, capdone;
	bool			 stopping, rescan, respawn;
	int64_t			 last_scan_ms;
	int64_t			 last_export_ms;
	int64_t			 wall_prev;	/* detects a clock stepped back */
	bool			 export_pending;
	int64_t			 next_due;	/* unix s, 0 = none known */
};

/* ---- claims: recipients handed out or waiting in memory */

static size_t
deliverd_sched_claim_hash(const char *qid, uint32_t idx)
{
	size_t	 h = 5381;

	for (; *qid != '\0'; qid++)
		h = h * 33 + (unsigned char)*qid;
	return (h * 33 + idx) % SCHED_CLAIM_BUCKETS;
}

static bool
deliverd_sched_claimed(struct sched *s, const char *qid, uint32_t idx)
{
	struct deliverd_sched_claim	*c;

	for (c = s->claims[deliverd_sched_claim_hash(qid, idx)]; c != NULL; c = c->next)
		if (c->idx == idx && strcmp(c->qid, qid) == 0)
			return true;
	return false;
}

static void
deliverd_sched_claim(struct sched *s, const char *qid, uint32_t idx)
{
	struct deliverd_sched_claim	*c = xmalloc(sizeof(*c));
	size_t			 h = deliverd_sched_claim_hash(qid, idx);

	(void)str_copy(c->qid, sizeof(c->qid), qid);
	c->idx = idx;
	c->next = s->claims[h];
	s->claims[h] = c;
	s->nclaims++;
}

static void
deliverd_sched_unclaim(struct sched *s, const char *qid, uint32_t idx)
{
	struct deliverd_sched_claim	**cp, *c;

	for (cp = &s->claims[deliverd_sched_claim_hash(qid, idx)]; (c = *cp) != NULL; cp = &c->next) {
		if (c->idx == idx && strcmp(c->qid, qid) == 0) {
			*cp = c->next;
			free(c);
			s->nclaims--;
			return;
		}
	}
}

static void
deliverd_sched_job_release(struct sched *s, struct deliverd_sched_job *sj)
{
	size_t	 i;

	for (i = 0; i < sj->j.dj_nidx; i++)
		deliverd_sched_unclaim(s, sj->j.dj_qid, sj->j.dj_idx[i]);
	free(sj);
}

/* ---- children */

static void
deliverd_sched_close_spool(struct sched *s)
{
	spool_close(&s->sp);
}

static void
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

/* ---- scanning the schedule */

/* (message, recipient) pairs taken from a walk of the schedule, bounded. */
struct deliverd_sched_refs {
	struct {
		char	 qid[QID_SIZE];
		uint32_t idx;
	}		*e;
	size_t		 n, max;
};

static void
deliverd_sched_refs_init(struct deliverd_sched_refs *rf, size_t max)
{
	rf->n = 0;
	rf->max = max;
	rf->e = xcalloc(max, sizeof(*rf->e));
}

/* 0 when added, 1 when full (a walk callback stops on it). */
static int
deliverd_sched_refs_add(struct deliverd_sched_refs *rf, const char *qid, uint32_t idx)
{
	if (rf->n >= rf->max)
		return 1;
	(void)str_copy(rf->e[rf->n].qid, QID_SIZE, qid);
	rf->e[rf->n++].idx = idx;
	return 0;
}

struct deliverd_sched_scan {
	struct sched			*s;
	int64_t				 now;
	struct deliverd_sched_refs	 rf;
};

static int
deliverd_sched_scan_cb(int64_t due, const char *qid, uint32_t idx, void *arg)
{
	struct deliverd_sched_scan	*sc = arg;

	if (due > sc->now) {
		if (sc->s->next_due == 0 || due < sc->s->next_due)
			sc->s->next_due = due;
		return 1;
	}
	if (deliverd_sched_claimed(sc->s, qid, idx))
		return 0;
	return deliverd_sched_refs_add(&sc->rf, qid, idx);
}

/* By message (the qid leads each entry), so a message is read once. */
static int
deliverd_sched_scan_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Adds idx to the job of (qid, hop) being built, or starts a new one. */
static void
deliverd_sched_enqueue(struct sched *s, struct deliverd_sched_job **cur, const char *qid,
    const char *hop, bool relay, uint32_t idx)
{
	struct deliverd_sched_job	*sj = *cur;

	if (sj == NULL || strcmp(sj->j.dj_qid, qid) != 0 ||
	    strcmp(sj->j.dj_hop, hop) != 0 || sj->j.dj_nidx >= DELIVERD_JOB_RCPT_MAX) {
		/* look for an open job of this message and hop */
		TAILQ_FOREACH_REVERSE(sj, &s->queue, deliverd_sched_jobq, link) {
			if (strcmp(sj->j.dj_qid, qid) != 0)
				break;
			if (strcmp(sj->j.dj_hop, hop) == 0 &&
			    sj->j.dj_nidx < DELIVERD_JOB_RCPT_MAX)
				break;
		}
		if (sj == NULL || strcmp(sj->j.dj_qid, qid) != 0) {
			sj = xcalloc(1, sizeof(*sj));
			sj->j.dj_id = ++s->next_job_id;
			(void)str_copy(sj->j.dj_qid, sizeof(sj->j.dj_qid), qid);
			(void)str_copy(sj->j.dj_hop, sizeof(sj->j.dj_hop), hop);
			sj->j.dj_relay = relay;
			TAILQ_INSERT_TAIL(&s->queue, sj, link);
			s->nqueue++;
		}
	}
	sj->j.dj_idx[sj->j.dj_nidx++] = idx;
	deliverd_sched_claim(s, qid, idx);
	*cur = sj;
}

static void
deliverd_sched_group(struct sched *s, struct spool_txn *txn, struct deliverd_sched_refs *rf)
{
	struct spool_msg	*m = xmalloc(sizeof(*m));
	struct spool_rcpt	 r;
	struct deliverd_sched_job	*cur = NULL;
	char			 hop[SPOOL_DOMAIN_MAX];
	bool			 relay = s->cf->cf_relayhost[0] != '\0';
	bool			 have = false;
	size_t			 i;

	qsort(rf->e, rf->n, sizeof(rf->e[0]), deliverd_sched_scan_cmp);
	for (i = 0; i < rf->n; i++) {
		if (!have || strcmp(m->sm_qid, rf->e[i].qid) != 0) {
			have = spool_msg_get(txn, rf->e[i].qid, m) == 0;
			if (!have)
				(void)str_copy(m->sm_qid, sizeof(m->sm_qid), rf->e[i].qid);
		}
		if (!have || m->sm_held ||
		    spool_rcpt_get(txn, rf->e[i].qid, rf->e[i].idx, &r) != 0 ||
		    (r.sr_state != SPOOL_RS_QUEUED && r.sr_state != SPOOL_RS_DEFERRED))
			continue;
		if (relay && !m->sm_sandbox)
			(void)str_copy(hop, sizeof(hop), s->cf->cf_relayhost);
		else
			deliverd_domain(r.sr_addr, hop, sizeof(hop));
		deliverd_sched_enqueue(s, &cur, rf->e[i].qid, hop, relay && !m->sm_sandbox,
		    rf->e[i].idx);
	}
	free(m);
}

static void
deliverd_sched_scan(struct sched *s)
{
	struct spool_txn	*txn = NULL;
	struct deliverd_sched_scan	 sc;
	int			 rc;

	s->rescan = false;
	s->last_scan_ms = deliverd_now_ms();
	sc.s = s;
	sc.now = deliverd_now();
	deliverd_sched_refs_init(&sc.rf, SCHED_SCAN_MAX);
	s->next_due = 0;
	if ((rc = spool_begin(s->sp, false, &txn)) != 0) {
		log_warnx("scan: %s", spool_strerror(rc));
		free(sc.rf.e);
		return;
	}
	/* INT64_MAX: walk past the due entries to learn the next due time */
	rc = spool_sched_due(txn, INT64_MAX, s->nclaims + sc.rf.max + 1,
	    deliverd_sched_scan_cb, &sc);
	if (rc < 0 && rc != SPOOL_ENOTFOUND)
		log_warnx("scan: %s", spool_strerror(rc));
	if (sc.rf.n == sc.rf.max)
		s->rescan = true;	/* more are due than we took */
	deliverd_sched_group(s, txn, &sc.rf);
	spool_abort(&txn);
	free(sc.rf.e);
}

/* ---- the wall clock stepped backwards */

struct deliverd_sched_rekey {
	int64_t				 limit;
	struct deliverd_sched_refs	 rf;
};

static int
deliverd_sched_rekey_cb(int64_t due, const char *qid, uint32_t idx, void *arg)
{
	struct deliverd_sched_rekey	*rk = arg;

	if (due <= rk->limit)
		return 0;
	return deliverd_sched_refs_add(&rk->rf, qid, idx);
}

/*
 * No entry can be due later than now + the longest retry step unless the
 * clock went back (an NTP step): such entries would sleep for as long as
 * the step. They are made due now. Run at start and after a step.
 */
static void
deliverd_sched_rekey(struct sched *s)
{
	struct deliverd_sched_rekey	 rk;
	struct spool_txn		*txn = NULL;
	struct spool_rcpt		 r;
	int64_t				 now = deliverd_now(), step = 0;
	size_t				 i, n = 0;
	int				 rc;

	for (i = 0; i < s->cf->cf_nretry_delays; i++)
		if (s->cf->cf_retry_delays[i] > step)
			step = s->cf->cf_retry_delays[i];
	rk.limit = now + step + 60;
	deliverd_sched_refs_init(&rk.rf, 100000);
	if (spool_begin(s->sp, false, &txn) == 0) {
		(void)spool_sched_due(txn, INT64_MAX, SIZE_MAX, deliverd_sched_rekey_cb, &rk);
		spool_abort(&txn);
	}
	if (rk.rf.n > 0 && (rc = spool_begin(s->sp, true, &txn)) == 0) {
		for (i = 0; i < rk.rf.n; i++) {
			if (spool_rcpt_get(txn, rk.rf.e[i].qid, rk.rf.e[i].idx, &r) != 0 ||
			    r.sr_next <= rk.limit)
				continue;
			r.sr_next = now;
			if ((rc = spool_rcpt_put(txn, &r)) != 0)
				break;
			n++;
		}
		if (rc != 0 || (rc = spool_commit(&txn)) != 0) {
			spool_abort(&txn);
			log_warnx("re-keying the schedule: %s", spool_strerror(rc));
			n = 0;
		}
	}
	if (n > 0)
		log_warnx("clock: %zu recipients were due in the future beyond any retry "
		    "step (the clock went back?): due now", n);
	free(rk.rf.e);
	s->rescan = true;
}

static void
deliverd_sched_clock(struct sched *s)
{
	int64_t	 now = deliverd_now();

	if (s->wall_prev != 0 && now + 2 < s->wall_prev) {
		log_warnx("clock: wall clock went back %llds",
		    (long long)(s->wall_prev - now));
		deliverd_sched_rekey(s);
	}
	s->wall_prev = now;
}

/* ---- handing out jobs */

static size_t
deliverd_sched_hop_busy(const struct sched *s, const char *hop)
{
	size_t	 i, k, n = 0;

	for (i = 0; i < s->nw; i++)
		for (k = 0; k < s->w[i].njobs; k++)
			n += strcmp(s->w[i].jobs[k]->j.dj_hop, hop) == 0;
	return n;
}

static struct deliverd_sched_worker *
deliverd_sched_idle_worker(struct sched *s, const char *hop)
{
	struct deliverd_sched_worker	*any = NULL;
	size_t			 i;

	/* the least loaded worker; among equals one that may still hold a
	 * connection to this hop */
	for (i = 0; i < s->nw; i++) {
		/* a job whose outcome is not committed yet still counts: a
		 * kill -9 repeats at most SCHED_DEPTH transactions per worker */
		if (s->w[i].pid == -1 || s->w[i].to_fd == -1 ||
		    s->w[i].njobs + s->w[i].nuncommitted >= SCHED_DEPTH)
			continue;
		if (any == NULL || s->w[i].njobs < any->njobs ||
		    (s->w[i].njobs == any->njobs && strcmp(s->w[i].last_hop, hop) == 0))
			any = &s->w[i];
	}
	return any;
}

static void
deliverd_sched_dispatch(struct sched *s)
{
	struct deliverd_sched_job	*sj, *next;
	struct deliverd_sched_worker	*w;
	struct buf		 line;

	buf_init(&line, DELIVERD_LINE_MAX);
	for (sj = TAILQ_FIRST(&s->queue); sj != NULL && !s->stopping; sj = next) {
		next = TAILQ_NEXT(sj, link);
		if (deliverd_sched_hop_busy(s, sj->j.dj_hop) >= (size_t)s->cf->cf_dest_concurrency)
			continue;
		if ((w = deliverd_sched_idle_worker(s, sj->j.dj_hop)) == NULL)
			break;
		buf_reset(&line);
		(void)deliverd_job_format(&sj->j, &line);
		if (deliverd_pipe_write(w->to_fd, line.data, line.len) == -1) {
			log_warn("write to worker %ld", (long)w->pid);
			(void)close(w->to_fd);
			w->to_fd = -1;
			continue;
		}
		TAILQ_REMOVE(&s->queue, sj, link);
		s->nqueue--;
		w->jobs[w->njobs++] = sj;
		(void)str_copy(w->last_hop, sizeof(w->last_hop), sj->j.dj_hop);
	}
	buf_release(&line);
}

/* ---- results from workers */

static void
deliverd_sched_add_result(struct sched *s, const struct deliverd_result *r)
{
	if (s->nres == s->capres) {
		s->capres = s->capres ? s->capres * 2 : 256;
		s->res = xreallocarray(s->res, s->capres, sizeof(*s->res));
	}
	s->res[s->nres++] = *r;
}

struct deliverd_sched_line_ctx {
	struct sched		*s;
	struct deliverd_sched_worker	*w;
};

static void
deliverd_sched_line(const char *line, size_t len, void *arg)
{
	struct deliverd_sched_line_ctx	*c = arg;
	struct sched		*s = c->s;
	struct deliverd_result	 r;
	struct buf		 sig;
	char			 qid[QID_SIZE];

	if (len > 0 && line[0] == 'D') {
		if (c->w->njobs == 0) {
			log_warnx("worker %ld: unexpected D line", (long)c->w->pid);
			return;
		}
		if (s->ndone == s->capdone) {
			s->capdone = s->capdone ? s->capdone * 2 : 64;
			s->done = xreallocarray(s->done, s->capdone, sizeof(*s->done));
		}
		s->done[s->ndone++] = c->w->jobs[0];
		memmove(&c->w->jobs[0], &c->w->jobs[1],
		    (c->w->njobs - 1) * sizeof(c->w->jobs[0]));
		c->w->njobs--;
		c->w->nuncommitted++;
	} else if (len > 0 && line[0] == 'K') {
		buf_init(&sig, SPOOL_DKIMSIG_MAX * 2);
		if (deliverd_sig_parse(line, len, qid, &sig) == 0) {
			if (s->nsigs == s->capsigs) {
				s->capsigs = s->capsigs ? s->capsigs * 2 : 32;
				s->sigs = xreallocarray(s->sigs, s->capsigs, sizeof(*s->sigs));
			}
			(void)str_copy(s->sigs[s->nsigs].qid, QID_SIZE, qid);
			s->sigs[s->nsigs++].sig = xstrdup(sig.data ? sig.data : "");
		}
		buf_release(&sig);
	} else if (deliverd_result_parse(line, len, &r) == 0)
		deliverd_sched_add_result(s, &r);
	else
		log_warnx("worker %ld: bad result line", (long)c->w->pid);
}

static void
deliverd_sched_read_worker(struct sched *s, struct deliverd_sched_worker *w)
{
	struct deliverd_sched_line_ctx	 c = { s, w };

	if (deliverd_pipe_read(w->from_fd, &w->in, deliverd_sched_line, &c) == -1) {
		/* EOF: the worker exited; its results so far are in the batch */
		(void)close(w->from_fd);
		w->from_fd = -1;
	}
}

/* events.jsonl: at most every SCHED_EXPORT_MS under load (each export
 * is an fdatasync and a write transaction), at once when idle. */
static void
deliverd_sched_export(struct sched *s, bool force)
{
	size_t	 nev = 0;
	int	 rc;

	if (!s->export_pending ||
	    (!force && deliverd_now_ms() - s->last_export_ms < SCHED_EXPORT_MS))
		return;
	if ((rc = spool_events_export(s->sp, s->cf->cf_event_log, &nev)) != 0)
		log_warnx("events export to %s: %s", s->cf->cf_event_log, spool_strerror(rc));
	s->export_pending = false;
	s->last_export_ms = deliverd_now_ms();
}

static void
deliverd_sched_commit(struct sched *s)
{
	size_t	 i;
	int	 rc;

	if (s->nres == 0 && s->nsigs == 0 && s->ndone == 0)
		return;
	rc = deliverd_commit(s->sp, s->cf, s->sigs, s->nsigs, s->res, s->nres,
	    deliverd_now());
	if (rc != 0)
		/* Nothing was recorded: the recipients stay due and are tried again. */
		log_warnx("commit of %zu results failed: %s", s->nres, spool_strerror(rc));
	else
		s->export_pending = true;
	for (i = 0; i < s->nsigs; i++)
		free(s->sigs[i].sig);
	s->nsigs = 0;
	s->nres = 0;
	for (i = 0; i < s->ndone; i++)
		deliverd_sched_job_release(s, s->done[i]);
	s->ndone = 0;
	for (i = 0; i < s->nw; i++)
		s->w[i].nuncommitted = 0;
	deliverd_sched_export(s, false);
	s->rescan = true;
}

/* ---- main loop */

static int
deliverd_sched_poll_timeout(struct sched *s)
{
	int64_t	 now = deliverd_now(), ms = SCHED_RESCAN_MS;

	if (s->rescan && s->nqueue < SCHED_QUEUE_LOW)
		return 0;
	if (s->respawn)
		ms = 1000;
	if (s->export_pending)
		ms = SCHED_EXPORT_MS;
	if (s->next_due != 0) {
		ms = (s->next_due - now) * 1000;
		if (ms < 0)
			ms = 0;
		if (ms > SCHED_RESCAN_MS)
			ms = SCHED_RESCAN_MS;
		if (s->respawn && ms > 1000)
			ms = 1000;
		if (s->export_pending && ms > SCHED_EXPORT_MS)
			ms = SCHED_EXPORT_MS;
	}
	return (int)ms;
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
		if ((alive == 0 && s->cb_pid == -1) || deliverd_now_ms() > deadline)
			break;
		deliverd_sched_loop_once(s);
		deliverd_sched_commit(s);
		deliverd_sched_export(s, false);
	}
	for (i = 0; i < s->nw; i++)
		if (s->w[i].pid != -1)
			(void)kill(s->w[i].pid, SIGKILL);
	if (s->cb_pid != -1)
		(void)kill(s->cb_pid, SIGKILL);
	deliverd_sched_commit(s);
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
		if ((s->rescan && s->nqueue < SCHED_QUEUE_LOW) ||
		    (s->next_due != 0 && s->next_due <= deliverd_now()) ||
		    deliverd_now_ms() - s->last_scan_ms >= SCHED_RESCAN_MS)
			deliverd_sched_scan(s);
		deliverd_sched_dispatch(s);
		deliverd_sched_loop_once(s);
		/* workers without outcomes in this batch get their next job
		 * before the commit's fsyncs */
		deliverd_sched_dispatch(s);
		deliverd_sched_commit(s);
		deliverd_sched_export(s, false);
	}
	deliverd_sched_stop(s);
	spool_close(&s->sp);
	log_info("stopped");
	exit(0);
}
