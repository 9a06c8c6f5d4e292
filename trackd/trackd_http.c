/*
 * trackd_http: the only file that includes <microhttpd.h> (STYLE L2).
 * libmicrohttpd runs its own pool of threads, each with its own epoll
 * set over the shared listening socket (MHD_USE_INTERNAL_POLLING_THREAD
 * | MHD_USE_EPOLL with a thread pool): no hand-off between threads on
 * the hot path; trackd's loop only flushes. Limits: a request's header
 * block and target fit in TRACKD_CONN_MEMORY (larger: MHD answers 414 or
 * 431), a body of more than TRACKD_BODY_MAX closes the connection, idle
 * connections close after hc_timeout_s, at most hc_conn_max at once.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "buf.h"
#include "cidr.h"
#include "ev.h"
#include "log.h"
#include "trackd.h"
#include "xmem.h"

#define TRACKD_CONN_MEMORY	(16 * 1024)

struct trackd_http {
	struct MHD_Daemon	*h_d;
	struct trackd		*h_t;
	const struct cidr	*h_proxies;
	size_t			 h_nproxies;
};

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
trackd_http_client(const struct trackd_http *h, struct MHD_Connection *c, char *dst,
    size_t dstsz)
{
	const union MHD_ConnectionInfo	*ci;
	const char			*xff, *last;
	char				 a[INET6_ADDRSTRLEN];
	unsigned char			 bin[sizeof(struct in6_addr)];
	socklen_t			 len;
	size_t				 i, n;

	(void)str_copy(dst, dstsz, "");
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	if (getnameinfo(ci->client_addr, len, dst, (socklen_t)dstsz, NULL, 0,
	    NI_NUMERICHOST) != 0) {
		(void)str_copy(dst, dstsz, "");
		return;
	}
	for (i = 0; i < h->h_nproxies && !cidr_match(&h->h_proxies[i], ci->client_addr); i++)
		;
	if (i == h->h_nproxies || (xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "X-Forwarded-For")) == NULL)
		return;
	last = strrchr(xff, ',') != NULL ? strrchr(xff, ',') + 1 : xff;
	last += strspn(last, " \t");
	n = strcspn(last, " \t");
	if (str_ncopy(a, sizeof(a), last, n) == 0 &&
	    (inet_pton(AF_INET, a, bin) == 1 || inet_pton(AF_INET6, a, bin) == 1))
		(void)str_copy(dst, dstsz, a);
}

static void
trackd_http_headers(struct MHD_Response *r, const struct trackd_resp *rs)
{
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rs->rs_type);
	(void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	(void)MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (rs->rs_nocache) {
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
		    "no-store, no-cache, must-revalidate, max-age=0");
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_PRAGMA, "no-cache");
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_EXPIRES, "0");
	}
	if (rs->rs_status == 302)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, rs->rs_location);
	if (rs->rs_allow != NULL)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rs->rs_allow);
	if (rs->rs_type != NULL && strncmp(rs->rs_type, "text/html", 9) == 0)
		(void)MHD_add_response_header(r, "Content-Security-Policy",
		    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
		    "frame-ancestors 'none'");
}

static enum MHD_Result
trackd_http_answer(struct trackd_http *h, struct MHD_Connection *c, const char *url,
    const char *method)
{
	struct trackd_req	 rq = { .rq_url = url };
	struct trackd_resp	 rs;
	struct MHD_Response	*r;
	enum MHD_Result		 ret;
	char			 client[INET6_ADDRSTRLEN];

	rq.rq_method = trackd_http_method(method);
	rq.rq_ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_USER_AGENT);
	trackd_http_client(h, c, client, sizeof(client));
	rq.rq_client = client;
	rq.rq_now_ms = ev_clock_ms();
	trackd_handle(h->h_t, &rq, &rs);
	r = MHD_create_response_from_buffer(rs.rs_len, (void *)(uintptr_t)rs.rs_body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL) {
		trackd_resp_release(&rs);
		return MHD_NO;
	}
	trackd_http_headers(r, &rs);
	ret = MHD_queue_response(c, (unsigned)rs.rs_status, r);
	MHD_destroy_response(r);
	trackd_resp_release(&rs);
	return ret;
}

/*
 * MHD calls this once with the headers (*state NULL), then with each
 * piece of the body, then once more with none: the answer goes there.
 * The body is counted (in *state itself, no allocation) and dropped: no
 * route reads it.
 */
static enum MHD_Result
trackd_http_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data, size_t *data_size,
    void **state)
{
	uintptr_t	seen = (uintptr_t)*state;

	(void)version;
	(void)data;
	if (seen == 0) {
		*state = (void *)(uintptr_t)1;
		return MHD_YES;
	}
	if (*data_size > 0) {
		if (*data_size > TRACKD_BODY_MAX || seen - 1 + *data_size > TRACKD_BODY_MAX) {
			log_info("NOQUEUE: hit=body-too-large, status=close");
			return MHD_NO;
		}
		*state = (void *)(seen + *data_size);
		*data_size = 0;
		return MHD_YES;
	}
	return trackd_http_answer(cls, c, url, method);
}

static void
trackd_http_log(void *arg, const char *fmt, va_list ap)
{
	char	msg[512];

	(void)arg;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warnx("libmicrohttpd: %s", msg);
}

struct trackd_http *
trackd_http_start(const struct trackd_http_conf *hc, struct trackd *t)
{
	struct trackd_http	*h = xcalloc(1, sizeof(*h));
	unsigned		 flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
				    MHD_USE_ERROR_LOG | MHD_USE_ITC;

	h->h_t = t;
	h->h_proxies = hc->hc_proxies;
	h->h_nproxies = hc->hc_nproxies;
	if (hc->hc_cert_pem != NULL)
		flags |= MHD_USE_TLS;
	h->h_d = MHD_start_daemon(flags, 0, NULL, NULL, trackd_http_access, h,
	    MHD_OPTION_EXTERNAL_LOGGER, trackd_http_log, NULL,	/* first: MHD wants it */
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)hc->hc_fd,
	    MHD_OPTION_THREAD_POOL_SIZE, hc->hc_threads,
	    MHD_OPTION_CONNECTION_LIMIT, hc->hc_conn_max,
	    MHD_OPTION_CONNECTION_TIMEOUT, hc->hc_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)TRACKD_CONN_MEMORY,
	    hc->hc_cert_pem != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
	    hc->hc_cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, hc->hc_key_pem,
	    MHD_OPTION_END);
	if (h->h_d == NULL) {
		log_warnx("libmicrohttpd did not start (TLS: %s)",
		    hc->hc_cert_pem != NULL ? "implicit" : "none");
		free(h);
		return NULL;
	}
	return h;
}

void
trackd_http_stop(struct trackd_http **hp)
{
	MHD_socket	fd;

	if (*hp == NULL)
		return;
	/* no new connections; the ones under way are finished by stop */
	if ((fd = MHD_quiesce_daemon((*hp)->h_d)) != MHD_INVALID_SOCKET)
		(void)close(fd);	/* ours now; nothing to report on close */
	MHD_stop_daemon((*hp)->h_d);
	free(*hp);
	*hp = NULL;
}
