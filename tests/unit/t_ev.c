/* Unit tests for common/ev: timers, descriptors, signals, wake-up, caps. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ev.h"
#include "sig.h"
#include "tap.h"

/* Every wait in these tests is bounded: a turn never sleeps past this. */
#define T_TURN_MS 2000
#define T_TURNS	  50

struct rec {
	char   log[64];
	size_t n;
};

static void
rec_add(struct rec *r, char c)
{
	if (r->n + 1 < sizeof(r->log)) {
		r->log[r->n++] = c;
		r->log[r->n] = '\0';
	}
}

struct tmr {
	struct ev_timer t;
	struct rec     *r;
	char		c;
	int		left; /* periodic: stop after this many */
};

static void
on_timer(struct ev *e, struct ev_timer *t, void *arg)
{
	struct tmr *m = arg;

	(void)t;
	rec_add(m->r, m->c);
	if (m->left > 0 && --m->left == 0)
		ev_timer_stop(e, &m->t);
	if (m->c == 'z')
		ev_break(e);
}

static void
run_bounded(struct ev *e)
{
	int i;

	for (i = 0; i < T_TURNS && !ev_broken(e); i++)
		(void)ev_run_once(e, T_TURN_MS);
}

static void
t_timers_order(void)
{
	struct ev *e = ev_new(8, 8);
	struct rec r = { .n = 0 };
	struct tmr a = { .r = &r, .c = 'a' }, b = { .r = &r, .c = 'b' },
		   c = { .r = &r, .c = 'c' }, z = { .r = &r, .c = 'z' },
		   p = { .r = &r, .c = 'p', .left = 3 };
	int64_t t0 = ev_now_ms(); /* what the timers are armed from */

	t_ok(e != NULL, "ev_new");
	ev_timer_init(&a.t, on_timer, &a);
	ev_timer_init(&b.t, on_timer, &b);
	ev_timer_init(&c.t, on_timer, &c);
	ev_timer_init(&z.t, on_timer, &z);
	ev_timer_init(&p.t, on_timer, &p);
	/* armed out of order; c and a due at the same time: arm order */
	t_ok(ev_timer_arm(e, &b.t, 60, 0) == 0, "arm b");
	t_ok(ev_timer_arm(e, &c.t, 30, 0) == 0, "arm c");
	t_ok(ev_timer_arm(e, &a.t, 30, 0) == 0, "arm a");
	t_ok(ev_timer_arm(e, &z.t, 1000, 0) == 0, "arm z");
	t_ok(ev_timer_arm(e, &p.t, 100, 100) == 0, "arm periodic p");
	t_ok(ev_timer_armed(&b.t), "b armed");
	/* re-arming moves a timer: b now fires after p's first tick */
	t_ok(ev_timer_arm(e, &b.t, 150, 0) == 0, "re-arm b");
	run_bounded(e);
	t_str_eq(r.log, "capbppz", "fired in due order, p three times");
	t_ok(ev_clock_ms() - t0 >= 1000, "z did not fire early");
	t_ok(!ev_timer_armed(&a.t) && !ev_timer_armed(&p.t),
	    "one-shots and "
	    "the stopped periodic are disarmed");
	ev_timer_arm(e, &a.t, 10, 0);
	ev_timer_stop(e, &a.t);
	t_ok(!ev_timer_armed(&a.t), "stop disarms");
	ev_free(&e);
	t_ok(e == NULL, "ev_free clears the pointer");
}

struct fdrec {
	int  reads, writes, hups;
	char got[16];
	int  other_fd; /* deleted by the callback */
};

static void
on_fd(struct ev *e, int fd, unsigned re, void *arg)
{
	struct fdrec *f = arg;
	ssize_t	      n;

	if (re & EV_READ) {
		f->reads++;
		n = read(fd, f->got, sizeof(f->got) - 1);
		f->got[n > 0 ? n : 0] = '\0';
		if (f->other_fd != -1) {
			ev_fd_del(e, f->other_fd);
			f->other_fd = -1;
		}
	}
	if (re & EV_WRITE) {
		f->writes++;
		(void)ev_fd_set(e, fd, 0); /* once is enough */
	}
	if (re & EV_HUP)
		f->hups++;
}

static void
t_fds(void)
{
	struct ev   *e = ev_new(4, 1);
	struct fdrec f = { .other_fd = -1 }, g = { .other_fd = -1 };
	int	     p[2], q[2];

	t_ok(pipe(p) == 0 && pipe(q) == 0, "pipes");
	t_ok(ev_fd_add(e, p[0], EV_READ, on_fd, &f) == 0, "add read end");
	t_ok(ev_fd_add(e, p[0], EV_READ, on_fd, &f) == -1 && errno == EEXIST,
	    "twice: EEXIST");
	t_ok(ev_fd_add(e, -1, EV_READ, on_fd, &f) == -1 && errno == EBADF,
	    "-1: EBADF");
	t_ok(ev_fd_add(e, p[1], EV_WRITE, on_fd, &g) == 0, "add write end");
	t_int_eq(ev_run_once(e, 0), 1, "only the writable end is ready");
	t_int_eq(g.writes, 1, "write callback ran");
	t_int_eq(ev_run_once(e, 0), 0, "interest 0: parked");
	t_ok(write(p[1], "hi", 2) == 2, "write");
	t_int_eq(ev_run_once(e, T_TURN_MS), 1, "read ready");
	t_int_eq(f.reads, 1, "read callback ran once");
	t_str_eq(f.got, "hi", "read the bytes");
	t_ok(ev_fd_set(e, 99, EV_READ) == -1 && errno == ENOENT,
	    "set unknown: ENOENT");

	/* q[0] readable in the same turn, deleted by p[0]'s callback first */
	t_ok(ev_fd_add(e, q[0], EV_READ, on_fd, &g) == 0, "add q");
	f.other_fd = q[0];
	t_ok(write(p[1], "x", 1) == 1 && write(q[1], "y", 1) == 1,
	    "both ready");
	(void)ev_run_once(e, T_TURN_MS);
	t_int_eq(g.reads, 0,
	    "no event for a descriptor deleted during the turn");
	t_int_eq(ev_fd_count(e), 2, "two left");
	(void)close(p[1]);
	f.reads = 0;
	(void)ev_run_once(e, T_TURN_MS);
	t_ok(f.hups + f.reads >= 1, "hang-up reported");
	ev_fd_del(e, p[0]);
	ev_fd_del(e, p[1]);
	ev_fd_del(e, p[0]); /* twice: no-op */
	/* a high descriptor number: the fd index grows */
	t_ok(dup2(q[0], 900) == 900, "dup2 to 900");
	t_ok(ev_fd_add(e, 900, EV_READ, on_fd, &g) == 0, "add fd 900");
	t_ok(write(q[1], "z", 1) == 1, "write");
	g.reads = 0;
	(void)ev_run_once(e, T_TURN_MS);
	t_int_eq(g.reads, 1, "fd 900 read");
	ev_fd_del(e, 900);
	(void)close(900);
	t_int_eq(ev_fd_count(e), 0, "all gone");
	(void)close(p[0]);
	(void)close(q[0]);
	(void)close(q[1]);
	ev_free(&e);
}

static unsigned got_sigs;
static int	sig_calls;

static void
on_sig(struct ev *e, unsigned sigs, void *arg)
{
	(void)arg;
	got_sigs |= sigs;
	sig_calls++;
	if (sigs & SIG_TERM)
		ev_break(e);
}

static void
t_signals(void)
{
	struct ev *e = ev_new(4, 1);
	int	   i;

	t_ok(ev_signal(e, on_sig, NULL) == 0, "ev_signal");
	t_int_eq(ev_fd_count(e), 1, "the one self-pipe is watched");
	t_ok(ev_signal(e, on_sig, NULL) == 0 && ev_fd_count(e) == 1,
	    "again: still one pipe");
	raise(SIGHUP);
	raise(SIGUSR1);
	(void)ev_run_once(e, T_TURN_MS);
	t_int_eq(got_sigs, SIG_HUP | SIG_USR1,
	    "flags delivered to the callback");
	t_int_eq(sig_calls, 1, "in one call");
	got_sigs = 0;
	raise(SIGTERM);
	for (i = 0; i < T_TURNS && !ev_broken(e); i++)
		(void)ev_run_once(e, T_TURN_MS);
	t_ok(ev_broken(e) && (got_sigs & SIG_TERM), "SIGTERM breaks the loop");
	ev_free(&e);
}

struct waker {
	struct ev *e;
	int	   woken;
};

static void *
waker_thread(void *arg)
{
	struct waker *w = arg;

	(void)usleep(50000);
	ev_wakeup(w->e);
	return NULL;
}

static void
on_wake(struct ev *e, void *arg)
{
	struct waker *w = arg;

	w->woken++;
	ev_break(e);
}

static void
t_wakeup(void)
{
	struct waker w = { .e = ev_new(2, 1) };
	pthread_t    th;
	int	     i;

	t_ok(ev_wakeup_init(w.e, on_wake, &w) == 0, "wakeup init");
	t_ok(pthread_create(&th, NULL, waker_thread, &w) == 0, "thread");
	/* no timer, no bound: only the wake-up can end this turn */
	for (i = 0; i < 3 && !ev_broken(w.e); i++)
		(void)ev_run_once(w.e, 10 * T_TURN_MS);
	t_ok(pthread_join(th, NULL) == 0, "join");
	t_int_eq(w.woken, 1, "woken once from the other thread");
	ev_wakeup(w.e);
	ev_wakeup(w.e);
	(void)ev_run_once(w.e, T_TURN_MS);
	t_int_eq(w.woken, 2, "two wake-ups before a turn: one callback");
	ev_free(&w.e);
}

static bool
before_busy(struct ev *e, void *arg)
{
	int *n = arg;

	(void)e;
	return ++*n < 3;
}

static void
t_before_and_caps(void)
{
	struct ev *e = ev_new(2, 2);
	struct rec r = { .n = 0 };
	struct tmr a = { .r = &r, .c = 'a' }, b = { .r = &r, .c = 'b' },
		   c = { .r = &r, .c = 'c' };
	int	p[2], q[2], n = 0;
	int64_t t0;

	t_ok(ev_new(0, 1) == NULL && errno == EINVAL, "fd_max 0: EINVAL");
	t_ok(ev_new(1, EV_TIMER_MAX + 1) == NULL && errno == EINVAL,
	    "too many timers: EINVAL");
	t_ok(pipe(p) == 0 && pipe(q) == 0, "pipes");
	t_ok(ev_fd_add(e, p[0], EV_READ, on_fd, NULL) == 0 &&
		ev_fd_add(e, p[1], 0, on_fd, NULL) == 0,
	    "two fds");
	t_ok(ev_fd_add(e, q[0], EV_READ, on_fd, NULL) == -1 && errno == ENOSPC,
	    "third fd: ENOSPC");
	ev_fd_del(e, p[1]);
	t_ok(ev_fd_add(e, q[0], EV_READ, on_fd, NULL) == 0,
	    "a freed slot is reused");
	ev_timer_init(&a.t, on_timer, &a);
	ev_timer_init(&b.t, on_timer, &b);
	ev_timer_init(&c.t, on_timer, &c);
	t_ok(ev_timer_arm(e, &a.t, 10000, 0) == 0 &&
		ev_timer_arm(e, &b.t, 10000, 0) == 0,
	    "two timers");
	t_ok(ev_timer_arm(e, &c.t, 1, 0) == -1 && errno == ENOSPC,
	    "third timer: ENOSPC");
	t_ok(ev_timer_arm(e, &a.t, 10000, 0) == 0,
	    "re-arming an armed one needs no room");
	/* the hook says busy twice: those polls must not wait for the timers */
	ev_before_poll(e, before_busy, &n);
	t0 = ev_clock_ms();
	(void)ev_run_once(e, -1);
	(void)ev_run_once(e, -1);
	t_int_eq(n, 2, "hook ran before each poll");
	t_ok(ev_clock_ms() - t0 < 10000,
	    "busy hook: no wait for the 10 s timers");
	t_str_eq(r.log, "", "no timer fired");
	(void)close(p[0]);
	(void)close(p[1]);
	(void)close(q[0]);
	(void)close(q[1]);
	ev_free(&e);
}

static void
t_clock(void)
{
	int64_t a = ev_now_ms(), b = ev_clock_ms();

	t_ok(a > 0 && b >= a, "monotonic, cached not ahead of fresh");
	(void)usleep(20000);
	t_ok(ev_now_ms() == a, "cached value stays between turns");
	t_ok(ev_clock_ms() >= b + 20, "fresh read moves");
}

/* ev_wait_fd: ready at once, a deadline passed, a deadline reached. */
static void
t_wait_fd(void)
{
	int p[2];

	if (!t_ok(pipe(p) == 0, "pipe"))
		return;
	t_int_eq(ev_wait_fd(p[1], POLLOUT, ev_clock_ms() + 1000), 0,
	    "writable at once");
	errno = 0;
	t_ok(ev_wait_fd(p[0], POLLIN, ev_clock_ms() - 1) == -1 &&
		errno == ETIMEDOUT,
	    "a passed deadline: ETIMEDOUT without waiting");
	errno = 0;
	t_ok(ev_wait_fd(p[0], POLLIN, ev_clock_ms() + 30) == -1 &&
		errno == ETIMEDOUT,
	    "nothing to read by the deadline: ETIMEDOUT");
	t_int_eq(write(p[1], "x", 1), 1, "write one byte");
	t_int_eq(ev_wait_fd(p[0], POLLIN, ev_clock_ms() + 1000), 0,
	    "then readable");
	(void)close(p[0]);
	(void)close(p[1]);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "timers_order", t_timers_order },
		{ "fds", t_fds },
		{ "signals", t_signals },
		{ "wakeup", t_wakeup },
		{ "before_and_caps", t_before_and_caps },
		{ "clock", t_clock },
		{ "wait_fd", t_wait_fd },
	};

	return T_RUN(cases);
}
