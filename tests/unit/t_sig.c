/* Unit tests for common/sig: self-pipe, flags, reset. */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sig.h"
#include "tap.h"

static bool
readable(int fd)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 1000) == 1 && (pfd.revents & POLLIN);
}

static void
t_flags(void)
{
	struct sigaction	sa;

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
	sig_init();	/* twice is fine */
	raise(SIGINT);
	t_int_eq(sig_take(), SIG_TERM, "SIGINT is a stop too");
}

static void
t_reset(void)
{
	struct sigaction	sa;

	sig_reset();
	t_ok(!sig_stopping(), "reset clears stopping");
	(void)sigaction(SIGTERM, NULL, &sa);
	t_ok(sa.sa_handler == SIG_DFL, "SIGTERM back to default");
	(void)sigaction(SIGPIPE, NULL, &sa);
	t_ok(sa.sa_handler == SIG_DFL, "SIGPIPE back to default");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "flags", t_flags },
		{ "reset", t_reset },
	};

	log_init("t_sig", LOG_DEST_STDERR);
	return T_RUN(cases);
}
