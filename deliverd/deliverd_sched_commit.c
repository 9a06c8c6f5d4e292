/*
 * Recording the workers' outcomes. A batch whose commit fails is kept
 * with its claims (so nothing in it is handed out again), dispatch stops,
 * and the commit is retried with back-off (100 ms doubling to 30 s),
 * logged once per SCHED_COMMIT_LOG_MS: a full map or disk never makes
 * deliverd send what the next hop already accepted. A failure that
 * retrying cannot cure (a record that does not decode, a value too big)
 * is isolated: every other result is committed on its own and the one
 * that fails stays claimed, never sent again by this process, with one
 * warning naming it (deliverd(8) "Failed commits").
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_sched.h"
#include "log.h"
#include "spool.h"

/* Failures that a later attempt can cure (space, I/O, locks). */
static bool
deliverd_sched_commit_transient(int rc)
{
	switch (rc) {
	case SPOOL_ECORRUPT:
	case SPOOL_ETOOBIG:
	case SPOOL_EFORMAT:
	case SPOOL_EVERSION:
	case EINVAL:
		return false;
	default:
		return true;
	}
}

static int
deliverd_sched_commit_one(struct sched *s, struct deliverd_result *r)
{
	return deliverd_commit(s->sp, s->cf, NULL, 0, r, 1, deliverd_now());
}

/*
 * The batch failed for a reason retrying cannot cure: the signatures and
 * each result are committed on their own. A result that still fails that
 * way is dropped from the batch but keeps a claim of its own, so this
 * process never hands it out again. Returns 0, or a transient failure
 * (the rest of the batch stays for the retry).
 */
static int
deliverd_sched_commit_isolate(struct sched *s)
{
	size_t i;
	int    rc;

	rc = deliverd_commit(s->sp, s->cf, s->sigs, s->nsigs, NULL, 0,
	    deliverd_now());
	if (rc != 0 && deliverd_sched_commit_transient(rc))
		return rc;
	if (rc != 0) /* only a cache: a worker signs again */
		log_warnx("storing %zu DKIM signatures: %s", s->nsigs,
		    spool_strerror(rc));
	for (i = 0; i < s->nsigs; i++)
		free(s->sigs[i].sig);
	s->nsigs = 0;
	for (i = 0; i < s->nres; i++) {
		if (s->res[i].dr_skip)
			continue;
		if ((rc = deliverd_sched_commit_one(s, &s->res[i])) != 0) {
			if (deliverd_sched_commit_transient(rc))
				return rc;
			log_warnx("%s: outcome of recipient %u cannot be "
				  "recorded (%s); "
				  "reply was: %s; kept claimed, not sent again "
				  "until deliverd "
				  "restarts",
			    s->res[i].dr_qid, s->res[i].dr_idx,
			    spool_strerror(rc), s->res[i].dr_reply);
			deliverd_sched_claim(s, s->res[i].dr_qid,
			    s->res[i].dr_idx);
		}
		s->res[i].dr_skip = true; /* done: a retry skips it */
	}
	return 0;
}

static void
deliverd_sched_commit_done(struct sched *s)
{
	struct deliverd_sched_retry *rt = &s->retry;
	size_t			     i;

	if (rt->pending)
		log_info("commit of %zu results succeeded after %u failed "
			 "attempts in "
			 "%llds; dispatch resumed",
		    s->nres, rt->tries,
		    (long long)((ev_clock_ms() - rt->since_ms) / 1000));
	rt->pending = false;
	for (i = 0; i < s->nsigs; i++)
		free(s->sigs[i].sig);
	s->nsigs = 0;
	s->nres = 0;
	for (i = 0; i < s->ndone; i++)
		deliverd_sched_job_release(s, s->done[i]);
	s->ndone = 0;
	for (i = 0; i < s->nw; i++)
		s->w[i].nuncommitted = 0;
	s->export_pending = true;
	s->rescan = true;
}

static void
deliverd_sched_commit_failed(struct sched *s, int rc)
{
	struct deliverd_sched_retry *rt = &s->retry;
	int64_t			     now = ev_clock_ms();

	if (!rt->pending) {
		rt->pending = true;
		rt->since_ms = now;
		rt->delay_ms = SCHED_COMMIT_RETRY_MIN_MS;
		rt->tries = 0;
		rt->logged_ms = 0;
		rt->rc = 0;
	} else if ((rt->delay_ms *= 2) > SCHED_COMMIT_RETRY_MAX_MS)
		rt->delay_ms = SCHED_COMMIT_RETRY_MAX_MS;
	rt->tries++;
	rt->next_ms = now + rt->delay_ms;
	if (rc == SPOOL_EDB) {
		/* e.g. MDB_PANIC: the environment is unusable until reopened
		 * (a reopen that fails exits: the restart bound applies) */
		spool_close(&s->sp);
		deliverd_sched_open_spool(s);
	}
	if (rt->logged_ms == 0 || rc != rt->rc ||
	    now - rt->logged_ms >= SCHED_COMMIT_LOG_MS) {
		log_warnx("commit of %zu results failed: %s; dispatch stopped, "
			  "retrying "
			  "(%u attempts in %llds, next in %lldms)",
		    s->nres, spool_strerror(rc), rt->tries,
		    (long long)((now - rt->since_ms) / 1000),
		    (long long)rt->delay_ms);
		rt->logged_ms = now;
	}
	rt->rc = rc;
}

void
deliverd_sched_commit(struct sched *s, bool force)
{
	int rc;

	if (s->nres == 0 && s->nsigs == 0 && s->ndone == 0)
		return;
	if (s->retry.pending && !force && ev_clock_ms() < s->retry.next_ms)
		return;
	rc = deliverd_commit(s->sp, s->cf, s->sigs, s->nsigs, s->res, s->nres,
	    deliverd_now());
	if (rc != 0 && !deliverd_sched_commit_transient(rc)) {
		log_warnx("commit of %zu results failed: %s; committing them "
			  "one by one",
		    s->nres, spool_strerror(rc));
		rc = deliverd_sched_commit_isolate(s);
	}
	if (rc != 0) {
		deliverd_sched_commit_failed(s, rc);
		return;
	}
	deliverd_sched_commit_done(s);
	deliverd_sched_export(s, false);
}

/* events.jsonl: at most every SCHED_EXPORT_MS under load (each export
 * is an fdatasync and a write transaction), at once when idle. */
void
deliverd_sched_export(struct sched *s, bool force)
{
	size_t nev = 0;
	int    rc;

	if (!s->export_pending || s->retry.pending ||
	    (!force && ev_clock_ms() - s->last_export_ms < SCHED_EXPORT_MS))
		return;
	/* one bounded batch per call: a backlog never stalls the loop */
	if ((rc = spool_events_export_some(s->sp, s->cf->cf_event_log,
		 SPOOL_EXPORT_BATCH, &nev)) != 0)
		log_warnx("events export to %s: %s", s->cf->cf_event_log,
		    spool_strerror(rc));
	s->export_pending = rc == 0 && nev > 0; /* more may wait: look again */
	s->last_export_ms = ev_clock_ms();
}
