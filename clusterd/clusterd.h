/*
 * clusterd (issue 19; clusterd.8): the one process of a node that talks
 * to PostgreSQL. Internal header of its files:
 *   clusterd.c        main (common/daemon.c), the loop, timers, signals
 *   cluster_pg.c      the connection: parameters and bounds, schema,
 *                     LISTEN, errors, reconnect back-off, logging
 *   cluster_ship.c    the delivery log into smtpgate.events, partitions
 *   cluster_node.c    heartbeat, live nodes, spool_dir/cluster.state
 *   cluster_counts.c  per-issue counters into smtpgate.issue_counts
 *   cluster_policy_stub.c  h-cpolicy's functions until their branch lands
 * Single-threaded: every libpq call blocks, bounded (connect_timeout 5 s,
 * statement_timeout 10 s, TCP keepalives and user timeout).
 */
#ifndef SG_CLUSTERD_H
#define SG_CLUSTERD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libpq-fe.h>

#include "ev.h"

struct conf;
struct spool;

#define CD_BATCH_MAX	     1000 /* events per INSERT (CLUSTER.md item 6) */
#define CD_BATCH_BYTES	     (8 * 1024 * 1024) /* ... and bytes of JSON */
#define CD_TOUCHED_MAX	     4096 /* issues remembered between publishes */
#define CD_COUNTS_DAYS	     7	  /* a full counter publish: the last days */
#define CD_COUNTS_MAX	     10000 /* issues per publish */
#define CD_JOURNAL_MAX	     1000 /* policy entries per cpol_publish */
#define CD_PULL_MAX	     10000 /* policy rows per cpol_pull */
#define CD_BACKOFF_MIN_MS    1000
#define CD_BACKOFF_MAX_MS    30000
#define CD_LIVE_S	     30 /* a node is live if seen this recently */
#define CD_LIVE_STR	     "30"
#define CD_PARTITIONS_AHEAD  2	/* days after today created in advance */
/* The node's row is ours this long after a heartbeat that confirmed it
 * (half the live window: another gateway may take a row only after
 * CD_LIVE_S without a heartbeat, and a statement lasts at most 10 s). */
#define CD_CLAIM_FRESH_MS    15000

struct cd {
	struct conf  *cf;
	struct spool *sp;
	struct ev    *ev;
	PGconn	     *pg; /* NULL: not connected */
	int	      pg_fd; /* its socket as watched (libpq may close it) */
	const char   *node;
	time_t	      started;
	/* connection state (cluster.state, spoolctl status) */
	bool	      connected;
	bool	      down_logged; /* the outage is logged once */
	bool	      ever_connected;
	time_t	      since;	/* the last change of `connected` */
	int64_t	      backoff_ms;
	int64_t	      live_nodes; /* the last known; 1 before any */
	char	      error[256]; /* the last PostgreSQL error, one line */
	/* the claim on cluster_node's row (cluster_node.c) */
	char	      claim[33]; /* this spool's id (meta cluster_node_claim) */
	bool	      conflict;	 /* another live gateway holds the name */
	int64_t	      claim_at;	 /* ev_clock_ms() of the last confirmation */
	char	      holder[33]; /* the other holder's id and last_seen */
	char	      holder_seen[32];
	/* the last_seen this process's last committed heartbeat wrote (epoch
	 * text, exact); "" when unknown: a writer that leaves the claim as
	 * it is (a clusterd from before the claim) changes it */
	char beat_seen[40];
#define CD_NO_CLAIM "-" /* the holder: a clusterd that sets no claim */
	/* work flags and counters */
	bool	      pull_due;	  /* a NOTIFY came */
	bool	      resync_due; /* at start and every resync interval */
	bool	      counts_full; /* publish the last CD_COUNTS_DAYS days */
	uint64_t      touched[CD_TOUCHED_MAX]; /* issue ids of shipped events */
	size_t	      ntouched;
	int	      status; /* exit status */
	struct ev_timer t_connect, t_tick, t_beat, t_counts, t_maint,
	    t_resync;
};

/* ---- cluster_pg.c */
/* Connects (bounded), prepares the session and the schema, LISTENs,
 * watches the socket. 0, or -1 (logged once per outage, back-off armed). */
int  cd_connect(struct cd *);
/* Drops the connection (after an error: why names it; NULL on stop). */
void cd_disconnect(struct cd *, const char *why);
/*
 * Runs one statement with text parameters (n may be 0). The result when
 * it succeeded (the caller PQclear()s it); NULL after an error, which is
 * recorded in cd->error and logged when it differs from the last one; a
 * lost connection is dropped (cd->pg NULL afterwards).
 */
PGresult *cd_q(struct cd *, const char *what, const char *sql, int n,
    const char *const *vals);
/* cd_q without a result; 0 or -1. */
int cd_exec(struct cd *, const char *what, const char *sql, int n,
    const char *const *vals);
/* ROLLBACK if still connected. */
void cd_rollback(struct cd *);
/* The SQLSTATE of the last failed cd_q ("" if none). */
const char *cd_sqlstate(const struct cd *);
/* Reads pending input and notifications (true: a policy NOTIFY). */
bool cd_notified(struct cd *);
/* The socket's callback (clusterd.c): notifications, a closed peer. */
void cd_on_socket(struct ev *, int fd, unsigned revents, void *arg);
/* The schema text (schema_sql.c, generated from clusterd/schema.sql). */
extern const char cd_schema_sql[];

/* ---- cluster_ship.c */
/* Ships one batch; the number of events it covered, 0 when caught up,
 * -1 on error (the cursor stays). */
int cd_ship_batch(struct cd *);
/* Today's and the next days' partitions, old ones dropped. */
int cd_partitions(struct cd *);
/* meta cluster_event_shipped and event_seq (the lag). */
int cd_ship_cursor(struct spool *, uint64_t *shipped_r, uint64_t *last_r);

/* ---- cluster_node.c */
/* The heartbeat, which also claims cluster_node's row (see there). */
int  cd_heartbeat(struct cd *);
/* At a clean stop: the row not live, the name free (cluster_node.c). */
void cd_release(struct cd *);
/* Deletes the rows of nodes not seen for cluster_node_retention, with
 * their journal marks; one log line per node. 0 or -1 (logged). */
int  cd_nodes_retention(struct cd *);
/* true while the row is this gateway's: it may ship events, publish the
 * policy journal and issue counts under the node name. */
bool cd_owner(const struct cd *);
void cd_state_write(struct cd *);
void cd_set_connected(struct cd *, bool);

/* ---- cluster_counts.c */
void cd_touch_issue(struct cd *, uint64_t id);
int  cd_counts_publish(struct cd *);

/* ---- the policy functions of CLUSTER.md item 4 (h-cpolicy's
 * clusterd/cluster_policy.[ch]; cluster_policy_stub.c until it lands) */
int cpol_publish(PGconn *, struct spool *, const char *node, size_t max);
int cpol_pull(PGconn *, struct spool *, size_t max);
int cpol_resync(PGconn *, struct spool *);
/* Entries waiting in the journal and the mirrored version (0 if none). */
int cd_journal_count(struct spool *, uint64_t *n_r);
int cd_policy_version(struct spool *, uint64_t *v_r);

#endif
