/*
 * kids: child supervision, once, for smtpd's master and deliverd's
 * scheduler. A fixed set of slots, each running at most one child; the
 * caller's spawn callback forks (kids_fork_fn/kids_fork_exec, or its own
 * fork with pre/post work) and returns the pid; kids_reap() (on
 * SIG_CHLD) hands each exit to the exit callback and schedules the
 * slot's restart on the loop with the slot's back-off policy. A child
 * can be retired: it keeps running (and is reaped, signalled, counted)
 * while its slot starts a replacement at once.
 *
 * Slots start in index order (a helper every other child needs goes in
 * slot 0). The callbacks may call kids_retire() and kids_signal().
 * Bounds: nslots and max_retired fixed at kids_new() (kids_resize()
 * changes nslots). Functions that can fail return 0 or -1 with errno.
 * kids never logs: the callbacks log in the daemon's own words.
 */
#ifndef SG_KIDS_H
#define SG_KIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KIDS_SLOTS_MAX 4096
#define KIDS_RETIRED   ((size_t)-1) /* exit callback: a retired child */
#define KIDS_SHIFT_MAX 5	    /* back-off doubles at most 5 times */

struct ev;
struct kids;

struct kids_policy {
	int64_t kp_interval_ms; /* at least this between two starts of a slot */
	int64_t kp_retry_ms; /* after a failed spawn (callback returned -1) */
	int64_t kp_young_ms; /* a failure younger than this backs off; 0: never */
	int64_t kp_base_ms; /* back-off: base << min(fails-1, KIDS_SHIFT_MAX) */
	int64_t kp_max_ms;  /* ... capped here */
	bool kp_clean_fails; /* a young exit 0 backs off too (else only crashes) */
};

/* Returns the child's pid, or -1 (retried after kp_retry_ms). */
typedef pid_t kids_spawn_cb(struct kids *, size_t slot, void *arg);
/* A child was reaped: slot (or KIDS_RETIRED), its wait status, and the
 * delay before the slot starts again (0: at once; -1: held/stopping). */
typedef void kids_exit_cb(struct kids *, size_t slot, pid_t, int status,
    int64_t delay_ms, void *arg);

/* Slots start empty and are started by kids_start(). NULL with errno. */
struct kids *kids_new(struct ev *, size_t nslots, size_t max_retired,
    const struct kids_policy *, kids_spawn_cb *, kids_exit_cb *, void *arg);
void	     kids_free(struct kids **); /* forgets children, kills none */
void kids_set_policy(struct kids *, size_t slot, const struct kids_policy *);
/* -1 EBUSY if a slot beyond n runs a child; new slots are empty. */
int    kids_resize(struct kids *, size_t n);
size_t kids_nslots(const struct kids *);

/* Starts every empty slot that is due; arms the loop timer for the next. */
void kids_start(struct kids *);
/* Reaps every exited child (waitpid WNOHANG), then kids_start(). */
void kids_reap(struct kids *);
/* Replacement before retirement: the slot's child is signalled with
 * signo (0: none) and kept as retired; the slot starts a new one now.
 * -1 ESRCH (slot empty) or ENOSPC (max_retired retiring already). */
int    kids_retire(struct kids *, size_t slot, int signo);
size_t kids_nretired(const struct kids *);

pid_t	kids_pid(const struct kids *, size_t slot); /* 0: empty */
int64_t kids_started_ms(const struct kids *, size_t slot);
size_t	kids_alive(const struct kids *);       /* slots + retired */
void	kids_signal(struct kids *, int signo); /* every live child */
/* While held nothing is (re)started (stopping, or a reload in progress). */
void kids_hold(struct kids *, bool);
/*
 * Stops all: hold, signo to every child, reap until none is left or
 * grace_ms passed, then SIGKILL and wait for the rest. Returns how many
 * had to be killed. Blocks (polls the signal pipe only).
 */
size_t kids_stop(struct kids *, int signo, int64_t grace_ms);

/* fork(); the child keeps the handlers, gets its own self-pipe
 * (sig_child) and runs fn(arg) (which should not return; _exit(0) if it
 * does). Returns the pid, or -1. */
pid_t kids_fork_fn(void (*fn)(void *), void *arg);
/* fork() + execv(path, argv) with default signal dispositions; the
 * child _exit(127)s if exec fails. */
pid_t kids_fork_exec(const char *path, char *const argv[]);

#endif
