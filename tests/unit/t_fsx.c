/* Unit tests for common/fsx: durable writes, renames, mkdirs, reads. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsx.h"
#include "log.h"
#include "tap.h"

static char top[64];

static const char *
path(const char *rel)
{
	static char p[4][256];
	static int  i;

	i = (i + 1) % 4;
	(void)snprintf(p[i], sizeof(p[i]), "%s/%s", top, rel);
	return p[i];
}

static bool
exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static void
t_write_durable(void)
{
	char	   *data;
	size_t	    len;
	struct stat st;
	mode_t	    old = umask(0);

	t_ok(fsx_write_durable(top, "f1", "hello", 5, 0640) == 0,
	    "write_durable");
	t_ok(fsx_read_file(path("f1"), 100, &data, &len) == 0 && len == 5 &&
		strcmp(data, "hello") == 0,
	    "content");
	free(data);
	t_ok(stat(path("f1"), &st) == 0 && (st.st_mode & 0777) == 0640,
	    "mode 0640");
	t_ok(!exists(path(".f1.tmp")), "no temp file left");
	t_ok(fsx_write_durable(top, "f1", "bye", 3, 0600) == 0 &&
		fsx_read_file(path("f1"), 100, &data, &len) == 0 && len == 3,
	    "replaces an existing file");
	free(data);
	errno = 0;
	t_ok(fsx_write_durable(path("nodir"), "f", "x", 1, 0600) == -1 &&
		errno == ENOENT,
	    "missing directory: -1 ENOENT");
	t_ok(fsx_write_durable(top, "empty", "", 0, 0600) == 0 &&
		fsx_read_file(path("empty"), 100, &data, &len) == 0 &&
		len == 0 && data[0] == '\0',
	    "empty file");
	free(data);
	umask(old);
}

static void
t_rename(void)
{
	t_ok(fsx_mkdirs(path("a/b/c"), 0700) == 0, "mkdirs nested");
	t_ok(fsx_mkdirs(path("a/b/c"), 0700) == 0, "mkdirs existing is fine");
	t_ok(fsx_write_durable(path("a"), "m", "x", 1, 0600) == 0 &&
		fsx_rename_durable(path("a/m"), path("a/b/c/m")) == 0 &&
		exists(path("a/b/c/m")) && !exists(path("a/m")),
	    "rename_durable across dirs");
	t_ok(fsx_rename_durable(path("a/none"), path("a/b/none")) == -1 &&
		errno == ENOENT,
	    "rename of a missing file fails");
	t_ok(fsx_fsync_dir(path("a/b")) == 0, "fsync_dir");
	t_ok(fsx_fsync_dir(path("a/b/c/m")) == -1 && errno == ENOTDIR,
	    "fsync_dir on a file");
	t_ok(fsx_mkdirs(path("a/b/c/m/x"), 0700) == -1,
	    "mkdirs through a file fails");
}

static void
t_read(void)
{
	char  *data = NULL, big[5000];
	size_t len;
	int    p[2];
	char   in[8];

	memset(big, 'z', sizeof(big));
	(void)fsx_write_durable(top, "big", big, sizeof(big), 0600);
	errno = 0;
	t_ok(fsx_read_file(path("big"), 4999, &data, &len) == -1 &&
		errno == EFBIG,
	    "read_file refuses more than max");
	t_ok(fsx_read_file(path("big"), 5000, &data, &len) == 0 &&
		len == 5000 && data[4999] == 'z' && data[5000] == '\0',
	    "read_file at max, NUL-terminated");
	free(data);
	t_ok(fsx_read_file(path("missing"), 10, &data, &len) == -1 &&
		errno == ENOENT,
	    "read_file missing");
	if (!t_ok(pipe(p) == 0, "setup: pipe: %s", strerror(errno)))
		return;
	t_ok(fsx_write_all(p[1], "abc", 3) == 0, "write_all");
	close(p[1]);
	t_int_eq(fsx_read_full(p[0], in, sizeof(in)), 3,
	    "read_full stops at EOF");
	close(p[0]);
	t_ok(fsx_write_all(-1, "a", 1) == -1 && errno == EBADF,
	    "write_all error");
}

/* No symbolic link below the directory is followed, in any component. */
static void
t_open_beneath(void)
{
	int dfd, fd;

	(void)fsx_mkdirs(path("nb/sub"), 0700);
	(void)fsx_write_durable(path("nb/sub"), "f", "x", 1, 0600);
	(void)fsx_write_durable(top, "outside", "secret", 6, 0600);
	if (symlink(path("outside"), path("nb/link")) == -1 ||
	    symlink(path("nb/sub"), path("nb/dirlink")) == -1 ||
	    (dfd = open(path("nb"), O_RDONLY | O_DIRECTORY)) == -1) {
		t_ok(false, "setup: %s", strerror(errno));
		return;
	}
	t_ok((fd = fsx_open_beneath(dfd, "sub/f", O_RDONLY, 0)) >= 0,
	    "plain path opens");
	if (fd >= 0)
		close(fd);
	errno = 0;
	t_ok(fsx_open_beneath(dfd, "link", O_RDONLY, 0) == -1 && errno == ELOOP,
	    "a link as the last component: ELOOP");
	errno = 0;
	t_ok(fsx_open_beneath(dfd, "dirlink/f", O_RDONLY, 0) == -1 &&
		(errno == ELOOP || errno == ENOTDIR),
	    "a link as a directory component");
	errno = 0;
	t_ok(fsx_open_beneath(dfd, "link", O_WRONLY | O_CREAT, 0600) == -1 &&
		errno == ELOOP,
	    "O_CREAT does not follow either");
	close(dfd);
}

/* The temporary is fresh: a link planted at any name is neither written
 * nor kept, and the file gets its mode through the descriptor. */
static void
t_write_durable_at(void)
{
	char	   *data = NULL;
	size_t	    len;
	struct stat st;
	int	    dfd;

	(void)fsx_mkdirs(path("wa"), 0700);
	(void)fsx_write_durable(top, "victim", "keep", 4, 0600);
	if (symlink(path("victim"), path("wa/.k.pem.tmp")) == -1 ||
	    (dfd = open(path("wa"), O_RDONLY | O_DIRECTORY)) == -1) {
		t_ok(false, "setup: %s", strerror(errno));
		return;
	}
	t_ok(fsx_write_durable_at(dfd, "k.pem", "KEY", 3, 0600, (uid_t)-1, 0) ==
		0,
	    "write_durable_at");
	t_ok(fsx_read_file(path("victim"), 100, &data, &len) == 0 && len == 4 &&
		memcmp(data, "keep", 4) == 0,
	    "a planted temp link is not written");
	free(data);
	t_ok(lstat(path("wa/k.pem"), &st) == 0 && S_ISREG(st.st_mode) &&
		(st.st_mode & 0777) == 0600,
	    "the key is a regular 0600 file");
	(void)unlink(path("wa/k.pem"));
	t_ok(symlink(path("victim"), path("wa/k.pem")) == 0 &&
		fsx_write_durable_at(dfd, "k.pem", "KEY2", 4, 0600, (uid_t)-1,
		    0) == 0 &&
		lstat(path("wa/k.pem"), &st) == 0 && S_ISREG(st.st_mode),
	    "a link at the name is replaced, not followed");
	t_ok(fsx_read_file(path("victim"), 100, &data, &len) == 0 && len == 4,
	    "the link's target is untouched");
	free(data);
	close(dfd);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "write_durable", t_write_durable },
		{ "rename", t_rename },
		{ "read", t_read },
		{ "open_beneath", t_open_beneath },
		{ "write_durable_at", t_write_durable_at },
	};
	char cmd[128];
	int  rc;

	log_init("t_fsx", LOG_DEST_STDERR);
	(void)snprintf(top, sizeof(top), "/tmp/t_fsx.XXXXXX");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	rc = T_RUN(cases);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
