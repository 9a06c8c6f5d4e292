/*
 * tfix: fixtures shared by the unit tests that need a spool tree on disk.
 */
#ifndef SG_TFIX_H
#define SG_TFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool_rec.h" /* enum spool_dbi */

struct conf;
struct ev;
struct spool;
struct spool_txn;
struct t_case;

/* rm -rf dir (a t_diag line if that fails); nothing if dir is "". */
void t_rmtree(const char *dir);
/* T_RUN(cases), then t_rmtree(dir): main() of a test that works in dir. */
int t_run_rmtree(const struct t_case *, size_t n, const char *dir);
#define T_RUN_RMTREE(cases, dir) \
	t_run_rmtree((cases), sizeof(cases) / sizeof((cases)[0]), (dir))
/*
 * A fresh empty directory /tmp/NAME.XXXXXX, written to dir (the previous
 * one there, if any, is removed first). Aborts if it cannot.
 */
void t_fresh_dir(char *dir, size_t dirsz, const char *name);
/*
 * t_fresh_dir, then a writer's spool_open of it with map as both the map
 * size and its ceiling. Aborts (after a t_diag line) if it cannot.
 */
struct spool *t_spool_fresh(char *dir, size_t dirsz, const char *name,
    int64_t map);
/*
 * A default configuration whose spool_dir is a fresh /tmp/NAME.XXXXXX,
 * written to dir (the previous one there, if any, is removed first). As
 * root the daemon users and the group are root: the configured ones may
 * not exist on a build machine. Aborts if it cannot.
 */
struct conf *t_spool_conf(char *dir, size_t dirsz, const char *name);
/*
 * A loop whose wake-up (ev_wakeup, as smtpd's commit threads use it) does
 * nothing but end ev_run_once()'s wait. Aborts if it cannot.
 */
struct ev *t_wake_loop(void);
/* A write transaction on sp; aborts if it cannot begin. */
struct spool_txn *t_wtxn(struct spool *sp);
/* A read or write transaction on sp; aborts if it cannot begin. */
struct spool_txn *t_txn(struct spool *sp, bool write);
/* spool_commit; aborts if it fails. */
void t_commit(struct spool_txn **t);
/* A queue id (QID_SIZE bytes) for number n at time dt (unix seconds). */
void t_mkqid(char *q, int64_t dt, unsigned n);
/* The number of records in database d. */
size_t t_count(struct spool_txn *t, enum spool_dbi d);
/*
 * The sequence numbers a log reader gave, as "1,4,": t_seqs_cb appends
 * one and stops the walk (returns 1) after max of them (0: never).
 */
struct t_seqs {
	char   s[4096];
	size_t n, max;
};
int t_seqs_cb(uint64_t seq, const char *json, size_t len, void *arg);
/*
 * An older database, made with LMDB directly in the (closed) spool dir
 * opened with map: drops each database named in dbs, then deletes each
 * meta key named in marks (both NULL-terminated; marks may be NULL).
 * Aborts if it cannot.
 */
void t_db_forget(const char *dir, int64_t map, const char *const *dbs,
    const char *const *marks);
/*
 * Closes *sp, makes it older with t_db_forget, checks that a reader then
 * fails clearly (SPOOL_EVERSION) and opens a writer (which migrates) into
 * *sp. Aborts if the writer cannot open.
 */
void t_spool_old(struct spool **sp, const char *dir, int64_t map,
    const char *const *dbs, const char *const *marks);
/* Closes *sp and checks that a reader opens the spool now. */
void t_spool_reader_opens(struct spool **sp, const char *dir, int64_t map);
/*
 * After a migration: closes *sp, opens a writer again and checks that
 * database d still holds want records (the build is idempotent), then
 * t_spool_reader_opens.
 */
void t_spool_remigrate(struct spool **sp, const char *dir, int64_t map,
    enum spool_dbi d, size_t want);
/* A spool_db_iter callback that counts the records in *(size_t *)arg. */
int t_count_rec(const uint8_t *k, size_t kl, const void *v, size_t vl,
    void *arg);
/*
 * Writes key (exactly these bytes) to keys/NAME of cf's spool (creating
 * the tree) and records it in sp as login's default DKIM key for domain,
 * selector "s1": what `spoolctl dkim add --default` leaves, without its
 * check of the bytes. Aborts (after a t_diag line) if it cannot.
 */
void t_dkim_key(const struct conf *cf, struct spool *sp, const char *login,
    const char *domain, const char *name, bool ed25519, const void *key,
    size_t len);

/* An event of type ty/class cl for login and qid (issue: 0 = none), with
 * fixed time, addresses and reply. */
void t_ev_init(struct spool_event *, enum spool_ev_type, enum spool_ev_class,
    const char *login, const char *qid, uint64_t issue);

#endif
