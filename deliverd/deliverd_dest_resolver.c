/*
 * The resolver itself down (deliverd_dest_int.h, struct deliverd_resolver):
 * when every lookup fails, for every domain, each destination would spend
 * its own suspend_after jobs (a lookup, a deferral, an event each) before
 * its suspension; with thousands of domains that is thousands of lookups
 * and deferrals against a resolver that answers none. Once the MX lookups
 * of dns_down_domains distinct domains failed temporarily within
 * dns_down_window seconds with no lookup answered in between, every
 * hop that needs DNS is held instead: its recipients stay due in LMDB
 * (not claimed, not attempted, no event) but for one probe job at a time,
 * one at most every min(suspend_for of [default], DEST_DNS_PROBE_MAX)
 * seconds. The first lookup answered (MX hosts found, or a definite
 * NXDOMAIN/no-host/null-MX answer) ends the state, and the next scan
 * takes everything. The relayhost and address literals are never held.
 * One log line on entering and one on leaving, and a line in the state
 * file (for `spoolctl queue --summary`; the metrics' gauge is set with
 * it) while down; the state is not kept across a restart (detecting it again costs dns_down_domains lookups).
 * dns_down_domains = 0 turns the rule off.
 */
#include "config.h"

#include <string.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_dest.h"
#include "deliverd_dest_int.h"
#include "deliverd_sched.h"
#include "log.h"
#include "shaping.h"

bool
deliverd_dest_resolver_hop(const struct sched *s, const char *hop)
{
	if (hop[0] == '[')
		return false; /* an address literal: no lookup (RFC 5321 5.1) */
	return s->cf->cf_relayhost[0] == '\0' ||
	    strcmp(hop, s->cf->cf_relayhost) != 0;
}

static const char *
deliverd_dest_resolver_name(const struct sched *s)
{
	return s->cf->cf_dns_server[0] != '\0' ? s->cf->cf_dns_server
					       : "system";
}

/* Seconds between probes: [default]'s suspend_for, at most a minute. */
static int64_t
deliverd_dest_resolver_interval(const struct sched *s)
{
	struct shaping_limits l;

	shaping_effective(s->dests->sh, -1, (uint32_t)s->nw, 1, 1, &l);
	if (l.sl_suspend_for < 1)
		return 1;
	return l.sl_suspend_for < DEST_DNS_PROBE_MAX ? l.sl_suspend_for
						     : DEST_DNS_PROBE_MAX;
}

/* The worker's reply when the MX lookup itself failed (route.c). */
static bool
deliverd_dest_resolver_failed(const struct deliverd_result *r)
{
	return r->dr_stage == BOUNCE_ST_CONNECT &&
	    strncmp(r->dr_reply, DELIVERD_DNS_TEMPFAIL_REPLY,
		sizeof(DELIVERD_DNS_TEMPFAIL_REPLY) - 1) == 0;
}

/* The resolver answered this job's lookups: MX hosts with addresses (the
 * set rides on the result), or a definite answer that bounces. A result
 * over a reused connection made no lookup and says nothing. */
static bool
deliverd_dest_resolver_answered(const struct deliverd_result *r)
{
	if (r->dr_mx[0] != '\0')
		return true;
	return r->dr_stage == BOUNCE_ST_CONNECT &&
	    (strncmp(r->dr_reply, "550 5.1.2 ", 10) == 0 ||
		strncmp(r->dr_reply, "556 5.1.10 ", 11) == 0);
}

/* Notes hop's failure at now among the distinct domains of the window
 * (window seconds; at most max domains are kept). */
static void
deliverd_dest_resolver_note(struct deliverd_resolver *d, const char *hop,
    int64_t now, int64_t window, size_t max)
{
	size_t i, k = 0;
	bool   seen = false;

	for (i = 0; i < d->nfail; i++) {
		if (strcmp(d->fail[i], hop) == 0) {
			seen = true;
			d->fail_at[i] = now;
		}
		if (now - d->fail_at[i] > window)
			continue; /* too old to count */
		if (k != i) {
			memcpy(d->fail[k], d->fail[i], sizeof(d->fail[k]));
			d->fail_at[k] = d->fail_at[i];
		}
		k++;
	}
	d->nfail = k;
	if (!seen && k < max &&
	    str_copy(d->fail[k], sizeof(d->fail[k]), hop) == 0) {
		d->fail_at[k] = now;
		d->nfail++;
	}
}

static void
deliverd_dest_resolver_enter(struct sched *s)
{
	struct deliverd_resolver *d = &s->dests->rsv;
	char			  vis[4 * DEST_WHY_MAX + 1];
	int64_t			  iv = deliverd_dest_resolver_interval(s);

	d->down = true;
	d->requeue = true;
	d->woken = false;
	d->since = deliverd_now();
	d->next_probe = d->since + iv;
	d->probes = 0;
	(void)log_vis(vis, sizeof(vis), d->why, strlen(d->why));
	log_info("resolver=%s, state=down, domains=%zu, window=%ds, "
		 "probe_every=%llds, reply=%s: delivery that needs DNS is "
		 "held",
	    deliverd_dest_resolver_name(s), d->nfail,
	    (int)s->cf->cf_dns_down_window, (long long)iv, vis);
	d->nfail = 0;
	s->dests->dirty = true; /* the state file's line */
}

static void
deliverd_dest_resolver_up(struct sched *s, const char *hop)
{
	struct deliverd_resolver *d = &s->dests->rsv;

	d->nfail = 0;
	if (!d->down)
		return;
	log_info("resolver=%s, state=up, was=down, for=%llds, probes=%u, "
		 "domain=%s",
	    deliverd_dest_resolver_name(s),
	    (long long)(deliverd_now() - d->since), d->probes, hop);
	d->down = false;
	d->requeue = false;
	d->next_probe = 0;
	s->rescan = true;	/* the held recipients are due */
	s->dests->dirty = true; /* the state file's line goes */
}

void
deliverd_dest_resolver_line(const struct sched *s, struct buf *b)
{
	const struct deliverd_resolver *d = &s->dests->rsv;

	if (!d->down)
		return;
	(void)buf_printf(b, "%s\tdown\t%lld\t%lld\t%s\t%u\t",
	    DEST_RESOLVER_NAME, (long long)d->since, (long long)d->next_probe,
	    deliverd_dest_resolver_name(s), d->probes);
	deliverd_esc(b, d->why);
	(void)buf_puts(b, "\n");
}

void
deliverd_dest_resolver_result(struct sched *s,
    const struct deliverd_sched_job *sj, const struct deliverd_result *r)
{
	struct deliverd_resolver *d = &s->dests->rsv;
	size_t max = s->cf->cf_dns_down_domains < DEST_DNS_DOWN_MAX
	    ? (size_t)s->cf->cf_dns_down_domains
	    : DEST_DNS_DOWN_MAX;

	if (r->dr_skip || sj->j.dj_relay ||
	    !deliverd_dest_resolver_hop(s, sj->j.dj_hop))
		return;
	if (deliverd_dest_resolver_answered(r)) {
		deliverd_dest_resolver_up(s, sj->j.dj_hop);
		return;
	}
	if (!deliverd_dest_resolver_failed(r))
		return;
	(void)str_copy(d->why, sizeof(d->why), r->dr_reply);
	if (d->down || max == 0)
		return;
	deliverd_dest_resolver_note(d, sj->j.dj_hop, deliverd_now(),
	    (int64_t)s->cf->cf_dns_down_window, max);
	if (d->nfail >= max)
		deliverd_dest_resolver_enter(s);
}

bool
deliverd_dest_resolver_may_claim(struct sched *s, const char *hop)
{
	const struct deliverd_resolver *d = &s->dests->rsv;

	if (!d->down || !deliverd_dest_resolver_hop(s, hop))
		return true;
	/* the probe: one recipient, when the interval has passed */
	return d->claims == 0 && deliverd_now() >= d->next_probe;
}

bool
deliverd_dest_resolver_may_dispatch(struct sched *s, const char *hop)
{
	const struct deliverd_resolver	*d = &s->dests->rsv;
	const struct deliverd_sched_job *sj;
	size_t				 i, k;

	if (!d->down || !deliverd_dest_resolver_hop(s, hop))
		return true;
	if (deliverd_now() < d->next_probe)
		return false;
	for (i = 0; i < s->nw; i++)
		for (k = 0; s->w[i].pid != -1 && k < s->w[i].njobs; k++) {
			sj = s->w[i].jobs[k];
			if (!sj->j.dj_relay &&
			    (sj->pass & DEST_PASS_LOCAL) == 0 &&
			    deliverd_dest_resolver_hop(s, sj->j.dj_hop))
				return false; /* a probe is out */
		}
	return true;
}

void
deliverd_dest_resolver_job_done(struct sched *s,
    const struct deliverd_sched_job	     *sj)
{
	struct deliverd_resolver *d = &s->dests->rsv;

	if (!d->down || sj->j.dj_relay ||
	    !deliverd_dest_resolver_hop(s, sj->j.dj_hop))
		return;
	d->probes++;
	d->next_probe = deliverd_now() + deliverd_dest_resolver_interval(s);
	d->woken = false;
	s->dests->dirty = true; /* the state file's probes and next probe */
}

/* Queued jobs that need DNS, claimed before the outage was seen, give
 * their claims back: their recipients stay due in LMDB, untouched. */
static void
deliverd_dest_resolver_requeue(struct sched *s)
{
	struct deliverd_sched_job *sj, *next;
	size_t			   n = 0;

	for (sj = TAILQ_FIRST(&s->queue); sj != NULL; sj = next) {
		next = TAILQ_NEXT(sj, link);
		if (sj->j.dj_relay || (sj->pass & DEST_PASS_LOCAL) != 0 ||
		    !deliverd_dest_resolver_hop(s, sj->j.dj_hop))
			continue;
		TAILQ_REMOVE(&s->queue, sj, link);
		s->nqueue--;
		n += sj->j.dj_nidx;
		deliverd_sched_job_release(s, sj);
	}
	if (n > 0)
		log_debug("resolver down: %zu queued recipients left in the "
			  "queue",
		    n);
}

void
deliverd_dest_resolver_tick(struct sched *s)
{
	struct deliverd_resolver *d = &s->dests->rsv;

	if (!d->down)
		return;
	if (d->requeue) {
		d->requeue = false;
		deliverd_dest_resolver_requeue(s);
	}
	if (!d->woken && deliverd_now() >= d->next_probe) {
		d->woken = true;
		s->rescan = true; /* a scan takes the probe */
	}
}

int64_t
deliverd_dest_resolver_wait_ms(const struct sched *s)
{
	const struct deliverd_resolver *d = &s->dests->rsv;
	int64_t				ms;

	if (!d->down || d->woken)
		return INT32_MAX;
	ms = (d->next_probe - deliverd_now()) * 1000;
	return ms < 0 ? 0 : ms;
}
