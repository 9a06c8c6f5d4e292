/*
 * A delivery worker: reads one job at a time from the scheduler's pipe
 * (a message, a next hop, recipient indexes), signs the message once,
 * routes (relayhost or MX), talks SMTP and writes one result line per
 * recipient back, then "D <job id>". It opens LMDB read-only after the
 * fork and never writes it: the scheduler commits every outcome. A cached
 * connection is kept for the next job to the same hop.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_fbid.h"
#include "deliverd_sim.h"
#include "deliverd_worker.h"
#include "deliverd_track.h"
#include "dns.h"
#include "idn.h"
#include "landlock.h"
#include "log.h"
#include "ownaddr.h"
#include "sig.h"
#include "spool.h"
#include "srcaddr.h"
#include "deliverd_mtasts.h"
#include "tls.h"
#include "xmem.h"

/* ---- the job */

enum deliverd_worker_load_status {
	WORKER_LOAD_OK,	  /* wm mapped, r filled in */
	WORKER_LOAD_SKIP, /* gone (delivered, deleted), held, or its file
				 * not moved in yet: no outcome */
	WORKER_LOAD_FAIL  /* why says it: a 4xx for every recipient */
};

/* The account's source address (an account deleted meanwhile: none). */
static void
deliverd_worker_account(struct spool_txn *txn, struct deliverd_worker_msg *wm)
{
	struct spool_account *a = xmalloc(sizeof(*a));

	wm->source[0] = '\0';
	if (spool_account_get(txn, wm->m.sm_login, a) == 0)
		(void)str_copy(wm->source, sizeof(wm->source), a->ac_source);
	free(a);
}

/* Paused since the scheduler claimed it (spoolctl pause): not attempted;
 * the scheduler's next scan sets it aside. */
static bool
deliverd_worker_paused(struct spool_txn *txn, const struct spool_msg *m,
    const char *addr)
{
	struct spool_pause pz;
	char		   domain[SPOOL_DOMAIN_MAX];

	deliverd_domain(addr, domain, sizeof(domain));
	return spool_pause_find(txn, domain, m->sm_login, &pz) == 0;
}

/* A tracked message (issue 16): its record, read in a short txn of its own. */
static void
deliverd_worker_track(struct worker *w, struct deliverd_worker_msg *wm)
{
	struct spool_txn *txn = NULL;

	if (wm->m.sm_sandbox || spool_begin(w->dw_sp, false, &txn) != 0)
		return;
	wm->track = deliverd_track_load(txn, &wm->m, wm->body, wm->bodylen);
	spool_abort(&txn);
}

static enum deliverd_worker_load_status
deliverd_worker_load(struct worker *w, const struct deliverd_job *j,
    struct deliverd_worker_msg *wm, struct deliverd_worker_rcpt *r, char *why,
    size_t whysz)
{
	struct spool_txn *txn = NULL;
	struct spool_rcpt sr;
	char		  path[4096];
	struct stat	  st;
	size_t		  i, npause = 0;
	bool		  paused;
	int		  fd = -1, rc;

	if ((rc = spool_begin(w->dw_sp, false, &txn)) != 0) {
		(void)snprintf(why, whysz, "spool: %s", spool_strerror(rc));
		return WORKER_LOAD_FAIL;
	}
	if ((rc = spool_msg_get(txn, j->dj_qid, &wm->m)) != 0 ||
	    wm->m.sm_held) {
		spool_abort(&txn);
		return WORKER_LOAD_SKIP; /* gone (delivered, deleted) or held: skip */
	}
	deliverd_worker_account(txn, wm);
	paused = spool_pause_count(txn, &npause) == 0 && npause > 0;
	for (i = 0; i < j->dj_nidx; i++) {
		r[i].idx = j->dj_idx[i];
		r[i].skip = spool_rcpt_get(txn, j->dj_qid, r[i].idx, &sr) !=
			0 ||
		    (sr.sr_state != SPOOL_RS_QUEUED &&
			sr.sr_state != SPOOL_RS_DEFERRED) ||
		    (paused && deliverd_worker_paused(txn, &wm->m, sr.sr_addr));
		if (!r[i].skip) {
			(void)str_copy(r[i].addr, sizeof(r[i].addr),
			    sr.sr_addr);
			r[i].attempts = sr.sr_attempts;
		}
	}
	spool_abort(&txn);
	if (spool_path(path, sizeof(path), w->dw_cf->cf_spool_dir, SPOOL_QUEUE,
		j->dj_qid) == -1)
		goto fail;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 && errno == ENOENT &&
	    deliverd_now() - wm->m.sm_arrival < WORKER_FILE_GRACE)
		return WORKER_LOAD_SKIP; /* spoold commits, then moves the file in: soon */
	if (fd == -1 || fstat(fd, &st) == -1) {
		(void)snprintf(why, whysz, "cannot open queue file: %s",
		    strerror(errno));
		goto fail;
	}
	if (st.st_size <= wm->m.sm_body_off || wm->m.sm_body_off < 0) {
		(void)snprintf(why, whysz, "queue file truncated");
		goto fail;
	}
	wm->maplen = (size_t)st.st_size;
	wm->map = mmap(NULL, wm->maplen, PROT_READ, MAP_PRIVATE, fd, 0);
	if (wm->map == MAP_FAILED) {
		wm->map = NULL;
		(void)snprintf(why, whysz, "mmap: %s", strerror(errno));
		goto fail;
	}
	(void)close(fd);
	wm->body = wm->map + wm->m.sm_body_off;
	wm->bodylen = wm->maplen - (size_t)wm->m.sm_body_off;
	deliverd_worker_track(w, wm);
	return WORKER_LOAD_OK;
fail:
	if (fd != -1)
		(void)close(fd);
	return WORKER_LOAD_FAIL;
}

/*
 * Signs the message as wm->body holds it into wm->sig (a read transaction
 * for the account's keys). With feedback_id_sender, the Feedback-ID field
 * (deliverd_fbid.h) is signed with the message and follows the
 * DKIM-Signature lines in wm->sig: the lines sent before the message, and
 * the ones stored for a retry, so a later attempt sends the same field
 * whatever the configuration says then.
 */
static enum deliverd_dkim_status
deliverd_worker_dkim(struct worker *w, struct deliverd_worker_msg *wm,
    char *why, size_t whysz)
{
	struct spool_txn	 *txn = NULL;
	enum deliverd_dkim_status st;
	struct buf		  full;
	char			  fbid[DELIVERD_FBID_LINE_MAX];
	const char		 *msg = wm->body;
	size_t			  len = wm->bodylen;
	int			  rc;

	deliverd_fbid_line(w->dw_cf->cf_feedback_id_sender, &wm->m, wm->body,
	    wm->bodylen, (size_t)w->dw_cf->cf_max_header_size, fbid,
	    sizeof(fbid));
	/* libopendkim takes the message in one piece: one copy, field first */
	buf_init(&full, SIZE_MAX / 2);
	if (fbid[0] != '\0') {
		if (buf_reserve(&full, strlen(fbid) + wm->bodylen) == -1 ||
		    buf_puts(&full, fbid) == -1 ||
		    buf_append(&full, wm->body, wm->bodylen) == -1) {
			buf_release(&full);
			(void)snprintf(why, whysz,
			    "Feedback-ID: out of memory");
			return DELIVERD_DKIM_ERROR;
		}
		msg = full.data;
		len = full.len;
	}
	if ((rc = spool_begin(w->dw_sp, false, &txn)) != 0) {
		buf_release(&full);
		(void)snprintf(why, whysz, "spool: %s", spool_strerror(rc));
		return DELIVERD_DKIM_ERROR;
	}
	st = deliverd_dkim_sign(txn, w->dw_cf, &wm->m, msg, len, &wm->sig, why,
	    whysz);
	spool_abort(&txn);
	buf_release(&full);
	if (st != DELIVERD_DKIM_ERROR && fbid[0] != '\0' &&
	    buf_puts(&wm->sig, fbid) == -1) {
		(void)snprintf(why, whysz,
		    "signature and Feedback-ID too long");
		return DELIVERD_DKIM_ERROR;
	}
	return st;
}

/* Signs once per message; the signature goes to the scheduler ("K"). */
static int
deliverd_worker_sign(struct worker *w, struct deliverd_worker_msg *wm,
    char *why, size_t whysz)
{
	enum deliverd_dkim_status st;

	if (wm->track != NULL)
		return 0; /* each recipient's copy is signed on its own */
	if (wm->m.sm_dkim_done)
		return buf_puts(&wm->sig, wm->m.sm_dkim) == -1 ? -1 : 0;
	if ((st = deliverd_worker_dkim(w, wm, why, whysz)) ==
	    DELIVERD_DKIM_ERROR)
		return -1;
	if (st == DELIVERD_DKIM_NOKEY)
		log_info("%s: unsigned: %s", wm->m.sm_qid, why);
	else
		log_debug("%s: DKIM-signed (%zu bytes of signature)",
		    wm->m.sm_qid, wm->sig.len);
	return deliverd_sig_format(wm->m.sm_qid,
	    wm->sig.data ? wm->sig.data : "", &w->dw_out_buf);
}

/*
 * The destination domain as DNS, MTA-STS and certificates know it: an
 * internationalized domain as A-labels (h-asupp: its UTF-8 form is no DNS
 * name, and the NXDOMAIN that lookup got bounced and suppressed a valid
 * address). false with a permanent reply (not suppressing: 5.1.3) for a
 * name that is not a valid internationalized domain.
 */
static bool
deliverd_worker_ahop(const char *hop, char *dst, size_t dstsz, char *reply,
    size_t replysz)
{
	if (idn_domain_ascii(hop, dst, dstsz) == 0)
		return true;
	(void)snprintf(reply, replysz,
	    "553 5.1.3 Destination domain %s is not a valid internationalized "
	    "domain name",
	    hop);
	return false;
}

/*
 * One transaction over the cached connection to this hop and source, or
 * a new one. True when a next hop answered (relay names it); false when
 * none could be reached or routed to, every reply then saying why.
 */
static bool
deliverd_worker_tx(struct worker *w, const struct deliverd_job *j,
    const char *qid, const char *key, struct deliverd_tx *tx)
{
	struct deliverd_worker_cand *c;
	struct tls_policy	     pol = { TLS_LEVEL_MAY, NULL, NULL, NULL,
			   0 }; /* name: the host */
	struct tls_policy	     p;
	struct deliverd_dane	    *dn;
	bool			     rtls = deliverd_smtp_wants_requiretls(tx);
	bool			   dane = false, tlsno = false, opened = false;
	size_t			   nc, i, k, nsess = 0;
	int			   rc;
	char			   reply[SPOOL_REPLY_MAX] = "";
	char			   hop[SPOOL_DOMAIN_MAX + 8] = "";
	struct deliverd_worker_sts sts;

	/* PROBE_FAILED: the cached connection was gone before anything of this
	 * transaction was answered: a new connection below */
	/* the destination's messages_per_connection (shaping_file) */
	if (deliverd_smtp_nmsgs(w->dw_smtp) >=
	    deliverd_dest_msgs_per_conn(w->dw_cf, j->dj_hop))
		deliverd_smtp_close(w->dw_smtp, true);
	/* a REQUIRETLS message that the cached session cannot take tries
	 * every host of the destination below (RFC 8689) */
	if (deliverd_smtp_reuse(w->dw_smtp, key) &&
	    (!rtls || deliverd_smtp_requiretls_met(w->dw_smtp)) &&
	    deliverd_smtp_send(w->dw_smtp, tx) != DELIVERD_SMTP_PROBE_FAILED)
		return true;
	c = xcalloc(WORKER_CAND_MAX, sizeof(*c));
	memset(&sts, 0, sizeof(sts));
	if (j->dj_relay) {
		/* an explicit relayhost is the operator's word: no loop check */
		nc = deliverd_worker_relay_cands(w, c, WORKER_CAND_MAX, reply,
		    sizeof(reply));
		pol.tp_level = w->dw_relay_tls;
		deliverd_smtp_tls_ctx(w->dw_smtp, w->dw_tls);
		if (w->dw_relay_dane && nc > 0 && c[0].secure &&
		    (tlsno = deliverd_smtp_tls_required_no(tx)))
			log_info("%s: TLS-Required: No: the relayhost's DANE "
				 "policy is not applied (RFC 8689)",
			    qid);
	} else {
		nc = deliverd_worker_ahop(j->dj_hop, hop, sizeof(hop), reply,
			 sizeof(reply))
		    ? deliverd_worker_mx_cands(w, hop, c, WORKER_CAND_MAX,
			  reply, sizeof(reply))
		    : 0;
		if (nc == 0) /* an NXDOMAIN from a sane resolver only */
			deliverd_worker_nxparent(w, qid, hop, reply,
			    sizeof(reply));
		/* issue 17: the destination's level (shaping_file `tls`),
		 * tls_ca_file's CAs; secure checks the domain (smtp.c) */
		pol.tp_level = (enum tls_level)deliverd_dest_tls_level(j->dj_hop,
		    nc > 0 ? c[0].host : NULL);
		pol.tp_name = pol.tp_level == TLS_LEVEL_SECURE ? hop : NULL;
		deliverd_smtp_tls_ctx(w->dw_smtp, w->dw_tls_mx);
		for (i = 0; i < nc; i++)
			shaping_mxset_add(&w->dw_mx, c[i].host);
		nc = deliverd_worker_no_loops(w, qid, j->dj_hop, c, nc, reply,
		    sizeof(reply));
		/* the header is read only where a policy could apply */
		if ((w->dw_cf->cf_mta_sts ||
			strcmp(w->dw_cf->cf_dnssec, "off") != 0) &&
		    (tlsno = deliverd_smtp_tls_required_no(tx)))
			log_info("%s: TLS-Required: No: the MTA-STS and DANE "
				 "policies of %s are not applied (RFC 8689)",
			    qid, j->dj_hop);
		else
			nc = deliverd_worker_mtasts(w, qid, hop, c, nc, &pol,
			    &sts, reply, sizeof(reply));
		if (rtls)
			nc = deliverd_worker_rtls_mx(qid, j->dj_hop, c, nc,
			    &sts, reply, sizeof(reply));
	}
	if (nc > (size_t)w->dw_cf->cf_mx_address_limit) {
		log_debug("%s: %s: %zu next-hop addresses, trying the first "
			  "%lld",
		    qid, j->dj_hop, nc,
		    (long long)w->dw_cf->cf_mx_address_limit);
		nc = (size_t)w->dw_cf->cf_mx_address_limit;
	}
	dn = xmalloc(sizeof(*dn));
	for (k = 0; k < nc; k++) {
		p = pol;
		/* DANE (deliverd_dane.c): secure TLSA records replace the
		 * candidate's level, MTA-STS's included (RFC 8461 2) */
		if (c[k].secure && !tlsno &&
		    deliverd_dane_policy(w, &c[k], dn, &p, reply,
			sizeof(reply)) == -1) {
			deliverd_dane_outcome(w, c[k].host, NULL, -1);
			log_info("%s: %s", qid, reply);
			continue;
		}
		opened = true;
		rc = deliverd_smtp_open(w->dw_smtp, key, c[k].host, &c[k].ss,
		    &p, reply, sizeof(reply));
		dane = p.tp_ntlsa > 0;
		if (dane)
			deliverd_dane_outcome(w, c[k].host, dn, rc);
		if (dane && rc == 0)
			log_info("%s: %s: DANE: a TLSA record of %s matched",
			    qid, deliverd_smtp_relay(w->dw_smtp), c[k].host);
		if (rc != 0)
			log_info("%s: %s", qid, reply);
		else if (!rtls || k + 1 == nc ||
		    ++nsess >= (size_t)w->dw_cf->cf_mx_session_limit ||
		    deliverd_smtp_requiretls_met(w->dw_smtp))
			break; /* REQUIRETLS unmet on the last host it may try:
				  it bounces */
		else
			log_info("%s: REQUIRETLS not met by %s: trying the "
				 "next host",
			    qid, deliverd_smtp_relay(w->dw_smtp));
	}
	free(dn);
	if (j->dj_relay) /* not the recipient domain's MX: no TLS report */
		deliverd_smtp_tls_relayhost(w->dw_smtp);
	if (!j->dj_relay && nc > 0 && !dane) /* a session was tried */
		deliverd_worker_sts_outcome(w, qid, hop, &sts,
		    k < nc ? c[k].host : NULL, reply, sizeof(reply));
	free(c);
	if (k < nc) {
		(void)deliverd_smtp_send(w->dw_smtp, tx);
		/* opened without the domain's MTA-STS/DANE policy: never
		 * reused for a message that must have it */
		if (tlsno)
			deliverd_smtp_close(w->dw_smtp, true);
	} else
		for (i = 0; i < tx->tx_nrcpt; i++) {
			/* no next hop (DNS), none answered (the last one's
			 * stage), or none tried (every TLSA lookup failed) */
			(void)str_copy(tx->tx_reply[i], SPOOL_REPLY_MAX, reply);
			tx->tx_stage[i] = !opened
			    ? BOUNCE_ST_CONNECT
			    : deliverd_smtp_stage(w->dw_smtp);
		}
	return nc >
	    0; /* else DNS or relayhost trouble: no next hop was tried */
}

/*
 * RFC 5321 section 4.5.3.1.10: a 452 for some recipients after the next
 * hop accepted others of the same transaction (the message went out to
 * them) means "too many recipients": those go in the next transaction at
 * once. pos[] gets their places in the job's arrays; the count. Every
 * round delivers at least one recipient, so a job of n recipients takes
 * at most n rounds (ceil(n / limit) at a fixed limit).
 */
static size_t
deliverd_worker_more(const struct deliverd_tx *tx, const size_t *at,
    size_t *pos)
{
	size_t i, n = 0;
	bool   sent = false;

	for (i = 0; i < tx->tx_nrcpt; i++)
		sent = sent || tx->tx_reply[i][0] == '2';
	for (i = 0; sent && i < tx->tx_nrcpt; i++)
		if (strncmp(tx->tx_reply[i], "452", 3) == 0)
			pos[n++] = at[i];
	return n;
}

static void deliverd_worker_result1(struct worker *,
    const struct deliverd_job *, const struct deliverd_worker_rcpt *,
    const char *relay, const char *tls, const struct deliverd_tlsout *);

/*
 * A 452 split (deliverd_worker_more): before the next transaction, the
 * replies of this one go to the scheduler, which commits them at once. A
 * worker killed in a later transaction of the job (a crash, SIGKILL at the
 * end of the stop grace) then leaves only that transaction to be sent
 * again, not the recipients the next hop already accepted.
 */
static void
deliverd_worker_report_round(struct worker *w, const struct deliverd_job *j,
    struct deliverd_worker_rcpt *r, const size_t *ri, const size_t *at,
    size_t nround, const bool *more, char (*replies)[SPOOL_REPLY_MAX],
    const enum bounce_stage *stages, const bool *shared, const char *relay)
{
	struct deliverd_worker_rcpt *x;
	size_t			     k;

	for (k = 0; k < nround; k++) {
		if (more[at[k]])
			continue;
		x = &r[ri[at[k]]];
		(void)str_copy(x->reply, sizeof(x->reply), replies[at[k]]);
		x->stage = stages[at[k]];
		x->shared = shared[at[k]];
		x->reported = true;
		deliverd_worker_result1(w, j, x, relay,
		    deliverd_smtp_tls(w->dw_smtp),
		    deliverd_smtp_tls_out(w->dw_smtp));
	}
	if (w->dw_out_buf.len > 0 &&
	    deliverd_pipe_write(w->dw_out, w->dw_out_buf.data,
		w->dw_out_buf.len) == -1)
		log_fatal("worker: write to scheduler");
	buf_reset(&w->dw_out_buf);
}

static void
deliverd_worker_send(struct worker *w, const struct deliverd_job *j,
    struct deliverd_worker_msg *wm, struct deliverd_worker_rcpt *r, size_t nr,
    const char *key, char *relay, size_t relaysz)
{
	const char **addrs, **sub;
	char(*replies)[SPOOL_REPLY_MAX], (*subr)[SPOOL_REPLY_MAX];
	enum bounce_stage *stages, *subst;
	struct deliverd_tx tx;
	size_t		  *at, *pos, *ri, i, k, na = 0, n, nround, round, ndata;
	bool		  *more, *shared;

	addrs = xcalloc(nr, sizeof(*addrs));
	replies = xcalloc(nr, sizeof(*replies));
	sub = xcalloc(nr, sizeof(*sub));
	subr = xcalloc(nr, sizeof(*subr));
	stages = xcalloc(nr, sizeof(*stages));
	subst = xcalloc(nr, sizeof(*subst));
	at = xcalloc(nr, sizeof(*at));
	pos = xcalloc(nr, sizeof(*pos));
	ri = xcalloc(nr, sizeof(*ri));
	more = xcalloc(nr, sizeof(*more));
	shared = xcalloc(nr, sizeof(*shared));
	for (i = 0; i < nr; i++)
		if (!r[i].skip) {
			ri[na] = i;
			at[na] = na;
			addrs[na++] = r[i].addr;
		}
	memset(&tx, 0, sizeof(tx));
	tx.tx_qid = wm->m.sm_qid;
	tx.tx_from = wm->m.sm_from;
	tx.tx_from_params = wm->m.sm_from_params;
	tx.tx_sig = wm->sig.data != NULL ? wm->sig.data : "";
	tx.tx_msg = wm->body;
	tx.tx_msglen = wm->bodylen;
	for (round = 0, n = na; n > 0 && round < na; round++) {
		for (k = 0; k < n; k++)
			sub[k] = addrs[at[k]];
		tx.tx_rcpt = sub;
		tx.tx_nrcpt = n;
		tx.tx_reply = subr;
		tx.tx_stage = subst;
		if (deliverd_worker_tx(w, j, wm->m.sm_qid, key, &tx))
			(void)str_copy(relay, relaysz,
			    deliverd_smtp_relay(w->dw_smtp));
		/* one end-of-data reply for several recipients is about
		 * the message, never one of them (bounce_suppress_veto) */
		for (k = 0, ndata = 0; k < n; k++)
			ndata += subst[k] == BOUNCE_ST_DATA;
		for (k = 0; k < n; k++) {
			(void)str_copy(replies[at[k]], SPOOL_REPLY_MAX,
			    subr[k]);
			stages[at[k]] = subst[k];
			shared[at[k]] = subst[k] == BOUNCE_ST_DATA && ndata > 1;
		}
		nround = n;
		if ((n = deliverd_worker_more(&tx, at, pos)) > 0) {
			log_info("%s: %s: %zu recipients refused with 452 "
				 "after others were "
				 "accepted: next transaction at once",
			    wm->m.sm_qid, j->dj_hop, n);
			memset(more, 0, nr * sizeof(*more));
			for (k = 0; k < n; k++)
				more[pos[k]] = true;
			deliverd_worker_report_round(w, j, r, ri, at, nround,
			    more, replies, stages, shared, relay);
		}
		memcpy(at, pos, n * sizeof(*at));
	}
	for (i = 0, k = 0; i < nr; i++)
		if (!r[i].skip) {
			r[i].stage = stages[k];
			r[i].shared = shared[k];
			(void)str_copy(r[i].reply, sizeof(r[i].reply),
			    replies[k++]);
		}
	w->dw_last_use = ev_clock_ms();
	free(addrs);
	free(replies);
	free(sub);
	free(subr);
	free(stages);
	free(subst);
	free(at);
	free(pos);
	free(ri);
	free(more);
	free(shared);
}

/* One recipient's copy signed (never stored: "K" is for one copy for all). */
static int
deliverd_worker_sign_copy(struct worker *w, struct deliverd_worker_msg *wm,
    char *why, size_t whysz)
{
	buf_reset(&wm->sig);
	return deliverd_worker_dkim(w, wm, why, whysz) == DELIVERD_DKIM_ERROR
	    ? -1
	    : 0;
}

#define DELIVERD_WORKER_NOTOKENS "no tracking tokens from the key process"

/*
 * A tracked message (issue 16): each recipient its own copy, signature
 * and transaction. A copy that cannot be parsed is the message as it is;
 * one without its tokens (the key process did not give them) is deferred.
 */
static void
deliverd_worker_send_tracked(struct worker *w, const struct deliverd_job *j,
    struct deliverd_worker_msg *wm, struct deliverd_worker_rcpt *r, size_t nr,
    const char *key, char *relay, size_t relaysz)
{
	const char *body = wm->body;
	size_t	    bodylen = wm->bodylen, i;
	struct buf  copy;
	char	    why[1024];
	int	    rc;

	buf_init(&copy, SIZE_MAX / 2);
	/* the copy is a little longer than the message: one allocation */
	(void)buf_reserve(&copy, bodylen + bodylen / 4 + 1024);
	for (i = 0; i < nr; i++) {
		if (r[i].skip)
			continue;
		rc = deliverd_track_copy(wm->track, r[i].idx, body, bodylen,
		    &copy);
		if (rc == 0) {
			wm->body = copy.data;
			wm->bodylen = copy.len;
		}
		if (rc == DELIVERD_TRACK_DEFER) {
			(void)str_copy(why, sizeof(why),
			    DELIVERD_WORKER_NOTOKENS);
			rc = -1;
		} else
			rc = deliverd_worker_sign_copy(w, wm, why, sizeof(why));
		if (rc == -1) {
			log_warnx("%s: to=<%s>: not attempted: %s", j->dj_qid,
			    r[i].addr, why);
			(void)str_printf(r[i].reply, sizeof(r[i].reply),
			    "451 4.3.0 %.900s", why);
		} else
			deliverd_worker_send(w, j, wm, &r[i], 1, key, relay,
			    relaysz);
		wm->body = body;
		wm->bodylen = bodylen;
	}
	buf_release(&copy);
}

/*
 * The source address and HELO name of this job (the account's, else
 * source_address; a pool: the address of the connection in hand to this
 * hop if the pool has it, else the next in turn) and the connection key
 * that goes with them. -1 with why: the spec names no configured pool.
 */
static int
deliverd_worker_source(struct worker *w, const struct deliverd_job *j,
    const struct deliverd_worker_msg *wm, char *key, size_t keysz, char *why,
    size_t whysz)
{
	const struct conf *cf = w->dw_cf;
	const char	  *spec = wm->source[0] != '\0' ? wm->source
							: cf->cf_source_address;
	const char	  *prefer = NULL;
	struct srcaddr	   r;

	if (spec[0] == '\0') {
		deliverd_smtp_source(w->dw_smtp, NULL, NULL, NULL);
		(void)str_copy(key, keysz, j->dj_hop);
		return 0;
	}
	if (deliverd_smtp_connected(w->dw_smtp) &&
	    strcmp(w->dw_src_hop, j->dj_hop) == 0)
		prefer = w->dw_src_addr;
	if (srcaddr_pick(spec, cf->cf_source_pool.v, cf->cf_source_pool.n,
		prefer, w->dw_src_pick, &r, why, whysz) == -1)
		return -1;
	if (prefer == NULL || strcmp(prefer, r.so_addr) != 0)
		w->dw_src_pick++;
	deliverd_smtp_source(w->dw_smtp, &r.so_ss, r.so_addr, r.so_helo);
	(void)str_copy(w->dw_src_hop, sizeof(w->dw_src_hop), j->dj_hop);
	(void)str_copy(w->dw_src_addr, sizeof(w->dw_src_addr), r.so_addr);
	(void)snprintf(key, keysz, "%s\t%s\t%s", j->dj_hop, r.so_addr,
	    r.so_helo);
	return 0;
}

/* A tracked message's copy for a simulator recipient, signed as it
 * would be for sending (issue 18: the simulator exercises DKIM). */
static int
deliverd_worker_sim_sign(struct worker *w, struct deliverd_worker_msg *wm,
    uint32_t idx, char *why, size_t whysz)
{
	const char *body = wm->body;
	size_t	    bodylen = wm->bodylen;
	struct buf  copy;
	int	    rc;

	buf_init(&copy, SIZE_MAX / 2);
	rc = deliverd_track_copy(wm->track, idx, body, bodylen, &copy);
	if (rc == 0) {
		wm->body = copy.data;
		wm->bodylen = copy.len;
	}
	if (rc == DELIVERD_TRACK_DEFER) {
		(void)str_copy(why, whysz, DELIVERD_WORKER_NOTOKENS);
		rc = -1;
	} else
		rc = deliverd_worker_sign_copy(w, wm, why, whysz);
	wm->body = body;
	wm->bodylen = bodylen;
	buf_release(&copy);
	return rc;
}

/*
 * Simulator recipients (deliverd_sim.h) get the simulator's reply and are
 * set aside (skip, for the sending code) before anything is routed or
 * sent; deliverd_worker_results reports them. The number set aside.
 */
static size_t
deliverd_worker_sim(struct worker *w, struct deliverd_worker_msg *wm,
    struct deliverd_worker_rcpt *r, size_t nr)
{
	char   why[1024];
	size_t i, n = 0;

	for (i = 0; i < nr; i++) {
		if (r[i].skip || !deliverd_sim_match(w->dw_cf, r[i].addr))
			continue;
		r[i].skip = r[i].sim = true;
		n++;
		if (wm->track != NULL &&
		    deliverd_worker_sim_sign(w, wm, r[i].idx, why,
			sizeof(why)) == -1) {
			log_warnx("%s: to=<%s>: not attempted: %s",
			    wm->m.sm_qid, r[i].addr, why);
			(void)str_printf(r[i].reply, sizeof(r[i].reply),
			    "451 4.3.0 %.900s", why);
		} else
			deliverd_sim_reply(w->dw_cf, r[i].addr, r[i].attempts,
			    r[i].reply, sizeof(r[i].reply), &r[i].stage);
	}
	return n;
}

static void
deliverd_worker_result1(struct worker *w, const struct deliverd_job *j,
    const struct deliverd_worker_rcpt *r, const char *relay, const char *tls,
    const struct deliverd_tlsout *tlsout)
{
	struct deliverd_result res;

	memset(&res, 0, sizeof(res));
	(void)str_copy(res.dr_qid, sizeof(res.dr_qid), j->dj_qid);
	res.dr_idx = r->idx;
	res.dr_skip = r->skip && !r->sim;
	(void)str_copy(res.dr_reply, sizeof(res.dr_reply), r->reply);
	deliverd_fold(res.dr_reply);
	if (res.dr_reply[0] != '2' && res.dr_reply[0] != '4' &&
	    res.dr_reply[0] != '5')
		(void)str_printf(res.dr_reply, sizeof(res.dr_reply),
		    "451 4.3.0 bad reply: %s", r->reply);
	(void)str_copy(res.dr_relay, sizeof(res.dr_relay),
	    r->sim ? DELIVERD_SIM_RELAY : relay);
	(void)str_copy(res.dr_tls, sizeof(res.dr_tls), r->sim ? "" : tls);
	(void)str_copy(res.dr_to, sizeof(res.dr_to), r->addr);
	res.dr_stage = r->stage;
	res.dr_shared = r->shared;
	(void)shaping_mxset_key(&w->dw_mx, res.dr_mx, sizeof(res.dr_mx));
	if (tlsout != NULL && !r->sim && !res.dr_skip)
		res.dr_tlsout = *tlsout;
	(void)deliverd_result_format(&res, &w->dw_out_buf);
}

/* The job's result lines, but those already sent (a 452 split). */
static void
deliverd_worker_results(struct worker *w, const struct deliverd_job *j,
    struct deliverd_worker_rcpt *r, size_t nr, const char *relay,
    const char *tls, const struct deliverd_tlsout *tlsout)
{
	size_t i;

	for (i = 0; i < nr; i++)
		if (!r[i].reported)
			deliverd_worker_result1(w, j, &r[i], relay, tls,
			    tlsout);
}

static void
deliverd_worker_job(struct worker *w, const struct deliverd_job *j)
{
	struct deliverd_worker_msg   wm;
	struct deliverd_worker_rcpt *r;
	char why[1024] = "", relay[256] = "", reply[SPOOL_REPLY_MAX];
	char key[DELIVERD_SMTP_KEY_MAX];
	enum deliverd_worker_load_status ld;
	size_t				 i, nlive = 0;

	memset(&wm, 0, sizeof(wm));
	memset(&w->dw_mx, 0, sizeof(w->dw_mx));
	w->dw_tls_noconn = false;
	buf_init(&wm.sig, SPOOL_DKIMSIG_MAX - 1);
	r = xcalloc(j->dj_nidx, sizeof(*r));
	ld = deliverd_worker_load(w, j, &wm, r, why, sizeof(why));
	for (i = 0; i < j->dj_nidx; i++) {
		r[i].idx = j->dj_idx[i];
		if (ld == WORKER_LOAD_SKIP)
			r[i].skip = true;
		nlive += !r[i].skip;
	}
	/* signed even when every recipient is the simulator's (issue 18) */
	if (ld == WORKER_LOAD_OK && nlive > 0 &&
	    deliverd_worker_sign(w, &wm, why, sizeof(why)) == -1)
		ld = WORKER_LOAD_FAIL;
	if (ld == WORKER_LOAD_OK)
		nlive -= deliverd_worker_sim(w, &wm, r, j->dj_nidx);
	if (ld == WORKER_LOAD_FAIL) {
		log_warnx("%s: not attempted: %s", j->dj_qid, why);
		(void)snprintf(reply, sizeof(reply), "451 4.3.0 %s", why);
		for (i = 0; i < j->dj_nidx; i++)
			(void)str_copy(r[i].reply, sizeof(r[i].reply), reply);
	} else if (ld == WORKER_LOAD_OK && nlive > 0 && wm.m.sm_sandbox) {
		for (i = 0; i < j->dj_nidx; i++)
			if (!r[i].sim)
				(void)str_copy(r[i].reply, sizeof(r[i].reply),
				    "250 2.0.0 Ok: sandbox, not sent");
	} else if (ld == WORKER_LOAD_OK && nlive > 0 &&
	    deliverd_worker_source(w, j, &wm, key, sizeof(key), why,
		sizeof(why)) == -1) {
		log_warnx("%s: not attempted: source address %s: %s", j->dj_qid,
		    wm.source[0] != '\0' ? wm.source
					 : w->dw_cf->cf_source_address,
		    why);
		(void)snprintf(reply, sizeof(reply),
		    "451 4.3.5 source address: %s", why);
		for (i = 0; i < j->dj_nidx; i++)
			if (!r[i].sim)
				(void)str_copy(r[i].reply, sizeof(r[i].reply),
				    reply);
	} else if (ld == WORKER_LOAD_OK && nlive > 0 && wm.track != NULL)
		deliverd_worker_send_tracked(w, j, &wm, r, j->dj_nidx, key,
		    relay, sizeof(relay));
	else if (ld == WORKER_LOAD_OK && nlive > 0)
		deliverd_worker_send(w, j, &wm, r, j->dj_nidx, key, relay,
		    sizeof(relay));
	/* issue 17: the TLS outcome of the session the job went to (or was
	 * refused by) rides on the result lines: deliverd_smtp.c records it,
	 * MTA-STS/DANE override it with deliverd_smtp_tls_outcome() */
	deliverd_worker_results(w, j, r, j->dj_nidx, relay,
	    relay[0] != '\0' ? deliverd_smtp_tls(w->dw_smtp) : "",
	    relay[0] != '\0' || w->dw_tls_noconn
		? deliverd_smtp_tls_out(w->dw_smtp)
		: NULL);
	(void)buf_printf(&w->dw_out_buf, "D\t%llu\n",
	    (unsigned long long)j->dj_id);
	if (deliverd_pipe_write(w->dw_out, w->dw_out_buf.data,
		w->dw_out_buf.len) == -1)
		log_fatal("worker: write to scheduler");
	buf_reset(&w->dw_out_buf);
	if (wm.map != NULL)
		(void)munmap(wm.map, wm.maplen);
	deliverd_track_free(&wm.track);
	buf_release(&wm.sig);
	free(r);
}

static void
deliverd_worker_line(const char *line, size_t len, void *arg)
{
	struct worker	    *w = arg;
	struct deliverd_job *j;

	j = xmalloc(sizeof(*j));
	if (deliverd_job_parse(line, len, j) == -1)
		log_warnx("worker: bad job line ignored");
	else
		deliverd_worker_job(w, j);
	free(j);
}

/* The own addresses, allow_next_hop and relayhost_tls, once per worker
 * (a reload replaces the workers). */
static void
deliverd_worker_loops_init(struct worker *w)
{
	const struct conf *cf = w->dw_cf;
	char		   err[256];
	size_t		   i;

	if (ownaddr_load(&w->dw_own, cf->cf_listen, cf->cf_nlisten, err,
		sizeof(err)) == -1)
		log_warnx("own addresses: %s (only the listen addresses and "
			  "loopback are refused as next hops)",
		    err);
	w->dw_allow = xcalloc(cf->cf_allow_next_hop.n + 1,
	    sizeof(*w->dw_allow));
	for (i = 0; i < cf->cf_allow_next_hop.n; i++)
		if (cidr_parse(cf->cf_allow_next_hop.v[i],
			&w->dw_allow[w->dw_nallow]) == 0)
			w->dw_nallow++; /* conf_load checked them */
	/* dane: opportunistic DANE (RFC 7672 as Postfix's "dane" level):
	 * TLSA records when the relayhost's are secure, else as may */
	w->dw_relay_dane = strcmp(cf->cf_relayhost_tls, "dane") == 0;
	if (w->dw_relay_dane)
		w->dw_relay_tls = TLS_LEVEL_MAY;
	else if (tls_level_parse(cf->cf_relayhost_tls, &w->dw_relay_tls) == -1)
		w->dw_relay_tls = TLS_LEVEL_VERIFY; /* conf_load checked it */
}

/* ---- the loop (common/ev.c): jobs from the scheduler; once a second,
 * a connection idle for WORKER_IDLE_CLOSE_MS is closed */

/* The key process exited (the master starts another): between two jobs,
 * this worker exits so that its replacement attaches to the new one. */
static void
deliverd_worker_key_check(struct ev *e)
{
	static bool said;

	if (!deliverd_key_gone())
		return;
	if (!said)
		log_info("the key process is gone: exiting to be replaced");
	said = true;
	ev_break(e);
}

static void
deliverd_worker_on_job(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct worker *w = arg;

	(void)revents;
	if (deliverd_pipe_read(fd, &w->dw_inbuf, deliverd_worker_line, w) ==
	    -1) {
		w->dw_eof = true; /* the scheduler closed our job pipe */
		ev_break(e);
	}
	deliverd_worker_key_check(e);
}

static void
deliverd_worker_on_tick(struct ev *e, struct ev_timer *t, void *arg)
{
	struct worker *w = arg;

	(void)t;
	deliverd_worker_key_check(e);
	if (deliverd_smtp_connected(w->dw_smtp) &&
	    ev_clock_ms() - w->dw_last_use > WORKER_IDLE_CLOSE_MS)
		deliverd_smtp_close(w->dw_smtp, true);
}

static void
deliverd_worker_loop(struct worker *w)
{
	struct ev      *e;
	struct ev_timer tick;

	if ((e = ev_new(1, 1)) == NULL ||
	    ev_fd_add(e, w->dw_in, EV_READ, deliverd_worker_on_job, w) == -1)
		log_fatal("ev");
	ev_timer_init(&tick, deliverd_worker_on_tick, w);
	(void)ev_timer_arm(e, &tick, 1000, 1000);
	ev_run(e);
	ev_free(&e);
}

/* Set up: from here on no keys/, no db/ key file, nothing written
 * (landlock.c). Reading is allowed only beneath the system trees and:
 *   spool_dir/queue/ (the message files);
 *   spool_dir/db/data.mdb, and lock.mdb read-write (LMDB, already open);
 *   the files the configuration names that a worker reads while it runs:
 *     tls_ca_file, relayhost_tls_ca_file, mta_sts_ca_file (libcurl reads
 *     it per fetch), dnssec_trust_anchor. */
static void
deliverd_worker_confine(const struct conf *cf, int id)
{
	char queue[PATH_MAX], data[PATH_MAX], lock[PATH_MAX], why[512];
	int  rc;
	const struct landlock_path paths[] = {
		{ queue, LANDLOCK_READ },
		{ data, LANDLOCK_READ },
		{ lock, LANDLOCK_READ | LANDLOCK_WRITE },
		{ cf->cf_tls_ca_file, LANDLOCK_READ },
		{ cf->cf_relayhost_tls_ca_file, LANDLOCK_READ },
		{ cf->cf_mta_sts_ca_file, LANDLOCK_READ },
		{ cf->cf_dnssec_trust_anchor, LANDLOCK_READ },
	};

	if (spool_path(queue, sizeof(queue), cf->cf_spool_dir, SPOOL_QUEUE,
		NULL) == -1 ||
	    snprintf(data, sizeof(data), "%s/db/data.mdb", cf->cf_spool_dir) >=
		(int)sizeof(data) ||
	    snprintf(lock, sizeof(lock), "%s/db/lock.mdb", cf->cf_spool_dir) >=
		(int)sizeof(lock))
		log_fatalx("confining the worker: spool_dir too long");
	if ((rc = landlock_confine(cf->cf_spool_dir, paths,
		 sizeof(paths) / sizeof(paths[0]), "the delivery workers", why,
		 sizeof(why))) == -1)
		log_fatalx("confining the worker: %s", why);
	if (rc == 0 && id == 0) /* one line per start, not one per worker */
		log_warnx("workers not confined: %s", why);
	if (rc == 1)
		log_debug("confined (%s)", why);
}

void
deliverd_worker_main(struct conf *cf, int in_fd, int out_fd, int id)
{
	struct worker w;
	char	      err[256], name[64];
	int	      rc;

	(void)snprintf(name, sizeof(name), "deliverd/worker%d", id);
	log_set_procname(name);
	/* DKIM signatures come from the key process (deliverd_key.c) */
	deliverd_key_attach();
	deliverd_dkim_use_keyproc();
	(void)signal(SIGHUP, SIG_IGN); /* the scheduler replaces us instead */
	memset(&w, 0, sizeof(w));
	w.dw_cf = cf;
	w.dw_in = in_fd;
	w.dw_out = out_fd;
	buf_init(&w.dw_inbuf, 4 * DELIVERD_LINE_MAX);
	buf_init(&w.dw_out_buf, 64 * DELIVERD_LINE_MAX);
	if ((rc = spool_open(cf->cf_spool_dir, cf->cf_lmdb_map_size,
		 cf->cf_lmdb_map_max, SPOOL_RDONLY, &w.dw_sp)) != 0)
		log_fatalx("spool_open %s: %s", cf->cf_spool_dir,
		    spool_strerror(rc));
	if ((w.dw_dns = dns_new(cf->cf_dns_server, 5, err, sizeof(err))) ==
	    NULL)
		log_fatalx("%s", err);
	dns_set_trust_ad(w.dw_dns, strcmp(cf->cf_dnssec, "trust-ad") == 0);
	if (strcmp(cf->cf_dnssec, "validate") == 0 &&
	    dns_set_validate(w.dw_dns, cf->cf_dns_server,
		cf->cf_dnssec_trust_anchor, err, sizeof(err)) == -1)
		log_fatalx("dnssec = validate: %s", err); /* checked at start */
	deliverd_worker_loops_init(&w);
	deliverd_track_init();
	tls_init();
	if ((w.dw_tls = tls_client_ctx_new(cf->cf_relayhost_tls_ca_file, err,
		 sizeof(err))) == NULL)
		/* fail closed: relayhost_tls = encrypt|verify then defers; the
		 * CA file was checked at start, so it went away since */
		log_warnx(
		    "TLS client unavailable (%s): delivering without STARTTLS",
		    err);
	if ((w.dw_tls_mx = tls_client_ctx_new(cf->cf_tls_ca_file, err,
		 sizeof(err))) == NULL)
		log_warnx("TLS client for MX delivery unavailable (%s)", err);
	w.dw_smtp = deliverd_smtp_new(cf, w.dw_tls);
	w.dw_sts = deliverd_mtasts_new();
	srandom((unsigned)getpid());
	w.dw_src_pick = (unsigned)
	    id; /* the workers start at different pool entries */
	deliverd_worker_confine(cf, id);
	deliverd_worker_loop(&w);
	deliverd_smtp_free(&w.dw_smtp);
	deliverd_mtasts_free(&w.dw_sts);
	ownaddr_free(&w.dw_own);
	free(w.dw_allow);
	tls_ctx_free(&w.dw_tls);
	tls_ctx_free(&w.dw_tls_mx);
	dns_free(&w.dw_dns);
	spool_close(&w.dw_sp);
	_exit(0);
}
