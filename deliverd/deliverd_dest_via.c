/*
 * Which destination a domain belongs to beyond the shaping file's
 * `domains` (deliverd_dest.h): learned from each result of a job.
 *
 * - MX rollup: a domain whose MX host matches a section's `mx` joins that
 *   section (Google Workspace domains share Gmail's limits).
 * - MX host set: any other domain joins the destination of its MX host
 *   set, named "mx{a.example,b.example}" (shaping_mxset_key): every domain
 *   hosted on the same MX servers (a hosting provider's small domains)
 *   shares one destination's connections, rate, back-off and suspension,
 *   instead of each taking its own share of the workers.
 *
 * The worker reports the set it resolved (the hosts of the MX records
 * that have an address, sorted: stable whatever order equal preferences
 * come in, and whichever host answered or failed); a result of a cached
 * connection carries none and changes nothing. The first job of a domain
 * not seen before goes to the domain's own destination: it is the result
 * that teaches. A domain listed in a section never moves.
 *
 * Bounds: at most DEST_VIA_MAX entries in a chained hash; an entry is
 * forgotten DEST_VIA_TTL after the last result that confirmed it (MX
 * records change; a domain still sending is confirmed by each new
 * connection and so never expires); when full, the entry confirmed
 * longest ago goes (counted and logged once a minute), and that domain's
 * next result teaches it again.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_dest.h"
#include "deliverd_dest_int.h"
#include "deliverd_sched.h"
#include "log.h"
#include "spool.h"
#include "xmem.h"

/* ---- the map */

static void
deliverd_dest_via_rehash(struct deliverd_dests *t)
{
	size_t i, h;

	for (i = 0; i < DEST_VIA_HASH; i++)
		t->viahash[i] = -1;
	for (i = 0; i < t->nvia; i++) {
		h = deliverd_dest_hash(t->via[i].domain) % DEST_VIA_HASH;
		t->via[i].next = t->viahash[h];
		t->viahash[h] = (int32_t)i;
	}
}

static int32_t
deliverd_dest_via_find(const struct deliverd_dests *t, const char *domain)
{
	int32_t i;

	for (i = t->viahash[deliverd_dest_hash(domain) % DEST_VIA_HASH];
	     i != -1; i = t->via[i].next)
		if (strcmp(t->via[i].domain, domain) == 0)
			return i;
	return -1;
}

const struct deliverd_via *
deliverd_dest_via_get(const struct deliverd_dests *t, const char *domain)
{
	int32_t i = deliverd_dest_via_find(t, domain);

	return i == -1 ? NULL : &t->via[i];
}

/* A domain's destination changed: its cached name goes, claims are
 * counted again, the state file is rewritten. */
static void
deliverd_dest_via_changed(struct deliverd_dests *t, const char *domain)
{
	memset(&t->hopcache[deliverd_dest_hash(domain) % DEST_HOPCACHE], 0,
	    sizeof(t->hopcache[0]));
	t->via_changed = true;
	t->dirty = true;
}

/* Forgets the entries not confirmed for DEST_VIA_TTL (with rules_too,
 * every rule's entry too); true if any went. */
static bool
deliverd_dest_via_filter(struct deliverd_dests *t, int64_t now, bool rules_too)
{
	size_t i, k = 0;

	for (i = 0; i < t->nvia; i++) {
		struct deliverd_via *v = &t->via[i];
		if (now - v->seen < DEST_VIA_TTL &&
		    (!rules_too || shaping_mxset_name(v->dest))) {
			t->via[k++] = *v;
			continue;
		}
		deliverd_dest_via_changed(t, v->domain);
	}
	if (k == t->nvia)
		return false;
	t->nvia = k;
	deliverd_dest_via_rehash(t);
	return true;
}

void
deliverd_dest_via_expire(struct sched *s, int64_t now, bool rules_too)
{
	s->dests->via_sweep = now + DEST_VIA_SWEEP;
	(void)deliverd_dest_via_filter(s->dests, now, rules_too);
}

/* Room for one more entry: the expired ones go, else the one confirmed
 * longest ago. */
static void
deliverd_dest_via_room(struct deliverd_dests *t, int64_t now)
{
	size_t i, old = 0;

	if (deliverd_dest_via_filter(t, now, false))
		return;
	for (i = 1; i < t->nvia; i++)
		if (t->via[i].seen < t->via[old].seen)
			old = i;
	deliverd_dest_via_changed(t, t->via[old].domain);
	t->via[old] = t->via[--t->nvia];
	deliverd_dest_via_rehash(t);
	t->via_lost++;
}

bool
deliverd_dest_via_set(struct sched *s, const char *domain, const char *dest,
    int64_t seen)
{
	struct deliverd_dests *t = s->dests;
	int32_t		       i = deliverd_dest_via_find(t, domain);
	struct deliverd_via   *v = i == -1 ? NULL : &t->via[i];
	size_t		       h;

	if (v != NULL && dest != NULL && strcmp(v->dest, dest) == 0) {
		v->seen = seen > v->seen ? seen : v->seen;
		return false;
	}
	if (v == NULL && dest == NULL)
		return false;
	deliverd_dest_via_changed(t, domain);
	if (dest == NULL) {
		*v = t->via[--t->nvia];
		deliverd_dest_via_rehash(t);
		return true;
	}
	if (v == NULL) {
		if (t->nvia == DEST_VIA_MAX)
			deliverd_dest_via_room(t, deliverd_now());
		if (t->nvia == t->capvia) {
			t->capvia = t->capvia ? t->capvia * 2 : 64;
			t->via = xreallocarray(t->via, t->capvia,
			    sizeof(*t->via));
		}
		v = &t->via[t->nvia];
		memset(v, 0, sizeof(*v));
		(void)str_copy(v->domain, sizeof(v->domain), domain);
		h = deliverd_dest_hash(domain) % DEST_VIA_HASH;
		v->next = t->viahash[h];
		t->viahash[h] = (int32_t)t->nvia++;
	}
	(void)str_copy(v->dest, sizeof(v->dest), dest);
	v->seen = seen;
	return true;
}

/* Once a minute from deliverd_dest_tick: the expired entries go. */
void
deliverd_dest_via_tick(struct sched *s, int64_t now)
{
	struct deliverd_dests *t = s->dests;

	if (now < t->via_sweep)
		return;
	deliverd_dest_via_expire(s, now, false);
	if (t->via_lost > 0)
		log_warnx("%lld domains' destinations forgotten early (more "
			  "than %d learned): "
			  "learned again from their next delivery",
		    (long long)t->via_lost, DEST_VIA_MAX);
	t->via_lost = 0;
}

/* ---- learning */

/* "host[addr]:port" -> host ("" when there is none). */
static void
deliverd_dest_relay_host(const char *relay, char *dst, size_t dstsz)
{
	const char *b = strchr(relay, '[');

	dst[0] = '\0';
	if (b != NULL && b > relay)
		(void)str_ncopy(dst, dstsz, relay, (size_t)(b - relay));
}

/* The rule whose `mx` matches a host of the set "mx{a,b}" (the host in
 * dst), or -1. */
static int
deliverd_dest_mx_rule(const struct shaping *sh, const char *mx, char *dst,
    size_t dstsz)
{
	const char *p = mx + strlen(SHAPING_MXSET_PREFIX), *e;
	int	    r;

	for (; sh != NULL && sh->sh_nmx > 0 && *p != '\0';
	     p = *e != '\0' ? e + 1 : e) {
		e = p + strcspn(p, ",}");
		if (str_ncopy(dst, dstsz, p, (size_t)(e - p)) == 0 &&
		    (r = shaping_match_mx(sh, dst)) >= 0)
			return r;
	}
	dst[0] = '\0';
	return -1;
}

/*
 * A section by the MX host that answered, else by any host of the set;
 * else the MX set; a domain under a section whose MX host no longer
 * matches leaves it. Each join is one log line.
 */
void
deliverd_dest_learn(struct sched *s, const char *hop, const char *relay,
    const char *mx)
{
	struct deliverd_dests	  *t = s->dests;
	const struct deliverd_via *v = deliverd_dest_via_get(t, hop);
	const char		  *dest = NULL;
	char host[SHAPING_DOMAIN_MAX], mxhost[SHAPING_DOMAIN_MAX];
	int  r = -1;

	if (hop[0] == '[' || shaping_match(t->sh, hop) >= 0)
		return; /* an address literal; a domain a section names */
	if (!shaping_mxset_name(mx))
		mx = ""; /* none (a cached connection's result) */
	deliverd_dest_relay_host(relay, host, sizeof(host));
	if (host[0] != '\0')
		r = shaping_match_mx(t->sh, host);
	if (r < 0 && mx[0] != '\0' &&
	    (r = deliverd_dest_mx_rule(t->sh, mx, mxhost, sizeof(mxhost))) >= 0)
		(void)str_copy(host, sizeof(host), mxhost);
	if (r >= 0)
		dest = t->sh->sh_rules[r].sr_name;
	else if (mx[0] != '\0')
		dest = mx;
	else if (host[0] == '\0' || v == NULL || shaping_mxset_name(v->dest))
		return; /* nothing to learn, nothing to forget */
	if (!deliverd_dest_via_set(s, hop, dest, deliverd_now()))
		return;
	if (r >= 0)
		log_info("destination=%s, domain=%s, mx=%s (by its MX host)",
		    dest, hop, host);
	else if (dest != NULL)
		log_info("destination=%s, domain=%s (by its MX host set)", dest,
		    hop);
	else
		log_info("destination=%s, domain=%s, mx=%s (its MX host "
			 "matches no section)",
		    hop, hop, host);
}

void
deliverd_dest_via_init(struct deliverd_dests *t)
{
	free(t->via);
	t->via = NULL;
	t->nvia = t->capvia = 0;
	deliverd_dest_via_rehash(t);
}
