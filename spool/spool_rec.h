/*
 * spool_rec: internal to libspool. (1) The LMDB record encoding (STYLE
 * R6): a version byte, then tag (1 byte), length (4 bytes, big-endian),
 * value; strings without their NUL, numbers as 8-byte big-endian, unknown
 * tags skipped. Structs are described by field tables, never stored raw.
 * Decoders bounds-check everything and return SPOOL_ECORRUPT.
 * (2) The raw database access that spool_db.c (the only <lmdb.h> user)
 * offers to the other spool files. Codes as in spool.h.
 */
#ifndef SG_SPOOL_REC_H
#define SG_SPOOL_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "spool.h"
#include "spool_key.h"

#define SPOOL_REC_VERSION 1
#define SPOOL_REC_MAX	  (1u << 20) /* max encoded record */

enum spool_rec_type {
	SPOOL_F_STR,
	SPOOL_F_I64,
	SPOOL_F_U64,
	SPOOL_F_U32,
	SPOOL_F_BOOL,
	SPOOL_F_ENUM
};

struct spool_rec_field {
	uint8_t		    rf_tag;
	enum spool_rec_type rf_type;
	size_t		    rf_off;  /* offsetof in the struct */
	size_t		    rf_size; /* for strings: the array size */
};

/* Called for tags not in the table (e.g. repeated fields). */
typedef int spool_rec_extra_cb(uint8_t tag, const uint8_t *val, size_t len,
    void *obj);

/* Appends version byte + every field. 0, ENOMEM or SPOOL_ETOOBIG. */
int spool_rec_enc(const struct spool_rec_field *, size_t n, const void *obj,
    struct buf *out);
int spool_rec_tlv(struct buf *out, uint8_t tag, const void *, size_t);
/* Zeroes obj, then fills it. SPOOL_ECORRUPT on any inconsistency. */
int spool_rec_dec(const struct spool_rec_field *, size_t n, const void *data,
    size_t len, void *obj, spool_rec_extra_cb *, void *extra_arg);

/* One pair per stored struct. */
int spool_rec_enc_account(const struct spool_account *, struct buf *);
int spool_rec_dec_account(const void *, size_t, struct spool_account *);
int spool_rec_enc_dkim(const struct spool_dkim *, struct buf *);
int spool_rec_dec_dkim(const void *, size_t, struct spool_dkim *);
int spool_rec_enc_issue(const struct spool_issue *, struct buf *);
int spool_rec_dec_issue(const void *, size_t, struct spool_issue *);
int spool_rec_enc_msg(const struct spool_msg *, struct buf *);
int spool_rec_dec_msg(const void *, size_t, struct spool_msg *);
int spool_rec_enc_rcpt(const struct spool_rcpt *, struct buf *);
int spool_rec_dec_rcpt(const void *, size_t, struct spool_rcpt *);
/* Small records: sender status; permfail (when, reply, reason, qid,
 * issue; login and address are the key's: dec leaves them alone). */
int spool_rec_enc_u64(uint64_t, struct buf *);
int spool_rec_dec_u64(const void *, size_t, uint64_t *);
int spool_rec_enc_permfail(const struct spool_permfail *, struct buf *);
int spool_rec_dec_permfail(const void *, size_t, struct spool_permfail *);
/* h-asupp: a stop-list entry's why (a bare version byte decodes empty) */
int spool_rec_enc_stop(const struct spool_stopent *, struct buf *);
int spool_rec_dec_stop(const void *, size_t, struct spool_stopent *);

/* ---- raw database access (spool_db.c) */
enum spool_dbi {
	SPOOL_DB_META,
	SPOOL_DB_ACCOUNTS,
	SPOOL_DB_SENDERS,
	SPOOL_DB_DKIM,
	SPOOL_DB_STOPLIST,
	SPOOL_DB_PERMFAIL,
	SPOOL_DB_ISSUES,
	SPOOL_DB_ISSUE_IDX,
	SPOOL_DB_MESSAGES,
	SPOOL_DB_RCPTS,
	SPOOL_DB_SCHED,
	SPOOL_DB_DLOG,
	SPOOL_DB_DLOG_QID,
	SPOOL_DB_OUTBOX,
	SPOOL_DB_OUTBOX_ACCT,
	SPOOL_DB_DONE,
	/* spool_index.c */
	SPOOL_DB_DLOG_STATUS,
	SPOOL_DB_DLOG_ISSUE,
	SPOOL_DB_ISSUE_DATE,
	/* spool_pause.c (issue 15 item 7) */
	SPOOL_DB_PAUSES,
	/* spool_evsel.c (issue 18 item 2) */
	SPOOL_DB_DLOG_ACCT,
	/* spool_engage.c (issue 16: first opens/clicks, complaint index) */
	SPOOL_DB_ENGAGE_FIRST,
	SPOOL_DB_MSGID_RCPT,
	/* spool_track.c (issue 16) */
	SPOOL_DB_TRACK,
	/* spool_dedupe.c (issue 18 item 3) */
	SPOOL_DB_DEDUPE,
	/* spool_tlsrpt.c (issue 17 item 4) */
	SPOOL_DB_TLSRPT,
	/* spool_mtasts.c (issue 17 item 2): MTA-STS policy cache */
	SPOOL_DB_MTASTS,
	/* spool_cluster.c (issue 19 item 4): the policy journal */
	SPOOL_DB_CLUSTER_OUT,
	/* spool_tlsrpt_sent.c: TLS reports sent (spoolctl tls-report --send) */
	SPOOL_DB_TLSRPT_SENT,
	/* spool_nxdom.c: NXDOMAIN sightings per recipient domain */
	SPOOL_DB_NXDOM,
	SPOOL_DB_N
};

/* *val_r points into the map: valid until the next write in the txn. */
int spool_db_get(struct spool_txn *, enum spool_dbi, const struct spool_key *,
    const void **val_r, size_t *len_r);
int spool_db_put(struct spool_txn *, enum spool_dbi, const struct spool_key *,
    const void *, size_t);
/* SPOOL_ENOTFOUND if absent. */
int spool_db_del(struct spool_txn *, enum spool_dbi, const struct spool_key *);
/* Key and value are copies: the callback may write to the database.
 * Non-zero from the callback stops and is returned. */
typedef int spool_db_cb(const uint8_t *key, size_t klen, const void *val,
    size_t vlen, void *arg);
/* Forward: keys >= start that begin with start's first plen bytes.
 * Reverse: keys <= start (start NULL: from the last key), plen ignored. */
int spool_db_iter(struct spool_txn *, enum spool_dbi,
    const struct spool_key *start, size_t plen, bool reverse, spool_db_cb *,
    void *);
/* The time an entry of a database pruned by time goes by, from its
 * value: 0, or non-zero when it does not decode (it then goes). */
typedef int spool_db_time_fn(const void *val, size_t vlen, int64_t *t_r);
/* Deletes the entries of db whose time (when) is before `before`, at most
 * max, looking at most 4 x max, from the cursor on (zeroed: from the
 * start); *done_r when the walk reached the end (spool_dedupe.c). */
struct spool_dedupe_cursor;
int spool_db_prune_by_time(struct spool_txn *, enum spool_dbi,
    spool_db_time_fn *when, int64_t before, struct spool_dedupe_cursor *,
    size_t max, size_t *n_r, bool *done_r);
/* Deletes every key that begins with the prefix. */
/* Deletes the entries of d whose key starts with a big-endian day number
 * below before, at most max of them (spool_tlsrpt.c). */
int spool_db_prune_days(struct spool_txn *, enum spool_dbi, uint32_t before,
    size_t max);
int spool_db_del_prefix(struct spool_txn *, enum spool_dbi,
    const struct spool_key *);
/* Deletes at most max keys that begin with a queue id older than before
 * (unix seconds), in key (= arrival) order; every key is klen bytes, else
 * SPOOL_ECORRUPT (spool_done.c: done, engage_first). */
int spool_db_prune_qid(struct spool_txn *, enum spool_dbi, size_t klen,
    int64_t before, size_t max, size_t *n_r);
/* The number of records in a database (LMDB's count: no walk). */
int spool_db_count(struct spool_txn *, enum spool_dbi, size_t *n_r);
/* meta counters and values */
int spool_db_meta_get_u64(struct spool_txn *, const char *name, uint64_t *);
int spool_db_meta_put_u64(struct spool_txn *, const char *name, uint64_t);
/* Increments the counter and returns its new value (first is 1). */
int spool_db_meta_next(struct spool_txn *, const char *name, uint64_t *);
/* The environment's 8-hex instance id (set at creation). */
int	      spool_db_instance(struct spool_txn *, char dst[9]);
struct spool *spool_txn_spool(struct spool_txn *);
/* spool_dir/db of an open environment. */
const char *spool_db_dir(const struct spool *);

/* spool_outbox.c: one outbox entry; and, in the writer's open, the move
 * of the first outbox's entries (BE64 seq keys) into outbox_acct. */
int spool_outbox_put(struct spool_txn *, const char *login, uint64_t seq,
    int64_t dt, const char *json, size_t len);
int spool_db_migrate_spoold(struct spool *);

#endif
