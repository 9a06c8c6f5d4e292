/* Unit tests for common/qid: format, order, uniqueness across fork. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qid.h"
#include "tap.h"

#define NQ 10000

static char qids[NQ][QID_SIZE];

static void
t_format(void)
{
	char	 a[QID_SIZE];
	uint64_t now = (uint64_t)time(NULL) * 1000000u, t;

	qid_make(a);
	t_ok(qid_ok(a) && strlen(a) == QID_LEN, "well-formed: %s", a);
	t = qid_time_us(a);
	t_ok(t + 5000000u > now && t < now + 5000000u, "time encoded is now");
	t_ok(!qid_ok("../etc/passwd") && !qid_ok(""),
	    "rejects paths and empty");
	t_ok(!qid_ok("0123456789abcdef0123"), "rejects lower case");
	t_ok(!qid_ok("0123456789ABCDEF012") && !qid_ok("0123456789ABCDEF01234"),
	    "rejects 19 and 21 digits");
	t_ok(qid_ok("0123456789ABCDEF0123"),
	    "accepts 20 upper-case hex digits");
}

static void
t_order(void)
{
	size_t i;
	bool   sorted = true;

	for (i = 0; i < NQ; i++)
		qid_make(qids[i]);
	for (i = 1; i < NQ; i++)
		if (strcmp(qids[i - 1], qids[i]) >= 0) {
			t_diag("%s >= %s", qids[i - 1], qids[i]);
			sorted = false;
			break;
		}
	t_ok(sorted, "%d IDs strictly increasing, so unique", NQ);
}

static void
t_fork(void)
{
	int	p[2], st;
	pid_t	pid;
	char	child[QID_SIZE], mine[QID_SIZE];
	ssize_t n;

	if (!t_ok(pipe(p) == 0, "setup: pipe: %s", strerror(errno)))
		return;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		qid_make(child);
		(void)!write(p[1], child, QID_SIZE);
		_exit(0);
	}
	qid_make(mine);
	n = read(p[0], child, QID_SIZE);
	(void)waitpid(pid, &st, 0);
	close(p[0]);
	close(p[1]);
	t_ok(n == QID_SIZE && qid_ok(child), "child makes an ID");
	/* same microsecond is possible: the random counter part must differ */
	t_ok(strcmp(child + 13, mine + 13) != 0,
	    "child and parent counters differ: %s %s", child, mine);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "format", t_format },
		{ "order", t_order },
		{ "fork", t_fork },
	};

	log_init("t_qid", LOG_DEST_STDERR);
	return T_RUN(cases);
}
