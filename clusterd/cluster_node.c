/*
 * This node in the cluster (CLUSTER.md item 7): the heartbeat (an upsert
 * of smtpgate.nodes every 5 s; a node is live if PostgreSQL saw it in the
 * last 30 s, by the server's clock) and spool_dir/cluster.state, written
 * atomically (temporary file, rename) at every heartbeat and every change
 * of the connection, one "key value" per line:
 *   node, connected (0|1), since (unix time of the last change of
 *   connected), live_nodes (the last known: kept while disconnected),
 *   policy_version, events_shipped (the cursor), journal (policy entries
 *   waiting), updated (unix time), error (the last PostgreSQL error),
 *   and conflict CLAIM LAST_SEEN while another gateway holds the name.
 * deliverd divides its per-destination limits by live_nodes; spoolctl
 * status shows the file.
 *
 * The heartbeat is also the claim on cluster_node's row (clusterd(8) "The
 * node's name"): the row carries the claim of the spool whose clusterd
 * beats it (LMDB meta cluster_node_claim), and another spool's clusterd
 * may take it only once it is not live. A clusterd refused the row
 * (another gateway runs with the same cluster_node) logs it once, ships
 * and publishes nothing (cd_owner(), clusterd.c) and retries every beat.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clusterd.h"
#include "conf.h"
#include "ev.h"
#include "fsx.h"
#include "log.h"
#include "spool.h"

/*
 * The heartbeat claims the row: it only updates it when the row carries
 * this spool's claim and the last_seen this process wrote last ($5; ""
 * at start and after a failure: any), or no claim (a row of an older
 * clusterd), or has not been seen for the live window. A row with this
 * claim but another last_seen was beaten by a clusterd from before the
 * claim, which updates last_seen and leaves the claim as it is: another
 * gateway with this name. Columns: 1 if the row is ours now, the other
 * live nodes, the row as it was (its claim, last_seen), and the exact
 * last_seen written.
 */
static const char cd_beat_sql[] =
    "WITH old AS (SELECT claim, to_char(last_seen AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS seen FROM smtpgate.nodes "
    "WHERE node = $1), "
    "up AS (INSERT INTO smtpgate.nodes (node, started, last_seen, "
    "version, claim) VALUES ($1, to_timestamp($2::bigint), now(), $3, $4) "
    "ON CONFLICT (node) DO UPDATE SET started = EXCLUDED.started, "
    "last_seen = now(), version = EXCLUDED.version, claim = EXCLUDED.claim "
    "WHERE smtpgate.nodes.claim IS NULL OR (smtpgate.nodes.claim = "
    "EXCLUDED.claim AND ($5 = '' OR extract(epoch FROM "
    "smtpgate.nodes.last_seen)::text = $5)) OR smtpgate.nodes.last_seen "
    "<= now() - interval '" CD_LIVE_STR " seconds' "
    "RETURNING extract(epoch FROM last_seen)::text AS exact) "
    "SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM smtpgate.nodes "
    "WHERE node <> $1 AND last_seen > now() - interval '" CD_LIVE_STR
    " seconds'), (SELECT claim FROM old), (SELECT seen FROM old), "
    "(SELECT exact FROM up)";

bool
cd_owner(const struct cd *cd)
{
	return cd->claim_at > 0 && !cd->conflict &&
	    ev_clock_ms() - cd->claim_at < CD_CLAIM_FRESH_MS;
}

/* The row is another live gateway's: said once until it is ours. */
static void
cd_claim_refused(struct cd *cd, const char *holder, const char *seen)
{
	(void)str_copy(cd->holder, sizeof(cd->holder), holder);
	(void)str_copy(cd->holder_seen, sizeof(cd->holder_seen), seen);
	if (cd->conflict)
		return;
	cd->conflict = true;
	if (strcmp(holder, CD_NO_CLAIM) == 0)
		log_errx("two gateways use cluster_node %s: this one does not "
			 "ship events, publish policy or count as a live node "
			 "until the other is gone or one is renamed (the "
			 "other: an older clusterd that sets no claim, last "
			 "seen %s; this one: claim %s, spool %s)",
		    cd->node, seen, cd->claim, cd->cf->cf_spool_dir);
	else
		log_errx("two gateways use cluster_node %s: this one does not "
			 "ship events, publish policy or count as a live node "
			 "until the other is gone or one is renamed (the "
			 "other: claim %s, last seen %s; this one: claim %s, "
			 "spool %s)",
		    cd->node, holder, seen, cd->claim, cd->cf->cf_spool_dir);
}

static void
cd_claim_taken(struct cd *cd, const char *old, const char *seen)
{
	bool foreign = old[0] != '\0' && strcmp(old, cd->claim) != 0;

	if (foreign)
		log_info("cluster_node %s is this gateway's%s (claim %s; the "
			 "other, claim %s, last seen %s: its issue counters "
			 "are kept as node %s~%.8s)%s",
		    cd->node, cd->conflict ? " again" : "", cd->claim, old,
		    seen, cd->node, old,
		    cd->conflict ? ": shipping and publishing resume" : "");
	else if (cd->conflict)
		log_info("cluster_node %s is this gateway's again (claim %s): "
			 "shipping and publishing resume",
		    cd->node, cd->claim);
	cd->conflict = false;
	cd->holder[0] = cd->holder_seen[0] = '\0';
	cd->claim_at = ev_clock_ms();
}

/*
 * The row taken from another spool's claim (the other gateway is gone):
 * the issue counters it published under the name are kept apart as node
 * NAME~CLAIM8 (each spool's counters live under one name, and the sums
 * over nodes stay right), and this spool's own, kept apart when it lost
 * the name earlier, come back. In the heartbeat's transaction.
 */
static int
cd_claim_counts(struct cd *cd, const char *old)
{
	static const char *const sql[] = {
		/* a stale copy (none while each claim has one name) */
		"DELETE FROM smtpgate.issue_counts WHERE node = $1 || '~' || "
		"left($2, 8)",
		"UPDATE smtpgate.issue_counts SET node = $1 || '~' || left($2, 8) "
		"WHERE node = $1",
		"UPDATE smtpgate.issue_counts SET node = $1 WHERE node = $1 || "
		"'~' || left($2, 8)", /* $2: this spool's claim */
	};
	const char *vals[] = { cd->node, old };
	size_t	    i;

	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (i == 2)
			vals[1] = cd->claim;
		if (cd_exec(cd, "issue counts of the name", sql[i], 2, vals) ==
		    -1)
			return -1;
	}
	return 0;
}

/* The heartbeat's result: ours, the other live nodes, the row before. */
struct cd_beat {
	bool	ours;
	int64_t others;
	char	old[33], seen[32], exact[40];
};

static int
cd_beat_run(struct cd *cd, struct cd_beat *r)
{
	char	    started[32];
	const char *vals[] = { cd->node, started, PACKAGE_VERSION, cd->claim,
		cd->beat_seen };
	PGresult   *res;

	(void)snprintf(started, sizeof(started), "%lld",
	    (long long)cd->started);
	if ((res = cd_q(cd, "heartbeat", cd_beat_sql, 5, vals)) == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return -1;
	}
	r->ours = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	r->others = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	(void)str_copy(r->old, sizeof(r->old), PQgetvalue(res, 0, 2));
	(void)str_copy(r->seen, sizeof(r->seen), PQgetvalue(res, 0, 3));
	(void)str_copy(r->exact, sizeof(r->exact), PQgetvalue(res, 0, 4));
	PQclear(res);
	return 0;
}

int
cd_heartbeat(struct cd *cd)
{
	struct cd_beat r;
	int64_t	       n;

	if (cd_exec(cd, "heartbeat", "BEGIN", 0, NULL) == -1)
		return -1;
	if (cd_beat_run(cd, &r) == -1 ||
	    (r.ours && r.old[0] != '\0' && strcmp(r.old, cd->claim) != 0 &&
		cd_claim_counts(cd, r.old) == -1) ||
	    cd_exec(cd, "heartbeat", "COMMIT", 0, NULL) == -1) {
		cd_rollback(cd);
		cd->beat_seen[0] = '\0'; /* what the row holds is not known */
		return -1;
	}
	if (r.ours) {
		(void)str_copy(cd->beat_seen, sizeof(cd->beat_seen), r.exact);
		cd_claim_taken(cd, r.old, r.seen);
	} else /* this claim, refused: a writer that sets none */
		cd_claim_refused(cd,
		    strcmp(r.old, cd->claim) == 0 ? CD_NO_CLAIM : r.old,
		    r.seen);
	/* the other live nodes, this one, and a live holder of the name */
	n = r.others + (r.ours ? 1 : 2);
	if (n != cd->live_nodes)
		log_info("live nodes: %lld (was %lld)", (long long)n,
		    (long long)cd->live_nodes);
	cd->live_nodes = n < 1 ? 1 : n;
	return 0;
}

/*
 * At a clean stop: this node is no longer live (the others' next heartbeat
 * counts one node less and takes a larger share of each limit), and its
 * name is free at once for a gateway rebuilt under it, instead of after
 * the live window. Only a row this spool holds; best effort (a failure
 * leaves the row to go stale as after a crash).
 */
void
cd_release(struct cd *cd)
{
	const char *vals[2] = { cd->node, cd->claim };

	if (cd->pg == NULL || !cd_owner(cd))
		return;
	if (cd_exec(cd, "release the node's row",
		"UPDATE smtpgate.nodes SET last_seen = now() - interval '"
		CD_LIVE_STR " seconds' - interval '1 second' WHERE node = $1 "
		"AND claim = $2",
		2, vals) == 0)
		log_info("node %s: not live from now (stopped)", cd->node);
}

/*
 * Rows of removed nodes: a node not seen for cluster_node_retention is
 * gone, and so are its journal marks (only the superseded ones are pruned
 * otherwise; cluster_mark.c). Its events and issue counters stay for their
 * own retentions (they count in the cluster's totals). Every live node
 * runs it: a second delete finds nothing. Never this node's own row.
 */
static const char cd_nodes_gone_sql[] =
    "WITH gone AS (DELETE FROM smtpgate.nodes WHERE node <> $1 AND "
    "last_seen < now() - make_interval(secs => $2::bigint) RETURNING node, "
    "to_char(last_seen AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS seen), "
    "marks AS (DELETE FROM smtpgate.journal_marks m USING gone WHERE "
    "m.node = gone.node RETURNING m.node) "
    "SELECT node, seen, (SELECT count(*) FROM marks WHERE marks.node = "
    "gone.node) FROM gone ORDER BY node";

int
cd_nodes_retention(struct cd *cd)
{
	char	    secs[24];
	const char *vals[] = { cd->node, secs };
	PGresult   *res;
	int	    i;

	(void)snprintf(secs, sizeof(secs), "%lld",
	    (long long)cd->cf->cf_cluster_node_retention);
	if ((res = cd_q(cd, "node retention", cd_nodes_gone_sql, 2, vals)) ==
	    NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
		log_info("node %s: deleted from smtpgate.nodes (last seen %s, "
			 "longer ago than cluster_node_retention), with %s "
			 "journal mark(s)",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2));
	PQclear(res);
	return 0;
}

void
cd_set_connected(struct cd *cd, bool c)
{
	if (c == cd->connected && cd->since != 0)
		return;
	cd->connected = c;
	cd->since = time(NULL);
	cd_state_write(cd);
}

static void
cd_state_text(struct cd *cd, struct buf *b)
{
	uint64_t shipped = 0, last = 0, journal = 0, pv = 0;
	char	 err[sizeof(cd->error)];
	size_t	 i;

	(void)cd_ship_cursor(cd->sp, &shipped, &last);
	(void)cd_journal_count(cd->sp, &journal);
	(void)cd_policy_version(cd->sp, &pv);
	(void)str_copy(err, sizeof(err), cd->error);
	for (i = 0; err[i] != '\0'; i++)
		if (err[i] == '\n' || err[i] == '\r')
			err[i] = ' ';
	(void)buf_printf(b,
	    "node %s\nconnected %d\nsince %lld\nlive_nodes %lld\n"
	    "policy_version %" PRIu64 "\nevents_shipped %" PRIu64
	    "\njournal %" PRIu64 "\nupdated %lld\nerror %s\n",
	    cd->node, cd->connected ? 1 : 0, (long long)cd->since,
	    (long long)cd->live_nodes, pv, shipped, journal,
	    (long long)time(NULL), err);
	if (cd->conflict)
		(void)buf_printf(b, "conflict %s %s\n", cd->holder,
		    cd->holder_seen);
}

void
cd_state_write(struct cd *cd)
{
	static bool failed; /* logged once until it works again */
	struct buf  b;
	int	    dfd, rc;

	buf_init(&b, 4096);
	cd_state_text(cd, &b);
	rc = (dfd = open(cd->cf->cf_spool_dir,
		  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fsx_write_durable_at(dfd, "cluster.state", b.data, b.len, 0644,
		(uid_t)-1, (gid_t)-1) == -1;
	if (rc && !failed)
		log_warn("%s/cluster.state (deliverd keeps the last live_nodes)",
		    cd->cf->cf_spool_dir);
	failed = rc;
	if (dfd != -1)
		(void)close(dfd);
	buf_release(&b);
}
