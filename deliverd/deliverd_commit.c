/*
 * Committing a batch of outcomes in one write transaction: each result
 * becomes delivered, deferred (retry_schedule) or bounced (remote,
 * expired), with its event; DKIM signatures are stored; messages without
 * pending recipients are deleted with their queue files (after the
 * commit). One log line per recipient outcome, after the commit.
 * A next hop's 2xx for a recipient whose message was deleted while the
 * delivery was in flight (spoolctl delete) is still logged as sent and
 * reported as a delivered event after the admin bounce, its fields taken
 * from that message's last event for the address in the delivery log.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_sim.h"
#include "idn.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "xmem.h"

static const char *
deliverd_commit_dsn(const char *reply, char dst[16])
{
	size_t n = 0;

	/* "DDD X.Y.Z ..." */
	if (strlen(reply) > 4 && reply[3] == ' ')
		while (n < 15 && reply[4 + n] != '\0' && reply[4 + n] != ' ' &&
		    (reply[4 + n] == '.' ||
			(reply[4 + n] >= '0' && reply[4 + n] <= '9')))
			n++;
	if (n >= 5 && reply[4] == reply[0] && reply[5] == '.') {
		memcpy(dst, reply + 4, n);
		dst[n] = '\0';
	} else
		(void)snprintf(dst, 16, "%c.0.0", reply[0]);
	return dst;
}

/* The messages touched by one batch, so each is read and written once. */
struct deliverd_commit_batch {
	struct spool_msg **m;
	bool		  *dirty;
	size_t		   n, cap;
	char (*finished)[QID_SIZE];
	size_t	   nfin;
	struct buf log; /* per-recipient log lines, printed after commit */
	struct deliverd_commit_note *notes; /* counted after commit (metrics) */
	size_t			     nnotes;
};

/* One outcome for the counters: "@domain" (cut: "other"). */
struct deliverd_commit_note {
	enum metrics_outcome cn_o;
	enum bounce_cat	     cn_cat;
	bool		     cn_tls;
	char		     cn_dom[METRICS_DEST_MAX + 1];
};

static void
deliverd_commit_note(struct deliverd_commit_batch *b, enum spool_rcpt_state st,
    enum bounce_cat cat, const char *to, bool tls)
{
	struct deliverd_commit_note *n;
	const char		    *at = strrchr(to, '@');

	b->notes = xreallocarray(b->notes, b->nnotes + 1, sizeof(*b->notes));
	n = &b->notes[b->nnotes++];
	n->cn_o = st == SPOOL_RS_DELIVERED ? METRICS_O_DELIVERED
	    : st == SPOOL_RS_BOUNCED	   ? METRICS_O_BOUNCED
					   : METRICS_O_DEFERRED;
	n->cn_cat = cat;
	n->cn_tls = tls;
	if (at == NULL || str_copy(n->cn_dom, sizeof(n->cn_dom), at) == -1)
		n->cn_dom[0] = '\0';
}

static struct spool_msg *
deliverd_commit_batch_msg(struct deliverd_commit_batch *b,
    struct spool_txn *txn, const char *qid, size_t *i_r)
{
	size_t i;

	for (i = b->n; i > 0; i--)
		if (strcmp(b->m[i - 1]->sm_qid, qid) == 0) {
			*i_r = i - 1;
			return b->m[i - 1];
		}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->m = xreallocarray(b->m, b->cap, sizeof(*b->m));
		b->dirty = xreallocarray(b->dirty, b->cap, sizeof(*b->dirty));
	}
	b->m[b->n] = xmalloc(sizeof(struct spool_msg));
	if (spool_msg_get(txn, qid, b->m[b->n]) != 0) {
		free(b->m[b->n]);
		return NULL;
	}
	b->dirty[b->n] = false;
	*i_r = b->n;
	return b->m[b->n++];
}

static time_t
deliverd_commit_retry_delay(const struct conf *cf, uint32_t attempts)
{
	size_t i;

	if (cf->cf_nretry_delays == 0)
		return 300;
	i = attempts == 0 ? 0 : attempts - 1;
	if (i >= cf->cf_nretry_delays)
		i = cf->cf_nretry_delays - 1;
	return cf->cf_retry_delays[i];
}

/* The message's last logged event for one address (the admin bounce of
 * spoolctl delete): the fields a later event of it repeats. */
struct deliverd_commit_prev {
	const char	*to;
	struct json_val *ev;
};

static int
deliverd_commit_prev_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct deliverd_commit_prev *p = arg;
	struct json_val		    *v;
	char			    *text, err[128];
	const char		    *to;

	(void)seq;
	if (memmem(json, len, p->to, strlen(p->to)) == NULL)
		return 0; /* another recipient's: no need to parse it */
	text = xmalloc(len + 1);
	memcpy(text, json, len);
	text[len] = '\0';
	v = json_parse(text, err, sizeof(err));
	free(text);
	if (v == NULL)
		return 0;
	if ((to = json_string(json_get(v, "to"))) != NULL &&
	    strcmp(to, p->to) == 0) {
		json_val_free(&p->ev);
		p->ev = v;
	} else
		json_val_free(&v);
	return 0;
}

static const char *
deliverd_commit_prev_str(const struct json_val *ev, const char *obj,
    const char *key)
{
	if (obj != NULL && (ev = json_get(ev, obj)) == NULL)
		return NULL;
	return json_string(json_get(ev, key));
}

/* Issue 17 item 6: the verification result of the attempt's session
 * (events' tls_verified, the log line's tls=PROTO CIPHER/RESULT), NULL
 * when no session was tried (simulator, no next hop, an older worker). */
static const char *
deliverd_commit_tls_verified(const struct deliverd_result *res)
{
	return res->dr_tlsout.to_set
	    ? tlsres_verified_name(res->dr_tlsout.to_verified)
	    : NULL;
}

/* A delivered event like the message's earlier ones; 0 if there were none. */
static int
deliverd_commit_gone_event(struct spool_txn *txn,
    const struct deliverd_result *res, int64_t now, bool *found_r)
{
	struct deliverd_commit_prev p = { .to = res->dr_to, .ev = NULL };
	struct spool_event	    ev;
	int64_t			    v;
	int			    rc;

	*found_r = false;
	if ((rc = spool_log_iter_qid(txn, res->dr_qid, deliverd_commit_prev_cb,
		 &p)) != 0 &&
	    rc != SPOOL_ENOTFOUND)
		return rc;
	if (p.ev == NULL ||
	    deliverd_commit_prev_str(p.ev, NULL, "account") == NULL)
		goto out;
	memset(&ev, 0, sizeof(ev));
	ev.ev_type = SPOOL_EV_DELIVERED;
	ev.ev_dt = now;
	ev.ev_login = deliverd_commit_prev_str(p.ev, NULL, "account");
	ev.ev_qid = res->dr_qid;
	if (json_integer(json_get(json_get(p.ev, "issue"), "id"), &v) && v > 0)
		ev.ev_issue = (uint64_t)v;
	ev.ev_uniq = deliverd_commit_prev_str(p.ev, "gate", "uniq");
	ev.ev_from = deliverd_commit_prev_str(p.ev, NULL, "from");
	ev.ev_to = res->dr_to;
	ev.ev_message_id = deliverd_commit_prev_str(p.ev, NULL, "message_id");
	ev.ev_msg = res->dr_reply;
	if (json_integer(json_get(p.ev, "attempt"), &v) && v >= 0 &&
	    v < UINT32_MAX)
		ev.ev_attempt = (uint32_t)v + 1;
	(void)json_boolean(json_get(p.ev, "sandbox"), &ev.ev_sandbox);
	ev.ev_hop = res->dr_relay[0] ? res->dr_relay : NULL;
	ev.ev_tls = res->dr_tls[0] ? res->dr_tls : NULL;
	ev.ev_tls_verified = deliverd_commit_tls_verified(res);
	if (ev.ev_from == NULL)
		ev.ev_from = "";
	if ((rc = spool_event_add(txn, &ev, NULL)) == 0)
		*found_r = true;
out:
	json_val_free(&p.ev);
	return rc;
}

/*
 * The next hop accepted a recipient whose records are gone (the message
 * was deleted while in flight): the delivery happened, so it is logged as
 * sent and reported (deliverd(8) "Deleted while in flight").
 */
static int
deliverd_commit_gone(struct spool_txn *txn, struct deliverd_commit_batch *b,
    const struct deliverd_result *res, int64_t now)
{
	char dsn[16];
	bool found;
	int  rc;

	if (res->dr_reply[0] != '2' || res->dr_to[0] == '\0')
		return 0; /* nothing happened that the bounce does not say */
	if ((rc = deliverd_commit_gone_event(txn, res, now, &found)) != 0)
		return rc;
	(void)buf_printf(&b->log,
	    "%s: to=<%s>, relay=%s, tls=%s%s%s, dsn=%s, status=sent "
	    "(%s), deleted while in flight%s\n",
	    res->dr_qid, res->dr_to, res->dr_relay[0] ? res->dr_relay : "none",
	    res->dr_tls[0] ? res->dr_tls : "none",
	    res->dr_tlsout.to_set ? "/" : "",
	    res->dr_tlsout.to_set ? deliverd_commit_tls_verified(res) : "",
	    deliverd_commit_dsn(res->dr_reply, dsn), res->dr_reply,
	    found ? "" : ", no event: the message left no record");
	return 0;
}

/*
 * Only a recipient-level permanent failure (bounce_suppresses: bad-mailbox,
 * bad-domain, inactive-mailbox at RCPT or end of data, or a domain DNS
 * says does not exist) that no built-in veto stops (bounce_suppress_veto:
 * a reply about the sender, our address, policy, content or limits, an
 * end-of-data reply to several recipients) adds the address to the
 * account's suppression list, with its reason, reply, queue id and issue;
 * a refused greeting, sender, content or relaying never does (issue 15);
 * a domain DNS says does not exist only once it has said so for
 * nxdomain_confirm (nxfirst: deliverd_commit_nxdom). A sandbox account's
 * mail never left the host: nothing to learn from it, except from the
 * simulator, whose outcomes are meant to be learnt from (issue 18).
 */
static int
deliverd_commit_suppress(const struct conf *cf, struct spool_txn *txn,
    struct deliverd_commit_batch *b, const struct spool_msg *m,
    const struct spool_rcpt *r, const struct deliverd_result *res,
    enum bounce_cat cat, int64_t now, int64_t nxfirst)
{
	struct spool_permfail *pf;
	struct bounce_ctx      bc = { .bc_rcpt = r->sr_addr,
		     .bc_sender = m->sm_from,
		     .bc_srcip = res->dr_tlsout.to_sip,
		     .bc_shared = res->dr_shared };
	const char	      *t = res->dr_reply, *why;
	int		       rc;

	if (m->sm_sandbox && !deliverd_sim_result(cf, res))
		return 0;
	if ((why = bounce_suppress_veto(cat, res->dr_stage, t, &bc)) != NULL) {
		/* only where the category alone would have suppressed */
		if (cat == BOUNCE_BAD_MAILBOX || cat == BOUNCE_BAD_DOMAIN ||
		    cat == BOUNCE_INACTIVE_MAILBOX)
			(void)buf_printf(&b->log,
			    "%s: to=<%s>, not suppressed for account %s: "
			    "category=%s, stage=%s, veto=%s\n",
			    m->sm_qid, r->sr_addr, m->sm_login,
			    bounce_cat_name(cat),
			    bounce_stage_name(res->dr_stage), why);
		return 0;
	}
	if (nxfirst >= 0 && now - nxfirst < (int64_t)cf->cf_nxdomain_confirm) {
		(void)buf_printf(&b->log,
		    "%s: to=<%s>, not suppressed for account %s: "
		    "category=%s, stage=%s, unconfirmed: the domain has been "
		    "NXDOMAIN for %llds, nxdomain_confirm is %llds\n",
		    m->sm_qid, r->sr_addr, m->sm_login, bounce_cat_name(cat),
		    bounce_stage_name(res->dr_stage),
		    (long long)(now - nxfirst),
		    (long long)cf->cf_nxdomain_confirm);
		return 0;
	}
	pf = xcalloc(1, sizeof(*pf));
	(void)str_copy(pf->pf_login, sizeof(pf->pf_login), m->sm_login);
	(void)str_copy(pf->pf_addr, sizeof(pf->pf_addr), r->sr_addr);
	str_lower(pf->pf_addr);
	pf->pf_when = now;
	(void)str_copy(pf->pf_reply, sizeof(pf->pf_reply), t);
	(void)str_copy(pf->pf_reason, sizeof(pf->pf_reason),
	    bounce_cat_name(cat));
	(void)str_copy(pf->pf_qid, sizeof(pf->pf_qid), m->sm_qid);
	pf->pf_issue = m->sm_issue;
	if ((rc = spool_permfail_set(txn, pf)) == 0)
		(void)buf_printf(&b->log,
		    "%s: to=<%s>, suppressed for account %s: "
		    "reason=%s\n",
		    m->sm_qid, r->sr_addr, m->sm_login, pf->pf_reason);
	free(pf);
	return rc;
}

/*
 * NXDOMAIN confirmation (deliverd_nxdom.c): a bounce because DNS says the
 * recipient's domain does not exist records a sighting, and *first_r is
 * when the domain's run of such answers began; a result that got as far
 * as the domain's MX hosts (their addresses, or an SMTP reply) ends the
 * run. *first_r is -1 for any other result, and always with
 * nxdomain_confirm = 0 (suppress at once). Sandbox results say nothing of
 * DNS. A full table records nothing: the bounce counts as unconfirmed.
 */
static int
deliverd_commit_nxdom(const struct conf *cf, struct spool_txn *txn,
    struct deliverd_commit_batch *b, const struct spool_msg *m,
    const struct spool_rcpt *r, const struct deliverd_result *res, int64_t now,
    int64_t *first_r)
{
	const char *at = strrchr(r->sr_addr, '@');
	char	    dom[SPOOL_DOMAIN_MAX];
	int	    rc;

	*first_r = -1;
	if (cf->cf_nxdomain_confirm == 0 ||
	    (m->sm_sandbox && !deliverd_sim_result(cf, res)))
		return 0;
	/* as the worker looked it up: A-labels, lower case */
	if (at == NULL || idn_domain_ascii(at + 1, dom, sizeof(dom)) == -1 ||
	    dom[0] == '\0' || dom[0] == '[')
		return 0;
	if (deliverd_nxdom_reply(res->dr_stage, res->dr_reply)) {
		rc = spool_nxdom_seen(txn, dom, now, first_r);
		if (rc == ENOSPC)
			(void)buf_printf(&b->log,
			    "%s: to=<%s>: NXDOMAIN of %s not recorded: the "
			    "nxdomain "
			    "table is full (%d domains): not suppressed\n",
			    m->sm_qid, r->sr_addr, dom, SPOOL_NXDOM_MAX);
		if (rc == ENOSPC || rc == EINVAL) {
			*first_r = now;
			return 0;
		}
		return rc;
	}
	if (res->dr_mx[0] == '\0' && res->dr_stage <= BOUNCE_ST_CONNECT)
		return 0; /* nothing learnt of the domain's DNS */
	if ((rc = spool_nxdom_forget(txn, dom)) == 0)
		(void)buf_printf(&b->log,
		    "%s: to=<%s>: domain %s resolves again: its NXDOMAIN "
		    "sightings are forgotten\n",
		    m->sm_qid, r->sr_addr, dom);
	return rc == SPOOL_ENOTFOUND || rc == EINVAL ? 0 : rc;
}

/* Decides the outcome of one result and writes recipient + event. */
static int
deliverd_commit_outcome(const struct conf *cf, struct spool_txn *txn,
    struct deliverd_commit_batch *b, const struct deliverd_result *res,
    int64_t now)
{
	struct spool_rcpt  r;
	struct spool_event ev;
	struct spool_msg  *m;
	size_t		   mi;
	char		   text[SPOOL_REPLY_MAX], dsn[16];
	const char	  *status;
	enum bounce_cat	   cat;
	int64_t		   nxfirst;
	int		   rc;

	if ((rc = spool_rcpt_get(txn, res->dr_qid, res->dr_idx, &r)) ==
	    SPOOL_ENOTFOUND)
		return deliverd_commit_gone(txn, b, res, now);
	if (rc != 0 ||
	    (r.sr_state != SPOOL_RS_QUEUED &&
		r.sr_state != SPOOL_RS_DEFERRED) ||
	    (m = deliverd_commit_batch_msg(b, txn, res->dr_qid, &mi)) == NULL)
		return 0; /* finished meanwhile */
	spool_event_init(&ev, m, r.sr_addr, now);
	/* issue 15: the category of a failure; an expiry is "expired" */
	cat = deliverd_bounce_classify(res->dr_stage, res->dr_reply);
	if (res->dr_reply[0] == '4' &&
	    now >= m->sm_arrival + (int64_t)cf->cf_max_queue_lifetime)
		cat = BOUNCE_EXPIRED;
	ev.ev_category = bounce_cat_name(cat);
	if ((rc = deliverd_commit_nxdom(cf, txn, b, m, &r, res, now,
		 &nxfirst)) != 0)
		return rc;
	(void)str_copy(text, sizeof(text), res->dr_reply);
	r.sr_attempts++;
	r.sr_last = now;
	(void)str_copy(r.sr_hop, sizeof(r.sr_hop), res->dr_relay);
	(void)str_copy(r.sr_tls, sizeof(r.sr_tls), res->dr_tls);
	if (text[0] == '2') {
		r.sr_state = SPOOL_RS_DELIVERED;
		ev.ev_type = SPOOL_EV_DELIVERED;
		status = "sent";
	} else if (text[0] == '5') {
		r.sr_state = SPOOL_RS_BOUNCED;
		ev.ev_type = SPOOL_EV_BOUNCED;
		ev.ev_class = SPOOL_CL_REMOTE;
		status = "bounced";
		if ((rc = deliverd_commit_suppress(cf, txn, b, m, &r, res, cat,
			 now, nxfirst)) != 0)
			return rc;
	} else if (now >= m->sm_arrival + (int64_t)cf->cf_max_queue_lifetime) {
		(void)str_printf(text, sizeof(text),
		    "554 5.4.7 Message expired after "
		    "%lld seconds in the queue; last reply: %s",
		    (long long)(now - m->sm_arrival), res->dr_reply);
		r.sr_state = SPOOL_RS_BOUNCED;
		ev.ev_type = SPOOL_EV_BOUNCED;
		ev.ev_class = SPOOL_CL_EXPIRED;
		status = "bounced";
	} else {
		r.sr_state = SPOOL_RS_DEFERRED;
		r.sr_next = now +
		    deliverd_commit_retry_delay(cf, r.sr_attempts);
		ev.ev_type = SPOOL_EV_DEFERRED;
		status = "deferred";
	}
	(void)str_copy(r.sr_reply, sizeof(r.sr_reply), text);
	(void)str_copy(r.sr_category, sizeof(r.sr_category),
	    cat != BOUNCE_NONE ? bounce_cat_name(cat) : "");
	if ((rc = spool_rcpt_put(txn, &r)) != 0)
		return rc;
	ev.ev_msg = text;
	ev.ev_attempt = r.sr_attempts;
	ev.ev_hop = res->dr_relay[0] ? res->dr_relay : NULL;
	ev.ev_tls = res->dr_tls[0] ? res->dr_tls : NULL;
	ev.ev_tls_verified = deliverd_commit_tls_verified(res);
	if (r.sr_state == SPOOL_RS_DELIVERED)
		ev.ev_auto_reply = deliverd_sim_auto_reply(cf, res);
	if ((rc = spool_event_add(txn, &ev, NULL)) != 0)
		return rc;
	/* the simulator's complaint@: its complained event right after */
	if (r.sr_state == SPOOL_RS_DELIVERED &&
	    (rc = deliverd_sim_after(cf, txn, m, res, now, &b->log)) != 0)
		return rc;
	if (r.sr_state == SPOOL_RS_DELIVERED ||
	    r.sr_state == SPOOL_RS_BOUNCED) {
		if (m->sm_npending > 0)
			m->sm_npending--;
		b->dirty[mi] = true;
	}
	deliverd_commit_note(b, r.sr_state, cat, r.sr_addr,
	    res->dr_tls[0] != '\0');
	(void)buf_printf(&b->log,
	    "%s: to=<%s>, relay=%s, delay=%llds, tls=%s%s%s, "
	    "dsn=%s%s%s, status=%s (%s)\n",
	    m->sm_qid, r.sr_addr,
	    m->sm_sandbox && !deliverd_sim_result(cf, res) ? "sandbox"
		: res->dr_relay[0]			   ? res->dr_relay
							   : "none",
	    (long long)(now - m->sm_arrival),
	    res->dr_tls[0] ? res->dr_tls : "none",
	    res->dr_tlsout.to_set ? "/" : "",
	    res->dr_tlsout.to_set ? deliverd_commit_tls_verified(res) : "",
	    deliverd_commit_dsn(text, dsn),
	    cat != BOUNCE_NONE ? ", category=" : "",
	    cat != BOUNCE_NONE ? bounce_cat_name(cat) : "", status, text);
	return 0;
}

static int
deliverd_commit_store_sigs(const struct deliverd_sig *sigs, size_t nsigs,
    struct spool_txn *txn, struct deliverd_commit_batch *b)
{
	struct spool_msg *m;
	size_t		  i, mi;

	for (i = 0; i < nsigs; i++) {
		if ((m = deliverd_commit_batch_msg(b, txn, sigs[i].qid, &mi)) ==
			NULL ||
		    m->sm_dkim_done)
			continue;
		m->sm_dkim_done = true;
		if (str_copy(m->sm_dkim, sizeof(m->sm_dkim), sigs[i].sig) == -1)
			m->sm_dkim[0] =
			    '\0'; /* cannot happen: the worker bounds it */
		b->dirty[mi] = true;
	}
	return 0;
}

static int
deliverd_commit_write_msgs(struct spool_txn *txn,
    struct deliverd_commit_batch	    *b)
{
	size_t i;
	int    rc;

	for (i = 0; i < b->n; i++) {
		if (!b->dirty[i])
			continue;
		if (b->m[i]->sm_npending == 0) {
			/* final: the delivery log keeps the history */
			if ((rc = spool_msg_del(txn, b->m[i]->sm_qid)) != 0)
				return rc;
			b->finished = xreallocarray(b->finished, b->nfin + 1,
			    sizeof(*b->finished));
			(void)str_copy(b->finished[b->nfin++], QID_SIZE,
			    b->m[i]->sm_qid);
		} else if ((rc = spool_msg_put(txn, b->m[i])) != 0)
			return rc;
	}
	return 0;
}

static void
deliverd_commit_batch_free(struct deliverd_commit_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		free(b->m[i]);
	free(b->m);
	free(b->dirty);
	free(b->finished);
	free(b->notes);
	buf_release(&b->log);
}

/*
 * TLS reporting (issue 17 item 4): one session per job attempt, i.e. per
 * run of results of one message with the same outcome (a worker sends a
 * job's results together), under the recipient's domain, with the
 * connection's addresses and the MX's EHLO name (RFC 8460 4.4). A key
 * that does not fit (ETOOBIG, EINVAL) is not counted; a database error
 * fails the commit like any other write. The first failure of a domain,
 * day, policy and result type past SPOOL_TLSRPT_DETAIL_MAX failure rows
 * is logged (once: it creates the overflow row that counts the rest).
 */
static int
deliverd_commit_tlsrpt(struct spool_txn *txn, struct deliverd_commit_batch *b,
    const struct deliverd_result *res, size_t i, int64_t now)
{
	const struct deliverd_tlsout *o = &res[i].dr_tlsout;
	struct spool_tlsrpt_row	      r;
	bool			      over = false;
	int			      rc;

	if (res[i].dr_skip || !o->to_set || o->to_policy == TLSRES_P_RELAY ||
	    (i > 0 && !res[i - 1].dr_skip &&
		strcmp(res[i - 1].dr_qid, res[i].dr_qid) == 0 &&
		memcmp(&res[i - 1].dr_tlsout, o, sizeof(*o)) == 0))
		return 0;
	memset(&r, 0, sizeof(r));
	deliverd_domain(res[i].dr_to, r.tr_domain, sizeof(r.tr_domain));
	(void)str_copy(r.tr_policy, sizeof(r.tr_policy),
	    tlsres_policy_name(o->to_policy));
	(void)str_copy(r.tr_result, sizeof(r.tr_result),
	    tlsres_result_name(o->to_result));
	(void)str_copy(r.tr_mx, sizeof(r.tr_mx), o->to_mx);
	(void)str_copy(r.tr_pstr, sizeof(r.tr_pstr), o->to_pstr);
	(void)str_copy(r.tr_mxpat, sizeof(r.tr_mxpat), o->to_mxpat);
	(void)str_copy(r.tr_sip, sizeof(r.tr_sip), o->to_sip);
	(void)str_copy(r.tr_rip, sizeof(r.tr_rip), o->to_rip);
	(void)str_copy(r.tr_helo, sizeof(r.tr_helo), o->to_helo);
	rc = spool_tlsrpt_add(txn, now, &r, &over);
	if (rc == 0 && over)
		(void)buf_printf(&b->log,
		    "%s: tls-report: domain %s: %s failures (policy %s) past "
		    "%d failure details a day (or with names too long to "
		    "store) are counted without MX host and addresses today\n",
		    res[i].dr_qid, r.tr_domain, r.tr_result, r.tr_policy,
		    SPOOL_TLSRPT_DETAIL_MAX);
	return rc == SPOOL_ETOOBIG || rc == EINVAL ? 0 : rc;
}

static int
deliverd_commit_once(struct spool *sp, const struct conf *cf,
    const struct deliverd_sig *sigs, size_t nsigs,
    const struct deliverd_result *res, size_t nres, int64_t now)
{
	struct spool_txn	    *txn = NULL;
	struct deliverd_commit_batch b;
	size_t			     i;
	int			     rc;
	const char		    *p, *nl;

	memset(&b, 0, sizeof(b));
	buf_init(&b.log, 64 * 1024 * 1024);
	if ((rc = spool_begin(sp, true, &txn)) != 0)
		goto out;
	if ((rc = deliverd_commit_store_sigs(sigs, nsigs, txn, &b)) != 0)
		goto out;
	for (i = 0; i < nres; i++)
		if (!res[i].dr_skip &&
		    ((rc = deliverd_commit_outcome(cf, txn, &b, &res[i],
			  now)) != 0 ||
			(rc = deliverd_commit_tlsrpt(txn, &b, res, i, now)) !=
			    0))
			goto out;
	if ((rc = deliverd_commit_write_msgs(txn, &b)) != 0 ||
	    (rc = spool_commit(&txn)) != 0)
		goto out;
	for (p = b.log.data; p != NULL && (nl = strchr(p, '\n')) != NULL;
	     p = nl + 1)
		log_info("%.*s", (int)(nl - p), p);
	for (i = 0; i < b.nnotes; i++)
		metrics_delivery(b.notes[i].cn_o, b.notes[i].cn_cat,
		    b.notes[i].cn_dom, b.notes[i].cn_tls);
	for (i = 0; i < b.nfin; i++) {
		if (spool_unlink(cf->cf_spool_dir, SPOOL_QUEUE,
			b.finished[i]) != 0)
			log_warn("%s: unlink queue file", b.finished[i]);
		log_info("%s: removed", b.finished[i]);
	}
out:
	spool_abort(&txn);
	deliverd_commit_batch_free(&b);
	return rc;
}

/*
 * After the commit: the map's growth (here, or in another write of this
 * process) and cleared reader slots, one line each. True: the commit hit
 * SPOOL_EFULL and the map grew, so it is worth one more try now.
 */
static bool
deliverd_commit_map_log(struct spool *sp, bool full)
{
	struct spool_map m;
	bool		 grew;

	if (!(grew = full && spool_map_grown(sp, &m)))
		spool_map_info(sp, &m);
	if (m.mp_grew_from != 0)
		log_info("lmdb map grown: from=%lld, to=%lld, max=%lld%s",
		    (long long)m.mp_grew_from, (long long)m.mp_size,
		    (long long)m.mp_max, grew ? "; retrying the commit" : "");
	if (m.mp_readers > 0)
		log_info("cleared %u stale lmdb reader slot(s)", m.mp_readers);
	return grew;
}

/* The whole transaction is retried once when the map was full and grew. */
int
deliverd_commit(struct spool *sp, const struct conf *cf,
    const struct deliverd_sig *sigs, size_t nsigs,
    const struct deliverd_result *res, size_t nres, int64_t now)
{
	int rc;

	rc = deliverd_commit_once(sp, cf, sigs, nsigs, res, nres, now);
	if (deliverd_commit_map_log(sp, rc == SPOOL_EFULL))
		rc = deliverd_commit_once(sp, cf, sigs, nsigs, res, nres, now);
	return rc;
}
