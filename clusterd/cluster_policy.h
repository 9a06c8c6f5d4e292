/*
 * Policy in cluster mode (issue 19, CLUSTER.md item 4): between a node's
 * LMDB journal and mirror (spool/spool_cluster.h) and PostgreSQL's
 * smtpgate.policy. clusterd calls the three cpol_ functions; spoolctl
 * calls cpol_publish after its own commit and cpol_export for `spoolctl
 * cluster export`. Every libpq call blocks, bounded by the connection's
 * connect_timeout and statement_timeout (cpol_connect sets both).
 *
 * Last writer wins: a publish takes an EXCLUSIVE lock on smtpgate.policy
 * for its one transaction, so versions become visible in version order
 * and a pull of "version > the last one mirrored" misses nothing.
 */
#ifndef SG_CLUSTER_POLICY_H
#define SG_CLUSTER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

struct spool;

#define CPOL_TOMBSTONE_DAYS 30	  /* deleted rows kept in PostgreSQL */
#define CPOL_PAGE	    5000  /* rows per resync page and export batch */
#define CPOL_PENDING_MAX    1000 /* journal entries a pull looks through */

/*
 * Publishes at most max journal entries in one PostgreSQL transaction,
 * which also sets the journal's mark (cluster_mark.c), then drops them
 * from the journal; entries up to the mark (published before, not
 * dropped) are dropped without being published again. The number
 * published (0: nothing waited), or -1 (logged; the journal keeps them).
 */
int cpol_publish(PGconn *, struct spool *, const char *node, size_t max);
/*
 * Applies at most max rows with version > meta cluster_policy_version, in
 * version order, storing the new version in the same LMDB transaction.
 * Rows whose key waits in the journal are skipped (the local change is
 * newer). The number applied, or -1.
 */
int cpol_pull(PGconn *, struct spool *, size_t max);
/*
 * The full comparison: every kind in key order, page by page, local rows
 * PostgreSQL lacks deleted (except those waiting in the journal), rows it
 * has applied. A node that never mirrored or whose journal overflowed
 * first pushes every local row (ON CONFLICT DO NOTHING). Tombstones older
 * than CPOL_TOMBSTONE_DAYS are purged (meta policy_purged: a node behind
 * that version resyncs instead of pulling). 0 or -1.
 */
int cpol_resync(PGconn *, struct spool *);

/* Every local policy row into PostgreSQL, ON CONFLICT DO NOTHING: counts
 * per kind of rows added and already there. 0 or -1. */
struct cpol_counts {
	uint64_t added[8], present[8];
};
int cpol_export(PGconn *, struct spool *, const char *node,
    struct cpol_counts *);

/* For cluster.state and spoolctl status: entries waiting in the journal,
 * the version mirrored (0 if none). 0 or a spool error. */
int cd_journal_count(struct spool *, uint64_t *n_r);
int cd_policy_version(struct spool *, uint64_t *v_r);

/*
 * Sealed rows (cluster_seal.c; cluster_secret_file): every value written
 * to smtpgate.policy is sealed with the file's key when one is loaded, and
 * every value read must then be sealed and open with it (a row written in
 * clear, or changed in the database, is skipped with a log line).
 */
#define CSEAL_MAGIC    "\0sgseal1"
#define CSEAL_MAGICLEN 8
struct buf;
struct spool_centry;
/* The key of path (64 hex digits, not readable by every user); "" or
 * NULL: none (values in clear). accept: a second key, only to open with
 * (a rotation: cluster_secret_file_accept), or ""/NULL. 0, or -1 with
 * err. */
int  cseal_load(const char *path, const char *accept, char *err,
     size_t errsz);
/* The same from fp and afp (NULL: no second key), opened earlier
 * (spoolctl: before its privilege drop), which it closes; path and apath
 * name them in err. */
int  cseal_load_fp(FILE *fp, const char *path, FILE *afp, const char *apath,
     char *err, size_t errsz);
void cseal_forget(void);
bool cseal_on(void);
bool cseal_accepting(void); /* an accepted second key is loaded */
bool cseal_is_sealed(const uint8_t *, size_t);
/* e's value sealed into out (a key is loaded, e is no deletion). 0/-1. */
int cseal_seal(const struct spool_centry *e, struct buf *out);
/* e's value as applied: opened into out (e then points there) when it is
 * sealed; as it is when nothing is sealed. 0; 1 when it opened only with
 * the accepted key; -1 with why. */
int cseal_open(struct spool_centry *e, struct buf *out, char *err,
    size_t errsz);
/* spoolctl cluster seal: every row in clear sealed, and every row that
 * opens only with the accepted key sealed again with the key in force (a
 * new version each, so every node applies it again). 0 with the counts,
 * or -1. */
struct cpol_seal_counts {
	long sealed;   /* were in clear */
	long resealed; /* opened only with the accepted key */
	long unopened; /* opened with neither: left as they are (logged) */
};
int cpol_seal_all(PGconn *, struct cpol_seal_counts *);

/* ---- internal to libcpolicy: the journal's high-water mark
 * (cluster_mark.c; clusterd(8) "Policy") */

#include "spool_cluster.h"

#define CPOL_V_MIRRORED "cluster_policy_version"

/* One statement, text parameters except those marked binary (bytea): the
 * result when it succeeded, else NULL (logged). */
PGresult *cpol_q(PGconn *, const char *what, const char *sql, int n,
    const char *const *vals, const int *lens, const int *bin, int resbin);

/* smtpgate.journal_marks' row of (node, this LMDB's journal instance). */
struct cpol_mark {
	char	 inst[SPOOL_CJ_INSTANCE_HEX + 1];
	bool	 have;		      /* the row exists */
	uint64_t last;		      /* last_seq: published up to it */
	uint8_t	 md[SPOOL_CJ_DIGEST]; /* the digest of entry last */
	uint64_t version;	      /* policy's top version before that */
};

/* The instance (created when the journal has none) and its row. 0, -1. */
int cpol_mark_get(PGconn *, struct spool *, const char *node,
    struct cpol_mark *);
/* *match_r: entry m->last is in the journal, the one the mark names. */
int cpol_mark_check(struct spool_txn *, const struct cpol_mark *,
    bool *match_r);
/* A new instance for a journal that does not continue its mark. 0, -1. */
int cpol_mark_renew(struct spool *, struct cpol_mark *);
/* In the publish's transaction: the mark to seq last (digest md); keep:
 * the row's version stays (entries published before are still waiting). */
int cpol_mark_put(PGconn *, const char *node, const struct cpol_mark *,
    uint64_t last, const uint8_t md[SPOOL_CJ_DIGEST], bool keep);
/* Drops the journal up to upto; reread: the mirror reads the rows changed
 * since m->version again (a skipped entry kept their pull from applying
 * them). 0 or a spool error. */
int cpol_mark_drop(struct spool *, uint64_t upto, const struct cpol_mark *,
    bool reread);
/* Deletes rows of instances superseded for CPOL_TOMBSTONE_DAYS. 0, -1. */
int cpol_mark_purge(PGconn *);

/* A bounded connection for spoolctl: connect_timeout 5 s (unless the DSN
 * names one), statement_timeout 10 s. NULL with err filled. */
PGconn *cpol_connect(const char *dsn, char *err, size_t errsz);

#endif
