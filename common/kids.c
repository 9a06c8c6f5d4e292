/*
 * kids: see kids.h. The numbers are the daemons' (smtpd: a crash
 * younger than 10 s backs off 1 s, 2 s, ... 30 s; deliverd: a slot
 * starts at most once a second); they come in as a policy per slot.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev.h"
#include "kids.h"
#include "metrics.h"
#include "sig.h"

#define KIDS_STOP_POLL_MS 200

struct kids_slot {
	pid_t		   ks_pid;     /* 0: empty */
	int64_t		   ks_started; /* 0: never */
	int64_t		   ks_due;     /* next start not before */
	unsigned	   ks_fails;
	struct kids_policy ks_pol;
};

struct kids {
	struct ev	  *kd_ev;
	struct ev_timer	   kd_timer;
	struct kids_slot  *kd_slots;
	size_t		   kd_nslots;
	pid_t		  *kd_retired;
	size_t		   kd_nretired;
	size_t		   kd_max_retired;
	struct kids_policy kd_pol;
	kids_spawn_cb	  *kd_spawn;
	kids_exit_cb	  *kd_exit;
	void		  *kd_arg;
	bool		   kd_held;
};

static void
kids_due(struct ev *e, struct ev_timer *t, void *arg)
{
	(void)e;
	(void)t;
	kids_start(arg);
}

struct kids *
kids_new(struct ev *e, size_t nslots, size_t max_retired,
    const struct kids_policy *pol, kids_spawn_cb *spawn, kids_exit_cb *ex,
    void *arg)
{
	struct kids *k;

	if (nslots > KIDS_SLOTS_MAX || max_retired > KIDS_SLOTS_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->kd_ev = e;
	ev_timer_init(&k->kd_timer, kids_due, k);
	k->kd_max_retired = max_retired;
	k->kd_pol = *pol;
	k->kd_spawn = spawn;
	k->kd_exit = ex;
	k->kd_arg = arg;
	k->kd_retired = calloc(max_retired ? max_retired : 1,
	    sizeof(*k->kd_retired));
	if (k->kd_retired == NULL || kids_resize(k, nslots) == -1) {
		kids_free(&k);
		errno = ENOMEM;
		return NULL;
	}
	return k;
}

void
kids_free(struct kids **kp)
{
	struct kids *k = *kp;

	if (k == NULL)
		return;
	if (k->kd_ev != NULL)
		ev_timer_stop(k->kd_ev, &k->kd_timer);
	free(k->kd_slots);
	free(k->kd_retired);
	free(k);
	*kp = NULL;
}

void
kids_set_policy(struct kids *k, size_t slot, const struct kids_policy *pol)
{
	if (slot < k->kd_nslots)
		k->kd_slots[slot].ks_pol = *pol;
}

int
kids_resize(struct kids *k, size_t n)
{
	struct kids_slot *ns;
	size_t		  i;

	if (n > KIDS_SLOTS_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (i = n; i < k->kd_nslots; i++)
		if (k->kd_slots[i].ks_pid != 0) {
			errno = EBUSY;
			return -1;
		}
	if ((ns = realloc(k->kd_slots, (n ? n : 1) * sizeof(*ns))) == NULL)
		return -1;
	k->kd_slots = ns;
	for (i = n < k->kd_nslots ? n : k->kd_nslots; i < n; i++) {
		memset(&ns[i], 0, sizeof(ns[i]));
		ns[i].ks_pol = k->kd_pol;
	}
	k->kd_nslots = n;
	return 0;
}

size_t
kids_nslots(const struct kids *k)
{
	return k->kd_nslots;
}

/* ---- starting */

static void
kids_spawn(struct kids *k, struct kids_slot *s, size_t i, int64_t now)
{
	pid_t pid = k->kd_spawn(k, i, k->kd_arg);

	if (pid <= 0) {
		s->ks_due = now + s->ks_pol.kp_retry_ms;
		return;
	}
	s->ks_pid = pid;
	s->ks_started = now;
	s->ks_due = 0;
}

void
kids_start(struct kids *k)
{
	int64_t now = ev_clock_ms(), next = 0;
	size_t	i;

	if (k->kd_held)
		return;
	for (i = 0; i < k->kd_nslots; i++) {
		struct kids_slot *s = &k->kd_slots[i];

		if (s->ks_pid != 0)
			continue;
		if (s->ks_due <= now)
			kids_spawn(k, s, i, now);
		if (s->ks_pid == 0 && (next == 0 || s->ks_due < next))
			next = s->ks_due;
	}
	if (k->kd_ev == NULL)
		return;
	if (next != 0)
		(void)ev_timer_at(k->kd_ev, &k->kd_timer, next);
	else
		ev_timer_stop(k->kd_ev, &k->kd_timer);
}

/* ---- exits */

/* When the slot may start again, by its policy (STYLE: the daemons'
 * numbers, unchanged). */
static int64_t
kids_backoff(struct kids_slot *s, int status, int64_t now)
{
	const struct kids_policy *p = &s->ks_pol;
	bool	crash = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	int64_t delay = 0, at;

	if ((crash || p->kp_clean_fails) && p->kp_young_ms > 0 &&
	    now - s->ks_started < p->kp_young_ms) {
		s->ks_fails++;
		delay = p->kp_base_ms
		    << (s->ks_fails - 1 > KIDS_SHIFT_MAX ? KIDS_SHIFT_MAX
							 : s->ks_fails - 1);
		if (delay > p->kp_max_ms)
			delay = p->kp_max_ms;
	} else
		s->ks_fails = 0;
	at = now + delay;
	if (at < s->ks_started + p->kp_interval_ms)
		at = s->ks_started + p->kp_interval_ms;
	return at;
}

static void
kids_exited(struct kids *k, pid_t pid, int status, int64_t now)
{
	struct kids_slot *s;
	size_t		  i;

	for (i = 0; i < k->kd_nretired; i++)
		if (k->kd_retired[i] == pid) {
			k->kd_retired[i] = k->kd_retired[--k->kd_nretired];
			k->kd_exit(k, KIDS_RETIRED, pid, status, 0, k->kd_arg);
			return;
		}
	for (i = 0; i < k->kd_nslots; i++)
		if (k->kd_slots[i].ks_pid == pid)
			break;
	if (i == k->kd_nslots)
		return; /* not ours (a grandchild's helper, say) */
	s = &k->kd_slots[i];
	s->ks_pid = 0;
	s->ks_due = kids_backoff(s, status, now);
	if (!k->kd_held)
		metrics_restart(
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0));
	k->kd_exit(k, i, pid, status, k->kd_held ? -1 : s->ks_due - now,
	    k->kd_arg);
}

void
kids_reap(struct kids *k)
{
	pid_t pid;
	int   status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		kids_exited(k, pid, status, ev_clock_ms());
	kids_start(k);
}

int
kids_retire(struct kids *k, size_t slot, int signo)
{
	struct kids_slot *s;

	if (slot >= k->kd_nslots || k->kd_slots[slot].ks_pid == 0) {
		errno = ESRCH;
		return -1;
	}
	if (k->kd_nretired >= k->kd_max_retired) {
		errno = ENOSPC;
		return -1;
	}
	s = &k->kd_slots[slot];
	if (signo != 0)
		(void)kill(s->ks_pid, signo);
	k->kd_retired[k->kd_nretired++] = s->ks_pid;
	s->ks_pid = 0;
	s->ks_due = 0;
	s->ks_fails = 0;
	kids_start(k);
	return 0;
}

size_t
kids_nretired(const struct kids *k)
{
	return k->kd_nretired;
}

pid_t
kids_pid(const struct kids *k, size_t slot)
{
	return slot < k->kd_nslots ? k->kd_slots[slot].ks_pid : 0;
}

int64_t
kids_started_ms(const struct kids *k, size_t slot)
{
	return slot < k->kd_nslots ? k->kd_slots[slot].ks_started : 0;
}

size_t
kids_alive(const struct kids *k)
{
	size_t i, n = k->kd_nretired;

	for (i = 0; i < k->kd_nslots; i++)
		n += k->kd_slots[i].ks_pid != 0;
	return n;
}

void
kids_signal(struct kids *k, int signo)
{
	size_t i;

	for (i = 0; i < k->kd_nslots; i++)
		if (k->kd_slots[i].ks_pid != 0)
			(void)kill(k->kd_slots[i].ks_pid, signo);
	for (i = 0; i < k->kd_nretired; i++)
		(void)kill(k->kd_retired[i], signo);
}

void
kids_hold(struct kids *k, bool hold)
{
	k->kd_held = hold;
	if (hold && k->kd_ev != NULL)
		ev_timer_stop(k->kd_ev, &k->kd_timer);
	else if (!hold)
		kids_start(k);
}

static void
kids_wait_exits(struct kids *k, int64_t deadline)
{
	struct pollfd pfd = { .fd = sig_fd(), .events = POLLIN };
	int64_t	      left;

	for (;;) {
		kids_reap(k);
		if (kids_alive(k) == 0 ||
		    (left = deadline - ev_clock_ms()) <= 0)
			return;
		(void)poll(&pfd, 1,
		    (int)(left < KIDS_STOP_POLL_MS ? left : KIDS_STOP_POLL_MS));
		(void)sig_take(); /* SIG_CHLD is why we woke; reaped above */
	}
}

size_t
kids_stop(struct kids *k, int signo, int64_t grace_ms)
{
	pid_t  pid;
	size_t killed;
	int    status;

	kids_hold(k, true);
	kids_signal(k, signo);
	kids_wait_exits(k, ev_clock_ms() + grace_ms);
	if ((killed = kids_alive(k)) == 0)
		return 0;
	kids_signal(k, SIGKILL);
	while (kids_alive(k) > 0 && (pid = waitpid(-1, &status, 0)) > 0)
		kids_exited(k, pid, status, ev_clock_ms());
	return killed;
}

/* ---- forking */

pid_t
kids_fork_fn(void (*fn)(void *), void *arg)
{
	pid_t pid;

	if ((pid = fork()) != 0)
		return pid;
	sig_child();
	fn(arg);
	_exit(0);
}

pid_t
kids_fork_exec(const char *path, char *const argv[])
{
	pid_t pid;

	if ((pid = fork()) != 0)
		return pid;
	sig_reset();
	(void)execv(path, argv);
	_exit(127);
}
