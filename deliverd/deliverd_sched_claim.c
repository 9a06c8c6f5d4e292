/*
 * The scheduler's claims (recipients handed out or waiting in memory) and
 * where they come from: the scan of the schedule index, bounded by
 * claims_max so that a large due backlog stays in LMDB (deliverd(8)
 * "Memory"), and the re-key after the wall clock stepped back.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_dest.h"
#include "deliverd_sched.h"
#include "deliverd_sim.h"
#include "log.h"
#include "spool.h"
#include "spool_track.h"
#include "xmem.h"

/* ---- claims: recipients handed out or waiting in memory */

static size_t
deliverd_sched_claim_hash(const char *qid, uint32_t idx)
{
	size_t h = 5381;

	for (; *qid != '\0'; qid++)
		h = h * 33 + (unsigned char)*qid;
	return (h * 33 + idx) % SCHED_CLAIM_BUCKETS;
}

static bool
deliverd_sched_claimed(struct sched *s, const char *qid, uint32_t idx)
{
	struct deliverd_sched_claim *c;

	for (c = s->claims[deliverd_sched_claim_hash(qid, idx)]; c != NULL;
	     c = c->next)
		if (c->idx == idx && strcmp(c->qid, qid) == 0)
			return true;
	return false;
}

void
deliverd_sched_claim(struct sched *s, const char *qid, uint32_t idx)
{
	struct deliverd_sched_claim *c = xmalloc(sizeof(*c));
	size_t			     h = deliverd_sched_claim_hash(qid, idx);

	(void)str_copy(c->qid, sizeof(c->qid), qid);
	c->idx = idx;
	c->next = s->claims[h];
	s->claims[h] = c;
	s->nclaims++;
}

static void
deliverd_sched_unclaim(struct sched *s, const char *qid, uint32_t idx)
{
	struct deliverd_sched_claim **cp, *c;

	for (cp = &s->claims[deliverd_sched_claim_hash(qid, idx)];
	     (c = *cp) != NULL; cp = &c->next) {
		if (c->idx == idx && strcmp(c->qid, qid) == 0) {
			*cp = c->next;
			free(c);
			s->nclaims--;
			return;
		}
	}
}

void
deliverd_sched_job_release(struct sched *s, struct deliverd_sched_job *sj)
{
	size_t i;

	for (i = 0; i < sj->j.dj_nidx; i++)
		deliverd_sched_unclaim(s, sj->j.dj_qid, sj->j.dj_idx[i]);
	deliverd_dest_released(s, sj->j.dj_hop, sj->pass, sj->j.dj_nidx);
	free(sj);
}
/* ---- scanning the schedule */

/* (message, recipient) pairs taken from a walk of the schedule, bounded. */
struct deliverd_sched_refs {
	struct {
		char	 qid[QID_SIZE];
		uint32_t idx;
		unsigned pass; /* DEST_PASS_* it was claimed with */
	} * e;
	size_t n, max;
};

static void
deliverd_sched_refs_init(struct deliverd_sched_refs *rf, size_t max)
{
	rf->n = 0;
	rf->max = max;
	/* not zeroed: e[0..n) is written before it is read, and a scan
	 * per wake-up zeroing all of it cost more than the scan */
	rf->e = xreallocarray(NULL, max, sizeof(*rf->e));
}

/* 0 when added, 1 when full (a walk callback stops on it). */
static int
deliverd_sched_refs_add(struct deliverd_sched_refs *rf, const char *qid,
    uint32_t idx, unsigned pass)
{
	if (rf->n >= rf->max)
		return 1;
	(void)str_copy(rf->e[rf->n].qid, QID_SIZE, qid);
	rf->e[rf->n].pass = pass;
	rf->e[rf->n++].idx = idx;
	return 0;
}

struct deliverd_sched_scan {
	struct sched		  *s;
	struct spool_txn	  *txn;
	int64_t			   now;
	struct deliverd_sched_refs rf;
	/* per destination (deliverd_dest.h): skipped, or to reschedule */
	size_t			      skipped;
	struct deliverd_dest_resched *resched;
	size_t			      nresched;
	/* the message last asked about by deliverd_sched_scan_pass */
	char	 pass_qid[QID_SIZE];
	unsigned pass_bits, pass_asked;
};

/* Does m's header say "TLS-Required: No" (deliverd_tls_required_no)? Its
 * first DELIVERD_TLSNO_HDR_MAX bytes are read from queue/QID; a file that
 * cannot be read says no (the message waits like the others). */
static bool
deliverd_sched_tls_no(const struct sched *s, const struct spool_msg *m)
{
	char	path[4096], *hdr;
	int	fd;
	ssize_t n;
	bool	no;

	if (m->sm_body_off < 0 ||
	    spool_path(path, sizeof(path), s->cf->cf_spool_dir, SPOOL_QUEUE,
		m->sm_qid) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	hdr = xmalloc(DELIVERD_TLSNO_HDR_MAX);
	n = pread(fd, hdr, DELIVERD_TLSNO_HDR_MAX, (off_t)m->sm_body_off);
	(void)close(fd); /* read-only: nothing to lose */
	no = n > 0 &&
	    deliverd_tls_required_no(hdr, (size_t)n, m->sm_from_params);
	free(hdr);
	return no;
}

/*
 * The pass bits of message qid (deliverd_dest.h), of those in want: a
 * sandbox account's never leaves the host; "TLS-Required: No" in its
 * header block (read from queue/QID: only for a destination suspended for
 * its TLS policy, once per message and scan).
 */
static unsigned
deliverd_sched_scan_pass(struct deliverd_sched_scan *sc, const char *qid,
    unsigned want)
{
	struct spool_msg *m;
	unsigned	  bits = 0;

	if (strcmp(sc->pass_qid, qid) == 0 && (sc->pass_asked & want) == want)
		return sc->pass_bits & want;
	m = xmalloc(sizeof(*m));
	if (spool_msg_get(sc->txn, qid, m) == 0) {
		if (m->sm_sandbox)
			bits |= DEST_PASS_LOCAL;
		else if ((want & DEST_PASS_TLSPOL) != 0 &&
		    deliverd_sched_tls_no(sc->s, m))
			bits |= DEST_PASS_TLSPOL;
	}
	free(m);
	(void)str_copy(sc->pass_qid, sizeof(sc->pass_qid), qid);
	sc->pass_bits = bits;
	sc->pass_asked = want;
	return bits & want;
}

/* May this recipient be claimed now, as far as its destination goes? A
 * destination over its share is passed over (its recipients stay in
 * LMDB, the walk goes on to the others: no head-of-line blocking); a
 * suspended one's recipients are noted for rescheduling. */
static bool
deliverd_sched_scan_dest(struct deliverd_sched_scan *sc, const char *qid,
    uint32_t idx, unsigned *pass_r)
{
	struct spool_rcpt r;
	char		  hop[SPOOL_DOMAIN_MAX];
	int64_t		  until;
	unsigned	  want;

	*pass_r = 0;
	if (spool_rcpt_get(sc->txn, qid, idx, &r) != 0)
		return true; /* group() finds out */
	if (sc->s->cf->cf_relayhost[0] != '\0')
		(void)str_copy(hop, sizeof(hop), sc->s->cf->cf_relayhost);
	else
		deliverd_domain(r.sr_addr, hop, sizeof(hop));
	if (deliverd_sim_match(sc->s->cf, r.sr_addr))
		*pass_r = DEST_PASS_LOCAL;
	/* held: does the message pass what holds it? (the rare path) */
	if (!deliverd_dest_may_claim(sc->s, hop, *pass_r, &until) &&
	    (*pass_r != 0 || (want = deliverd_dest_passable(sc->s, hop)) == 0 ||
		(*pass_r = deliverd_sched_scan_pass(sc, qid, want)) == 0 ||
		!deliverd_dest_may_claim(sc->s, hop, *pass_r, &until)))
		goto held;
	deliverd_dest_claimed(sc->s, hop, *pass_r,
	    1); /* counted again after group() */
	return true;
held:
	sc->skipped++;
	if (until != 0 && sc->nresched < DEST_RESCHED_MAX) {
		(void)str_copy(sc->resched[sc->nresched].qid, QID_SIZE, qid);
		sc->resched[sc->nresched].idx = idx;
		sc->resched[sc->nresched++].until = until;
	}
	return false;
}

static int
deliverd_sched_scan_cb(int64_t due, const char *qid, uint32_t idx, void *arg)
{
	struct deliverd_sched_scan *sc = arg;
	unsigned		    pass;

	if (due > sc->now) {
		if (sc->s->next_due == 0 || due < sc->s->next_due)
			sc->s->next_due = due;
		return 1;
	}
	if (deliverd_sched_claimed(sc->s, qid, idx))
		return 0;
	if (!deliverd_sched_scan_dest(sc, qid, idx, &pass))
		return sc->skipped >= SCHED_SKIP_MAX ? 1 : 0;
	return deliverd_sched_refs_add(&sc->rf, qid, idx, pass);
}

/* By message (the qid leads each entry), so a message is read once. */
static int
deliverd_sched_scan_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Adds idx to the job of (qid, hop) being built, or starts a new one. */
static void
deliverd_sched_enqueue(struct sched *s, struct deliverd_sched_job **cur,
    const char *qid, const char *hop, bool relay, uint32_t idx, unsigned pass)
{
	struct deliverd_sched_job *sj = *cur;
	size_t			   max = deliverd_dest_rcpt_max(s, hop);

	if (sj == NULL || strcmp(sj->j.dj_qid, qid) != 0 || sj->alone ||
	    strcmp(sj->j.dj_hop, hop) != 0 || sj->j.dj_nidx >= max) {
		/* look for an open job of this message and hop */
		TAILQ_FOREACH_REVERSE(sj, &s->queue, deliverd_sched_jobq, link)
		{
			if (strcmp(sj->j.dj_qid, qid) != 0)
				break;
			if (strcmp(sj->j.dj_hop, hop) == 0 && !sj->alone &&
			    sj->j.dj_nidx < max)
				break;
		}
		if (sj == NULL || strcmp(sj->j.dj_qid, qid) != 0 || sj->alone) {
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
	/* a message and hop pass alike (sandbox, TLS-Required, simulator) */
	sj->pass |= pass;
	deliverd_sched_claim(s, qid, idx);
	*cur = sj;
}

static void
deliverd_sched_group(struct sched *s, struct spool_txn *txn,
    struct deliverd_sched_refs *rf, struct deliverd_sched_paused *pd)
{
	struct spool_msg	  *m = xmalloc(sizeof(*m));
	struct spool_rcpt	   r;
	struct deliverd_sched_job *cur = NULL;
	char			   hop[SPOOL_DOMAIN_MAX];
	bool			   relay = s->cf->cf_relayhost[0] != '\0';
	bool			   have = false, tracked = false, sim;
	unsigned		   pass;
	size_t			   i;

	qsort(rf->e, rf->n, sizeof(rf->e[0]), deliverd_sched_scan_cmp);
	for (i = 0; i < rf->n; i++) {
		if (!have || strcmp(m->sm_qid, rf->e[i].qid) != 0) {
			have = spool_msg_get(txn, rf->e[i].qid, m) == 0;
			tracked = have && !m->sm_sandbox &&
			    spool_track_has(txn, m->sm_qid);
			if (!have)
				(void)str_copy(m->sm_qid, sizeof(m->sm_qid),
				    rf->e[i].qid);
		}
		if (!have || m->sm_held ||
		    spool_rcpt_get(txn, rf->e[i].qid, rf->e[i].idx, &r) != 0 ||
		    (r.sr_state != SPOOL_RS_QUEUED &&
			r.sr_state != SPOOL_RS_DEFERRED))
			continue;
		if (deliverd_sched_paused_check(pd, txn, m, &r))
			continue; /* spoolctl pause: set aside, not handed out */
		/* mail that never leaves the host: its own domain's job,
		 * never the relayhost's, and it passes every hold */
		sim = deliverd_sim_match(s->cf, r.sr_addr);
		pass = rf->e[i].pass |
		    (m->sm_sandbox || sim ? DEST_PASS_LOCAL : 0);
		if (relay && !m->sm_sandbox && !sim)
			(void)str_copy(hop, sizeof(hop), s->cf->cf_relayhost);
		else
			deliverd_domain(r.sr_addr, hop, sizeof(hop));
		deliverd_sched_enqueue(s, &cur, rf->e[i].qid, hop,
		    relay && !m->sm_sandbox && !sim, rf->e[i].idx, pass);
		/* each copy of a tracked message differs: a job of its own */
		cur->alone = tracked;
	}
	free(m);
}

bool
deliverd_sched_can_scan(const struct sched *s)
{
	return !s->retry.pending && s->nclaims < s->claims_max;
}

/*
 * Takes due recipients up to claims_max (in flight, queued and done but
 * not committed, all counted): the rest of a backlog stays in LMDB and is
 * taken as claims are released, so memory does not grow with it.
 */
void
deliverd_sched_scan(struct sched *s)
{
	struct spool_txn	    *txn = NULL;
	struct deliverd_sched_scan   sc;
	struct deliverd_sched_paused pd;
	size_t			     room;
	int			     rc;

	if (!deliverd_sched_can_scan(s))
		return;
	room = s->claims_max - s->nclaims;
	s->rescan = false;
	s->last_scan_ms = ev_clock_ms();
	memset(&sc, 0, sizeof(sc));
	sc.s = s;
	sc.now = deliverd_now();
	sc.resched = xreallocarray(NULL, DEST_RESCHED_MAX,
	    sizeof(*sc.resched)); /* resched[0..nresched) written first */
	deliverd_sched_refs_init(&sc.rf,
	    room < SCHED_SCAN_MAX ? room : SCHED_SCAN_MAX);
	s->next_due = 0;
	if ((rc = spool_begin(s->sp, false, &txn)) != 0) {
		log_warnx("scan: %s", spool_strerror(rc));
		free(sc.rf.e);
		free(sc.resched);
		return;
	}
	sc.txn = txn;
	/* INT64_MAX: walk past the due entries to learn the next due time */
	rc = spool_sched_due(txn, INT64_MAX,
	    s->nclaims + sc.rf.max + 1 + SCHED_SKIP_MAX, deliverd_sched_scan_cb,
	    &sc);
	if (rc < 0 && rc != SPOOL_ENOTFOUND)
		log_warnx("scan: %s", spool_strerror(rc));
	if (sc.rf.n == sc.rf.max)
		s->rescan = true; /* more are due than we took */
	deliverd_sched_paused_init(&pd, txn);
	deliverd_sched_group(s, txn, &sc.rf, &pd);
	spool_abort(&txn);
	free(sc.rf.e);
	deliverd_sched_paused_apply(s, &pd);
	deliverd_dest_recount(s);
	deliverd_dest_reschedule(s, sc.resched, sc.nresched);
	free(sc.resched);
}

/* ---- the wall clock stepped backwards */

struct deliverd_sched_rekey {
	int64_t			   limit;
	struct deliverd_sched_refs rf;
};

static int
deliverd_sched_rekey_cb(int64_t due, const char *qid, uint32_t idx, void *arg)
{
	struct deliverd_sched_rekey *rk = arg;

	if (due <= rk->limit)
		return 0;
	return deliverd_sched_refs_add(&rk->rf, qid, idx, 0);
}

/*
 * No entry can be due later than now + the longest retry step unless the
 * clock went back (an NTP step): such entries would sleep for as long as
 * the step. They are made due now. Run at start and after a step.
 */
void
deliverd_sched_rekey(struct sched *s)
{
	struct deliverd_sched_rekey rk;
	struct spool_txn	   *txn = NULL;
	struct spool_rcpt	    r;
	int64_t			    now = deliverd_now(), step = 0;
	size_t			    i, n = 0;
	int			    rc;

	for (i = 0; i < s->cf->cf_nretry_delays; i++)
		if (s->cf->cf_retry_delays[i] > step)
			step = s->cf->cf_retry_delays[i];
	rk.limit = now + step + 60;
	deliverd_sched_refs_init(&rk.rf, 100000);
	if (spool_begin(s->sp, false, &txn) == 0) {
		(void)spool_sched_due(txn, INT64_MAX, SIZE_MAX,
		    deliverd_sched_rekey_cb, &rk);
		spool_abort(&txn);
	}
	if (rk.rf.n > 0 && (rc = spool_begin(s->sp, true, &txn)) == 0) {
		for (i = 0; i < rk.rf.n; i++) {
			if (spool_rcpt_get(txn, rk.rf.e[i].qid, rk.rf.e[i].idx,
				&r) != 0 ||
			    r.sr_next <= rk.limit)
				continue;
			r.sr_next = now;
			if ((rc = spool_rcpt_put(txn, &r)) != 0)
				break;
			n++;
		}
		if (rc != 0 || (rc = spool_commit(&txn)) != 0) {
			spool_abort(&txn);
			log_warnx("re-keying the schedule: %s",
			    spool_strerror(rc));
			n = 0;
		}
	}
	if (n > 0)
		log_warnx("clock: %zu recipients were due in the future beyond "
			  "any retry "
			  "step (the clock went back?): due now",
		    n);
	free(rk.rf.e);
	s->rescan = true;
}

void
deliverd_sched_clock(struct sched *s)
{
	int64_t now = deliverd_now();

	if (s->wall_prev != 0 && now + 2 < s->wall_prev) {
		log_warnx("clock: wall clock went back %llds",
		    (long long)(s->wall_prev - now));
		deliverd_sched_rekey(s);
	}
	s->wall_prev = now;
}
