/*
 * The destination table's internals, shared by deliverd_dest.c and
 * deliverd_dest_state.c (not an API).
 */
#ifndef SG_DELIVERD_DEST_INT_H
#define SG_DELIVERD_DEST_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "deliverd_dest.h"
#include "shaping.h"
#include "spool.h"

#define DEST_HOPCACHE		1024
#define DEST_NAME_MAX		(SPOOL_DOMAIN_MAX + 8)
/* domains learned to belong to another destination (a rule, through its
 * `mx`, or their MX host set): at most DEST_VIA_MAX, each forgotten
 * DEST_VIA_TTL after the last result that confirmed it (MX records
 * change); when full, the least recently confirmed goes first */
#define DEST_VIA_MAX		DEST_MAX
#define DEST_VIA_HASH		4096
#define DEST_VIA_TTL		3600
#define DEST_VIA_SWEEP		60 /* s between looks for expired ones */
/* a destination may hold this share of the scheduler's claims */
#define DEST_CLAIMS_SHARE_DIV	4
#define DEST_WHY_MAX		200
/* a state file line: name, escaped reason (x2), numbers (the bound
 * spoolctl_summary.c's SUM_STATE_MAX assumes: keep that number); the
 * longest lines the writer makes, a state's and a "via" line, fit */
#define DEST_LINE_MAX		1024
#define DEST_STATE_FILE_MAX	((size_t)(DEST_MAX + 4096) * DEST_LINE_MAX + 64)
#define DEST_STATE_LINE_LONGEST (DEST_NAME_MAX + 2 * DEST_WHY_MAX + 6 * 21)
#define DEST_VIA_LINE_LONGEST	(SPOOL_DOMAIN_MAX + DEST_NAME_MAX + 6 * 21)
_Static_assert((size_t)DEST_MAX *DEST_STATE_LINE_LONGEST +
	    (size_t)DEST_VIA_MAX * DEST_VIA_LINE_LONGEST + 64 <=
	DEST_STATE_FILE_MAX,
    "the state file's bound");

enum deliverd_dest_state { DEST_NORMAL = 0, DEST_SLOWED, DEST_SUSPENDED };

struct deliverd_dest {
	char			 name[DEST_NAME_MAX];
	int32_t			 next; /* hash chain */
	int			 rule; /* shaping rule, -1 = defaults */
	struct shaping_limits	 lim;  /* effective */
	enum deliverd_dest_state state;
	int64_t			 until; /* unix s: the state ends */
	uint32_t		 fails; /* consecutive connection failures */
	double			 tokens;
	int64_t			 tok_ms;
	size_t			 claims; /* recipients in memory */
	int64_t			 last_ms;
	char why[DEST_WHY_MAX]; /* the reply behind the state */
};

/* One job's replies, summed up when the job is done. */
struct deliverd_dest_acc {
	uint32_t ok, throttle, connfail;
	uint32_t refused; /* no session: a 4xx greeting or EHLO/HELO reply */
	char	 reply[DEST_WHY_MAX];
};

struct deliverd_hopcache {
	char hop[DEST_NAME_MAX];
	char dest[DEST_NAME_MAX];
};

/* A domain learned to belong to another destination. */
struct deliverd_via {
	char	domain[SPOOL_DOMAIN_MAX];
	char	dest[DEST_NAME_MAX]; /* a rule's name, or an MX set "mx{...}" */
	int64_t seen;		     /* unix s: last confirmed by a result */
	int32_t next;		     /* hash chain */
};

/*
 * The resolver itself (deliverd_dest_resolver.c): down once the MX lookups of
 * dns_down_domains (default DEST_DNS_DOWN_DOMAINS, at most
 * DEST_DNS_DOWN_MAX; 0: never) distinct domains failed temporarily
 * (timeout, SERVFAIL) within dns_down_window (default
 * DEST_DNS_DOWN_WINDOW) seconds with no lookup answered in between.
 * Then delivery that needs DNS (every hop but the relayhost, address
 * literals and mail that never leaves the host) is held: one probe job at a time, at most every
 * min(suspend_for of [default], DEST_DNS_PROBE_MAX) seconds; the first
 * answered lookup ends it. Memory: fixed, in struct deliverd_dests.
 */
#define DEST_DNS_DOWN_DOMAINS 8 /* the defaults (common/conf_keys.c) */
#define DEST_DNS_DOWN_WINDOW  60
#define DEST_DNS_DOWN_MAX     64 /* dns_down_domains' bound */
#define DEST_DNS_PROBE_MAX    60

struct deliverd_resolver {
	char	 fail[DEST_DNS_DOWN_MAX][SPOOL_DOMAIN_MAX];
	int64_t	 fail_at[DEST_DNS_DOWN_MAX]; /* unix s */
	size_t	 nfail; /* distinct domains failed since the last answer */
	bool	 down;
	bool	 requeue;    /* queued jobs that need DNS go back to LMDB */
	bool	 woken;	     /* the scan was woken for next_probe */
	int64_t	 since;	     /* unix s: down since */
	int64_t	 next_probe; /* unix s: the next probe may start */
	uint32_t probes;
	size_t	 claims; /* recipients of hops that need DNS in memory */
	char	 why[DEST_WHY_MAX];
};

struct deliverd_dests {
	struct shaping		*sh; /* NULL: built-in defaults */
	struct deliverd_dest	*d;
	size_t			 n, cap;
	int32_t			 hash[DEST_HASH];
	struct deliverd_dest	 overflow; /* when DEST_MAX hold claims */
	struct deliverd_hopcache hopcache[DEST_HOPCACHE];
	struct deliverd_via	*via;
	size_t			 nvia, capvia;
	int32_t			 viahash[DEST_VIA_HASH];
	int64_t via_sweep;	      /* unix s: the next look for expired */
	int64_t via_lost;	      /* forgotten early since the last log */
	bool	via_changed;	      /* claims to count again */
	char (*wdest)[DEST_NAME_MAX]; /* per worker */
	int64_t			 *done_ms; /* per worker: last job done */
	struct deliverd_dest_acc *acc;	   /* per worker: current job */
	bool			  dirty;   /* the state file is stale */
	bool			  resched; /* queued jobs of a suspended one */
	int64_t			  next_check; /* unix s: a state may end */
	struct deliverd_resolver  rsv;	      /* the resolver's state */
};

struct deliverd_dest *deliverd_dest_find(struct sched *, const char *name,
    bool create);
struct deliverd_dest *deliverd_dest_of(struct sched *, const char *hop);
void deliverd_dest_limits(struct sched *, struct deliverd_dest *);
bool deliverd_dest_is_relay(const struct sched *, const struct deliverd_dest *);
const struct shaping_rate *deliverd_dest_rate(const struct deliverd_dest *);
uint32_t		   deliverd_dest_conns(const struct deliverd_dest *);
double			   deliverd_dest_burst(const struct deliverd_dest *);
void	    deliverd_dest_refill(struct deliverd_dest *, int64_t now_ms);
const char *deliverd_dest_state_name(enum deliverd_dest_state);
/* Is e suspended for a failed MTA-STS or DANE policy (a 4.7.5 of ours
 * naming one), which "TLS-Required: No" mail does not need? */
bool	 deliverd_dest_tlspol(const struct deliverd_dest *);
void	 deliverd_dest_state_load(struct sched *);
uint32_t deliverd_dest_hash(const char *);
/* Learns the destination of a domain from a result: the MX host it was
 * sent to (relay, "host[addr]:port" or "") and its MX host set (mx). */
void deliverd_dest_learn(struct sched *, const char *hop, const char *relay,
    const char *mx);
/* The via map (deliverd_dest_via.c): the entry of a domain, or NULL. */
const struct deliverd_via *deliverd_dest_via_get(const struct deliverd_dests *,
    const char *domain);
/* Sets (dest non-NULL) or forgets a domain's entry; true if that changed
 * the domain's destination. */
bool deliverd_dest_via_set(struct sched *, const char *domain, const char *dest,
    int64_t seen);
/* Forgets the entries not confirmed for DEST_VIA_TTL (and, with
 * rules_too, every rule's entry: after a reload). */
void deliverd_dest_via_expire(struct sched *, int64_t now, bool rules_too);
/* From deliverd_dest_tick: expired entries go once a minute. */
void deliverd_dest_via_tick(struct sched *, int64_t now);
void deliverd_dest_via_init(struct deliverd_dests *);

/* The resolver (deliverd_dest_resolver.c). Does hop need DNS (not the
 * relayhost, not an address literal)? */
bool deliverd_dest_resolver_hop(const struct sched *, const char *hop);
/* May a recipient of hop be claimed / a job of hop be dispatched now, as
 * far as the resolver goes? (false: held while it is down) */
bool deliverd_dest_resolver_may_claim(struct sched *, const char *hop);
bool deliverd_dest_resolver_may_dispatch(struct sched *, const char *hop);
/* One result of a job: a failed or an answered lookup. */
void deliverd_dest_resolver_result(struct sched *,
    const struct deliverd_sched_job *, const struct deliverd_result *);
/* A job is done: while down, the next probe is due an interval later. */
void deliverd_dest_resolver_job_done(struct sched *,
    const struct deliverd_sched_job *);
/* The state file's line while the resolver is down (none while up):
 * DEST_RESOLVER_NAME, "down", since, next probe, resolver, probes, the
 * escaped reply (deliverd_dest_state.c's format). */
#define DEST_RESOLVER_NAME "(resolver)"
void deliverd_dest_resolver_line(const struct sched *, struct buf *);
/* From deliverd_dest_tick: queued jobs back to LMDB, the probe's scan. */
void deliverd_dest_resolver_tick(struct sched *);
/* ms until the next probe may start while down (INT32_MAX: none). */
int64_t deliverd_dest_resolver_wait_ms(const struct sched *);

#endif
