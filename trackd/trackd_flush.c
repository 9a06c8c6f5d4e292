/*
 * trackd_flush: the group commit of opens and clicks (trackd.h,
 * DURABILITY), run by the committer; trackd_flush_unsubs: the
 * unsubscribes waiting for their answer (t_un), in a transaction of
 * their own, committed as soon as they arrive. Hits arrive on t_pend
 * (under t_q); the flush swaps it with the empty t_fl and writes t_fl's
 * events in one LMDB transaction under t_db. An unsubscribe that arrives
 * meanwhile (t_upipe, looked at every TRACKD_FLUSH_CHUNK hits) does not
 * wait for the whole group: the transaction stops there, takes it, is
 * committed and the unsubscribe answered, and the rest of the group
 * follows in another. Answers go out after the commit and before the
 * events are appended to event_log (they are in LMDB: the export follows
 * at once, its cursor there too). A failed commit keeps what t_fl has
 * left (from t_flo) for the next flush (t_pend goes on filling up to its
 * bound meanwhile).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "spool.h"
#include "spool_track.h"
#include "trackd.h"
#include "trackd_int.h"
#include "trackd_machine.h"
#include "xmem.h"

size_t
trackd_pending(struct trackd *t)
{
	size_t	n;

	(void)pthread_mutex_lock(&t->t_db);	/* t_nfl; t_db before t_q */
	(void)pthread_mutex_lock(&t->t_q);
	n = t->t_npend + t->t_nfl - t->t_flo;
	(void)pthread_mutex_unlock(&t->t_q);
	(void)pthread_mutex_unlock(&t->t_db);
	return n;
}

/* When the recipient was delivered (rule 2): its last attempt, else the
 * message's arrival (a lower bound). */
static int64_t
trackd_delivered(struct spool_txn *tx, const struct spool_track_msg *km,
    const struct trackd_hit *h)
{
	struct spool_rcpt	r;

	if (spool_rcpt_get(tx, h->h_qid, h->h_idx, &r) == 0 && r.sr_last > 0)
		return r.sr_last;
	return km->km_arrival;
}

static int
trackd_hit_put(struct spool_txn *tx, const struct spool_track_msg *km,
    const struct trackd_hit *h)
{
	struct spool_event	ev;
	bool			open = h->h_kind == SPOOL_TRACK_OPEN;

	spool_event_init_track(&ev, km, h->h_qid, h->h_idx,
	    open ? SPOOL_EV_OPENED : SPOOL_EV_CLICKED, h->h_dt);
	ev.ev_idx = h->h_idx;
	if (!open)
		ev.ev_url = km->km_links[h->h_link];
	ev.ev_user_agent = h->h_ua[0] != '\0' ? h->h_ua : NULL;
	ev.ev_client = h->h_client[0] != '\0' ? h->h_client : NULL;
	ev.ev_machine = h->h_machine ||
	    (open && trackd_machine_early(h->h_dt, trackd_delivered(tx, km, h)));
	return spool_event_add(tx, &ev, NULL);
}

/* A hit past its copy's bound (spool_engage_admit) is not recorded; the
 * first such one is logged. */
static int
trackd_hit_admit_put(struct spool_txn *tx, const struct spool_track_msg *km,
    const struct trackd_hit *h)
{
	bool	open = h->h_kind == SPOOL_TRACK_OPEN, ok, full_now;
	int	rc;

	rc = spool_engage_admit(tx, h->h_qid, h->h_idx,
	    open ? SPOOL_EV_OPENED : SPOOL_EV_CLICKED, &ok, &full_now);
	if (rc != 0 || ok)
		return rc != 0 ? rc : trackd_hit_put(tx, km, h);
	if (full_now)
		log_info("%s: hit=%s, rcpt=%u, recorded=no (%d %s events "
		    "recorded for this recipient: no more are)", h->h_qid,
		    open ? "open" : "click", (unsigned)h->h_idx,
		    SPOOL_ENGAGE_HITS_MAX, open ? "opened" : "clicked");
	return 0;
}

/* Rule 3 over the clicks committed together: the first clicks of a
 * scanner's burst are marked too, not only the later ones. */
static void
trackd_flush_bursts(struct trackd *t)
{
	struct trackd_click	*v;
	size_t			 i, n = 0;

	v = xcalloc(t->t_nfl + 1, sizeof(*v));
	for (i = 0; i < t->t_nfl; i++)
		if (t->t_fl[i].h_kind == SPOOL_TRACK_CLICK)
			v[n++] = (struct trackd_click){ .tc_qid = t->t_fl[i].h_qid,
			    .tc_idx = t->t_fl[i].h_idx, .tc_link = t->t_fl[i].h_link,
			    .tc_ms = t->t_fl[i].h_ms, .tc_machine = &t->t_fl[i].h_machine };
	trackd_machine_bursts(v, n);
	free(v);
}

/* Stop the group's transaction at hit i for the unsubscribes waiting? */
static bool
trackd_flush_cut(struct trackd *t, size_t i)
{
	return i > t->t_flo && (i - t->t_flo) % TRACKD_FLUSH_CHUNK == 0 &&
	    (t->t_nun > 0 || trackd_unsub_poll(t));
}

/* One transaction for t_fl[t_flo..*upto_r) and the unsubscribes t_un
 * (their results in t_unres): the whole rest of the group, unless
 * unsubscribes came (trackd_flush_cut). */
static int
trackd_flush_txn(struct trackd *t, size_t *upto_r)
{
	struct spool_track_msg	 km;
	struct spool_txn	*tx;
	const char		*cur = NULL;
	size_t			 i;
	int			 rc, got = -1;

	if ((rc = spool_begin(t->t_sp, true, &tx)) != 0)
		return rc;
	for (i = t->t_flo; i < t->t_nfl && rc == 0 && !trackd_flush_cut(t, i);
	     i++) {
		const struct trackd_hit	*h = &t->t_fl[i];

		if (cur == NULL || strcmp(cur, h->h_qid) != 0) {
			if (got == 0)
				spool_track_msg_free(&km);
			memset(&km, 0, sizeof(km));
			got = spool_track_get(tx, h->h_qid, &km);
			cur = h->h_qid;
		}
		if (got == SPOOL_ENOTFOUND || (got == 0 && (h->h_idx >= km.km_nrcpts ||
		    (h->h_kind == SPOOL_TRACK_CLICK && h->h_link >= km.km_nlinks)))) {
			log_info("%s: hit=%s, rcpt=%u, recorded=no (message no longer recorded)",
			    h->h_qid, h->h_kind == SPOOL_TRACK_OPEN ? "open" : "click",
			    (unsigned)h->h_idx);
			continue;
		}
		rc = got != 0 ? got : trackd_hit_admit_put(tx, &km, h);
	}
	*upto_r = i;
	if (got == 0)
		spool_track_msg_free(&km);
	for (i = 0; i < t->t_nun && rc == 0; i++)
		rc = trackd_unsub_put(tx, &t->t_un[i], &t->t_unres[i]);
	if (rc != 0) {
		spool_abort(&tx);
		return rc;
	}
	return spool_commit(&tx);
}

/* Appends committed events to event_log (t_db held); a failure is
 * retried at the next flush (the cursor is in LMDB: nothing twice). */
static void
trackd_export(struct trackd *t)
{
	size_t	n = 0;
	int	rc;

	if (!t->t_export)
		return;
	if ((rc = spool_events_export(t->t_sp, t->t_event_log, &n)) != 0) {
		log_warnx("events export to %s: %s (retried)", t->t_event_log,
		    spool_strerror(rc));
		return;
	}
	t->t_export = false;
}

/* Each unsubscribe's answer, after the commit (rc 0) or its failure:
 * an unsubscribe is not retried here, its sender is told to (503). */
static void
trackd_flush_verdicts(struct trackd *t, int rc)
{
	size_t i;

	if (rc != 0 && t->t_nun > 0)
		log_warnx("commit of %zu unsubscribe(s): %s (answered 503)",
		    t->t_nun, spool_strerror(rc));
	for (i = 0; i < t->t_nun; i++)
		trackd_verdict_send(t, t->t_un[i].h_tag,
		    rc == 0 ? t->t_unres[i] : TRACKD_U_FAILED);
	t->t_nun = 0;
}

/* One transaction for the unsubscribes t_un alone: their answers wait
 * for its commit, not for a group of opens and clicks. */
static int
trackd_flush_unsub_txn(struct trackd *t)
{
	struct spool_txn *tx;
	size_t		  i;
	int		  rc;

	if ((rc = spool_begin(t->t_sp, true, &tx)) != 0)
		return rc;
	for (i = 0; i < t->t_nun && rc == 0; i++)
		rc = trackd_unsub_put(tx, &t->t_un[i], &t->t_unres[i]);
	if (rc != 0) {
		spool_abort(&tx);
		return rc;
	}
	return spool_commit(&tx);
}

void
trackd_flush_unsubs(struct trackd *t)
{
	struct spool_map m;
	int		 rc;

	if (t->t_nun == 0)
		return;
	(void)pthread_mutex_lock(&t->t_db);
	rc = trackd_flush_unsub_txn(t);
	if (rc == SPOOL_EFULL && spool_map_grown(t->t_sp, &m)) {
		log_info("lmdb map grown: from=%lld, to=%lld, max=%lld",
		    (long long)m.mp_grew_from, (long long)m.mp_size,
		    (long long)m.mp_max);
		rc = trackd_flush_unsub_txn(t);
	}
	if (rc == 0)
		t->t_export = true;
	trackd_flush_verdicts(t, rc); /* committed: answered */
	trackd_export(t);
	(void)pthread_mutex_unlock(&t->t_db);
}

/* The group from t_flo on, in one or more transactions (more when
 * unsubscribes cut it), each unsubscribe answered after the commit that
 * took it; the number of hits committed, rc_r the last failure or 0. */
static size_t
trackd_flush_group(struct trackd *t, int *rc_r)
{
	struct spool_map m;
	size_t		 upto, n = 0;
	int		 rc = 0;

	while (rc == 0 && t->t_flo < t->t_nfl) {
		rc = trackd_flush_txn(t, &upto);
		if (rc == SPOOL_EFULL && spool_map_grown(t->t_sp, &m)) {
			log_info("lmdb map grown: from=%lld, to=%lld, max=%lld",
			    (long long)m.mp_grew_from, (long long)m.mp_size,
			    (long long)m.mp_max);
			rc = trackd_flush_txn(t, &upto);
		}
		if (rc == 0) {
			n += upto - t->t_flo;
			t->t_flo = upto;
			t->t_export = true;
		}
		trackd_flush_verdicts(t, rc);
	}
	*rc_r = rc;
	return n;
}

size_t
trackd_flush(struct trackd *t)
{
	struct trackd_hit	*sw;
	size_t			 n;
	int			 rc;

	(void)pthread_mutex_lock(&t->t_db);
	if (t->t_nfl == 0) {
		(void)pthread_mutex_lock(&t->t_q);
		sw = t->t_fl;
		t->t_fl = t->t_pend;
		t->t_pend = sw;
		t->t_nfl = t->t_npend;
		t->t_npend = 0;
		(void)pthread_mutex_unlock(&t->t_q);
		t->t_flo = 0;
		if (t->t_nfl > 0)
			trackd_flush_bursts(t);
	}
	if (t->t_nfl == 0) {
		trackd_export(t);
		(void)pthread_mutex_unlock(&t->t_db);
		return 0;
	}
	n = trackd_flush_group(t, &rc);
	if (rc != 0)
		log_warnx("commit of %zu open(s)/click(s): %s (kept, retried)",
		    t->t_nfl - t->t_flo, spool_strerror(rc));
	else
		t->t_nfl = t->t_flo = 0;
	(void)pthread_mutex_unlock(&t->t_db);
	/* the unsubscribes that came during the last commit, before the
	 * export of the group's events */
	if (trackd_unsub_poll(t))
		trackd_flush_unsubs(t);
	else {
		(void)pthread_mutex_lock(&t->t_db);
		trackd_export(t);
		(void)pthread_mutex_unlock(&t->t_db);
	}
	return n;
}
