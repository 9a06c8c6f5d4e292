/*
 * spoold_metrics: the metrics child (spoold_metrics.h). Why a child of
 * spoold: it needs the spool (LMDB, read-only) and the counters, not the
 * network-facing privileges of smtpd or trackd; spoold runs on every
 * installation (trackd is optional) as the unprivileged spool user, and
 * the child keeps a crash or a slow scrape away from filing. It never
 * uses the parent's LMDB environment (forked after spool_open): it opens
 * its own, read-only.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "ev.h"
#include "kids.h"
#include "landlock.h"
#include "log.h"
#include "metrics.h"
#include "sig.h"
#include "spool.h"
#include "spoold_metrics.h"
#include "xmem.h"

struct spoold_metrics {
	int	     sm_fd;
	pid_t	     sm_parent;
	struct kids *sm_kids;
	/* copies: a reload frees the configuration the parent started with */
	char	     *sm_spool_dir, *sm_listen;
	int64_t	      sm_map_size, sm_map_max;
	struct spool *sm_sp; /* the child's own */
};

/* A young exit backs off 1 s, 2 s, ... 30 s; no more than one start a second. */
static const struct kids_policy spoold_metrics_policy = {
	.kp_interval_ms = 1000,
	.kp_retry_ms = 1000,
	.kp_young_ms = 10000,
	.kp_base_ms = 1000,
	.kp_max_ms = 30000,
	.kp_clean_fails = true,
};

struct spoold_metrics *
spoold_metrics_bind(const struct conf *cf)
{
	struct spoold_metrics *sm;
	struct addrinfo	       hints = { .ai_socktype = SOCK_STREAM,
		       .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV },
			*res = NULL;
	char w[4200], host[256], port[16];
	int  one = 1, rc, fd;

	if (cf->cf_metrics_listen[0] == '\0')
		return NULL;
	conf_where(cf, "metrics_listen", w, sizeof(w));
	if (conf_split_hostport(cf->cf_metrics_listen, host, sizeof(host), port,
		sizeof(port), "") == -1 ||
	    port[0] == '\0')
		log_fatalx_status(2, "%s: %s: not ADDR:PORT", w,
		    cf->cf_metrics_listen);
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		log_fatalx_status(2, "%s: %s: %s", w, cf->cf_metrics_listen,
		    gai_strerror(rc));
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0)) ==
	    -1)
		log_fatalx_status(2, "%s: socket: %s", w, strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 64) == -1)
		log_fatalx_status(2, "%s: %s: %s", w, cf->cf_metrics_listen,
		    strerror(errno));
	freeaddrinfo(res);
	sm = xcalloc(1, sizeof(*sm));
	sm->sm_fd = fd;
	return sm;
}

/* ---- the gauges */

struct spoold_metrics_scan {
	struct metrics_gauges *g;
	int64_t		       now, oldest;
	size_t		       n;
};

static int
spoold_metrics_msg(const struct spool_msg *m, void *arg)
{
	struct spoold_metrics_scan *sc = arg;
	int64_t			    age;
	size_t			    b;

	if (++sc->n > SPOOLD_METRICS_SCAN_MAX) {
		sc->g->mg_queue_truncated = true;
		return -1;
	}
	if (m->sm_npending == 0)
		return 0;
	age = sc->now > m->sm_arrival ? sc->now - m->sm_arrival : 0;
	for (b = 0; b + 1 < METRICS_NAGES && age > metrics_age_limits[b]; b++)
		;
	sc->g->mg_queue_age[b]++;
	if (sc->oldest == 0 || m->sm_arrival < sc->oldest)
		sc->oldest = m->sm_arrival;
	return 0;
}

static void
spoold_metrics_outbox(struct spool_txn *t, struct metrics_gauges *g,
    int64_t now)
{
	char	login[SPOOL_LOGIN_MAX] = "";
	int64_t dt, oldest = 0;

	while (g->mg_outbox_accounts < SPOOLD_METRICS_ACCOUNTS_MAX &&
	    spool_outbox_next_account(t, login, login, &dt) == 0) {
		g->mg_outbox_accounts++;
		if (oldest == 0 || dt < oldest)
			oldest = dt;
	}
	g->mg_outbox_lag = oldest != 0 && now > oldest ? now - oldest : 0;
}

int
spoold_metrics_gauges(struct spool *sp, int64_t map_max, int64_t now,
    struct metrics_gauges *g)
{
	struct spoold_metrics_scan sc = { .g = g, .now = now };
	struct spool_counts	   c;
	struct spool_txn	  *t = NULL;
	int			   rc;

	memset(g, 0, sizeof(*g));
	if ((rc = spool_begin(sp, false, &t)) != 0)
		return rc;
	if ((rc = spool_counts(t, &c)) != 0)
		goto out;
	g->mg_messages = c.sc_messages;
	g->mg_rcpts_pending = c.sc_rcpts_pending;
	g->mg_outbox = c.sc_outbox;
	spoold_metrics_outbox(t, g, now);
	rc = spool_msg_iter(t, spoold_metrics_msg, &sc);
	if (rc == -1 && g->mg_queue_truncated)
		rc = 0;
	g->mg_queue_oldest = sc.oldest != 0 && now > sc.oldest ? now - sc.oldest
							       : 0;
out:
	spool_abort(&t);
	spool_map_used(sp, &g->mg_map_used, &g->mg_map_size);
	g->mg_map_max = map_max;
	return rc;
}

/* ---- the child */

/* The MHD thread: one scrape at a time (one polling thread). */
static int
spoold_metrics_render(void *arg, struct buf *b)
{
	struct spoold_metrics *sm = arg;
	struct metrics_block  *snap = xmalloc(sizeof(*snap));
	struct metrics_gauges  g;
	int		       rc;

	metrics_snapshot(snap);
	if ((rc = spoold_metrics_gauges(sm->sm_sp, sm->sm_map_max,
		 (int64_t)time(NULL), &g)) != 0)
		log_warnx("metrics: gauges: %s", spool_strerror(rc));
	rc = metrics_render(b, snap, rc == 0 ? &g : NULL);
	free(snap);
	return rc;
}

/* From here on the child opens nothing of the spool but the database
 * (already open): not keys/, not db/'s key files, not queue/ (landlock.c).
 * Before the HTTP server's thread starts, which the domain then holds. A
 * reload restarts nothing here: the child keeps what it was started with. */
static void
spoold_metrics_confine(const struct spoold_metrics *sm)
{
	char			   data[PATH_MAX], lock[PATH_MAX], why[512];
	int			   rc;
	const struct landlock_path paths[] = {
		{ data, LANDLOCK_READ },
		{ lock, LANDLOCK_READ | LANDLOCK_WRITE },
	};

	if (snprintf(data, sizeof(data), "%s/db/data.mdb", sm->sm_spool_dir) >=
		(int)sizeof(data) ||
	    snprintf(lock, sizeof(lock), "%s/db/lock.mdb", sm->sm_spool_dir) >=
		(int)sizeof(lock)) {
		log_warnx("metrics: spool_dir too long");
		_exit(1);
	}
	if ((rc = landlock_confine(sm->sm_spool_dir, paths,
		 sizeof(paths) / sizeof(paths[0]), "the metrics child", why,
		 sizeof(why))) == -1) {
		log_warnx("metrics: confining the child: %s", why);
		_exit(1);
	}
	if (rc == 0)
		log_warnx("metrics: child not confined: %s", why);
	else
		log_debug("metrics: confined (%s)", why);
}

static void
spoold_metrics_on_signal(struct ev *e, unsigned sigs, void *arg)
{
	(void)arg;
	if ((sigs & SIG_TERM) || sig_stopping())
		ev_break(e);
}

__attribute__((noreturn)) static void
spoold_metrics_child(void *arg)
{
	struct spoold_metrics	   *sm = arg;
	struct spoold_metrics_http *h;
	struct ev		   *e;
	int			    rc;

	log_set_procname("spoold/metrics");
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != sm->sm_parent)
		_exit(0);
	if ((rc = spool_open(sm->sm_spool_dir, sm->sm_map_size, sm->sm_map_max,
		 SPOOL_RDONLY, &sm->sm_sp)) != 0) {
		log_warnx("metrics: spool_open %s: %s", sm->sm_spool_dir,
		    spool_strerror(rc));
		_exit(1);
	}
	if ((e = ev_new(1, 1)) == NULL ||
	    ev_signal(e, spoold_metrics_on_signal, sm) == -1)
		log_fatal("metrics: ev");
	spoold_metrics_confine(sm);
	if ((h = spoold_metrics_http_start(sm->sm_fd, spoold_metrics_render,
		 sm)) == NULL)
		_exit(1);
	log_info("metrics: serving %s", sm->sm_listen);
	if (!sig_stopping())
		ev_run(e);
	spoold_metrics_http_stop(&h);
	ev_free(&e);
	spool_close(&sm->sm_sp);
	_exit(0);
}

static pid_t
spoold_metrics_spawn(struct kids *k, size_t slot, void *arg)
{
	pid_t pid;

	(void)k;
	(void)slot;
	if ((pid = kids_fork_fn(spoold_metrics_child, arg)) == -1)
		log_warn("metrics: fork");
	return pid;
}

static void
spoold_metrics_exit(struct kids *k, size_t slot, pid_t pid, int status,
    int64_t delay_ms, void *arg)
{
	(void)k;
	(void)slot;
	(void)arg;
	if (delay_ms >= 0)
		log_warnx(
		    "metrics: child %ld exited (status %d), restart in %lld ms",
		    (long)pid, status, (long long)delay_ms);
}

void
spoold_metrics_start(struct spoold_metrics *sm, struct ev *e,
    const struct conf *cf)
{
	if (sm == NULL)
		return;
	sm->sm_spool_dir = xstrdup(cf->cf_spool_dir);
	sm->sm_listen = xstrdup(cf->cf_metrics_listen);
	sm->sm_map_size = cf->cf_lmdb_map_size;
	sm->sm_map_max = cf->cf_lmdb_map_max;
	sm->sm_parent = getpid();
	if ((sm->sm_kids = kids_new(e, 1, 0, &spoold_metrics_policy,
		 spoold_metrics_spawn, spoold_metrics_exit, sm)) == NULL)
		log_fatal("kids_new");
	kids_start(sm->sm_kids);
}

void
spoold_metrics_reap(struct spoold_metrics *sm)
{
	if (sm != NULL && sm->sm_kids != NULL)
		kids_reap(sm->sm_kids);
}

void
spoold_metrics_stop(struct spoold_metrics **smp)
{
	struct spoold_metrics *sm = *smp;

	if (sm == NULL)
		return;
	if (sm->sm_kids != NULL) {
		(void)kids_stop(sm->sm_kids, SIGTERM, 5000);
		kids_free(&sm->sm_kids);
	}
	(void)close(sm->sm_fd);
	free(sm->sm_spool_dir);
	free(sm->sm_listen);
	free(sm);
	*smp = NULL;
}
