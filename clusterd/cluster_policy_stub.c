/*
 * Stand-ins for h-cpolicy's clusterd/cluster_policy.[ch] (CLUSTER.md item
 * 4) with the pinned prototypes, so clusterd builds and runs before the
 * policy journal lands; the merge replaces this file. They do nothing.
 */
#include "config.h"

#include "clusterd.h"

int
cpol_publish(PGconn *pg, struct spool *sp, const char *node, size_t max)
{
	(void)pg;
	(void)sp;
	(void)node;
	(void)max;
	return 0;
}

int
cpol_pull(PGconn *pg, struct spool *sp, size_t max)
{
	(void)pg;
	(void)sp;
	(void)max;
	return 0;
}

int
cpol_resync(PGconn *pg, struct spool *sp)
{
	(void)pg;
	(void)sp;
	return 0;
}

int
cd_journal_count(struct spool *sp, uint64_t *n_r)
{
	(void)sp;
	*n_r = 0;
	return 0;
}

int
cd_policy_version(struct spool *sp, uint64_t *v_r)
{
	(void)sp;
	*v_r = 0;
	return 0;
}
