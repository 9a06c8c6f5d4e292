/*
 * deliverd_mtasts: MTA-STS (RFC 8461) for MX delivery in a worker: the
 * "_mta-sts" TXT lookup, the policy fetch over HTTPS (libcurl, bounded by
 * mta_sts_timeout and 64 KB) and a per-worker bounded cache of policies.
 */
#ifndef SG_DELIVERD_MTASTS_H
#define SG_DELIVERD_MTASTS_H

#include "conf.h"
#include "dns.h"
#include "mtasts.h"
#include "tlsres.h"

#define DELIVERD_MTASTS_CACHE_MAX 256 /* domains per worker in memory */

struct deliverd_mtasts;

struct deliverd_mtasts *deliverd_mtasts_new(void);
void			deliverd_mtasts_free(struct deliverd_mtasts **);
/*
 * The policy that applies to domain now: p_r->mode is MTASTS_MODE_NONE
 * when none does. *res_r is TLSRES_R_SUCCESS, or the RFC 8460 failure of
 * a lookup that left no usable policy (fetch error, invalid policy). A
 * cached policy keeps applying until it expires when a refresh fails
 * (RFC 8461 5.1). Logs one line per fetch with qid.
 */
struct buf;
struct spool;
void deliverd_mtasts_get(struct deliverd_mtasts *, const struct conf *,
    struct dns *, struct spool *, struct buf *out, const char *qid,
    const char *domain, struct mtasts_policy *p_r, enum tlsres_result *res_r);
/*
 * The cache across workers and restarts: a worker that misses its own
 * cache reads spool_mtasts_get (read-only); a policy it fetched goes to
 * the scheduler as one line appended to out, "P domain expires fetched
 * id policy" (tabs; the policy's lines joined by '|'), which the
 * scheduler stores with deliverd_mtasts_store_line in a write transaction
 * of its own. 0, or -1 for a line that does not parse (logged).
 */
int deliverd_mtasts_store_line(struct spool *, const char *line, size_t len);
/* Pure (fuzzing): a P line (NUL-terminated, cut up in place) into *r, the
 * domain into *domain_r; the policy must parse. 0, or -1 if malformed. */
struct spool_mtasts_rec;
int deliverd_mtasts_parse_line(char *line, char **domain_r,
    struct spool_mtasts_rec *r);
/* The number of policy fetches made (tests, logs). */
unsigned long deliverd_mtasts_fetches(const struct deliverd_mtasts *);

#endif
