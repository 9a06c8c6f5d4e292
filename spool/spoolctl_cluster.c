/*
 * spoolctl in cluster mode (issue 19; spoolctl(8) "Cluster"): the publish
 * of a command's policy changes right after its commit, and `spoolctl
 * cluster export`, a single node's policy into PostgreSQL.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cluster_policy.h"
#include "conf.h"
#include "spool_cluster.h"
#include "spoolctl.h"

#define CTL_PUBLISH_MAX 100000 /* entries spoolctl publishes itself */

/* Entries waiting in the journal (0 when unknown). */
static size_t
ctl_cluster_waiting(struct ctl *ctl)
{
	struct spool_txn *t;
	size_t		  n = 0;

	if (spool_begin(ctl->sp, false, &t) != 0)
		return 0;
	(void)spool_cjournal_count(t, &n);
	spool_abort(&t);
	return n;
}

void
ctl_cluster_publish(struct ctl *ctl)
{
	char	err[256];
	PGconn *pg;
	size_t	n;
	int	rc;

	if (ctl->cf == NULL || ctl->cf->cf_cluster_dsn[0] == '\0' ||
	    ctl->sp == NULL || !ctl->sp_write ||
	    (n = ctl_cluster_waiting(ctl)) == 0)
		return;
	(void)fflush(stdout); /* the command's own output first */
	if ((pg = cpol_connect(ctl->cf->cf_cluster_dsn, err, sizeof(err))) ==
	    NULL) {
		(void)fprintf(stderr,
		    "spoolctl: cluster: PostgreSQL unreachable (%s): %zu "
		    "change(s) left for clusterd to publish\n",
		    err, n);
		return;
	}
	rc = cpol_publish(pg, ctl->sp, ctl->cf->cf_cluster_node,
	    CTL_PUBLISH_MAX);
	PQfinish(pg);
	if (rc < 0)
		(void)fprintf(stderr,
		    "spoolctl: cluster: publishing failed: %zu change(s) left "
		    "for clusterd to publish\n",
		    n);
	else
		(void)fprintf(stderr,
		    "spoolctl: cluster: published %d change(s) to "
		    "PostgreSQL\n",
		    rc);
}

static int
ctl_cluster_export(struct ctl *ctl, int argc, char **argv)
{
	struct cpol_counts c;
	struct spool_txn  *t;
	uint64_t	   added = 0, present = 0;
	char		   err[256];
	PGconn		  *pg;
	unsigned	   k;

	ctl_no_options(argc, argv, 0, 0, NULL);
	if (ctl->cf->cf_cluster_dsn[0] == '\0')
		ctl_die("cluster export: cluster_dsn is not set (see "
			"smtpgate.conf(5))");
	t = ctl_begin(ctl, false); /* opens the spool */
	spool_abort(&t);
	if ((pg = cpol_connect(ctl->cf->cf_cluster_dsn, err, sizeof(err))) ==
	    NULL)
		ctl_die("cluster export: PostgreSQL: %s", err);
	if (cpol_export(pg, ctl->sp, ctl->cf->cf_cluster_node, &c) != 0) {
		PQfinish(pg);
		ctl_die("cluster export failed (the rows exported so far stay; "
			"running it again is safe; has clusterd created the "
			"schema?)");
	}
	PQfinish(pg);
	for (k = 0; k < SPOOL_CK_N; k++) {
		printf("%-12s %llu added, %llu already there\n",
		    spool_ckind_name((enum spool_ckind)k),
		    (unsigned long long)c.added[k],
		    (unsigned long long)c.present[k]);
		added += c.added[k];
		present += c.present[k];
	}
	printf("exported to PostgreSQL: %llu rows added, %llu already there\n",
	    (unsigned long long)added, (unsigned long long)present);
	return CTL_OK;
}

int
ctl_cmd_cluster(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_cmd cmds[] = {
		{ .name = "export", .fn = ctl_cluster_export },
		{ .name = NULL, .fn = NULL },
	};

	return ctl_dispatch(ctl, cmds, argc, argv, NULL);
}
