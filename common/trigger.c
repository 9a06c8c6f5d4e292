#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trigger.h"

/* A FIFO with one name, or -1 (ELOOP for a link, EINVAL for anything else):
 * never a file a link or a hard link planted in the spool points to. */
static int
trigger_fifo(int fd)
{
	struct stat st;

	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_nlink == 1)
		return fd;
	(void)close(fd); /* nothing written through it */
	errno = EINVAL;
	return -1;
}

void
trigger_pull(const char *path)
{
	int fd;

	fd = trigger_fifo(open(path,
	    O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
	if (fd == -1)
		return; /* no reader: it will rescan on its timer */
	if (write(fd, "", 1) == -1) {
		/* a full FIFO already means "wake up" */
	}
	(void)close(fd);
}

int
trigger_open(const char *path)
{
	if (mkfifo(path, 0620) == -1 && errno != EEXIST)
		return -1;
	return trigger_fifo(open(path,
	    O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
}

void
trigger_drain(int fd)
{
	char b[256];

	while (read(fd, b, sizeof(b)) > 0)
		;
}
