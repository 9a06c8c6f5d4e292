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

static char	top[64];

static const char *
path(const char *rel)
{
	static char	p[4][256];
	static int	i;

	i = (i + 1) % 4;
	(void)snprintf(p[i], sizeof(p[i]), "%s/%s", top, rel);
	return p[i];
}

static bool
exists(const char *p)
{
	struct stat	st;

	return lstat(p, &st) == 0;
}

static void
t_write_durable(void)
{
	char		*data;
	size_t		 len;
	struct stat	 st;
	mode_t		 old = umask(0);

	t_ok(fsx_write_durable(top, "f1", "hello", 5, 0640) == 0, "write_durable");
	t_ok(fsx_read_file(path("f1"), 100, &data, &len) == 0 && len == 5 &&
	    strcmp(data, "hello") == 0, "content");
	free(data);
	t_ok(stat(path("f1"), &st) == 0 && (st.st_mode & 0777) == 0640, "mode 0640");
	t_ok(!exists(path(".f1.tmp")), "no temp file left");
	t_ok(fsx_write_durable(top, "f1", "bye", 3, 0600) == 0 &&
	    fsx_read_file(path("f1"), 100, &data, &len) == 0 && len == 3,
	    "replaces an existing file");
	free(data);
	errno = 0;
	t_ok(fsx_write_durable(path("nodir"), "f", "x", 1, 0600) == -1 && errno == ENOENT,
	    "missing directory: -1 ENOENT");
	t_ok(fsx_write_durable(top, "empty", "", 0, 0600) == 0 &&
	    fsx_read_file(path("empty"), 100, &data, &len) == 0 && len == 0 &&
	    data[0] == '\0', "empty file");
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
	    exists(path("a/b/c/m")) && !exists(path("a/m")), "rename_durable across dirs");
	t_ok(fsx_rename_durable(path("a/none"), path("a/b/none")) == -1 && errno == ENOENT,
	    "rename of a missing file fails");
	t_ok(fsx_fsync_dir(path("a/b")) == 0, "fsync_dir");
	t_ok(fsx_fsync_dir(path("a/b/c/m")) == -1 && errno == ENOTDIR, "fsync_dir on a file");
	t_ok(fsx_mkdirs(path("a/b/c/m/x"), 0700) == -1, "mkdirs through a file fails");
}

static void
t_read(void)
{
	char	*data = NULL, big[5000];
	size_t	 len;
	int	 p[2];
	char	 in[8];

	memset(big, 'z', sizeof(big));
	(void)fsx_write_durable(top, "big", big, sizeof(big), 0600);
	errno = 0;
	t_ok(fsx_read_file(path("big"), 4999, &data, &len) == -1 && errno == EFBIG,
	    "read_file refuses more than max");
	t_ok(fsx_read_file(path("big"), 5000, &data, &len) == 0 && len == 5000 &&
	    data[4999] == 'z' && data[5000] == '\0', "read_file at max, NUL-terminated");
	free(data);
	t_ok(fsx_read_file(path("missing"), 10, &data, &len) == -1 && errno == ENOENT,
	    "read_file missing");
	if (pipe(p) == -1)
		return;
	t_ok(fsx_write_all(p[1], "abc", 3) == 0, "write_all");
	close(p[1]);
	t_int_eq(fsx_read_full(p[0], in, sizeof(in)), 3, "read_full stops at EOF");
	close(p[0]);
	t_ok(fsx_write_all(-1, "a", 1) == -1 && errno == EBADF, "write_all error");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "write_durable", t_write_durable },
		{ "rename", t_rename },
		{ "read", t_read },
	};
	char	cmd[128];
	int	rc;

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
