/*
 * The scheduler's internals, shared by its four files (not a public API):
 *   deliverd_sched.c           main loop (ev), children (kids), signals, stop
 *   deliverd_sched_claim.c     claims, the schedule scan, the clock re-key
 *   deliverd_sched_dispatch.c  jobs to workers, results from workers
 *   deliverd_sched_commit.c    committing a batch (retried), events export
 * Memory: every job, claim and result belongs to struct sched; a job is
 * freed with its claims by deliverd_sched_job_release once its outcome is
 * committed (or its worker is gone). Functions log their own failures.
 */
#ifndef SG_DELIVERD_SCHED_H
#define SG_DELIVERD_SCHED_H

#include <sys/types.h>
#include <sys/queue.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "deliverd.h"

#define SCHED_SCAN_MAX		  2000 /* new recipients taken per scan */
#define SCHED_SKIP_MAX		  100000 /* entries of full destinations passed over */
#define SCHED_QUEUE_LOW		  64   /* scan again when fewer jobs wait */
#define SCHED_RESCAN_MS		  5000 /* safety rescan (lost trigger) */
#define SCHED_STOP_GRACE_MS	  10000
#define SCHED_CLAIM_BUCKETS	  65536
#define SCHED_EXPORT_MS		  200
#define SCHED_DEPTH		  2 /* jobs queued per worker: no idle gap */
/* claims held in memory: SCHED_CLAIMS_BASE + SCHED_CLAIMS_PER_WORKER per
 * worker (deliverd(8) "Memory"); a job holds at least one claim */
#define SCHED_CLAIMS_BASE	  1024
#define SCHED_CLAIMS_PER_WORKER	  256
/* a failed commit is retried after 100 ms, doubling up to 30 s, and
 * logged once per SCHED_COMMIT_LOG_MS */
#define SCHED_COMMIT_RETRY_MIN_MS 100
#define SCHED_COMMIT_RETRY_MAX_MS 30000
#define SCHED_COMMIT_LOG_MS	  10000

struct deliverd_sched_claim {
	struct deliverd_sched_claim *next;
	char			     qid[QID_SIZE];
	uint32_t		     idx;
};

struct deliverd_sched_job {
	TAILQ_ENTRY(deliverd_sched_job) link;
	struct deliverd_job j;
	bool	 alone; /* a tracked message's recipient (issue 16) */
	unsigned pass;	/* DEST_PASS_* (deliverd_dest.h) */
};
TAILQ_HEAD(deliverd_sched_jobq, deliverd_sched_job);

struct deliverd_sched_worker {
	pid_t	   pid;
	int	   to_fd, from_fd;
	struct buf in;
	struct deliverd_sched_job
		     *jobs[SCHED_DEPTH]; /* in flight, oldest first */
	size_t	      njobs;
	size_t	      nuncommitted; /* done, outcome not committed yet */
	char	      last_hop[SPOOL_DOMAIN_MAX + 8];
	struct sched *sched; /* for the loop's callback */
};

/* A batch whose commit failed: kept, retried with back-off. */
struct deliverd_sched_retry {
	bool	 pending;
	int	 rc; /* the last failure */
	unsigned tries;
	int64_t	 since_ms, next_ms, delay_ms, logged_ms;
};

struct sched {
	struct conf		     *cf;
	int			      trigger_fd;
	struct spool		     *sp;
	struct deliverd_sched_worker *w;
	size_t			      nw;
	struct deliverd_sched_claim  *claims[SCHED_CLAIM_BUCKETS];
	size_t			      nclaims;
	size_t			      claims_max;
	struct deliverd_sched_jobq    queue;
	size_t			      nqueue;
	uint64_t		      next_job_id;
	/* the current batch of results */
	struct deliverd_result	   *res;
	size_t			    nres, capres;
	struct deliverd_sig	   *sigs;
	size_t			    nsigs, capsigs;
	struct deliverd_sched_job **done;
	size_t			    ndone, capdone;
	struct deliverd_sched_retry retry;
	bool			    stopping, rescan;
	int64_t			    last_scan_ms;
	int64_t			    last_export_ms;
	int64_t wall_prev; /* detects a clock stepped back */
	bool	export_pending;
	int64_t next_due; /* unix s, 0 = none known */
	struct deliverd_dests
		    *dests;    /* per-destination shaping (deliverd_dest.h) */
	struct ev   *ev;       /* the loop (common/ev.c) */
	struct kids *kids;     /* workers, then the callback sender */
	unsigned     sigflags; /* SIG_* taken, handled after the turn */
};

/* deliverd_sched_pause.c: paused recipients met by a scan (spoolctl pause) */
struct deliverd_sched_paused_rcpt {
	char	 pa_qid[QID_SIZE];
	uint32_t pa_idx;
	char	 pa_login[SPOOL_LOGIN_MAX];
	char	 pa_domain[SPOOL_DOMAIN_MAX];
	int64_t	 pa_arrival;
};
struct deliverd_sched_paused {
	bool				   pd_any; /* some pause exists */
	struct deliverd_sched_paused_rcpt *pd_v;
	size_t				   pd_n, pd_cap;
};
void deliverd_sched_paused_init(struct deliverd_sched_paused *,
    struct spool_txn *);
/* True (and set aside) when the recipient's domain is paused for m's account. */
bool deliverd_sched_paused_check(struct deliverd_sched_paused *,
    struct spool_txn *, const struct spool_msg *m, const struct spool_rcpt *r);
/* After the scan's read txn: moves the set-aside recipients on (or expires
 * them) and frees the list. */
void deliverd_sched_paused_apply(struct sched *,
    struct deliverd_sched_paused *);

/* deliverd_sched.c: opens the environment if closed (exits if it cannot) */
void deliverd_sched_open_spool(struct sched *);

/* deliverd_sched_claim.c */
void deliverd_sched_claim(struct sched *, const char *qid, uint32_t idx);
void deliverd_sched_job_release(struct sched *, struct deliverd_sched_job *);
/* True when a scan may take more recipients: no commit pending and fewer
 * than claims_max held. */
bool deliverd_sched_can_scan(const struct sched *);
void deliverd_sched_scan(struct sched *);
void deliverd_sched_rekey(struct sched *);
void deliverd_sched_clock(struct sched *);

/* deliverd_sched_dispatch.c */
/* Hands queued jobs to idle workers; nothing while a commit is pending. */
void deliverd_sched_dispatch(struct sched *);
void deliverd_sched_read_worker(struct sched *, struct deliverd_sched_worker *);

/* deliverd_sched_poison.c: a worker died abnormally (status) with jobs
 * in flight; at SCHED_POISON_DEATHS deaths on the message of its oldest
 * job, that job's recipients are deferred in the batch (and it leaves
 * w->jobs); the caller releases the rest. */
#define SCHED_POISON_DEATHS 3
void deliverd_sched_poison_check(struct sched *, struct deliverd_sched_worker *,
    int status);
/* At start (fatal if db/deliverd.poison cannot be had): the counts of the
 * last run, one more for each message it died working on. */
void deliverd_sched_poison_open(const struct sched *);
/* w's oldest job is now qid (NULL: whatever w->jobs[0] is, or none). */
void deliverd_sched_poison_work(const struct sched *,
    const struct deliverd_sched_worker *w, const char *qid);
/* A worker reported its outcome for qid: its count goes. */
void deliverd_sched_poison_done(const char *qid);
/* Before sj is handed out: true (its recipients deferred in the batch,
 * sj among the done jobs) when deliverd died SCHED_POISON_DEATHS times
 * while sending it. */
bool deliverd_sched_poison_hold(struct sched *, struct deliverd_sched_job *sj);
/* At a clean stop: no message is blamed for it. */
void deliverd_sched_poison_close(void);

/* deliverd_sched_commit.c */
/* Commits the batch. A failure keeps it (claims included) and retries
 * with back-off from a later call; force ignores the back-off. */
void deliverd_sched_commit(struct sched *, bool force);
/* events.jsonl: at most every SCHED_EXPORT_MS unless forced. */
void deliverd_sched_export(struct sched *, bool force);

#endif
