/*
 * This node in the cluster (CLUSTER.md item 7): the heartbeat (an upsert
 * of smtpgate.nodes every 5 s; a node is live if PostgreSQL saw it in the
 * last 30 s, by the server's clock) and spool_dir/cluster.state, written
 * atomically (temporary file, rename) at every heartbeat and every change
 * of the connection, one "key value" per line:
 *   node, connected (0|1), since (unix time of the last change of
 *   connected), live_nodes (the last known: kept while disconnected),
 *   policy_version, events_shipped (the cursor), journal (policy entries
 *   waiting), updated (unix time), error (the last PostgreSQL error).
 * deliverd divides its per-destination limits by live_nodes; spoolctl
 * status shows the file.
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
#include "fsx.h"
#include "log.h"
#include "spool.h"

static const char cd_beat_sql[] =
    "WITH up AS (INSERT INTO smtpgate.nodes (node, started, last_seen, "
    "version) VALUES ($1, to_timestamp($2::bigint), now(), $3) ON CONFLICT "
    "(node) DO UPDATE SET started = EXCLUDED.started, last_seen = now(), "
    "version = EXCLUDED.version RETURNING node) "
    "SELECT 1 + (SELECT count(*) FROM smtpgate.nodes WHERE node <> $1 AND "
    "last_seen > now() - interval '" CD_LIVE_STR " seconds') FROM up";

int
cd_heartbeat(struct cd *cd)
{
	char	    started[32];
	const char *vals[] = { cd->node, started, PACKAGE_VERSION };
	PGresult   *res;
	int64_t	    n;

	(void)snprintf(started, sizeof(started), "%lld",
	    (long long)cd->started);
	if ((res = cd_q(cd, "heartbeat", cd_beat_sql, 3, vals)) == NULL)
		return -1;
	n = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 1;
	PQclear(res);
	if (n != cd->live_nodes)
		log_info("live nodes: %lld (was %lld)", (long long)n,
		    (long long)cd->live_nodes);
	cd->live_nodes = n < 1 ? 1 : n;
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
