/*
 * Cluster mode (issue 19; ../shared CLUSTER.md items 4 and 5), the spool
 * side. A spool opened with SPOOL_CLUSTER (the process's config has
 * cluster_dsn) journals every write to a policy database in the same
 * LMDB transaction: database cluster_out, key BE64 seq (meta
 * cluster_out_seq), value one encoded entry (spool_centry_enc). clusterd
 * (clusterd/cluster_policy.c) drains it into PostgreSQL and mirrors the
 * other nodes' rows back through spool_cluster_apply() in a transaction
 * marked with spool_txn_nojournal(), so mirrored rows are not journaled
 * again. A spool opened without the flag pays one branch per write.
 *
 * The kinds are the LMDB database names (accounts carry the password
 * hashes, pinned IPs, tracking settings and callback secrets; pauses are
 * the operator's `spoolctl pause`), plus issue_block: an issue's block
 * flag (su_blocked) keyed by the issue_idx key login\0date\0(\0 | \1 name\0),
 * value spool_rec u64 1 (blocked) or 0 (unblocked); and dkim_key: a DKIM
 * private key file of spool_dir/keys/ (the dkim records name them), key
 * the file name, value the PEM text, so every node can sign.
 */
#ifndef SG_SPOOL_CLUSTER_H
#define SG_SPOOL_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "spool.h"

/* spool_open's flags for a process whose config has cluster_dsn dsn. */
#define SPOOL_CLUSTER_IF(dsn) \
	((dsn) != NULL && (dsn)[0] != '\0' ? SPOOL_CLUSTER : 0u)

/* Entries the journal holds at most. Past it the writer stops journaling
 * and sets meta cluster_out_overflow; clusterd then pushes every local
 * policy row (ON CONFLICT DO NOTHING) at its next connect and clears it. */
#define SPOOL_CJ_MAX 1000000

enum spool_ckind {
	SPOOL_CK_ACCOUNTS,
	SPOOL_CK_SENDERS,
	SPOOL_CK_DKIM,
	SPOOL_CK_STOPLIST,
	SPOOL_CK_PERMFAIL,
	SPOOL_CK_PAUSES,
	/* the kinds without a database of their own come last */
	SPOOL_CK_ISSUE_BLOCK,
	SPOOL_CK_DKIM_KEY,
	SPOOL_CK_N
};

const char *spool_ckind_name(enum spool_ckind);
/* 0, or EINVAL for a name that is no kind. */
int spool_ckind_parse(const char *, size_t, enum spool_ckind *);

/* One journal entry or PostgreSQL row. Pointers into the caller's bytes. */
struct spool_centry {
	enum spool_ckind ce_kind;
	const uint8_t	*ce_key;
	size_t		 ce_klen; /* 1..511 (LMDB's key limit) */
	const uint8_t	*ce_val;  /* NULL: deleted (a tombstone) */
	size_t		 ce_vlen; /* at most SPOOL_REC_MAX */
};

/*
 * The journal value (pure, spool_cjent.c): version 1, kind (1 byte), key
 * length (BE16), key, 0 (deleted) or 1 then value length (BE32) and
 * value. dec points into the input and rejects anything else: a bad
 * version, kind, length, trailing bytes. 0, SPOOL_ECORRUPT or ENOMEM.
 */
int spool_centry_enc(const struct spool_centry *, struct buf *);
int spool_centry_dec(const void *, size_t, struct spool_centry *);

/* ---- the journal (spool_cluster.c) */

/* Calls cb for at most max entries with seq > after, in seq order. */
typedef int spool_cjournal_cb(uint64_t seq, const struct spool_centry *,
    void *);
int	    spool_cjournal_iter(struct spool_txn *, uint64_t after, size_t max,
	    spool_cjournal_cb *, void *);
/* Deletes every entry with seq <= upto (the ones just published). */
int spool_cjournal_drop(struct spool_txn *, uint64_t upto);
int spool_cjournal_count(struct spool_txn *, size_t *);
/* true if an entry for (kind, key) waits in the journal. */
int spool_cjournal_has(struct spool_txn *, enum spool_ckind, const uint8_t *,
    size_t, bool *);
/*
 * The journal's instance: 16 random bytes (meta cluster_out_instance,
 * here as 32 hex digits) naming its sequence space. The first journaled
 * write creates it (a database from before it gets one then, its waiting
 * entries kept); a fresh LMDB has another, so a rebuilt node whose
 * sequence starts again at 1 is not taken for the old one. clusterd's
 * high-water mark in PostgreSQL (smtpgate.journal_marks) is kept per
 * (cluster_node, instance). SPOOL_ENOTFOUND when absent and !create;
 * _new replaces it (a journal that does not continue its mark).
 */
#define SPOOL_CJ_INSTANCE_HEX 32
int spool_cjournal_instance(struct spool_txn *, bool create,
    char dst[SPOOL_CJ_INSTANCE_HEX + 1]);
int spool_cjournal_instance_new(struct spool_txn *,
    char dst[SPOOL_CJ_INSTANCE_HEX + 1]);
/* SHA-256 of the entry seq (BE64 seq, then its encoding): which entry a
 * mark names. 0, SPOOL_ECORRUPT or ENOMEM. */
#define SPOOL_CJ_DIGEST 32
int spool_centry_digest(uint64_t seq, const struct spool_centry *,
    uint8_t			 md[SPOOL_CJ_DIGEST]);
/* The overflow flag (see SPOOL_CJ_MAX). */
int spool_cjournal_overflowed(struct spool_txn *, bool *);
int spool_cjournal_set_overflow(struct spool_txn *, bool);

/* The writes of this txn are not journaled (clusterd's mirror). */
void spool_txn_nojournal(struct spool_txn *);
bool spool_cluster_on(const struct spool *);

/* The mirror: stores or deletes the row (an issue_block sets su_blocked,
 * creating the issue if needed). The txn must be a nojournal one. */
int spool_cluster_apply(struct spool_txn *, const struct spool_centry *);
/* Every local row of a kind (issue_block: every blocked issue). */
int spool_cluster_iter(struct spool_txn *, enum spool_ckind,
    int (*cb)(const struct spool_centry *, void *), void *);

/* The local keys of a kind (not issue_block) after lo (lolen 0: from the
 * first) up to hi inclusive (hi NULL: to the last), in key order. */
int spool_cluster_range(struct spool_txn *, enum spool_ckind, const uint8_t *lo,
    size_t lolen, const uint8_t *hi, size_t hilen,
    int (*cb)(const uint8_t *key, size_t klen, void *), void *);
/* LMDB's (and PostgreSQL bytea's) key order: memcmp, then the length. */
int spool_cluster_keycmp(const uint8_t *, size_t, const uint8_t *, size_t);

/* meta values of clusterd (cluster_policy_version, ...). */
int spool_cluster_meta_get(struct spool_txn *, const char *, uint64_t *);
int spool_cluster_meta_put(struct spool_txn *, const char *, uint64_t);

/*
 * The node claim (clusterd/cluster_node.c): a random 128-bit id of this
 * spool's LMDB, 32 lower-case hex digits in meta cluster_node_claim,
 * created by the first caller (a write txn) and kept for good; a rebuilt
 * LMDB gets a new one. clusterd heartbeats its cluster_node's row in
 * smtpgate.nodes with it, so a second gateway with the same name is told
 * apart from a restart of this one. 0, or an errno/SPOOL_E* code.
 */
#define SPOOL_CLAIM_LEN 32
int spool_cluster_node_claim(struct spool *, char dst[SPOOL_CLAIM_LEN + 1]);

/* A DKIM key file installed in keys/ (pem NULL: removed), journaled as
 * dkim_key in cluster mode; nothing otherwise. */
int spool_dkim_key_journal(struct spool_txn *, const char *name,
    const void *pem, size_t len);
#define SPOOL_DKIM_KEY_MAX 65536 /* bytes of a key file the cluster shares */

/* An issue's block flag, journaled as issue_block in cluster mode. */
int spool_issue_set_blocked(struct spool_txn *, struct spool_issue *, bool);

/*
 * Item 5: the issue id of (login, date, name) in cluster mode: the first
 * 52 bits of SHA-256("login\0date\0name-or-empty\0F"), F '1' with a name
 * and '0' without, 1 if that is 0. Every node files the same issue under
 * the same id without asking anyone.
 */
uint64_t spool_issue_cluster_id(const char *login, const char *date,
    const char *name);

/* ---- internal to libspool */
/* Appends an entry (val NULL: deleted), honouring the bound. */
int spool_cjournal_add(struct spool_txn *, enum spool_ckind, const void *key,
    size_t klen, const void *val, size_t vlen);
/* The same, only when the spool journals and the txn is not the mirror's
 * (spool_db_journals, spool_db.c). */
int  spool_cjournal_txn_add(struct spool_txn *, enum spool_ckind,
     const void *key, size_t klen, const void *val, size_t vlen);
bool spool_db_journals(const struct spool_txn *);
/* spool_db.c's hook after a write of a database: journaled as its kind
 * if it is a policy database, else nothing. */
int spool_cjournal_dbi(struct spool_txn *, int dbi, const void *key,
    size_t klen, const void *val, size_t vlen);
/* The id of a new issue in cluster mode (spool_queue.c). */
int spool_issue_cluster_pick(struct spool_txn *, const char *login,
    const char *date, const char *name, uint64_t *id_r);

#endif
