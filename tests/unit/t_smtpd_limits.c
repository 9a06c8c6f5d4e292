/*
 * Unit tests for smtpd/smtpd_limits: the per-address session counts that
 * every worker shares, across real processes (fork):
 *   - the limit holds across two workers; a worker that exits without
 *     releasing (killed) is forgotten when the master reaps it;
 *   - IPv4 and its IPv4-mapped IPv6 form are one address, an IPv6 prefix
 *     of the configured length is one client;
 *   - many addresses in a small table (collisions, backward-shift
 *     deletion): every count stays right through releases, and a full
 *     table admits without counting instead of refusing;
 *   - stress mode begins at the threshold and ends below three quarters;
 *   - a worker's retirement notice reaches the master, a death does not
 *     look like one.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smtpd_limits.h"
#include "tap.h"

static struct sockaddr_storage
t_addr(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in     *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6    *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		abort();
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static enum smtpd_limits_rc
t_admit(struct smtpd_limits *lm, const char *text, int *idx_r)
{
	struct sockaddr_storage ss = t_addr(text);
	int			idx;

	return smtpd_limits_admit(lm, SA(ss), idx_r ? idx_r : &idx);
}

static uint32_t
t_count(struct smtpd_limits *lm, const char *text)
{
	struct sockaddr_storage ss = t_addr(text);

	return smtpd_limits_count(lm, SA(ss));
}

/* Runs fn as the worker of slot in a child; its exit status (0: ok). */
static int
t_worker(struct smtpd_limits *lm, size_t slot, int (*fn)(struct smtpd_limits *))
{
	pid_t pid;
	int   st;

	if ((pid = fork()) == -1)
		abort();
	if (pid == 0) {
		smtpd_limits_child(lm, slot);
		_exit(fn(lm));
	}
	smtpd_limits_spawned(lm, slot);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Holds two sessions of 192.0.2.1 and exits without releasing (killed). */
static int
t_worker_a(struct smtpd_limits *lm)
{
	return !(t_admit(lm, "192.0.2.1", NULL) == SMTPD_LIMITS_OK &&
	    t_admit(lm, "192.0.2.1", NULL) == SMTPD_LIMITS_OK);
}

/* The third session of that address fits, the fourth does not. */
static int
t_worker_b(struct smtpd_limits *lm)
{
	if (t_admit(lm, "192.0.2.1", NULL) != SMTPD_LIMITS_OK)
		return 1;
	if (t_admit(lm, "::ffff:192.0.2.1", NULL) != SMTPD_LIMITS_OVER)
		return 2;
	if (t_admit(lm, "2001:db8::1", NULL) != SMTPD_LIMITS_OK)
		return 3;
	/* IPv6: one /64 (configured) is one client */
	if (t_admit(lm, "2001:db8::ffff:1", NULL) != SMTPD_LIMITS_OK ||
	    t_admit(lm, "2001:db8::1:2", NULL) != SMTPD_LIMITS_OK)
		return 4;
	if (t_admit(lm, "2001:db8:0:0:8000::", NULL) != SMTPD_LIMITS_OVER)
		return 5;
	if (t_admit(lm, "2001:db8:0:1::1", NULL) != SMTPD_LIMITS_OK)
		return 6;
	return 0;
}

static void
t_across_workers(void)
{
	struct smtpd_limits *lm = smtpd_limits_new(4, 8);

	smtpd_limits_configure(lm, 3, 64, 8, 100);
	t_ok(smtpd_limits_spawn(lm, 0, 8) == 0 &&
		smtpd_limits_spawn(lm, 1, 8) == 0,
	    "two ledgers");
	t_int_eq(t_worker(lm, 0, t_worker_a), 0, "worker A holds two");
	t_int_eq(t_count(lm, "192.0.2.1"), 2, "the master sees them");
	t_int_eq(t_worker(lm, 1, t_worker_b), 0,
	    "worker B: third in, fourth over; an IPv6 /64 is one client");
	t_int_eq(t_count(lm, "192.0.2.1"), 3, "three across workers");
	t_int_eq(t_count(lm, "2001:db8::abcd"), 3, "three of the /64");
	t_int_eq((long long)smtpd_limits_sessions(lm), 7,
	    "seven sessions in all");
	smtpd_limits_reaped(lm, 0);
	t_int_eq(t_count(lm, "192.0.2.1"), 1,
	    "A reaped: only B's session left");
	t_int_eq(t_count(lm, "2001:db8::1"), 3, "B's other addresses kept");
	t_int_eq((long long)smtpd_limits_sessions(lm), 5, "five sessions left");
	smtpd_limits_reaped(lm, 1);
	t_int_eq((long long)smtpd_limits_sessions(lm), 0, "nothing after both");
	smtpd_limits_free(&lm);
}

/* 64 buckets, room for 48 addresses; 100 sessions in the ledger. */
static void
t_many_addresses(void)
{
	struct smtpd_limits *lm = smtpd_limits_new(1, 8);
	int		     idx[60];
	char		     a[64];
	int		     i, ok = 0, untracked = 0, bad = 0;

	smtpd_limits_configure(lm, 2, 128, 8, 100);
	(void)smtpd_limits_spawn(lm, 0, 100);
	smtpd_limits_child(lm, 0); /* this process plays the worker */
	for (i = 0; i < 60; i++) {
		(void)snprintf(a, sizeof(a), "10.0.%d.%d", i % 7, i);
		switch (t_admit(lm, a, &idx[i])) {
		case SMTPD_LIMITS_OK:
			ok++;
			break;
		case SMTPD_LIMITS_UNTRACKED:
			untracked++;
			break;
		default:
			bad++;
		}
	}
	t_int_eq(ok, 48, "48 addresses counted (three quarters of 64)");
	t_int_eq(untracked, 12, "the rest admitted uncounted");
	t_int_eq(bad, 0, "none refused");
	for (i = 0; i < 48; i += 2)
		smtpd_limits_release(lm, idx[i]);
	for (i = 0, bad = 0; i < 48; i++) {
		(void)snprintf(a, sizeof(a), "10.0.%d.%d", i % 7, i);
		if (t_count(lm, a) != (uint32_t)(i % 2))
			bad++;
	}
	t_int_eq(bad, 0, "every count right after releasing half");
	for (i = 0; i < 48; i += 2) {
		(void)snprintf(a, sizeof(a), "10.0.%d.%d", i % 7, i);
		if (t_admit(lm, a, &idx[i]) != SMTPD_LIMITS_OK ||
		    t_admit(lm, a, NULL) == SMTPD_LIMITS_OVER ||
		    t_admit(lm, a, NULL) != SMTPD_LIMITS_OVER)
			bad++;
	}
	t_int_eq(bad, 0, "released addresses come back, up to the limit");
	smtpd_limits_release(lm, -1);
	smtpd_limits_release(lm, idx[59]); /* untracked: nothing to do */
	t_int_eq((long long)smtpd_limits_sessions(lm), 72, "sessions counted");
	smtpd_limits_free(&lm);
}

static void
t_stress(void)
{
	struct smtpd_limits *lm = smtpd_limits_new(1, 10);
	int		     idx[10], i;

	smtpd_limits_configure(lm, 100, 128, 10, 80);
	(void)smtpd_limits_spawn(lm, 0, 10);
	smtpd_limits_child(lm, 0);
	for (i = 0; i < 7; i++)
		(void)t_admit(lm, "198.51.100.7", &idx[i]);
	t_ok(!smtpd_limits_stress(lm), "7 of 10: no stress");
	(void)t_admit(lm, "198.51.100.8", &idx[7]);
	t_ok(smtpd_limits_stress(lm), "8 of 10: stress");
	smtpd_limits_release(lm, idx[7]);
	smtpd_limits_release(lm, idx[6]);
	t_ok(smtpd_limits_stress(lm), "6 of 10: still stress (hysteresis)");
	smtpd_limits_release(lm, idx[5]);
	t_ok(!smtpd_limits_stress(lm), "5 of 10: stress over");
	smtpd_limits_free(&lm);
}

static int
t_worker_retire(struct smtpd_limits *lm)
{
	smtpd_limits_retire(lm);
	smtpd_limits_retire(lm); /* once only */
	return 0;
}

static int
t_worker_die(struct smtpd_limits *lm)
{
	(void)lm;
	return 0;
}

static void
t_retirement(void)
{
	struct smtpd_limits *lm = smtpd_limits_new(3, 8);
	struct pollfd	     pfd[2];
	bool		     retire;

	t_int_eq(smtpd_limits_notice_fd(lm, 1), -1, "no pipe before a spawn");
	(void)smtpd_limits_spawn(lm, 1, 4);
	t_int_eq(t_worker(lm, 1, t_worker_retire), 0, "worker retired");
	(void)smtpd_limits_spawn(lm, 2, 4);
	t_int_eq(t_worker(lm, 2, t_worker_die), 0, "worker died");
	pfd[0] = (struct pollfd){ .fd = smtpd_limits_notice_fd(lm, 1),
		.events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = smtpd_limits_notice_fd(lm, 2),
		.events = POLLIN };
	t_ok(pfd[0].fd != -1 && pfd[1].fd != -1, "two pipes to watch");
	t_ok(poll(pfd, 2, 1000) == 2, "both readable");
	t_int_eq(smtpd_limits_notice(lm, 1, &retire), 1, "slot 1 exited");
	t_ok(retire, "slot 1 retired first");
	t_int_eq(smtpd_limits_notice(lm, 2, &retire), 1, "slot 2 exited");
	t_ok(!retire, "slot 2 died: no notice");
	t_ok(smtpd_limits_notice_fd(lm, 1) == -1 &&
		smtpd_limits_notice_fd(lm, 2) == -1,
	    "pipes closed");
	smtpd_limits_reaped(lm, 1);
	smtpd_limits_reaped(lm, 2);
	smtpd_limits_free(&lm);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "across workers", t_across_workers },
		{ "many addresses", t_many_addresses },
		{ "stress", t_stress },
		{ "retirement", t_retirement },
	};

	return T_RUN(cases);
}
