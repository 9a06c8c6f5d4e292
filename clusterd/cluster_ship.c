/*
 * Event shipping (CLUSTER.md item 6): the delivery log, in event_seq
 * order after LMDB meta cluster_event_shipped, goes to smtpgate.events in
 * batches of at most CD_BATCH_MAX events (and CD_BATCH_BYTES of JSON):
 * one multi-row INSERT ... ON CONFLICT DO NOTHING in one transaction,
 * then the cursor moves in LMDB. A crash between the COMMIT and the
 * cursor ships the batch again, and the primary key (dt, node, id) makes
 * that a no-op: each event is in PostgreSQL exactly once.
 *
 * The batch travels as one JSON array [{"s": SEQ, "b": EVENT}, ...]; the
 * server takes the columns out of each event (dt, account, type, issue
 * id, queue_id, rcpt = "to", category) and stores the event as body.
 * Events older than cluster_event_retention are not stored (their
 * partition would be dropped). A batch refused for its data (SQLSTATE
 * class 22 or 23) is shipped one event at a time, and an event the server
 * refuses alone is logged and skipped, so one bad record cannot stop the
 * shipping; any other error leaves the cursor for the next attempt.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clusterd.h"
#include "conf.h"
#include "log.h"
#include "spool.h"
#include "xmem.h"

#define CD_EV_JSON "jsonb_array_elements($2::jsonb) e"

static const char cd_partition_sql[] =
    "SELECT d::text, smtpgate.events_partition(d) FROM (SELECT DISTINCT "
    "((e->'b'->>'dt')::timestamptz AT TIME ZONE 'UTC')::date AS d FROM "
    "jsonb_array_elements($1::jsonb) e) x WHERE d >= $2::date ORDER BY d";

static const char cd_insert_sql[] =
    "INSERT INTO smtpgate.events (dt, node, id, account, type, issue, "
    "queue_id, rcpt, category, body) SELECT (e->'b'->>'dt')::timestamptz, "
    "$1, (e->>'s')::bigint, coalesce(e->'b'->>'account', ''), "
    "coalesce(e->'b'->>'event', ''), (e->'b'->'issue'->>'id')::bigint, "
    "e->'b'->>'queue_id', e->'b'->>'to', e->'b'->>'category', e->'b' "
    "FROM " CD_EV_JSON " WHERE (e->'b'->>'dt')::timestamptz >= "
    "$3::timestamptz ON CONFLICT DO NOTHING RETURNING issue";

/*
 * When the INSERT stored fewer rows than the batch had: the events whose
 * key (dt, node, id) is taken by another event (its body's "id",
 * instance-seq, differs: another LMDB shipped under this node name before
 * this gateway claimed it, cluster_node.c) go under id seq + $4, this
 * spool's own range (cd_alt_base). An event of this spool shipped again
 * finds itself under either id and stays once.
 */
static const char cd_insert_alt_sql[] =
    "INSERT INTO smtpgate.events (dt, node, id, account, type, issue, "
    "queue_id, rcpt, category, body) SELECT v.dt, $1, v.s + $4::bigint, "
    "coalesce(v.b->>'account', ''), coalesce(v.b->>'event', ''), "
    "(v.b->'issue'->>'id')::bigint, v.b->>'queue_id', v.b->>'to', "
    "v.b->>'category', v.b FROM (SELECT (e->'b'->>'dt')::timestamptz AS "
    "dt, (e->>'s')::bigint AS s, e->'b' AS b FROM " CD_EV_JSON ") v "
    "WHERE v.dt >= $3::timestamptz AND EXISTS (SELECT 1 FROM "
    "smtpgate.events x WHERE x.dt = v.dt AND x.node = $1 AND x.id = v.s "
    "AND x.body->>'id' IS DISTINCT FROM v.b->>'id') "
    "ON CONFLICT DO NOTHING RETURNING issue";

/* 2^62 + 20 bits of the claim << 42: ids no node's seq reaches. */
static void
cd_alt_base(const struct cd *cd, char dst[32])
{
	char	 hex[6];
	uint64_t tag;

	memcpy(hex, cd->claim, 5);
	hex[5] = '\0';
	tag = strtoull(hex, NULL, 16);
	(void)snprintf(dst, 32, "%" PRIu64, (UINT64_C(1) << 62) + (tag << 42));
}

/* One batch read from the log. */
struct cd_batch {
	struct buf json; /* "[{...},{...}]" */
	uint64_t   cursor; /* meta cluster_event_shipped when read */
	size_t	   n;
	uint64_t   seq[CD_BATCH_MAX];
	size_t	   off[CD_BATCH_MAX], len[CD_BATCH_MAX]; /* elements */
};

static int
cd_batch_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct cd_batch *b = arg;

	if (b->n == CD_BATCH_MAX ||
	    (b->n > 0 && b->json.len + len + 64 > CD_BATCH_BYTES))
		return 1; /* full */
	if (buf_putc(&b->json, b->n == 0 ? '[' : ',') == -1)
		return ENOMEM;
	b->off[b->n] = b->json.len;
	if (buf_printf(&b->json, "{\"s\":%" PRIu64 ",\"b\":", seq) == -1 ||
	    buf_append(&b->json, json, len) == -1 ||
	    buf_putc(&b->json, '}') == -1)
		return ENOMEM;
	b->len[b->n] = b->json.len - b->off[b->n];
	b->seq[b->n++] = seq;
	return 0;
}

int
cd_ship_cursor(struct spool *sp, uint64_t *shipped_r, uint64_t *last_r)
{
	struct spool_txn *t;
	int		  rc;

	if ((rc = spool_begin(sp, false, &t)) != 0)
		return rc;
	if ((rc = spool_log_shipped_get(t, shipped_r)) == 0)
		rc = spool_log_last(t, last_r);
	spool_abort(&t);
	return rc;
}

/* The events after the cursor, at most one batch. */
static int
cd_batch_read(struct cd *cd, struct cd_batch *b)
{
	struct spool_txn *t;
	uint64_t	  cur = 0;
	int		  rc;

	if ((rc = spool_begin(cd->sp, false, &t)) != 0)
		return rc;
	if ((rc = spool_log_shipped_get(t, &cur)) == 0)
		rc = spool_log_iter(t, false, cur + 1, cd_batch_cb, b);
	b->cursor = cur;
	spool_abort(&t);
	if (rc == 1)
		rc = 0;
	if (rc == 0 && b->n > 0 && buf_putc(&b->json, ']') == -1)
		rc = ENOMEM;
	return rc;
}

/* "YYYY-MM-DD" and "YYYY-MM-DD HH:MM:SS+00" of t (UTC). */
static void
cd_utc(time_t t, char day[11], char ts[32])
{
	struct tm tm;

	(void)gmtime_r(&t, &tm);
	(void)strftime(day, 11, "%Y-%m-%d", &tm);
	if (ts != NULL)
		(void)strftime(ts, 32, "%Y-%m-%d %H:%M:%S+00", &tm);
}

/* The partitions a batch needs (on demand: an older day, or a day the
 * maintenance has not created yet); a new one is logged. */
static int
cd_batch_partitions(struct cd *cd, const char *json, const char *cutday)
{
	const char *vals[] = { json, cutday };
	PGresult   *res;
	int	    i;

	if ((res = cd_q(cd, "partitions", cd_partition_sql, 2, vals)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 1), "t") == 0)
			log_info("created partition for %s (node %s)",
			    PQgetvalue(res, i, 0), cd->node);
	PQclear(res);
	return 0;
}

/* One INSERT; the rows it stored (their issues touched), or -1. */
static int
cd_ship_insert(struct cd *cd, const char *sql, int nvals,
    const char *const *vals)
{
	PGresult *res;
	int	  i, n;

	if ((res = cd_q(cd, "ship", sql, nvals, vals)) == NULL)
		return -1;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		if (!PQgetisnull(res, i, 0))
			cd_touch_issue(cd,
			    strtoull(PQgetvalue(res, i, 0), NULL, 10));
	PQclear(res);
	return n;
}

/* One transaction of n events: partitions, INSERT (and the INSERT of the
 * events another spool's took the keys of), COMMIT. -1 on error. */
static int
cd_ship_json(struct cd *cd, const char *json, size_t n)
{
	char	    cutday[11], cutts[32], alt[32];
	const char *vals[4];
	int	    stored;

	cd_utc(time(NULL) - cd->cf->cf_cluster_event_retention, cutday, cutts);
	cd_alt_base(cd, alt);
	vals[0] = cd->node, vals[1] = json, vals[2] = cutts, vals[3] = alt;
	if (cd_exec(cd, "ship", "BEGIN", 0, NULL) == -1)
		return -1;
	if (cd_batch_partitions(cd, json, cutday) == -1 ||
	    (stored = cd_ship_insert(cd, cd_insert_sql, 3, vals)) == -1 ||
	    ((size_t)stored < n &&
		cd_ship_insert(cd, cd_insert_alt_sql, 4, vals) == -1)) {
		cd_rollback(cd);
		return -1;
	}
	return cd_exec(cd, "ship", "COMMIT", 0, NULL);
}

static bool
cd_data_error(struct cd *cd)
{
	const char *st = cd_sqlstate(cd);

	return cd->pg != NULL &&
	    (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0);
}

/* After a data error: one event at a time; the ones refused alone are
 * logged and skipped. *done_r: how many of the batch are settled. */
static int
cd_ship_each(struct cd *cd, const struct cd_batch *b, size_t *done_r)
{
	struct buf one;
	size_t	   i;
	int	   rc = 0;

	buf_init(&one, CD_BATCH_BYTES + 64);
	for (i = 0; i < b->n; i++) {
		buf_reset(&one);
		if (buf_putc(&one, '[') == -1 ||
		    buf_append(&one, b->json.data + b->off[i], b->len[i]) ==
			-1 ||
		    buf_puts(&one, "]") == -1) {
			rc = -1;
			break;
		}
		if (cd_ship_json(cd, one.data, 1) == 0)
			continue;
		if (!cd_data_error(cd)) {
			rc = -1;
			break;
		}
		log_warnx("event %" PRIu64 " (node %s) not stored in "
			  "PostgreSQL: %s: skipped",
		    b->seq[i], cd->node, cd->error);
	}
	*done_r = i;
	buf_release(&one);
	return rc;
}

/* The cursor after a shipped batch. */
static int
cd_cursor_put(struct cd *cd, uint64_t seq)
{
	struct spool_txn *t;
	struct spool_map  m;
	int		  rc, tries;

	for (tries = 0; tries < 2; tries++) {
		if ((rc = spool_begin(cd->sp, true, &t)) != 0)
			break;
		if ((rc = spool_log_shipped_put(t, seq)) != 0) {
			spool_abort(&t);
			break;
		}
		if ((rc = spool_commit(&t)) == 0)
			return 0;
		if (!spool_map_grown(cd->sp, &m))
			break;
		log_info("lmdb map grown from %lld to %lld bytes",
		    (long long)m.mp_grew_from, (long long)m.mp_size);
	}
	log_warnx("cluster_event_shipped %" PRIu64 ": %s (shipped again "
		  "later, stored once)",
	    seq, spool_strerror(rc));
	return -1;
}

int
cd_ship_batch(struct cd *cd)
{
	struct cd_batch *b;
	size_t		 done;
	int		 rc, n = -1;

	b = xcalloc(1, sizeof(*b));
	buf_init(&b->json, CD_BATCH_BYTES + 4096);
	if ((rc = cd_batch_read(cd, b)) != 0) {
		log_warnx("delivery log: %s", spool_strerror(rc));
		goto out;
	}
	if (b->n > 0 && b->cursor > 0 && b->seq[0] > b->cursor + 1)
		log_warnx("events %" PRIu64 " to %" PRIu64 " were pruned from "
			  "the delivery log before they were shipped "
			  "(delivery_log_retention)",
		    b->cursor + 1, b->seq[0] - 1);
	done = 0;
	if (b->n == 0)
		n = 0;
	else if (cd_ship_json(cd, b->json.data, b->n) == 0)
		done = b->n;
	else if (cd_data_error(cd))
		(void)cd_ship_each(cd, b, &done);
	if (done > 0 && cd_cursor_put(cd, b->seq[done - 1]) == -1)
		goto out;
	if (done > 0)
		log_debug("shipped events %" PRIu64 " to %" PRIu64,
		    b->seq[0], b->seq[done - 1]);
	if (b->n == 0)
		goto out;
	n = done == b->n ? (int)b->n : -1;
out:
	buf_release(&b->json);
	free(b);
	return n;
}

static int cd_counts_retention(struct cd *);

int
cd_partitions(struct cd *cd)
{
	time_t	    now = time(NULL);
	char	    day[11];
	const char *vals[1] = { day };
	PGresult   *res;
	int	    i;

	for (i = 0; i <= CD_PARTITIONS_AHEAD; i++) {
		cd_utc(now + (time_t)i * 86400, day, NULL);
		if ((res = cd_q(cd, "partitions",
			 "SELECT smtpgate.events_partition($1::date)", 1,
			 vals)) == NULL)
			return -1;
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
			log_info("created partition for %s (node %s)", day,
			    cd->node);
		PQclear(res);
	}
	cd_utc(now - cd->cf->cf_cluster_event_retention, day, NULL);
	if ((res = cd_q(cd, "retention",
		 "SELECT smtpgate.events_drop_before($1::date)", 1, vals)) ==
	    NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++)
		log_info("dropped partition smtpgate.%s (older than "
			 "cluster_event_retention, before %s)",
		    PQgetvalue(res, i, 0), day);
	PQclear(res);
	return cd_counts_retention(cd);
}

/* smtpgate.issue_counts rows past issue_retention (any node's: the
 * nodes' own issue records are gone by then too). */
static int
cd_counts_retention(struct cd *cd)
{
	char	    day[11];
	const char *vals[1] = { day };
	PGresult   *res;

	cd_utc(time(NULL) - cd->cf->cf_issue_retention, day, NULL);
	if ((res = cd_q(cd, "retention",
		 "DELETE FROM smtpgate.issue_counts WHERE day < $1::date", 1,
		 vals)) == NULL)
		return -1;
	if (strcmp(PQcmdTuples(res), "0") != 0)
		log_info("deleted %s issue counter row(s) of days before %s "
			 "(issue_retention)",
		    PQcmdTuples(res), day);
	PQclear(res);
	return 0;
}
