/*
 * spool_index: internal to libspool. The delivery log's secondary keys,
 * written in the transaction of each event (spool_event_add) and of each
 * new issue (spool_issue_find_or_create), removed with the event by the
 * pruning (spool_prune.c), and built once for a database that predates
 * them (spool_db_migrate_records, called from spool_open's write path):
 *   dlog_status  u8 event type, BE64 seq -> ""   (bounces, stat.uni status)
 *   dlog_issue   BE64 issue id, BE64 seq -> ""   (stat.uni issue.id)
 *   issue_date   "YYYY-MM-DD" (10 bytes), BE64 id -> ""  (issues --date,
 *                issue retention)
 * meta "records_idx" is 1 once every older event and issue is indexed;
 * until then the readers fall back to scanning (spool_log_indexed).
 * Codes as in spool.h.
 */
#ifndef SG_SPOOL_INDEX_H
#define SG_SPOOL_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qid.h"
#include "spool.h"

/* What the indexes and the pruning need of one logged event. */
struct spool_index_ev {
	enum spool_ev_type ie_type;
	int64_t		   ie_dt;		      /* unix seconds */
	uint64_t	   ie_issue;		      /* 0 = none */
	char		   ie_qid[QID_SIZE];	      /* "" = none */
	char		   ie_login[SPOOL_LOGIN_MAX]; /* "account", "" = none */
	uint64_t	   ie_mkey; /* delivered: spool_engage_mkey, else 0 */
};

/* Reads those fields from an event's JSON. SPOOL_ECORRUPT if it does not
 * decode as an event. */
int spool_index_parse(const char *json, size_t len, struct spool_index_ev *);
/* Adds the event's keys (status, issue) under seq. */
int spool_index_event_add(struct spool_txn *, enum spool_ev_type,
    uint64_t issue, uint64_t seq);
/* Deletes the event seq from dlog, dlog_qid, dlog_status and dlog_issue;
 * keys already gone are not an error. */
int spool_index_event_del(struct spool_txn *, const struct spool_index_ev *,
    uint64_t seq);
/* issue_date entry of a new issue. */
int spool_index_issue_add(struct spool_txn *, const struct spool_issue *);
/*
 * The event an index entry points at: the BE64 seq at seqkey (the key's
 * last 8 bytes), read from dlog and handed to cb. 0 without calling cb
 * if that event has been pruned.
 */
int spool_index_log_get(struct spool_txn *, const uint8_t   *seqkey,
    int (*cb)(uint64_t, const char *, size_t, void *), void *arg);
/*
 * Builds the indexes of an older database in write transactions of
 * SPOOL_INDEX_CHUNK events each, resuming where an interrupted build
 * stopped (meta "records_idx_next"). Idempotent; a failure (the map full)
 * leaves the readers on their scans and is retried at the next open.
 */
#define SPOOL_INDEX_CHUNK 20000
/*
 * The build of one such index (records, acct, engage): meta ib_next is
 * where an interrupted build resumes, meta ib_done 1 when it is complete;
 * ib_first (NULL: none) runs in the first chunk's transaction, ib_add
 * files each logged event that decodes.
 */
struct spool_index_build {
	const char *ib_done;
	const char *ib_next;
	int (*ib_first)(struct spool_txn *);
	int (*ib_add)(struct spool_txn *, const struct spool_index_ev *,
	    uint64_t seq);
};
int spool_index_build(struct spool *, const struct spool_index_build *);
/* Whether the build that sets meta done is complete. */
bool spool_index_built(struct spool_txn *, const char *done);
int  spool_db_migrate_records(struct spool *);
/*
 * dlog_acct (spool_evsel.c, issue 18): login NUL, BE64 seq -> "". _add
 * files an event under its account (none: nothing); _del removes it (gone
 * is fine). spool_db_migrate_ops builds it for an older database as
 * spool_db_migrate_records does (meta "acct_idx_next", then "acct_idx" 1;
 * until then spool_log_iter_account scans the log).
 */
int spool_index_acct_add(struct spool_txn *, const char *login, uint64_t seq);
int spool_index_acct_del(struct spool_txn *, const char *login, uint64_t seq);
int spool_db_migrate_ops(struct spool *);

/*
 * spool_engage.c (issue 16): the event names after bounced; the complaint
 * index msgid_rcpt: BE64 spool_engage_mkey(message_id, to), BE64 seq -> ""
 * for each delivered event with a Message-Id, added with the event and
 * deleted with it. mkey 0: nothing to index (no Message-Id).
 */
int	    spool_engage_type_parse(const char *, enum spool_ev_type *);
const char *spool_engage_type_name(enum spool_ev_type);
uint64_t    spool_engage_mkey(const char *message_id, const char *to);
int spool_engage_mkey_add(struct spool_txn *, uint64_t mkey, uint64_t seq);
int spool_engage_mkey_del(struct spool_txn *, uint64_t mkey, uint64_t seq);
/* Counts an engagement event in its issue (is; NULL: none) and the
 * first-event set. */
int spool_engage_count(struct spool_txn *, struct spool_issue *,
    const struct spool_event *);
/* Deletes at most max first-event entries of messages that arrived before
 * `before`, oldest first. */
int spool_engage_prune(struct spool_txn *, int64_t before, size_t max,
    size_t *n_r);
/* The writer's migration: msgid_rcpt entries of older delivered events. */
int spool_db_migrate_engage(struct spool *);

#endif
