/* Unit tests for common/kids: spawn, reap, back-off, retire, stop. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev.h"
#include "kids.h"
#include "sig.h"
#include "tap.h"

#define T_TURN_MS 500

enum t_mode { T_EXIT0, T_EXIT1, T_SLEEP, T_IGNORE_TERM };

struct t_sup {
	enum t_mode mode;
	int	    spawns;
	int	    exits;
	int	    retired_exits;
	int	    last_status;
	int64_t	    last_delay;
	int64_t	    starts[16];
	bool	    fail_spawn;
};

static void
kid_body(void *arg)
{
	enum t_mode m = *(enum t_mode *)arg;

	switch (m) {
	case T_EXIT0:
		_exit(0);
	case T_EXIT1:
		_exit(1);
	case T_SLEEP:
		/* the inherited handler: SIGTERM may come before anything here */
		while (!sig_stopping())
			(void)usleep(10000);
		_exit(0);
	case T_IGNORE_TERM:
		(void)signal(SIGTERM, SIG_IGN);
		for (;;)
			(void)pause();
	}
}

static pid_t
t_spawn(struct kids *k, size_t slot, void *arg)
{
	struct t_sup *s = arg;

	(void)k;
	(void)slot;
	if (s->fail_spawn)
		return -1;
	if (s->spawns < 16)
		s->starts[s->spawns] = ev_clock_ms();
	s->spawns++;
	return kids_fork_fn(kid_body, &s->mode);
}

static void
t_exit(struct kids *k, size_t slot, pid_t pid, int status, int64_t delay,
    void *arg)
{
	struct t_sup *s = arg;

	(void)k;
	(void)pid;
	if (slot == KIDS_RETIRED)
		s->retired_exits++;
	else
		s->exits++;
	s->last_status = status;
	s->last_delay = delay;
}

static void
t_on_sig(struct ev *e, unsigned sigs, void *arg)
{
	(void)e;
	if (sigs & SIG_CHLD)
		kids_reap(arg);
}

/* Turns the loop until cond or n turns. */
#define TURN_UNTIL(e, cond, n) \
	do { \
		int i_; \
		for (i_ = 0; i_ < (n) && !(cond); i_++) \
			(void)ev_run_once((e), T_TURN_MS); \
	} while (0)

static const struct kids_policy smtpd_like = {
	.kp_retry_ms = 1000,
	.kp_young_ms = 10000,
	.kp_base_ms = 100,
	.kp_max_ms = 300,
};

static void
t_spawn_reap(void)
{
	struct ev   *e = ev_new(4, 4);
	struct t_sup s = { .mode = T_SLEEP };
	struct kids *k = kids_new(e, 2, 2, &smtpd_like, t_spawn, t_exit, &s);
	pid_t	     p0;

	t_ok(k != NULL, "kids_new");
	t_ok(ev_signal(e, t_on_sig, k) == 0, "signals");
	kids_start(k);
	t_int_eq(s.spawns, 2, "both slots started");
	t_int_eq(kids_alive(k), 2, "two alive");
	p0 = kids_pid(k, 0);
	t_ok(p0 > 0 && kill(p0, 0) == 0, "slot 0 runs a real child");
	(void)kill(p0, SIGKILL);
	TURN_UNTIL(e, s.exits == 1, 20);
	t_int_eq(s.exits, 1, "reaped on SIG_CHLD");
	t_ok(WIFSIGNALED(s.last_status) && WTERMSIG(s.last_status) == SIGKILL,
	    "status handed to the exit callback");
	t_ok(s.last_delay == 100,
	    "young crash: first back-off 100 ms (got %lld)",
	    (long long)s.last_delay);
	TURN_UNTIL(e, s.spawns == 3, 20);
	t_int_eq(s.spawns, 3, "slot restarted by the loop timer");
	t_ok(kids_pid(k, 0) > 0 && kids_pid(k, 0) != p0, "new pid in slot 0");
	t_ok(waitpid(p0, NULL, WNOHANG) == -1 && errno == ECHILD,
	    "no zombie left");

	/* replacement before retirement */
	p0 = kids_pid(k, 1);
	t_ok(kids_retire(k, 1, 0) == 0, "retire slot 1");
	t_int_eq(s.spawns, 4, "replacement started at once");
	t_int_eq(kids_alive(k), 3, "retired one still counted");
	t_ok(kill(p0, 0) == 0, "retired child still running");
	t_ok(kids_retire(k, 1, 0) == 0 && kids_retire(k, 0, 0) == -1 &&
		errno == ENOSPC,
	    "max_retired bounds the retiring");
	t_int_eq(kids_nretired(k), 2, "two retiring");
	t_int_eq(kids_stop(k, SIGTERM, 2000), 0,
	    "all stop on SIGTERM in the grace");
	t_int_eq(kids_alive(k), 0, "none alive");
	t_int_eq(s.retired_exits, 2, "retired exits reported as such");
	kids_free(&k);
	ev_free(&e);
}

static void
t_backoff(void)
{
	struct ev   *e = ev_new(4, 4);
	struct t_sup s = { .mode = T_EXIT1 };
	struct kids *k = kids_new(e, 1, 1, &smtpd_like, t_spawn, t_exit, &s);

	(void)ev_signal(e, t_on_sig, k);
	kids_start(k);
	/* exits at once, every time: 100, 200, 300 (cap), 300 ms apart */
	TURN_UNTIL(e, s.spawns >= 5, 40);
	t_ok(s.spawns >= 5, "restarted (got %d)", s.spawns);
	t_ok(s.starts[1] - s.starts[0] >= 100, "1st back-off >= 100 ms (%lld)",
	    (long long)(s.starts[1] - s.starts[0]));
	t_ok(s.starts[2] - s.starts[1] >= 200, "2nd back-off doubles (%lld)",
	    (long long)(s.starts[2] - s.starts[1]));
	t_ok(s.starts[3] - s.starts[2] >= 300 &&
		s.starts[4] - s.starts[3] >= 300,
	    "then capped at kp_max_ms");
	t_ok(s.last_delay <= 300, "delay reported capped (%lld)",
	    (long long)s.last_delay);
	(void)kids_stop(k, SIGTERM, 1000);

	/* a clean exit does not back off unless kp_clean_fails */
	kids_free(&k);
	memset(&s, 0, sizeof(s));
	s.mode = T_EXIT0;
	k = kids_new(e, 1, 0, &smtpd_like, t_spawn, t_exit, &s);
	(void)ev_signal(e, t_on_sig, k);
	kids_start(k);
	TURN_UNTIL(e, s.exits >= 1, 20);
	t_ok(s.exits >= 1 && s.last_delay == 0, "clean exit: restart at once");
	(void)kids_stop(k, SIGTERM, 1000);
	kids_free(&k);

	/* deliverd's policy: at most one start a second */
	memset(&s, 0, sizeof(s));
	s.mode = T_EXIT1;
	k = kids_new(e, 1, 0,
	    &(struct kids_policy){ .kp_interval_ms = 1000,
		.kp_retry_ms = 1000 },
	    t_spawn, t_exit, &s);
	(void)ev_signal(e, t_on_sig, k);
	kids_start(k);
	TURN_UNTIL(e, s.spawns >= 2, 20);
	t_ok(s.spawns == 2 && s.starts[1] - s.starts[0] >= 1000,
	    "interval: second start a second after the first (%lld)",
	    (long long)(s.starts[1] - s.starts[0]));
	(void)kids_stop(k, SIGTERM, 1000);
	kids_free(&k);

	/* a failed spawn is retried after kp_retry_ms */
	memset(&s, 0, sizeof(s));
	s.mode = T_SLEEP;
	s.fail_spawn = true;
	k = kids_new(e, 1, 0, &smtpd_like, t_spawn, t_exit, &s);
	(void)ev_signal(e, t_on_sig, k);
	kids_start(k);
	t_int_eq(kids_alive(k), 0, "spawn failed");
	s.fail_spawn = false;
	kids_start(k);
	t_int_eq(s.spawns, 0, "not retried before kp_retry_ms");
	TURN_UNTIL(e, s.spawns == 1, 20);
	t_int_eq(s.spawns, 1, "retried by the timer");
	(void)kids_stop(k, SIGTERM, 1000);
	kids_free(&k);
	ev_free(&e);
}

static void
t_stop_grace(void)
{
	struct ev   *e = ev_new(4, 4);
	struct t_sup s = { .mode = T_IGNORE_TERM };
	struct kids *k = kids_new(e, 2, 1, &smtpd_like, t_spawn, t_exit, &s);
	int64_t	     t0;

	kids_start(k);
	(void)usleep(100000); /* let the children install SIG_IGN */
	t0 = ev_clock_ms();
	t_int_eq(kids_stop(k, SIGTERM, 300), 2, "two ignored SIGTERM: killed");
	t_ok(ev_clock_ms() - t0 >= 300, "after the grace period");
	t_int_eq(kids_alive(k), 0, "none alive");
	t_int_eq(s.exits, 2, "both reported");
	t_ok(WIFSIGNALED(s.last_status) && WTERMSIG(s.last_status) == SIGKILL,
	    "by SIGKILL");
	t_ok(s.last_delay == -1, "held: no restart scheduled");
	kids_start(k);
	t_int_eq(s.spawns, 2, "held after stop: nothing restarts");
	t_int_eq(kids_resize(k, 3), 0, "resize up");
	t_int_eq(kids_nslots(k), 3, "three slots");
	kids_hold(k, false);
	TURN_UNTIL(e, kids_alive(k) == 3, 20);
	t_int_eq(kids_alive(k), 3, "released: all three start");
	t_ok(kids_resize(k, 1) == -1 && errno == EBUSY,
	    "cannot drop running slots");
	(void)kids_stop(k, SIGKILL, 1000);
	kids_free(&k);
	ev_free(&e);
}

static void
t_exec(void)
{
	char *const argv[] = { "true", NULL };
	char *const bad[] = { "nope", NULL };
	pid_t	    pid;
	int	    st;

	pid = kids_fork_exec("/bin/true", argv);
	t_ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		WEXITSTATUS(st) == 0,
	    "fork+exec runs the program");
	pid = kids_fork_exec("/nonexistent/nope", bad);
	t_ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		WEXITSTATUS(st) == 127,
	    "failed exec: 127");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "spawn_reap", t_spawn_reap },
		{ "backoff", t_backoff },
		{ "stop_grace", t_stop_grace },
		{ "exec", t_exec },
	};

	sig_init();
	return T_RUN(cases);
}
