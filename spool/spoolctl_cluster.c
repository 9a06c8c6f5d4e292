/*
 * spoolctl in cluster mode (issue 19; spoolctl(8) "Cluster"): the publish
 * of a command's policy changes right after its commit, and `spoolctl
 * cluster export`, a single node's policy into PostgreSQL.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cluster_policy.h"
#include "clusterd.h" /* cd_schema_sql */
#include "conf.h"
#include "spool_cluster.h"
#include "spoolctl.h"

#define CTL_PUBLISH_MAX 100000 /* entries spoolctl publishes itself */

/*
 * cluster_secret_file: opened before the privilege drop (it may be root's
 * alone), read only by what writes policy values to PostgreSQL (the
 * publish after a change, cluster export, cluster seal). A read-only
 * command never reads it, so it runs without it.
 */
static FILE	  *ctl_seal_fp, *ctl_seal_afp; /* the key, the accepted key */
static int	   ctl_seal_errno;  /* of the opens; 0: opened or not set */
static const char *ctl_seal_failed; /* the file that did not open */
static bool	   ctl_seal_opened, ctl_seal_loaded;

void
ctl_cluster_seal_open(struct ctl *ctl)
{
	const char *path = ctl->cf->cf_cluster_secret_file,
		   *accept = ctl->cf->cf_cluster_secret_file_accept;

	if (ctl_seal_opened)
		return;
	ctl_seal_opened = true;
	if (ctl->cf->cf_cluster_dsn[0] == '\0' || path[0] == '\0')
		return;
	if ((ctl_seal_fp = fopen(path, "re")) == NULL) {
		ctl_seal_errno = errno;
		ctl_seal_failed = path;
	} else if (accept[0] != '\0' &&
	    (ctl_seal_afp = fopen(accept, "re")) == NULL) {
		ctl_seal_errno = errno;
		ctl_seal_failed = accept;
		(void)fclose(ctl_seal_fp);
		ctl_seal_fp = NULL;
	}
}

bool
ctl_cluster_seal_ready(struct ctl *ctl, char *err, size_t errsz)
{
	const char *path = ctl->cf->cf_cluster_secret_file,
		   *accept = ctl->cf->cf_cluster_secret_file_accept;

	ctl_cluster_seal_open(ctl); /* no drop yet: with the caller's rights */
	if (ctl_seal_loaded)
		return true;
	if (path[0] == '\0') {
		if (accept[0] == '\0')
			return true;
		(void)snprintf(err, errsz,
		    "is not set, and cluster_secret_file_accept is");
		return false;
	}
	if (ctl_seal_fp == NULL) {
		(void)snprintf(err, errsz, "%s: %s",
		    ctl_seal_failed != NULL ? ctl_seal_failed : path,
		    strerror(ctl_seal_errno != 0 ? ctl_seal_errno : EINVAL));
		return false;
	}
	if (cseal_load_fp(ctl_seal_fp, path, ctl_seal_afp, accept, err,
		errsz) == -1) {
		ctl_seal_fp = ctl_seal_afp = NULL; /* closed */
		ctl_seal_errno = EINVAL;
		return false;
	}
	ctl_seal_fp = ctl_seal_afp = NULL;
	ctl_seal_loaded = true;
	return true;
}

/* export and seal write values: never in clear when a key is configured */
static void
ctl_cluster_seal_need(struct ctl *ctl, const char *what)
{
	char err[512];

	if (!ctl_cluster_seal_ready(ctl, err, sizeof(err)))
		ctl_die("%s: cluster_secret_file %s (spoolctl reads it before "
			"dropping privileges: run it as root, or give group %s "
			"read access)",
		    what, err, ctl->cf->cf_group);
}

/* Entries waiting in the journal (0 when unknown); *over_r: it
 * overflowed (clusterd then pushes every row, which is not for spoolctl). */
static size_t
ctl_cluster_waiting(struct ctl *ctl, bool *over_r)
{
	struct spool_txn *t;
	size_t		  n = 0;

	*over_r = false;
	if (spool_begin(ctl->sp, false, &t) != 0)
		return 0;
	(void)spool_cjournal_count(t, &n);
	(void)spool_cjournal_overflowed(t, over_r);
	spool_abort(&t);
	return n;
}

/* Whether another live gateway holds this node's name (clusterd(8) "The
 * node's name"): 1 (its changes then wait for clusterd, like its events),
 * 0, or -1 when that cannot be told (clusterd decides then). */
static int
ctl_cluster_refused(struct ctl *ctl, PGconn *pg)
{
	char	    claim[SPOOL_CLAIM_LEN + 1];
	const char *vals[2] = { ctl->cf->cf_cluster_node, claim };
	PGresult   *res;
	int	    rc = -1;

	if (spool_cluster_node_claim(ctl->sp, claim) != 0)
		return -1;
	res = PQexecParams(pg,
	    "SELECT count(*) FROM smtpgate.nodes WHERE node = $1 AND claim "
	    "IS NOT NULL AND claim <> $2 AND last_seen > now() - "
	    "interval '30 seconds'",
	    2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		rc = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
	PQclear(res);
	return rc;
}

void
ctl_cluster_publish(struct ctl *ctl)
{
	char	err[512];
	PGconn *pg;
	size_t	n;
	bool	over;
	int	rc;

	if (ctl->cf == NULL || ctl->cf->cf_cluster_dsn[0] == '\0' ||
	    ctl->sp == NULL || !ctl->sp_write ||
	    ((n = ctl_cluster_waiting(ctl, &over)) == 0 && !over))
		return;
	(void)fflush(stdout); /* the command's own output first */
	if (over) {
		(void)fprintf(stderr,
		    "spoolctl: cluster: the journal is full (%d entries): "
		    "clusterd publishes every local row when PostgreSQL is "
		    "back\n",
		    SPOOL_CJ_MAX);
		return;
	}
	/* never in clear when a key is configured: clusterd has the key */
	if (!ctl_cluster_seal_ready(ctl, err, sizeof(err))) {
		(void)fprintf(stderr,
		    "spoolctl: cluster: cluster_secret_file %s: %zu change(s) "
		    "left for clusterd to publish\n",
		    err, n);
		return;
	}
	if ((pg = cpol_connect(ctl->cf->cf_cluster_dsn, err, sizeof(err))) ==
	    NULL) {
		(void)fprintf(stderr,
		    "spoolctl: cluster: PostgreSQL unreachable (%s): %zu "
		    "change(s) left for clusterd to publish\n",
		    err, n);
		return;
	}
	if ((rc = ctl_cluster_refused(ctl, pg)) != 0) {
		PQfinish(pg);
		(void)fprintf(stderr,
		    "spoolctl: cluster: %s: %zu change(s) left for clusterd "
		    "to publish\n",
		    rc == 1 ? "another live gateway uses this cluster_node"
			    : "cannot tell whether this gateway holds its "
			      "cluster_node",
		    n);
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
	else if ((size_t)rc < n && ctl_cluster_waiting(ctl, &over) == 0 &&
	    !over)
		/* the others left the journal published by someone else:
		 * clusterd between the count and the lock, or an earlier
		 * publish that died before removing them */
		(void)fprintf(stderr,
		    "spoolctl: cluster: published %d change(s) to "
		    "PostgreSQL; %zu more had been published already\n",
		    rc, n - (size_t)rc);
	else
		(void)fprintf(stderr,
		    "spoolctl: cluster: published %d change(s) to "
		    "PostgreSQL\n",
		    rc);
}

/* The schema, as clusterd applies it at every connect (idempotent). */
static void
ctl_cluster_schema(PGconn *pg)
{
	struct buf sql;
	PGresult  *res;

	buf_init(&sql, 1024 * 1024);
	if (buf_printf(&sql, "BEGIN;\n%s\nCOMMIT;", cd_schema_sql) == -1)
		ctl_die("cluster export: the schema is too long");
	res = PQexec(pg, sql.data);
	buf_release(&sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		ctl_warn("cluster export: creating the schema: %s",
		    PQerrorMessage(pg));
		PQclear(res);
		PQfinish(pg);
		exit(CTL_FAIL);
	}
	PQclear(res);
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
	ctl_cluster_seal_need(ctl, "cluster export");
	if ((pg = cpol_connect(ctl->cf->cf_cluster_dsn, err, sizeof(err))) ==
	    NULL)
		ctl_die("cluster export: PostgreSQL: %s", err);
	ctl_cluster_schema(pg);
	if (cpol_export(pg, ctl->sp, ctl->cf->cf_cluster_node, &c) != 0) {
		PQfinish(pg);
		ctl_die("cluster export failed (the rows exported so far stay; "
			"running it again is safe)");
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

/* cluster seal: the rows written in clear before cluster_secret_file. */
static int
ctl_cluster_seal(struct ctl *ctl, int argc, char **argv)
{
	struct cpol_seal_counts n;
	char			err[256];
	PGconn		       *pg;

	ctl_no_options(argc, argv, 0, 0, NULL);
	if (ctl->cf->cf_cluster_dsn[0] == '\0')
		ctl_die("cluster seal: cluster_dsn is not set (see "
			"smtpgate.conf(5))");
	if (ctl->cf->cf_cluster_secret_file[0] == '\0')
		ctl_die("cluster seal: cluster_secret_file is not set (see "
			"smtpgate.conf(5))");
	ctl_cluster_seal_need(ctl, "cluster seal");
	if ((pg = cpol_connect(ctl->cf->cf_cluster_dsn, err, sizeof(err))) ==
	    NULL)
		ctl_die("cluster seal: PostgreSQL: %s", err);
	if (cpol_seal_all(pg, &n) == -1) {
		PQfinish(pg);
		ctl_die("cluster seal failed (the rows sealed so far stay; "
			"running it again is safe)");
	}
	PQfinish(pg);
	printf("sealed %ld row(s) in PostgreSQL\n", n.sealed);
	if (cseal_accepting() || n.resealed > 0)
		printf("sealed again with cluster_secret_file: %ld row(s) that "
		       "opened only with cluster_secret_file_accept\n",
		    n.resealed);
	if (n.unopened > 0) {
		printf("left as they are: %ld row(s) that open with no key of "
		       "this node (logged; no node applies them)\n",
		    n.unopened);
		return CTL_FAIL;
	}
	return CTL_OK;
}

int
ctl_cmd_cluster(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_cmd cmds[] = {
		{ .name = "export", .fn = ctl_cluster_export },
		{ .name = "seal", .fn = ctl_cluster_seal },
		{ .name = NULL, .fn = NULL },
	};

	return ctl_dispatch(ctl, cmds, argc, argv, NULL);
}
