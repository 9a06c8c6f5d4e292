/*
 * Destinations: the table, the limits that apply, and the scheduler's
 * claim and dispatch decisions (deliverd_dest.h). The back-off states,
 * the state file and rescheduling live in deliverd_dest_state.c.
 *
 * Why connections default to max(1, workers/2): a destination that stops
 * answering (a tarpit) holds a worker for a whole timeout per connection;
 * with half of the workers as its ceiling, every other destination keeps
 * the other half, and a single busy destination still gets half of the
 * pool. Postfix's default_destination_concurrency_limit (20 of
 * default_process_limit 100) makes the same trade.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_cshare.h"
#include "deliverd_dest.h"
#include "deliverd_dest_int.h"
#include "deliverd_sched.h"
#include "ev.h"
#include "log.h"
#include "spool.h"
#include "xmem.h"

const struct shaping *deliverd_dest_shaping;

/* ---- the table */

uint32_t
deliverd_dest_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

static void
deliverd_dest_rehash(struct deliverd_dests *t)
{
	size_t i, h;

	for (i = 0; i < DEST_HASH; i++)
		t->hash[i] = -1;
	for (i = 0; i < t->n; i++) {
		h = deliverd_dest_hash(t->d[i].name) % DEST_HASH;
		t->d[i].next = t->hash[h];
		t->hash[h] = (int32_t)i;
	}
}

void
deliverd_dest_limits(struct sched *s, struct deliverd_dest *e)
{
	struct deliverd_dests *t = s->dests;

	shaping_effective(t->sh, e->rule, (uint32_t)s->nw,
	    (uint32_t)s->cf->cf_max_msgs_per_connection, DELIVERD_JOB_RCPT_MAX,
	    &e->lim);
	if (deliverd_dest_is_relay(s, e) && e->rule < 0) {
		/* the only destination: no other one to be fair to */
		e->lim.sl_conns = (uint32_t)s->nw;
		e->lim.sl_slow_conns = s->nw / 4 > 0 ? (uint32_t)s->nw / 4 : 1;
	}
	/* cluster mode: this node's share (deliverd_cshare.c) */
	deliverd_cshare_apply(&e->lim, deliverd_cshare_nodes());
	/* dest_concurrency stays the ceiling for every destination */
	if (e->lim.sl_conns > (uint64_t)s->cf->cf_dest_concurrency)
		e->lim.sl_conns = (uint32_t)s->cf->cf_dest_concurrency;
	if (e->lim.sl_slow_conns > e->lim.sl_conns)
		e->lim.sl_slow_conns = e->lim.sl_conns;
}

bool
deliverd_dest_is_relay(const struct sched *s, const struct deliverd_dest *e)
{
	return s->cf->cf_relayhost[0] != '\0' &&
	    strcmp(e->name, s->cf->cf_relayhost) == 0;
}

/* Room for one more entry: idle normal entries go first, then the
 * oldest back-off state (logged). 0, or -1 when every entry holds claims. */
static int
deliverd_dest_evict(struct sched *s)
{
	struct deliverd_dests *t = s->dests;
	int64_t		       now_ms = ev_clock_ms();
	size_t		       i, k = 0, old = SIZE_MAX;

	for (i = 0; i < t->n; i++) {
		struct deliverd_dest *e = &t->d[i];
		if (e->claims == 0 && e->state == DEST_NORMAL &&
		    now_ms - e->last_ms > DEST_IDLE_HOLD_MS)
			continue; /* dropped */
		if (e->claims == 0 &&
		    (old == SIZE_MAX || e->until < t->d[old].until))
			old = k;
		t->d[k++] = *e;
	}
	if (k == t->n && old != SIZE_MAX) {
		log_warnx(
		    "destination=%s, state=%s: forgotten early (more than %d "
		    "destinations)",
		    t->d[old].name, deliverd_dest_state_name(t->d[old].state),
		    DEST_MAX);
		t->d[old] = t->d[--k];
	}
	t->n = k;
	deliverd_dest_rehash(t);
	memset(t->hopcache, 0, sizeof(t->hopcache));
	return t->n < DEST_MAX ? 0 : -1;
}

/* A destination's rule: the section of that name, else the domain's. */
static int
deliverd_dest_rule(const struct shaping *sh, const char *name)
{
	size_t i;

	for (i = 0; sh != NULL && i < sh->sh_nrules; i++)
		if (strcmp(sh->sh_rules[i].sr_name, name) == 0)
			return (int)i;
	return shaping_match(sh, name);
}

struct deliverd_dest *
deliverd_dest_find(struct sched *s, const char *name, bool create)
{
	struct deliverd_dests *t = s->dests;
	struct deliverd_dest  *e;
	size_t		       h = deliverd_dest_hash(name) % DEST_HASH;
	int32_t		       i;

	for (i = t->hash[h]; i != -1; i = t->d[i].next)
		if (strcmp(t->d[i].name, name) == 0)
			return &t->d[i];
	if (!create)
		return NULL;
	if (t->n == DEST_MAX && deliverd_dest_evict(s) == -1)
		return &t->overflow;
	h = deliverd_dest_hash(name) % DEST_HASH;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->d = xreallocarray(t->d, t->cap, sizeof(*t->d));
	}
	e = &t->d[t->n];
	memset(e, 0, sizeof(*e));
	(void)str_copy(e->name, sizeof(e->name), name);
	e->rule = deliverd_dest_rule(t->sh, name);
	e->state = DEST_NORMAL;
	e->tok_ms = ev_clock_ms();
	e->last_ms = e->tok_ms;
	deliverd_dest_limits(s, e);
	e->tokens = deliverd_dest_burst(e);
	e->next = t->hash[h];
	t->hash[h] = (int32_t)t->n++;
	return e;
}

void
deliverd_dest_name(const struct sched *s, const char *hop, char *dst,
    size_t dstsz)
{
	const struct deliverd_dests *t = s->dests;
	const struct deliverd_via   *v;

	if (s->cf->cf_relayhost[0] != '\0' &&
	    strcmp(hop, s->cf->cf_relayhost) == 0)
		(void)str_copy(dst, dstsz, hop);
	else if (shaping_match(t->sh, hop) < 0 &&
	    (v = deliverd_dest_via_get(t, hop)) != NULL)
		(void)str_copy(dst, dstsz, v->dest); /* by its MX host (set) */
	else
		shaping_dest_name(t->sh, hop, dst, dstsz);
}

/* The destination of a hop, through a small direct-mapped cache (the
 * rule lookup is linear in the shaping file's domains). */
struct deliverd_dest *
deliverd_dest_of(struct sched *s, const char *hop)
{
	struct deliverd_dests	 *t = s->dests;
	struct deliverd_hopcache *c =
	    &t->hopcache[deliverd_dest_hash(hop) % DEST_HOPCACHE];
	struct deliverd_dest *e;

	if (strcmp(c->hop, hop) != 0 || c->dest[0] == '\0') {
		(void)str_copy(c->hop, sizeof(c->hop), hop);
		deliverd_dest_name(s, hop, c->dest, sizeof(c->dest));
	}
	e = deliverd_dest_find(s, c->dest, true);
	return e;
}

/* ---- claims */

uint32_t
deliverd_dest_rcpt_max(struct sched *s, const char *hop)
{
	uint32_t n = deliverd_dest_of(s, hop)->lim.sl_rcpt_per_tx;

	return n == 0 || n > DELIVERD_JOB_RCPT_MAX ? DELIVERD_JOB_RCPT_MAX : n;
}

static size_t
deliverd_dest_share(const struct sched *s, const struct deliverd_dest *e)
{
	return deliverd_dest_is_relay(s, e)
	    ? s->claims_max
	    : s->claims_max / DEST_CLAIMS_SHARE_DIV;
}

/* Does pass let a recipient through e's suspension? */
static bool
deliverd_dest_passes(const struct deliverd_dest *e, unsigned pass)
{
	return (pass & DEST_PASS_LOCAL) != 0 ||
	    ((pass & DEST_PASS_TLSPOL) != 0 && deliverd_dest_tlspol(e));
}

static bool
deliverd_dest_suspended(const struct deliverd_dest *e)
{
	return e->state == DEST_SUSPENDED && e->until > deliverd_now();
}

bool
deliverd_dest_may_claim(struct sched *s, const char *hop, unsigned pass,
    int64_t *suspended_until_r)
{
	struct deliverd_dest *e = deliverd_dest_of(s, hop);
	size_t		      share = deliverd_dest_share(s, e);

	*suspended_until_r = 0;
	if (deliverd_dest_suspended(e) && !deliverd_dest_passes(e, pass)) {
		*suspended_until_r = e->until;
		return false;
	}
	/* the resolver down: held in LMDB, but for one probe */
	return e->claims < share &&
	    ((pass & DEST_PASS_LOCAL) != 0 ||
		deliverd_dest_resolver_may_claim(s, hop));
}

unsigned
deliverd_dest_passable(struct sched *s, const char *hop)
{
	struct deliverd_dest *e = deliverd_dest_of(s, hop);

	if (e->claims >= deliverd_dest_share(s, e))
		return 0; /* its share: nothing passes that */
	if (deliverd_dest_suspended(e))
		return DEST_PASS_LOCAL |
		    (deliverd_dest_tlspol(e) ? DEST_PASS_TLSPOL : 0);
	return deliverd_dest_resolver_may_claim(s, hop) ? 0 : DEST_PASS_LOCAL;
}

void
deliverd_dest_claimed(struct sched *s, const char *hop, unsigned pass, size_t n)
{
	struct deliverd_dest *e = deliverd_dest_of(s, hop);

	e->claims += n;
	e->last_ms = ev_clock_ms();
	if ((pass & DEST_PASS_LOCAL) == 0 && deliverd_dest_resolver_hop(s, hop))
		s->dests->rsv.claims += n;
}

void
deliverd_dest_released(struct sched *s, const char *hop, unsigned pass,
    size_t n)
{
	struct deliverd_dest *e = deliverd_dest_of(s, hop);
	size_t		      share = deliverd_dest_share(s, e);

	/* below its share again: the scan may take its next recipients */
	if (e->claims >= share &&
	    e->claims - (e->claims > n ? n : e->claims) < share)
		s->rescan = true;
	e->claims = e->claims > n ? e->claims - n : 0;
	e->last_ms = ev_clock_ms();
	if ((pass & DEST_PASS_LOCAL) == 0 &&
	    deliverd_dest_resolver_hop(s, hop)) {
		struct deliverd_resolver *d = &s->dests->rsv;
		d->claims = d->claims > n ? d->claims - n : 0;
	}
}

/* ---- dispatch */

double
deliverd_dest_burst(const struct deliverd_dest *e)
{
	const struct shaping_rate *r = deliverd_dest_rate(e);
	double			   b = (double)r->n / r->per_s;

	return b < 1 ? 1 : b;
}

const struct shaping_rate *
deliverd_dest_rate(const struct deliverd_dest *e)
{
	const struct shaping_rate *n = &e->lim.sl_rate,
				  *sl = &e->lim.sl_slow_rate;

	if (e->state != DEST_SLOWED)
		return n;
	/* slowed: the lower of the two */
	if (n->n != 0 && (double)n->n / n->per_s < (double)sl->n / sl->per_s)
		return n;
	return sl;
}

uint32_t
deliverd_dest_conns(const struct deliverd_dest *e)
{
	return e->state == DEST_SLOWED ? e->lim.sl_slow_conns : e->lim.sl_conns;
}

void
deliverd_dest_refill(struct deliverd_dest *e, int64_t now_ms)
{
	const struct shaping_rate *r = deliverd_dest_rate(e);
	double			   burst = deliverd_dest_burst(e);

	if (r->n == 0) {
		e->tokens = burst;
	} else if (now_ms > e->tok_ms) {
		e->tokens += (double)(now_ms - e->tok_ms) * r->n /
		    (r->per_s * 1000.0);
		if (e->tokens > burst)
			e->tokens = burst;
	}
	e->tok_ms = now_ms;
}

/* Does worker i hold (or may it still hold) a connection to e? */
static bool
deliverd_dest_holds(const struct sched *s, size_t i,
    const struct deliverd_dest *e, int64_t now_ms)
{
	const struct deliverd_dests *t = s->dests;

	if (s->w[i].pid == -1 || strcmp(t->wdest[i], e->name) != 0)
		return false;
	return s->w[i].njobs > 0 || now_ms - t->done_ms[i] < DEST_IDLE_HOLD_MS;
}

bool
deliverd_dest_room(const struct sched *s)
{
	size_t i;

	for (i = 0; i < s->nw; i++)
		if (s->w[i].pid != -1 && s->w[i].to_fd != -1 &&
		    s->w[i].njobs + s->w[i].nuncommitted < SCHED_DEPTH)
			return true;
	return false;
}

/* Workers with a job for e in flight. */
static size_t
deliverd_dest_busy(const struct sched *s, const struct deliverd_dest *e)
{
	size_t i, n = 0;

	for (i = 0; i < s->nw; i++)
		n += s->w[i].pid != -1 && s->w[i].njobs > 0 &&
		    strcmp(s->dests->wdest[i], e->name) == 0;
	return n;
}

/* A job that never leaves the host: an idle worker (not one behind a
 * slow destination's job), outside every destination's limits. */
static struct deliverd_sched_worker *
deliverd_dest_pick_local(struct sched *s)
{
	size_t i;

	for (i = 0; i < s->nw; i++)
		if (s->w[i].pid != -1 && s->w[i].to_fd != -1 &&
		    s->w[i].njobs == 0 && s->w[i].nuncommitted < SCHED_DEPTH)
			return &s->w[i];
	return NULL;
}

/*
 * The least loaded worker that may take a job for e: a worker that holds
 * e's connection always may; another only while e is below its
 * connections. A second job goes behind a busy worker only when both are
 * for e and e is normal without failures: a job never waits behind a
 * slow destination's, and a failing one gets one attempt at a time, in
 * the whole pool.
 */
struct deliverd_sched_worker *
deliverd_dest_pick_worker(struct sched *s, const struct deliverd_sched_job *sj)
{
	struct deliverd_dest	     *e = deliverd_dest_of(s, sj->j.dj_hop);
	struct deliverd_sched_worker *w, *best = NULL;
	int64_t			      now_ms = ev_clock_ms();
	size_t			      i, holders = 0;
	bool			      hold, best_hold = false;

	if ((sj->pass & DEST_PASS_LOCAL) != 0)
		return deliverd_dest_pick_local(s);
	if ((e->state == DEST_SUSPENDED &&
		!deliverd_dest_passes(e, sj->pass)) ||
	    !deliverd_dest_resolver_may_dispatch(s, sj->j.dj_hop))
		return NULL;
	/* the last job found e down: one job at a time in the whole pool
	 * until one gets through (or suspend_after suspends e), so a dead
	 * destination holds one worker, and the probe after a suspension is
	 * one job */
	if (e->fails > 0 && deliverd_dest_busy(s, e) > 0)
		return NULL;
	deliverd_dest_refill(e, now_ms);
	if (e->tokens < 1)
		return NULL;
	for (i = 0; i < s->nw; i++)
		holders += deliverd_dest_holds(s, i, e, now_ms);
	for (i = 0; i < s->nw; i++) {
		w = &s->w[i];
		if (w->pid == -1 || w->to_fd == -1 ||
		    w->njobs + w->nuncommitted >= SCHED_DEPTH)
			continue;
		hold = deliverd_dest_holds(s, i, e, now_ms);
		if (w->njobs > 0 &&
		    (!hold || e->state != DEST_NORMAL || e->fails > 0))
			continue;
		if (!hold && holders >= deliverd_dest_conns(e))
			continue;
		if (best == NULL || w->njobs < best->njobs ||
		    (w->njobs == best->njobs && hold && !best_hold)) {
			best = w;
			best_hold = hold;
		}
	}
	return best;
}

void
deliverd_dest_dispatched(struct sched *s, size_t wi,
    const struct deliverd_sched_job *sj)
{
	struct deliverd_dests *t = s->dests;
	struct deliverd_dest  *e;

	if (s->w[wi].njobs == 1)
		memset(&t->acc[wi], 0,
		    sizeof(t->acc[wi])); /* a new run of jobs */
	/* mail that never leaves the host: no token, and the worker's
	 * connection (if any) stays its last destination's */
	if ((sj->pass & DEST_PASS_LOCAL) != 0)
		return;
	e = deliverd_dest_of(s, sj->j.dj_hop);
	e->tokens -= 1;
	e->last_ms = ev_clock_ms();
	(void)str_copy(t->wdest[wi], sizeof(t->wdest[wi]), e->name);
}

/* ---- in a worker */

int64_t
deliverd_dest_msgs_per_conn(const struct conf *cf, const char *hop)
{
	struct shaping_limits l;

	shaping_effective(deliverd_dest_shaping,
	    shaping_match(deliverd_dest_shaping, hop),
	    (uint32_t)cf->cf_deliverd_workers,
	    (uint32_t)cf->cf_max_msgs_per_connection, DELIVERD_JOB_RCPT_MAX,
	    &l);
	return l.sl_msgs_per_conn;
}

int
deliverd_dest_tls_level(const char *hop, const char *mx)
{
	struct shaping_limits l;
	int		      rule = shaping_match(deliverd_dest_shaping, hop);

	if (rule < 0 && mx != NULL)
		rule = shaping_match_mx(deliverd_dest_shaping, mx);
	shaping_effective(deliverd_dest_shaping, rule, 1, 1, 1, &l);
	return (int)l.sl_tls - 1; /* SHAPING_TLS_* = enum tls_level + 1 */
}

/* ---- setup */

static struct shaping *
deliverd_dest_load(const struct conf *cf, char *why, size_t whysz)
{
	struct shaping *sh;

	if (cf->cf_shaping_file[0] == '\0')
		return NULL;
	sh = xcalloc(1, sizeof(*sh));
	if (shaping_load(cf->cf_shaping_file, sh, why, whysz) == -1) {
		free(sh);
		return (struct shaping *)-1;
	}
	return sh;
}

void
deliverd_dest_check_conf(const struct conf *cf)
{
	struct shaping *sh;
	char		why[1024], w[4200];

	if ((sh = deliverd_dest_load(cf, why, sizeof(why))) ==
	    (struct shaping *)-1)
		log_fatalx_status(2, "%s: %s",
		    conf_where(cf, "shaping_file", w, sizeof(w)), why);
	free(sh);
}

void
deliverd_dest_init(struct sched *s)
{
	struct deliverd_dests *t = xcalloc(1, sizeof(*t));
	char		       why[1024];

	s->dests = t;
	t->wdest = xcalloc(s->nw, sizeof(*t->wdest));
	t->done_ms = xcalloc(s->nw, sizeof(*t->done_ms));
	t->acc = xcalloc(s->nw, sizeof(*t->acc));
	deliverd_dest_via_init(t);
	(void)str_copy(t->overflow.name, sizeof(t->overflow.name),
	    "(overflow)");
	t->overflow.rule = -1;
	if ((t->sh = deliverd_dest_load(s->cf, why, sizeof(why))) ==
	    (struct shaping *)-1)
		log_fatalx_status(2, "shaping_file: %s", why);
	deliverd_dest_shaping = t->sh;
	deliverd_dest_limits(s, &t->overflow);
	deliverd_dest_rehash(t);
	if (t->sh != NULL)
		log_info("shaping: %s: %zu destinations, %zu domains, %zu "
			 "throttle texts",
		    s->cf->cf_shaping_file, t->sh->sh_nrules, t->sh->sh_ndoms,
		    t->sh->sh_npat);
	deliverd_dest_state_load(s);
}

/* Claims are counted again from the jobs (after a scan's tentative
 * counts, and after a reload: names may have changed). */
void
deliverd_dest_recount(struct sched *s)
{
	struct deliverd_sched_job *sj;
	size_t			   i, k;

	for (i = 0; i < s->dests->n; i++)
		s->dests->d[i].claims = 0;
	s->dests->rsv.claims = 0;
	TAILQ_FOREACH(sj, &s->queue, link)
	deliverd_dest_claimed(s, sj->j.dj_hop, sj->pass, sj->j.dj_nidx);
	for (i = 0; i < s->nw; i++)
		for (k = 0; k < s->w[i].njobs; k++)
			deliverd_dest_claimed(s, s->w[i].jobs[k]->j.dj_hop,
			    s->w[i].jobs[k]->pass, s->w[i].jobs[k]->j.dj_nidx);
	for (i = 0; i < s->ndone; i++)
		deliverd_dest_claimed(s, s->done[i]->j.dj_hop, s->done[i]->pass,
		    s->done[i]->j.dj_nidx);
	/* a worker's connection belongs to its job's destination (a domain
	 * may just have joined another, e.g. its MX host set's) */
	for (i = 0; i < s->nw; i++)
		if (s->w[i].njobs > 0 &&
		    (s->w[i].jobs[0]->pass & DEST_PASS_LOCAL) == 0)
			(void)str_copy(s->dests->wdest[i],
			    sizeof(s->dests->wdest[i]),
			    deliverd_dest_of(s, s->w[i].jobs[0]->j.dj_hop)
				->name);
}

void
deliverd_dest_reload(struct sched *s)
{
	struct deliverd_dests *t = s->dests;
	struct shaping	      *sh;
	char		       why[1024];
	size_t		       i;

	if ((sh = deliverd_dest_load(s->cf, why, sizeof(why))) ==
	    (struct shaping *)-1) {
		log_warnx("reload: shaping_file: %s (keeping the old shaping)",
		    why);
		return;
	}
	free(t->sh);
	t->sh = sh;
	deliverd_dest_shaping = sh;
	memset(t->hopcache, 0, sizeof(t->hopcache));
	/* sections and their `mx` may have changed: learned again; MX sets stay */
	deliverd_dest_via_expire(s, deliverd_now(), true);
	for (i = 0; i < t->n; i++) {
		t->d[i].rule = deliverd_dest_rule(sh, t->d[i].name);
		deliverd_dest_limits(s, &t->d[i]);
	}
	deliverd_dest_limits(s, &t->overflow);
	deliverd_dest_recount(s);
	log_info("reload: shaping: %s",
	    sh != NULL ? s->cf->cf_shaping_file
		       : "built-in defaults (no shaping_file)");
}

void
deliverd_dest_free(struct sched *s)
{
	struct deliverd_dests *t = s->dests;

	if (t == NULL)
		return;
	free(t->sh);
	free(t->d);
	free(t->via);
	free(t->wdest);
	free(t->done_ms);
	free(t->acc);
	free(t);
	s->dests = NULL;
	deliverd_dest_shaping = NULL;
}
