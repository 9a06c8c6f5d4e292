/*
 * trackd_backend: everything of trackd that needs the database or the
 * tracking key, in a process of its own (trackd.h). trackd's HTTP
 * process forks it as root before it drops; the backend drops to
 * trackd_user, forks the committer (trackd_commit.c) before it opens the
 * spool, loads the key and answers the HTTP process's requests
 * (trackd_proto.h) with trackd_handle() in common/ev's loop: one
 * SOCK_SEQPACKET socket per libmicrohttpd thread, so that hits do not
 * queue behind another thread's round trip, one for the unsubscribes
 * (answered out of order, after their commit: struct trackd_be_park),
 * plus the control socket (reload; its end tells the HTTP process that
 * the backend is gone).
 *
 * The HTTP process is not trusted: every message is parsed with
 * tp_query_parse (bounded, strict); a token must verify with the key,
 * the client address is cut to /24 or /48 here, the time is ours. A
 * malformed message means that process is broken or taken over: one log
 * line, every socket closed, the pending hits committed and exit 0; the
 * HTTP process, left alone, exits 1 and systemd restarts both. The
 * backend stops when the HTTP process has closed every socket (SIGTERM
 * does not stop it: requests under way still need it), or with status 1
 * when the committer dies.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "ev.h"
#include "log.h"
#include "priv.h"
#include "sig.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spool_track.h"
#include "trackd.h"
#include "trackd_int.h"
#include "trackd_proto.h"
#include "xmem.h"

#define TRACKD_COMMIT_GRACE_MS 30000 /* the committer's last commit */

/* A POST /u/ waiting for its commit (TRACKD_UNSUB_MAX slots): its
 * answer goes to socket p_sock, with the query's id, when the
 * committer's verdict for p_tag comes. Its socket is read meanwhile: the
 * HTTP process suspended that connection and goes on sending others. */
#define TRACKD_PARK_BITS 10
_Static_assert(TRACKD_UNSUB_MAX == 1 << TRACKD_PARK_BITS,
    "a verdict's tag holds its slot");
struct trackd_be_park {
	uint32_t		p_tag; /* slot | generation; 0: free */
	uint32_t		p_id;  /* the query's */
	size_t			p_sock;
	struct trackd_unsub_req p_u;
};

struct trackd_be {
	struct conf	      *b_cf;
	struct trackd	      *b_t;
	struct ev	      *b_ev;
	int		      *b_fds; /* the sockets, -1 once closed */
	struct trackd_be_park *b_park; /* TRACKD_UNSUB_MAX */
	uint32_t	       b_gen, b_hint;
	size_t		       b_nfds, b_nopen;
	pid_t		       b_child; /* the committer */
	int		       b_pipe;	/* its pipe's write end */
	int		       b_upipe; /* its unsubscribes' pipe's */
	int		       b_reply; /* its verdicts' read end */
	int		       b_status;
	uint8_t		       b_in[TP_QUERY_MAX + 1];
	uint8_t		       b_out[TP_REPLY_MAX];
};

static void trackd_be_reply(struct trackd_be *, size_t, size_t);

/* The committer: forked before this process opens the spool (an LMDB
 * environment never crosses fork). */
static void
trackd_be_fork_committer(struct trackd_be *b)
{
	size_t i;
	int    p[2], r[2], u[2];

	if (pipe2(p, O_CLOEXEC) == -1 || pipe2(r, O_CLOEXEC) == -1 ||
	    pipe2(u, O_CLOEXEC) == -1)
		log_fatal("pipe2");
	/* room for bursts: about 2,800 hits; the default is 64 KB */
	(void)fcntl(p[1], F_SETPIPE_SZ, 1024 * 1024);
	/* and for TRACKD_UNSUB_MAX unsubscribes */
	(void)fcntl(u[1], F_SETPIPE_SZ,
	    TRACKD_UNSUB_MAX * (int)sizeof(struct trackd_hit));
	if ((b->b_child = fork()) == -1)
		log_fatal("fork");
	if (b->b_child == 0) {
		(void)close(p[1]);
		(void)close(r[0]);
		(void)close(u[1]);
		/* the HTTP process must see EOF when the backend goes */
		for (i = 0; i < b->b_nfds; i++)
			(void)close(b->b_fds[i]);
		sig_child();
		log_set_procname("trackd/commit");
		(void)prctl(PR_SET_NAME, "trackd-commit");
		/* commits can wait a little, answers should not */
		(void)setpriority(PRIO_PROCESS, 0, 5);
		_exit(trackd_commit_main(b->b_cf->cf_spool_dir,
		    b->b_cf->cf_lmdb_map_size, b->b_cf->cf_lmdb_map_max,
		    SPOOL_CLUSTER_IF(b->b_cf->cf_cluster_dsn),
		    b->b_cf->cf_event_log, p[0], u[0], r[1]));
	}
	(void)close(p[0]);
	(void)close(r[1]);
	(void)close(u[0]);
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(r[0], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(u[1], F_SETFL, O_NONBLOCK) == -1)
		log_fatal("fcntl");
	b->b_pipe = p[1];
	b->b_reply = r[0];
	b->b_upipe = u[1];
}

/* EOF to the committer, which commits what is pending and exits; waited
 * for (bounded), then killed. */
static void
trackd_be_stop_committer(struct trackd_be *b)
{
	int64_t until = ev_clock_ms() + TRACKD_COMMIT_GRACE_MS;
	int	status;
	pid_t	pid;

	(void)close(b->b_upipe); /* EOF for the committer */
	(void)close(b->b_pipe);
	b->b_pipe = b->b_upipe = -1;
	while (b->b_child > 0) {
		if ((pid = waitpid(b->b_child, &status, WNOHANG)) ==
			b->b_child ||
		    (pid == -1 && errno != EINTR)) {
			if (pid == b->b_child && status != 0)
				b->b_status = 1;
			break;
		}
		if (ev_clock_ms() > until) {
			log_warnx("committer did not finish in %d s: killed",
			    TRACKD_COMMIT_GRACE_MS / 1000);
			(void)kill(b->b_child, SIGKILL);
			(void)waitpid(b->b_child, &status, 0);
			b->b_status = 1;
			break;
		}
		(void)poll(NULL, 0, 10);
	}
}

static void
trackd_be_close(struct trackd_be *b, size_t i)
{
	size_t k;

	if (b->b_fds[i] == -1)
		return;
	for (k = 0; k < TRACKD_UNSUB_MAX; k++)
		if (b->b_park[k].p_tag != 0 && b->b_park[k].p_sock == i)
			b->b_park[k].p_tag = 0; /* its verdict finds no one */
	ev_fd_del(b->b_ev, b->b_fds[i]);
	(void)close(b->b_fds[i]); /* a socket: nothing to lose */
	b->b_fds[i] = -1;
	if (--b->b_nopen == 0)
		ev_break(b->b_ev);
}

static uint8_t
trackd_be_reload(struct trackd_be *b)
{
	struct conf *ncf;
	char	     err[1024];

	if ((ncf = conf_load(b->b_cf->cf_path, err, sizeof(err))) == NULL)
		log_warnx("reload: %s (keeping the old configuration)", err);
	else {
		if (strcmp(ncf->cf_track_listen, b->b_cf->cf_track_listen) !=
			0 ||
		    strcmp(ncf->cf_spool_dir, b->b_cf->cf_spool_dir) != 0)
			log_warnx("reload: track_listen and spool_dir changes "
				  "need a restart");
		conf_free(&b->b_cf);
		b->b_cf = ncf;
		log_set_dest(daemon_log_dest(ncf));
		log_info("reloaded %s", ncf->cf_path);
	}
	return daemon_log_dest(b->b_cf) == LOG_DEST_SYSLOG ? 1 : 0;
}

/* trackd_handle's answer on the wire; a 503 if it does not fit. */
static size_t
trackd_be_answer(struct trackd_be *b, uint32_t id, const struct trackd_resp *rs)
{
	struct tp_reply r = { .r_type = TP_R_ANSWER, .r_id = id };
	size_t		n;

	r.r_status = (uint16_t)rs->rs_status;
	r.r_ctype = strcmp(rs->rs_type, "image/gif") == 0 ? TP_CT_GIF
	    : strncmp(rs->rs_type, "text/html", 9) == 0	  ? TP_CT_HTML
							  : TP_CT_TEXT;
	r.r_flags = rs->rs_nocache ? TP_F_NOCACHE : 0;
	if (rs->rs_allow != NULL)
		r.r_flags |= strstr(rs->rs_allow, "POST") != NULL
		    ? TP_F_ALLOW_GHP
		    : TP_F_ALLOW_GH;
	r.r_body = rs->rs_body;
	r.r_bodylen = rs->rs_len;
	if (rs->rs_status == 302) {
		r.r_loc = rs->rs_location;
		r.r_loclen = strlen(rs->rs_location);
	}
	if ((n = tp_reply_make(b->b_out, sizeof(b->b_out), &r)) > 0)
		return n;
	log_warnx("backend: an answer (status %d) does not fit a message: 503",
	    rs->rs_status);
	r = (struct tp_reply){ .r_type = TP_R_ANSWER,
		.r_id = id,
		.r_status = 503,
		.r_body = (const uint8_t *)trackd_503,
		.r_bodylen = strlen(trackd_503) };
	return tp_reply_make(b->b_out, sizeof(b->b_out), &r);
}

/* A free slot for an unsubscribe, its tag set; NULL: all taken. */
static struct trackd_be_park *
trackd_be_park(struct trackd_be *b)
{
	struct trackd_be_park *pk;
	size_t		       k;

	for (k = 0; k < TRACKD_UNSUB_MAX; k++) {
		pk = &b->b_park[(b->b_hint + k) % TRACKD_UNSUB_MAX];
		if (pk->p_tag != 0)
			continue;
		b->b_hint = (uint32_t)(pk - b->b_park) + 1;
		if (++b->b_gen >= 1u << (32 - TRACKD_PARK_BITS))
			b->b_gen = 1; /* never a tag of 0 */
		pk->p_tag = b->b_gen << TRACKD_PARK_BITS |
		    (uint32_t)(pk - b->b_park);
		return pk;
	}
	return NULL;
}

/* A POST /u/ to the committer; its answer waits for the verdict
 * (trackd_be_verdicts). 0, or an answer's length (503: not sent). */
static size_t
trackd_be_defer(struct trackd_be *b, size_t i, uint32_t id)
{
	struct trackd_be_park *pk = trackd_be_park(b);
	struct trackd_unsub_req *u = &b->b_t->t_defer;
	struct trackd_resp     rs;
	size_t		       n;

	if (pk != NULL) {
		pk->p_u = *u;
		pk->p_u.ur_hit.h_tag = pk->p_tag;
		pk->p_id = id;
		pk->p_sock = i;
		if (trackd_hit_send(b->b_t, &pk->p_u.ur_hit) == 0)
			return 0;
		log_warn("%s: hit=unsubscribe: to the committer",
		    u->ur_hit.h_qid);
		pk->p_tag = 0;
	} else
		log_warnx("%s: hit=unsubscribe: %d wait for their commit "
			  "already",
		    u->ur_hit.h_qid, TRACKD_UNSUB_MAX);
	trackd_unsub_answer(u, TRACKD_U_FAILED, &rs);
	n = trackd_be_answer(b, id, &rs);
	trackd_resp_release(&rs);
	return n;
}

/* One hit: the request as trackd_handle knows it, from checked fields;
 * the answer's length, 0 when it waits for a commit. */
static size_t
trackd_be_hit(struct trackd_be *b, size_t i, const struct tp_query *q)
{
	static const enum trackd_method m[] = { TRACKD_M_GET, TRACKD_M_HEAD,
		TRACKD_M_POST };
	char		   url[TRACKD_URL_MAX + 1], client[TP_CLIENT_MAX + 1];
	char		   ua[TP_UA_MAX + 1];
	struct trackd_req  rq = { .rq_url = url, .rq_client = client };
	struct trackd_resp rs;
	size_t		   n;

	url[0] = '/';
	url[1] = q->q_kind;
	url[2] = '/';
	memcpy(url + 3, q->q_tok, q->q_toklen);
	url[3 + q->q_toklen] = '\0';
	memcpy(client, q->q_client, q->q_clientlen);
	client[q->q_clientlen] = '\0';
	if (q->q_ualen > 0) {
		memcpy(ua, q->q_ua, q->q_ualen);
		ua[q->q_ualen] = '\0';
		rq.rq_ua = ua;
	}
	rq.rq_method = m[q->q_method];
	rq.rq_now_ms = ev_clock_ms(); /* ours: the burst rule */
	trackd_handle(b->b_t, &rq, &rs);
	n = rs.rs_status == 0 ? trackd_be_defer(b, i, q->q_id)
			      : trackd_be_answer(b, q->q_id, &rs);
	trackd_resp_release(&rs);
	return n;
}

/* The committer's verdicts: the waiting unsubscribes' answers. */
static void
trackd_be_verdicts(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct trackd_be      *b = arg;
	struct trackd_verdict  v[64];
	struct trackd_be_park *pk;
	struct trackd_resp     rs;
	ssize_t		       n;
	size_t		       k, olen;

	(void)revents;
	if ((n = read(fd, v, sizeof(v))) <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			ev_fd_del(e, fd); /* the committer is gone: SIGCHLD */
		return;
	}
	if ((size_t)n % sizeof(v[0]) != 0)
		log_fatalx("backend: a partial verdict (%zd bytes)", n);
	for (k = 0; k < (size_t)n / sizeof(v[0]); k++) {
		pk = &b->b_park[v[k].v_tag & (TRACKD_UNSUB_MAX - 1)];
		if (v[k].v_tag == 0 || pk->p_tag != v[k].v_tag)
			continue; /* its socket closed meanwhile */
		pk->p_tag = 0;
		trackd_unsub_answer(&pk->p_u,
		    (enum trackd_unsub_result)v[k].v_result, &rs);
		olen = trackd_be_answer(b, pk->p_id, &rs);
		trackd_resp_release(&rs);
		trackd_be_reply(b, pk->p_sock, olen);
	}
}

/* b_out[0..olen) on socket i. */
static void
trackd_be_reply(struct trackd_be *b, size_t i, size_t olen)
{
	struct pollfd pfd = { .fd = b->b_fds[i], .events = POLLOUT };
	ssize_t	      n;

	if (b->b_fds[i] == -1)
		return;
	/* the HTTP process waits for this; one that does not read is gone.
	 * Full (the unsubscribes' socket can have up to TRACKD_UNSUB_MAX
	 * answers to take, more than its send buffer holds): its thread
	 * reads at once, so room is waited for, bounded. */
	while ((n = send(b->b_fds[i], b->b_out, olen,
		    MSG_DONTWAIT | MSG_NOSIGNAL)) == -1 &&
	    (errno == EINTR ||
		(errno == EAGAIN &&
		    poll(&pfd, 1, TRACKD_BACKEND_TIMEOUT_MS) == 1)))
		;
	if (n != (ssize_t)olen) {
		log_warn("backend: answering the HTTP process");
		trackd_be_close(b, i);
	}
}

/* One message on socket i; false: stop talking to the HTTP process. */
static bool
trackd_be_serve(struct trackd_be *b, size_t i)
{
	struct tp_reply r = { .r_type = TP_R_RELOADED };
	struct tp_query q;
	enum tp_status	st;
	ssize_t		n;
	size_t		olen;

	n = recv(b->b_fds[i], b->b_in, sizeof(b->b_in),
	    MSG_TRUNC | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		trackd_be_close(b, i); /* the HTTP process closed it */
		return true;
	}
	if ((size_t)n > TP_QUERY_MAX ||
	    (st = tp_query_parse(b->b_in, (size_t)n, &q)) != TP_OK) {
		log_warnx(
		    "backend: bad message from the HTTP process (%zd bytes, "
		    "%s): closing its sockets",
		    n,
		    (size_t)n > TP_QUERY_MAX ? "too long"
			: st == TP_EHDR	     ? "frame"
			: st == TP_ETYPE     ? "type"
					     : "payload");
		return false;
	}
	if (q.q_type == TP_Q_RELOAD) {
		r.r_id = q.q_id;
		r.r_logdest = trackd_be_reload(b);
		olen = tp_reply_make(b->b_out, sizeof(b->b_out), &r);
	} else if ((olen = trackd_be_hit(b, i, &q)) == 0)
		return true; /* trackd_be_verdicts answers */
	trackd_be_reply(b, i, olen);
	return true;
}

static void
trackd_be_ready(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct trackd_be *b = arg;
	size_t		  i;

	(void)e;
	(void)revents;
	for (i = 0; i < b->b_nfds && b->b_fds[i] != fd; i++)
		;
	if (i < b->b_nfds && !trackd_be_serve(b, i))
		for (i = 0; i < b->b_nfds; i++)
			trackd_be_close(b, i);
}

static void
trackd_be_signal(struct ev *e, unsigned sigs, void *arg)
{
	struct trackd_be *b = arg;
	int		  status;

	/* SIGTERM: nothing; the HTTP process closes the sockets when done */
	if (sigs & SIG_HUP)
		(void)trackd_be_reload(b);
	if ((sigs & SIG_CHLD) && b->b_child > 0 &&
	    waitpid(b->b_child, &status, WNOHANG) == b->b_child) {
		/* no one to commit opens and clicks: stop (systemd restarts) */
		log_warnx(
		    "committer (pid %ld) exited with status 0x%x: stopping",
		    (long)b->b_child, status);
		b->b_child = -1;
		b->b_status = 1;
		ev_break(e);
	}
}

static void
trackd_be_open(struct trackd_be *b)
{
	unsigned char key[SPOOL_TRACK_KEYLEN];
	struct spool *sp;
	int	      rc;
	size_t	      i;

	if ((rc = spool_open(b->b_cf->cf_spool_dir, b->b_cf->cf_lmdb_map_size,
		 b->b_cf->cf_lmdb_map_max,
		 SPOOL_CLUSTER_IF(b->b_cf->cf_cluster_dsn), &sp)) != 0)
		log_fatalx("spool_open %s: %s", b->b_cf->cf_spool_dir,
		    spool_strerror(rc));
	if ((rc = spool_track_key_load(b->b_cf->cf_spool_dir, true, key)) != 0)
		log_fatalx("tracking key in %s/db: %s", b->b_cf->cf_spool_dir,
		    strerror(rc));
	b->b_t = trackd_new(sp, key, b->b_cf->cf_event_log);
	explicit_bzero(key, sizeof(key));
	trackd_set_pipe(b->b_t, b->b_pipe);
	trackd_set_unsub_pipe(b->b_t, b->b_upipe);
	if ((b->b_ev = ev_new(b->b_nfds + 3, 1)) == NULL ||
	    ev_signal(b->b_ev, trackd_be_signal, b) == -1 ||
	    ev_fd_add(b->b_ev, b->b_reply, EV_READ, trackd_be_verdicts, b) ==
		-1)
		log_fatal("backend: event loop");
	for (i = 0; i < b->b_nfds; i++)
		if (ev_fd_add(b->b_ev, b->b_fds[i], EV_READ, trackd_be_ready,
			b) == -1)
			log_fatal("backend: event loop");
}

void
trackd_backend_main(struct conf *cf, int *fds, size_t nfds)
{
	static struct trackd_be b;
	struct spool	       *sp;

	b.b_cf = cf;
	b.b_fds = fds;
	b.b_nfds = b.b_nopen = nfds;
	b.b_park = xcalloc(TRACKD_UNSUB_MAX, sizeof(*b.b_park));
	b.b_pipe = b.b_upipe = b.b_reply = -1;
	priv_drop(cf->cf_trackd_user, cf->cf_group, NULL);
	trackd_be_fork_committer(&b);
	trackd_be_open(&b);
	log_debug("backend: started, %zu sockets", nfds);
	ev_run(b.b_ev);
	/* the HTTP process is done (or the committer died) */
	trackd_be_stop_committer(&b);
	(void)close(b.b_reply);
	free(b.b_park);
	sp = b.b_t->t_sp;
	trackd_free(&b.b_t);
	spool_close(&sp);
	ev_free(&b.b_ev);
	conf_free(&b.b_cf);
	exit(b.b_status);
}
