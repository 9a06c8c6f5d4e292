/*
 * The export of the delivery log to events.jsonl (spool.h). The cursor
 * lives in meta ("export_seq") with the file's inode and length after the
 * last export ("export_ino", "export_off"). Exporters (deliverd, spoold,
 * spoolctl) serialise on flock(2) of db/export.lock, not on the LMDB
 * write lock: a batch is read in a read transaction, written and synced
 * with no transaction open, and only the new cursor is committed, in a
 * write transaction of its own that does no I/O on the file. A batch is at
 * most SPOOL_EXPORT_BATCH events and SPOOL_EXPORT_BYTES of JSON.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fsx.h"
#include "spool.h"
#include "spool_rec.h"

#define SPOOL_EXPORT_BYTES (8 << 20)

struct spool_export {
	struct buf out; /* the batch's lines */
	uint64_t   cur; /* last exported before this batch */
	uint64_t   last;
	size_t	   n, max;
	bool	   have_pos; /* ino/off of the last export known */
	uint64_t   ino, off;
};

/* A file we create is 0640 whatever the umask and, made by root
 * (spoolctl), owned like db/ so that the daemons can open it too. */
static int
spool_export_create(const struct spool *sp, const char *path, int flags)
{
	struct stat st;
	int	    fd, rc;

	fd = open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0640);
	if (fd != -1) {
		/* our own new file: only its mode and owner are at stake, and
		 * spool_tree_create fixes the owner at the next start */
		(void)fchmod(fd, 0640);
		if (geteuid() == 0 && stat(spool_db_dir(sp), &st) == 0) {
			rc = fchown(fd, st.st_uid, st.st_gid);
			(void)rc;
		}
		return fd;
	}
	if (errno != EEXIST)
		return -1;
	/* root (spoolctl) must not write through what a daemon user planted
	 * here: a symbolic link, or a second name of another file (a FIFO is
	 * left alone, as spool_tree_create leaves it) */
	if ((fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 || (S_ISREG(st.st_mode) && st.st_nlink != 1)) {
		(void)close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* Holds the exporters' lock (released by closing the descriptor): one
 * per spool, as the cursor is, in db/ where every exporter may create it. */
static int
spool_export_lock(const struct spool *sp)
{
	char lpath[4096];
	int  fd;

	if (snprintf(lpath, sizeof(lpath), "%s/export.lock",
		spool_db_dir(sp)) >= (int)sizeof(lpath)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = spool_export_create(sp, lpath, O_RDONLY)) == -1)
		return -1;
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			(void)close(fd);
			return -1;
		}
	}
	return fd;
}

static int
spool_export_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct spool_export *ex = arg;

	if (ex->n >= ex->max ||
	    (ex->n > 0 && ex->out.len + len + 1 > SPOOL_EXPORT_BYTES))
		return 1; /* the batch is full: stop the walk */
	if (buf_append(&ex->out, json, len) == -1 ||
	    buf_append(&ex->out, "\n", 1) == -1)
		return ENOMEM;
	ex->last = seq;
	ex->n++;
	return 0;
}

/* The cursor and the batch, in a read transaction (under the lock). */
static int
spool_export_read(struct spool *sp, struct spool_export *ex)
{
	struct spool_txn *t = NULL;
	int		  rc;

	if ((rc = spool_begin(sp, false, &t)) != 0)
		return rc;
	rc = spool_db_meta_get_u64(t, "export_seq", &ex->cur);
	if (rc == SPOOL_ENOTFOUND)
		ex->cur = 0;
	else if (rc != 0)
		goto out;
	rc = spool_db_meta_get_u64(t, "export_ino", &ex->ino);
	if (rc == 0)
		rc = spool_db_meta_get_u64(t, "export_off", &ex->off);
	ex->have_pos = rc == 0;
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		goto out;
	rc = spool_log_iter(t, false, ex->cur + 1, spool_export_cb, ex);
	if (rc == 1)
		rc = 0;
out:
	spool_abort(&t);
	return rc;
}

/*
 * Lines past the offset that the last committed export recorded were
 * written by an export that failed or crashed before its commit: they are
 * written again now, so they are cut first (exactly once unless the file
 * was replaced or shortened, i.e. rotated: then nothing is cut).
 */
static int
spool_export_trim(const struct spool_export *ex, int fd)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return errno;
	if (ex->have_pos && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_ino == ex->ino && (uint64_t)st.st_size > ex->off &&
	    ftruncate(fd, (off_t)ex->off) == -1)
		return errno;
	return 0;
}

/* Appends the batch (O_APPEND) and syncs it; st_r: the file after. */
static int
spool_export_write(const struct spool *sp, const char *path,
    const struct spool_export *ex, struct stat *st_r)
{
	int fd, rc = 0;

	if ((fd = spool_export_create(sp, path, O_WRONLY | O_APPEND)) == -1)
		return errno;
	if ((rc = spool_export_trim(ex, fd)) == 0 &&
	    (fsx_write_all(fd, ex->out.data, ex->out.len) == -1 ||
		fdatasync(fd) == -1 || fstat(fd, st_r) == -1))
		rc = errno;
	if (close(fd) == -1 && rc == 0)
		rc = errno;
	return rc;
}

static int
spool_export_record(struct spool *sp, const struct spool_export *ex,
    const struct stat *st)
{
	struct spool_txn *t = NULL;
	int		  rc;

	if ((rc = spool_begin(sp, true, &t)) != 0)
		return rc;
	if ((rc = spool_db_meta_put_u64(t, "export_seq", ex->last)) != 0 ||
	    (rc = spool_db_meta_put_u64(t, "export_ino",
		 (uint64_t)st->st_ino)) != 0 ||
	    (rc = spool_db_meta_put_u64(t, "export_off",
		 (uint64_t)st->st_size)) != 0) {
		spool_abort(&t);
		return rc;
	}
	return spool_commit(&t);
}

int
spool_events_export_some(struct spool *sp, const char *path, size_t max,
    size_t *n_r)
{
	struct spool_export ex = { .max = max };
	struct stat	    st;
	int		    lfd, rc;

	*n_r = 0;
	if (max == 0)
		return EINVAL;
	if ((lfd = spool_export_lock(sp)) == -1)
		return errno;
	buf_init(&ex.out, SPOOL_EXPORT_BYTES + 65536);
	if ((rc = spool_export_read(sp, &ex)) == 0 && ex.n > 0 &&
	    (rc = spool_export_write(sp, path, &ex, &st)) == 0 &&
	    (rc = spool_export_record(sp, &ex, &st)) == 0)
		*n_r = ex.n;
	buf_release(&ex.out);
	(void)close(lfd); /* releases the lock */
	return rc;
}

int
spool_events_export(struct spool *sp, const char *path, size_t *n_r)
{
	size_t n, total = 0;
	int    rc;

	do {
		if ((rc = spool_events_export_some(sp, path, SPOOL_EXPORT_BATCH,
			 &n)) != 0)
			break;
		total += n;
	} while (n > 0);
	if (n_r != NULL)
		*n_r = total;
	return rc;
}
