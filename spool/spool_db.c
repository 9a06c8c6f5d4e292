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
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"
#include "spool_cluster.h"
#include "spool_key.h"
#include "spool_index.h"
#include "spool_rec.h"
#include "xmem.h"

#define SPOOL_SCHEMA 1

struct spool {
	char	 sp_dbdir[4096];
	MDB_env *sp_env;
	MDB_dbi	 sp_dbi[SPOOL_DB_N];
	bool	 sp_rdonly;
	/* the live write txn: spool_close() aborts it (see there) */
	struct spool_txn *sp_wtxn;
	/* map growth (spool_db_grow) and stale readers (spool_db_readers) */
	int64_t		 sp_map_max;   /* ceiling: lmdb_map_max */
	unsigned	 sp_nlive;     /* txns begun and not yet ended */
	bool		 sp_full;      /* a write txn hit MDB_MAP_FULL */
	struct spool_map sp_map;       /* what spool_map_info() reports */
	time_t		 sp_rcheck_at; /* last mdb_reader_check */
	bool		 sp_cluster;   /* SPOOL_CLUSTER: journal policy */
};

struct spool_txn {
	struct spool *tr_sp;
	MDB_txn	     *tr_txn;
	bool	      tr_write;
	bool	      tr_nojournal; /* clusterd's mirror (spool_cluster.h) */
};

static const char *const spool_db_names[SPOOL_DB_N] = {
	[SPOOL_DB_META] = "meta",
	[SPOOL_DB_ACCOUNTS] = "accounts",
	[SPOOL_DB_SENDERS] = "senders",
	[SPOOL_DB_DKIM] = "dkim",
	[SPOOL_DB_STOPLIST] = "stoplist",
	[SPOOL_DB_PERMFAIL] = "permfail",
	[SPOOL_DB_ISSUES] = "issues",
	[SPOOL_DB_ISSUE_IDX] = "issue_idx",
	[SPOOL_DB_MESSAGES] = "messages",
	[SPOOL_DB_RCPTS] = "rcpts",
	[SPOOL_DB_SCHED] = "sched",
	[SPOOL_DB_DLOG] = "dlog",
	[SPOOL_DB_DLOG_QID] = "dlog_qid",
	[SPOOL_DB_OUTBOX] = "outbox",
	[SPOOL_DB_OUTBOX_ACCT] = "outbox_acct",
	[SPOOL_DB_DONE] = "done",
	[SPOOL_DB_DLOG_STATUS] = "dlog_status",
	[SPOOL_DB_DLOG_ISSUE] = "dlog_issue",
	[SPOOL_DB_ISSUE_DATE] = "issue_date",
	[SPOOL_DB_PAUSES] = "pauses",
	[SPOOL_DB_DLOG_ACCT] = "dlog_acct",
	[SPOOL_DB_ENGAGE_FIRST] = "engage_first",
	[SPOOL_DB_MSGID_RCPT] = "msgid_rcpt",
	[SPOOL_DB_TRACK] = "track",
	[SPOOL_DB_DEDUPE] = "dedupe",
	[SPOOL_DB_TLSRPT] = "tlsrpt",
	[SPOOL_DB_MTASTS] = "mtasts",
	[SPOOL_DB_CLUSTER_OUT] = "cluster_out",
	[SPOOL_DB_TLSRPT_SENT] = "tlsrpt_sent",
	[SPOOL_DB_NXDOM] = "nxdomain",
};

static int
spool_db_rc(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return SPOOL_ENOTFOUND;
	case MDB_KEYEXIST:
		return SPOOL_EEXIST;
	case MDB_MAP_FULL:
		return SPOOL_EFULL;
	case MDB_BAD_VALSIZE:
		return SPOOL_ETOOBIG;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		return SPOOL_ECORRUPT;
	case MDB_VERSION_MISMATCH:
	case MDB_INVALID:
		return SPOOL_EVERSION;
	default:
		return rc > 0 ? rc : SPOOL_EDB;
	}
}

/* A write operation's code: MDB_MAP_FULL marks the map for growth. */
static int
spool_db_wrc(struct spool *sp, int rc)
{
	if (rc == MDB_MAP_FULL)
		sp->sp_full = true;
	return spool_db_rc(rc);
}

const char *
spool_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "success";
	case SPOOL_ENOTFOUND:
		return "no such record";
	case SPOOL_EEXIST:
		return "record exists";
	case SPOOL_EFULL:
		return "LMDB map full: raise lmdb_map_max or free disk space";
	case SPOOL_EVERSION:
		return "database schema version mismatch";
	case SPOOL_ECORRUPT:
		return "corrupt record";
	case SPOOL_EFORMAT:
		return "malformed envelope";
	case SPOOL_ETOOBIG:
		return "value too large";
	case SPOOL_EDB:
		return "database error";
	case SPOOL_EUNSAFE:
		return "refused: a symbolic link, hard link or foreign file";
	default:
		return rc > 0 ? strerror(rc) : "unknown error";
	}
}

/* ---- environment */

/* One of the environment's files, never through a link or a second name
 * (db/ is the daemon user's: root must not change what it points to).
 * Best effort: a non-owner cannot chmod, and then the owner already made
 * the file right. */
static void
spool_db_fix_file(int dfd, const struct stat *ds, const char *name, mode_t mode)
{
	struct stat st;
	int	    fd;

	if ((fd = openat(dfd, name,
		 O_RDONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW |
		     O_CLOEXEC,
		 mode)) == -1)
		return;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
		goto done;
	if (geteuid() == 0 &&
	    (st.st_uid != ds->st_uid || st.st_gid != ds->st_gid) &&
	    fchown(fd, ds->st_uid, ds->st_gid) == -1)
		goto done;
	/* a non-root owner in db/'s group can still fix the group */
	if (geteuid() != 0 && st.st_uid == geteuid() &&
	    st.st_gid != ds->st_gid && fchown(fd, (uid_t)-1, ds->st_gid) == -1)
		goto done;
	if ((st.st_mode & 07777) != mode)
		(void)fchmod(fd, mode); /* best effort, see above */
done:
	(void)close(fd); /* nothing written through it */
}

/* data.mdb 0640, lock.mdb 0660 whatever the umask; as root, owned like
 * db/ so the daemons can open what spoolctl (root) created first. Created
 * here (empty: LMDB initialises them) when missing. */
static void
spool_db_fix_files(const char *dbdir)
{
	struct stat ds;
	int	    dfd;

	if ((dfd = open(dbdir,
		 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return;
	if (fstat(dfd, &ds) == 0) {
		spool_db_fix_file(dfd, &ds, "data.mdb", 0640);
		spool_db_fix_file(dfd, &ds, "lock.mdb", 0660);
	}
	(void)close(dfd); /* read-only directory */
}

/* As root, before LMDB opens (and creates) them by name: db/ and its files
 * must not be links a daemon user planted. */
static int
spool_db_root_check(const char *dbdir)
{
	static const char *const names[] = { "data.mdb", "lock.mdb" };
	struct stat		 st;
	size_t			 i;
	int			 dfd, rc = 0;

	if (geteuid() != 0)
		return 0;
	if ((dfd = open(dbdir,
		 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno == ELOOP || errno == ENOTDIR ? SPOOL_EUNSAFE : 0;
	for (i = 0; rc == 0 && i < 2; i++)
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    (!S_ISREG(st.st_mode) || st.st_nlink != 1))
			rc = SPOOL_EUNSAFE;
	(void)close(dfd); /* read-only directory */
	return rc;
}

static void
spool_db_instance_new(char dst[9])
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	(void)snprintf(dst, 9, "%08x", r);
}

static int
spool_db_init_meta(struct spool_txn *t)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	uint64_t	 ver;
	char		 inst[9];
	int		 rc;

	rc = spool_db_meta_get_u64(t, "version", &ver);
	if (rc == 0)
		return ver == SPOOL_SCHEMA ? 0 : SPOOL_EVERSION;
	if (rc != SPOOL_ENOTFOUND || !t->tr_write)
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

static int spool_db_txn_begin(struct spool *, bool write, MDB_txn **);

static int
spool_db_open_dbis(struct spool *sp)
{
	struct spool_txn t = { .tr_sp = sp, .tr_write = !sp->sp_rdonly };
	unsigned	 fl = sp->sp_rdonly ? 0 : MDB_CREATE;
	size_t		 i;
	int		 rc;

	if ((rc = spool_db_txn_begin(sp, !sp->sp_rdonly, &t.tr_txn)) != 0)
		return rc;
	for (i = 0; i < SPOOL_DB_N; i++)
		if ((rc = mdb_dbi_open(t.tr_txn, spool_db_names[i], fl,
			 &sp->sp_dbi[i])) != 0) {
			/* a read-only opener of an older or foreign database */
			rc = rc == MDB_NOTFOUND ? SPOOL_EVERSION
						: spool_db_rc(rc);
			goto fail;
		}
	if ((rc = spool_db_init_meta(&t)) != 0)
		goto fail;
	return spool_db_rc(mdb_txn_commit(t.tr_txn));
fail:
	mdb_txn_abort(t.tr_txn);
	return rc;
}

/* ---- map size and stale readers */

#define SPOOL_RCHECK_INTERVAL 60 /* seconds between writers' reader checks */

static int64_t
spool_db_mapsize(MDB_env *env)
{
	MDB_envinfo ei;

	if (mdb_env_info(env, &ei) != 0)
		return 0;
	return (int64_t)ei.me_mapsize;
}

/*
 * How far the map may grow: the ceiling, and what the file system can
 * still hold beyond the file (a larger map would only turn SPOOL_EFULL
 * into ENOSPC at commit). A multiple of the OS page size.
 */
static int64_t
spool_db_map_room(const struct spool *sp, int64_t want)
{
	struct statvfs vfs;
	struct stat    st;
	char	       path[4096 + 16];
	int64_t	       room, pg = (int64_t)sysconf(_SC_PAGESIZE);

	if (want > sp->sp_map_max)
		want = sp->sp_map_max;
	if (snprintf(path, sizeof(path), "%s/data.mdb", sp->sp_dbdir) <
		(int)sizeof(path) &&
	    stat(path, &st) == 0 && statvfs(sp->sp_dbdir, &vfs) == 0) {
		room = (int64_t)st.st_size +
		    (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
		if (want > room)
			want = room;
	}
	return pg > 0 ? want - want % pg : want;
}

/* A larger map another process set (within our ceiling) is growth too. */
static bool
spool_db_adopt(struct spool *sp, int64_t old)
{
	int64_t now;

	if (mdb_env_set_mapsize(sp->sp_env, 0) != 0)
		return false;
	now = spool_db_mapsize(sp->sp_env);
	return now > old && now <= sp->sp_map_max;
}

/*
 * A write txn hit MDB_MAP_FULL and has ended. mdb_env_set_mapsize remaps
 * the file, so it runs only when no txn of this process is live; else it
 * waits for the next spool_begin or spool_map_grown. Adopts a larger map
 * another process set, or doubles ours within spool_db_map_room(). The
 * other processes see MDB_MAP_RESIZED and adopt the new size.
 */
static void
spool_db_grow(struct spool *sp)
{
	int64_t old, want;

	if (!sp->sp_full || sp->sp_nlive > 0)
		return;
	sp->sp_full = false;
	old = spool_db_mapsize(sp->sp_env);
	if (!spool_db_adopt(sp, old)) {
		want = spool_db_map_room(sp,
		    old > INT64_MAX / 2 ? INT64_MAX : old * 2);
		if (want <= old ||
		    mdb_env_set_mapsize(sp->sp_env, (size_t)want) != 0) {
			/* at the ceiling or out of disk: keep the size we had */
			(void)mdb_env_set_mapsize(sp->sp_env, (size_t)old);
			sp->sp_map.mp_stuck = true;
			return;
		}
	}
	if (sp->sp_map.mp_grew_from == 0)
		sp->sp_map.mp_grew_from = old;
	sp->sp_map.mp_stuck = false;
}

/* Another process grew the map: adopt its size (no txn of ours is live). */
static int
spool_db_resized(struct spool *sp, unsigned live)
{
	if (sp->sp_nlive > live)
		return EBUSY; /* remapping would pull pages from under it */
	return spool_db_rc(mdb_env_set_mapsize(sp->sp_env, 0));
}

/*
 * Clears the reader slots of dead processes: a reader killed inside a read
 * txn (SIGPIPE, SIGKILL) pins its snapshot, and LMDB then never reuses
 * the pages freed after it, so the file only grows.
 */
static void
spool_db_readers(struct spool *sp, time_t now)
{
	int dead = 0;

	sp->sp_rcheck_at = now;
	if (mdb_reader_check(sp->sp_env, &dead) == 0 && dead > 0)
		sp->sp_map.mp_readers += (unsigned)dead;
}

bool
spool_map_grown(struct spool *sp, struct spool_map *m_r)
{
	spool_db_grow(sp);
	if (sp->sp_map.mp_grew_from == 0)
		return false;
	spool_map_info(sp, m_r);
	return true;
}

bool
spool_map_grow(struct spool *sp, struct spool_map *m_r)
{
	sp->sp_full = true;
	return spool_map_grown(sp, m_r);
}

void
spool_map_info(struct spool *sp, struct spool_map *m_r)
{
	time_t now = time(NULL);

	if (!sp->sp_rdonly && sp->sp_nlive == 0 &&
	    now - sp->sp_rcheck_at >= SPOOL_RCHECK_INTERVAL)
		spool_db_readers(sp, now);
	*m_r = sp->sp_map;
	m_r->mp_size = spool_db_mapsize(sp->sp_env);
	m_r->mp_max = sp->sp_map_max;
	sp->sp_map.mp_grew_from = 0;
	sp->sp_map.mp_readers = 0;
}

/* issue 18 (spoolctl status): the pages in use of the last snapshot */
void
spool_map_used(struct spool *sp, int64_t *used_r, int64_t *size_r)
{
	MDB_envinfo ei;
	MDB_stat    st;

	*used_r = *size_r = 0;
	if (mdb_env_info(sp->sp_env, &ei) != 0 ||
	    mdb_env_stat(sp->sp_env, &st) != 0)
		return;
	*used_r = (int64_t)(ei.me_last_pgno + 1) * (int64_t)st.ms_psize;
	*size_r = (int64_t)ei.me_mapsize;
}

/* ---- open, close, transactions */

/*
 * Start with the size recorded in the file (another process may have grown
 * the map) within [map_size, map_max]; LMDB never goes below the data.
 */
static int
spool_db_initial_map(struct spool *sp, int64_t map_size)
{
	int64_t want;
	int	rc;

	if ((rc = mdb_env_set_mapsize(sp->sp_env, 0)) != 0)
		return spool_db_rc(rc);
	want = spool_db_mapsize(sp->sp_env);
	want = want > sp->sp_map_max ? sp->sp_map_max
	    : want < map_size	     ? map_size
				     : want;
	return spool_db_rc(mdb_env_set_mapsize(sp->sp_env, (size_t)want));
}

/* The writer's migrations of an older database, each idempotent; one
 * that needs room grows the map and runs again. */
static int
spool_db_migrate(struct spool *sp)
{
	int rc;

	if ((rc = spool_db_migrate_spoold(sp)) == SPOOL_EFULL) {
		sp->sp_full = true;
		spool_db_grow(sp);
		rc = spool_db_migrate_spoold(sp);
	}
	/* the log's indexes: a failed build leaves the readers on their
	 * scans, and the next writer's open carries on */
	if (rc == 0)
		(void)spool_db_migrate_records(sp);
	if (rc == 0)
		(void)spool_db_migrate_ops(sp); /* dlog_acct, the same way */
	/* the complaint index (issue 16): the same, a failure is retried */
	if (rc == 0)
		(void)spool_db_migrate_engage(sp);
	return rc;
}

static int
spool_db_env_open(struct spool *sp, int64_t map_size)
{
	int rc;

	if ((rc = mdb_env_create(&sp->sp_env)) != 0)
		return spool_db_rc(rc);
	(void)mdb_env_set_maxdbs(sp->sp_env, 32);
	if (map_size > 0 &&
	    (rc = mdb_env_set_mapsize(sp->sp_env, (size_t)map_size)) != 0)
		goto fail;
	/*
	 * Before LMDB opens them (creating them empty if missing): closing any
	 * descriptor of lock.mdb afterwards would drop this process's fcntl
	 * locks on it, and the next opener would take itself for the first
	 * and reset the reader table under live readers.
	 */
	if (!sp->sp_rdonly)
		spool_db_fix_files(sp->sp_dbdir);
	rc = mdb_env_open(sp->sp_env, sp->sp_dbdir,
	    MDB_NOTLS | (sp->sp_rdonly ? MDB_RDONLY : 0), 0640);
	if (rc != 0)
		goto fail;
	spool_db_readers(sp, time(NULL));
	if ((rc = spool_db_initial_map(sp, map_size)) != 0)
		goto fail1;
	if ((rc = spool_db_open_dbis(sp)) == SPOOL_EFULL) {
		/* creating the databases (a new schema) needed room */
		sp->sp_full = true;
		spool_db_grow(sp);
		rc = spool_db_open_dbis(sp);
	}
	if (rc != 0)
		goto fail1;
	if (!sp->sp_rdonly && (rc = spool_db_migrate(sp)) != 0)
		goto fail1;
	return 0;
fail:
	rc = spool_db_rc(rc);
fail1:
	mdb_env_close(sp->sp_env);
	return rc;
}

int
spool_open(const char *spool_dir, int64_t map_size, int64_t map_max,
    unsigned flags, struct spool **sp_r)
{
	struct spool *sp;
	char	      dir[4096];
	int	      rc;

	*sp_r = NULL;
	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_DB, NULL) == -1)
		return ENAMETOOLONG;
	sp = xcalloc(1, sizeof(*sp));
	(void)str_copy(sp->sp_dbdir, sizeof(sp->sp_dbdir), dir); /* same size */
	sp->sp_rdonly = (flags & SPOOL_RDONLY) != 0;
	sp->sp_cluster = (flags & SPOOL_CLUSTER) != 0;
	sp->sp_map_max = map_max > map_size ? map_max : map_size;
	if (!sp->sp_rdonly && mkdir(dir, 0750) == 0)
		(void)chmod(dir, 0750); /* umask-independent; we own it */
	else if (!sp->sp_rdonly && errno != EEXIST) {
		rc = errno;
		goto fail;
	}
	if ((rc = spool_db_root_check(dir)) != 0)
		goto fail;
	if ((rc = spool_db_env_open(sp, map_size)) != 0)
		goto fail;
	*sp_r = sp;
	return 0;
fail:
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
		mdb_txn_abort((*spp)->sp_wtxn->tr_txn);
		(*spp)->sp_wtxn->tr_txn = NULL;
		(*spp)->sp_wtxn->tr_sp = NULL;
		(*spp)->sp_wtxn = NULL;
	}
	mdb_env_close((*spp)->sp_env);
	free(*spp);
	*spp = NULL;
}

static int
spool_db_txn_begin(struct spool *sp, bool write, MDB_txn **txn_r)
{
	int rc;

	rc = mdb_txn_begin(sp->sp_env, NULL, write ? 0 : MDB_RDONLY, txn_r);
	if (rc == MDB_MAP_RESIZED) {
		if ((rc = spool_db_resized(sp, 0)) != 0)
			return rc;
		rc = mdb_txn_begin(sp->sp_env, NULL, write ? 0 : MDB_RDONLY,
		    txn_r);
	}
	return spool_db_rc(rc);
}

int
spool_begin(struct spool *sp, bool write, struct spool_txn **t_r)
{
	struct spool_txn *t;
	time_t		  now;
	int		  rc;

	*t_r = NULL;
	if (write && sp->sp_rdonly)
		return EROFS;
	spool_db_grow(sp); /* a growth the last abort had to defer */
	if (write && sp->sp_nlive == 0 &&
	    (now = time(NULL)) - sp->sp_rcheck_at >= SPOOL_RCHECK_INTERVAL)
		spool_db_readers(sp, now);
	t = xcalloc(1, sizeof(*t));
	t->tr_sp = sp;
	t->tr_write = write;
	if ((rc = spool_db_txn_begin(sp, write, &t->tr_txn)) != 0) {
		free(t);
		return rc;
	}
	sp->sp_nlive++;
	if (write)
		sp->sp_wtxn = t;
	*t_r = t;
	return 0;
}

/* Forgets an ended txn; grows the map if it ran out (see spool_db_grow). */
static void
spool_db_txn_end(struct spool_txn **tp)
{
	struct spool *sp = (*tp)->tr_sp;

	free(*tp);
	*tp = NULL;
	if (sp == NULL) /* aborted by spool_close(): sp is gone */
		return;
	sp->sp_nlive--;
	spool_db_grow(sp);
}

int
spool_commit(struct spool_txn **tp)
{
	struct spool *sp;
	int	      rc;

	if (tp == NULL || *tp == NULL)
		return EINVAL;
	if ((*tp)->tr_txn == NULL) { /* aborted by spool_close() */
		spool_db_txn_end(tp);
		return EINVAL;
	}
	sp = (*tp)->tr_sp;
	if ((*tp)->tr_write && sp->sp_wtxn == *tp)
		sp->sp_wtxn = NULL;
	rc = mdb_txn_commit((*tp)->tr_txn);
	rc = (*tp)->tr_write ? spool_db_wrc(sp, rc) : spool_db_rc(rc);
	spool_db_txn_end(tp);
	return rc;
}

void
spool_abort(struct spool_txn **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	if ((*tp)->tr_txn != NULL) {
		if ((*tp)->tr_write && (*tp)->tr_sp->sp_wtxn == *tp)
			(*tp)->tr_sp->sp_wtxn = NULL;
		mdb_txn_abort((*tp)->tr_txn);
	}
	spool_db_txn_end(tp);
}

int
spool_renew(struct spool_txn *t)
{
	int rc;

	if (t->tr_write)
		return EINVAL;
	mdb_txn_reset(t->tr_txn);
	if ((rc = mdb_txn_renew(t->tr_txn)) == MDB_MAP_RESIZED) {
		/* t itself is reset, so it is not in the way */
		if ((rc = spool_db_resized(t->tr_sp, 1)) != 0)
			return rc;
		rc = mdb_txn_renew(t->tr_txn);
	}
	return spool_db_rc(rc);
}

struct spool *
spool_txn_spool(struct spool_txn *t)
{
	return t->tr_sp;
}

const char *
spool_db_dir(const struct spool *sp)
{
	return sp->sp_dbdir;
}

/* ---- the cluster journal's hook (spool_cluster.h) */

bool
spool_cluster_on(const struct spool *sp)
{
	return sp->sp_cluster;
}

void
spool_txn_nojournal(struct spool_txn *t)
{
	t->tr_nojournal = true;
}

bool
spool_db_journals(const struct spool_txn *t)
{
	return t->tr_sp->sp_cluster && !t->tr_nojournal;
}

/* After a write of d: the journal entry of a policy database (val NULL:
 * a delete). One branch when the spool does not journal. */
static int
spool_db_journal(struct spool_txn *t, enum spool_dbi d, const void *key,
    size_t klen, const void *val, size_t vlen)
{
	if (!t->tr_sp->sp_cluster || t->tr_nojournal)
		return 0;
	return spool_cjournal_dbi(t, d, key, klen, val, vlen);
}

/* ---- raw access */

static MDB_val
spool_db_kval(const struct spool_key *k)
{
	MDB_val v = { .mv_size = k->k_len,
		.mv_data = (void *)(uintptr_t)k->k_data };

	return v;
}

int
spool_db_get(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k,
    const void **val_r, size_t *len_r)
{
	MDB_val key, val;
	int	rc;

	if (!spool_key_ok(k))
		return SPOOL_ETOOBIG;
	key = spool_db_kval(k);
	if ((rc = mdb_get(t->tr_txn, t->tr_sp->sp_dbi[d], &key, &val)) != 0)
		return spool_db_rc(rc);
	*val_r = val.mv_data;
	*len_r = val.mv_size;
	return 0;
}

int
spool_db_put(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k,
    const void *p, size_t n)
{
	MDB_val key, val = { .mv_size = n, .mv_data = (void *)(uintptr_t)p };
	int	rc;

	if (!spool_key_ok(k))
		return SPOOL_ETOOBIG;
	if (!t->tr_write)
		return EROFS;
	key = spool_db_kval(k);
	rc = spool_db_wrc(t->tr_sp,
	    mdb_put(t->tr_txn, t->tr_sp->sp_dbi[d], &key, &val, 0));
	if (rc == 0)
		rc = spool_db_journal(t, d, k->k_data, k->k_len, p, n);
	return rc;
}

int
spool_db_del(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k)
{
	MDB_val key;
	int	rc;

	if (!spool_key_ok(k))
		return SPOOL_ETOOBIG;
	if (!t->tr_write)
		return EROFS;
	key = spool_db_kval(k);
	rc = spool_db_wrc(t->tr_sp,
	    mdb_del(t->tr_txn, t->tr_sp->sp_dbi[d], &key, NULL));
	if (rc == 0)
		rc = spool_db_journal(t, d, k->k_data, k->k_len, NULL, 0);
	return rc;
}

/* Positions c at the first key >= k (forward) or the last key <= k. */
static int
spool_db_seek(MDB_cursor *c, const struct spool_key *k, bool reverse,
    MDB_val *key, MDB_val *val)
{
	int rc;

	if (k == NULL || k->k_len == 0)
		return mdb_cursor_get(c, key, val,
		    reverse ? MDB_LAST : MDB_FIRST);
	*key = spool_db_kval(k);
	rc = mdb_cursor_get(c, key, val, MDB_SET_RANGE);
	if (!reverse)
		return rc;
	if (rc == MDB_NOTFOUND)
		return mdb_cursor_get(c, key, val, MDB_LAST);
	if (rc == 0 &&
	    (key->mv_size != k->k_len ||
		memcmp(key->mv_data, k->k_data, k->k_len) != 0))
		return mdb_cursor_get(c, key, val, MDB_PREV);
	return rc;
}

/* Moves past `last` after a callback that may have changed the tree. */
static int
spool_db_step(MDB_cursor *c, const struct spool_key *last, bool reverse,
    MDB_val *key, MDB_val *val)
{
	int rc;

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
	struct spool_key last;
	struct buf	 v;
	MDB_val		 key, val;
	int		 rc, crc = 0;

	buf_init(&v, SIZE_MAX / 2);
	rc = spool_db_seek(c, start, reverse, &key, &val);
	while (rc == 0) {
		if (!reverse && plen > 0 &&
		    (key.mv_size < plen ||
			memcmp(key.mv_data, start->k_data, plen) != 0))
			break;
		spool_key_init(&last);
		spool_key_raw(&last, key.mv_data, key.mv_size);
		buf_reset(&v);
		if (buf_append(&v, val.mv_data, val.mv_size) == -1) {
			crc = ENOMEM;
			break;
		}
		if ((crc = cb(last.k_data, last.k_len, v.data, v.len, arg)) !=
		    0)
			break;
		rc = spool_db_step(c, &last, reverse, &key, &val);
	}
	buf_release(&v);
	if (crc != 0)
		return crc;
	return rc == MDB_NOTFOUND ? 0 : spool_db_rc(rc);
}

int
spool_db_iter(struct spool_txn *t, enum spool_dbi d,
    const struct spool_key *start, size_t plen, bool reverse, spool_db_cb *cb,
    void *arg)
{
	MDB_cursor *c;
	int	    rc;

	if (start != NULL && start->k_bad)
		return SPOOL_ETOOBIG;
	if ((rc = mdb_cursor_open(t->tr_txn, t->tr_sp->sp_dbi[d], &c)) != 0)
		return spool_db_rc(rc);
	rc = spool_db_iter_loop(c, start, plen, reverse, cb, arg);
	mdb_cursor_close(c);
	return rc;
}

int
spool_db_del_prefix(struct spool_txn *t, enum spool_dbi d,
    const struct spool_key *p)
{
	struct spool_key gone;
	MDB_cursor	*c;
	MDB_val		 key, val;
	int		 rc;

	if (!spool_key_ok(p))
		return SPOOL_ETOOBIG;
	if (!t->tr_write)
		return EROFS;
	if ((rc = mdb_cursor_open(t->tr_txn, t->tr_sp->sp_dbi[d], &c)) != 0)
		return spool_db_rc(rc);
	key = spool_db_kval(p);
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= p->k_len &&
	    memcmp(key.mv_data, p->k_data, p->k_len) == 0) {
		spool_key_init(&gone);
		spool_key_raw(&gone, key.mv_data, key.mv_size);
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		if ((rc = spool_db_journal(t, d, gone.k_data, gone.k_len, NULL,
			 0)) != 0) {
			mdb_cursor_close(c);
			return rc;
		}
		/* seek again rather than rely on cursor state after a delete */
		key = spool_db_kval(p);
		rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : spool_db_wrc(t->tr_sp, rc);
}

int
spool_db_count(struct spool_txn *t, enum spool_dbi d, size_t *n_r)
{
	MDB_stat st;
	int	 rc;

	if ((rc = mdb_stat(t->tr_txn, t->tr_sp->sp_dbi[d], &st)) != 0)
		return spool_db_rc(rc);
	*n_r = st.ms_entries;
	return 0;
}

/* The 8-byte META record name into b. */
static int
spool_db_meta_get8(struct spool_txn *t, const char *name, uint8_t b[8])
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	spool_key_init(&k);
	spool_key_str(&k, name);
	if ((rc = spool_db_get(t, SPOOL_DB_META, &k, &v, &len)) != 0)
		return rc;
	if (len != 8)
		return SPOOL_ECORRUPT;
	memcpy(b, v, 8);
	return 0;
}

int
spool_db_meta_get_u64(struct spool_txn *t, const char *name, uint64_t *v_r)
{
	uint8_t b[8];
	int	rc;

	if ((rc = spool_db_meta_get8(t, name, b)) != 0)
		return rc;
	*v_r = spool_be64_get(b);
	return 0;
}

int
spool_db_meta_put_u64(struct spool_txn *t, const char *name, uint64_t v)
{
	struct spool_key k;
	uint8_t		 b[8];

	spool_key_init(&k);
	spool_key_str(&k, name);
	spool_be64_put(b, v);
	return spool_db_put(t, SPOOL_DB_META, &k, b, sizeof(b));
}

int
spool_db_meta_next(struct spool_txn *t, const char *name, uint64_t *v_r)
{
	uint64_t v = 0;
	int	 rc;

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
	int rc;

	if ((rc = spool_db_meta_get8(t, "instance", (uint8_t *)dst)) != 0)
		return rc;
	dst[8] = '\0';
	return 0;
}
