/*
 * The callback sender, a child of the scheduler and the only file that
 * includes <curl/curl.h> (STYLE L2). It drains the LMDB callback outbox:
 * per account, at most callback_batch_max events per POST to the
 * account's callback URL ({"events":[...]} or a JSON stream); an event
 * leaves the outbox only after a 2xx. Failures back off per account from
 * callback_retry_min, doubling, up to callback_retry_max.
 */
#include "config.h"

/* before <signal.h>: its si_fd macro collides with struct spool_in */
#include "spool.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "log.h"
#include "sig.h"
#include "spool.h"
#include "xmem.h"

#define CB_ACCOUNTS_MAX		64	/* accounts served per round */
#define CB_SCAN_MAX		200000	/* outbox entries looked at per round */
#define CB_IDLE_MS		500

struct deliverd_cb_acct {
	char		 login[SPOOL_LOGIN_MAX];
	int64_t		 next_ms;	/* back-off: not before */
	int64_t		 delay_s;	/* current back-off, 0 = none */
	int64_t		 first_ms;	/* a short batch first seen (batch_wait) */
};

struct deliverd_cb_batch {
	char		 login[SPOOL_LOGIN_MAX];
	uint64_t	*seq;
	size_t		 n;
	struct buf	 body;
	char		 url[SPOOL_URL_MAX];
	enum spool_cb_format fmt;
	bool		 drop;		/* the account or its URL is gone */
};

struct cb {
	struct conf	*cf;
	struct spool	*sp;
	CURL		*curl;
	struct deliverd_cb_acct	*acct;
	size_t		 nacct;
	struct deliverd_cb_batch	 b[CB_ACCOUNTS_MAX];
	size_t		 nb;
	size_t		 scanned;
	int64_t		 now_ms;
};

static struct deliverd_cb_acct *
deliverd_cb_acct(struct cb *c, const char *login)
{
	size_t	 i;

	for (i = 0; i < c->nacct; i++)
		if (strcmp(c->acct[i].login, login) == 0)
			return &c->acct[i];
	c->acct = xreallocarray(c->acct, c->nacct + 1, sizeof(*c->acct));
	memset(&c->acct[c->nacct], 0, sizeof(c->acct[0]));
	(void)str_copy(c->acct[c->nacct].login, SPOOL_LOGIN_MAX, login);
	return &c->acct[c->nacct++];
}

static struct deliverd_cb_batch *
deliverd_cb_batch(struct cb *c, const char *login)
{
	size_t	 i;

	for (i = 0; i < c->nb; i++)
		if (strcmp(c->b[i].login, login) == 0)
			return &c->b[i];
	if (c->nb == CB_ACCOUNTS_MAX)
		return NULL;
	memset(&c->b[c->nb], 0, sizeof(c->b[0]));
	(void)str_copy(c->b[c->nb].login, SPOOL_LOGIN_MAX, login);
	c->b[c->nb].seq = xcalloc((size_t)c->cf->cf_callback_batch_max, sizeof(uint64_t));
	buf_init(&c->b[c->nb].body, 256 * 1024 * 1024);
	return &c->b[c->nb++];
}

static int
deliverd_cb_outbox_cb(uint64_t seq, const char *login, const char *json, size_t len, void *arg)
{
	struct cb	*c = arg;
	struct deliverd_cb_acct	*a = deliverd_cb_acct(c, login);
	struct deliverd_cb_batch	*b;

	if (++c->scanned > CB_SCAN_MAX)
		return 1;
	if (a->next_ms > c->now_ms)
		return 0;	/* backing off */
	if ((b = deliverd_cb_batch(c, login)) == NULL ||
	    b->n >= (size_t)c->cf->cf_callback_batch_max)
		return 0;
	/* compact JSON holds no raw LF: '\n' separates, JSON arrays get ',' */
	if (b->body.len > 0 && buf_putc(&b->body, '\n') == -1)
		return 0;
	if (buf_append(&b->body, json, len) == -1)
		return 0;
	b->seq[b->n++] = seq;
	return 0;
}

static void
deliverd_cb_free_batches(struct cb *c)
{
	size_t	 i;

	for (i = 0; i < c->nb; i++) {
		free(c->b[i].seq);
		buf_release(&c->b[i].body);
	}
	c->nb = 0;
}

/* Reads one round of batches and each account's URL and format. */
static int
deliverd_cb_collect(struct cb *c)
{
	struct spool_txn	*txn = NULL;
	struct spool_account	*sa;
	size_t			 i;
	int			 rc;

	c->scanned = 0;
	c->now_ms = deliverd_now_ms();
	if ((rc = spool_begin(c->sp, false, &txn)) != 0) {
		log_warnx("outbox: %s", spool_strerror(rc));
		return -1;
	}
	/* the format must be known before the separators: look accounts up first */
	rc = spool_outbox_iter(txn, 0, deliverd_cb_outbox_cb, c);
	sa = xmalloc(sizeof(*sa));
	for (i = 0; i < c->nb; i++) {
		if (spool_account_get(txn, c->b[i].login, sa) != 0 ||
		    sa->sa_callback_url[0] == '\0') {
			c->b[i].drop = true;
			continue;
		}
		(void)str_copy(c->b[i].url, sizeof(c->b[i].url), sa->sa_callback_url);
		c->b[i].fmt = sa->sa_callback_format;
	}
	free(sa);
	spool_abort(&txn);
	return rc < 0 && rc != SPOOL_ENOTFOUND ? -1 : 0;
}

static size_t
deliverd_cb_discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

/* POSTs one batch; 0 on a 2xx. */
static int
deliverd_cb_post(struct cb *c, struct deliverd_cb_batch *b)
{
	struct curl_slist	*h = NULL;
	struct buf		 doc;
	CURLcode		 cc;
	long			 code = 0;
	size_t			 i;
	char			*p;

	buf_init(&doc, b->body.len + 64);
	if (b->fmt == SPOOL_CB_STREAM) {
		(void)buf_append(&doc, b->body.data, b->body.len);
		(void)buf_putc(&doc, '\n');
	} else {
		(void)buf_puts(&doc, "{\"events\":[");
		i = doc.len;
		(void)buf_append(&doc, b->body.data, b->body.len);
		for (p = doc.data + i; (p = memchr(p, '\n', doc.len - (size_t)(p - doc.data))) != NULL; )
			*p = ',';
		(void)buf_puts(&doc, "]}");
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_reset(c->curl);
	(void)curl_easy_setopt(c->curl, CURLOPT_URL, b->url);
	(void)curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	(void)curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, doc.data);
	(void)curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)doc.len);
	(void)curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, (long)c->cf->cf_callback_timeout);
	(void)curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, (long)c->cf->cf_callback_timeout);
	(void)curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "smtpgate/" PACKAGE_VERSION);
	(void)curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, deliverd_cb_discard);
	(void)curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(c->curl);
	if (cc == CURLE_OK)
		(void)curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	buf_release(&doc);
	if (cc == CURLE_OK && code >= 200 && code < 300) {
		log_debug("callback %s: %zu events, HTTP %ld", b->login, b->n, code);
		return 0;
	}
	log_warnx("callback %s to %s: %zu events not accepted: %s", b->login, b->url,
	    b->n, cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP status");
	if (cc == CURLE_OK)
		log_warnx("callback %s: HTTP %ld", b->login, code);
	return -1;
}

static int
deliverd_cb_delete_once(struct cb *c, struct deliverd_cb_batch *b)
{
	struct spool_txn	*txn = NULL;
	size_t			 i;
	int			 rc;

	if ((rc = spool_begin(c->sp, true, &txn)) != 0)
		return rc;
	for (i = 0; i < b->n; i++)
		if ((rc = spool_outbox_del(txn, b->seq[i])) != 0 && rc != SPOOL_ENOTFOUND)
			break;
	if ((rc != 0 && rc != SPOOL_ENOTFOUND) || (rc = spool_commit(&txn)) != 0)
		spool_abort(&txn);
	return rc;
}

/* A deletion can fill the map too (copy-on-write): grow and retry once. */
static void
deliverd_cb_delete(struct cb *c, struct deliverd_cb_batch *b)
{
	struct spool_map	m;
	int			rc;

	rc = deliverd_cb_delete_once(c, b);
	if (rc == SPOOL_EFULL && spool_map_grown(c->sp, &m)) {
		log_info("lmdb map grown: from=%lld, to=%lld, max=%lld; retrying",
		    (long long)m.sm_grew_from, (long long)m.sm_size, (long long)m.sm_max);
		rc = deliverd_cb_delete_once(c, b);
	}
	if (rc != 0)
		log_warnx("outbox delete: %s", spool_strerror(rc));
	spool_map_info(c->sp, &m);
	if (m.sm_readers > 0)
		log_info("cleared %u stale lmdb reader slot(s)", m.sm_readers);
}

static void
deliverd_cb_backoff(struct cb *c, struct deliverd_cb_acct *a)
{
	if (a->delay_s == 0)
		a->delay_s = c->cf->cf_callback_retry_min;
	else if ((a->delay_s *= 2) > c->cf->cf_callback_retry_max)
		a->delay_s = c->cf->cf_callback_retry_max;
	a->next_ms = deliverd_now_ms() + a->delay_s * 1000;
	log_info("callback %s: next try in %llds", a->login, (long long)a->delay_s);
}

/* One round: returns the number of events delivered or dropped. */
static size_t
deliverd_cb_round(struct cb *c)
{
	struct deliverd_cb_acct	*a;
	struct deliverd_cb_batch	*b;
	size_t		 i, n = 0;
	int64_t		 wait = (int64_t)c->cf->cf_callback_batch_wait * 1000;

	if (deliverd_cb_collect(c) == -1)
		return 0;
	for (i = 0; i < c->nb && !sig_stopping(); i++) {
		b = &c->b[i];
		a = deliverd_cb_acct(c, b->login);
		if (b->n == 0)
			continue;
		if (b->drop) {
			log_info("callback %s: no account or URL; dropping %zu events",
			    b->login, b->n);
			deliverd_cb_delete(c, b);
			n += b->n;
			continue;
		}
		/* a short batch waits up to callback_batch_wait for company */
		if (b->n < (size_t)c->cf->cf_callback_batch_max && wait > 0) {
			if (a->first_ms == 0)
				a->first_ms = c->now_ms;
			if (c->now_ms - a->first_ms < wait)
				continue;
		}
		a->first_ms = 0;
		if (deliverd_cb_post(c, b) == 0) {
			deliverd_cb_delete(c, b);
			a->delay_s = 0;
			a->next_ms = 0;
			n += b->n;
		} else
			deliverd_cb_backoff(c, a);
	}
	deliverd_cb_free_batches(c);
	return n;
}

void
deliverd_callback_main(struct conf *cf)
{
	struct cb	 c;
	int		 rc;

	log_set_procname("deliverd/callback");
	(void)signal(SIGHUP, SIG_IGN);	/* the scheduler restarts us instead */
	memset(&c, 0, sizeof(c));
	c.cf = cf;
	if ((rc = spool_open(cf->cf_spool_dir, cf->cf_lmdb_map_size, cf->cf_lmdb_map_max, 0,
	    &c.sp)) != 0)
		log_fatalx("spool_open %s: %s", cf->cf_spool_dir, spool_strerror(rc));
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || (c.curl = curl_easy_init()) == NULL)
		log_fatalx("libcurl initialisation failed");
	while (!sig_stopping() && getppid() != 1) {
		if (deliverd_cb_round(&c) == 0)
			(void)poll(NULL, 0, CB_IDLE_MS);
	}
	curl_easy_cleanup(c.curl);
	curl_global_cleanup();
	spool_close(&c.sp);
	_exit(0);
}
