/*
 * Limit sharing in cluster mode (issue 19 item 7), deliverd_cshare.c:
 * each node takes 1/N of every destination's limits, N the live nodes of
 * spool_dir/cluster.state (clusterd writes it).
 */
#ifndef SG_DELIVERD_CSHARE_H
#define SG_DELIVERD_CSHARE_H

#include <stddef.h>
#include <stdint.h>

#include "shaping.h"

struct sched;

#define DELIVERD_CSHARE_EVERY	 10   /* s between reads of the file */
#define DELIVERD_CSHARE_MAX	 1000 /* live nodes believed at most */
#define DELIVERD_CSHARE_FILE_MAX 8192

/* Pure: live_nodes of the file's text ("key value" lines), 0 if absent
 * or not a number in 1..DELIVERD_CSHARE_MAX. */
uint32_t deliverd_cshare_parse(const char *, size_t);
/* Pure: connections (rounded up, at least 1; 0 = unlimited stays) and
 * rates (per_s times n) of l divided by n. */
void deliverd_cshare_apply(struct shaping_limits *, uint32_t n);
/* The live nodes in effect (1 without cluster_dsn). */
uint32_t deliverd_cshare_nodes(void);
/* Re-reads the file when due; on a change logs one line and recomputes
 * every destination's limits. */
void deliverd_cshare_tick(struct sched *);

#endif
