/*
 * spoold_maildrop: local injection (smtpgate-sendmail, setgid
 * maildrop_group) leaves complete files in maildrop/ (1730: its users can
 * create files there, not list or read them). spoold copies each one into
 * a file of its own in incoming/new, same queue id, with the account set
 * to sendmail_account and tagged by spoold; whatever account, auth or tag
 * the file claims is ignored. A symlink, a file with more than one link,
 * a non-regular file, one larger than the limits or with a bad envelope is
 * refused: removed, with one log line naming its owner. The copy is
 * durable (fsync, link, fsync incoming/new) before the maildrop file goes,
 * and a file whose copy or record already exists is only removed, so a
 * crash in between neither loses nor doubles a message.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fsx.h"
#include "log.h"
#include "spool.h"
#include "spoold_file.h"
#include "xmem.h"

#define SPOOLD_MD_ENV_SLACK 65536
#define SPOOLD_MD_PASS_MAX  1024 /* files per pass: incoming/new gets its turn */

static size_t
spoold_md_envmax(const struct conf *cf)
{
	return SPOOLD_MD_ENV_SLACK +
	    (size_t)cf->cf_max_recipients *
	    (SPOOL_ADDR_MAX + SPOOL_PARAMS_MAX + 32);
}

static void
spoold_md_refuse(int dfd, const char *name, const char *why, long uid)
{
	if (unlinkat(dfd, name, 0) == -1 && errno != ENOENT)
		log_warn("maildrop/%s: unlink", name);
	log_warnx("%s: refused from maildrop, uid=%ld, reason=%s", name, uid,
	    why);
}

/*
 * The message already left maildrop before a crash: a copy of ours in
 * incoming/new, or filed. 1 done, 0 not yet, -1 a file of someone else
 * holds the name (left alone, logged).
 */
static int
spoold_md_done(struct spoold *sd, const char *name)
{
	struct spool_txn *txn = NULL;
	struct spool_msg *m;
	struct stat	  st;
	char		  path[4096];
	bool		  done;

	if (spool_path(path, sizeof(path), sd->sd_cf->cf_spool_dir, SPOOL_NEW,
		name) == 0 &&
	    lstat(path, &st) == 0)
		return st.st_uid == sd->sd_self_uid ? 1 : -1;
	if (spool_begin(sd->sd_sp, false, &txn) != 0)
		return 0; /* the copy's link() still refuses a duplicate */
	m = xmalloc(sizeof(*m));
	done = spool_msg_get(txn, name, m) == 0;
	spool_abort(&txn);
	free(m);
	return done ? 1 : 0;
}

/* The envelope spoold writes for a maildrop file. */
static int
spoold_md_env(struct spoold *sd, struct spool_env *e, struct buf *b)
{
	const struct conf *cf = sd->sd_cf;

	if (str_copy(e->pe_account, sizeof(e->pe_account),
		cf->cf_sendmail_account) == -1)
		return SPOOL_EFORMAT;
	e->pe_auth[0] = '\0';
	(void)str_copy(e->pe_client, sizeof(e->pe_client), "local");
	spool_tag_make(sd->sd_key, e->pe_account, e->pe_tag);
	return spool_env_format(e, b);
}

/* incoming/tmp/.md.NAME: spoold's envelope, then the message; fsynced,
 * linked to incoming/new/NAME, which is fsynced. 0 or an errno. */
static int
spoold_md_copy(struct spoold *sd, const char *name, int fd, off_t len,
    const struct buf *env)
{
	char tmp[4096], dst[4096], t[300];
	int  out, rc = 0;

	if (str_printf(t, sizeof(t), ".md.%s", name) == -1 ||
	    spool_path(tmp, sizeof(tmp), sd->sd_cf->cf_spool_dir, SPOOL_TMP,
		t) == -1 ||
	    spool_path(dst, sizeof(dst), sd->sd_cf->cf_spool_dir, SPOOL_NEW,
		name) == -1)
		return ENAMETOOLONG;
	(void)unlink(tmp); /* a crash's leftover */
	if ((out = open(tmp,
		 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640)) ==
	    -1)
		return errno;
	if (fsx_write_all(out, env->data, env->len) == -1 ||
	    spoold_copy_fd(fd, out, len, true) == -1)
		rc = errno;
	if (close(out) == -1 && rc == 0)
		rc = errno;
	/* link, not rename: never replace a file already in incoming/new */
	if (rc == 0 && link(tmp, dst) == -1)
		rc = errno;
	(void)unlink(tmp); /* linked or failed: the name is not needed */
	if (rc == 0 &&
	    (rc = spool_sync(sd->sd_cf->cf_spool_dir, SPOOL_NEW)) != 0)
		(void)unlink(dst); /* not durable: the next pass copies again */
	return rc;
}

/* Why a maildrop file is refused, or NULL; *rc_r: a transient error. */
static const char *
spoold_md_check(const struct spoold *sd, int fd, const struct stat *st,
    const char *name, struct spool_env *e, int *rc_r)
{
	size_t envmax = spoold_md_envmax(sd->sd_cf);
	int    rc;

	*rc_r = 0;
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_nlink != 1)
		return "more than one link";
	if (st->st_size > sd->sd_cf->cf_max_message_size + (int64_t)envmax)
		return "larger than max_message_size";
	if ((rc = spool_env_read(fd, envmax, e)) == SPOOL_EFORMAT ||
	    rc == SPOOL_ETOOBIG)
		return "bad envelope";
	if ((*rc_r = rc) != 0)
		return NULL;
	if (strcmp(e->pe_qid, name) != 0)
		return "envelope qid differs";
	return e->pe_nrcpt == 0 ? "no recipients" : NULL;
}

/* A checked file: copy it, then remove it from maildrop. 0 or an errno. */
static int
spoold_md_take(struct spoold *sd, int dfd, int fd, const char *name,
    const struct stat *st, struct spool_env *e)
{
	struct buf b;
	int	   rc, done;

	if ((done = spoold_md_done(sd, name)) == -1) {
		log_warnx("%s: maildrop: queue id already in incoming/new: "
			  "left in maildrop/",
		    name);
		return 0;
	}
	buf_init(&b, spoold_md_envmax(sd->sd_cf) + 4096);
	rc = done ? 0 : spoold_md_env(sd, e, &b);
	if (rc == 0 && !done)
		rc = spoold_md_copy(sd, name, fd,
		    st->st_size - (off_t)e->pe_hdrlen, &b);
	buf_release(&b);
	if (rc != 0)
		return rc;
	if (unlinkat(dfd, name, 0) == -1 && errno != ENOENT)
		log_warn("maildrop/%s: unlink", name);
	if (done)
		log_info("%s: already picked up from maildrop", name);
	else
		log_info("%s: picked up from maildrop, uid=%ld, account=%s, "
			 "nrcpt=%zu",
		    name, (long)st->st_uid, e->pe_account, e->pe_nrcpt);
	return 0;
}

/* One maildrop file; 0 or a transient error. */
static int
spoold_md_one(struct spoold *sd, int dfd, const char *name)
{
	struct spool_env e;
	struct stat	 st;
	const char	*why;
	int		 fd, rc;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		rc = errno;
		if (fd != -1)
			(void)close(fd); /* read-only */
		if (rc == ENOENT || spoold_error_transient(rc))
			return rc == ENOENT ? 0 : rc;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			st.st_uid = (uid_t)-1;
		spoold_md_refuse(dfd, name,
		    rc == ELOOP ? "symbolic link" : strerror(rc),
		    (long)st.st_uid);
		return 0;
	}
	spool_env_init(&e);
	if ((why = spoold_md_check(sd, fd, &st, name, &e, &rc)) != NULL)
		spoold_md_refuse(dfd, name, why, (long)st.st_uid);
	else if (rc == 0 &&
	    (rc = spoold_md_take(sd, dfd, fd, name, &st, &e)) != 0)
		log_warnx("%s: maildrop copy: %s", name, spool_strerror(rc));
	(void)close(fd); /* read-only */
	spool_env_free(&e);
	return spoold_error_transient(rc) || rc == EAGAIN ? rc : 0;
}

/* Temporaries of injectors that died half-way. */
static void
spoold_md_stale(const struct spoold *sd, int dfd, const char *name)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    time(NULL) - st.st_mtime >= sd->sd_cf->cf_stale_tmp_age &&
	    unlinkat(dfd, name, 0) == 0)
		log_info("maildrop/%s: removed a stale temporary, uid=%ld",
		    name, (long)st.st_uid);
}

/* One line a minute at most while local mail waits for sendmail_account. */
static void
spoold_md_waiting(void)
{
	static time_t last;
	time_t	      now = time(NULL);

	if (now - last < 60)
		return;
	last = now;
	log_warnx(
	    "maildrop/: sendmail_account is not set: local mail waits there");
}

int
spoold_maildrop_pass(struct spoold *sd)
{
	struct dirent *de;
	DIR	      *d;
	char	       dir[4096];
	size_t	       n = 0;
	int	       dfd, rc = 0;

	if (spool_path(dir, sizeof(dir), sd->sd_cf->cf_spool_dir,
		SPOOL_MAILDROP, NULL) == -1 ||
	    (dfd = open(dir,
		 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    (d = fdopendir(dfd)) == NULL)
		return 0; /* no maildrop: no local injection */
	while (rc == 0 && n < SPOOLD_MD_PASS_MAX && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			spoold_md_stale(sd, dfd, de->d_name);
		else if (!qid_ok(de->d_name))
			continue;
		else if (sd->sd_cf->cf_sendmail_account[0] == '\0') {
			spoold_md_waiting();
			break;
		} else {
			rc = spoold_md_one(sd, dfd, de->d_name);
			n++;
		}
	}
	if (n > 0 && fsx_fsync_dirfd(dfd) == -1)
		log_warn("fsync maildrop/");
	(void)closedir(d); /* read-only directory stream */
	return rc;
}
