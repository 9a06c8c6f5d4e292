/*
 * trackd_http: the only file that includes <microhttpd.h> (STYLE L2).
 * libmicrohttpd runs its own pool of threads, each with its own epoll
 * set over the shared listening socket (MHD_USE_INTERNAL_POLLING_THREAD
 * | MHD_USE_EPOLL with a thread pool). This process holds no database
 * and no key: a thread answers unknown paths (404) and wrong methods
 * (405) itself and asks the backend (trackd_backend.c) for the rest over
 * its own socket (trackd_proto.h), so threads never wait for each other;
 * no answer in TRACKD_BACKEND_TIMEOUT_MS, or none at all: 503 and
 * hc_lost (trackd stops, systemd restarts it). An unsubscribe (POST /u/)
 * is answered after its commit: its connection is suspended
 * (MHD_suspend_connection; MHD_ALLOW_SUSPEND_RESUME) and its query goes
 * on the unsubscribe socket (hc_unsub), whose answers the waiter thread
 * reads, matches by id and hands to the connection it resumes; the
 * request's thread goes on serving its other connections meanwhile. At
 * most TRACKD_HTTP_WAIT_MAX wait; no answer in TRACKD_BACKEND_TIMEOUT_MS:
 * 503 (the commit may still happen: the sender's retry gets the same
 * answer). MHD does not watch a suspended connection: one whose client
 * left is found closed when it is resumed, and freed then (at most
 * TRACKD_BACKEND_TIMEOUT_MS later). Limits: a request's header
 * block and target fit in TRACKD_CONN_MEMORY (larger: MHD answers 414 or
 * 431), a body of more than TRACKD_BODY_MAX closes the connection, idle
 * connections close after hc_timeout_s, at most hc_conn_max at once.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "buf.h"
#include "cidr.h"
#include "ev.h"
#include "log.h"
#include "spool.h"
#include "trackd.h"
#include "trackd_proto.h"
#include "xmem.h"

#define TRACKD_CONN_MEMORY (16 * 1024)
/* unsubscribes waiting for their answer: the backend's and the
 * committer's bound (TRACKD_UNSUB_MAX), a power of two (the ids) */
#define TRACKD_HTTP_WAIT_MAX  1024
#define TRACKD_HTTP_WAIT_BITS 10
_Static_assert(TRACKD_HTTP_WAIT_MAX == 1 << TRACKD_HTTP_WAIT_BITS,
    "an unsubscribe's id holds its slot");

/* One request (MHD's per-request pointer), freed when MHD is done with
 * it (trackd_http_done). */
struct trackd_http_req {
	size_t	 rq_body;    /* body bytes seen */
	bool	 rq_waiting; /* suspended, or resumed and not yet answered */
	bool	 rq_settled; /* resumed: rq_ans is its answer (NULL: 503) */
	uint8_t *rq_ans;
	size_t	 rq_anslen;
};

/* A suspended unsubscribe; s_conn NULL: a free slot. */
struct trackd_http_slot {
	struct MHD_Connection  *s_conn;
	struct trackd_http_req *s_req;
	uint32_t		s_id; /* the query's: slot | generation */
	int64_t			s_due;
};

/* A socket to the backend, one per thread (c_mu in case threads ever
 * outnumber sockets), with its buffers. */
struct trackd_chan {
	pthread_mutex_t c_mu;
	int		c_fd;
	uint32_t	c_id;
	uint8_t		c_in[TP_REPLY_MAX + 1];
	char		c_loc[TP_LOC_MAX + 1];
};

struct trackd_http {
	struct MHD_Daemon  *h_d;
	const struct cidr  *h_proxies;
	size_t		    h_nproxies;
	struct trackd_chan *h_chan;
	size_t		    h_nchan;
	atomic_uint	    h_next;
	void (*h_lost)(void *);
	void *h_lost_arg;
	/* the unsubscribes: their socket, the waiter thread and its slots */
	int			 h_ufd;
	pthread_t		 h_waiter;
	int			 h_wake[2]; /* a pipe: the waiter's stop */
	pthread_mutex_t		 h_umu;	    /* everything below */
	struct trackd_http_slot *h_slot;    /* TRACKD_HTTP_WAIT_MAX */
	size_t			 h_nslot;   /* in use */
	size_t			 h_nwait;   /* rq_waiting requests */
	uint32_t		 h_gen, h_hint;
	bool			 h_stop;    /* no more suspends */
	uint8_t			 h_uin[TP_REPLY_MAX + 1];
};

static const char trackd_http_503_text[] = "Service Unavailable: try again\n";

static enum trackd_method
trackd_http_method(const char *m)
{
	if (strcmp(m, MHD_HTTP_METHOD_GET) == 0)
		return TRACKD_M_GET;
	if (strcmp(m, MHD_HTTP_METHOD_HEAD) == 0)
		return TRACKD_M_HEAD;
	if (strcmp(m, MHD_HTTP_METHOD_POST) == 0)
		return TRACKD_M_POST;
	return TRACKD_M_OTHER;
}

/*
 * The address the request came from; from a trusted reverse proxy
 * (track_trusted_proxy), the last X-Forwarded-For entry instead: the one
 * that proxy appended (entries before it are the client's own claims).
 */
static void
trackd_http_client(const struct trackd_http *h, struct MHD_Connection *c,
    char *dst, size_t dstsz)
{
	const union MHD_ConnectionInfo *ci;
	const char		       *xff, *last;
	char				a[INET6_ADDRSTRLEN];
	unsigned char			bin[sizeof(struct in6_addr)];
	socklen_t			len;
	size_t				i, n;

	(void)str_copy(dst, dstsz, "");
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	len = ci->client_addr->sa_family == AF_INET6
	    ? sizeof(struct sockaddr_in6)
	    : sizeof(struct sockaddr_in);
	if (getnameinfo(ci->client_addr, len, dst, (socklen_t)dstsz, NULL, 0,
		NI_NUMERICHOST) != 0) {
		(void)str_copy(dst, dstsz, "");
		return;
	}
	for (i = 0; i < h->h_nproxies &&
	     !cidr_match(&h->h_proxies[i], ci->client_addr);
	     i++)
		;
	if (i == h->h_nproxies ||
	    (xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		 "X-Forwarded-For")) == NULL)
		return;
	last = strrchr(xff, ',') != NULL ? strrchr(xff, ',') + 1 : xff;
	last += strspn(last, " \t");
	n = strcspn(last, " \t");
	if (str_ncopy(a, sizeof(a), last, n) == 0 &&
	    (inet_pton(AF_INET, a, bin) == 1 ||
		inet_pton(AF_INET6, a, bin) == 1))
		(void)str_copy(dst, dstsz, a);
}

static void
trackd_http_headers(struct MHD_Response *r, const struct trackd_resp *rs)
{
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    rs->rs_type);
	(void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	(void)MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (rs->rs_nocache) {
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
		    "no-store, no-cache, must-revalidate, max-age=0");
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_PRAGMA,
		    "no-cache");
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_EXPIRES, "0");
	}
	if (rs->rs_status == 302)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION,
		    rs->rs_location);
	if (rs->rs_allow != NULL)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW,
		    rs->rs_allow);
	if (rs->rs_type != NULL && strncmp(rs->rs_type, "text/html", 9) == 0)
		(void)MHD_add_response_header(r, "Content-Security-Policy",
		    "default-src 'none'; style-src 'unsafe-inline'; "
		    "form-action 'self'; "
		    "frame-ancestors 'none'");
}

/* One line per request answered here (STYLE G2), as trackd_hit.c's. */
static void
trackd_http_noqueue(const char *url, const char *client, const char *what,
    int status)
{
	char path[96], cut[SPOOL_CLIENT_MAX];

	if (spool_client_truncate(client, cut, sizeof(cut)) == -1)
		(void)str_copy(cut, sizeof(cut), "unknown");
	log_info("NOQUEUE: hit=%s, path=%s, client=%s, status=%d", what,
	    log_vis(path, sizeof(path), url, strlen(url)), cut, status);
}

/* This thread's socket to the backend (hc_threads threads, as many
 * sockets: taken in turn at a thread's first request). */
static struct trackd_chan *
trackd_http_chan(struct trackd_http *h)
{
	static _Thread_local struct trackd_chan *mine;
	unsigned				 i;

	if (mine == NULL) {
		i = atomic_fetch_add(&h->h_next, 1);
		mine = &h->h_chan[i % h->h_nchan];
	}
	return mine;
}

/* Waits for the reply to id (a late one to an earlier request is
 * skipped): a blocking recv bounded by the socket's SO_RCVTIMEO (one
 * system call per answer, no poll); 0, or -1: gone, slow or malformed
 * (logged). */
static int
trackd_http_wait(struct trackd_chan *ch, uint32_t id, struct tp_reply *r)
{
	int64_t end = ev_clock_ms() + TRACKD_BACKEND_TIMEOUT_MS;
	ssize_t n;

	for (;;) {
		n = recv(ch->c_fd, ch->c_in, sizeof(ch->c_in), MSG_TRUNC);
		if ((n == -1 && errno != EINTR) || ev_clock_ms() >= end) {
			if (n == -1 && errno != EAGAIN && errno != EINTR)
				log_warn("backend: gone: 503, stopping");
			else
				log_warnx("backend: no answer in %d ms: 503, "
					  "stopping",
				    TRACKD_BACKEND_TIMEOUT_MS);
			return -1;
		}
		if (n == -1)
			continue; /* EINTR */
		if (n == 0) {
			log_warnx("backend: gone: 503, stopping");
			return -1;
		}
		if ((size_t)n > TP_REPLY_MAX ||
		    tp_reply_parse(ch->c_in, (size_t)n, r) != TP_OK ||
		    r->r_type != TP_R_ANSWER) {
			log_warnx("backend: a malformed answer: 503, stopping");
			return -1;
		}
		if (r->r_id == id)
			return 0;
	}
}

static void
trackd_http_503(struct trackd_resp *rs)
{
	rs->rs_status = 503;
	rs->rs_type = "text/plain; charset=utf-8";
	rs->rs_body = trackd_http_503_text;
	rs->rs_len = strlen(trackd_http_503_text);
}

/* rs from the backend's answer r (pointing into r's buffer); the
 * location is copied to loc (TP_LOC_MAX + 1 bytes). */
static void
trackd_http_fill(const struct tp_reply *r, char *loc, struct trackd_resp *rs)
{
	static const char *const types[] = { "text/plain; charset=utf-8",
		"image/gif", "text/html; charset=utf-8" };

	rs->rs_status = r->r_status;
	rs->rs_type = types[r->r_ctype];
	rs->rs_body = r->r_body;
	rs->rs_len = r->r_bodylen;
	rs->rs_nocache = (r->r_flags & TP_F_NOCACHE) != 0;
	rs->rs_allow = (r->r_flags & TP_F_ALLOW_GHP) ? "GET, HEAD, POST"
	    : (r->r_flags & TP_F_ALLOW_GH)	     ? "GET, HEAD"
						     : NULL;
	memcpy(loc, r->r_loc, r->r_loclen);
	loc[r->r_loclen] = '\0';
	rs->rs_location = loc;
}

/* The round trip; on failure a 503 in rs and hc_lost. rs points into
 * the channel's buffers: the caller holds c_mu until it is sent. */
static void
trackd_http_ask(struct trackd_http *h, struct trackd_chan *ch,
    struct tp_query *q, struct trackd_resp *rs)
{
	uint8_t		out[TP_QUERY_MAX];
	struct tp_reply r;
	size_t		n;

	q->q_id = ++ch->c_id;
	trackd_http_503(rs);
	if ((n = tp_query_make(out, sizeof(out), q)) == 0) {
		/* cannot happen: every field was checked or cut before */
		log_warnx("NOQUEUE: a request that fits no message: 503");
		return;
	}
	if (send(ch->c_fd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n) {
		log_warn("backend: sending a request: 503, stopping");
		h->h_lost(h->h_lost_arg);
		return;
	}
	if (trackd_http_wait(ch, q->q_id, &r) == -1) {
		h->h_lost(h->h_lost_arg);
		return;
	}
	trackd_http_fill(&r, ch->c_loc, rs);
}

static bool trackd_http_settle(struct trackd_http *, uint32_t, uint8_t *,
    size_t);

/* One message on the unsubscribes' socket, shared by the threads (one
 * datagram is atomic). The backend reads at once; a burst larger than
 * the socket's buffer waits for room, bounded. 0, or -1 with errno. */
static int
trackd_http_usend(struct trackd_http *h, const uint8_t *out, size_t n)
{
	struct pollfd pfd = { .fd = h->h_ufd, .events = POLLOUT };
	ssize_t	      r;

	while ((r = send(h->h_ufd, out, n, MSG_DONTWAIT | MSG_NOSIGNAL)) ==
		-1 &&
	    (errno == EINTR ||
		(errno == EAGAIN &&
		    poll(&pfd, 1, TRACKD_BACKEND_TIMEOUT_MS) == 1)))
		;
	return r == (ssize_t)n ? 0 : -1;
}

/*
 * POST /u/: the connection suspended, then the query on the
 * unsubscribes' socket; trackd_http_waiter resumes it with the answer
 * (the slot is taken before the query goes: no answer can come first).
 * false: not suspended, a 503 for the caller.
 */
static bool
trackd_http_suspend(struct trackd_http *h, struct MHD_Connection *c,
    struct trackd_http_req *rq, struct tp_query *q)
{
	struct trackd_http_slot *s = NULL;
	uint8_t			 out[TP_QUERY_MAX];
	size_t			 i, n;

	(void)pthread_mutex_lock(&h->h_umu);
	for (i = 0; !h->h_stop && s == NULL && i < TRACKD_HTTP_WAIT_MAX; i++)
		if (h->h_slot[(h->h_hint + i) % TRACKD_HTTP_WAIT_MAX].s_conn ==
		    NULL)
			s = &h->h_slot[(h->h_hint + i) % TRACKD_HTTP_WAIT_MAX];
	if (s == NULL) {
		(void)pthread_mutex_unlock(&h->h_umu);
		log_warnx("NOQUEUE: hit=unsubscribe, status=503 (%s)",
		    h->h_stop ? "stopping"
			      : "1024 wait for their commit already");
		return false;
	}
	h->h_hint = (uint32_t)(s - h->h_slot) + 1;
	q->q_id = ++h->h_gen << TRACKD_HTTP_WAIT_BITS |
	    (uint32_t)(s - h->h_slot);
	*s = (struct trackd_http_slot){ .s_conn = c,
		.s_req = rq,
		.s_id = q->q_id,
		.s_due = ev_clock_ms() + TRACKD_BACKEND_TIMEOUT_MS };
	h->h_nslot++;
	h->h_nwait++;
	rq->rq_waiting = true;
	MHD_suspend_connection(c);
	(void)pthread_mutex_unlock(&h->h_umu);
	if ((n = tp_query_make(out, sizeof(out), q)) == 0 ||
	    trackd_http_usend(h, out, n) == -1) {
		/* n == 0 cannot happen: every field was checked or cut */
		log_warn("backend: sending an unsubscribe: 503, stopping");
		h->h_lost(h->h_lost_arg);
		(void)trackd_http_settle(h, q->q_id, NULL, 0);
	}
	return true;
}

/* The waiter: the request waiting for id gets ans (NULL: 503), and its
 * connection is resumed; false if none does (its 503 went already). */
static bool
trackd_http_settle(struct trackd_http *h, uint32_t id, uint8_t *ans,
    size_t len)
{
	struct trackd_http_slot *s =
	    &h->h_slot[id & (TRACKD_HTTP_WAIT_MAX - 1)];
	struct MHD_Connection *c;

	(void)pthread_mutex_lock(&h->h_umu);
	if ((c = s->s_conn) == NULL || s->s_id != id) {
		(void)pthread_mutex_unlock(&h->h_umu);
		return false;
	}
	s->s_req->rq_ans = ans;
	s->s_req->rq_anslen = len;
	s->s_req->rq_settled = true;
	*s = (struct trackd_http_slot){ .s_conn = NULL };
	h->h_nslot--;
	(void)pthread_mutex_unlock(&h->h_umu);
	/* suspended until this call: MHD cannot have freed it */
	MHD_resume_connection(c);
	return true;
}

/* The waiter: 503 for the waits past their time (all: every one);
 * returns poll's timeout: until the next one is due, or (none waits) the
 * time a new one would have, as no answer may come to wake the poll. */
static int
trackd_http_sweep(struct trackd_http *h, bool all)
{
	uint32_t ids[TRACKD_HTTP_WAIT_MAX];
	int64_t	 now = ev_clock_ms(), next = -1;
	size_t	 i, n = 0;

	(void)pthread_mutex_lock(&h->h_umu);
	for (i = 0; i < TRACKD_HTTP_WAIT_MAX; i++) {
		if (h->h_slot[i].s_conn == NULL)
			continue;
		if (all || h->h_slot[i].s_due <= now)
			ids[n++] = h->h_slot[i].s_id;
		else if (next == -1 || h->h_slot[i].s_due < next)
			next = h->h_slot[i].s_due;
	}
	(void)pthread_mutex_unlock(&h->h_umu);
	for (i = 0; i < n; i++)
		if (trackd_http_settle(h, ids[i], NULL, 0) && !all)
			log_warnx("NOQUEUE: hit=unsubscribe, status=503 (no "
				  "answer in %d ms)",
			    TRACKD_BACKEND_TIMEOUT_MS);
	return next == -1 ? TRACKD_BACKEND_TIMEOUT_MS : (int)(next - now);
}

/* The waiter: one answer from the unsubscribe socket; false: the
 * backend is gone or broken (logged). */
static bool
trackd_http_recv(struct trackd_http *h)
{
	struct tp_reply r;
	uint8_t	       *ans;
	ssize_t		n;

	n = recv(h->h_ufd, h->h_uin, sizeof(h->h_uin), MSG_TRUNC | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		log_warnx("backend: gone: 503, stopping");
		return false;
	}
	if ((size_t)n > TP_REPLY_MAX ||
	    tp_reply_parse(h->h_uin, (size_t)n, &r) != TP_OK ||
	    r.r_type != TP_R_ANSWER) {
		log_warnx("backend: a malformed answer: 503, stopping");
		return false;
	}
	ans = xmalloc((size_t)n);
	memcpy(ans, h->h_uin, (size_t)n);
	if (!trackd_http_settle(h, r.r_id, ans, (size_t)n))
		free(ans); /* answered 503 already */
	return true;
}

/* The waiter thread: answers the suspended unsubscribes; ends once
 * trackd_http_stop asked and none waits. */
static void *
trackd_http_waiter(void *arg)
{
	struct trackd_http *h = arg;
	struct pollfd	    pfd[2] = { { .fd = h->h_ufd, .events = POLLIN },
		   { .fd = h->h_wake[0], .events = POLLIN } };
	bool		    done;
	int		    tmo;

	for (;;) {
		tmo = trackd_http_sweep(h, false);
		(void)pthread_mutex_lock(&h->h_umu);
		done = h->h_stop && h->h_nslot == 0;
		(void)pthread_mutex_unlock(&h->h_umu);
		if (done)
			return NULL;
		if (poll(pfd, 2, tmo) == -1 && errno != EINTR)
			log_fatal("poll");
		if (pfd[0].revents != 0 && !trackd_http_recv(h)) {
			pfd[0].fd = -1; /* nothing more comes */
			(void)trackd_http_sweep(h, true);
			h->h_lost(h->h_lost_arg);
		}
		if (pfd[1].revents != 0)
			pfd[1].fd = -1; /* stopping: the loop's test ends it */
	}
}

/* A resumed unsubscribe's answer (or its 503). */
static enum MHD_Result
trackd_http_resumed(struct trackd_http *h, struct MHD_Connection *c,
    struct trackd_http_req *rq)
{
	struct trackd_resp   rs;
	struct tp_reply	     r;
	struct MHD_Response *mr;
	enum MHD_Result	     ret = MHD_NO;
	char		     loc[TP_LOC_MAX + 1];

	memset(&rs, 0, sizeof(rs));
	trackd_http_503(&rs);
	if (rq->rq_ans != NULL &&
	    tp_reply_parse(rq->rq_ans, rq->rq_anslen, &r) == TP_OK)
		trackd_http_fill(&r, loc, &rs);
	if ((mr = MHD_create_response_from_buffer(rs.rs_len,
		 (void *)(uintptr_t)rs.rs_body, MHD_RESPMEM_MUST_COPY)) != NULL) {
		trackd_http_headers(mr, &rs);
		ret = MHD_queue_response(c, (unsigned)rs.rs_status, mr);
		MHD_destroy_response(mr);
	}
	(void)pthread_mutex_lock(&h->h_umu);
	rq->rq_waiting = false;
	h->h_nwait--;
	(void)pthread_mutex_unlock(&h->h_umu);
	return ret;
}

/* The user agent as the backend takes it: cut, no control characters. */
static size_t
trackd_http_ua(const char *ua, char *dst)
{
	size_t i, n = ua != NULL ? strnlen(ua, TP_UA_MAX) : 0;

	for (i = 0; i < n; i++)
		dst[i] = (unsigned char)ua[i] < 0x20 || ua[i] == 0x7f ? ' '
								      : ua[i];
	return n;
}

/* The route, the method, the token's syntax: answered here (404, 405);
 * anything else goes to the backend. */
static bool
trackd_http_local(const char *url, const char *client, enum trackd_method m,
    struct tp_query *q, struct trackd_resp *rs)
{
	const char *tok;
	int	    rt;

	rt = strlen(url) > TRACKD_URL_MAX ? -1
					  : tp_route(url, &q->q_kind, &tok);
	if (rt != -1 &&
	    (m == TRACKD_M_OTHER || (m == TRACKD_M_POST && q->q_kind != 'u'))) {
		trackd_http_noqueue(url, client, "bad-method", 405);
		rs->rs_status = 405;
		rs->rs_body = "Method Not Allowed\n";
		rs->rs_allow = q->q_kind == 'u' ? "GET, HEAD, POST"
						: "GET, HEAD";
	} else if (rt != 0) {
		trackd_http_noqueue(url, client,
		    rt == -1 ? "unknown" : "bad-token", 404);
		rs->rs_status = 404;
		rs->rs_body = "Not Found\n";
	} else {
		q->q_tok = tok;
		q->q_toklen = strlen(tok);
		return false;
	}
	rs->rs_type = "text/plain; charset=utf-8";
	rs->rs_len = strlen(rs->rs_body);
	return true;
}

static enum MHD_Result
trackd_http_answer(struct trackd_http *h, struct MHD_Connection *c,
    const char *url, const char *method, struct trackd_http_req *rqs)
{
	struct tp_query	     q = { .q_type = TP_Q_HIT };
	struct trackd_resp   rs;
	struct trackd_chan  *ch = NULL;
	struct MHD_Response *r;
	enum MHD_Result	     ret;
	enum trackd_method   m = trackd_http_method(method);
	char		     client[INET6_ADDRSTRLEN], ua[TP_UA_MAX];

	if (rqs->rq_settled)
		return trackd_http_resumed(h, c, rqs);
	memset(&rs, 0, sizeof(rs));
	trackd_http_client(h, c, client, sizeof(client));
	if (!trackd_http_local(url, client, m, &q, &rs)) {
		q.q_method = m == TRACKD_M_HEAD ? TP_M_HEAD
		    : m == TRACKD_M_POST	? TP_M_POST
						: TP_M_GET;
		q.q_client = client;
		q.q_clientlen = strspn(client, "0123456789abcdefABCDEF:.");
		if (q.q_clientlen > TP_CLIENT_MAX)
			q.q_clientlen = 0;
		q.q_ua = ua;
		q.q_ualen = trackd_http_ua(MHD_lookup_connection_value(c,
					       MHD_HEADER_KIND,
					       MHD_HTTP_HEADER_USER_AGENT),
		    ua);
		/* POST is /u/'s alone (trackd_http_local): its commit */
		if (m == TRACKD_M_POST) {
			if (trackd_http_suspend(h, c, rqs, &q))
				return MHD_YES;
			trackd_http_503(&rs);
		} else {
			ch = trackd_http_chan(h);
			(void)pthread_mutex_lock(&ch->c_mu);
			trackd_http_ask(h, ch, &q, &rs);
		}
	}
	r = MHD_create_response_from_buffer(rs.rs_len,
	    (void *)(uintptr_t)rs.rs_body, MHD_RESPMEM_MUST_COPY);
	if (r != NULL) {
		trackd_http_headers(r, &rs);
		ret = MHD_queue_response(c, (unsigned)rs.rs_status, r);
		MHD_destroy_response(r);
	} else
		ret = MHD_NO;
	if (ch != NULL)
		(void)pthread_mutex_unlock(&ch->c_mu);
	return ret;
}

/*
 * MHD calls this once with the headers (*state NULL: the request's
 * struct is made), then with each piece of the body, then once more with
 * none: the answer goes there (again after a resume). The body is
 * counted and dropped: no route reads it.
 */
static enum MHD_Result
trackd_http_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_size, void **state)
{
	struct trackd_http_req *rq = *state;

	(void)version;
	(void)data;
	if (rq == NULL) {
		*state = xcalloc(1, sizeof(*rq));
		return MHD_YES;
	}
	if (*data_size > 0) {
		if (*data_size > TRACKD_BODY_MAX ||
		    rq->rq_body + *data_size > TRACKD_BODY_MAX) {
			log_info("NOQUEUE: hit=body-too-large, status=close");
			return MHD_NO;
		}
		rq->rq_body += *data_size;
		*data_size = 0;
		return MHD_YES;
	}
	return trackd_http_answer(cls, c, url, method, rq);
}

/* MHD is done with a request: its struct goes. */
static void
trackd_http_done(void *cls, struct MHD_Connection *c, void **state,
    enum MHD_RequestTerminationCode why)
{
	struct trackd_http	*h = cls;
	struct trackd_http_req	*rq = *state;

	(void)c;
	(void)why;
	if (rq == NULL)
		return;
	if (rq->rq_waiting) {
		/* resumed, then closed before its answer could be queued
		 * (its client left): MHD never frees a suspended one */
		(void)pthread_mutex_lock(&h->h_umu);
		if (!rq->rq_settled)
			log_panic("trackd: a suspended request was freed");
		h->h_nwait--;
		(void)pthread_mutex_unlock(&h->h_umu);
	}
	free(rq->rq_ans);
	free(rq);
	*state = NULL;
}

static void
trackd_http_log(void *arg, const char *fmt, va_list ap)
{
	char msg[512];

	(void)arg;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warnx("libmicrohttpd: %s", msg);
}

/* The unsubscribes' side: slots, lock, the waiter thread. */
static void
trackd_http_waiter_start(struct trackd_http *h, int ufd)
{
	h->h_ufd = ufd;
	h->h_slot = xcalloc(TRACKD_HTTP_WAIT_MAX, sizeof(*h->h_slot));
	if (pthread_mutex_init(&h->h_umu, NULL) != 0)
		log_fatalx("pthread_mutex_init");
	if (pipe2(h->h_wake, O_CLOEXEC) == -1)
		log_fatal("pipe2");
	if ((errno = pthread_create(&h->h_waiter, NULL, trackd_http_waiter,
		 h)) != 0)
		log_fatal("pthread_create");
}

/* Every waiting unsubscribe answered (or 503 past its time), no new
 * one suspended, the waiter joined: MHD must not be stopped with a
 * suspended connection. Then the resumed ones' threads queue their
 * answers (bounded). */
static void
trackd_http_waiter_stop(struct trackd_http *h)
{
	int64_t until = ev_clock_ms() + 1000;
	size_t	n;

	(void)pthread_mutex_lock(&h->h_umu);
	h->h_stop = true;
	(void)pthread_mutex_unlock(&h->h_umu);
	/* a full pipe already says it */
	if (write(h->h_wake[1], "", 1) == -1 && errno != EAGAIN)
		log_warn("waking the unsubscribes' thread");
	if ((errno = pthread_join(h->h_waiter, NULL)) != 0)
		log_fatal("pthread_join");
	do {
		(void)pthread_mutex_lock(&h->h_umu);
		n = h->h_nwait;
		(void)pthread_mutex_unlock(&h->h_umu);
	} while (n > 0 && ev_clock_ms() < until && poll(NULL, 0, 10) == 0);
	(void)close(h->h_wake[0]); /* pipes: nothing to lose */
	(void)close(h->h_wake[1]);
}

struct trackd_http *
trackd_http_start(const struct trackd_http_conf *hc)
{
	struct trackd_http *h = xcalloc(1, sizeof(*h));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
	struct timeval tmo = { .tv_sec = TRACKD_BACKEND_TIMEOUT_MS / 1000,
		.tv_usec = TRACKD_BACKEND_TIMEOUT_MS % 1000 * 1000 };
	size_t	       i;

	h->h_nchan = hc->hc_threads;
	h->h_chan = xcalloc(h->h_nchan, sizeof(*h->h_chan));
	for (i = 0; i < h->h_nchan; i++) {
		h->h_chan[i].c_fd = hc->hc_chan[i];
		if (setsockopt(hc->hc_chan[i], SOL_SOCKET, SO_RCVTIMEO, &tmo,
			sizeof(tmo)) == -1)
			log_fatal("setsockopt SO_RCVTIMEO");
		if (pthread_mutex_init(&h->h_chan[i].c_mu, NULL) != 0)
			log_fatalx("pthread_mutex_init");
	}
	h->h_lost = hc->hc_lost;
	h->h_lost_arg = hc->hc_lost_arg;
	h->h_proxies = hc->hc_proxies;
	h->h_nproxies = hc->hc_nproxies;
	trackd_http_waiter_start(h, hc->hc_unsub);
	if (hc->hc_tls_retrieve != NULL)
		flags |= MHD_USE_TLS;
	h->h_d = MHD_start_daemon(flags, 0, NULL, NULL, trackd_http_access, h,
	    MHD_OPTION_EXTERNAL_LOGGER, trackd_http_log,
	    NULL, /* first: MHD wants it */
	    MHD_OPTION_NOTIFY_COMPLETED, trackd_http_done, h,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)hc->hc_fd,
	    /* one thread: MHD's own, no pool (a pool size of 0 or 1 is
	     * logged as ignored): the connection limit again instead */
	    hc->hc_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE
			       : MHD_OPTION_CONNECTION_LIMIT,
	    hc->hc_threads > 1 ? hc->hc_threads : hc->hc_conn_max,
	    MHD_OPTION_CONNECTION_LIMIT, hc->hc_conn_max,
	    MHD_OPTION_CONNECTION_TIMEOUT, hc->hc_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)TRACKD_CONN_MEMORY,
	    /* no key here: the chain and an external key (trackd_tls.h);
	     * MHD reads a gnutls_certificate_retrieve_function2 pointer */
	    hc->hc_tls_retrieve != NULL ? MHD_OPTION_HTTPS_CERT_CALLBACK
					: MHD_OPTION_END,
	    hc->hc_tls_retrieve, MHD_OPTION_END);
	if (h->h_d == NULL) {
		log_warnx("libmicrohttpd did not start (TLS: %s)",
		    hc->hc_tls_retrieve != NULL ? "implicit" : "none");
		trackd_http_waiter_stop(h);
		free(h->h_slot);
		free(h->h_chan);
		free(h);
		return NULL;
	}
	return h;
}

void
trackd_http_stop(struct trackd_http **hp)
{
	MHD_socket fd;

	if (*hp == NULL)
		return;
	/* no new connections; the ones under way are finished by stop */
	if ((fd = MHD_quiesce_daemon((*hp)->h_d)) != MHD_INVALID_SOCKET)
		(void)close(fd); /* ours now; nothing to report on close */
	trackd_http_waiter_stop(*hp);
	MHD_stop_daemon((*hp)->h_d);
	free((*hp)->h_slot);
	free((*hp)->h_chan);
	free(*hp);
	*hp = NULL;
}
