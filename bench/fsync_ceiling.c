/*
 * fsync_ceiling: the durable-accept ceiling of this machine's file system.
 *
 *	fsync_ceiling -d DIR [-w WRITERS] [-n TOTAL] [-s SIZE] [-2] [-b BATCH]
 *
 * WRITERS processes (default 20) each repeat what smtpd does for one
 * message: create DIR/tmp/NAME, write SIZE bytes (default 4096), fsync,
 * close, rename to DIR/new/NAME, fsync DIR/new (with -2 also DIR/tmp, as
 * fsx_rename_durable() does). TOTAL (default 20000) operations in all.
 * -b BATCH: group commit, as an event-loop server could do for the sessions
 * that finished DATA in one loop pass: BATCH files are written and fsynced,
 * renamed, then new/ is fsynced once for all of them.
 * Prints "ops=N secs=S rate=R" (operations per second) and removes its files.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *fc_dir;
static int	   fc_both_dirs;
static long	   fc_batch = 1;

static void
fc_die(const char *what)
{
	fprintf(stderr, "fsync_ceiling: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long
fc_num(const char *s, long lo, long hi)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "fsync_ceiling: bad number %s (%ld..%ld)\n", s,
		    lo, hi);
		exit(2);
	}
	return v;
}

static void
fc_write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			fc_die("write");
		}
		p += w;
		n -= (size_t)w;
	}
}

/* One writer: ops durable creations, named w<id>-<i>. */
static void
fc_writer(int id, long ops, const char *data, size_t size)
{
	char tmp[PATH_MAX], new[PATH_MAX], d[PATH_MAX];
	int  newfd, tmpfd, fd;
	long i;

	snprintf(d, sizeof(d), "%s/new", fc_dir);
	if ((newfd = open(d, O_RDONLY | O_DIRECTORY)) == -1)
		fc_die(d);
	snprintf(d, sizeof(d), "%s/tmp", fc_dir);
	if ((tmpfd = open(d, O_RDONLY | O_DIRECTORY)) == -1)
		fc_die(d);
	for (i = 0; i < ops; i++) {
		if (snprintf(tmp, sizeof(tmp), "%s/tmp/w%d-%ld", fc_dir, id,
			i) >= (int)sizeof(tmp) ||
		    snprintf(new, sizeof(new), "%s/new/w%d-%ld", fc_dir, id,
			i) >= (int)sizeof(new)) {
			errno = ENAMETOOLONG;
			fc_die("path");
		}
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1)
			fc_die(tmp);
		fc_write_all(fd, data, size);
		if (fsync(fd) == -1)
			fc_die("fsync");
		if (close(fd) == -1)
			fc_die("close");
		if (rename(tmp, new) == -1)
			fc_die("rename");
		if ((i + 1) % fc_batch != 0 && i + 1 < ops)
			continue;
		if (fsync(newfd) == -1)
			fc_die("fsync new/");
		if (fc_both_dirs && fsync(tmpfd) == -1)
			fc_die("fsync tmp/");
	}
	(void)close(newfd); /* read-only directory fds: nothing to lose */
	(void)close(tmpfd);
}

static void
fc_cleanup(int writers, long total)
{
	char p[PATH_MAX];
	int  w;
	long i;

	for (w = 0; w < writers; w++)
		for (i = 0; i <= total / writers; i++) {
			snprintf(p, sizeof(p), "%s/new/w%d-%ld", fc_dir, w, i);
			(void)unlink(p); /* may not exist: ops split unevenly */
		}
	snprintf(p, sizeof(p), "%s/new", fc_dir);
	(void)rmdir(p);
	snprintf(p, sizeof(p), "%s/tmp", fc_dir);
	(void)rmdir(p);
	(void)rmdir(fc_dir); /* only if empty, i.e. nobody else's files */
}

int
main(int argc, char **argv)
{
	struct timespec t0, t1;
	char		p[PATH_MAX], *data;
	long		total = 20000, ops, done = 0;
	size_t		size = 4096;
	int		writers = 20, c, w, status, failed = 0;
	double		secs;

	while ((c = getopt(argc, argv, "d:w:n:s:2b:")) != -1) {
		switch (c) {
		case 'd':
			fc_dir = optarg;
			break;
		case 'w':
			writers = (int)fc_num(optarg, 1, 1000);
			break;
		case 'n':
			total = fc_num(optarg, 1, 100000000);
			break;
		case 's':
			size = (size_t)fc_num(optarg, 1, 64L << 20);
			break;
		case '2':
			fc_both_dirs = 1;
			break;
		case 'b':
			fc_batch = fc_num(optarg, 1, 100000);
			break;
		default:
			fprintf(stderr,
			    "usage: fsync_ceiling -d DIR [-w WRITERS] [-n "
			    "TOTAL] [-s SIZE] [-2] [-b BATCH]\n");
			return 2;
		}
	}
	if (fc_dir == NULL) {
		fprintf(stderr, "fsync_ceiling: -d DIR is required\n");
		return 2;
	}
	if ((data = malloc(size)) == NULL)
		fc_die("malloc");
	memset(data, 'x', size);
	if (mkdir(fc_dir, 0755) == -1 && errno != EEXIST)
		fc_die(fc_dir);
	snprintf(p, sizeof(p), "%s/tmp", fc_dir);
	if (mkdir(p, 0755) == -1 && errno != EEXIST)
		fc_die(p);
	snprintf(p, sizeof(p), "%s/new", fc_dir);
	if (mkdir(p, 0755) == -1 && errno != EEXIST)
		fc_die(p);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (w = 0; w < writers; w++) {
		ops = total / writers + (w < total % writers ? 1 : 0);
		switch (fork()) {
		case -1:
			fc_die("fork");
			break;
		case 0:
			fc_writer(w, ops, data, size);
			_exit(0);
		default:
			done += ops;
		}
	}
	while (wait(&status) != -1)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fc_cleanup(writers, total);
	free(data);
	if (failed) {
		fprintf(stderr, "fsync_ceiling: a writer failed\n");
		return 1;
	}
	printf("ops=%ld secs=%.3f rate=%.1f\n", done, secs,
	    secs > 0 ? (double)done / secs : 0.0);
	return 0;
}
