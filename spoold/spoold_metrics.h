/*
 * spoold_metrics: the Prometheus endpoint (metrics_listen, issue 18 item
 * 5). spoold binds the socket in phase 1 and runs the server as a child
 * supervised by common/kids: the spoold user, the inherited counter
 * mapping (common/metrics.h) read-only in use, and its own read-only LMDB
 * environment for the gauges read at scrape time (bounded work).
 */
#ifndef SG_SPOOLD_METRICS_H
#define SG_SPOOLD_METRICS_H

#include <stdint.h>

struct buf;
struct conf;
struct ev;
struct metrics_gauges;
struct spool;
struct spoold_metrics;

#define SPOOLD_METRICS_SCAN_MAX	    50000 /* messages read per scrape */
#define SPOOLD_METRICS_ACCOUNTS_MAX 10000 /* outbox accounts read per scrape */
#define SPOOLD_METRICS_BODY_MAX	    (1024 * 1024)

/* Phase 1: binds metrics_listen; NULL when it is empty. Exits 2 on a bad
 * value or an address in use. */
struct spoold_metrics *spoold_metrics_bind(const struct conf *);
/* Phase 2: the child starts now and again after an exit. */
void spoold_metrics_start(struct spoold_metrics *, struct ev *,
    const struct conf *);
void spoold_metrics_reap(struct spoold_metrics *);  /* on SIG_CHLD */
void spoold_metrics_stop(struct spoold_metrics **); /* SIGTERM, wait, free */

/* The gauges, in one read transaction; 0 or a SPOOL_E* code. */
int spoold_metrics_gauges(struct spool *, int64_t map_max, int64_t now,
    struct metrics_gauges *);

/* spoold_metrics_http.c: GET /metrics on fd with the render callback. */
struct spoold_metrics_http;
typedef int		    spoold_metrics_render_cb(void *arg, struct buf *);
struct spoold_metrics_http *spoold_metrics_http_start(int fd,
    spoold_metrics_render_cb *, void *arg);
void spoold_metrics_http_stop(struct spoold_metrics_http **);

#endif
