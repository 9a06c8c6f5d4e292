/*
 * The callback sender, a child of the scheduler and the only file that
 * includes <curl/curl.h> (STYLE L2). It drains the LMDB callback outbox,
 * which holds one key range per account: per account, at most
 * callback_batch_max events per POST to the account's callback URL
 * ({"events":[...]} or a JSON stream); an event leaves the outbox only
 * after a 2xx. Each account is served on its own: POSTs of different
 * accounts run at the same time (libcurl multi), and an account that
 * failed backs off from callback_retry_min, doubling, up to
 * callback_retry_max, and is skipped in between, so a dead or slow
 * receiver delays only its own account. Entries older than
 * callback_max_age are dropped with a log line and a counter.
 *
 * On SIGTERM (deliverd stopping, or the scheduler replacing us after a
 * reload) no new POST starts, and the POSTs in flight are waited for, up
 * to CB_DRAIN_MS: a receiver that already has a batch gets its answer
 * recorded, so the batch is not posted a second time by our successor.
 * Only a POST still running at the deadline, or when the scheduler is
 * gone (a successor may start at once), is abandoned to the outbox.
 */
#include "config.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "ev.h"
#include "landlock.h"
#include "log.h"
#include "sig.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spool_cbsig.h"
#include "xmem.h"

#define CB_ACCOUNTS_MAX 64 /* accounts looked at per round (round-robin) */
#define CB_INFLIGHT_MAX 64 /* POSTs at once */
#define CB_IDLE_MS	500
#define CB_SOCKETS_MAX \
	(4 * CB_INFLIGHT_MAX) /* libcurl's, watched by the loop */
#define CB_DROP_CHUNK 1000    /* outbox deletions per write transaction */
#define CB_DROP_TXNS  100     /* transactions per account per pass */
/* the wait for POSTs in flight when stopping: inside the scheduler's
 * SCHED_STOP_GRACE_MS (10 s), which ends in SIGKILL */
#define CB_DRAIN_MS   8000

/* An account's state; kept while it has a POST, a back-off or a wait. */
struct deliverd_cb_acct {
	char		   login[SPOOL_LOGIN_MAX];
	int64_t		   next_ms;  /* back-off: not before */
	int64_t		   delay_s;  /* current back-off, 0 = none */
	int64_t		   first_ms; /* a short batch first seen (batch_wait) */
	CURL		  *easy;     /* a POST in flight */
	struct curl_slist *hdr;
	struct buf	   doc; /* its body */
	uint64_t	  *seq; /* its events */
	size_t		   n;
	bool		   live; /* seen with entries in the last listing */
	/* seq[0..n) were accepted (2xx) but their deletion failed: only the
	 * deletion is retried (with back-off), they are not posted again */
	bool undeleted;
};

struct deliverd_cb_collect {
	struct deliverd_cb_acct *a;
	size_t			 max;
	enum spool_cb_format	 fmt;
	struct buf		 body; /* events separated by '\n' */
};

struct cb {
	struct conf		 *cf;
	struct spool		 *sp;
	CURLM			 *multi;
	struct deliverd_cb_acct **acct;
	size_t			  nacct;
	size_t			  ninflight;
	char	   cursor[SPOOL_LOGIN_MAX]; /* where the next listing starts */
	struct ev *ev; /* libcurl's sockets and timer, the rounds */
	struct ev_timer curl_timer;
	struct ev_timer round;
	pid_t		parent;	     /* the scheduler */
	bool		draining;    /* stopping: no new POST */
	int64_t		drain_until; /* ev_clock_ms() */
};

static struct deliverd_cb_acct *
deliverd_cb_find(struct cb *c, const char *login, bool create)
{
	struct deliverd_cb_acct *a;
	size_t			 i;

	for (i = 0; i < c->nacct; i++)
		if (strcmp(c->acct[i]->login, login) == 0)
			return c->acct[i];
	if (!create)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	(void)str_copy(a->login, sizeof(a->login), login);
	c->acct = xreallocarray(c->acct, c->nacct + 1, sizeof(*c->acct));
	c->acct[c->nacct++] = a;
	return a;
}

/*
 * Forgets the state of accounts that need none: no POST, no back-off, no
 * batch wait; after a listing of every account (full), also of those that
 * have no entries left. The state is bounded by the accounts with entries.
 */
static void
deliverd_cb_forget_idle(struct cb *c, bool full)
{
	size_t i = 0;

	while (i < c->nacct) {
		struct deliverd_cb_acct *a = c->acct[i];

		if (a->easy != NULL || (a->undeleted && (!full || a->live)) ||
		    (!full && (a->delay_s != 0 || a->first_ms != 0)) ||
		    (full && a->live &&
			(a->delay_s != 0 || a->first_ms != 0))) {
			i++;
			continue;
		}
		free(a->seq); /* an accepted batch whose entries are gone */
		free(a);
		c->acct[i] = c->acct[--c->nacct];
	}
}

/*
 * Drops an account's entries: those older than `before` (callback_max_age),
 * or all of them (before = INT64_MAX: the account or its URL is gone), in
 * short write transactions; one log line per account per pass.
 */
static void
deliverd_cb_drop(struct cb *c, const char *login, int64_t before,
    const char *why)
{
	struct spool_txn *txn = NULL;
	uint64_t	  tot_a = 0, tot = 0;
	size_t		  n, dropped = 0, k;
	int		  rc = 0;

	for (k = 0; k < CB_DROP_TXNS && !sig_stopping(); k++) {
		n = 0;
		if ((rc = spool_begin(c->sp, true, &txn)) != 0 ||
		    (rc = spool_outbox_drop_old(txn, login, before,
			 CB_DROP_CHUNK, &n)) != 0 ||
		    (n > 0 &&
			((rc = spool_outbox_dropped(txn, login, &tot_a)) != 0 ||
			    (rc = spool_outbox_dropped(txn, NULL, &tot)) !=
				0)) ||
		    (rc = spool_commit(&txn)) != 0)
			break;
		dropped += n;
		if (n < CB_DROP_CHUNK)
			break;
	}
	spool_abort(&txn);
	if (rc != 0)
		log_warnx("callback %s: dropping from the outbox: %s", login,
		    spool_strerror(rc));
	if (dropped > 0)
		log_info("callback %s: dropped %zu event(s) %s; dropped so "
			 "far: %llu for %s, "
			 "%llu in all",
		    login, dropped, why, (unsigned long long)tot_a, login,
		    (unsigned long long)tot);
}

static int
deliverd_cb_collect_cb(uint64_t seq, int64_t dt, const char *json, size_t len,
    void *arg)
{
	struct deliverd_cb_collect *k = arg;
	struct deliverd_cb_acct	   *a = k->a;

	(void)dt;
	if (a->n == k->max)
		return 1;
	/* compact JSON holds no raw LF: '\n' separates, JSON arrays get ',' */
	if ((k->body.len > 0 && buf_putc(&k->body, '\n') == -1) ||
	    buf_append(&k->body, json, len) == -1)
		return 1; /* a full body: post what we have */
	a->seq[a->n++] = seq;
	return 0;
}

/* The POST body for the collected events. */
static void
deliverd_cb_doc(struct deliverd_cb_acct *a, struct deliverd_cb_collect *k)
{
	size_t i;
	char  *p;

	buf_init(&a->doc, k->body.len + 64);
	if (k->fmt == SPOOL_CB_STREAM) {
		(void)buf_append(&a->doc, k->body.data, k->body.len);
		(void)buf_putc(&a->doc, '\n');
		return;
	}
	(void)buf_puts(&a->doc, "{\"events\":[");
	i = a->doc.len;
	(void)buf_append(&a->doc, k->body.data, k->body.len);
	for (p = a->doc.data + i;
	     (p = memchr(p, '\n', a->doc.len - (size_t)(p - a->doc.data))) !=
	     NULL;)
		*p = ',';
	(void)buf_puts(&a->doc, "]}");
}

static size_t
deliverd_cb_discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static void deliverd_cb_backoff(struct cb *, struct deliverd_cb_acct *);
static void deliverd_cb_retry_delete(struct cb *, struct deliverd_cb_acct *);

/*
 * The request's headers. With secrets, X-Smtpgate-Signature signs the
 * exact body bytes with t = now: each attempt (a retry rebuilds the
 * request) carries a fresh t. Signing fails only when OpenSSL does: the
 * POST is not made unsigned, it waits for the next round. NULL then.
 */
static struct curl_slist *
deliverd_cb_headers(struct deliverd_cb_acct *a, const struct spool_account *sa)
{
	struct curl_slist *h, *h2;
	char		   sig[SPOOL_CBSIG_HDR_MAX];

	if (spool_cbsig_header(sa, deliverd_now(), a->doc.data, a->doc.len, sig,
		sizeof(sig)) == -1) {
		log_warnx("callback %s: cannot compute the signature (OpenSSL)",
		    a->login);
		return NULL;
	}
	if ((h = curl_slist_append(NULL, "Content-Type: application/json")) ==
		NULL ||
	    sig[0] == '\0')
		return h;
	if ((h2 = curl_slist_append(h, sig)) == NULL)
		curl_slist_free_all(h);
	return h2;
}

/* Starts the POST of a->doc to the account's URL. */
static void
deliverd_cb_start_post(struct cb *c, struct deliverd_cb_acct *a,
    const struct spool_account *sa)
{
	CURL *e;

	if ((e = curl_easy_init()) == NULL) {
		log_warnx("callback %s: libcurl: out of handles", a->login);
		return;
	}
	if ((a->hdr = deliverd_cb_headers(a, sa)) == NULL) {
		curl_easy_cleanup(e);
		deliverd_cb_backoff(c, a);
		return;
	}
	(void)curl_easy_setopt(e, CURLOPT_URL, sa->ac_callback_url);
	(void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->hdr);
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->doc.data);
	(void)curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)a->doc.len);
	(void)curl_easy_setopt(e, CURLOPT_TIMEOUT,
	    (long)c->cf->cf_callback_timeout);
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT,
	    (long)c->cf->cf_callback_timeout);
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_USERAGENT,
	    "smtpgate/" PACKAGE_VERSION);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, deliverd_cb_discard);
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(e, CURLOPT_PRIVATE, a);
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		log_warnx("callback %s: libcurl: cannot start a transfer",
		    a->login);
		curl_easy_cleanup(e);
		curl_slist_free_all(a->hdr);
		a->hdr = NULL;
		return;
	}
	a->easy = e;
	c->ninflight++;
}

/*
 * Reads up to callback_batch_max of an account's events and its URL, and
 * starts their POST. The account (or its URL) gone: its events are dropped.
 */
static void
deliverd_cb_serve(struct cb *c, struct deliverd_cb_acct *a, int64_t now_ms)
{
	struct deliverd_cb_collect k = { .a = a,
		.max = (size_t)c->cf->cf_callback_batch_max };
	struct spool_txn	  *txn = NULL;
	struct spool_account	  *sa = xmalloc(sizeof(*sa));
	int64_t wait = (int64_t)c->cf->cf_callback_batch_wait * 1000;
	int	rc;

	buf_init(&k.body, 256 * 1024 * 1024);
	a->seq = xcalloc(k.max, sizeof(*a->seq));
	a->n = 0;
	if ((rc = spool_begin(c->sp, false, &txn)) != 0)
		goto out;
	if ((rc = spool_account_get(txn, a->login, sa)) != 0 ||
	    sa->ac_callback_url[0] == '\0') {
		spool_abort(&txn);
		if (rc == 0 || rc == SPOOL_ENOTFOUND)
			deliverd_cb_drop(c, a->login, INT64_MAX,
			    "(no account or callback URL)");
		goto out;
	}
	k.fmt = sa->ac_callback_format;
	rc = spool_outbox_iter(txn, a->login, 0, deliverd_cb_collect_cb, &k);
	spool_abort(&txn);
	if ((rc != 0 && rc != 1) || a->n == 0)
		goto out;
	/* a short batch waits up to callback_batch_wait for company */
	if (a->n < k.max && wait > 0) {
		if (a->first_ms == 0)
			a->first_ms = now_ms;
		if (now_ms - a->first_ms < wait)
			goto out;
	}
	a->first_ms = 0;
	deliverd_cb_doc(a, &k);
	deliverd_cb_start_post(c, a, sa);
out:
	if (rc != 0 && rc != 1 && rc != SPOOL_ENOTFOUND)
		log_warnx("callback %s: outbox: %s", a->login,
		    spool_strerror(rc));
	if (a->easy == NULL) {
		free(a->seq);
		a->seq = NULL;
		a->n = 0;
		buf_release(&a->doc);
	}
	buf_release(&k.body);
	freezero(sa, sizeof(*sa)); /* its callback secrets */
}

/*
 * One listing: the accounts with entries, round-robin from the cursor, at
 * most CB_ACCOUNTS_MAX, each with its oldest entry's time. *full_r: every
 * account with entries is in the list.
 */
static size_t
deliverd_cb_list(struct cb *c, char (*login)[SPOOL_LOGIN_MAX], int64_t *oldest,
    bool *full_r)
{
	struct spool_txn *txn = NULL;
	const char	 *after = c->cursor;
	size_t		  n = 0;
	bool		  wrapped = c->cursor[0] == '\0';
	int		  rc;

	*full_r = false;
	if ((rc = spool_begin(c->sp, false, &txn)) != 0) {
		log_warnx("outbox: %s", spool_strerror(rc));
		return 0;
	}
	while (n < CB_ACCOUNTS_MAX) {
		rc = spool_outbox_next_account(txn, after, login[n],
		    &oldest[n]);
		if (rc == SPOOL_ENOTFOUND && !wrapped) {
			wrapped = true; /* on from the first */
			after = "";
			continue;
		}
		if (rc == SPOOL_ENOTFOUND ||
		    (rc == 0 && n > 0 && strcmp(login[n], login[0]) == 0)) {
			*full_r = true; /* full circle */
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		after = login[n++];
	}
	if (rc != 0)
		log_warnx("outbox: %s", spool_strerror(rc));
	spool_abort(&txn);
	if (n > 0)
		(void)str_copy(c->cursor, sizeof(c->cursor), login[n - 1]);
	return n;
}

/* One round: ages out and starts POSTs for the accounts that may have one. */
static void
deliverd_cb_round(struct cb *c)
{
	char(*login)[SPOOL_LOGIN_MAX] = xcalloc(CB_ACCOUNTS_MAX,
	    SPOOL_LOGIN_MAX);
	int64_t oldest[CB_ACCOUNTS_MAX], now = deliverd_now(),
					 now_ms = ev_clock_ms();
	int64_t before = now - (int64_t)c->cf->cf_callback_max_age;
	struct deliverd_cb_acct *a;
	size_t			 i, n;
	bool			 full;
	char			 why[64];

	for (i = 0; i < c->nacct; i++)
		c->acct[i]->live = false;
	n = deliverd_cb_list(c, login, oldest, &full);
	for (i = 0; i < n && !sig_stopping(); i++) {
		a = deliverd_cb_find(c, login[i], true);
		a->live = true;
		if (oldest[i] < before && a->easy == NULL) {
			(void)snprintf(why, sizeof(why),
			    "older than callback_max_age (%llds)",
			    (long long)c->cf->cf_callback_max_age);
			deliverd_cb_drop(c, a->login, before, why);
		}
		if (a->easy != NULL || a->next_ms > now_ms)
			continue; /* posting or backing off */
		if (a->undeleted)
			deliverd_cb_retry_delete(c, a);
		else if (c->ninflight < CB_INFLIGHT_MAX)
			deliverd_cb_serve(c, a, now_ms);
	}
	free(login);
	deliverd_cb_forget_idle(c, full);
}

static int
deliverd_cb_delete_once(struct cb *c, struct deliverd_cb_acct *a)
{
	struct spool_txn *txn = NULL;
	size_t		  i;
	int		  rc;

	if ((rc = spool_begin(c->sp, true, &txn)) != 0)
		return rc;
	for (i = 0; i < a->n; i++)
		if ((rc = spool_outbox_del(txn, a->login, a->seq[i])) != 0 &&
		    rc != SPOOL_ENOTFOUND)
			break;
	if (rc == 0 || rc == SPOOL_ENOTFOUND) /* spoolctl callbacks status */
		rc = spool_cb_state_note(txn, a->login, deliverd_now(), NULL);
	if ((rc != 0 && rc != SPOOL_ENOTFOUND) ||
	    (rc = spool_commit(&txn)) != 0)
		spool_abort(&txn);
	return rc;
}

/* A deletion can fill the map too (copy-on-write): grow and retry once.
 * 0, or the error (logged). */
static int
deliverd_cb_delete(struct cb *c, struct deliverd_cb_acct *a)
{
	struct spool_map m;
	int		 rc;

	rc = deliverd_cb_delete_once(c, a);
	if (rc == SPOOL_EFULL && spool_map_grown(c->sp, &m)) {
		log_info(
		    "lmdb map grown: from=%lld, to=%lld, max=%lld; retrying",
		    (long long)m.mp_grew_from, (long long)m.mp_size,
		    (long long)m.mp_max);
		rc = deliverd_cb_delete_once(c, a);
	}
	if (rc != 0)
		log_warnx("callback %s: outbox delete: %s (%zu accepted "
			  "event(s): the deletion is retried, they are not "
			  "posted again)",
		    a->login, spool_strerror(rc), a->n);
	spool_map_info(c->sp, &m);
	if (m.mp_readers > 0)
		log_info("cleared %u stale lmdb reader slot(s)", m.mp_readers);
	return rc;
}

/* The last error, for spoolctl callbacks status: one small transaction
 * per failed POST (at most one per back-off step). */
static void
deliverd_cb_note_err(struct cb *c, struct deliverd_cb_acct *a, const char *why)
{
	struct spool_txn *txn = NULL;
	int		  rc;

	if ((rc = spool_begin(c->sp, true, &txn)) == 0 &&
	    (rc = spool_cb_state_note(txn, a->login, deliverd_now(), why)) == 0)
		rc = spool_commit(&txn);
	spool_abort(&txn);
	if (rc != 0)
		log_warnx("callback %s: recording the error: %s", a->login,
		    spool_strerror(rc));
}

static void
deliverd_cb_backoff(struct cb *c, struct deliverd_cb_acct *a)
{
	if (a->delay_s == 0)
		a->delay_s = c->cf->cf_callback_retry_min;
	else if ((a->delay_s *= 2) > c->cf->cf_callback_retry_max)
		a->delay_s = c->cf->cf_callback_retry_max;
	a->next_ms = ev_clock_ms() + a->delay_s * 1000;
	log_info("callback %s: next try in %llds", a->login,
	    (long long)a->delay_s);
}

/* A POST is over: 2xx deletes its events, anything else backs off. */
static void
deliverd_cb_done(struct cb *c, CURL *e, CURLcode cc)
{
	struct deliverd_cb_acct *a;
	char			*priv = NULL, why[128];
	long			 code = 0;

	(void)curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
	a = (struct deliverd_cb_acct *)(void *)priv;
	if (cc == CURLE_OK)
		(void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	if (cc == CURLE_OK && code >= 200 && code < 300) {
		log_debug("callback %s: %zu events, HTTP %ld", a->login, a->n,
		    code);
		if (deliverd_cb_delete(c, a) == 0) {
			a->delay_s = 0;
			a->next_ms = 0;
		} else {
			a->undeleted = true; /* a->seq stays */
			deliverd_cb_backoff(c, a);
		}
	} else if (cc != CURLE_OK)
		log_warnx("callback %s: %zu events not accepted: %s", a->login,
		    a->n, curl_easy_strerror(cc));
	else
		log_warnx("callback %s: %zu events not accepted: HTTP %ld",
		    a->login, a->n, code);
	if (!(cc == CURLE_OK && code >= 200 && code < 300)) {
		if (cc != CURLE_OK)
			(void)snprintf(why, sizeof(why), "%s",
			    curl_easy_strerror(cc));
		else
			(void)snprintf(why, sizeof(why), "HTTP %ld", code);
		deliverd_cb_note_err(c, a, why);
		deliverd_cb_backoff(c, a);
	}
	(void)curl_multi_remove_handle(c->multi, e);
	curl_easy_cleanup(e);
	curl_slist_free_all(a->hdr);
	a->hdr = NULL;
	a->easy = NULL;
	buf_release(&a->doc);
	if (!a->undeleted) {
		free(a->seq);
		a->seq = NULL;
		a->n = 0;
	}
	c->ninflight--;
}

/* The events the receiver accepted are deleted again, not posted again;
 * the back-off spaces the attempts (and their log lines). */
static void
deliverd_cb_retry_delete(struct cb *c, struct deliverd_cb_acct *a)
{
	if (deliverd_cb_delete(c, a) != 0) {
		deliverd_cb_backoff(c, a);
		return;
	}
	log_info("callback %s: %zu accepted event(s) left the outbox, "
		 "without another POST",
	    a->login, a->n);
	a->undeleted = false;
	a->delay_s = 0;
	a->next_ms = 0;
	free(a->seq);
	a->seq = NULL;
	a->n = 0;
}

/*
 * The loop (common/ev.c) drives libcurl through its socket interface:
 * libcurl says which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to call it back (CURLMOPT_TIMERFUNCTION); a listing round runs every
 * CB_IDLE_MS, and at once when a POST finished.
 */

/* Handles the POSTs that finished; a round follows at once if any did. */
static void
deliverd_cb_finished(struct cb *c)
{
	CURLMsg *m;
	size_t	 done = 0;
	int	 left;

	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		deliverd_cb_done(c, m->easy_handle, m->data.result);
		done++;
	}
	if (done > 0)
		(void)ev_timer_arm(c->ev, &c->round, 0, 0);
	if (c->draining && c->ninflight == 0)
		ev_break(c->ev);
}

static void
deliverd_cb_on_sock(struct ev *e, int fd, unsigned re, void *arg)
{
	struct cb *c = arg;
	int	   running;

	(void)e;
	(void)curl_multi_socket_action(c->multi, fd,
	    ((re & EV_READ) ? CURL_CSELECT_IN : 0) |
		((re & EV_WRITE) ? CURL_CSELECT_OUT : 0) |
		((re & EV_HUP) ? CURL_CSELECT_ERR : 0),
	    &running);
	deliverd_cb_finished(c);
}

static void
deliverd_cb_on_curl_timer(struct ev *e, struct ev_timer *t, void *arg)
{
	struct cb *c = arg;
	int	   running;

	(void)e;
	(void)t;
	(void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	deliverd_cb_finished(c);
}

static int
deliverd_cb_sock(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *socketp)
{
	struct cb *c = userp;
	unsigned   want;

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		ev_fd_del(c->ev, fd);
		return 0;
	}
	want = (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? EV_READ : 0) |
	    (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? EV_WRITE : 0);
	if (ev_fd_set(c->ev, fd, want) == 0 ||
	    ev_fd_add(c->ev, fd, want, deliverd_cb_on_sock, c) == 0)
		return 0;
	log_warn("callback: watching a socket");
	return -1; /* libcurl fails that transfer: it is retried later */
}

static int
deliverd_cb_timer(CURLM *multi, long ms, void *userp)
{
	struct cb *c = userp;

	(void)multi;
	if (ms < 0)
		ev_timer_stop(c->ev, &c->curl_timer);
	else if (ev_timer_arm(c->ev, &c->curl_timer, ms, 0) == -1)
		return -1;
	return 0;
}

/* Stopping: the POSTs in flight may finish (bounded); nothing new starts. */
static void
deliverd_cb_drain(struct cb *c)
{
	int64_t left;

	if (!c->draining) {
		c->draining = true;
		c->drain_until = ev_clock_ms() + CB_DRAIN_MS;
		if (c->ninflight > 0)
			log_info("stopping: waiting up to %ds for %zu callback "
				 "POST(s) in flight",
			    CB_DRAIN_MS / 1000, c->ninflight);
	}
	left = c->drain_until - ev_clock_ms();
	if (c->ninflight == 0 || left <= 0 || getppid() != c->parent) {
		ev_break(c->ev);
		return;
	}
	(void)ev_timer_arm(c->ev, &c->round,
	    left < CB_IDLE_MS ? left : CB_IDLE_MS, 0);
}

static void
deliverd_cb_on_round(struct ev *e, struct ev_timer *t, void *arg)
{
	struct cb *c = arg;

	if (getppid() != c->parent) {
		ev_break(e); /* a successor may start: it owns the outbox */
		return;
	}
	if (sig_stopping() || c->draining) {
		deliverd_cb_drain(c);
		return;
	}
	deliverd_cb_round(c);
	(void)ev_timer_arm(e, t, CB_IDLE_MS, 0);
}

static void
deliverd_cb_on_signal(struct ev *e, unsigned sigs, void *arg)
{
	struct cb *c = arg;

	(void)e;
	(void)sigs;
	if (sig_stopping())
		deliverd_cb_drain(c);
}

static void
deliverd_cb_run(struct cb *c)
{
	/* the self-pipe and libcurl's sockets; its timer and the rounds */
	if ((c->ev = ev_new(1 + CB_SOCKETS_MAX, 2)) == NULL ||
	    ev_signal(c->ev, deliverd_cb_on_signal, c) == -1)
		log_fatal("ev");
	ev_timer_init(&c->curl_timer, deliverd_cb_on_curl_timer, c);
	ev_timer_init(&c->round, deliverd_cb_on_round, c);
	(void)curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION,
	    deliverd_cb_sock);
	(void)curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	(void)curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION,
	    deliverd_cb_timer);
	(void)curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	(void)ev_timer_arm(c->ev, &c->round, 0, 0);
	if (sig_stopping())
		deliverd_cb_drain(c);
	if (!c->draining || c->ninflight > 0)
		ev_run(c->ev);
}

/* Set up: from here on the sender, which parses the answers of customers'
 * servers through libcurl, opens nothing of the spool but the database
 * (already open, read-write: the outbox deletions): not keys/, not db/'s
 * key files, not queue/ (landlock.c). libcurl's CA bundle and the
 * resolver's files are beneath /etc and /usr; it writes no other file
 * (no event_log, no trigger: it talks to no PostgreSQL either, cluster
 * mode journals in LMDB). A reload replaces the sender with a new one
 * (deliverd_sched_finish_children), which opens the spool afresh. */
static void
deliverd_cb_confine(const struct conf *cf)
{
	char			   data[PATH_MAX], lock[PATH_MAX], why[512];
	int			   rc;
	const struct landlock_path paths[] = {
		{ data, LANDLOCK_READ | LANDLOCK_WRITE },
		{ lock, LANDLOCK_READ | LANDLOCK_WRITE },
	};

	if (snprintf(data, sizeof(data), "%s/db/data.mdb", cf->cf_spool_dir) >=
		(int)sizeof(data) ||
	    snprintf(lock, sizeof(lock), "%s/db/lock.mdb", cf->cf_spool_dir) >=
		(int)sizeof(lock))
		log_fatalx("confining the callback sender: spool_dir too long");
	if ((rc = landlock_confine(cf->cf_spool_dir, paths,
		 sizeof(paths) / sizeof(paths[0]), "the callback sender", why,
		 sizeof(why))) == -1)
		log_fatalx("confining the callback sender: %s", why);
	if (rc == 0)
		log_warnx("callback sender not confined: %s", why);
	else
		log_debug("confined (%s)", why);
}

void
deliverd_callback_main(struct conf *cf)
{
	struct cb c;
	size_t	  i;
	int	  rc;

	log_set_procname("deliverd/callback");
	deliverd_key_forget();	       /* it never signs */
	(void)signal(SIGHUP, SIG_IGN); /* the scheduler restarts us instead */
	memset(&c, 0, sizeof(c));
	c.cf = cf;
	c.parent = getppid();
	if ((rc = spool_open(cf->cf_spool_dir, cf->cf_lmdb_map_size,
		 cf->cf_lmdb_map_max, SPOOL_CLUSTER_IF(cf->cf_cluster_dsn),
		 &c.sp)) != 0)
		log_fatalx("spool_open %s: %s", cf->cf_spool_dir,
		    spool_strerror(rc));
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
	    (c.multi = curl_multi_init()) == NULL)
		log_fatalx("libcurl initialisation failed");
	deliverd_cb_confine(cf);
	deliverd_cb_run(&c);
	if (c.ninflight > 0)
		log_warnx(
		    "stopping with %zu callback POST(s) unanswered: their "
		    "events stay in the outbox and are posted again",
		    c.ninflight);
	for (i = 0; i < c.nacct; i++) {
		if (c.acct[i]->undeleted) /* accepted: one last try */
			(void)deliverd_cb_delete(&c, c.acct[i]);
		if (c.acct[i]->easy != NULL) {
			(void)curl_multi_remove_handle(c.multi,
			    c.acct[i]->easy);
			curl_easy_cleanup(c.acct[i]->easy);
		}
	}
	(void)curl_multi_cleanup(c.multi);
	curl_global_cleanup();
	ev_free(&c.ev);
	spool_close(&c.sp);
	_exit(0);
}
