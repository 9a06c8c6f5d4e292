#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trigger.h"

void
trigger_pull(const char *path)
{
	int	fd;

	if ((fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) == -1)
		return;		/* no reader: it will rescan on its timer */
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
	return open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
}

void
trigger_drain(int fd)
{
	char	b[256];

	while (read(fd, b, sizeof(b)) > 0)
		;
}
