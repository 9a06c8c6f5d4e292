/*
 * A message that kills the delivery worker sending it (an abort or
 * SIGSEGV in a library: DKIM signing, the tracking rewrite, TLS) used to
 * be handed out again as soon as the worker was gone, for ever: a crash
 * loop that never deferred or bounced it. The scheduler now counts, per
 * queue id, the abnormal deaths of a worker while that message was the
 * one it was working on (the oldest job in flight; the jobs queued behind
 * it were not started and are only released). At SCHED_POISON_DEATHS its
 * recipients still without an outcome get a deferral of our own,
 * committed like a worker's result: they wait for the retry schedule and
 * bounce at max_queue_lifetime, with one log line and a deferred event.
 * Deferred rather than held: a hold needs an operator before the sender
 * ever hears of it; a deferral tells the account (event) and ends in a
 * bounce by itself. The count is kept (a later retry that kills a worker
 * again is deferred at once): one death per retry.
 *
 * Memory: SCHED_POISON_SLOTS queue ids, the least recently hit replaced.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "buf.h"
#include "deliverd.h"
#include "deliverd_sched.h"
#include "ev.h"
#include "log.h"
#include "xmem.h"

#define SCHED_POISON_SLOTS 256

static struct {
	char	 qid[QID_SIZE];
	unsigned deaths;
	int64_t	 last_ms;
} deliverd_poison[SCHED_POISON_SLOTS];

/* The deaths so far of qid's worker, one more counted. */
static unsigned
deliverd_sched_poison_count(const char *qid)
{
	size_t i, old = 0;

	for (i = 0; i < SCHED_POISON_SLOTS; i++) {
		if (strcmp(deliverd_poison[i].qid, qid) == 0)
			break;
		if (deliverd_poison[i].last_ms < deliverd_poison[old].last_ms)
			old = i;
	}
	if (i == SCHED_POISON_SLOTS) {
		i = old; /* an empty slot has last_ms 0 */
		(void)str_copy(deliverd_poison[i].qid, QID_SIZE, qid);
		deliverd_poison[i].deaths = 0;
	}
	deliverd_poison[i].last_ms = ev_clock_ms();
	return ++deliverd_poison[i].deaths;
}

static bool
deliverd_sched_has_result(const struct sched *s, const char *qid, uint32_t idx)
{
	size_t i;

	for (i = 0; i < s->nres; i++)
		if (s->res[i].dr_idx == idx &&
		    strcmp(s->res[i].dr_qid, qid) == 0)
			return true;
	return false;
}

/* sj's recipients without an outcome get reply; sj joins the batch's done
 * jobs (its claims go once the batch is committed). */
static void
deliverd_sched_poison_defer(struct sched *s, struct deliverd_sched_job *sj,
    const char *reply)
{
	struct deliverd_result r;
	size_t		       i;

	for (i = 0; i < sj->j.dj_nidx; i++) {
		if (deliverd_sched_has_result(s, sj->j.dj_qid, sj->j.dj_idx[i]))
			continue; /* sent before the death: that outcome stands */
		memset(&r, 0, sizeof(r));
		(void)str_copy(r.dr_qid, sizeof(r.dr_qid), sj->j.dj_qid);
		r.dr_idx = sj->j.dj_idx[i];
		(void)str_copy(r.dr_reply, sizeof(r.dr_reply), reply);
		if (s->nres == s->capres) {
			s->capres = s->capres ? s->capres * 2 : 256;
			s->res = xreallocarray(s->res, s->capres,
			    sizeof(*s->res));
		}
		s->res[s->nres++] = r;
	}
	if (s->ndone == s->capdone) {
		s->capdone = s->capdone ? s->capdone * 2 : 64;
		s->done = xreallocarray(s->done, s->capdone, sizeof(*s->done));
	}
	s->done[s->ndone++] = sj;
}

void
deliverd_sched_poison_check(struct sched *s, struct deliverd_sched_worker *w,
    int status)
{
	struct deliverd_sched_job *sj;
	char			   reply[SPOOL_REPLY_MAX];
	unsigned		   n;

	if (w->njobs == 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
		return; /* a normal exit: no message to blame */
	sj = w->jobs[0];
	if ((n = deliverd_sched_poison_count(sj->j.dj_qid)) <
	    SCHED_POISON_DEATHS)
		return; /* released by the caller: handed out again */
	(void)snprintf(reply, sizeof(reply),
	    "451 4.3.0 delivery worker died while sending it (%u times)", n);
	log_warnx("%s: delivery worker died while sending it (%u times), "
		  "status %d: deferring its recipients",
	    sj->j.dj_qid, n, status);
	deliverd_sched_poison_defer(s, sj, reply);
	memmove(&w->jobs[0], &w->jobs[1], (w->njobs - 1) * sizeof(w->jobs[0]));
	w->njobs--;
}
