/*
 * trackd_commit: the committer, trackd's child process (see trackd.h).
 * LMDB lets readers run while a writer commits, but only across
 * environments, and an environment may be open only once per process:
 * so the group commits (event JSON, indexes, fsync) run here, in a
 * process with its own environment, and the request threads' reads
 * (click targets, the unsubscribe page) never wait behind them.
 *
 * Loop (common/ev: the pipe and one timer): read whole hit records from
 * the pipe onto t_pend; commit them (trackd_flush) when TRACKD_FLUSH_AT
 * are pending or TRACKD_FLUSH_MS after the first of them arrived; an
 * export record makes the next pass append to event_log. An unsubscribe
 * record is committed at once, in a transaction of its own (with the
 * other unsubscribes read with it), and answered on the reply pipe
 * (trackd_int.h); unsubscribes have a pipe of their own, which a group
 * commit of opens looks at as it goes (trackd_flush.c). EOF (trackd
 * stopping, or gone): commit the rest, exit. Signals are the parent's business: the handlers inherited from
 * it only set flags here, which this loop ignores.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ev.h"
#include "log.h"
#include "spool.h"
#include "spool_cluster.h"
#include "trackd.h"
#include "trackd_int.h"

#define TRACKD_READ_HITS	64	/* records per read(2) */

struct trackd_commit {
	struct trackd		*c_t;
	struct trackd_hit	 c_buf[TRACKD_READ_HITS];
	int64_t			 c_first;	/* when the oldest pending arrived, 0: none */
	size_t			 c_dropped;
	struct ev_timer		 c_due;		/* TRACKD_FLUSH_MS after c_first */
	int			 c_rc;		/* the last read: 0 EOF, -1 error */
};

/* Reads what the pipe has; 0 at EOF, -1 on error, else 1. */
static int
trackd_commit_read(struct trackd_commit *c, int fd)
{
	ssize_t	n;
	size_t	i, cnt;

	if ((n = read(fd, c->c_buf, sizeof(c->c_buf))) == -1)
		return errno == EINTR || errno == EAGAIN ? 1 : -1;
	if (n == 0)
		return 0;
	if ((size_t)n % sizeof(c->c_buf[0]) != 0)
		log_panic("committer: a partial hit record (%zd bytes)", n);
	cnt = (size_t)n / sizeof(c->c_buf[0]);
	for (i = 0; i < cnt; i++) {
		if (c->c_buf[i].h_kind == TRACKD_HIT_EXPORT) {
			c->c_t->t_export = true;
			continue;
		}
		if (c->c_buf[i].h_kind == SPOOL_TRACK_UNSUB) {
			if (!trackd_unsub_append(c->c_t, &c->c_buf[i])) {
				log_warnx("%s: hit=unsubscribe: %d wait for "
					  "their commit already: 503",
				    c->c_buf[i].h_qid, TRACKD_UNSUB_MAX);
				trackd_verdict_send(c->c_t, c->c_buf[i].h_tag,
				    TRACKD_U_FAILED);
			}
			continue;
		}
		if (!trackd_hit_append(c->c_t, &c->c_buf[i]))
			c->c_dropped++;
		else if (c->c_first == 0)
			c->c_first = ev_clock_ms();
	}
	return 1;
}

/* Commits when due; a failed commit keeps its hits (retried). */
static void
trackd_commit_due(struct trackd_commit *c, bool now)
{
	size_t	n = trackd_pending(c->c_t);

	if (c->c_dropped > 0) {
		log_warnx("%zu open(s)/click(s) not recorded: %d pending already",
		    c->c_dropped, TRACKD_PENDING_MAX);
		c->c_dropped = 0;
	}
	/* an unsubscribe is answered after its commit: at once, alone */
	trackd_flush_unsubs(c->c_t);
	if (!now && n < TRACKD_FLUSH_AT && c->c_t->t_export == false &&
	    (n == 0 || ev_clock_ms() - c->c_first < TRACKD_FLUSH_MS))
		return;
	(void)trackd_flush(c->c_t);
	c->c_first = trackd_pending(c->c_t) > 0 ? ev_clock_ms() : 0;
}

/* The timer follows c_first: armed while hits wait, else stopped. */
static void
trackd_commit_arm(struct ev *e, struct trackd_commit *c)
{
	if (c->c_first == 0)
		ev_timer_stop(e, &c->c_due);
	else if (ev_timer_at(e, &c->c_due, c->c_first + TRACKD_FLUSH_MS) == -1)
		log_fatal("committer: timer");
}

static void
trackd_commit_timer(struct ev *e, struct ev_timer *t, void *arg)
{
	struct trackd_commit	*c = arg;

	(void)t;
	trackd_commit_due(c, false);
	trackd_commit_arm(e, c);
}

/* The unsubscribes' pipe: committed at once (trackd_commit_due). */
static void
trackd_commit_unsubs(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct trackd_commit *c = arg;

	(void)revents;
	(void)trackd_unsub_poll(c->c_t);
	if (c->c_t->t_upipe == -1)
		ev_fd_del(e, fd); /* EOF: the hits' pipe ends the loop */
	trackd_commit_due(c, false);
	trackd_commit_arm(e, c);
}

static void
trackd_commit_pipe(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct trackd_commit	*c = arg;

	(void)revents;
	if ((c->c_rc = trackd_commit_read(c, fd)) <= 0) {
		ev_break(e);
		return;
	}
	trackd_commit_due(c, false);
	trackd_commit_arm(e, c);
}

int
trackd_commit_main(const char *spool_dir, int64_t map_size, int64_t map_max,
    unsigned spool_flags, const char *event_log, int fd, int ufd, int reply)
{
	static const unsigned char	 nokey[SPOOL_TRACK_KEYLEN];
	struct trackd_commit		 c = { .c_t = NULL };
	struct spool			*sp;
	struct ev			*e;
	size_t				 left;
	int				 rc, tries;

	if ((rc = spool_open(spool_dir, map_size, map_max, spool_flags, &sp)) !=
	    0)
		log_fatalx("committer: spool_open %s: %s", spool_dir, spool_strerror(rc));
	/* the committer verifies no token: it needs no key */
	c.c_t = trackd_new(sp, nokey, event_log);
	c.c_t->t_reply = reply;
	if (fcntl(ufd, F_SETFL, O_NONBLOCK) == -1)
		log_fatal("committer: fcntl");
	c.c_t->t_upipe = ufd;
	trackd_commit_due(&c, true);	/* what a killed trackd left unexported */
	c.c_rc = 1;
	ev_timer_init(&c.c_due, trackd_commit_timer, &c);
	if ((e = ev_new(2, 1)) == NULL ||
	    ev_fd_add(e, fd, EV_READ, trackd_commit_pipe, &c) == -1 ||
	    ev_fd_add(e, ufd, EV_READ, trackd_commit_unsubs, &c) == -1)
		log_fatal("committer: event loop");
	ev_run(e);
	ev_free(&e);
	if (c.c_rc == -1)
		log_warn("committer: read");
	/* the last unsubscribes (their answers may find no one now) */
	while (trackd_unsub_poll(c.c_t))
		trackd_flush_unsubs(c.c_t);
	for (tries = 0; tries < 5 && trackd_pending(c.c_t) > 0; tries++)
		trackd_commit_due(&c, true);
	trackd_commit_due(&c, true);	/* the last export */
	if ((left = trackd_pending(c.c_t)) > 0)
		log_warnx("stopping: %zu open(s)/click(s) could not be committed", left);
	else
		log_info("stopping: everything committed");
	trackd_free(&c.c_t);
	spool_close(&sp);
	return left > 0 ? 1 : 0;
}
