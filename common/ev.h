/*
 * ev: the one event loop of a process (STYLE M3), poll(2) underneath.
 * Descriptors with read/write interest and a callback; caller-owned
 * timers on one monotonic clock (one-shot, or periodic); signals through
 * common/sig.c's single self-pipe, handed to one callback as SIG_* flags;
 * a thread-safe wake-up (an eventfd owned by the loop); a hook that runs
 * before each poll; ev_break() to stop ev_run().
 *
 * Bounds: at most fd_max descriptors and timer_max armed timers, both
 * fixed at ev_new(); ev_fd_add()/ev_timer_arm() fail with ENOSPC past
 * them (the fd -> slot index grows to the highest fd number watched, so
 * every operation on a descriptor is O(1); a turn is O(watched)). Functions that can fail return 0 or -1 with errno (STYLE E1);
 * a failing poll(2) other than EINTR is fatal (the environment is wrong).
 * Callbacks may add, change or delete descriptors and timers, including
 * their own; a descriptor deleted (or closed and reused) during a turn
 * gets no stale event in that turn.
 *
 * The clock: ev_now_ms() is CLOCK_MONOTONIC in milliseconds, read once
 * per turn of the loop (cheap, the same value for every callback of a
 * turn); ev_clock_ms() reads it fresh (deadlines inside blocking code).
 * The cache is per process and updated by its loop: a forked child sees
 * its parent's value until its own ev_new() or first turn. Only the
 * loop's thread may call anything but ev_wakeup() and ev_clock_ms().
 */
#ifndef SG_EV_H
#define SG_EV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_READ	 0x01 /* interest and readiness */
#define EV_WRITE 0x02
#define EV_HUP \
	0x04 /* readiness only: hang-up or error (POLLHUP|POLLERR|POLLNVAL) */

#define EV_FD_MAX    65536 /* ceiling for ev_new()'s fd_max */
#define EV_TIMER_MAX 4096  /* ceiling for ev_new()'s timer_max */

struct ev;
struct ev_timer;

typedef void ev_fd_cb(struct ev *, int fd, unsigned revents, void *arg);
typedef void ev_timer_cb(struct ev *, struct ev_timer *, void *arg);
typedef void ev_sig_cb(struct ev *, unsigned sigs, void *arg); /* SIG_* flags */
typedef void ev_wake_cb(struct ev *, void *arg);
/* Runs before each poll; returning true makes that poll not wait (work
 * is pending that poll cannot see, e.g. decrypted TLS bytes). */
typedef bool ev_before_cb(struct ev *, void *arg);

/* A timer is the caller's memory; ev only links armed ones. Members are
 * private (set them with ev_timer_init). */
struct ev_timer {
	int64_t	     et_at;	/* due, ev_now_ms() clock */
	int64_t	     et_period; /* 0: one-shot; else re-armed after firing */
	uint64_t     et_seq;	/* arm order: ties fire in it */
	ev_timer_cb *et_cb;
	void	    *et_arg;
	size_t	     et_idx; /* in the armed set, or (size_t)-1 */
};

/* fd_max in 1..EV_FD_MAX, timer_max in 1..EV_TIMER_MAX; NULL with errno
 * (EINVAL, ENOMEM). The returned loop owns its arrays; ev_free() frees. */
struct ev *ev_new(size_t fd_max, size_t timer_max);
void	   ev_free(struct ev **);

/* Watches fd for events (EV_READ|EV_WRITE, may be 0 = parked). -1 with
 * EEXIST (already watched), EBADF (fd < 0), ENOSPC (fd_max reached). */
int ev_fd_add(struct ev *, int fd, unsigned events, ev_fd_cb *, void *arg);
/* Changes the interest of a watched fd; -1 ENOENT if not watched. */
int ev_fd_set(struct ev *, int fd, unsigned events);
/* Stops watching (before close(2)); no-op if not watched. */
void   ev_fd_del(struct ev *, int fd);
size_t ev_fd_count(const struct ev *);

void ev_timer_init(struct ev_timer *, ev_timer_cb *, void *arg);
/* Arms (or re-arms) t to fire delay_ms after ev_now_ms() (delay <= 0:
 * in this turn's timer pass or the next); period_ms > 0 re-arms it that
 * much later each time it fires. -1 ENOSPC if timer_max are armed. */
int ev_timer_arm(struct ev *, struct ev_timer *, int64_t delay_ms,
    int64_t period_ms);
/* Arms t for an absolute ev_now_ms() time; otherwise as ev_timer_arm. */
int  ev_timer_at(struct ev *, struct ev_timer *, int64_t at_ms);
void ev_timer_stop(struct ev *, struct ev_timer *); /* no-op if not armed */
bool ev_timer_armed(const struct ev_timer *);

/* Delivers signals: sig_init() (if not done) and watches sig_fd(); each
 * turn that finds the pipe readable calls cb with sig_take()'s flags.
 * One callback per loop; -1 as ev_fd_add. */
int ev_signal(struct ev *, ev_sig_cb *, void *arg);

/* Creates the loop's eventfd; ev_wakeup() (any thread, or a signal
 * handler) makes the next/current poll return and cb run in the loop. */
int  ev_wakeup_init(struct ev *, ev_wake_cb *, void *arg);
void ev_wakeup(struct ev *);

void ev_before_poll(struct ev *, ev_before_cb *, void *arg);

/*
 * One turn: the before-poll hook, poll(2) until the first armed timer
 * (or max_wait_ms when >= 0 and sooner; -1: no such bound), refresh the
 * clock, descriptor callbacks in registration order, then due timers in
 * due order. Returns the number of callbacks run.
 */
int ev_run_once(struct ev *, int max_wait_ms);
/* Turns until ev_break() (by a callback, or before: the flag stays set;
 * a stop is for good). ev_run_once ignores the flag: a caller turning
 * the loop itself tests ev_broken(). */
void ev_run(struct ev *);
void ev_break(struct ev *);
bool ev_broken(const struct ev *);

int64_t ev_now_ms(void);   /* cached per turn (fresh before the first) */
int64_t ev_clock_ms(void); /* fresh CLOCK_MONOTONIC, milliseconds */
/*
 * Blocking code's wait: polls fd for events (POLLIN, POLLOUT) until it is
 * ready or the ev_clock_ms() deadline passes; EINTR is retried. 0, or -1
 * with errno (ETIMEDOUT at the deadline).
 */
int ev_wait_fd(int fd, short events, int64_t deadline);

#endif
