#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sig.h"

static int		     sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_pending;
static volatile sig_atomic_t sig_stop;

static void
sig_handler(int signo)
{
	int saved = errno;

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		sig_pending |= SIG_TERM;
		sig_stop = 1;
		break;
	case SIGHUP:
		sig_pending |= SIG_HUP;
		break;
	case SIGCHLD:
		sig_pending |= SIG_CHLD;
		break;
	case SIGUSR1:
		sig_pending |= SIG_USR1;
		break;
	case SIGALRM:
		sig_pending |= SIG_ALRM;
		break;
	}
	if (write(sig_pipe[1], "", 1) == -1) {
		/* full pipe: the loop is already awake */
	}
	errno = saved;
}

void
sig_init(void)
{
	struct sigaction sa;
	int		 i;
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1,
		SIGALRM };

	if (sig_pipe[0] == -1) {
		if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
			log_fatal("pipe");
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = sig_handler;
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < (int)(sizeof(sigs) / sizeof(sigs[0])); i++)
		if (sigaction(sigs[i], &sa, NULL) == -1)
			log_fatal("sigaction");
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
}

void
sig_child(void)
{
	int old[2] = { sig_pipe[0], sig_pipe[1] };

	if (old[0] == -1)
		return;
	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		log_fatal("pipe");
	(void)close(old[0]); /* the parent's copies stay open there */
	(void)close(old[1]);
	if (sig_pending != 0 && write(sig_pipe[1], "", 1) == -1) {
		/* cannot be full: it is new */
	}
}

void
sig_reset(void)
{
	struct sigaction sa;
	int		 i;
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1,
		SIGALRM, SIGPIPE };

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < (int)(sizeof(sigs) / sizeof(sigs[0])); i++)
		(void)sigaction(sigs[i], &sa, NULL);
	sig_pending = 0;
	sig_stop = 0;
}

int
sig_fd(void)
{
	return sig_pipe[0];
}

unsigned
sig_take(void)
{
	char	 b[64];
	unsigned v;
	sigset_t all, old;

	while (read(sig_pipe[0], b, sizeof(b)) > 0)
		;
	sigfillset(&all);
	(void)sigprocmask(SIG_BLOCK, &all, &old);
	v = (unsigned)sig_pending;
	sig_pending = 0;
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	return v;
}

bool
sig_stopping(void)
{
	return sig_stop != 0;
}
