/*
 * Back-off that reacts (deliverd_dest.h): the replies of each job move
 * its destination between normal, slowed and suspended; states end by
 * themselves; a suspended destination's recipients are rescheduled to the
 * end of the suspension without an attempt. Every change is one log line
 * and is written to SPOOL/shaping.state ("SMTPGATE-SHAPING 1", then one
 * TAB-separated line per destination that is not normal: name, state,
 * until (unix s), connections, rate, consecutive failures, reason; while
 * the resolver is down, first a line "(resolver)", "down", since, next
 * probe, resolver, probes, reason), which `spoolctl queue --summary`
 * reads and deliverd reads back at start (but the resolver's line).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_cshare.h"
#include "deliverd_dest.h"
#include "deliverd_dest_int.h"
#include "deliverd_sched.h"
#include "ev.h"
#include "fsx.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "xmem.h"

const char *
deliverd_dest_state_name(enum deliverd_dest_state st)
{
	return st == DEST_SLOWED   ? "slowed"
	    : st == DEST_SUSPENDED ? "suspended"
				   : "normal";
}

bool
deliverd_dest_tlspol(const struct deliverd_dest *e)
{
	return e->state == DEST_SUSPENDED && e->why[0] == '4' &&
	    strncmp(e->why + 3, " 4.7.5 ", 7) == 0 &&
	    (strstr(e->why, "MTA-STS") != NULL ||
		strstr(e->why, "DANE") != NULL);
}

static void
deliverd_dest_enter(struct sched *s, struct deliverd_dest *e,
    enum deliverd_dest_state st, uint32_t secs, const char *why)
{
	struct deliverd_dests *t = s->dests;
	char		       rate[32], vis[4 * DEST_WHY_MAX + 1];

	e->state = st;
	e->until = deliverd_now() + secs;
	(void)str_copy(e->why, sizeof(e->why), why);
	deliverd_dest_refill(e, ev_clock_ms());
	shaping_rate_format(deliverd_dest_rate(e), rate, sizeof(rate));
	(void)log_vis(vis, sizeof(vis), e->why,
	    strlen(e->why)); /* the peer's text */
	if (st == DEST_SLOWED)
		log_info("destination=%s, state=slowed, for=%us, "
			 "connections=%u, rate=%s, "
			 "reply=%s",
		    e->name, secs, deliverd_dest_conns(e), rate, vis);
	else
		log_info("destination=%s, state=suspended, for=%us, "
			 "failures=%u, reply=%s",
		    e->name, secs, e->fails, vis);
	if (t->next_check == 0 || e->until < t->next_check)
		t->next_check = e->until;
	t->dirty = true;
	if (st == DEST_SUSPENDED)
		t->resched = true;
}

static void
deliverd_dest_leave(struct sched *s, struct deliverd_dest *e)
{
	log_info("destination=%s, state=normal, was=%s", e->name,
	    deliverd_dest_state_name(e->state));
	/* after a suspension one more failure suspends again (a probe) */
	if (e->state == DEST_SUSPENDED && e->lim.sl_suspend_after > 0)
		e->fails = e->lim.sl_suspend_after - 1;
	e->state = DEST_NORMAL;
	e->until = 0;
	e->why[0] = '\0';
	s->dests->dirty = true;
}

/* The worker's own reply when the next hop could not be resolved
 * (deliverd_worker_route.c: the MX or address lookup of the recipient
 * domain, or the relayhost's name failed): X.4.3 before any SMTP reply. */
static bool
deliverd_dest_dns_failed(const struct deliverd_result *r)
{
	return r->dr_stage == BOUNCE_ST_CONNECT &&
	    strncmp(r->dr_reply, "451 4.4.3 ", 10) == 0;
}

/*
 * The destination's own TLS policy was not met before any transaction
 * (X.7.5 at the connection or EHLO/STARTTLS: a TLSA lookup that failed
 * under DANE, a `tls` level the host does not meet, a failed handshake
 * where TLS is required, MTA-STS enforce with no matching MX host). It
 * holds for every message to it, so it counts like a connection failure.
 * A message's own requirement is no such failure: REQUIRETLS that no host
 * meets is the message's 5.7.30.
 */
static bool
deliverd_dest_tls_failed(const struct deliverd_result *r)
{
	return r->dr_reply[0] == '4' &&
	    strncmp(r->dr_reply + 3, " 4.7.5 ", 7) == 0 &&
	    (r->dr_stage == BOUNCE_ST_CONNECT || r->dr_stage == BOUNCE_ST_HELO);
}

/*
 * A "TLS-Required: No" job that passed its destination's suspension for a
 * TLS policy: the policy was not applied to it, so its outcome says
 * nothing about the destination's (no failure counted, no success that
 * would clear the failures, no MX host set learned: joining that set's
 * destination would end the suspension for every message).
 */
static bool
deliverd_dest_passed(struct sched *s, const struct deliverd_sched_job *sj)
{
	return (sj->pass & DEST_PASS_TLSPOL) != 0 &&
	    deliverd_dest_tlspol(deliverd_dest_of(s, sj->j.dj_hop));
}

/*
 * A failed lookup, or an unmet TLS policy, counts as a connection failure:
 * a domain whose DNS is broken, or whose hosts fail its TLS policy, is
 * suspended after suspend_after jobs instead of being looked up (and
 * connected to) again for each of its messages. A domain that had joined
 * a destination by its MX hosts leaves it first (its MX hosts are unknown
 * now; a DANE or MTA-STS policy is the domain's own): its failures
 * suspend the domain, not its hosting provider's destination.
 */
static void
deliverd_dest_dns_result(struct sched *s, struct deliverd_dest_acc *a,
    const struct deliverd_sched_job *sj, const struct deliverd_result *r,
    const char *what)
{
	const struct deliverd_via *v;

	if (!sj->j.dj_relay &&
	    (v = deliverd_dest_via_get(s->dests, sj->j.dj_hop)) != NULL) {
		log_info("destination=%s, domain=%s, was=%s (%s)", sj->j.dj_hop,
		    sj->j.dj_hop, v->dest, what);
		(void)deliverd_dest_via_set(s, sj->j.dj_hop, NULL, 0);
	}
	a->connfail++;
	if (a->throttle == 0)
		(void)str_copy(a->reply, sizeof(a->reply), r->dr_reply);
}

/*
 * No host of the destination would hold a session: the last one refused
 * at the greeting or to EHLO/HELO (a 4xx, or a 5xx made "refused to talk
 * to me"), whatever the text says. Not our own TLS policy refusal (X.7.5),
 * which says nothing about the host's will.
 */
static bool
deliverd_dest_refused(const struct deliverd_result *r)
{
	return r->dr_reply[0] == '4' &&
	    (r->dr_stage == BOUNCE_ST_GREETING ||
		(r->dr_stage == BOUNCE_ST_HELO &&
		    strncmp(r->dr_reply + 3, " 4.7.5 ", 7) != 0));
}

void
deliverd_dest_result(struct sched *s, size_t wi,
    const struct deliverd_sched_job *sj, const struct deliverd_result *r)
{
	struct deliverd_dest_acc *a = &s->dests->acc[wi];
	bool			  refused = deliverd_dest_refused(r);

	if (r->dr_skip || (sj->pass & DEST_PASS_LOCAL) != 0)
		return; /* nothing about the destination, nor its DNS */
	deliverd_dest_resolver_result(s, sj, r);
	if (deliverd_dest_passed(s, sj))
		return;
	if (deliverd_dest_dns_failed(r)) {
		deliverd_dest_dns_result(s, a, sj, r, "its MX lookup failed");
		return;
	}
	if (deliverd_dest_tls_failed(r)) {
		deliverd_dest_dns_result(s, a, sj, r, "its TLS policy failed");
		return;
	}
	if (!sj->j.dj_relay && (r->dr_relay[0] != '\0' || r->dr_mx[0] != '\0'))
		deliverd_dest_learn(s, sj->j.dj_hop, r->dr_relay, r->dr_mx);
	if (refused && a->reply[0] == '\0')
		(void)str_copy(a->reply, sizeof(a->reply), r->dr_reply);
	a->refused += refused;
	switch (shaping_classify(s->dests->sh, r->dr_reply)) {
	case SHAPING_REPLY_THROTTLE:
		a->throttle++;
		(void)str_copy(a->reply, sizeof(a->reply), r->dr_reply);
		break;
	case SHAPING_REPLY_CONNFAIL:
		a->connfail++;
		if (a->throttle == 0)
			(void)str_copy(a->reply, sizeof(a->reply), r->dr_reply);
		break;
	default:
		a->ok += !refused;
		break;
	}
}

/* Consecutive jobs that found the destination down suspend it. */
static void
deliverd_dest_failed(struct sched *s, struct deliverd_dest *e,
    const char *reply)
{
	e->fails++;
	if (e->lim.sl_suspend_after > 0 &&
	    e->fails >= e->lim.sl_suspend_after && e->state != DEST_SUSPENDED)
		deliverd_dest_enter(s, e, DEST_SUSPENDED, e->lim.sl_suspend_for,
		    reply);
}

void
deliverd_dest_job_done(struct sched *s, size_t wi,
    const struct deliverd_sched_job *sj)
{
	struct deliverd_dests	*t = s->dests;
	struct deliverd_dest_acc a = t->acc[wi];
	struct deliverd_dest	*e = deliverd_dest_of(s, sj->j.dj_hop);

	/* down: no session at all (a refusal counts even when it also
	 * says "slow down"); a throttle after a session resets the count */
	bool down = a.ok == 0 &&
	    (a.refused > 0 || (a.connfail > 0 && a.throttle == 0));

	if ((sj->pass & DEST_PASS_LOCAL) != 0)
		return; /* its results were not counted either */
	memset(&t->acc[wi], 0, sizeof(t->acc[wi]));
	deliverd_dest_resolver_job_done(s, sj);
	t->done_ms[wi] = ev_clock_ms();
	e->last_ms = t->done_ms[wi];
	if (deliverd_dest_passed(s, sj))
		return;
	if (a.throttle > 0) {
		if (!down)
			e->fails = 0;
		if (e->state == DEST_NORMAL)
			deliverd_dest_enter(s, e, DEST_SLOWED,
			    e->lim.sl_slow_for, a.reply);
		else if (e->state == DEST_SLOWED)
			e->until = deliverd_now() +
			    e->lim.sl_slow_for; /* still throttled */
	} else if (a.ok > 0)
		e->fails = 0;
	if (down)
		deliverd_dest_failed(s, e, a.reply);
}

/* ---- rescheduling a suspended destination's recipients */

void
deliverd_dest_reschedule(struct sched *s, const struct deliverd_dest_resched *v,
    size_t n)
{
	struct spool_txn *txn = NULL;
	struct spool_rcpt r;
	size_t		  i, k = 0;
	int		  rc;

	if (n == 0)
		return;
	if ((rc = spool_begin(s->sp, true, &txn)) != 0) {
		log_warnx("rescheduling %zu recipients: %s", n,
		    spool_strerror(rc));
		return;
	}
	for (i = 0; i < n; i++) {
		if (spool_rcpt_get(txn, v[i].qid, v[i].idx, &r) != 0 ||
		    (r.sr_state != SPOOL_RS_QUEUED &&
			r.sr_state != SPOOL_RS_DEFERRED) ||
		    r.sr_next >= v[i].until)
			continue;
		r.sr_next = v[i].until;
		if ((rc = spool_rcpt_put(txn, &r)) != 0)
			break;
		k++;
	}
	if (rc != 0 || (rc = spool_commit(&txn)) != 0) {
		spool_abort(&txn);
		log_warnx("rescheduling %zu recipients: %s", n,
		    spool_strerror(rc));
		return;
	}
	log_debug("%zu recipients of suspended destinations rescheduled", k);
}

/* Queued jobs of suspended destinations go back to LMDB, due when the
 * suspension ends; their claims are released. */
static void
deliverd_dest_requeue(struct sched *s)
{
	struct deliverd_sched_job    *sj, *next;
	struct deliverd_dest_resched *v;
	struct deliverd_dest	     *e;
	size_t			      n = 0, i;

	v = xcalloc(DEST_RESCHED_MAX, sizeof(*v));
	for (sj = TAILQ_FIRST(&s->queue); sj != NULL; sj = next) {
		next = TAILQ_NEXT(sj, link);
		e = deliverd_dest_of(s, sj->j.dj_hop);
		if (e->state != DEST_SUSPENDED ||
		    (sj->pass & DEST_PASS_LOCAL) != 0 ||
		    ((sj->pass & DEST_PASS_TLSPOL) != 0 &&
			deliverd_dest_tlspol(e)))
			continue;
		if (n + sj->j.dj_nidx > DEST_RESCHED_MAX)
			break; /* the rest on the next tick */
		for (i = 0; i < sj->j.dj_nidx; i++, n++) {
			(void)str_copy(v[n].qid, sizeof(v[n].qid),
			    sj->j.dj_qid);
			v[n].idx = sj->j.dj_idx[i];
			v[n].until = e->until;
		}
		TAILQ_REMOVE(&s->queue, sj, link);
		s->nqueue--;
		deliverd_sched_job_release(s, sj);
	}
	s->dests->resched = sj != NULL;
	deliverd_dest_reschedule(s, v, n);
	free(v);
}

/* ---- the state file */

static void
deliverd_dest_state_write(struct sched *s)
{
	struct deliverd_dests *t = s->dests;
	struct buf	       b;
	char		       rate[32];
	size_t		       i;
	uint64_t	       nsusp = 0;

	buf_init(&b, DEST_STATE_FILE_MAX);
	(void)buf_printf(&b, "%s\n", DEST_STATE_VERSION);
	deliverd_dest_resolver_line(s, &b);
	for (i = 0; i < t->n; i++) {
		struct deliverd_dest *e = &t->d[i];
		if (e->state == DEST_NORMAL)
			continue;
		nsusp += e->state == DEST_SUSPENDED;
		shaping_rate_format(deliverd_dest_rate(e), rate, sizeof(rate));
		(void)buf_printf(&b, "%s\t%s\t%lld\t%u\t%s\t%u\t", e->name,
		    deliverd_dest_state_name(e->state), (long long)e->until,
		    deliverd_dest_conns(e), rate, e->fails);
		deliverd_esc(&b, e->why);
		(void)buf_puts(&b, "\n");
	}
	/* domains that joined a rule by their MX host, or their MX host set:
	 * "via" lines (domain, "via", last confirmed, -, -, 0, destination) */
	for (i = 0; i < t->nvia; i++)
		(void)buf_printf(&b, "%s\tvia\t%lld\t-\t-\t0\t%s\n",
		    t->via[i].domain, (long long)t->via[i].seen,
		    t->via[i].dest);
	/* the metrics' gauges change with the file */
	metrics_deliverd_state(t->rsv.down, nsusp);
	if (fsx_write_durable(s->cf->cf_spool_dir, DEST_STATE_FILE, b.data,
		b.len, 0640) == -1)
		log_warn("writing %s/%s", s->cf->cf_spool_dir, DEST_STATE_FILE);
	else
		t->dirty = false;
	buf_release(&b);
}

/* A "via" line: the domain joins that MX set, or the rule of that name
 * if it still is one; confirmed at seen (0: an older file, now). */
static void
deliverd_dest_state_via(struct sched *s, const char *domain, const char *seen,
    const char *dest)
{
	const struct shaping *sh = s->dests->sh;
	int64_t		      now = deliverd_now(), t = strtoll(seen, NULL, 10);
	size_t		      i;

	if (t <= 0 || t > now)
		t = now;
	if (now - t >= DEST_VIA_TTL || domain[0] == '\0' ||
	    strlen(domain) >= SPOOL_DOMAIN_MAX || strlen(dest) >= DEST_NAME_MAX)
		return;
	for (i = 0;
	     !shaping_mxset_name(dest) && sh != NULL && i < sh->sh_nrules; i++)
		if (strcmp(sh->sh_rules[i].sr_name, dest) == 0)
			break;
	if (shaping_mxset_name(dest) || (sh != NULL && i < sh->sh_nrules))
		(void)deliverd_dest_via_set(s, domain, dest, t);
}

/* Restores the states saved before a restart that have not ended. */
void
deliverd_dest_state_load(struct sched *s)
{
	char		      path[4096], *data = NULL, *line, *next, *f[7];
	size_t		      len, k;
	struct deliverd_dest *e;
	long long	      until;

	if (snprintf(path, sizeof(path), "%s/%s", s->cf->cf_spool_dir,
		DEST_STATE_FILE) >= (int)sizeof(path) ||
	    fsx_read_file(path, DEST_STATE_FILE_MAX, &data, &len) == -1)
		return;
	line = data;
	if (strncmp(line, DEST_STATE_VERSION "\n",
		sizeof(DEST_STATE_VERSION)) != 0) {
		log_warnx("%s: not a state file of this version: ignored",
		    path);
		free(data);
		return;
	}
	for (line = strchr(line, '\n') + 1; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		next = next ? (*next = '\0', next + 1) : line + strlen(line);
		for (k = 0, f[0] = line;
		     k < 6 && (f[k + 1] = strchr(f[k], '\t')) != NULL; k++)
			*f[k + 1]++ = '\0';
		if (k == 6 && strcmp(f[1], "via") == 0) {
			deliverd_dest_state_via(s, f[0], f[2], f[6]);
			continue;
		}
		if (strcmp(f[0], DEST_RESOLVER_NAME) == 0)
			continue; /* the resolver's state is not kept */
		if (k != 6 ||
		    (until = strtoll(f[2], NULL, 10)) <= deliverd_now())
			continue;
		e = deliverd_dest_find(s, f[0], true);
		e->state = strcmp(f[1], "suspended") == 0 ? DEST_SUSPENDED
							  : DEST_SLOWED;
		e->until = until;
		(void)deliverd_unesc(f[6], strlen(f[6]), e->why,
		    sizeof(e->why));
		if (s->dests->next_check == 0 || until < s->dests->next_check)
			s->dests->next_check = until;
		log_info("destination=%s, state=%s, until=%lld (kept across "
			 "the restart)",
		    e->name, f[1], until);
	}
	free(data);
	s->dests->dirty = true;
}

/* ---- timers */

void
deliverd_dest_tick(struct sched *s)
{
	struct deliverd_dests *t = s->dests;
	int64_t		       now = deliverd_now();
	size_t		       i;

	deliverd_cshare_tick(s); /* cluster mode: the live nodes' share */
	if (t->next_check != 0 && now >= t->next_check) {
		t->next_check = 0;
		for (i = 0; i < t->n; i++) {
			struct deliverd_dest *e = &t->d[i];
			if (e->state == DEST_NORMAL)
				continue;
			if (e->until <= now)
				deliverd_dest_leave(s, e);
			else if (t->next_check == 0 || e->until < t->next_check)
				t->next_check = e->until;
		}
		s->rescan = true; /* their recipients may be due again */
	}
	deliverd_dest_via_tick(s, now);
	deliverd_dest_resolver_tick(s);
	if (t->via_changed) {
		t->via_changed = false;
		deliverd_dest_recount(s);
	}
	if (t->resched && !s->retry.pending)
		deliverd_dest_requeue(s);
	if (t->dirty)
		deliverd_dest_state_write(s);
}

int64_t
deliverd_dest_wait_ms(struct sched *s)
{
	struct deliverd_dests	  *t = s->dests;
	const struct shaping_rate *r;
	int64_t			   ms = INT32_MAX, now_ms = ev_clock_ms(), w;
	size_t			   i;

	if (t->next_check != 0)
		ms = (t->next_check - deliverd_now()) * 1000;
	if (t->dirty || (t->resched && !s->retry.pending))
		ms = 0;
	if ((w = deliverd_dest_resolver_wait_ms(s)) < ms)
		ms = w;
	for (i = 0; i < t->n; i++) {
		struct deliverd_dest *e = &t->d[i];
		if (e->claims == 0 || e->state == DEST_SUSPENDED ||
		    (r = deliverd_dest_rate(e))->n == 0)
			continue;
		deliverd_dest_refill(e, now_ms);
		if (e->tokens >= 1)
			continue;
		w = (int64_t)((1 - e->tokens) * r->per_s * 1000.0 / r->n) + 1;
		if (w < ms)
			ms = w;
	}
	return ms < 0 ? 0 : ms;
}
