/*
 * The spool directory tree (modes in spool.h) and message files: the
 * durable incoming write (tmp, fsync, rename into new/, fsync new/),
 * scanning, moving and stale-tmp cleanup. Every step is safe to repeat
 * after a crash: a file is either complete in new/ or only in tmp/.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fsx.h"
#include "priv.h"
#include "spool.h"
#include "xmem.h"

static const char *const spool_area_names[] = {
	[SPOOL_TMP] = "incoming/tmp",
	[SPOOL_NEW] = "incoming/new",
	[SPOOL_QUEUE] = "queue",
	[SPOOL_QUARANTINE] = "quarantine",
	[SPOOL_KEYS] = "keys",
	[SPOOL_DB] = "db",
	[SPOOL_MAILDROP] = "maildrop",
};

int
spool_path(char *dst, size_t dstsz, const char *spool_dir, enum spool_area a,
    const char *name)
{
	int rc;

	if ((unsigned)a >=
	    sizeof(spool_area_names) / sizeof(spool_area_names[0])) {
		errno = EINVAL;
		return -1;
	}
	if (name != NULL)
		rc = str_printf(dst, dstsz, "%s/%s/%s", spool_dir,
		    spool_area_names[a], name);
	else
		rc = str_printf(dst, dstsz, "%s/%s", spool_dir,
		    spool_area_names[a]);
	if (rc == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
spool_trigger_path(char *dst, size_t dstsz, const char *spool_dir)
{
	if (str_printf(dst, dstsz, "%s/trigger", spool_dir) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* ---- the tree */

/*
 * Who may do what (README "Spool permissions"): spoold_user owns the tree;
 * smtpd's workers reach only incoming/ through smtpd_group, their only group;
 * the setgid injector only creates files in maildrop/ (1730: no listing,
 * sticky); db/, the trigger and the event log belong to smtpgate_group,
 * which smtpd is not in (smtpd checks that at start).
 */
enum spool_owner {
	SPOOL_OWN_SPOOLD,   /* spoold_user:smtpgate_group */
	SPOOL_OWN_DELIVERD, /* deliverd_user:its group */
	SPOOL_OWN_INCOMING, /* spoold_user:smtpd_group */
	SPOOL_OWN_MAILDROP, /* spoold_user:maildrop_group */
	SPOOL_OWN_N
};

static const struct spool_tree_entry {
	const char	*rel; /* "" = spool_dir itself */
	mode_t		 mode;
	enum spool_owner owner;
	bool		 fifo;
} spool_tree[] = {
	{ "", 0755, SPOOL_OWN_SPOOLD, false },
	{ "incoming", 0750, SPOOL_OWN_INCOMING, false },
	{ "incoming/tmp", 0770, SPOOL_OWN_INCOMING, false },
	{ "incoming/new", 0770, SPOOL_OWN_INCOMING, false },
	{ "maildrop", 01730, SPOOL_OWN_MAILDROP, false },
	{ "queue", 0700, SPOOL_OWN_SPOOLD, false },
	{ "quarantine", 0700, SPOOL_OWN_SPOOLD, false },
	{ "keys", 0700, SPOOL_OWN_DELIVERD, false },
	{ "db", 0750, SPOOL_OWN_SPOOLD, false },
	{ "db/data.mdb", 0640, SPOOL_OWN_SPOOLD, false }, /* fixed if present */
	/* readers of the environment take reader slots: group-writable */
	{ "db/lock.mdb", 0660, SPOOL_OWN_SPOOLD, false },
	/* deliverd and trackd run as its owner; a group could forge tokens */
	{ "db/track.key", 0600, SPOOL_OWN_SPOOLD, false },
	{ "trigger", 0660, SPOOL_OWN_SPOOLD, true },
};

struct spool_ids {
	bool  root;
	uid_t uid[SPOOL_OWN_N];
	gid_t gid[SPOOL_OWN_N];
};

static int
spool_tree_ids(const struct conf *cf, struct spool_ids *ids)
{
	gid_t g, shared, md;

	ids->root = priv_is_root();
	if (!ids->root)
		return 0;
	if (priv_lookup(cf->cf_spoold_user, &ids->uid[0], &g) == -1 ||
	    priv_lookup(cf->cf_deliverd_user, &ids->uid[1], &ids->gid[1]) == -1)
		return EINVAL;
	ids->gid[0] = priv_lookup_group(cf->cf_group, &shared) == 0 ? shared
								    : g;
	ids->uid[2] = ids->uid[3] = ids->uid[0];
	/* without it smtpd refuses to start (smtpd_lka_check_ids) */
	if (priv_lookup_group(cf->cf_smtpd_group, &ids->gid[2]) == -1)
		ids->gid[2] = g;
	/* without the group, only spoold writes maildrop/: local mail waits */
	ids->gid[3] = priv_lookup_group(cf->cf_maildrop_group, &md) == 0 ? md
									 : g;
	return 0;
}

/*
 * Root walks a tree that the daemon users can write (spool_dir belongs to
 * spoold_user): every entry is opened without following a symbolic link,
 * checked on its descriptor (type, a single name, owner root or a daemon)
 * and changed only through that descriptor, so a link or a hard link that
 * a daemon user planted never lends root's rights to another file.
 */
#define SPOOL_TREE_COMPONENT \
	"a path component is a symbolic link or not a directory"

struct spool_tree {
	struct spool_ids ids;
	int		 rootfd; /* spool_dir */
	const char	*spool_dir;
	char		*why; /* "refusing PATH: ..." */
	size_t		 whysz;
};

static int
spool_tree_refuse(struct spool_tree *t, const char *path, const char *what)
{
	(void)str_printf(t->why, t->whysz, "refusing %s: %s", path, what);
	return SPOOL_EUNSAFE;
}

static int
spool_tree_fail(struct spool_tree *t, const char *path, int rc)
{
	(void)str_printf(t->why, t->whysz, "%s: %s", path, strerror(rc));
	return rc;
}

/* Why opening pfd/base refused with ELOOP or ENOTDIR. */
static int
spool_tree_refuse_open(struct spool_tree *t, int pfd, const char *base,
    const char *path, mode_t kind)
{
	struct stat st;

	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return spool_tree_refuse(t, path, "it is a symbolic link");
	if (kind == S_IFDIR)
		return spool_tree_refuse(t, path, "it is not a directory");
	return spool_tree_refuse(t, path, SPOOL_TREE_COMPONENT);
}

/* The descriptor's file: of type kind, one name, owned by root or a daemon
 * (not asked of spool_dir itself: the administrator's, created as named). */
static int
spool_tree_check(struct spool_tree *t, int fd, const char *path, mode_t kind,
    struct stat *st)
{
	bool owner = strcmp(path, t->spool_dir) != 0;
	char what[128];

	if (fstat(fd, st) == -1)
		return spool_tree_fail(t, path, errno);
	if ((st->st_mode & S_IFMT) != kind)
		return spool_tree_refuse(t, path,
		    kind == S_IFDIR	  ? "it is not a directory"
			: kind == S_IFIFO ? "it is not a FIFO"
					  : "it is not a regular file");
	if (kind != S_IFDIR && st->st_nlink != 1)
		return spool_tree_refuse(t, path,
		    "it has more than one name (a hard link)");
	if (t->ids.root && owner && st->st_uid != 0 &&
	    st->st_uid != t->ids.uid[0] && st->st_uid != t->ids.uid[1]) {
		(void)str_printf(what, sizeof(what),
		    "it belongs to uid %lu, "
		    "neither root nor a daemon user",
		    (unsigned long)st->st_uid);
		return spool_tree_refuse(t, path, what);
	}
	return 0;
}

/* Opens (making it first if missing) rel below spool_dir; -1 = missing file. */
static int
spool_tree_open(struct spool_tree *t, const char *rel, const char *path,
    const struct spool_tree_entry *te, mode_t kind, int *fd_r)
{
	char dir[4096], *base;
	int  pfd, rc = 0;

	*fd_r = -1;
	if (rel[0] == '\0') {
		if ((*fd_r = fcntl(t->rootfd, F_DUPFD_CLOEXEC, 3)) == -1)
			return spool_tree_fail(t, path, errno);
		return 0;
	}
	(void)str_copy(dir, sizeof(dir), rel); /* rel is shorter than path */
	base = strrchr(dir, '/');
	if (base != NULL)
		*base++ = '\0';
	pfd = base == NULL
	    ? t->rootfd
	    : fsx_open_beneath(t->rootfd, dir, O_RDONLY | O_DIRECTORY, 0);
	if (base == NULL)
		base = dir;
	if (pfd == -1)
		return errno == ELOOP || errno == ENOTDIR
		    ? spool_tree_refuse(t, path, SPOOL_TREE_COMPONENT)
		    : spool_tree_fail(t, path, errno);
	if ((kind == S_IFDIR && mkdirat(pfd, base, te->mode) == -1 &&
		errno != EEXIST) ||
	    (kind == S_IFIFO && mkfifoat(pfd, base, te->mode) == -1 &&
		errno != EEXIST))
		rc = spool_tree_fail(t, path, errno);
	else if ((*fd_r = openat(pfd, base,
		      O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW |
			  O_CLOEXEC | (kind == S_IFDIR ? O_DIRECTORY : 0))) ==
	    -1)
		rc = errno == ELOOP || errno == ENOTDIR
		    ? spool_tree_refuse_open(t, pfd, base, path, kind)
		    : errno == ENOENT && kind == S_IFREG
		    ? 0
		    : spool_tree_fail(t, path, errno);
	if (pfd != t->rootfd)
		(void)close(pfd); /* read-only directory */
	return rc;
}

static int
spool_tree_one(struct spool_tree *t, const char *path,
    const struct spool_tree_entry *te)
{
	struct stat st;
	const char *rel = te->rel;
	mode_t	    kind = te->fifo	    ? S_IFIFO
		 : strchr(rel, '.') != NULL ? S_IFREG /* .mdb, .key */
					    : S_IFDIR;
	uid_t	    uid = t->ids.uid[te->owner];
	gid_t	    gid = t->ids.gid[te->owner];
	int	    fd, rc;

	if ((rc = spool_tree_open(t, rel, path, te, kind, &fd)) != 0 ||
	    fd == -1)
		return rc; /* fd -1: a database file not made yet */
	if ((rc = spool_tree_check(t, fd, path, kind, &st)) != 0)
		goto done;
	if (t->ids.root && (st.st_uid != uid || st.st_gid != gid) &&
	    fchown(fd, uid, gid) == -1)
		rc = spool_tree_fail(t, path, errno);
	/* umask-independent modes; a non-owner (non-root) cannot chmod, and
	 * then the owner made the tree already: not an error */
	else if ((st.st_mode & 07777) != te->mode &&
	    fchmod(fd, te->mode) == -1 && (t->ids.root || errno != EPERM))
		rc = spool_tree_fail(t, path, errno);
done:
	(void)close(fd); /* nothing written through it */
	return rc;
}

/* The directory that holds the event log: walked like the tree below
 * spool_dir; elsewhere (the administrator's directory) opened as named. */
static int
spool_tree_log_dir(struct spool_tree *t, const struct conf *cf, char *dir,
    size_t dirsz, const char **base_r)
{
	size_t n = strlen(cf->cf_spool_dir);
	char  *slash;

	if (str_copy(dir, dirsz, cf->cf_event_log) == -1 ||
	    (slash = strrchr(dir, '/')) == NULL) {
		errno = ENAMETOOLONG;
		return -1;
	}
	*slash = '\0';
	*base_r = cf->cf_event_log + (slash - dir) + 1;
	if (strncmp(cf->cf_event_log, cf->cf_spool_dir, n) == 0 &&
	    cf->cf_event_log[n] == '/')
		return fsx_open_beneath(t->rootfd,
		    dir[n] == '/' ? dir + n + 1 : ".", O_RDONLY | O_DIRECTORY,
		    0);
	return open(dir[0] != '\0' ? dir : "/",
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/*
 * As root: an event log that root (spoolctl) created belongs to spoold, and
 * a missing one (event_log outside the spool, in a root-owned directory) is
 * created for spoold, which could not create it after the drop. A failure
 * to create it is left to spoold's own check (exit 2 naming the key). Only
 * a root-owned regular file with one name is given away; a link is refused.
 */
static int
spool_tree_event_log(struct spool_tree *t, const struct conf *cf)
{
	struct stat st;
	const char *base;
	char	    dir[4096];
	int	    pfd, fd, rc = 0;

	if (!t->ids.root || cf->cf_event_log == NULL)
		return 0;
	if ((pfd = spool_tree_log_dir(t, cf, dir, sizeof(dir), &base)) == -1)
		return errno == ELOOP || errno == ENOTDIR
		    ? spool_tree_refuse(t, cf->cf_event_log,
			  SPOOL_TREE_COMPONENT)
		    : 0;
	fd = openat(pfd, base,
	    O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd != -1)
		(void)fchmod(fd, 0640); /* umask-independent; checked below */
	else if (errno == EEXIST)
		fd = openat(pfd, base,
		    O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == ELOOP)
		rc = spool_tree_refuse(t, cf->cf_event_log,
		    "it is a symbolic link");
	(void)close(pfd); /* read-only directory */
	if (fd == -1)
		return rc;
	/* a FIFO or device named by the administrator is not ours to change */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 &&
	    (rc = spool_tree_check(t, fd, cf->cf_event_log, S_IFREG, &st)) ==
		0 &&
	    fchown(fd, t->ids.uid[SPOOL_OWN_SPOOLD],
		t->ids.gid[SPOOL_OWN_SPOOLD]) == -1)
		rc = spool_tree_fail(t, cf->cf_event_log, errno);
	(void)close(fd);
	return rc;
}

int
spool_tree_create_err(const struct conf *cf, char *why_r, size_t whysz)
{
	struct spool_tree t = { .rootfd = -1,
		.spool_dir = cf->cf_spool_dir,
		.why = why_r,
		.whysz = whysz };
	char		  path[4096], dummy[8];
	size_t		  i;
	int		  rc;

	if (why_r == NULL || whysz == 0) {
		t.why = dummy;
		t.whysz = sizeof(dummy);
	}
	t.why[0] = '\0';
	if ((rc = spool_tree_ids(cf, &t.ids)) != 0)
		return spool_tree_fail(&t, cf->cf_spool_dir, rc);
	/* spool_dir itself is the administrator's path: followed as named */
	if (fsx_mkdirs(cf->cf_spool_dir, 0755) == -1 ||
	    (t.rootfd = open(cf->cf_spool_dir,
		 O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return spool_tree_fail(&t, cf->cf_spool_dir, errno);
	for (i = 0, rc = 0;
	     rc == 0 && i < sizeof(spool_tree) / sizeof(spool_tree[0]); i++) {
		if (str_printf(path, sizeof(path), "%s%s%s", cf->cf_spool_dir,
			spool_tree[i].rel[0] != '\0' ? "/" : "",
			spool_tree[i].rel) == -1)
			rc = spool_tree_fail(&t, cf->cf_spool_dir,
			    ENAMETOOLONG);
		else
			rc = spool_tree_one(&t, path, &spool_tree[i]);
	}
	if (rc == 0)
		rc = spool_tree_event_log(&t, cf);
	(void)close(t.rootfd); /* read-only directory */
	return rc;
}

int
spool_tree_create(const struct conf *cf)
{
	return spool_tree_create_err(cf, NULL, 0);
}

int
spool_area_open(const char *spool_dir, enum spool_area a)
{
	int rootfd, fd, saved;

	if ((unsigned)a >=
	    sizeof(spool_area_names) / sizeof(spool_area_names[0])) {
		errno = EINVAL;
		return -1;
	}
	if ((rootfd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		return -1;
	fd = fsx_open_beneath(rootfd, spool_area_names[a],
	    O_RDONLY | O_DIRECTORY, 0);
	saved = errno;
	(void)close(rootfd); /* read-only directory */
	errno = saved;
	return fd;
}

/* ---- incoming files */

static void
spool_in_reset(struct spool_in *in)
{
	in->sn_fd = -1;
	in->sn_tmp[0] = in->sn_new[0] = in->sn_newdir[0] = '\0';
	in->sn_size = 0;
}

/* incoming/tmp/QID -> incoming/new/QID, or maildrop/.QID -> maildrop/QID */
static int
spool_in_paths(const char *spool_dir, bool drop, struct spool_in *in)
{
	char dot[QID_SIZE + 1];

	qid_make(in->sn_qid);
	dot[0] = '.';
	(void)str_copy(dot + 1, sizeof(dot) - 1, in->sn_qid);
	if (spool_path(in->sn_tmp, sizeof(in->sn_tmp), spool_dir,
		drop ? SPOOL_MAILDROP : SPOOL_TMP,
		drop ? dot : in->sn_qid) == -1 ||
	    spool_path(in->sn_new, sizeof(in->sn_new), spool_dir,
		drop ? SPOOL_MAILDROP : SPOOL_NEW, in->sn_qid) == -1 ||
	    spool_path(in->sn_newdir, sizeof(in->sn_newdir), spool_dir,
		drop ? SPOOL_MAILDROP : SPOOL_NEW, NULL) == -1)
		return ENAMETOOLONG;
	return 0;
}

static int
spool_in_open(const char *spool_dir, bool drop, struct spool_in *in)
{
	int tries, rc = 0;

	spool_in_reset(in);
	for (tries = 0; tries < 10; tries++) {
		if ((rc = spool_in_paths(spool_dir, drop, in)) != 0)
			break;
		in->sn_fd = open(in->sn_tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (in->sn_fd != -1)
			break;
		rc = errno;
		if (rc != EEXIST)
			break;
	}
	if (in->sn_fd == -1) {
		spool_in_reset(in);
		return rc != 0 ? rc : EEXIST;
	}
	/*
	 * 0644 whatever the umask: spoold reads it as the owner of the
	 * directory (incoming/ is 0770 to smtpd's group, maildrop/ 1730 to
	 * the injector's), not through a group of its own; nobody else can
	 * reach it.
	 */
	if (fchmod(in->sn_fd, 0644) == -1) {
		rc = errno;
		spool_in_abort(in);
		return rc;
	}
	return 0;
}

int
spool_in_create(const char *spool_dir, struct spool_in *in)
{
	return spool_in_open(spool_dir, false, in);
}

int
spool_drop_create(const char *spool_dir, struct spool_in *in)
{
	return spool_in_open(spool_dir, true, in);
}

int
spool_in_write(struct spool_in *in, const void *p, size_t n)
{
	int rc;

	if (in->sn_fd == -1)
		return EBADF;
	if (fsx_write_all(in->sn_fd, p, n) == -1) {
		rc = errno;
		spool_in_abort(in);
		return rc;
	}
	in->sn_size += (off_t)n;
	return 0;
}

int
spool_in_commit_file(struct spool_in *in)
{
	int rc, fd = in->sn_fd;

	if (fd == -1)
		return EBADF;
	in->sn_fd = -1;
	if (fsync(fd) == -1) {
		rc = errno;
		(void)close(fd); /* already failing: the tmp file goes */
		goto fail;
	}
	if (close(fd) == -1 || rename(in->sn_tmp, in->sn_new) == -1) {
		rc = errno;
		goto fail;
	}
	in->sn_tmp[0] = '\0';
	return 0;
fail:
	spool_in_abort(in);
	return rc;
}

void
spool_in_uncommit(struct spool_in *in)
{
	/* not acknowledged, so it must not be delivered either */
	if (in->sn_new[0] != '\0')
		(void)unlink(in->sn_new);
}

/* maildrop/ cannot be opened by the injector (1730): flush its file system. */
static int
spool_in_syncfs(const char *path)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	rc = syncfs(fd);
	(void)close(fd); /* read-only */
	return rc;
}

int
spool_in_commit(struct spool_in *in)
{
	int rc;

	if ((rc = spool_in_commit_file(in)) != 0)
		return rc;
	if (fsx_fsync_dir(in->sn_newdir) == -1 &&
	    (errno != EACCES || spool_in_syncfs(in->sn_new) == -1)) {
		rc = errno;
		spool_in_uncommit(in);
		return rc;
	}
	return 0;
}

void
spool_in_abort(struct spool_in *in)
{
	if (in->sn_fd != -1) {
		(void)close(in->sn_fd); /* discarding the file anyway */
		in->sn_fd = -1;
	}
	if (in->sn_tmp[0] != '\0') {
		(void)unlink(in->sn_tmp); /* gone or never there: both fine */
		in->sn_tmp[0] = '\0';
	}
}

/* ---- scanning and moving */

static int
spool_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The QID-named entries of dir, sorted; *v_r is freed by the caller. */
static int
spool_list(const char *dir, char ***v_r, size_t *n_r)
{
	DIR	      *d;
	struct dirent *de;
	char	     **v = NULL;
	size_t	       n = 0;

	if ((d = opendir(dir)) == NULL)
		return errno;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (!qid_ok(de->d_name))
			continue; /* dot files are temporaries */
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrdup(de->d_name);
	}
	(void)closedir(d); /* read-only directory stream */
	if (n > 1)
		qsort(v, n, sizeof(*v), spool_name_cmp);
	*v_r = v;
	*n_r = n;
	return 0;
}

int
spool_scan(const char *spool_dir, enum spool_area a,
    int (*cb)(const char *, void *), void	 *arg)
{
	char   dir[4096], **v = NULL;
	size_t n = 0, i;
	int    rc;

	if (spool_path(dir, sizeof(dir), spool_dir, a, NULL) == -1)
		return errno;
	if ((rc = spool_list(dir, &v, &n)) != 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++)
		rc = cb(v[i], arg);
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return rc;
}

int
spool_scan_stream(const char *spool_dir, enum spool_area a,
    int (*cb)(const char *, void *), void		*arg)
{
	DIR	      *d;
	struct dirent *de;
	char	       dir[4096];
	int	       rc = 0;

	if (spool_path(dir, sizeof(dir), spool_dir, a, NULL) == -1)
		return errno;
	if ((d = opendir(dir)) == NULL)
		return errno;
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			rc = errno;
			break;
		}
		if (qid_ok(de->d_name) && (rc = cb(de->d_name, arg)) != 0)
			break;
	}
	(void)closedir(d); /* read-only directory stream */
	return rc;
}

int
spool_move(const char *spool_dir, const char *name, enum spool_area from,
    enum spool_area to)
{
	char src[4096], dst[4096];

	if (spool_path(src, sizeof(src), spool_dir, from, name) == -1 ||
	    spool_path(dst, sizeof(dst), spool_dir, to, name) == -1)
		return errno;
	return rename(src, dst) == -1 ? errno : 0;
}

int
spool_sync(const char *spool_dir, enum spool_area a)
{
	char dir[4096];

	if (spool_path(dir, sizeof(dir), spool_dir, a, NULL) == -1)
		return errno;
	return fsx_fsync_dir(dir) == -1 ? errno : 0;
}

int
spool_unlink(const char *spool_dir, enum spool_area a, const char *name)
{
	char path[4096];

	if (spool_path(path, sizeof(path), spool_dir, a, name) == -1)
		return errno;
	return unlink(path) == -1 ? errno : 0;
}

int
spool_tmp_cleanup(const char *spool_dir, time_t max_age, size_t *n_r)
{
	char dir[4096];

	*n_r = 0;
	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_TMP, NULL) == -1)
		return errno;
	return fsx_sweep(dir, max_age, NULL, n_r) == -1 ? errno : 0;
}
