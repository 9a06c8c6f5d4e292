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

#define DELIVERD_MTASTS_CACHE_MAX 256 /* domains per worker */

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
void deliverd_mtasts_get(struct deliverd_mtasts *, const struct conf *,
    struct dns *, const char *qid, const char *domain,
    struct mtasts_policy *p_r, enum tlsres_result *res_r);
/* The number of policy fetches made (tests, logs). */
unsigned long deliverd_mtasts_fetches(const struct deliverd_mtasts *);

#endif
