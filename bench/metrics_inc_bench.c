/*
 * metrics-inc-bench: the hot-path cost of the counters (issue 18 item 5;
 * bench/README.md "Metrics: cost of a counter"). Maps a real
 * metrics.shm in a temporary directory and times, per call:
 *   plain      a non-atomic increment of a private counter (the floor)
 *   off        metrics_inc with no mapping (a failed attach)
 *   inc        metrics_inc: one relaxed atomic add on the process's block
 *   worker     metrics_inc in a forked child after metrics_private (smtpd's
 *              workers: a relaxed atomic add in private memory)
 *   flush      what a worker does at most once a second to send its
 *              counts: metrics_delta_take and a write of the record to a
 *              pipe that the parent drains (smtpd_limits_flush)
 *   reply      metrics_smtp_reply("250 2.0.0 Ok"): smtpd's per-reply hook
 *   delivery   metrics_delivery(): deliverd's per-recipient hook
 *              (category, TLS, the 32-slot destination table, full)
 * Usage: metrics-inc-bench [ITERATIONS]   (default 50,000,000)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

static double
bench_now(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile uint64_t bench_private;
static int		 bench_pipe = -1;

static void
bench_loop(const char *what, int kind, long n)
{
	char   to[64];
	double t0 = bench_now(), dt;
	long   i;

	for (i = 0; i < n; i++) {
		switch (kind) {
		case 0:
			bench_private++;
			break;
		case 1:
			metrics_inc(mb_spoold_filed);
			break;
		case 2:
			metrics_smtp_reply("250 2.0.0 Ok");
			break;
		case 4: {
			struct metrics_delta md;
			char		     rec[1 + sizeof(md)];

			metrics_inc(mb_smtpd_sessions[0]);
			if (metrics_delta_take(&md)) {
				rec[0] = 'M';
				memcpy(rec + 1, &md, sizeof(md));
				if (write(bench_pipe, rec, sizeof(rec)) !=
				    (ssize_t)sizeof(rec))
					metrics_delta_untake(&md);
			}
			break;
		}
		case 3:
			/* 40 domains: 32 slots found by a scan, 8 go to "other" */
			(void)snprintf(to, sizeof(to), "u@d%ld.example",
			    i % 40);
			metrics_delivery(METRICS_O_DELIVERED, BOUNCE_NONE, to,
			    true);
			break;
		}
	}
	dt = bench_now() - t0;
	printf("%-10s %8.2f ns/call  (%ld calls, %.3f s)\n", what,
	    dt * 1e9 / (double)n, n, dt);
}

int
main(int argc, char **argv)
{
	char  dir[] = "/tmp/metrics-bench.XXXXXX", path[128];
	long  n = argc > 1 ? strtol(argv[1], NULL, 10) : 50000000L;
	pid_t pid;
	int   st, fds[2];
	char  buf[4096];

	if (n <= 0 || mkdtemp(dir) == NULL)
		return 2;
	bench_loop("plain", 0, n);
	bench_loop("off", 1, n);
	if (metrics_attach(dir, "other") == -1) {
		perror("metrics_attach");
		return 1;
	}
	bench_loop("inc", 1, n);
	fflush(stdout);
	if (pipe(fds) == -1)
		return 1;
	if ((pid = fork()) == 0) {
		(void)close(fds[0]);
		bench_pipe = fds[1];
		metrics_private();
		bench_loop("worker", 1, n);
		bench_loop("flush", 4, n / 100);
		fflush(stdout);
		_exit(0);
	}
	(void)close(fds[1]);
	while (read(fds[0], buf, sizeof(buf)) > 0)
		continue; /* as the master drains the pipe */
	(void)waitpid(pid, &st, 0);
	bench_loop("reply", 2, n);
	bench_loop("delivery", 3, n / 10);
	(void)snprintf(path, sizeof(path), "%s/%s", dir, METRICS_FILE);
	(void)unlink(path);
	(void)rmdir(dir);
	return 0;
}
