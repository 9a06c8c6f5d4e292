/*
 * ev: see ev.h. Descriptors live in a slot array of fixed size; each
 * turn builds the pollfd array from the slots in use and remembers each
 * slot's generation, so an fd deleted (and maybe reused) by a callback
 * of the same turn gets no stale event. Armed timers are an unsorted
 * array of pointers: loops here hold a handful, and the minimum is
 * found by a scan (bounded by timer_max).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"
#include "log.h"
#include "sig.h"

struct ev_slot {
	int	  es_fd; /* -1: free */
	unsigned  es_events;
	unsigned  es_gen;
	ev_fd_cb *es_cb;
	void	 *es_arg;
};

struct ev {
	struct ev_slot	 *e_slots;
	size_t		  e_nslots;   /* high-water mark of slots used */
	size_t		 *e_byfd;     /* fd -> slot + 1 (0: not watched) */
	size_t		  e_byfd_len; /* grows to the highest fd watched + 1 */
	size_t		  e_fd_max;
	size_t		  e_nfds;
	struct pollfd	 *e_pfd;
	size_t		 *e_pslot; /* pfd[i] belongs to slot e_pslot[i] */
	unsigned	 *e_pgen;
	struct ev_timer **e_timers;
	size_t		  e_ntimers;
	size_t		  e_timer_max;
	uint64_t	  e_seq;
	ev_sig_cb	 *e_sig_cb;
	void		 *e_sig_arg;
	int		  e_wake_fd;
	ev_wake_cb	 *e_wake_cb;
	void		 *e_wake_arg;
	ev_before_cb	 *e_before;
	void		 *e_before_arg;
	bool		  e_break;
};

#define EV_WAIT_MAX_MS 3600000 /* poll at least hourly (the int timeout) */

static int64_t ev_cached_ms;

int64_t
ev_clock_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
ev_wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t	      left;
	int	      rc;

	for (;;) {
		left = deadline - ev_clock_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
		if (rc > 0)
			return 0;
		if (rc == -1 && errno != EINTR)
			return -1;
	}
}

int64_t
ev_now_ms(void)
{
	if (ev_cached_ms == 0)
		ev_cached_ms = ev_clock_ms();
	return ev_cached_ms;
}

struct ev *
ev_new(size_t fd_max, size_t timer_max)
{
	struct ev *e;
	size_t	   i;

	if (fd_max == 0 || fd_max > EV_FD_MAX || timer_max == 0 ||
	    timer_max > EV_TIMER_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->e_fd_max = fd_max;
	e->e_timer_max = timer_max;
	e->e_wake_fd = -1;
	e->e_slots = calloc(fd_max, sizeof(*e->e_slots));
	e->e_pfd = calloc(fd_max, sizeof(*e->e_pfd));
	e->e_pslot = calloc(fd_max, sizeof(*e->e_pslot));
	e->e_pgen = calloc(fd_max, sizeof(*e->e_pgen));
	e->e_timers = calloc(timer_max, sizeof(*e->e_timers));
	if (e->e_slots == NULL || e->e_pfd == NULL || e->e_pslot == NULL ||
	    e->e_pgen == NULL || e->e_timers == NULL) {
		ev_free(&e);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < fd_max; i++)
		e->e_slots[i].es_fd = -1;
	ev_cached_ms = ev_clock_ms();
	return e;
}

void
ev_free(struct ev **ep)
{
	struct ev *e = *ep;
	size_t	   i;

	if (e == NULL)
		return;
	for (i = 0; i < e->e_ntimers; i++)
		e->e_timers[i]->et_idx = (size_t)-1;
	if (e->e_wake_fd != -1)
		(void)close(e->e_wake_fd); /* ours; nothing was lost */
	free(e->e_slots);
	free(e->e_byfd);
	free(e->e_pfd);
	free(e->e_pslot);
	free(e->e_pgen);
	free(e->e_timers);
	free(e);
	*ep = NULL;
}

/* ---- descriptors */

static struct ev_slot *
ev_slot_find(struct ev *e, int fd)
{
	if (fd < 0 || (size_t)fd >= e->e_byfd_len || e->e_byfd[fd] == 0)
		return NULL;
	return &e->e_slots[e->e_byfd[fd] - 1];
}

/* Room in the fd index for fd; -1 ENOMEM. */
static int
ev_byfd_grow(struct ev *e, int fd)
{
	size_t n = e->e_byfd_len ? e->e_byfd_len : 64, *v;

	if ((size_t)fd < e->e_byfd_len)
		return 0;
	while (n <= (size_t)fd)
		n *= 2;
	if ((v = reallocarray(e->e_byfd, n, sizeof(*v))) == NULL)
		return -1;
	memset(v + e->e_byfd_len, 0, (n - e->e_byfd_len) * sizeof(*v));
	e->e_byfd = v;
	e->e_byfd_len = n;
	return 0;
}

int
ev_fd_add(struct ev *e, int fd, unsigned events, ev_fd_cb *cb, void *arg)
{
	struct ev_slot *s;
	size_t		i;

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (ev_slot_find(e, fd) != NULL) {
		errno = EEXIST;
		return -1;
	}
	if (e->e_nfds == e->e_fd_max) {
		errno = ENOSPC;
		return -1;
	}
	if (ev_byfd_grow(e, fd) == -1)
		return -1;
	for (i = 0; e->e_slots[i].es_fd != -1; i++)
		;
	if (i == e->e_nslots)
		e->e_nslots++;
	s = &e->e_slots[i];
	s->es_fd = fd;
	s->es_events = events & (EV_READ | EV_WRITE);
	s->es_gen++;
	s->es_cb = cb;
	s->es_arg = arg;
	e->e_byfd[fd] = i + 1;
	e->e_nfds++;
	return 0;
}

int
ev_fd_set(struct ev *e, int fd, unsigned events)
{
	struct ev_slot *s;

	if ((s = ev_slot_find(e, fd)) == NULL) {
		errno = ENOENT;
		return -1;
	}
	s->es_events = events & (EV_READ | EV_WRITE);
	return 0;
}

void
ev_fd_del(struct ev *e, int fd)
{
	struct ev_slot *s;

	if ((s = ev_slot_find(e, fd)) == NULL)
		return;
	e->e_byfd[fd] = 0;
	s->es_fd = -1;
	s->es_gen++;
	e->e_nfds--;
	while (e->e_nslots > 0 && e->e_slots[e->e_nslots - 1].es_fd == -1)
		e->e_nslots--;
}

size_t
ev_fd_count(const struct ev *e)
{
	return e->e_nfds;
}

/* ---- timers */

void
ev_timer_init(struct ev_timer *t, ev_timer_cb *cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->et_cb = cb;
	t->et_arg = arg;
	t->et_idx = (size_t)-1;
}

bool
ev_timer_armed(const struct ev_timer *t)
{
	return t->et_idx != (size_t)-1;
}

void
ev_timer_stop(struct ev *e, struct ev_timer *t)
{
	size_t i = t->et_idx;

	if (i == (size_t)-1 || i >= e->e_ntimers || e->e_timers[i] != t)
		return;
	e->e_timers[i] = e->e_timers[--e->e_ntimers];
	e->e_timers[i]->et_idx = i;
	t->et_idx = (size_t)-1;
}

int
ev_timer_at(struct ev *e, struct ev_timer *t, int64_t at_ms)
{
	if (!ev_timer_armed(t)) {
		if (e->e_ntimers == e->e_timer_max) {
			errno = ENOSPC;
			return -1;
		}
		t->et_idx = e->e_ntimers;
		e->e_timers[e->e_ntimers++] = t;
	}
	t->et_at = at_ms;
	t->et_seq = ++e->e_seq;
	return 0;
}

int
ev_timer_arm(struct ev *e, struct ev_timer *t, int64_t delay_ms,
    int64_t period_ms)
{
	t->et_period = period_ms > 0 ? period_ms : 0;
	return ev_timer_at(e, t, ev_now_ms() + delay_ms);
}

/* The armed timer due first (ties: armed first); NULL if none. */
static struct ev_timer *
ev_timer_first(const struct ev *e, uint64_t before_seq)
{
	struct ev_timer *best = NULL, *t;
	size_t		 i;

	for (i = 0; i < e->e_ntimers; i++) {
		t = e->e_timers[i];
		if (t->et_seq >= before_seq)
			continue;
		if (best == NULL || t->et_at < best->et_at ||
		    (t->et_at == best->et_at && t->et_seq < best->et_seq))
			best = t;
	}
	return best;
}

/* Fires the timers due now; ones (re-)armed by a callback of this pass
 * wait for the next turn, so a zero delay cannot spin here. */
static int
ev_timers_fire(struct ev *e)
{
	uint64_t	 seq = e->e_seq + 1;
	struct ev_timer *t;
	int		 n = 0;

	while (
	    (t = ev_timer_first(e, seq)) != NULL && t->et_at <= ev_cached_ms) {
		ev_timer_stop(e, t);
		if (t->et_period > 0)
			(void)ev_timer_at(e, t, ev_cached_ms + t->et_period);
		t->et_cb(e, t, t->et_arg);
		n++;
	}
	return n;
}

/* ---- signals, wake-up, hook */

static void
ev_sig_ready(struct ev *e, int fd, unsigned revents, void *arg)
{
	unsigned sigs;

	(void)fd;
	(void)revents;
	(void)arg;
	if ((sigs = sig_take()) != 0 && e->e_sig_cb != NULL)
		e->e_sig_cb(e, sigs, e->e_sig_arg);
}

int
ev_signal(struct ev *e, ev_sig_cb *cb, void *arg)
{
	if (sig_fd() == -1)
		sig_init();
	e->e_sig_cb = cb;
	e->e_sig_arg = arg;
	if (ev_slot_find(e, sig_fd()) != NULL)
		return 0;
	return ev_fd_add(e, sig_fd(), EV_READ, ev_sig_ready, NULL);
}

static void
ev_wake_ready(struct ev *e, int fd, unsigned revents, void *arg)
{
	uint64_t v;

	(void)revents;
	(void)arg;
	if (read(fd, &v, sizeof(v)) == -1) {
		/* EAGAIN: another turn took it; the callback runs anyway */
	}
	if (e->e_wake_cb != NULL)
		e->e_wake_cb(e, e->e_wake_arg);
}

int
ev_wakeup_init(struct ev *e, ev_wake_cb *cb, void *arg)
{
	e->e_wake_cb = cb;
	e->e_wake_arg = arg;
	if (e->e_wake_fd != -1)
		return 0;
	if ((e->e_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return -1;
	if (ev_fd_add(e, e->e_wake_fd, EV_READ, ev_wake_ready, NULL) == -1) {
		(void)close(e->e_wake_fd);
		e->e_wake_fd = -1;
		return -1;
	}
	return 0;
}

void
ev_wakeup(struct ev *e)
{
	uint64_t one = 1;
	int	 saved = errno;

	if (write(e->e_wake_fd, &one, sizeof(one)) == -1) {
		/* counter saturated: the loop is awake already */
	}
	errno = saved;
}

void
ev_before_poll(struct ev *e, ev_before_cb *cb, void *arg)
{
	e->e_before = cb;
	e->e_before_arg = arg;
}

/* ---- the loop */

static short
ev_pollev(unsigned events)
{
	return (short)(((events & EV_READ) ? POLLIN : 0) |
	    ((events & EV_WRITE) ? POLLOUT : 0));
}

static unsigned
ev_revents(short re)
{
	return ((re & POLLIN) ? EV_READ : 0) | ((re & POLLOUT) ? EV_WRITE : 0) |
	    ((re & (POLLHUP | POLLERR | POLLNVAL)) ? EV_HUP : 0);
}

/* Milliseconds poll may wait: until the first timer, bounded by max. */
static int
ev_timeout(const struct ev *e, int max_wait_ms, bool now)
{
	const struct ev_timer *t = ev_timer_first(e, UINT64_MAX);
	int64_t		       ms = max_wait_ms;

	if (now)
		return 0;
	if (t != NULL) {
		if (t->et_at <= ev_cached_ms)
			return 0;
		if (ms < 0 || t->et_at - ev_cached_ms < ms)
			ms = t->et_at - ev_cached_ms;
	}
	if (ms > EV_WAIT_MAX_MS)
		ms = EV_WAIT_MAX_MS;
	return ms < 0 ? -1 : (int)ms;
}

static size_t
ev_build(struct ev *e)
{
	size_t i, n = 0;

	for (i = 0; i < e->e_nslots; i++) {
		if (e->e_slots[i].es_fd == -1)
			continue;
		e->e_pfd[n] = (struct pollfd){ .fd = e->e_slots[i].es_fd,
			.events = ev_pollev(e->e_slots[i].es_events) };
		e->e_pslot[n] = i;
		e->e_pgen[n++] = e->e_slots[i].es_gen;
	}
	return n;
}

static int
ev_dispatch(struct ev *e, size_t n)
{
	struct ev_slot *s;
	unsigned	re;
	size_t		i;
	int		ran = 0;

	for (i = 0; i < n; i++) {
		if (e->e_pfd[i].revents == 0)
			continue;
		s = &e->e_slots[e->e_pslot[i]];
		if (s->es_gen != e->e_pgen[i] || s->es_fd != e->e_pfd[i].fd)
			continue; /* deleted (or reused) by a callback */
		/* interest dropped since the poll: not wanted now */
		re = ev_revents(e->e_pfd[i].revents) & (s->es_events | EV_HUP);
		if (re == 0)
			continue;
		s->es_cb(e, s->es_fd, re, s->es_arg);
		ran++;
	}
	return ran;
}

int
ev_run_once(struct ev *e, int max_wait_ms)
{
	bool   busy = false;
	size_t n;
	int    rc, ran;

	ev_cached_ms = ev_clock_ms();
	if (e->e_before != NULL)
		busy = e->e_before(e, e->e_before_arg);
	n = ev_build(e);
	rc = poll(e->e_pfd, (nfds_t)n, ev_timeout(e, max_wait_ms, busy));
	if (rc == -1 && errno != EINTR)
		log_fatal("poll");
	ev_cached_ms = ev_clock_ms();
	ran = rc > 0 ? ev_dispatch(e, n) : 0;
	return ran + ev_timers_fire(e);
}

void
ev_run(struct ev *e)
{
	while (!e->e_break)
		(void)ev_run_once(e, -1);
}

void
ev_break(struct ev *e)
{
	e->e_break = true;
}

bool
ev_broken(const struct ev *e)
{
	return e->e_break;
}
