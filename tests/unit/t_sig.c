/* Unit tests for common/sig: self-pipe, flags, reset. */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sig.h"
#include "tap.h"

static bool
readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 1000) == 1 && (pfd.revents & POLLIN);
}

static void
t_flags(void)
{
	struct sigaction sa;

	sig_init();
	t_ok(sig_fd() >= 0, "self-pipe exists");
	t_int_eq(sig_take(), 0, "nothing pending");
	t_ok(!sig_stopping(), "not stopping");

	raise(SIGHUP);
	t_ok(readable(sig_fd()), "SIGHUP wakes poll");
	t_int_eq(sig_take(), SIG_HUP, "SIG_HUP");
	t_int_eq(sig_take(), 0, "taken once");

	raise(SIGCHLD);
	raise(SIGUSR1);
	raise(SIGALRM);
	t_int_eq(sig_take(), SIG_CHLD | SIG_USR1 | SIG_ALRM, "several at once");

	t_ok(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN,
	    "SIGPIPE ignored");
	raise(SIGPIPE);
	t_int_eq(sig_take(), 0, "SIGPIPE sets no flag");

	raise(SIGTERM);
	t_ok(sig_stopping(), "SIGTERM sets stopping");
	t_int_eq(sig_take(), SIG_TERM, "SIG_TERM");
	t_ok(sig_stopping(), "stopping stays after take");
	sig_init(); /* twice is fine */
	raise(SIGINT);
	t_int_eq(sig_take(), SIG_TERM, "SIGINT is a stop too");
}

static void
t_reset(void)
{
	struct sigaction sa;

	sig_reset();
	t_ok(!sig_stopping(), "reset clears stopping");
	(void)sigaction(SIGTERM, NULL, &sa);
	t_ok(sa.sa_handler == SIG_DFL, "SIGTERM back to default");
	(void)sigaction(SIGPIPE, NULL, &sa);
	t_ok(sa.sa_handler == SIG_DFL, "SIGPIPE back to default");
}

/* A child's signals wake the child's pipe, never the parent's. */
static void
t_child_pipe(void)
{
	struct pollfd pfd;
	sigset_t      chld, old;
	pid_t	      pid;
	int	      st = -1, parent_fd;

	sig_init();
	(void)sig_take();
	parent_fd = sig_fd();
	/* the child's exit must not wake the parent's pipe (SIGCHLD) */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	(void)sigprocmask(SIG_BLOCK, &chld, &old);
	if ((pid = fork()) == 0) {
		sig_child();
		raise(SIGHUP);
		_exit(sig_fd() == parent_fd	? 1
			: !readable(sig_fd())	? 2
			: sig_take() != SIG_HUP ? 3
						: 0);
	}
	t_ok(pid > 0 && waitpid(pid, &st, 0) == pid, "child ran");
	t_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "child: own pipe, woken, "
	    "SIG_HUP (status %d)",
	    st);
	pfd = (struct pollfd){ .fd = sig_fd(), .events = POLLIN };
	(void)poll(&pfd, 1, 100);
	t_ok(!(pfd.revents & POLLIN), "parent's pipe not woken by the child");
	t_int_eq(sig_take() & SIG_HUP, 0, "no SIG_HUP in the parent");
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	(void)sig_take();
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "flags", t_flags },
		{ "child_pipe", t_child_pipe },
		{ "reset", t_reset },
	};

	log_init("t_sig", LOG_DEST_STDERR);
	return T_RUN(cases);
}
