/*
 * trackd: the tracking server (issue 16; trackd.8). main() is
 * common/daemon.c's skeleton: phase 1 (root) binds track_listen and reads
 * the TLS certificate and key for tls=implicit; then the drop to
 * trackd_user; phase 2 forks the committer, opens the spool and the
 * tracking key, starts libmicrohttpd's threads (trackd_http.c) and turns
 * common/ev's loop (signals only). SIGTERM stops accepting, finishes the
 * requests under way, lets the committer commit what is pending and
 * exits 0. SIGHUP re-reads the configuration (the log destination;
 * the listener, TLS files and spool need a restart).
 *
 * Two processes: this one (libmicrohttpd's threads answer; clicks and
 * the unsubscribe page read LMDB; unsubscribes commit before their
 * answer) and the committer (trackd_commit.c), forked before either
 * opens the spool, which group-commits opens and clicks it reads from a
 * pipe. If the committer dies, trackd stops (exit 1) for systemd to
 * restart it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "cidr.h"
#include "conf.h"
#include "daemon.h"
#include "ev.h"
#include "fsx.h"
#include "log.h"
#include "priv.h"
#include "sig.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spool_track.h"
#include "trackd.h"
#include "xmem.h"

#define TRACKD_CONN_MAX		4096	/* connections at once */
#define TRACKD_TIMEOUT_S	10	/* an idle connection closes */
#define TRACKD_PEM_MAX		(1024 * 1024)
#define TRACKD_COMMIT_GRACE_MS	30000	/* the committer's last commit */

struct trackd_main {
	struct conf		*m_cf;
	struct conf_listen	 m_listen;
	struct cidr		*m_proxies;	/* track_trusted_proxy */
	size_t			 m_nproxies;
	int			 m_fd;
	char			*m_cert, *m_key;	/* PEM text, implicit TLS */
	struct ev		*m_ev;
	struct trackd		*m_t;
	pid_t			 m_child;	/* the committer */
	int			 m_pipe;	/* its pipe's write end */
	int			 m_status;	/* exit status */
};

static void
trackd_check(struct daemon *d)
{
	struct trackd_main	*m = d->d_arg;
	char			 why[256], w[4200];
	size_t			 i;

	/* conf_load checked the syntax and tls=none|implicit */
	if (conf_parse_listen(d->d_cf->cf_track_listen, &m->m_listen, why, sizeof(why)) == -1)
		log_fatalx_status(2, "%s: %s", conf_where(d->d_cf, "track_listen", w,
		    sizeof(w)), why);
	if (m->m_listen.cl_tls == CONF_TLS_IMPLICIT && d->d_cf->cf_tls_cert[0] == '\0')
		log_fatalx_status(2, "%s: tls=implicit needs tls_cert and tls_key",
		    conf_where(d->d_cf, "track_listen", w, sizeof(w)));
	/* conf_load checked each range */
	m->m_nproxies = d->d_cf->cf_track_trusted_proxy.n;
	m->m_proxies = xcalloc(m->m_nproxies + 1, sizeof(*m->m_proxies));
	for (i = 0; i < m->m_nproxies; i++)
		(void)cidr_parse(d->d_cf->cf_track_trusted_proxy.v[i], &m->m_proxies[i]);
}

static void
trackd_bind(struct daemon *d)
{
	struct trackd_main	*m = d->d_arg;
	struct conf_listen	*cl = &m->m_listen;
	struct addrinfo		 hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV }, *res = NULL;
	char			 w[4200];
	size_t			 len;
	int			 one = 1, rc;

	m->m_cf = d->d_cf;
	conf_where(d->d_cf, "track_listen", w, sizeof(w));
	if ((rc = getaddrinfo(cl->cl_addr, cl->cl_port, &hints, &res)) != 0)
		log_fatalx_status(2, "%s: %s:%s: %s", w, cl->cl_addr, cl->cl_port,
		    gai_strerror(rc));
	if ((m->m_fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0)) == -1)
		log_fatalx_status(2, "%s: socket: %s", w, strerror(errno));
	(void)setsockopt(m->m_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->m_fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(m->m_fd, 1024) == -1)
		log_fatalx_status(2, "%s: %s:%s: %s", w, cl->cl_addr, cl->cl_port,
		    strerror(errno));
	freeaddrinfo(res);
	if (cl->cl_tls != CONF_TLS_IMPLICIT)
		return;
	if (fsx_read_file(d->d_cf->cf_tls_cert, TRACKD_PEM_MAX, &m->m_cert, &len) != 0)
		log_fatalx_status(2, "%s: %s: %s", conf_where(d->d_cf, "tls_cert", w,
		    sizeof(w)), d->d_cf->cf_tls_cert, strerror(errno));
	if (fsx_read_file(d->d_cf->cf_tls_key, TRACKD_PEM_MAX, &m->m_key, &len) != 0)
		log_fatalx_status(2, "%s: %s: %s", conf_where(d->d_cf, "tls_key", w,
		    sizeof(w)), d->d_cf->cf_tls_key, strerror(errno));
}

static const char *
trackd_user(const struct conf *cf)
{
	return cf->cf_trackd_user;
}

static void
trackd_reload(struct trackd_main *m)
{
	struct conf	*ncf;
	char		 err[1024];

	if ((ncf = conf_load(m->m_cf->cf_path, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s (keeping the old configuration)", err);
		return;
	}
	if (strcmp(ncf->cf_track_listen, m->m_cf->cf_track_listen) != 0 ||
	    strcmp(ncf->cf_spool_dir, m->m_cf->cf_spool_dir) != 0)
		log_warnx("reload: track_listen and spool_dir changes need a restart");
	conf_free(&m->m_cf);
	m->m_cf = ncf;
	log_set_dest(daemon_log_dest(ncf));
	log_info("reloaded %s", ncf->cf_path);
}

static void
trackd_on_signal(struct ev *e, unsigned sigs, void *arg)
{
	struct trackd_main	*m = arg;
	int			 status;

	if (sigs & SIG_HUP)
		trackd_reload(m);
	if ((sigs & SIG_CHLD) && m->m_child > 0 &&
	    waitpid(m->m_child, &status, WNOHANG) == m->m_child) {
		/* no one to commit opens and clicks: stop (systemd restarts) */
		log_warnx("committer (pid %ld) exited with status 0x%x: stopping",
		    (long)m->m_child, status);
		m->m_child = -1;
		m->m_status = 1;
		ev_break(e);
	}
	if (sig_stopping())
		ev_break(e);
}

/* The committer: forked before this process opens the spool (an LMDB
 * environment never crosses fork). */
static void
trackd_fork_committer(struct trackd_main *m)
{
	int	p[2];

	if (pipe2(p, O_CLOEXEC) == -1)
		log_fatal("pipe2");
	/* room for bursts: about 2,800 hits; the default is 64 KB */
	(void)fcntl(p[1], F_SETPIPE_SZ, 1024 * 1024);
	if ((m->m_child = fork()) == -1)
		log_fatal("fork");
	if (m->m_child == 0) {
		(void)close(p[1]);
		(void)close(m->m_fd);
		sig_child();
		log_set_procname("trackd/commit");
		/* commits can wait a little, answers should not: on a busy
		 * machine the request threads get the CPU first */
		(void)setpriority(PRIO_PROCESS, 0, 5);
		_exit(trackd_commit_main(m->m_cf->cf_spool_dir, m->m_cf->cf_lmdb_map_size,
		    m->m_cf->cf_lmdb_map_max,
		    SPOOL_CLUSTER_IF(m->m_cf->cf_cluster_dsn), m->m_cf->cf_event_log,
		    p[0]));
	}
	(void)close(p[0]);
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) == -1)
		log_fatal("fcntl");
	m->m_pipe = p[1];
}

/* After the threads stopped: EOF to the committer, which commits what
 * is pending and exits; waited for (bounded), then killed. */
static void
trackd_stop_committer(struct trackd_main *m)
{
	int64_t	until = ev_clock_ms() + TRACKD_COMMIT_GRACE_MS;
	int	status;
	pid_t	pid;

	(void)close(m->m_pipe);	/* EOF for the committer; nothing to report */
	m->m_pipe = -1;
	while (m->m_child > 0) {
		if ((pid = waitpid(m->m_child, &status, WNOHANG)) == m->m_child ||
		    (pid == -1 && errno != EINTR)) {
			if (pid == m->m_child && status != 0)
				m->m_status = 1;
			break;
		}
		if (ev_clock_ms() > until) {
			log_warnx("committer did not finish in %d s: killed",
			    TRACKD_COMMIT_GRACE_MS / 1000);
			(void)kill(m->m_child, SIGKILL);
			(void)waitpid(m->m_child, &status, 0);
			m->m_status = 1;
			break;
		}
		(void)poll(NULL, 0, 10);
	}
}

static unsigned
trackd_threads(void)
{
	long	n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

static void
trackd_loop(struct trackd_main *m)
{
	struct trackd_http_conf	 hc = { .hc_fd = m->m_fd, .hc_cert_pem = m->m_cert,
		.hc_key_pem = m->m_key, .hc_threads = trackd_threads(),
		.hc_proxies = m->m_proxies, .hc_nproxies = m->m_nproxies,
		.hc_conn_max = TRACKD_CONN_MAX, .hc_timeout_s = TRACKD_TIMEOUT_S };
	struct trackd_http	*h;

	if ((h = trackd_http_start(&hc, m->m_t)) == NULL)
		log_fatalx("%s: cannot serve", m->m_cf->cf_track_listen);
	log_info("started: listen=%s, threads=%u, spool=%s", m->m_cf->cf_track_listen,
	    hc.hc_threads, m->m_cf->cf_spool_dir);
	if (!sig_stopping())
		ev_run(m->m_ev);
	trackd_http_stop(&h);
}

static int
trackd_run(struct daemon *d)
{
	struct trackd_main	*m = d->d_arg;
	unsigned char		 key[SPOOL_TRACK_KEYLEN];
	struct spool		*sp;
	int			 rc;

	trackd_fork_committer(m);
	if ((rc = spool_open(m->m_cf->cf_spool_dir, m->m_cf->cf_lmdb_map_size,
	    m->m_cf->cf_lmdb_map_max, SPOOL_CLUSTER_IF(m->m_cf->cf_cluster_dsn),
	    &sp)) != 0)
		log_fatalx("spool_open %s: %s", m->m_cf->cf_spool_dir, spool_strerror(rc));
	if ((rc = spool_track_key_load(m->m_cf->cf_spool_dir, true, key)) != 0)
		log_fatalx("tracking key in %s/db: %s", m->m_cf->cf_spool_dir, strerror(rc));
	if ((m->m_ev = ev_new(2, 1)) == NULL)
		log_fatal("ev_new");
	if (ev_signal(m->m_ev, trackd_on_signal, m) == -1)
		log_fatal("ev");
	m->m_t = trackd_new(sp, key, m->m_cf->cf_event_log);
	explicit_bzero(key, sizeof(key));
	trackd_set_pipe(m->m_t, m->m_pipe);
	trackd_loop(m);
	/* the threads are gone: the committer commits what they answered */
	trackd_stop_committer(m);
	trackd_free(&m->m_t);
	ev_free(&m->m_ev);
	spool_close(&sp);
	if (m->m_key != NULL)
		explicit_bzero(m->m_key, strlen(m->m_key));
	free(m->m_key);
	free(m->m_cert);
	free(m->m_proxies);
	conf_free(&m->m_cf);
	return m->m_status;
}

int
main(int argc, char **argv)
{
	static struct trackd_main	 m = { .m_fd = -1, .m_pipe = -1 };
	static const struct daemon_spec	 spec = {
		.ds_name = "trackd",
		.ds_check = trackd_check,
		.ds_spool = spool_tree_create_err,
		.ds_bind = trackd_bind,
		.ds_user = trackd_user,
		.ds_run = trackd_run,
		.ds_arg = &m,
	};

	daemon_main(argc, argv, &spec);
}
