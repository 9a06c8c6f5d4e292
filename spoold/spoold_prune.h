/*
 * spoold_prune: spoold runs the retention (spool_prune, spool.h) from its
 * loop: a pass every prune_interval, done in slices of at most
 * SPOOLD_PRUNE_SLICE_MS of short write transactions (SPOOLD_PRUNE_BUDGET
 * deletions each), so that filing goes on between them. One log line per
 * finished pass with its counts; an error abandons the pass with a log
 * line and the next one starts a minute later (or at the interval).
 */
#ifndef SG_SPOOLD_PRUNE_H
#define SG_SPOOLD_PRUNE_H

#include <stdbool.h>
#include <time.h>

#include "spool.h"

#define SPOOLD_PRUNE_BUDGET   1000 /* deletions per write transaction */
#define SPOOLD_PRUNE_SLICE_MS 50   /* pruning per loop turn */

struct spoold;

struct spoold_prune {
	time_t			 pr_next;   /* the next pass starts then */
	bool			 pr_active; /* a pass is under way */
	struct spool_prune_stats pr_st;
	struct timespec		 pr_t0;
};

/* Runs a slice when a pass is due or under way. True if the pass is not
 * finished: the caller should come back without sleeping. */
bool spoold_prune_run(struct spoold *, struct spoold_prune *, time_t now);

#endif
