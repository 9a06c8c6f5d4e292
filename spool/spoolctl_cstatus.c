/*
 * spoolctl status, cluster mode (issue 19): what clusterd last wrote to
 * spool_dir/cluster.state (clusterd/cluster_node.c: node, connected,
 * since, live_nodes, policy_version, events_shipped, journal, updated,
 * error, and conflict when another live gateway uses this cluster_node)
 * and the shipping lag from LMDB (the last event logged minus the
 * cursor). A node that is not connected to PostgreSQL is a problem (exit
 * 1): it runs on its last copy of the policy and its events wait; so is a
 * node refused its name (its events and policy changes wait likewise).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "fsx.h"
#include "json.h"
#include "spoolctl.h"

#define CTL_CSTATE_MAX	 4096
#define CTL_CSTATE_STALE 15 /* s: clusterd rewrites it every 5 s */

bool
ctl_cluster_wanted(const struct conf *cf)
{
	return cf->cf_cluster_dsn[0] != '\0';
}

static void
ctl_cluster_line(struct ctl_cluster *c, const char *k, const char *v)
{
	if (strcmp(k, "node") == 0)
		(void)str_copy(c->node, sizeof(c->node), v);
	else if (strcmp(k, "connected") == 0)
		c->connected = strcmp(v, "1") == 0;
	else if (strcmp(k, "since") == 0)
		c->since = strtoll(v, NULL, 10);
	else if (strcmp(k, "live_nodes") == 0)
		c->live_nodes = strtoll(v, NULL, 10);
	else if (strcmp(k, "policy_version") == 0)
		c->policy_version = strtoull(v, NULL, 10);
	else if (strcmp(k, "journal") == 0)
		c->journal = strtoull(v, NULL, 10);
	else if (strcmp(k, "updated") == 0)
		c->updated = strtoll(v, NULL, 10);
	else if (strcmp(k, "error") == 0)
		(void)str_copy(c->error, sizeof(c->error), v);
	else if (strcmp(k, "conflict") == 0)
		(void)str_copy(c->conflict, sizeof(c->conflict), v);
}

/* cluster.state into c (c->have false if there is none). */
static void
ctl_cluster_read(const struct conf *cf, struct ctl_cluster *c)
{
	char   path[4200], *data, *line, *next, *sp;
	size_t len;

	(void)snprintf(path, sizeof(path), "%s/cluster.state",
	    cf->cf_spool_dir);
	if (fsx_read_file(path, CTL_CSTATE_MAX, &data, &len) == -1)
		return;
	c->have = true;
	for (line = data; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((sp = strchr(line, ' ')) == NULL)
			continue;
		*sp = '\0';
		ctl_cluster_line(c, line, sp + 1);
	}
	free(data);
}

void
ctl_cluster_gather(struct ctl *ctl, struct spool_txn *t, struct ctl_cluster *c)
{
	memset(c, 0, sizeof(*c));
	if (!(c->on = ctl_cluster_wanted(ctl->cf)))
		return;
	ctl_cluster_read(ctl->cf, c);
	if (spool_log_shipped_get(t, &c->shipped) != 0 ||
	    spool_log_last(t, &c->last) != 0)
		c->shipped = c->last = 0;
}

/* The other holder's last_seen (the conflict line's second word). */
static const char *
ctl_cluster_seen(const struct ctl_cluster *c)
{
	const char *sp = strchr(c->conflict, ' ');

	return sp != NULL ? sp + 1 : "?";
}

bool
ctl_cluster_problem(const struct ctl_cluster *c, char *dst, size_t dstsz)
{
	char dt[21];

	if (c->on && c->have && strncmp(c->conflict, "- ", 2) == 0) {
		(void)snprintf(dst, dstsz,
		    "cluster: two gateways use cluster_node %s: this one is "
		    "refused (the other: an older clusterd that sets no "
		    "claim, last seen %s)",
		    c->node, ctl_cluster_seen(c));
		return true;
	}
	if (c->on && c->have && c->conflict[0] != '\0') {
		(void)snprintf(dst, dstsz,
		    "cluster: two gateways use cluster_node %s: this one is "
		    "refused (the other: claim %.8s..., last seen %s)",
		    c->node, c->conflict, ctl_cluster_seen(c));
		return true;
	}
	if (!c->on || !c->have || c->connected)
		return false;
	spool_dt(c->since, dt);
	(void)snprintf(dst, dstsz,
	    "cluster: not connected to PostgreSQL since %s%s%s", dt,
	    c->error[0] != '\0' ? ": " : "", c->error);
	return true;
}

static void
ctl_cluster_time(struct json_gen *g, const char *k, int64_t t)
{
	char dt[21];

	json_key(g, k);
	if (t > 0) {
		spool_dt(t, dt);
		json_str(g, dt);
	} else
		json_null(g);
}

void
ctl_cluster_json(struct json_gen *g, const struct ctl_cluster *c)
{
	json_key(g, "cluster");
	if (!c->on) {
		json_null(g);
		return;
	}
	json_obj_begin(g);
	json_kv_str(g, "node", c->have ? c->node : NULL);
	json_kv_bool(g, "connected", c->connected);
	ctl_cluster_time(g, "since", c->since);
	json_kv_int(g, "live_nodes", c->live_nodes);
	json_kv_int(g, "policy_version", (int64_t)c->policy_version);
	json_kv_int(g, "journal", (int64_t)c->journal);
	json_kv_int(g, "events_shipped", (int64_t)c->shipped);
	json_kv_int(g, "events_pending",
	    (int64_t)(c->last > c->shipped ? c->last - c->shipped : 0));
	ctl_cluster_time(g, "updated", c->updated);
	json_kv_str(g, "error", c->error[0] != '\0' ? c->error : NULL);
	json_key(g, "conflict"); /* the other gateway using this node name */
	if (c->conflict[0] != '\0') {
		json_obj_begin(g);
		json_key(g, "claim"); /* null: a clusterd that sets none */
		if (strncmp(c->conflict, "- ", 2) == 0)
			json_null(g);
		else
			json_strn(g, c->conflict, strcspn(c->conflict, " "));
		json_kv_str(g, "last_seen", ctl_cluster_seen(c));
		json_obj_end(g);
	} else
		json_null(g);
	json_obj_end(g);
}

void
ctl_cluster_text(const struct ctl_cluster *c)
{
	char	dt[21];
	int64_t ago = (int64_t)time(NULL) - c->since;

	if (!c->on)
		return;
	if (!c->have) {
		printf("cluster   no state yet (clusterd has not run)\n");
		return;
	}
	spool_dt(c->since, dt);
	printf("cluster   node %s: %s PostgreSQL since %s (%llds), %lld live "
	       "node(s)\n",
	    c->node, c->connected ? "connected to" : "NOT connected to", dt,
	    (long long)(ago < 0 ? 0 : ago), (long long)c->live_nodes);
	printf("          policy version %" PRIu64 ", %" PRIu64
	       " journal entr%s waiting; events shipped to %" PRIu64
	       ", %" PRIu64 " waiting\n",
	    c->policy_version, c->journal, c->journal == 1 ? "y" : "ies",
	    c->shipped, c->last > c->shipped ? c->last - c->shipped : 0);
	if (!c->connected && c->error[0] != '\0')
		printf("          last error: %s\n", c->error);
	if (strncmp(c->conflict, "- ", 2) == 0)
		printf("          REFUSED: two gateways use cluster_node %s "
		       "(the other: an older clusterd that sets no claim, last "
		       "seen %s); events and policy changes wait here\n",
		    c->node, ctl_cluster_seen(c));
	else if (c->conflict[0] != '\0')
		printf("          REFUSED: two gateways use cluster_node %s "
		       "(the other: claim %.*s, last seen %s); events and "
		       "policy changes wait here\n",
		    c->node, (int)strcspn(c->conflict, " "), c->conflict,
		    ctl_cluster_seen(c));
	if ((int64_t)time(NULL) - c->updated > CTL_CSTATE_STALE)
		printf("          (written %llds ago: clusterd is not "
		       "updating it)\n",
		    (long long)((int64_t)time(NULL) - c->updated));
}
