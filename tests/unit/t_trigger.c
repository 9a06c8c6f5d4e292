/* Unit tests for common/trigger: the FIFO wake-up never blocks the puller. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"
#include "trigger.h"

static char dir[64], fifo[128];

static bool
readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static void
t_no_reader(void)
{
	char  p[128];
	pid_t pid;
	int   st = 0;

	(void)snprintf(p, sizeof(p), "%s/missing", dir);
	trigger_pull(p);
	t_ok(access(p, F_OK) == -1, "pull on a missing path creates nothing");
	(void)snprintf(p, sizeof(p), "%s/noreader", dir);
	if (!t_ok(mkfifo(p, 0600) == 0, "setup: mkfifo %s", p))
		return;
	/* In a child with an alarm: without O_NONBLOCK the open blocks and
	 * SIGALRM kills the child. */
	fflush(stdout);
	if ((pid = fork()) == 0) {
		alarm(5);
		trigger_pull(p);
		_exit(0);
	}
	t_ok(pid != -1 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		WEXITSTATUS(st) == 0,
	    "pull on a FIFO without reader returns");
}

static void
t_wake(void)
{
	struct stat	st;
	struct timespec t0, t1;
	int		fd, fd2, wfd, i, wst = 0;
	pid_t		pid;

	fd = trigger_open(fifo);
	t_ok(fd != -1, "trigger_open");
	t_ok(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "creates a FIFO");
	t_ok(!readable(fd), "quiet at start");
	trigger_pull(fifo);
	t_ok(readable(fd), "pull wakes the reader");
	trigger_drain(fd);
	t_ok(!readable(fd), "drain empties it");
	/*
	 * More pulls than a pipe buffer holds, in a child with an alarm: a
	 * pull that blocks on the full FIFO never returns and SIGALRM kills
	 * the child. The time is printed, not asserted (STYLE T4).
	 */
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		alarm(60);
		for (i = 0; i < 70000; i++)
			trigger_pull(fifo);
		_exit(0);
	}
	t_ok(pid != -1 && waitpid(pid, &wst, 0) == pid && WIFEXITED(wst) &&
		WEXITSTATUS(wst) == 0,
	    "pulls on a full FIFO return");
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	t_diag("70000 pulls: %.3f s",
	    (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	wfd = open(fifo, O_WRONLY | O_NONBLOCK);
	t_ok(wfd != -1 && write(wfd, "x", 1) == -1 && errno == EAGAIN,
	    "the pulls filled the FIFO");
	if (wfd != -1)
		close(wfd);
	trigger_drain(fd);
	t_ok(!readable(fd), "drained after many pulls");
	fd2 = trigger_open(fifo);
	t_ok(fd2 != -1, "trigger_open on an existing FIFO");
	close(fd2);
	t_ok(!readable(fd), "reader never sees EOF when writers close");
	close(fd);
}

/* A trigger path that is a link or a plain file is neither written nor
 * opened for reading: root may pull or open it in the daemon's spool. */
static void
t_not_a_fifo(void)
{
	char	    file[128], link[128], buf[16];
	struct stat st;
	int	    fd;

	(void)snprintf(file, sizeof(file), "%s/victim", dir);
	(void)snprintf(link, sizeof(link), "%s/trigger-link", dir);
	if ((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, "keep", 4) != 4 || close(fd) == -1 ||
	    symlink(file, link) == -1) {
		t_ok(false, "setup: %s", strerror(errno));
		return;
	}
	trigger_pull(link);
	trigger_pull(file);
	t_ok(stat(file, &st) == 0 && st.st_size == 4 &&
		(fd = open(file, O_RDONLY)) != -1 &&
		read(fd, buf, sizeof(buf)) == 4 && memcmp(buf, "keep", 4) == 0,
	    "pull writes nothing through a link or into a file");
	if (fd != -1)
		close(fd);
	errno = 0;
	t_ok(trigger_open(link) == -1 && errno == ELOOP,
	    "trigger_open refuses a link");
	errno = 0;
	t_ok(trigger_open(file) == -1 && errno == EINVAL,
	    "trigger_open refuses a file");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "no_reader", t_no_reader },
		{ "wake", t_wake },
		{ "not_a_fifo", t_not_a_fifo },
	};
	char cmd[128];
	int  rc;

	log_init("t_trigger", LOG_DEST_STDERR);
	(void)snprintf(dir, sizeof(dir), "/tmp/t_trigger.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 99;
	(void)snprintf(fifo, sizeof(fifo), "%s/trigger", dir);
	rc = T_RUN(cases);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
