/*
 * smtpd_worker: one preforked worker. It drops privileges (chroot into
 * spool_dir), then runs an event loop (common/ev.c) that accepts on the
 * shared non-blocking listeners and multiplexes up to smtpd_max_sessions
 * sessions, each with bounded input and output buffers. Signals: SIGTERM
 * stops accepting, lets sessions finish for SMTPD_GRACE_MS, then answers
 * 421; SIGUSR1 (reload: the master starts new workers at once) stops
 * accepting and lets every session finish. After smtpd_max_use sessions a
 * worker tells the master, which starts a replacement at once, and goes on
 * accepting until another worker has room, then lets every session
 * finish: the listeners are never left without a worker however long its
 * last sessions take. The worker exits 0 when it has no session left.
 *
 * Sessions per client address are counted across all workers in shared
 * memory (smtpd_limits.c), which also says when smtpd is under stress.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev.h"
#include "log.h"
#include "metrics.h"
#include "priv.h"
#include "sig.h"
#include "smtpd.h"
#include "smtpd_limits.h"
#include "tls.h"
#include "xmem.h"

#define SMTPD_READ_CHUNK       16384
#define SMTPD_ACCEPT_BURST     16
#define SMTPD_FULL_CHECK_MS    100
#define SMTPD_REJECT_BURST     64
#define SMTPD_COMMIT_THREADS   8 /* fsyncs in flight per worker */
#define SMTPD_SIGNALS_CHECK_MS 1000

struct smtpd_worker {
	struct smtpd_env      *w_env;
	struct smtpd_session **w_ss;
	size_t		       w_nss;
	size_t		       w_max;
	uint64_t	       w_accepted;
	bool		       w_accepting;
	bool	   w_retiring; /* accepting until another has room */
	int64_t	   w_grace_end;
	int64_t	   w_full_since; /* 0: not full */
	int64_t	   w_full_check;
	pid_t	   w_parent;
	int64_t	   w_signals_check; /* last getppid() */
	bool	   w_term;	    /* SIGTERM (or SIGINT) arrived */
	bool	   w_retire;	    /* SIGUSR1 arrived */
	bool	   w_listen;	    /* listeners watched this turn */
	bool	   w_listening;	    /* ... as last set in the loop */
	struct ev *w_ev;
	int	  *w_tls_want; /* per session: last TLS want */
	unsigned  *w_events;   /* per session: interest set in w_ev */
};

/* ---- accept */

static void
smtpd_reject_conn(struct smtpd_env *env, int fd, const char *addr,
    const char *why)
{
	char line[256];
	int  n;

	n = snprintf(line, sizeof(line), "421 4.7.0 %s Error: %s\r\n",
	    env->se_cf->cf_hostname, why);
	if (n > 0 && write(fd, line, (size_t)n) == -1) {
		/* the client is gone already: nothing to tell */
	}
	log_info("NOQUEUE: reject: connect from [%s]: 421 4.7.0 %s", addr, why);
	metrics_inc(mb_smtpd_sessions[1]);
	metrics_smtp_reply(line);
	(void)close(fd);
}

/* max_use reached: see the comment at the top. */
static void
smtpd_worker_retire(struct smtpd_worker *w)
{
	w->w_retiring = true;
	smtpd_limits_retire(w->w_env->se_limits);
}

/* The session's socket is ready: served in the rest of the turn. */
static void
smtpd_worker_io(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct smtpd_session *s = arg;

	(void)e;
	(void)fd;
	s->ss_revents |= revents;
}

static void
smtpd_accept_one(struct smtpd_worker *w, const struct smtpd_listener *l, int fd,
    const struct sockaddr_storage *sa, socklen_t salen)
{
	struct smtpd_env *env = w->w_env;
	char		  addr[NI_MAXHOST], port[NI_MAXSERV];
	const char	 *a = addr;
	int		  one = 1, idx;

	if (getnameinfo((const struct sockaddr *)sa, salen, addr, sizeof(addr),
		port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		(void)close(fd);
		return;
	}
	if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, '.') != NULL)
		a = addr + 7; /* IPv4-mapped: log and match as IPv4 */
	if (w->w_nss >= w->w_max || !w->w_accepting) {
		smtpd_reject_conn(env, fd, a, "too many connections");
		return;
	}
	if (smtpd_limits_admit(env->se_limits, (const struct sockaddr *)sa,
		&idx) == SMTPD_LIMITS_OVER) {
		smtpd_reject_conn(env, fd, a,
		    "too many connections from your address");
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w->w_ss[w->w_nss] = smtpd_session_new(env, fd, l, a, port);
	w->w_ss[w->w_nss]->ss_limit_idx = idx;
	w->w_tls_want[w->w_nss] = TLS_WANT_READ;
	w->w_events[w->w_nss] = 0;
	if (ev_fd_add(w->w_ev, fd, 0, smtpd_worker_io, w->w_ss[w->w_nss]) ==
	    -1) {
		log_warn("NOQUEUE: client=[%s]:%s: watching the socket", a,
		    port);
		smtpd_enter_state(w->w_ss[w->w_nss], SS_DEAD);
	}
	w->w_nss++;
	w->w_accepted++;
	if (w->w_accepted >= (uint64_t)env->se_cf->cf_smtpd_max_use &&
	    !w->w_retiring) {
		log_info("max_use %lld reached: retiring",
		    (long long)w->w_accepted);
		smtpd_worker_retire(w);
	}
}

/*
 * Accepts up to burst connections while there is room; with burst 0 (the
 * full-worker path) accepts what is waiting, whatever the room, to answer
 * it 421.
 */
static void
smtpd_accept(struct smtpd_worker *w, const struct smtpd_listener *l, int burst)
{
	struct sockaddr_storage sa;
	socklen_t		salen;
	int			fd, i;

	for (i = 0; i < (burst ? burst : SMTPD_REJECT_BURST); i++) {
		if (burst && (w->w_nss >= w->w_max || !w->w_accepting))
			return;
		salen = sizeof(sa);
		fd = accept4(l->sl_fd, (struct sockaddr *)&sa, &salen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			/* EAGAIN: another worker took it (STYLE M4). */
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("accept %s", l->sl_name);
			return;
		}
		smtpd_accept_one(w, l, fd, &sa, salen);
	}
}

/* ---- session I/O */

static bool
smtpd_wants_input(const struct smtpd_session *s)
{
	switch (s->ss_state) {
	case SS_CMD:
	case SS_AUTH:
	case SS_DATA:
	case SS_BDAT:
		return s->ss_in.len < SMTPD_INBUF_MAX &&
		    s->ss_out.len <= SMTPD_OUT_HIGH;
	default:
		return false;
	}
}

/* One read into ss_in. */
static void
smtpd_read(struct smtpd_session *s, int *tls_want)
{
	size_t	room = SMTPD_INBUF_MAX - s->ss_in.len;
	ssize_t n;

	if (room > SMTPD_READ_CHUNK)
		room = SMTPD_READ_CHUNK;
	if (buf_reserve(&s->ss_in, room) == -1) {
		smtpd_enter_state(s, SS_DEAD);
		return;
	}
	if (s->ss_tls != NULL)
		n = tls_read(s->ss_tls, s->ss_in.data + s->ss_in.len, room);
	else {
		n = read(s->ss_fd, s->ss_in.data + s->ss_in.len, room);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			n = TLS_WANT_READ;
	}
	if (n > 0) {
		s->ss_in.len += (size_t)n;
		s->ss_in.data[s->ss_in.len] = '\0';
		/* No touch here: the deadline is per complete line (slowloris). */
		return;
	}
	if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
		*tls_want = (int)n;
		return;
	}
	if (n == 0)
		log_debug("NOQUEUE: client=%s: EOF", s->ss_client);
	else
		log_info("NOQUEUE: read error: client=%s: %s", s->ss_client,
		    s->ss_tls ? tls_error(s->ss_tls) : strerror(errno));
	if (s->ss_state == SS_DATA || s->ss_state == SS_BDAT)
		log_info("NOQUEUE: lost connection after DATA: client=%s",
		    s->ss_client);
	smtpd_enter_state(s, SS_DEAD);
}

static void
smtpd_flush(struct smtpd_session *s, int *tls_want)
{
	ssize_t n;

	while (s->ss_out.len > 0 && s->ss_state != SS_DEAD) {
		if (s->ss_tls != NULL)
			n = tls_write(s->ss_tls, s->ss_out.data, s->ss_out.len);
		else {
			n = write(s->ss_fd, s->ss_out.data, s->ss_out.len);
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				n = TLS_WANT_WRITE;
		}
		if (n > 0) {
			buf_consume(&s->ss_out, (size_t)n);
			continue;
		}
		if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
			*tls_want = (int)n;
			return;
		}
		log_debug("NOQUEUE: write error: client=%s", s->ss_client);
		smtpd_enter_state(s, SS_DEAD);
	}
}

static void
smtpd_handshake(struct smtpd_session *s, int *tls_want)
{
	int rc;

	rc = tls_handshake(s->ss_tls);
	if (rc == 0) {
		*tls_want = TLS_WANT_READ;
		smtpd_session_tls_ready(s);
	} else if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE)
		*tls_want = rc;
	else {
		log_info("NOQUEUE: TLS handshake failed: client=%s: %s",
		    s->ss_client, tls_error(s->ss_tls));
		smtpd_enter_state(s, SS_DEAD);
	}
}

/* Everything one session does in one loop turn. */
static void
smtpd_service(struct smtpd_session *s, unsigned revents, int *tls_want)
{
	int rounds;

	if (s->ss_state == SS_HANDSHAKE && revents != 0)
		smtpd_handshake(s, tls_want);
	for (rounds = 0; rounds < 4; rounds++) {
		if (smtpd_wants_input(s) &&
		    (revents != 0 ||
			(s->ss_tls != NULL && tls_pending(s->ss_tls) > 0)))
			smtpd_read(s, tls_want);
		revents = 0;
		smtpd_session_process(s);
		smtpd_flush(s, tls_want);
		if (s->ss_state == SS_STARTTLS && s->ss_out.len == 0) {
			smtpd_session_start_tls(s);
			smtpd_handshake(s, tls_want);
		}
		/* Decrypted bytes do not wake poll(): drain them now. */
		if (!(s->ss_tls != NULL && tls_pending(s->ss_tls) > 0 &&
			smtpd_wants_input(s)))
			break;
	}
	if (s->ss_state == SS_CLOSING && s->ss_out.len == 0)
		smtpd_enter_state(s, SS_DEAD);
}

static unsigned
smtpd_events(const struct smtpd_session *s, int tls_want)
{
	unsigned ev = 0;

	if (s->ss_state == SS_HANDSHAKE)
		return tls_want == TLS_WANT_WRITE ? EV_WRITE : EV_READ;
	if (smtpd_wants_input(s))
		ev |= EV_READ;
	if (s->ss_out.len > 0)
		ev |= EV_WRITE;
	if (s->ss_tls != NULL && tls_want == TLS_WANT_WRITE)
		ev |= EV_WRITE;
	if (s->ss_tls != NULL && tls_want == TLS_WANT_READ && s->ss_out.len > 0)
		ev |= EV_READ;
	return ev;
}

static size_t
smtpd_index(const struct smtpd_worker *w, const struct smtpd_session *s)
{
	size_t i;

	for (i = 0; i < w->w_nss; i++)
		if (w->w_ss[i] == s)
			return i;
	log_panic("session not in the worker's table");
}

static void
smtpd_close(struct smtpd_worker *w, size_t i)
{
	struct smtpd_session *s = w->w_ss[i];

	if (s->ss_tls != NULL)
		tls_shutdown(s->ss_tls);
	ev_fd_del(w->w_ev, s->ss_fd);
	(void)close(s->ss_fd);
	smtpd_limits_release(w->w_env->se_limits, s->ss_limit_idx);
	smtpd_session_free(&s);
	w->w_ss[i] = w->w_ss[w->w_nss - 1];
	w->w_tls_want[i] = w->w_tls_want[w->w_nss - 1];
	w->w_events[i] = w->w_events[w->w_nss - 1];
	w->w_nss--;
}

/* ---- the loop */

static void
smtpd_board_set(struct smtpd_worker *w, bool avail)
{
	atomic_int *a = &w->w_env->se_board->sb_avail[w->w_env->se_slot];

	if (atomic_load_explicit(a, memory_order_relaxed) != (int)avail)
		atomic_store_explicit(a, (int)avail, memory_order_relaxed);
}

/* Can any other worker take a session now? */
static bool
smtpd_board_any(const struct smtpd_worker *w)
{
	int i;

	for (i = 0; i < SMTPD_BOARD_SLOTS; i++)
		if (i != w->w_env->se_slot &&
		    atomic_load_explicit(&w->w_env->se_board->sb_avail[i],
			memory_order_relaxed))
			return true;
	return false;
}

/* Sessions whose commit finished: reply, then serve what they pipelined. */
static void
smtpd_worker_committed(struct ev *e, void *arg)
{
	struct smtpd_worker  *w = arg;
	struct smtpd_session *done[64];
	size_t		      i, n;

	(void)e;
	w->w_env->se_now = ev_now_ms();
	while ((n = smtpd_commit_take(done, 64)) > 0)
		for (i = 0; i < n; i++) {
			smtpd_msg_committed(done[i]);
			smtpd_flush(done[i],
			    &w->w_tls_want[smtpd_index(w, done[i])]);
		}
}

static void
smtpd_worker_stop_sessions(struct smtpd_worker *w)
{
	struct smtpd_env *env = w->w_env;
	size_t		  i;
	bool		  all = env->se_now >= w->w_grace_end;

	for (i = 0; i < w->w_nss; i++) {
		if (all || smtpd_session_idle(w->w_ss[i]))
			smtpd_session_shutdown(w->w_ss[i],
			    "421 4.3.2 Service shutting down");
	}
}

/*
 * Called when signals arrived and once a second: the master's death also
 * arrives as SIGTERM (PR_SET_PDEATHSIG), the getppid() check covers the
 * window before that was set.
 */
static void
smtpd_worker_signals_take(struct smtpd_worker *w)
{
	w->w_signals_check = w->w_env->se_now;
	if ((w->w_term || getppid() != w->w_parent) && !w->w_env->se_stopping) {
		w->w_env->se_stopping = true;
		w->w_accepting = false;
		w->w_grace_end = w->w_env->se_now + SMTPD_GRACE_MS;
		log_debug("stopping: %zu sessions", w->w_nss);
	}
	if (w->w_retire && w->w_accepting) {
		w->w_accepting = false;
		log_debug("retiring: %zu sessions", w->w_nss);
	}
}

/* SIGTERM/SIGINT stop, SIGUSR1 retires; SIGHUP is the master's. */
static void
smtpd_worker_sig(struct ev *e, unsigned sigs, void *arg)
{
	struct smtpd_worker *w = arg;

	(void)e;
	w->w_env->se_now = ev_now_ms();
	if (sigs & SIG_TERM)
		w->w_term = true;
	if (sigs & SIG_USR1)
		w->w_retire = true;
	smtpd_worker_signals_take(w);
}

static void
smtpd_worker_listener(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct smtpd_worker *w = arg;
	size_t		     i;

	(void)e;
	if (!(revents & EV_READ))
		return;
	w->w_env->se_now = ev_now_ms();
	for (i = 0; i < w->w_env->se_nls; i++)
		if (w->w_env->se_ls[i].sl_fd == fd)
			smtpd_accept(w, &w->w_env->se_ls[i],
			    SMTPD_ACCEPT_BURST);
}

/*
 * Before each poll: what every socket waits for now. Decrypted TLS bytes
 * do not wake poll(): with some pending, the poll does not wait.
 */
static bool
smtpd_worker_before(struct ev *e, void *arg)
{
	struct smtpd_worker  *w = arg;
	struct smtpd_session *s;
	size_t		      i;
	unsigned	      want;
	bool		      now = false;

	/*
	 * Room is on the board before the sleep, not after it: a full worker
	 * that looked while this one slept would take the next connection
	 * only to answer it 421.
	 */
	smtpd_board_set(w, w->w_listen && !w->w_retiring);
	if (w->w_listen != w->w_listening)
		for (i = 0; i < w->w_env->se_nls; i++)
			(void)ev_fd_set(e, w->w_env->se_ls[i].sl_fd,
			    w->w_listen ? EV_READ : 0);
	w->w_listening = w->w_listen;
	for (i = 0; i < w->w_nss; i++) {
		s = w->w_ss[i];
		s->ss_revents = 0;
		if ((want = smtpd_events(s, w->w_tls_want[i])) !=
		    w->w_events[i])
			(void)ev_fd_set(e, s->ss_fd, want);
		w->w_events[i] = want;
		if (s->ss_tls != NULL && tls_pending(s->ss_tls) > 0 &&
		    smtpd_wants_input(s))
			now = true;
	}
	return now;
}

static int
smtpd_worker_timeout(struct smtpd_worker *w)
{
	int64_t t = 1000, d;
	size_t	i;

	for (i = 0; i < w->w_nss; i++) {
		const struct smtpd_session *s = w->w_ss[i];

		d = (s->ss_state == SS_DELAY ? s->ss_wake : s->ss_deadline) -
		    w->w_env->se_now;
		if (d < t)
			t = d;
	}
	/* full, or retiring: look at the board again soon */
	if ((w->w_nss >= w->w_max || (w->w_retiring && w->w_accepting)) &&
	    t > SMTPD_FULL_CHECK_MS)
		t = SMTPD_FULL_CHECK_MS;
	return t < 0 ? 0 : (int)t;
}

/* The board, and what no other worker can take while this one is full. */
static void
smtpd_worker_board(struct smtpd_worker *w, bool listen)
{
	struct smtpd_env *env = w->w_env;
	size_t		  i;

	smtpd_board_set(w, listen && !w->w_retiring && w->w_nss < w->w_max);
	if (w->w_retiring && w->w_accepting && smtpd_board_any(w)) {
		w->w_accepting = false;
		log_debug("retired: another worker has room; %zu sessions",
		    w->w_nss);
	}
	if (listen || !w->w_accepting)
		w->w_full_since = 0;
	else if (w->w_full_since == 0)
		w->w_full_since = w->w_full_check = env->se_now;
	else if (env->se_now - w->w_full_check >= SMTPD_FULL_CHECK_MS &&
	    !smtpd_board_any(w)) {
		w->w_full_check = env->se_now;
		for (i = 0; i < env->se_nls; i++)
			smtpd_accept(w, &env->se_ls[i], 0);
	}
}

/* Timers, flushes, the stop, and the sessions that are done. */
static void
smtpd_worker_sweep(struct smtpd_worker *w)
{
	size_t i;

	for (i = 0; i < w->w_nss; i++) {
		smtpd_session_timer(w->w_ss[i]);
		if (w->w_ss[i]->ss_state != SS_DEAD)
			smtpd_flush(w->w_ss[i], &w->w_tls_want[i]);
		if (w->w_ss[i]->ss_state == SS_CLOSING &&
		    w->w_ss[i]->ss_out.len == 0)
			smtpd_enter_state(w->w_ss[i], SS_DEAD);
	}
	if (w->w_env->se_stopping)
		smtpd_worker_stop_sessions(w);
	for (i = w->w_nss; i > 0; i--) {
		smtpd_flush(w->w_ss[i - 1], &w->w_tls_want[i - 1]);
		if (w->w_ss[i - 1]->ss_state == SS_CLOSING &&
		    w->w_ss[i - 1]->ss_out.len == 0)
			smtpd_enter_state(w->w_ss[i - 1], SS_DEAD);
		/* A commit thread still uses the session: close it later. */
		if (w->w_ss[i - 1]->ss_state == SS_DEAD &&
		    !w->w_ss[i - 1]->ss_committing)
			smtpd_close(w, i - 1);
	}
}

/*
 * One turn: the loop delivers signals, finished commits, new connections
 * and socket readiness (in that order); then every polled session is
 * served, and the timers run.
 */
static void
smtpd_worker_turn(struct smtpd_worker *w)
{
	struct smtpd_env *env = w->w_env;
	size_t		  i, npolled = w->w_nss;
	bool		  listen;

	listen = w->w_listen = w->w_accepting && w->w_nss < w->w_max;
	(void)ev_run_once(w->w_ev, smtpd_worker_timeout(w));
	env->se_now = ev_now_ms();
	if (env->se_now - w->w_signals_check >= SMTPD_SIGNALS_CHECK_MS)
		smtpd_worker_signals_take(w);
	smtpd_worker_board(w, listen);
	/* Sessions accepted in this turn are past the polled ones. */
	for (i = 0; i < w->w_nss && i < npolled; i++)
		smtpd_service(w->w_ss[i], w->w_ss[i]->ss_revents,
		    &w->w_tls_want[i]);
	smtpd_worker_sweep(w);
	smtpd_limits_flush(env->se_limits, env->se_now, false); /* metrics */
}

static void
smtpd_worker_ev(struct smtpd_worker *w)
{
	struct smtpd_env *env = w->w_env;
	size_t		  i;

	if ((w->w_ev = ev_new(w->w_max + env->se_nls + 4, 4)) == NULL ||
	    ev_signal(w->w_ev, smtpd_worker_sig, w) == -1 ||
	    ev_wakeup_init(w->w_ev, smtpd_worker_committed, w) == -1)
		log_fatal("event loop");
	for (i = 0; i < env->se_nls; i++)
		if (ev_fd_add(w->w_ev, env->se_ls[i].sl_fd, 0,
			smtpd_worker_listener, w) == -1)
			log_fatal("event loop: %s", env->se_ls[i].sl_name);
	ev_before_poll(w->w_ev, smtpd_worker_before, w);
}

void
smtpd_worker_main(struct smtpd_env *env)
{
	struct smtpd_worker w;
	struct conf	   *cf = env->se_cf;
	bool		    jailed = priv_is_root();

	log_set_procname("smtpd/worker");
	smtpd_limits_child(env->se_limits, (size_t)env->se_slot);
	smtpd_limits_conf(env->se_limits, cf);
	memset(&w, 0, sizeof(w));
	w.w_parent = getppid();
	/* Phase 1 was the master's (sockets, certificate, SASL plugins). */
	/* its TLS context signs through the key process (smtpd_key.c) */
	smtpd_key_client(env);
	/* smtpd_group only: it writes incoming/ and opens nothing else */
	priv_drop_only(cf->cf_smtpd_user, cf->cf_smtpd_group, cf->cf_spool_dir);
	conf_forget_secrets(cf); /* cluster_dsn's password: not ours */
	/* after priv_drop: a credential change clears the death signal */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* Phase 2: unprivileged; no database: the lka answers (smtpd_lka.c). */
	env->se_spool = jailed ? "/" : cf->cf_spool_dir;
	env->se_now = ev_clock_ms();
	w.w_env = env;
	w.w_max = (size_t)cf->cf_smtpd_max_sessions;
	if (w.w_max > EV_FD_MAX - env->se_nls - 4)
		w.w_max = EV_FD_MAX - env->se_nls - 4; /* the loop's bound */
	w.w_ss = xcalloc(w.w_max, sizeof(*w.w_ss));
	w.w_tls_want = xcalloc(w.w_max, sizeof(*w.w_tls_want));
	w.w_events = xcalloc(w.w_max, sizeof(*w.w_events));
	smtpd_worker_ev(&w);
	smtpd_commit_init(SMTPD_COMMIT_THREADS, w.w_ev);
	w.w_accepting = true;
	/* the master's exit before the death signal was set */
	smtpd_worker_signals_take(&w);
	while (w.w_accepting || w.w_nss > 0)
		smtpd_worker_turn(&w);
	smtpd_commit_stop();
	smtpd_limits_flush(env->se_limits, env->se_now, true); /* metrics */
	log_debug("worker done: %llu sessions",
	    (unsigned long long)w.w_accepted);
	exit(0);
}
