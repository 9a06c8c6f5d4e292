/*
 * spoold_metrics_http: spoold's only <microhttpd.h> (STYLE L2; trackd's
 * server is trackd_http.c). One internal polling thread, so one scrape
 * renders at a time. GET (or HEAD) /metrics answers 200 with the text
 * format 0.0.4; any other path 404, any other method 405; a request
 * body closes the connection. Limits as trackd's: the request's header
 * block fits in SPOOLD_METRICS_CONN_MEMORY (else MHD answers 414/431), at
 * most SPOOLD_METRICS_CONNS connections, idle ones close after
 * SPOOLD_METRICS_TIMEOUT seconds.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "buf.h"
#include "log.h"
#include "spoold_metrics.h"
#include "xmem.h"

#define SPOOLD_METRICS_CONN_MEMORY (16 * 1024)
#define SPOOLD_METRICS_CONNS	   16
#define SPOOLD_METRICS_TIMEOUT	   10
#define SPOOLD_METRICS_TYPE	   "text/plain; version=0.0.4; charset=utf-8"

struct spoold_metrics_http {
	struct MHD_Daemon	 *h_d;
	spoold_metrics_render_cb *h_render;
	void			 *h_arg;
};

static enum MHD_Result
spoold_metrics_http_reply(struct MHD_Connection *c, unsigned status,
    const char *type, const char *body, size_t len, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result	     ret;

	r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
	if (allow != NULL)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
spoold_metrics_http_answer(struct spoold_metrics_http *h,
    struct MHD_Connection *c, const char *url, const char *method)
{
	static const char nf[] = "not found\n", na[] = "method not allowed\n",
			  err[] = "metrics unavailable\n";
	struct buf	b;
	enum MHD_Result ret;

	if (strcmp(url, "/metrics") != 0)
		return spoold_metrics_http_reply(c, MHD_HTTP_NOT_FOUND,
		    "text/plain", nf, sizeof(nf) - 1, NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return spoold_metrics_http_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "text/plain", na, sizeof(na) - 1, "GET, HEAD");
	buf_init(&b, SPOOLD_METRICS_BODY_MAX);
	if (h->h_render(h->h_arg, &b) != 0) {
		log_warnx("metrics: the page exceeds %d bytes",
		    SPOOLD_METRICS_BODY_MAX);
		ret = spoold_metrics_http_reply(c,
		    MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", err,
		    sizeof(err) - 1, NULL);
	} else
		ret = spoold_metrics_http_reply(c, MHD_HTTP_OK,
		    SPOOLD_METRICS_TYPE, b.data != NULL ? b.data : "", b.len,
		    NULL);
	buf_release(&b);
	return ret;
}

/* Headers first (*state NULL), then body pieces (none allowed), then the answer. */
static enum MHD_Result
spoold_metrics_http_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data,
    size_t *data_size, void **state)
{
	(void)version;
	(void)data;
	if (*state == NULL) {
		*state = (void *)(uintptr_t)1;
		return MHD_YES;
	}
	if (*data_size > 0) {
		log_info("metrics: request with a body from a scraper: closed");
		return MHD_NO;
	}
	return spoold_metrics_http_answer(cls, c, url, method);
}

static void
spoold_metrics_http_log(void *arg, const char *fmt, va_list ap)
{
	char msg[512];

	(void)arg;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_warnx("metrics: libmicrohttpd: %s", msg);
}

struct spoold_metrics_http *
spoold_metrics_http_start(int fd, spoold_metrics_render_cb *render, void *arg)
{
	struct spoold_metrics_http *h = xcalloc(1, sizeof(*h));

	h->h_render = render;
	h->h_arg = arg;
	h->h_d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC,
	    0, NULL, NULL, spoold_metrics_http_access, h,
	    MHD_OPTION_EXTERNAL_LOGGER, spoold_metrics_http_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)SPOOLD_METRICS_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SPOOLD_METRICS_TIMEOUT,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)SPOOLD_METRICS_CONN_MEMORY, MHD_OPTION_END);
	if (h->h_d == NULL) {
		log_warnx("metrics: libmicrohttpd did not start");
		free(h);
		return NULL;
	}
	return h;
}

void
spoold_metrics_http_stop(struct spoold_metrics_http **hp)
{
	MHD_socket fd;

	if (*hp == NULL)
		return;
	if ((fd = MHD_quiesce_daemon((*hp)->h_d)) != MHD_INVALID_SOCKET)
		(void)close(fd);
	MHD_stop_daemon((*hp)->h_d);
	free(*hp);
	*hp = NULL;
}
