/*
 * Reading the shaping file (shaping.h) from disk: the only I/O around the
 * pure parser, shared by deliverd and spoolctl.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "shaping.h"

int
shaping_load(const char *path, struct shaping *sh, char *why, size_t whysz)
{
	struct buf	    b;
	char		    chunk[8192], err[256];
	ssize_t		    n;
	size_t		    line;
	int		    fd;
	enum shaping_status st;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		(void)snprintf(why, whysz, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf_init(&b, SHAPING_FILE_MAX);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || buf_append(&b, chunk, (size_t)n) == -1) {
			(void)snprintf(why, whysz, "%s: %s", path,
			    n == -1 ? strerror(errno) : "larger than 1 MB");
			(void)close(fd);
			buf_release(&b);
			return -1;
		}
	}
	(void)close(fd); /* read-only: nothing to lose */
	st = shaping_parse(b.data != NULL ? b.data : "", b.len, sh, &line, err,
	    sizeof(err));
	buf_release(&b);
	if (st != SHAPING_OK) {
		(void)snprintf(why, whysz, "%s:%zu: %s", path, line, err);
		return -1;
	}
	return 0;
}
