/*
 * The destination table's internals, shared by deliverd_dest.c and
 * deliverd_dest_state.c (not an API).
 */
#ifndef SG_DELIVERD_DEST_INT_H
#define SG_DELIVERD_DEST_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "deliverd_dest.h"
#include "shaping.h"
#include "spool.h"

#define DEST_HOPCACHE		1024
/* domains learned to belong to a rule through its `mx` (direct-mapped:
 * a collision forgets one, and the next delivery learns it again) */
#define DEST_VIA_MAX		4096
/* a destination may hold this share of the scheduler's claims */
#define DEST_CLAIMS_SHARE_DIV	4
#define DEST_WHY_MAX		200
/* a state file line: name, escaped reason (x2), numbers */
#define DEST_LINE_MAX		1024
#define DEST_STATE_FILE_MAX	((size_t)(DEST_MAX + DEST_VIA_MAX) * DEST_LINE_MAX + 64)

enum deliverd_dest_state { DEST_NORMAL = 0, DEST_SLOWED, DEST_SUSPENDED };

struct deliverd_dest {
	char			 name[SPOOL_DOMAIN_MAX + 8];
	int32_t			 next;		/* hash chain */
	int			 rule;		/* shaping rule, -1 = defaults */
	struct shaping_limits	 lim;		/* effective */
	enum deliverd_dest_state state;
	int64_t			 until;		/* unix s: the state ends */
	uint32_t		 fails;		/* consecutive connection failures */
	double			 tokens;
	int64_t			 tok_ms;
	size_t			 claims;	/* recipients in memory */
	int64_t			 last_ms;
	char			 why[DEST_WHY_MAX];	/* the reply behind the state */
};

/* One job's replies, summed up when the job is done. */
struct deliverd_dest_acc {
	uint32_t	 ok, throttle, connfail;
	char		 reply[DEST_WHY_MAX];
};

struct deliverd_hopcache {
	char	 hop[SPOOL_DOMAIN_MAX + 8];
	char	 dest[SPOOL_DOMAIN_MAX + 8];
};

struct deliverd_via {
	char	 domain[SPOOL_DOMAIN_MAX];
	int	 rule;			/* -1: empty */
};

struct deliverd_dests {
	struct shaping		*sh;		/* NULL: built-in defaults */
	struct deliverd_dest	*d;
	size_t			 n, cap;
	int32_t			 hash[DEST_HASH];
	struct deliverd_dest	 overflow;	/* when DEST_MAX hold claims */
	struct deliverd_hopcache hopcache[DEST_HOPCACHE];
	struct deliverd_via	 via[DEST_VIA_MAX];
	bool			 via_changed;	/* claims to count again */
	char			(*wdest)[SPOOL_DOMAIN_MAX + 8];	/* per worker */
	int64_t			*done_ms;	/* per worker: last job done */
	struct deliverd_dest_acc *acc;		/* per worker: current job */
	bool			 dirty;		/* the state file is stale */
	bool			 resched;	/* queued jobs of a suspended one */
	int64_t			 next_check;	/* unix s: a state may end */
};

struct deliverd_dest *deliverd_dest_find(struct sched *, const char *name, bool create);
struct deliverd_dest *deliverd_dest_of(struct sched *, const char *hop);
void	deliverd_dest_limits(struct sched *, struct deliverd_dest *);
bool	deliverd_dest_is_relay(const struct sched *, const struct deliverd_dest *);
const struct shaping_rate *deliverd_dest_rate(const struct deliverd_dest *);
uint32_t deliverd_dest_conns(const struct deliverd_dest *);
double	deliverd_dest_burst(const struct deliverd_dest *);
void	deliverd_dest_refill(struct deliverd_dest *, int64_t now_ms);
const char *deliverd_dest_state_name(enum deliverd_dest_state);
void	deliverd_dest_state_load(struct sched *);
uint32_t deliverd_dest_hash(const char *);
/* Learns the destination of a domain from the MX host it was sent to. */
void	deliverd_dest_learn(struct sched *, const char *hop, const char *relay);
void	deliverd_dest_via_clear(struct deliverd_dests *);

#endif
