/*
 * deliverd_dest: the scheduler's per-destination decisions on a scheduler
 * with no children (workers are table entries): connections, pipelining
 * only behind the same destination, the rate's token bucket, the back-off
 * states and their end, the state file, and the table's bound.
 */
#include "config.h"

#include "spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_dest.h"
#include "deliverd_dest_int.h"
#include "deliverd_sched.h"
#include "fsx.h"
#include "tap.h"
#include "xmem.h"

#define NW 8

static char dir[] = "/tmp/t_deliverd_dest.XXXXXX";

static struct sched *t_sched_at(const char *, bool);

static struct sched *
t_sched(const char *shaping)
{
	return t_sched_at(shaping, false);
}

/* A restart: the state file stays. */
static struct sched *
t_sched_keep(void)
{
	return t_sched_at(NULL, true);
}

static struct sched *
t_sched_at(const char *shaping, bool keep)
{
	struct sched *s = xcalloc(1, sizeof(*s));
	char	      err[256], path[256];
	FILE	     *f;
	size_t	      i;

	s->cf = conf_defaults(err, sizeof(err));
	free(s->cf->cf_spool_dir);
	s->cf->cf_spool_dir = xstrdup(dir);
	if (shaping != NULL) {
		(void)snprintf(path, sizeof(path), "%s/shaping", dir);
		f = fopen(path, "w");
		(void)fputs(shaping, f);
		(void)fclose(f);
		free(s->cf->cf_shaping_file);
		s->cf->cf_shaping_file = xstrdup(path);
	}
	(void)snprintf(path, sizeof(path), "%s/shaping.state", dir);
	if (!keep)
		(void)unlink(path);
	TAILQ_INIT(&s->queue);
	s->nw = NW;
	s->claims_max = SCHED_CLAIMS_BASE + SCHED_CLAIMS_PER_WORKER * NW;
	s->w = xcalloc(NW, sizeof(*s->w));
	for (i = 0; i < NW; i++) {
		s->w[i].pid = 100 + (pid_t)i;
		s->w[i].to_fd = 1;
	}
	deliverd_dest_init(s);
	return s;
}

static void
t_sched_free(struct sched *s)
{
	size_t i, k;

	for (i = 0; i < s->nw; i++)
		for (k = 0; k < s->w[i].njobs; k++)
			free(s->w[i].jobs[k]);
	deliverd_dest_free(s);
	conf_free(&s->cf);
	free(s->w);
	free(s);
}

static struct deliverd_sched_job *
t_job(const char *hop)
{
	struct deliverd_sched_job *sj = xcalloc(1, sizeof(*sj));

	(void)str_copy(sj->j.dj_hop, sizeof(sj->j.dj_hop), hop);
	sj->j.dj_nidx = 1;
	return sj;
}

/* Dispatches one job for hop as deliverd_sched_dispatch would; the
 * worker's index, or -1 when the destination says no. */
static int
t_dispatch(struct sched *s, const char *hop)
{
	struct deliverd_sched_job    *sj = t_job(hop);
	struct deliverd_sched_worker *w = deliverd_dest_pick_worker(s, sj);

	if (w == NULL) {
		free(sj);
		return -1;
	}
	w->jobs[w->njobs++] = sj;
	deliverd_dest_dispatched(s, (size_t)(w - s->w), sj);
	return (int)(w - s->w);
}

/* The worker's oldest job ends with this reply, at this stage, for its
 * one recipient. */
static void
t_done_at(struct sched *s, int wi, const char *reply, enum bounce_stage st)
{
	struct deliverd_sched_worker *w = &s->w[wi];
	struct deliverd_result	      r;

	memset(&r, 0, sizeof(r));
	r.dr_stage = st;
	(void)str_copy(r.dr_reply, sizeof(r.dr_reply), reply);
	(void)str_copy(r.dr_relay, sizeof(r.dr_relay),
	    "mx.example[192.0.2.1]:25");
	deliverd_dest_result(s, (size_t)wi, w->jobs[0], &r);
	deliverd_dest_job_done(s, (size_t)wi, w->jobs[0]);
	free(w->jobs[0]);
	memmove(&w->jobs[0], &w->jobs[1], (w->njobs - 1) * sizeof(w->jobs[0]));
	w->njobs--;
}

static void
t_done(struct sched *s, int wi, const char *reply)
{
	t_done_at(s, wi, reply, BOUNCE_ST_UNKNOWN);
}

static void
t_dest_connections(void)
{
	struct sched *s = t_sched(NULL);
	bool	      used[NW] = { false };
	int	      i, wi, n = 0, distinct = 0;

	/* 8 workers: a destination gets 4 connections; each of those
	 * workers may queue a second job of it, then nothing more */
	for (i = 0; i < 12; i++) {
		if ((wi = t_dispatch(s, "slow.example")) == -1)
			break;
		n++;
		if (!used[wi])
			distinct++;
		used[wi] = true;
	}
	t_int_eq(distinct, 4, "4 workers for one destination");
	t_int_eq(n, 8, "4 connections x 2 jobs, then no");
	/* another destination gets the other workers, never behind them */
	for (i = 0; i < 4; i++) {
		wi = t_dispatch(s, "other.example");
		t_ok(wi >= 0 && !used[wi],
		    "other.example on a free worker (%d)", wi);
	}
	t_int_eq(t_dispatch(s, "third.example"), -1,
	    "no free worker, none behind another");
	t_sched_free(s);
}

static void
t_dest_backoff(void)
{
	struct sched	     *s = t_sched("[default]\nsuspend_after = 3\n");
	struct deliverd_dest *e;
	char		      path[256], *data = NULL;
	size_t		      len;
	int		      wi, i;

	wi = t_dispatch(s, "busy.example");
	t_done(s, wi, "421 4.7.0 Too many connections, slow down");
	e = deliverd_dest_of(s, "busy.example");
	t_int_eq(e->state, DEST_SLOWED, "421: slowed");
	t_int_eq(deliverd_dest_conns(e), 1, "slowed: one connection");
	deliverd_dest_tick(s);
	(void)snprintf(path, sizeof(path), "%s/shaping.state", dir);
	t_int_eq(fsx_read_file(path, 1 << 20, &data, &len), 0,
	    "state file written");
	t_ok(data != NULL && strstr(data, "busy.example\tslowed\t") != NULL,
	    "slowed in it");
	free(data);
	/* slowed: 60/m, and the first job took this second's token */
	t_int_eq(t_dispatch(s, "busy.example"), -1, "the slowed rate");
	e->tokens = 1; /* a second later */
	/* one connection while slowed, no second job behind it */
	t_ok(t_dispatch(s, "busy.example") >= 0, "one job while slowed");
	e->tokens = 1;
	t_int_eq(t_dispatch(s, "busy.example"), -1, "not a second");
	for (i = 0; i < 3; i++) {
		wi = t_dispatch(s, "dead.example");
		t_done(s, wi,
		    "451 4.4.1 mx[192.0.2.9]:25: connect: Connection refused");
	}
	e = deliverd_dest_of(s, "dead.example");
	t_int_eq(e->state, DEST_SUSPENDED, "3 connection failures: suspended");
	t_int_eq(t_dispatch(s, "dead.example"), -1, "nothing while suspended");
	/* the suspension ends (its time moved into the past) */
	e->until = deliverd_now() - 1;
	s->dests->next_check = e->until;
	deliverd_dest_tick(s);
	t_int_eq(e->state, DEST_NORMAL, "normal again");
	t_ok(t_dispatch(s, "dead.example") >= 0, "a probe job");
	t_sched_free(s);
}

/* suspend_after (3) jobs in a row of one reply at one stage: suspended? */
static bool
t_dest_down(const char *hop, const char *reply, enum bounce_stage st)
{
	struct sched *s = t_sched("[default]\nsuspend_after = 3\n");
	bool	      down;
	int	      i, wi;

	for (i = 0; i < 3; i++) {
		if ((wi = t_dispatch(s, hop)) == -1) {
			deliverd_dest_of(s, hop)->tokens = 1; /* slowed: 60/m */
			wi = t_dispatch(s, hop);
		}
		t_done_at(s, wi, reply, st);
	}
	down = deliverd_dest_of(s, hop)->state == DEST_SUSPENDED;
	t_sched_free(s);
	return down;
}

/* What counts as the destination being down (h-afail): no session. */
static void
t_dest_down_replies(void)
{
	t_ok(t_dest_down("a.example",
		 "451 4.4.3 DNS lookup failed: a.example: SERVFAIL",
		 BOUNCE_ST_CONNECT),
	    "a failed MX lookup counts");
	t_ok(t_dest_down("b.example", "421 4.3.2 Service not available",
		 BOUNCE_ST_GREETING),
	    "a 421 greeting counts (though it also slows)");
	t_ok(t_dest_down("c.example",
		 "454 4.0.0 mx[192.0.2.1]:25 refused to talk to me: 554 no",
		 BOUNCE_ST_HELO),
	    "a 5xx to EHLO and HELO counts");
	/* h-dnsdown: the destination's TLS policy holds for every message */
	t_ok(t_dest_down("d.example",
		 "451 4.7.5 mx[192.0.2.1]:25: TLS is required (encrypt): "
		 "STARTTLS not offered",
		 BOUNCE_ST_HELO),
	    "a TLS level the host does not meet counts");
	t_ok(t_dest_down("g.example",
		 "451 4.7.5 mx.g.example: DANE: TLSA lookup failed "
		 "(dnssec-invalid): SERVFAIL",
		 BOUNCE_ST_CONNECT),
	    "a failed TLSA lookup counts");
	t_ok(!t_dest_down("h.example", "550 5.7.30 REQUIRETLS support required",
		 BOUNCE_ST_MAIL),
	    "a message's own REQUIRETLS does not");
	t_ok(!t_dest_down("e.example", "421 4.7.0 Try again later",
		 BOUNCE_ST_RCPT),
	    "a 421 in a session slows, does not suspend");
	t_ok(!t_dest_down("f.example", "450 4.2.1 Mailbox busy",
		 BOUNCE_ST_RCPT),
	    "a recipient's 4xx does not");
}

/* The worker's oldest job ends with this reply at the connect stage; mx:
 * the MX host set its lookup found ("" for none). */
static void
t_done_dns(struct sched *s, int wi, const char *reply, const char *mx)
{
	struct deliverd_sched_worker *w = &s->w[wi];
	struct deliverd_result	      r;

	memset(&r, 0, sizeof(r));
	r.dr_stage = BOUNCE_ST_CONNECT;
	(void)str_copy(r.dr_reply, sizeof(r.dr_reply), reply);
	(void)str_copy(r.dr_mx, sizeof(r.dr_mx), mx);
	deliverd_dest_result(s, (size_t)wi, w->jobs[0], &r);
	deliverd_dest_job_done(s, (size_t)wi, w->jobs[0]);
	free(w->jobs[0]);
	memmove(&w->jobs[0], &w->jobs[1], (w->njobs - 1) * sizeof(w->jobs[0]));
	w->njobs--;
}

/* Failed MX lookups of n distinct domains named PREFIX<i>.example. */
static void
t_dns_fail(struct sched *s, const char *prefix, int n)
{
	char hop[64];
	int  i, wi;

	for (i = 0; i < n; i++) {
		(void)snprintf(hop, sizeof(hop), "%s%d.example", prefix, i);
		if ((wi = t_dispatch(s, hop)) == -1)
			continue;
		t_done_dns(s, wi, DELIVERD_DNS_TEMPFAIL_REPLY "SERVFAIL", "");
	}
}

/* A job for hop found its MX hosts. */
static void
t_dns_answered(struct sched *s, const char *hop)
{
	int wi = t_dispatch(s, hop);

	if (wi >= 0)
		t_done_dns(s, wi, "250 2.0.0 Ok", "mx{mx.fine.example}");
}

/* h-dnsdown: the resolver down for every domain, one probe at a time. */
static void
t_dest_resolver(void)
{
	struct sched		 *s = t_sched(NULL);
	struct deliverd_resolver *d = &s->dests->rsv;
	int			  wi, i;

	for (i = 0; i < DEST_DNS_DOWN_DOMAINS + 2; i++) {
		wi = t_dispatch(s, "same.example");
		if (wi >= 0)
			t_done_dns(s, wi,
			    DELIVERD_DNS_TEMPFAIL_REPLY "SERVFAIL", "");
	}
	t_ok(!d->down, "one domain failing again and again is that domain's");
	t_dns_answered(s, "fine.example");
	t_dns_fail(s, "a", DEST_DNS_DOWN_DOMAINS - 1);
	t_dns_answered(s, "fine.example");
	t_dns_fail(s, "b", DEST_DNS_DOWN_DOMAINS - 1);
	t_ok(!d->down, "an answered lookup in between starts the count again");
	t_dns_fail(s, "c", 1);
	t_ok(d->down, "the 8th distinct domain: the resolver is down");
	t_int_eq(t_dispatch(s, "other.example"), -1, "a domain is held");
	t_ok(t_dispatch(s, "[192.0.2.7]") >= 0, "an address literal is not");
	d->next_probe = 0; /* the interval has passed */
	t_ok((wi = t_dispatch(s, "probe.example")) >= 0, "one probe");
	t_int_eq(t_dispatch(s, "other2.example"), -1, "one probe at a time");
	t_done_dns(s, wi,
	    "550 5.1.2 Host or domain name not found: "
	    "probe.example (NXDOMAIN)",
	    "");
	t_ok(!d->down, "an NXDOMAIN answer: the resolver is back");
	t_ok(t_dispatch(s, "other3.example") >= 0, "domains are taken again");
	t_sched_free(s);
}

/* Dispatches one job for hop with pass bits; the worker or -1. */
static int
t_dispatch_pass(struct sched *s, const char *hop, unsigned pass)
{
	struct deliverd_sched_job    *sj = t_job(hop);
	struct deliverd_sched_worker *w;

	sj->pass = pass;
	if ((w = deliverd_dest_pick_worker(s, sj)) == NULL) {
		free(sj);
		return -1;
	}
	w->jobs[w->njobs++] = sj;
	deliverd_dest_dispatched(s, (size_t)(w - s->w), sj);
	return (int)(w - s->w);
}

/* h-resolv: what passes a hold. */
static void
t_dest_pass(void)
{
	struct sched	     *s = t_sched(NULL);
	struct deliverd_dest *e;
	int64_t		      until;
	uint32_t	      probes;
	int		      wi, i;

	for (i = 0; i < 5; i++) /* suspend_after: a DANE failure */
		if ((wi = t_dispatch(s, "dane.example")) >= 0)
			t_done_at(s, wi,
			    "451 4.7.5 mx.dane.example: DANE: TLSA lookup "
			    "failed (dnssec-invalid): SERVFAIL",
			    BOUNCE_ST_CONNECT);
	e = deliverd_dest_find(s, "dane.example", false);
	t_ok(e != NULL && e->state == DEST_SUSPENDED && deliverd_dest_tlspol(e),
	    "suspended for its TLS policy");
	t_int_eq(t_dispatch(s, "dane.example"), -1, "ordinary mail waits");
	t_ok(!deliverd_dest_may_claim(s, "dane.example", 0, &until) &&
		until != 0,
	    "an ordinary recipient is rescheduled");
	t_ok(deliverd_dest_passable(s, "dane.example") ==
		(DEST_PASS_LOCAL | DEST_PASS_TLSPOL),
	    "sandbox and TLS-Required: No mail could pass");
	t_ok(deliverd_dest_may_claim(s, "dane.example", DEST_PASS_TLSPOL,
		 &until),
	    "TLS-Required: No passes the suspension");
	t_ok((wi = t_dispatch_pass(s, "dane.example", DEST_PASS_TLSPOL)) >= 0,
	    "and is dispatched");
	t_done(s, wi, "250 2.0.0 Ok");
	t_ok(e->state == DEST_SUSPENDED && e->fails >= 5,
	    "its success ends nothing");
	t_ok((wi = t_dispatch_pass(s, "dane.example", DEST_PASS_LOCAL)) >= 0,
	    "sandbox mail is dispatched");
	t_done(s, wi, "250 2.0.0 Ok: sandbox, not sent");
	for (i = 0; i < 5; i++) /* a network failure */
		if ((wi = t_dispatch(s, "down.example")) >= 0)
			t_done_at(s, wi,
			    "451 4.4.1 mx.down.example[192.0.2.9]:25: connect: "
			    "Connection refused",
			    BOUNCE_ST_CONNECT);
	e = deliverd_dest_find(s, "down.example", false);
	t_ok(e != NULL && e->state == DEST_SUSPENDED &&
		!deliverd_dest_tlspol(e),
	    "suspended, not for a TLS policy");
	t_int_eq(t_dispatch_pass(s, "down.example", DEST_PASS_TLSPOL), -1,
	    "TLS-Required: No does not pass that");
	t_ok(deliverd_dest_passable(s, "down.example") == DEST_PASS_LOCAL,
	    "only mail that never leaves the host could");
	t_ok((wi = t_dispatch_pass(s, "down.example", DEST_PASS_LOCAL)) >= 0,
	    "and does");
	t_done(s, wi, "451 4.7.1 Greylisted (simulator)");
	t_ok(e->state == DEST_SUSPENDED, "its outcome counts for nothing");
	t_dns_fail(s, "r", DEST_DNS_DOWN_DOMAINS);
	t_ok(s->dests->rsv.down, "the resolver is down");
	s->dests->rsv.next_probe = deliverd_now() + 60;
	probes = s->dests->rsv.probes;
	t_int_eq(t_dispatch(s, "held.example"), -1, "a domain is held");
	t_ok(!deliverd_dest_may_claim(s, "held.example", DEST_PASS_TLSPOL,
		 &until),
	    "TLS-Required: No is held too");
	t_ok(deliverd_dest_may_claim(s, "held.example", DEST_PASS_LOCAL,
		 &until),
	    "mail that never leaves the host is claimed");
	t_ok((wi = t_dispatch_pass(s, "held.example", DEST_PASS_LOCAL)) >= 0,
	    "and dispatched");
	t_int_eq(t_dispatch(s, "held2.example"), -1,
	    "it is no probe: others still held");
	t_done(s, wi, "250 2.0.0 Ok: sandbox, not sent");
	t_ok(s->dests->rsv.down && s->dests->rsv.probes == probes,
	    "nor does its outcome count as one");
	t_sched_free(s);
}

/* A failing destination gets one job at a time in the whole pool. */
static void
t_dest_failing_serial(void)
{
	struct sched *s = t_sched(NULL);
	int	      wi;

	wi = t_dispatch(s, "x.example");
	t_done(s, wi,
	    "451 4.4.1 mx[192.0.2.9]:25: connect: Connection refused");
	wi = t_dispatch(s, "x.example");
	t_ok(wi >= 0, "failing: a next job");
	t_int_eq(t_dispatch(s, "x.example"), -1, "failing: not two at once");
	t_done(s, wi, "250 2.0.0 Ok");
	t_ok(t_dispatch(s, "x.example") >= 0 && t_dispatch(s, "x.example") >= 0,
	    "through again: two at once");
	t_sched_free(s);
}

static void
t_dest_rate(void)
{
	struct sched *s = t_sched("[r.example]\nrate = 2/s\n");
	int	      n = 0;

	deliverd_dest_claimed(s, "r.example", 0, 8); /* waiting recipients */
	while (n < 8 && t_dispatch(s, "r.example") >= 0)
		n++;
	t_int_eq(n, 2, "2/s: a burst of two, then wait");
	t_ok(deliverd_dest_wait_ms(s) <= 501, "the next token within 0.5 s");
	t_sched_free(s);
}

static void
t_dest_bound(void)
{
	struct sched *s = t_sched(NULL);
	char	      name[64];
	size_t	      i;

	for (i = 0; i < DEST_MAX + 500; i++) {
		(void)snprintf(name, sizeof(name), "d%zu.example", i);
		deliverd_dest_claimed(s, name, 0, 1);
		deliverd_dest_released(s, name, 0, 1);
		s->dests->d[s->dests->n - 1].last_ms -= 2 * DEST_IDLE_HOLD_MS;
	}
	t_ok(s->dests->n <= DEST_MAX, "at most DEST_MAX destinations (%zu)",
	    s->dests->n);
	t_sched_free(s);
}

/* The worker's oldest job ends with a 250 from a host of the MX set mx. */
static void
t_done_mx(struct sched *s, int wi, const char *mx)
{
	struct deliverd_sched_worker *w = &s->w[wi];
	struct deliverd_result	      r;

	memset(&r, 0, sizeof(r));
	(void)str_copy(r.dr_reply, sizeof(r.dr_reply), "250 2.0.0 Ok");
	(void)str_copy(r.dr_relay, sizeof(r.dr_relay),
	    "m1.hoster.example[192.0.2.1]:25");
	(void)str_copy(r.dr_mx, sizeof(r.dr_mx), mx);
	deliverd_dest_result(s, (size_t)wi, w->jobs[0], &r);
	deliverd_dest_job_done(s, (size_t)wi, w->jobs[0]);
	free(w->jobs[0]);
	memmove(&w->jobs[0], &w->jobs[1], (w->njobs - 1) * sizeof(w->jobs[0]));
	w->njobs--;
}

static void
t_dest_name(struct sched *s, const char *hop, const char *want,
    const char *what)
{
	char got[DEST_NAME_MAX];

	deliverd_dest_name(s, hop, got, sizeof(got));
	t_str_eq(got, want, what);
}

static void
t_mxset_key(void)
{
	struct shaping_mxset a, b;
	char		     k[DEST_NAME_MAX], k2[DEST_NAME_MAX], host[64];
	size_t		     i;

	memset(&a, 0, sizeof(a));
	shaping_mxset_add(&a, "M2.Hoster.Example.");
	shaping_mxset_add(&a, "m1.hoster.example");
	shaping_mxset_add(&a, "m2.hoster.example"); /* a second address */
	t_int_eq(shaping_mxset_key(&a, k, sizeof(k)), 0, "a key");
	t_str_eq(k, "mx{m1.hoster.example,m2.hoster.example}",
	    "sorted, lower case, once");
	t_ok(shaping_mxset_name(k) && !shaping_mxset_name("m1.hoster.example"),
	    "an MX set's name");
	memset(&b, 0, sizeof(b));
	t_int_eq(shaping_mxset_key(&b, k, sizeof(k)), -1,
	    "the empty set: none");
	shaping_mxset_add(&b, "2001:db8::1");
	t_int_eq(shaping_mxset_key(&b, k, sizeof(k)), -1,
	    "not a host name: none");
	t_str_eq(k, "", "none is \"\"");
	/* 16 long names do not fit: the names that do, then a hash of all */
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (i = 0; i < SHAPING_MXSET_MAX; i++) {
		(void)snprintf(host, sizeof(host),
		    "mx%02zu.a-rather-long-provider-name.example", i);
		shaping_mxset_add(&a, host);
		shaping_mxset_add(&b,
		    i + 1 < SHAPING_MXSET_MAX ? host : "other.example");
	}
	t_int_eq(shaping_mxset_key(&a, k, sizeof(k)), 0, "a long set");
	t_int_eq(shaping_mxset_key(&b, k2, sizeof(k2)), 0, "another long set");
	t_ok(strlen(k) < sizeof(k) && k[strlen(k) - 1] == '}' &&
		strchr(k, '#') != NULL,
	    "cut with a hash: %s", k);
	t_ok(strcmp(k, k2) != 0, "two long sets that differ at the end differ");
}

/* Two domains on one MX set share one destination (its connections);
 * another set, a domain a section names and an address literal do not. */
static void
t_mxset_learn(void)
{
	struct sched *s = t_sched("[listed.example]\nconnections = 1\n");
	bool	      used[NW] = { false };
	int	      wi, n = 0, i;
	const char   *set = "mx{m1.hoster.example,m2.hoster.example}";

	t_dest_name(s, "d1.example", "d1.example",
	    "not learned yet: the domain");
	wi = t_dispatch(s, "d1.example");
	t_done_mx(s, wi, set);
	wi = t_dispatch(s, "d2.example");
	t_done_mx(s, wi, set);
	wi = t_dispatch(s, "d3.example");
	t_done_mx(s, wi, "mx{m1.hoster.example}");
	wi = t_dispatch(s, "listed.example");
	t_done_mx(s, wi, set);
	wi = t_dispatch(s, "[192.0.2.7]");
	t_done_mx(s, wi, "mx{192.0.2.7}");
	t_dest_name(s, "d1.example", set, "d1 by its MX set");
	t_dest_name(s, "d2.example", set, "d2 by the same set");
	t_dest_name(s, "d3.example", "mx{m1.hoster.example}",
	    "another set: another destination");
	t_dest_name(s, "listed.example", "listed.example",
	    "a section's domain stays");
	t_dest_name(s, "[192.0.2.7]", "[192.0.2.7]",
	    "an address literal stays");
	deliverd_dest_tick(s);
	/* 8 workers: 4 connections for the set, whichever domain (4 each
	 * when every domain was its own destination) */
	for (i = 0; i < 16; i++)
		if ((wi = t_dispatch(s, i % 2 ? "d2.example" : "d1.example")) >=
			0 &&
		    !used[wi]) {
			used[wi] = true;
			n++;
		}
	t_int_eq(n, 4, "4 connections for d1 and d2 together");
	t_ok(deliverd_dest_of(s, "d1.example") ==
		deliverd_dest_of(s, "d2.example"),
	    "one destination's state");
	t_ok(t_dispatch(s, "d3.example") >= 0,
	    "the other set still gets a worker");
	t_sched_free(s);
}

/* Entries expire; a result confirms; a result without a set changes
 * nothing; the map is bounded; "via" lines survive a restart. */
static void
t_mxset_expire(void)
{
	struct sched	      *s = t_sched(NULL);
	struct deliverd_dests *t = s->dests;
	const char	      *set = "mx{m1.hoster.example}";
	char		       name[64];
	int64_t		       now = deliverd_now();
	size_t		       i;
	int		       wi;

	wi = t_dispatch(s, "d1.example");
	t_done_mx(s, wi, set);
	wi = t_dispatch(s, "d1.example");
	t_done_mx(s, wi, ""); /* a cached connection: no set */
	t_dest_name(s, "d1.example", set, "learned, kept without a set");
	deliverd_dest_tick(s); /* written to the state file */
	t_sched_free(s);
	s = t_sched_keep();
	t = s->dests;
	t_dest_name(s, "d1.example", set, "kept across a restart");
	for (i = 0; i < t->nvia; i++)
		if (strcmp(t->via[i].domain, "d1.example") == 0)
			t->via[i].seen = now - DEST_VIA_TTL + 10;
	deliverd_dest_via_expire(s, now, false);
	t_dest_name(s, "d1.example", set, "not yet expired");
	wi = t_dispatch(s, "d1.example");
	t_done_mx(s, wi, set); /* confirmed */
	deliverd_dest_via_expire(s, now + 20, false);
	t_dest_name(s, "d1.example", set, "confirmed: not expired");
	deliverd_dest_via_expire(s, now + DEST_VIA_TTL + 1, false);
	t_dest_name(s, "d1.example", "d1.example",
	    "an hour without a result: forgotten");
	for (i = 0; i < DEST_VIA_MAX + 10; i++) {
		(void)snprintf(name, sizeof(name), "d%zu.example", i);
		(void)deliverd_dest_via_set(s, name, set, now + (int64_t)i);
	}
	t_int_eq(t->nvia, DEST_VIA_MAX, "at most DEST_VIA_MAX domains");
	t_ok(deliverd_dest_via_get(t, "d0.example") == NULL,
	    "the oldest went first");
	t_ok(deliverd_dest_via_get(t, "d8200.example") != NULL,
	    "the newest is there");
	t_int_eq(t->via_lost, 10, "counted for the log");
	t_sched_free(s);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "connections", t_dest_connections },
		{ "back-off", t_dest_backoff },
		{ "down-replies", t_dest_down_replies },
		{ "resolver", t_dest_resolver },
		{ "pass", t_dest_pass },
		{ "failing-serial", t_dest_failing_serial },
		{ "rate", t_dest_rate },
		{ "bound", t_dest_bound },
		{ "mxset-key", t_mxset_key },
		{ "mxset-learn", t_mxset_learn },
		{ "mxset-expire", t_mxset_expire },
	};
	char path[256];
	int  rc;

	if (mkdtemp(dir) == NULL)
		return 99;
	rc = T_RUN(cases);
	(void)snprintf(path, sizeof(path), "%s/shaping", dir);
	(void)unlink(path);
	(void)snprintf(path, sizeof(path), "%s/shaping.state", dir);
	(void)unlink(path);
	(void)rmdir(dir);
	return rc;
}
