/*
 * spoold's copies (spoold_file.h): a file from incoming/new is checked,
 * copied into queue/.NAME.in (copy_file_range(2), else read/write), made
 * durable for a whole batch by one syncfs(2), then renamed to its queue
 * name or removed; leftovers of a crash are cleaned at start.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "fsx.h"
#include "log.h"
#include "spool.h"
#include "spoold_file.h"

/* The writer's file is acceptable to copy: why not, or NULL. */
const char *
spoold_file_refused(const struct spoold *sd, const struct stat *st)
{
	int64_t max = sd->sd_cf->cf_max_message_size + SPOOLD_ENV_SLACK +
	    (int64_t)sd->sd_cf->cf_max_recipients *
		(SPOOL_ADDR_MAX + SPOOL_PARAMS_MAX + 32);

	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_nlink != 1)
		return "more than one link";
	if (st->st_uid != sd->sd_smtpd_uid && st->st_uid != sd->sd_self_uid)
		return "not written by smtpd";
	if (st->st_size > max)
		return "larger than max_message_size";
	return NULL;
}

/* read(2)/write(2), where copy_file_range(2) cannot be had. */
static int
spoold_copy_rw(int in, int out, off_t n)
{
	char	b[65536];
	ssize_t r;

	while (n > 0) {
		r = read(in, b, n < (off_t)sizeof(b) ? (size_t)n : sizeof(b));
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EAGAIN; /* it shrank: try later */
			return -1;
		}
		if (fsx_write_all(out, b, (size_t)r) == -1)
			return -1;
		n -= r;
	}
	return 0;
}

int
spoold_copy_fd(int in, int out, off_t n, bool sync)
{
	ssize_t r;

	/* in the kernel: no user-space copy of the message */
	while (n > 0) {
		r = copy_file_range(in, NULL, out, NULL, (size_t)n, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			errno == EOPNOTSUPP)) {
			if (spoold_copy_rw(in, out, n) == -1)
				return -1;
			break;
		}
		if (r <= 0) {
			if (r == 0)
				errno = EAGAIN; /* it shrank: try later */
			return -1;
		}
		n -= r;
	}
	return sync ? fsync(out) : 0;
}

int
spoold_copy(const struct spoold *sd, const char *name, int fd, off_t size)
{
	char path[4096], tmp[300];
	int  cfd, e;

	if (str_printf(tmp, sizeof(tmp), ".%s.in", name) == -1 ||
	    spool_path(path, sizeof(path), sd->sd_cf->cf_spool_dir, SPOOL_QUEUE,
		tmp) == -1)
		return -1;
	(void)unlink(path); /* a crash's leftover */
	/* 0640: deliverd_user reads it through spoold's group */
	if ((cfd = open(path,
		 O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640)) ==
	    -1)
		return -1;
	if (spoold_copy_fd(fd, cfd, size, false) == 0 &&
	    lseek(cfd, 0, SEEK_SET) == 0)
		return cfd;
	e = errno;
	(void)close(cfd); /* failing anyway */
	(void)unlink(path);
	errno = e;
	return -1;
}

/* queue/.NAME.in -> queue/NAME (to != SPOOL_QUEUE: unlink it); 0 or errno. */
int
spoold_copy_done(const struct spoold *sd, const char *name, bool keep)
{
	char src[4096], dst[4096], tmp[300];

	if (str_printf(tmp, sizeof(tmp), ".%s.in", name) == -1 ||
	    spool_path(src, sizeof(src), sd->sd_cf->cf_spool_dir, SPOOL_QUEUE,
		tmp) == -1 ||
	    spool_path(dst, sizeof(dst), sd->sd_cf->cf_spool_dir, SPOOL_QUEUE,
		name) == -1)
		return ENAMETOOLONG;
	if (!keep)
		return unlink(src) == -1 && errno != ENOENT ? errno : 0;
	return rename(src, dst) == -1 ? errno : 0;
}

int
spoold_sync_copies(const struct spoold *sd)
{
	char dir[4096];
	int  fd, rc = 0;

	if (spool_path(dir, sizeof(dir), sd->sd_cf->cf_spool_dir, SPOOL_QUEUE,
		NULL) == -1 ||
	    (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		rc = -1;
	else {
		rc = syncfs(fd);
		(void)close(fd); /* read-only */
	}
	if (rc == -1)
		log_warn(
		    "syncfs %s: files stay in incoming/new until the next pass",
		    sd->sd_cf->cf_spool_dir);
	return rc;
}

size_t
spoold_clean_copies(const struct spoold *sd)
{
	struct dirent *de;
	struct stat    st;
	DIR	      *d;
	char	       dir[4096];
	size_t	       n = 0, len;
	time_t	       now = time(NULL);

	if (spool_path(dir, sizeof(dir), sd->sd_cf->cf_spool_dir, SPOOL_QUEUE,
		NULL) == -1 ||
	    (d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (de->d_name[0] != '.' || len < 4 ||
		    strcmp(de->d_name + len - 3, ".in") != 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			-1 ||
		    !S_ISREG(st.st_mode) ||
		    now - st.st_mtime < sd->sd_cf->cf_stale_tmp_age)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	(void)closedir(d); /* read-only directory stream */
	return n;
}
