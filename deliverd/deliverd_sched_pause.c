/*
 * Pauses where recipients are claimed (issue 15 item 7, spoolctl pause):
 * a due recipient whose domain is paused (for its account or for all) is
 * not handed out. So that the scan does not meet it again every time (a
 * paused backlog ahead of everything else in the schedule would block
 * the rest), its due time moves on by as long as the pause has lasted,
 * at least a minute and at most an hour (or the longest retry step plus a
 * minute, if less), never past its queue lifetime:
 * no attempt is counted and no event written. spoolctl resume makes the
 * domain's recipients due at once. A recipient whose lifetime elapsed
 * while paused bounces as expired, as any other.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_sched.h"
#include "log.h"
#include "spool.h"
#include "xmem.h"

#define SCHED_PAUSE_STEP_MIN 60
#define SCHED_PAUSE_STEP_MAX 3600

void
deliverd_sched_paused_init(struct deliverd_sched_paused *pd,
    struct spool_txn					*txn)
{
	size_t n = 0;

	memset(pd, 0, sizeof(*pd));
	/* one look per scan: without pauses the claim path costs nothing more */
	pd->pd_any = spool_pause_count(txn, &n) == 0 && n > 0;
}

/* Adds (qid, idx) to the recipients to set aside; the list grows with the
 * scan, which is bounded by SCHED_SCAN_MAX. */
static void
deliverd_sched_paused_add(struct deliverd_sched_paused *pd,
    const struct spool_msg *m, const struct spool_rcpt *r, const char *domain)
{
	struct deliverd_sched_paused_rcpt *e;

	if (pd->pd_n == pd->pd_cap) {
		pd->pd_cap = pd->pd_cap ? pd->pd_cap * 2 : 64;
		pd->pd_v = xreallocarray(pd->pd_v, pd->pd_cap,
		    sizeof(*pd->pd_v));
	}
	e = &pd->pd_v[pd->pd_n++];
	(void)str_copy(e->pa_qid, sizeof(e->pa_qid), m->sm_qid);
	(void)str_copy(e->pa_login, sizeof(e->pa_login), m->sm_login);
	(void)str_copy(e->pa_domain, sizeof(e->pa_domain), domain);
	e->pa_idx = r->sr_idx;
	e->pa_arrival = m->sm_arrival;
}

bool
deliverd_sched_paused_check(struct deliverd_sched_paused *pd,
    struct spool_txn *txn, const struct spool_msg *m,
    const struct spool_rcpt *r)
{
	struct spool_pause pz;
	char		   domain[SPOOL_DOMAIN_MAX];

	if (!pd->pd_any)
		return false;
	deliverd_domain(r->sr_addr, domain, sizeof(domain));
	if (spool_pause_find(txn, domain, m->sm_login, &pz) != 0)
		return false;
	deliverd_sched_paused_add(pd, m, r, domain);
	return true;
}

/*
 * When a paused recipient is due again; 0 = its lifetime is over. The
 * step stays within what deliverd_sched_rekey takes for a clock that went
 * back (the longest retry step + 60 s), so a restart does not mistake
 * paused recipients for that.
 */
static int64_t
deliverd_sched_paused_next(const struct conf *cf,
    const struct deliverd_sched_paused_rcpt *e, const struct spool_pause *pz,
    int64_t now)
{
	int64_t step = now - pz->pz_since,
		end = e->pa_arrival + cf->cf_max_queue_lifetime;
	int64_t max = 0;
	size_t	i;

	if (now >= end)
		return 0;
	for (i = 0; i < cf->cf_nretry_delays; i++)
		if (cf->cf_retry_delays[i] > max)
			max = cf->cf_retry_delays[i];
	max = max + SCHED_PAUSE_STEP_MIN < SCHED_PAUSE_STEP_MAX
	    ? max + SCHED_PAUSE_STEP_MIN
	    : SCHED_PAUSE_STEP_MAX;
	step = step < SCHED_PAUSE_STEP_MIN ? SCHED_PAUSE_STEP_MIN
	    : step > max		   ? max
					   : step;
	return now + step < end ? now + step : end;
}

/*
 * In one write transaction: moves each set-aside recipient that is still
 * pending and paused (spoolctl may have resumed meanwhile: then it stays
 * due) to its next time; the expired ones go to res. Returns how many
 * were moved, or -1.
 */
static long
deliverd_sched_paused_move(struct sched *s, struct deliverd_sched_paused *pd,
    struct deliverd_result *res, size_t *nres_r)
{
	struct spool_txn  *txn = NULL;
	struct spool_pause pz;
	struct spool_rcpt  r;
	int64_t		   now = deliverd_now();
	size_t		   i;
	long		   moved = 0;
	int		   rc;

	*nres_r = 0;
	if ((rc = spool_begin(s->sp, true, &txn)) != 0)
		goto fail;
	for (i = 0; i < pd->pd_n; i++) {
		if (spool_rcpt_get(txn, pd->pd_v[i].pa_qid, pd->pd_v[i].pa_idx,
			&r) != 0 ||
		    (r.sr_state != SPOOL_RS_QUEUED &&
			r.sr_state != SPOOL_RS_DEFERRED) ||
		    spool_pause_find(txn, pd->pd_v[i].pa_domain,
			pd->pd_v[i].pa_login, &pz) != 0)
			continue;
		if ((r.sr_next = deliverd_sched_paused_next(s->cf, &pd->pd_v[i],
			 &pz, now)) == 0) {
			memset(&res[*nres_r], 0, sizeof(res[0]));
			(void)str_copy(res[*nres_r].dr_qid, QID_SIZE, r.sr_qid);
			res[*nres_r].dr_idx = r.sr_idx;
			(void)str_copy(res[*nres_r].dr_to, SPOOL_ADDR_MAX,
			    r.sr_addr);
			(void)snprintf(res[(*nres_r)++].dr_reply,
			    SPOOL_REPLY_MAX,
			    "451 4.3.2 Delivery to %s paused by the operator "
			    "(spoolctl pause)",
			    pd->pd_v[i].pa_domain);
			continue;
		}
		if ((rc = spool_rcpt_put(txn, &r)) != 0)
			goto fail;
		moved++;
	}
	if ((rc = spool_commit(&txn)) == 0)
		return moved;
fail:
	spool_abort(&txn);
	log_warnx(
	    "setting aside %zu paused recipients: %s (they are looked at again "
	    "in the next scan)",
	    pd->pd_n, spool_strerror(rc));
	*nres_r = 0;
	return -1;
}

void
deliverd_sched_paused_apply(struct sched *s, struct deliverd_sched_paused *pd)
{
	struct deliverd_result *res;
	size_t			nres = 0;
	long			moved;
	int			rc;

	if (pd->pd_n == 0) {
		free(pd->pd_v);
		return;
	}
	res = xcalloc(pd->pd_n, sizeof(*res));
	if ((moved = deliverd_sched_paused_move(s, pd, res, &nres)) > 0)
		log_info("%ld recipients of paused destinations set aside "
			 "(spoolctl pause lists the pauses)",
		    moved);
	/* lifetime over while paused: the usual expired bounce */
	if (nres > 0 &&
	    (rc = deliverd_commit(s->sp, s->cf, NULL, 0, res, nres,
		 deliverd_now())) != 0)
		log_warnx("expiring %zu paused recipients: %s", nres,
		    spool_strerror(rc));
	else if (nres > 0)
		s->export_pending = true;
	free(res);
	free(pd->pd_v);
}
