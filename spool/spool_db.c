/*
 * The LMDB side of libspool: environment, transactions, raw access for the
 * other spool files (spool_rec.h) and the policy/queue records. The only
 * file that includes <lmdb.h> (STYLE L2); LMDB codes become SPOOL_E*.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_index.h"
#include "spool_rec.h"
#include "xmem.h"

#define SPOOL_SCHEMA	1

struct spool {
	char		 sp_dbdir[4096];
	MDB_env		*sp_env;
	MDB_dbi		 sp_dbi[SPOOL_DB_N];
	bool		 sp_rdonly;
	/* the live write txn: spool_close() aborts it (see there) */
	struct spool_txn *sp_wtxn;
};

struct spool_txn {
	struct spool	*st_sp;
	MDB_txn		*st_txn;
	bool		 st_write;
};

static const char *const spool_db_names[SPOOL_DB_N] = {
	[SPOOL_DB_META] = "meta", [SPOOL_DB_ACCOUNTS] = "accounts",
	[SPOOL_DB_SENDERS] = "senders", [SPOOL_DB_DKIM] = "dkim",
	[SPOOL_DB_STOPLIST] = "stoplist", [SPOOL_DB_PERMFAIL] = "permfail",
	[SPOOL_DB_ISSUES] = "issues", [SPOOL_DB_ISSUE_IDX] = "issue_idx",
	[SPOOL_DB_MESSAGES] = "messages", [SPOOL_DB_RCPTS] = "rcpts",
	[SPOOL_DB_SCHED] = "sched", [SPOOL_DB_DLOG] = "dlog",
	[SPOOL_DB_DLOG_QID] = "dlog_qid", [SPOOL_DB_OUTBOX] = "outbox",
	[SPOOL_DB_DLOG_STATUS] = "dlog_status", [SPOOL_DB_DLOG_ISSUE] = "dlog_issue",
	[SPOOL_DB_ISSUE_DATE] = "issue_date",
};

static int
spool_db_rc(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_NOTFOUND: return SPOOL_ENOTFOUND;
	case MDB_KEYEXIST: return SPOOL_EEXIST;
	case MDB_MAP_FULL: return SPOOL_EFULL;
	case MDB_BAD_VALSIZE: return SPOOL_ETOOBIG;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: return SPOOL_ECORRUPT;
	case MDB_VERSION_MISMATCH: case MDB_INVALID: return SPOOL_EVERSION;
	default: return rc > 0 ? rc : SPOOL_EDB;
	}
}

const char *
spool_strerror(int rc)
{
	switch (rc) {
	case 0: return "success";
	case SPOOL_ENOTFOUND: return "no such record";
	case SPOOL_EEXIST: return "record exists";
	case SPOOL_EFULL: return "LMDB map full: raise lmdb_map_size";
	case SPOOL_EVERSION: return "database schema version mismatch";
	case SPOOL_ECORRUPT: return "corrupt record";
	case SPOOL_EFORMAT: return "malformed envelope";
	case SPOOL_ETOOBIG: return "value too large";
	case SPOOL_EDB: return "database error";
	default: return rc > 0 ? strerror(rc) : "unknown error";
	}
}

/* ---- environment */

/* data.mdb 0640, lock.mdb 0660 whatever the umask; as root, owned like
 * db/ so the daemons can open what spoolctl (root) created first. */
static void
spool_db_fix_files(const char *dbdir)
{
	static const struct { const char *n; mode_t m; } f[] = {
		{ "data.mdb", 0640 }, { "lock.mdb", 0660 } };
	struct stat	 ds, st;
	char		 path[4096];
	size_t		 i;

	if (stat(dbdir, &ds) == -1)
		return;
	for (i = 0; i < 2; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dbdir, f[i].n) >= (int)sizeof(path) ||
		    stat(path, &st) == -1)
			continue;
		/* Best effort: a non-owner cannot chmod, and then the
		 * owner already made the file right. */
		if (geteuid() == 0 && (st.st_uid != ds.st_uid || st.st_gid != ds.st_gid) &&
		    chown(path, ds.st_uid, ds.st_gid) == -1)
			continue;
		/* a non-root owner in db/'s group can still fix the group */
		if (geteuid() != 0 && st.st_uid == geteuid() && st.st_gid != ds.st_gid &&
		    chown(path, (uid_t)-1, ds.st_gid) == -1)
			continue;
		if ((st.st_mode & 07777) != f[i].m && chmod(path, f[i].m) == -1)
			continue;
	}
}

static void
spool_db_instance_new(char dst[9])
{
	uint32_t	r;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	(void)snprintf(dst, 9, "%08x", r);
}

static int
spool_db_init_meta(struct spool_txn *t)
{
	struct spool_key	 k;
	const void		*v;
	size_t			 len;
	uint64_t		 ver;
	char			 inst[9];
	int			 rc;

	rc = spool_db_meta_get_u64(t, "version", &ver);
	if (rc == 0)
		return ver == SPOOL_SCHEMA ? 0 : SPOOL_EVERSION;
	if (rc != SPOOL_ENOTFOUND || !t->st_write)
		return rc == SPOOL_ENOTFOUND ? SPOOL_EVERSION : rc;
	spool_key_init(&k);
	spool_key_str(&k, "instance");
	if (spool_db_get(t, SPOOL_DB_META, &k, &v, &len) == SPOOL_ENOTFOUND) {
		spool_db_instance_new(inst);
		if ((rc = spool_db_put(t, SPOOL_DB_META, &k, inst, 8)) != 0)
			return rc;
	}
	return spool_db_meta_put_u64(t, "version", SPOOL_SCHEMA);
}

static int
spool_db_open_dbis(struct spool *sp)
{
	struct spool_txn	 t = { .st_sp = sp, .st_write = !sp->sp_rdonly };
	unsigned		 fl = sp->sp_rdonly ? 0 : MDB_CREATE;
	size_t			 i;
	int			 rc;

	rc = mdb_txn_begin(sp->sp_env, NULL, sp->sp_rdonly ? MDB_RDONLY : 0, &t.st_txn);
	if (rc != 0)
		return spool_db_rc(rc);
	for (i = 0; i < SPOOL_DB_N; i++)
		if ((rc = mdb_dbi_open(t.st_txn, spool_db_names[i], fl, &sp->sp_dbi[i])) != 0) {
			/* a read-only opener of an older or foreign database */
			rc = rc == MDB_NOTFOUND ? SPOOL_EVERSION : spool_db_rc(rc);
			goto fail;
		}
	if ((rc = spool_db_init_meta(&t)) != 0)
		goto fail;
	return spool_db_rc(mdb_txn_commit(t.st_txn));
fail:
	mdb_txn_abort(t.st_txn);
	return rc;
}

int
spool_open(const char *spool_dir, int64_t map_size, unsigned flags, struct spool **sp_r)
{
	struct spool	*sp;
	char		 dir[4096];
	int		 rc;

	*sp_r = NULL;
	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_DB, NULL) == -1)
		return ENAMETOOLONG;
	sp = xcalloc(1, sizeof(*sp));
	(void)str_copy(sp->sp_dbdir, sizeof(sp->sp_dbdir), dir);	/* same size */
	sp->sp_rdonly = (flags & SPOOL_RDONLY) != 0;
	if (!sp->sp_rdonly && mkdir(dir, 0750) == 0)
		(void)chmod(dir, 0750);		/* umask-independent; we own it */
	else if (!sp->sp_rdonly && errno != EEXIST) {
		rc = errno;
		goto fail0;
	}
	if ((rc = mdb_env_create(&sp->sp_env)) != 0) {
		rc = spool_db_rc(rc);
		goto fail0;
	}
	(void)mdb_env_set_maxdbs(sp->sp_env, 32);
	if (map_size > 0 && (rc = mdb_env_set_mapsize(sp->sp_env, (size_t)map_size)) != 0)
		goto fail;
	rc = mdb_env_open(sp->sp_env, dir, MDB_NOTLS | (sp->sp_rdonly ? MDB_RDONLY : 0), 0640);
	if (rc != 0)
		goto fail;
	if (!sp->sp_rdonly)
		spool_db_fix_files(dir);
	if ((rc = spool_db_open_dbis(sp)) != 0)
		goto fail1;
	/* a failed build leaves the readers on their scans; retried next open */
	if (!sp->sp_rdonly)
		(void)spool_db_migrate_records(sp);
	*sp_r = sp;
	return 0;
fail:
	rc = spool_db_rc(rc);
fail1:
	mdb_env_close(sp->sp_env);
fail0:
	free(sp);
	return rc;
}

void
spool_close(struct spool **spp)
{
	if (spp == NULL || *spp == NULL)
		return;
	/*
	 * Closing the env unmaps the lock file; a write txn still open would
	 * leave the shared writer mutex locked by a region the kernel can no
	 * longer reach at exit (no robust-mutex recovery): every writer of the
	 * spool would block forever. This happens when a program exits on an
	 * error inside a write txn (spoolctl's atexit close). Abort it first;
	 * the caller's handle stays allocated but empty.
	 */
	if ((*spp)->sp_wtxn != NULL) {
		mdb_txn_abort((*spp)->sp_wtxn->st_txn);
		(*spp)->sp_wtxn->st_txn = NULL;
		(*spp)->sp_wtxn = NULL;
	}
	mdb_env_close((*spp)->sp_env);
	free(*spp);
	*spp = NULL;
}

int
spool_begin(struct spool *sp, bool write, struct spool_txn **t_r)
{
	struct spool_txn	*t;
	int			 rc;

	*t_r = NULL;
	if (write && sp->sp_rdonly)
		return EROFS;
	t = xcalloc(1, sizeof(*t));
	t->st_sp = sp;
	t->st_write = write;
	rc = mdb_txn_begin(sp->sp_env, NULL, write ? 0 : MDB_RDONLY, &t->st_txn);
	if (rc == MDB_MAP_RESIZED) {
		/* another process grew the map: adopt its size and retry */
		(void)mdb_env_set_mapsize(sp->sp_env, 0);
		rc = mdb_txn_begin(sp->sp_env, NULL, write ? 0 : MDB_RDONLY, &t->st_txn);
	}
	if (rc != 0) {
		free(t);
		return spool_db_rc(rc);
	}
	if (write)
		sp->sp_wtxn = t;
	*t_r = t;
	return 0;
}

int
spool_commit(struct spool_txn **tp)
{
	int	rc;

	if (tp == NULL || *tp == NULL)
		return EINVAL;
	if ((*tp)->st_write && (*tp)->st_sp->sp_wtxn == *tp)
		(*tp)->st_sp->sp_wtxn = NULL;
	if ((*tp)->st_txn == NULL) {	/* aborted by spool_close() */
		free(*tp);
		*tp = NULL;
		return EINVAL;
	}
	rc = mdb_txn_commit((*tp)->st_txn);
	free(*tp);
	*tp = NULL;
	return spool_db_rc(rc);
}

void
spool_abort(struct spool_txn **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	if ((*tp)->st_write && (*tp)->st_sp->sp_wtxn == *tp)
		(*tp)->st_sp->sp_wtxn = NULL;
	if ((*tp)->st_txn != NULL)
		mdb_txn_abort((*tp)->st_txn);
	free(*tp);
	*tp = NULL;
}

int
spool_renew(struct spool_txn *t)
{
	int	rc;

	if (t->st_write)
		return EINVAL;
	mdb_txn_reset(t->st_txn);
	if ((rc = mdb_txn_renew(t->st_txn)) == MDB_MAP_RESIZED) {
		(void)mdb_env_set_mapsize(t->st_sp->sp_env, 0);
		rc = mdb_txn_renew(t->st_txn);
	}
	return spool_db_rc(rc);
}

struct spool *
spool_txn_spool(struct spool_txn *t)
{
	return t->st_sp;
}

const char *
spool_db_dir(const struct spool *sp)
{
	return sp->sp_dbdir;
}

/* ---- raw access */

static MDB_val
spool_db_kval(const struct spool_key *k)
{
	MDB_val	v = { .mv_size = k->k_len, .mv_data = (void *)(uintptr_t)k->k_data };

	return v;
}

int
spool_db_get(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k,
    const void **val_r, size_t *len_r)
{
	MDB_val	key, val;
	int	rc;

	if (!spool_key_ok(k))
		return SPOOL_ETOOBIG;
	key = spool_db_kval(k);
	if ((rc = mdb_get(t->st_txn, t->st_sp->sp_dbi[d], &key, &val)) != 0)
		return spool_db_rc(rc);
	*val_r = val.mv_data;
	*len_r = val.mv_size;
	return 0;
}

int
spool_db_put(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k,
    const void *p, size_t n)
{
	MDB_val	key, val = { .mv_size = n, .mv_data = (void *)(uintptr_t)p };

	if (!spool_key_ok(k))
		return SPOOL_ETOOBIG;
	if (!t->st_write)
		return EROFS;
	key = spool_db_kval(k);
	return spool_db_rc(mdb_put(t->st_txn, t->st_sp->sp_dbi[d], &key, &val, 0));
}

int
spool_db_del(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k)
{
	MDB_val	key;

	if (!spool_key_ok(k))
		return SPOOL_ETOOBIG;
	if (!t->st_write)
		return EROFS;
	key = spool_db_kval(k);
	return spool_db_rc(mdb_del(t->st_txn, t->st_sp->sp_dbi[d], &key, NULL));
}

/* Positions c at the first key >= k (forward) or the last key <= k. */
static int
spool_db_seek(MDB_cursor *c, const struct spool_key *k, bool reverse,
    MDB_val *key, MDB_val *val)
{
	int	rc;

	if (k == NULL || k->k_len == 0)
		return mdb_cursor_get(c, key, val, reverse ? MDB_LAST : MDB_FIRST);
	*key = spool_db_kval(k);
	rc = mdb_cursor_get(c, key, val, MDB_SET_RANGE);
	if (!reverse)
		return rc;
	if (rc == MDB_NOTFOUND)
		return mdb_cursor_get(c, key, val, MDB_LAST);
	if (rc == 0 && (key->mv_size != k->k_len ||
	    memcmp(key->mv_data, k->k_data, k->k_len) != 0))
		return mdb_cursor_get(c, key, val, MDB_PREV);
	return rc;
}

/* Moves past `last` after a callback that may have changed the tree. */
static int
spool_db_step(MDB_cursor *c, const struct spool_key *last, bool reverse,
    MDB_val *key, MDB_val *val)
{
	int	rc;

	if ((rc = spool_db_seek(c, last, reverse, key, val)) != 0)
		return rc;
	if (key->mv_size == last->k_len &&
	    memcmp(key->mv_data, last->k_data, last->k_len) == 0)
		rc = mdb_cursor_get(c, key, val, reverse ? MDB_PREV : MDB_NEXT);
	return rc;
}

static int
spool_db_iter_loop(MDB_cursor *c, const struct spool_key *start, size_t plen,
    bool reverse, spool_db_cb *cb, void *arg)
{
	struct spool_key	 last;
	struct buf		 v;
	MDB_val			 key, val;
	int			 rc, crc = 0;

	buf_init(&v, SIZE_MAX / 2);
	rc = spool_db_seek(c, start, reverse, &key, &val);
	while (rc == 0) {
		if (!reverse && plen > 0 && (key.mv_size < plen ||
		    memcmp(key.mv_data, start->k_data, plen) != 0))
			break;
		spool_key_init(&last);
		spool_key_raw(&last, key.mv_data, key.mv_size);
		buf_reset(&v);
		if (buf_append(&v, val.mv_data, val.mv_size) == -1) {
			crc = ENOMEM;
			break;
		}
		if ((crc = cb(last.k_data, last.k_len, v.data, v.len, arg)) != 0)
			break;
		rc = spool_db_step(c, &last, reverse, &key, &val);
	}
	buf_release(&v);
	if (crc != 0)
		return crc;
	return rc == MDB_NOTFOUND ? 0 : spool_db_rc(rc);
}

int
spool_db_iter(struct spool_txn *t, enum spool_dbi d, const struct spool_key *start,
    size_t plen, bool reverse, spool_db_cb *cb, void *arg)
{
	MDB_cursor	*c;
	int		 rc;

	if (start != NULL && start->k_bad)
		return SPOOL_ETOOBIG;
	if ((rc = mdb_cursor_open(t->st_txn, t->st_sp->sp_dbi[d], &c)) != 0)
		return spool_db_rc(rc);
	rc = spool_db_iter_loop(c, start, plen, reverse, cb, arg);
	mdb_cursor_close(c);
	return rc;
}

int
spool_db_del_prefix(struct spool_txn *t, enum spool_dbi d, const struct spool_key *p)
{
	MDB_cursor	*c;
	MDB_val		 key, val;
	int		 rc;

	if (!spool_key_ok(p))
		return SPOOL_ETOOBIG;
	if (!t->st_write)
		return EROFS;
	if ((rc = mdb_cursor_open(t->st_txn, t->st_sp->sp_dbi[d], &c)) != 0)
		return spool_db_rc(rc);
	key = spool_db_kval(p);
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= p->k_len &&
	    memcmp(key.mv_data, p->k_data, p->k_len) == 0) {
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		/* seek again rather than rely on cursor state after a delete */
		key = spool_db_kval(p);
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : spool_db_rc(rc);
}

int
spool_db_meta_get_u64(struct spool_txn *t, const char *name, uint64_t *v_r)
{
	struct spool_key	 k;
	const void		*v;
	size_t			 len;
	int			 rc;

	spool_key_init(&k);
	spool_key_str(&k, name);
	if ((rc = spool_db_get(t, SPOOL_DB_META, &k, &v, &len)) != 0)
		return rc;
	if (len != 8)
		return SPOOL_ECORRUPT;
	*v_r = spool_be64_get(v);
	return 0;
}

int
spool_db_meta_put_u64(struct spool_txn *t, const char *name, uint64_t v)
{
	struct spool_key	k;
	uint8_t			b[8];

	spool_key_init(&k);
	spool_key_str(&k, name);
	spool_be64_put(b, v);
	return spool_db_put(t, SPOOL_DB_META, &k, b, sizeof(b));
}

int
spool_db_meta_next(struct spool_txn *t, const char *name, uint64_t *v_r)
{
	uint64_t	v = 0;
	int		rc;

	rc = spool_db_meta_get_u64(t, name, &v);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		return rc;
	if ((rc = spool_db_meta_put_u64(t, name, v + 1)) != 0)
		return rc;
	*v_r = v + 1;
	return 0;
}

int
spool_db_instance(struct spool_txn *t, char dst[9])
{
	struct spool_key	 k;
	const void		*v;
	size_t			 len;
	int			 rc;

	spool_key_init(&k);
	spool_key_str(&k, "instance");
	if ((rc = spool_db_get(t, SPOOL_DB_META, &k, &v, &len)) != 0)
		return rc;
	if (len != 8)
		return SPOOL_ECORRUPT;
	memcpy(dst, v, 8);
	dst[8] = '\0';
	return 0;
}
