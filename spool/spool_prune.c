/*
 * Retention (spool.h, spool_prune): one short write transaction per call,
 * in five phases that a pass goes through in order:
 *   1. the delivery log, oldest sequence first, until an event younger than
 *      the retention: each event goes with its dlog_qid, dlog_status and
 *      dlog_issue keys, unless its message is still queued (kept, and
 *      looked at again by the next pass);
 *   2. issues, oldest date first (issue_date), never from the day before
 *      the oldest queued message on: its events still count there;
 *   3. permanent failures, scanned in key order (they carry their time);
 *   4. the first-open/click set (issue 16), in QID order, with the log's
 *      retention (the complaint index goes with its events in phase 1).
 *   5. tracking records (issue 16), in QID (arrival) order, with the
 *      delivery log's retention, unless their message is still queued.
 *   6. the X-Letter-Id index (issue 18 item 3, spool_dedupe.c), in key
 *      order, with dedupe_window.
 *   7. NXDOMAIN sightings (spool_nxdom.c), in key order, once not seen
 *      for SPOOL_NXDOM_KEEP.
 * The callback outbox is left to the callback sender (callback_max_age).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "spool.h"
#include "spool_index.h"
#include "spool_key.h"
#include "spool_rec.h"
#include "spool_track.h"

#define SPOOL_PRUNE_STOP (-30991) /* internal: this phase stops here */
#define SPOOL_PRUNE_DONE (-30992) /* internal: this phase is finished */
#define SPOOL_DAY	 86400

enum {
	SPOOL_PH_DLOG,
	SPOOL_PH_ISSUES,
	SPOOL_PH_PERMFAIL,
	SPOOL_PH_ENGAGE,
	SPOOL_PH_TRACK,
	SPOOL_PH_DEDUPE,
	SPOOL_PH_NXDOM,
	SPOOL_PH_END
};

struct spool_prune {
	struct spool_txn	     *txn;
	const struct spool_retention *rt;
	struct spool_prune_stats     *ps;
	int64_t			      now;
	size_t			      left;  /* deletions allowed */
	size_t			      looks; /* entries that may be examined */
	int64_t			      deadline_ms; /* CLOCK_MONOTONIC */
	uint64_t		      exported;	   /* events.jsonl cursor */
	char			      cutoff_date[11];
	struct spool_msg	      msg; /* scratch: it is large */
};

/* The budget or the time is spent: stop this transaction. */
static bool
spool_prune_spent(struct spool_prune *p)
{
	struct timespec ts;

	if (p->left == 0 || p->looks == 0)
		return true;
	/* the clock every 64 looks: a few hundred microseconds apart */
	if ((p->looks & 63) == 0) {
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >=
		    p->deadline_ms)
			p->looks = 0;
	}
	return p->looks == 0;
}

/* Still queued: a record with recipients not yet final (a record whose
 * recipients are all final is a leftover, not a message in the queue). */
static bool
spool_prune_queued(struct spool_txn *t, const char *qid, struct spool_msg *m)
{
	return qid[0] != '\0' && spool_msg_get(t, qid, m) == 0 &&
	    m->sm_npending > 0;
}

/* ---- phase 1: the delivery log */

static int
spool_prune_dlog_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct spool_prune   *p = arg;
	struct spool_index_ev e;
	int		      rc;

	if (spool_prune_spent(p))
		return SPOOL_PRUNE_STOP;
	p->looks--;
	rc = spool_index_parse(json, len, &e);
	if (rc == 0 && e.ie_dt >= p->now - p->rt->rt_dlog)
		return SPOOL_PRUNE_DONE;
	p->ps->ps_dlog_next = seq + 1;
	/* an undecodable event has no time: kept, like a queued one */
	if (rc != 0 || spool_prune_queued(p->txn, e.ie_qid, &p->msg)) {
		p->ps->ps_kept++;
		return 0;
	}
	if ((rc = spool_index_event_del(p->txn, &e, seq)) != 0)
		return rc;
	p->left--;
	p->ps->ps_dlog++;
	if (seq > p->exported)
		p->ps->ps_unexported++;
	return 0;
}

static int
spool_prune_dlog(struct spool_prune *p)
{
	int rc;

	if (p->rt->rt_dlog <= 0)
		return SPOOL_PRUNE_DONE;
	rc = spool_db_meta_get_u64(p->txn, "export_seq", &p->exported);
	if (rc == SPOOL_ENOTFOUND)
		p->exported = 0;
	else if (rc != 0)
		return rc;
	/* from 0 spool_log_iter starts at the oldest event */
	rc = spool_log_iter(p->txn, false, p->ps->ps_dlog_next,
	    spool_prune_dlog_cb, p);
	return rc == 0 ? SPOOL_PRUNE_DONE : rc;
}

/* ---- phase 2: issues */

static int
spool_prune_oldest_cb(const struct spool_msg *m, void *arg)
{
	*(int64_t *)arg = m->sm_arrival;
	return 1;
}

/* The date before which no issue can still be counted in. */
static int
spool_prune_issue_cutoff(struct spool_prune *p)
{
	int64_t cut = p->now - p->rt->rt_issues, oldest = INT64_MAX;
	int	rc;

	/* messages are in QID (arrival) order: the first is the oldest */
	rc = spool_msg_iter(p->txn, spool_prune_oldest_cb, &oldest);
	if (rc != 0 && rc != 1)
		return rc;
	if (oldest != INT64_MAX && oldest - SPOOL_DAY < cut)
		cut = oldest - SPOOL_DAY;
	spool_date(cut, p->cutoff_date);
	return 0;
}

static int
spool_prune_issue_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_prune *p = arg;
	struct spool_key    k;
	int		    rc;

	(void)v;
	(void)len;
	if (spool_prune_spent(p))
		return SPOOL_PRUNE_STOP;
	p->looks--;
	if (klen != 18)
		return SPOOL_ECORRUPT;
	if (memcmp(key, p->cutoff_date, 10) >= 0)
		return SPOOL_PRUNE_DONE;
	rc = spool_issue_del(p->txn, spool_be64_get(key + 10));
	if (rc == SPOOL_ENOTFOUND) {
		/* only the date entry was left */
		spool_key_init(&k);
		spool_key_raw(&k, key, klen);
		rc = spool_db_del(p->txn, SPOOL_DB_ISSUE_DATE, &k);
	}
	if (rc != 0)
		return rc;
	p->left--;
	p->ps->ps_issues++;
	return 0;
}

static int
spool_prune_issues(struct spool_prune *p)
{
	int rc;

	/* without the date index (still being built) there is nothing to walk */
	if (p->rt->rt_issues <= 0 || !spool_log_indexed(p->txn))
		return SPOOL_PRUNE_DONE;
	if ((rc = spool_prune_issue_cutoff(p)) != 0)
		return rc;
	rc = spool_db_iter(p->txn, SPOOL_DB_ISSUE_DATE, NULL, 0, false,
	    spool_prune_issue_cb, p);
	return rc == 0 ? SPOOL_PRUNE_DONE : rc;
}

/* ---- phase 3: permanent failures (record: tag 1 = when, tag 2 = reply) */

struct spool_prune_pf {
	int64_t pf_when;
};

static const struct spool_rec_field spool_prune_pf_fields[] = {
	{ .rf_tag = 1,
	    .rf_type = SPOOL_F_I64,
	    .rf_off = offsetof(struct spool_prune_pf, pf_when),
	    .rf_size = sizeof(int64_t) },
};

static int
spool_prune_pf_when(const void *v, size_t len, int64_t *when_r)
{
	struct spool_prune_pf pf = { .pf_when = 0 };
	int		      rc;

	rc = spool_rec_dec(spool_prune_pf_fields, 1, v, len, &pf, NULL, NULL);
	*when_r = pf.pf_when;
	return rc;
}

static int
spool_prune_pf_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_prune	 *p = arg;
	struct spool_prune_stats *ps = p->ps;
	struct spool_key	  k;
	int64_t			  when;
	int			  rc;

	if (klen == ps->ps_pf_len && memcmp(key, ps->ps_pf_key, klen) == 0)
		return 0; /* where the last transaction stopped */
	if (spool_prune_spent(p))
		return SPOOL_PRUNE_STOP;
	p->looks--;
	if (klen > sizeof(ps->ps_pf_key))
		return SPOOL_ECORRUPT;
	memcpy(ps->ps_pf_key, key, klen);
	ps->ps_pf_len = klen;
	if (spool_prune_pf_when(v, len, &when) != 0 ||
	    when >= p->now - p->rt->rt_permfail)
		return 0;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	if ((rc = spool_db_del(p->txn, SPOOL_DB_PERMFAIL, &k)) != 0)
		return rc;
	p->left--;
	ps->ps_permfail++;
	return 0;
}

static int
spool_prune_permfail(struct spool_prune *p)
{
	struct spool_key k;
	int		 rc;

	if (p->rt->rt_permfail <= 0)
		return SPOOL_PRUNE_DONE;
	spool_key_init(&k);
	spool_key_raw(&k, p->ps->ps_pf_key, p->ps->ps_pf_len);
	rc = spool_db_iter(p->txn, SPOOL_DB_PERMFAIL, &k, 0, false,
	    spool_prune_pf_cb, p);
	return rc == 0 ? SPOOL_PRUNE_DONE : rc;
}

/* ---- phase 4: the first-open/click set (spool_engage.c) */

static int
spool_prune_engage(struct spool_prune *p)
{
	size_t n = 0;
	int    rc;

	if (p->rt->rt_dlog <= 0)
		return SPOOL_PRUNE_DONE;
	rc = spool_engage_prune(p->txn, p->now - p->rt->rt_dlog, p->left, &n);
	p->left -= n;
	p->ps->ps_engage += n;
	if (rc != 0)
		return rc;
	return p->left == 0 ? SPOOL_PRUNE_STOP : SPOOL_PRUNE_DONE;
}

/* ---- phase 5: tracking records (key: the QID, which holds the arrival) */

static int
spool_prune_track_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_prune	 *p = arg;
	struct spool_prune_stats *ps = p->ps;
	char			  qid[QID_SIZE];
	int			  rc;

	(void)v;
	(void)len;
	if (klen == QID_SIZE &&
	    strcmp((const char *)key, ps->ps_track_qid) == 0)
		return 0; /* where the last transaction stopped */
	if (spool_prune_spent(p))
		return SPOOL_PRUNE_STOP;
	p->looks--;
	if (klen != QID_SIZE || key[QID_LEN] != '\0' ||
	    !qid_ok((const char *)key))
		return SPOOL_ECORRUPT;
	memcpy(qid, key, QID_SIZE);
	if ((int64_t)(qid_time_us(qid) / 1000000) >= p->now - p->rt->rt_dlog)
		return SPOOL_PRUNE_DONE;
	memcpy(ps->ps_track_qid, qid, QID_SIZE);
	if (spool_prune_queued(p->txn, qid, &p->msg))
		return 0; /* its recipients may still open and click */
	if ((rc = spool_track_del(p->txn, qid)) != 0)
		return rc;
	p->left--;
	ps->ps_track++;
	return 0;
}

static int
spool_prune_track(struct spool_prune *p)
{
	struct spool_key k;
	int		 rc;

	if (p->rt->rt_dlog <= 0)
		return SPOOL_PRUNE_DONE;
	spool_key_init(&k);
	if (p->ps->ps_track_qid[0] != '\0')
		spool_key_str(&k, p->ps->ps_track_qid);
	rc = spool_db_iter(p->txn, SPOOL_DB_TRACK, &k, 0, false,
	    spool_prune_track_cb, p);
	return rc == 0 ? SPOOL_PRUNE_DONE : rc;
}

/* ---- phase 6: the X-Letter-Id index (issue 18 item 3) */

static int
spool_prune_dedupe(struct spool_prune *p)
{
	size_t n = 0;
	bool   done;
	int    rc;

	if (p->rt->rt_dedupe <= 0)
		return SPOOL_PRUNE_DONE;
	rc = spool_dedupe_prune(p->txn, p->now - p->rt->rt_dedupe,
	    &p->ps->ps_dedupe_cur, p->left, &n, &done);
	p->left -= n;
	p->ps->ps_dedupe += n;
	if (rc != 0)
		return rc;
	return done ? SPOOL_PRUNE_DONE : SPOOL_PRUNE_STOP;
}

/* ---- phase 7: NXDOMAIN sightings (deliverd's nxdomain_confirm) */

static int
spool_prune_nxdom(struct spool_prune *p)
{
	size_t n = 0;
	bool   done;
	int    rc;

	rc = spool_nxdom_prune(p->txn, p->now - SPOOL_NXDOM_KEEP,
	    &p->ps->ps_nxdom_cur, p->left, &n, &done);
	p->left -= n;
	p->ps->ps_nxdom += n;
	if (rc != 0)
		return rc;
	return done ? SPOOL_PRUNE_DONE : SPOOL_PRUNE_STOP;
}

/* ---- one transaction */

static int
spool_prune_phases(struct spool_prune *p)
{
	struct spool_prune_stats *ps = p->ps;
	int			  rc = 0;

	while (ps->ps_phase < SPOOL_PH_END && !spool_prune_spent(p)) {
		switch (ps->ps_phase) {
		case SPOOL_PH_DLOG:
			rc = spool_prune_dlog(p);
			break;
		case SPOOL_PH_ISSUES:
			rc = spool_prune_issues(p);
			break;
		case SPOOL_PH_ENGAGE:
			rc = spool_prune_engage(p);
			break;
		case SPOOL_PH_TRACK:
			rc = spool_prune_track(p);
			break;
		case SPOOL_PH_DEDUPE:
			rc = spool_prune_dedupe(p);
			break;
		case SPOOL_PH_NXDOM:
			rc = spool_prune_nxdom(p);
			break;
		default:
			rc = spool_prune_permfail(p);
			break;
		}
		if (rc == SPOOL_PRUNE_STOP)
			return 0;
		if (rc != SPOOL_PRUNE_DONE)
			return rc;
		ps->ps_phase++;
	}
	return 0;
}

int
spool_prune(struct spool *sp, int64_t now, const struct spool_retention *rt,
    size_t budget, struct spool_prune_stats *ps)
{
	struct spool_prune	 p = { .rt = rt, .ps = ps, .now = now };
	struct spool_prune_stats saved = *ps;
	struct timespec		 ts;
	int			 rc;

	if (budget == 0 || budget > SIZE_MAX / 4)
		return EINVAL;
	p.left = budget;
	p.looks = budget * 4;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	p.deadline_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
	    SPOOL_PRUNE_TXN_MS;
	if ((rc = spool_begin(sp, true, &p.txn)) != 0)
		return rc;
	if ((rc = spool_prune_phases(&p)) != 0) {
		spool_abort(&p.txn);
		*ps = saved; /* nothing of this transaction happened */
		return rc;
	}
	if ((rc = spool_commit(&p.txn)) != 0) {
		*ps = saved;
		return rc;
	}
	ps->ps_txns++;
	ps->ps_more = ps->ps_phase < SPOOL_PH_END;
	return 0;
}
