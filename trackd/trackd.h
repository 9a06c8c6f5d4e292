/*
 * trackd: the tracking server (issue 16). Three processes:
 *  - the HTTP process (trackd.c, trackd_http.c: the only file that
 *    includes <microhttpd.h>), as trackd_http_user, chrooted into an
 *    empty directory, with no database and no key: libmicrohttpd's
 *    threads route each request and send it to the backend as a
 *    trackd_proto.h message, one socket per thread; an unsubscribe goes
 *    on a socket of its own while its connection is suspended;
 *  - the backend (trackd_backend.c), as trackd_user: trackd_handle()
 *    (trackd_hit.c) verifies the token with the tracking key, reads the
 *    spool and fills the struct trackd_resp that goes back;
 *  - the committer (trackd_commit.c), the backend's child with its own
 *    LMDB environment.
 *
 * Durability (trackd.8, DURABILITY): an unsubscribe is committed (stop
 * list entry and `unsubscribed` event, one LMDB transaction) by the
 * committer before its answer, while the backend serves other requests;
 * opens and clicks are answered at once and
 * handed through a pipe to the committer, which commits them in groups
 * with trackd_flush(): at least every TRACKD_FLUSH_MS and as soon as
 * TRACKD_FLUSH_AT are pending. On SIGTERM the HTTP threads stop, their
 * sockets close, the backend closes the pipe and the committer commits
 * the rest. A crash (SIGKILL, power) loses at most the opens and clicks
 * of the last TRACKD_FLUSH_MS.
 */
#ifndef SG_TRACKD_H
#define SG_TRACKD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TRACKD_FLUSH_MS		100	/* the group-commit window */
#define TRACKD_FLUSH_AT		512	/* pending hits that wake the flush */
#define TRACKD_PENDING_MAX	8192	/* in the committer; then a hit is not recorded (logged) */
#define TRACKD_URL_MAX		256	/* longer request targets: 404 */
#define TRACKD_BODY_MAX		1024	/* POST bodies; more closes the connection */
#define TRACKD_UA_MAX		256	/* user agents are cut to this */
#define TRACKD_PAGE_MAX		8192
/* an answer from the backend; then 503 and trackd stops (restarted) */
#define TRACKD_BACKEND_TIMEOUT_MS 5000

struct spool;
struct trackd;

enum trackd_method { TRACKD_M_GET, TRACKD_M_HEAD, TRACKD_M_POST, TRACKD_M_OTHER };

struct trackd_req {
	enum trackd_method	 rq_method;
	const char		*rq_url;	/* the path, no query string */
	const char		*rq_ua;		/* User-Agent or NULL */
	const char		*rq_client;	/* numeric address */
	int64_t			 rq_now_ms;	/* monotonic, for the burst rule */
};

struct trackd_resp {
	int		 rs_status;
	const char	*rs_type;		/* Content-Type */
	const void	*rs_body;		/* static, or rs_buf.data */
	size_t		 rs_len;
	bool		 rs_nocache;
	const char	*rs_allow;		/* 405: the Allow header */
	const char	*rs_location;		/* 302: in rs_buf */
	struct buf	 rs_buf;		/* a page or a Location built for this answer */
};

/* Creates the state over an open spool (read-write) with the tracking
 * key; events go on to event_log (copied) after each commit. Fatal on
 * allocation failure. */
struct trackd	*trackd_new(struct spool *, const unsigned char *key,
		    const char *event_log);
void		 trackd_free(struct trackd **);
/* Answers one request (the backend's one thread). resp is initialised
 * here; the caller calls trackd_resp_release() once it has been sent.
 * Status 0: a POST /u/ whose answer waits for its commit (trackd_int.h,
 * struct trackd_unsub_req). */
void	trackd_handle(struct trackd *, const struct trackd_req *, struct trackd_resp *);
void	trackd_resp_release(struct trackd_resp *);
/* Commits the pending opens and clicks (the loop's thread), then appends
 * the events committed since the last call (unsubscribes too) to
 * event_log. Returns the number committed; on a failed commit they stay
 * pending (retried). */
size_t	trackd_flush(struct trackd *);
/* Where the threads send opens and clicks: the committer's pipe. */
void	trackd_set_pipe(struct trackd *, int fd);
/* Where unsubscribes go: a pipe of their own, which the committer reads
 * between the pieces of a group commit (without it: the pipe above). */
void	trackd_set_unsub_pipe(struct trackd *, int fd);
/* The committer (trackd_commit.c): a child process with its own spool,
 * reading hit records from fd until EOF and unsubscribes from ufd,
 * committing them in groups, and answering each unsubscribe on reply
 * after its commit; returns its exit status. */
int	trackd_commit_main(const char *spool_dir, int64_t map_size, int64_t map_max,
	    unsigned spool_flags, const char *event_log, int fd, int ufd,
	    int reply);
/* Hits answered and not yet committed. */
size_t	trackd_pending(struct trackd *);

/* trackd_backend.c: the process that holds the spool and the key (run
 * in a child forked as root; it drops to trackd_user itself). Serves
 * the HTTP process's requests on fds (trackd_proto.h) until all are
 * closed; never returns. */
struct conf;
__attribute__((noreturn)) void trackd_backend_main(struct conf *, int *fds,
    size_t nfds);

/* trackd_http.c: the server (the HTTP process: no spool, no key). */
struct trackd_http;
struct cidr;
struct trackd_http_conf {
	int		 hc_fd;		/* bound, listening socket */
	/* peers whose X-Forwarded-For names the client (track_trusted_proxy) */
	const struct cidr *hc_proxies;
	size_t		 hc_nproxies;
	/* implicit TLS: libmicrohttpd's certificate callback
	 * (trackd_tls_retrieve: the chain and a key that asks the key
	 * process), else NULL */
	void		(*hc_tls_retrieve)(void);
	unsigned	 hc_threads;
	unsigned	 hc_conn_max;
	unsigned	 hc_timeout_s;
	/* one socket to the backend per thread (hc_threads of them) */
	const int	*hc_chan;
	/* one more: the unsubscribes, answered after their commit */
	int		 hc_unsub;
	/* called (from a request thread) when the backend did not answer
	 * in time or is gone: the request got a 503 */
	void		(*hc_lost)(void *);
	void		*hc_lost_arg;
};
/* Starts serving (its own threads); NULL and a log line on failure. */
struct trackd_http	*trackd_http_start(const struct trackd_http_conf *);
/* Stops accepting, finishes the requests under way, joins the threads. */
void			 trackd_http_stop(struct trackd_http **);

#endif
