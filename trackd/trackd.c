/*
 * trackd: the tracking server (issue 16; trackd.8). main() is
 * common/daemon.c's skeleton: phase 1 (root) binds track_listen and reads
 * the TLS certificate for tls=implicit. Then this process (the HTTP
 * process, the unit's main process) forks the key process (tls=implicit:
 * trackd_key.c, which alone reads tls_key and signs for the handshakes),
 * the backend
 * (trackd_backend.c: trackd_user, the spool, the tracking key, and the
 * committer below it) and drops to trackd_http_user, chrooted into an
 * empty directory that no longer exists, before libmicrohttpd's threads
 * read a request: a bug in the HTTP path reaches no database, no key
 * and no writable file. Each thread asks the backend over its own
 * socket, unsubscribes go over one more (trackd_http.c, trackd_proto.h).
 *
 * SIGTERM stops accepting, finishes the requests under way (the backend
 * still answers them), then closes the sockets: the backend lets the
 * committer commit what is pending, and both exit; this process waits
 * for the backend and exits 0. SIGHUP is passed to the backend, which
 * re-reads the configuration (the log destination; the listener, TLS
 * files and spool need a restart) and says which log destination to use.
 * If the backend dies or does not answer in TRACKD_BACKEND_TIMEOUT_MS
 * (the request gets a 503), trackd exits 1 for systemd to restart it;
 * so does a key process that dies or does not answer in
 * TRACKD_KEY_TIMEOUT_MS (that handshake fails).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "cidr.h"
#include "conf.h"
#include "daemon.h"
#include "ev.h"
#include "fsx.h"
#include "log.h"
#include "metrics.h"
#include "priv.h"
#include "sig.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spool_track.h"
#include "trackd.h"
#include "trackd_key.h"
#include "trackd_tls.h"
#include "trackd_proto.h"
#include "xmem.h"

#define TRACKD_CONN_MAX		4096 /* connections at once */
#define TRACKD_TIMEOUT_S	10   /* an idle connection closes */
#define TRACKD_PEM_MAX		(1024 * 1024)
/* the backend's stop: the committer's last commit, and some */
#define TRACKD_BACKEND_GRACE_MS 40000
#define TRACKD_LOST_GRACE_MS	2000

struct trackd_main {
	struct conf	  *m_cf;
	struct conf_listen m_listen;
	struct cidr	  *m_proxies; /* track_trusted_proxy */
	size_t		   m_nproxies;
	int		   m_fd;
	char		  *m_cert; /* PEM text, implicit TLS */
	struct trackd_key *m_keyp;  /* the key process, implicit TLS */
	struct trackd_tls *m_tls;
	struct ev	  *m_ev;
	pid_t		   m_child; /* the backend */
	int		  *m_chan;  /* to it: one per thread, unsubscribes, control */
	size_t		   m_nchan;
	uint32_t	   m_ctl_id;
	atomic_bool	   m_lost;   /* a thread lost the backend */
	int		   m_status; /* exit status */
	bool		   m_jailed; /* chrooted (started as root) */
	enum log_dest	   m_logdest;
};

/*
 * As root: the HTTP process's user must be none of the ids that guard
 * the database (trackd_user, its group, smtpgate_group), or the split
 * gives nothing. Exit 2 with the key's place otherwise.
 */
static void
trackd_check_ids(const struct conf *cf)
{
	uid_t hu, bu;
	gid_t hg, bg, sg;
	char  w[4200];

	if (!priv_is_root())
		return;
	conf_where(cf, "trackd_http_user", w, sizeof(w));
	if (priv_lookup(cf->cf_trackd_http_user, &hu, &hg) == -1)
		log_fatalx_status(2,
		    "%s: unknown user \"%s\" (create it, see "
		    "contrib/sysusers.d)",
		    w, cf->cf_trackd_http_user);
	if ((priv_lookup(cf->cf_trackd_user, &bu, &bg) == 0 &&
		(hu == bu || hg == bg)) ||
	    (priv_lookup_group(cf->cf_group, &sg) == 0 && hg == sg) || hu == 0)
		log_fatalx_status(2,
		    "%s: %s shares an id with trackd_user %s or "
		    "smtpgate_group %s: it needs a user and group of its own",
		    w, cf->cf_trackd_http_user, cf->cf_trackd_user,
		    cf->cf_group);
}

static void
trackd_check(struct daemon *d)
{
	struct trackd_main *m = d->d_arg;
	char		    why[256], w[4200];
	size_t		    i;

	/* conf_load checked the syntax and tls=none|implicit */
	if (conf_parse_listen(d->d_cf->cf_track_listen, &m->m_listen, why,
		sizeof(why)) == -1)
		log_fatalx_status(2, "%s: %s",
		    conf_where(d->d_cf, "track_listen", w, sizeof(w)), why);
	if (m->m_listen.cl_tls == CONF_TLS_IMPLICIT &&
	    d->d_cf->cf_tls_cert[0] == '\0')
		log_fatalx_status(2,
		    "%s: tls=implicit needs tls_cert and tls_key",
		    conf_where(d->d_cf, "track_listen", w, sizeof(w)));
	trackd_check_ids(d->d_cf);
	/* conf_load checked each range */
	m->m_nproxies = d->d_cf->cf_track_trusted_proxy.n;
	m->m_proxies = xcalloc(m->m_nproxies + 1, sizeof(*m->m_proxies));
	for (i = 0; i < m->m_nproxies; i++)
		(void)cidr_parse(d->d_cf->cf_track_trusted_proxy.v[i],
		    &m->m_proxies[i]);
}

static void
trackd_bind(struct daemon *d)
{
	struct trackd_main *m = d->d_arg;
	struct conf_listen *cl = &m->m_listen;
	struct addrinfo	    hints = { .ai_socktype = SOCK_STREAM,
		    .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV },
			*res = NULL;
	char   w[4200];
	size_t len;
	int    one = 1, rc;

	m->m_cf = d->d_cf;
	conf_where(d->d_cf, "track_listen", w, sizeof(w));
	if ((rc = getaddrinfo(cl->cl_addr, cl->cl_port, &hints, &res)) != 0)
		log_fatalx_status(2, "%s: %s:%s: %s", w, cl->cl_addr,
		    cl->cl_port, gai_strerror(rc));
	if ((m->m_fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
		 0)) == -1)
		log_fatalx_status(2, "%s: socket: %s", w, strerror(errno));
	(void)setsockopt(m->m_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->m_fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(m->m_fd, 1024) == -1)
		log_fatalx_status(2, "%s: %s:%s: %s", w, cl->cl_addr,
		    cl->cl_port, strerror(errno));
	freeaddrinfo(res);
	if (cl->cl_tls != CONF_TLS_IMPLICIT)
		return;
	if (fsx_read_file(d->d_cf->cf_tls_cert, TRACKD_PEM_MAX, &m->m_cert,
		&len) != 0)
		log_fatalx_status(2, "%s: %s: %s",
		    conf_where(d->d_cf, "tls_cert", w, sizeof(w)),
		    d->d_cf->cf_tls_cert, strerror(errno));
	/* the key: the key process reads it (trackd_run), never this one */
}

static void
trackd_on_signal(struct ev *e, unsigned sigs, void *arg)
{
	struct trackd_main *m = arg;
	struct tp_query	    q = { .q_type = TP_Q_RELOAD };
	uint8_t		    out[TP_HDR_LEN];
	size_t		    n;
	int		    status;

	if (sigs & SIG_HUP) { /* the backend reads the file; we are jailed */
		q.q_id = ++m->m_ctl_id;
		n = tp_query_make(out, sizeof(out), &q);
		if (send(m->m_chan[m->m_nchan - 1], out, n,
			MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n)
			log_warn("reload: cannot reach the backend");
	}
	if ((sigs & SIG_CHLD) && m->m_child > 0 &&
	    waitpid(m->m_child, &status, WNOHANG) == m->m_child) {
		/* no one to answer: stop (systemd restarts) */
		log_warnx("backend (pid %ld) exited with status 0x%x: stopping",
		    (long)m->m_child, status);
		m->m_child = -1;
		m->m_status = 1;
		ev_break(e);
	}
	if ((sigs & SIG_CHLD) && trackd_key_pid(m->m_keyp) > 0 &&
	    waitpid(trackd_key_pid(m->m_keyp), &status, WNOHANG) ==
		trackd_key_pid(m->m_keyp)) {
		/* no signatures: stop like for the backend (systemd
		 * restarts both) */
		log_warnx("key process (pid %ld) exited with status 0x%x: "
			  "stopping",
		    (long)trackd_key_pid(m->m_keyp), status);
		trackd_key_forget(m->m_keyp);
		m->m_status = 1;
		ev_break(e);
	}
	if (sig_stopping())
		ev_break(e);
}

/* The control socket: the answer to a reload, or EOF (the backend is
 * gone; SIGCHLD says how). */
static void
trackd_on_ctl(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct trackd_main *m = arg;
	struct tp_reply	    r;
	uint8_t		    in[TP_HDR_LEN + 2];
	ssize_t		    n;

	(void)revents;
	n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || (size_t)n > sizeof(in) ||
	    tp_reply_parse(in, (size_t)n, &r) != TP_OK ||
	    r.r_type != TP_R_RELOADED) {
		log_warnx("backend: control socket %s: stopping",
		    n <= 0 ? "closed" : "garbled");
		m->m_status = 1;
		ev_fd_del(e, fd);
		ev_break(e);
		return;
	}
	/* syslog's socket cannot be reached from the jail: keep stderr there
	 * until a restart (started with syslog, the socket stays open) */
	if (m->m_jailed && r.r_logdest == 1 &&
	    m->m_logdest != LOG_DEST_SYSLOG) {
		log_warnx("reload: log = syslog for the HTTP process at the "
			  "next restart");
		return;
	}
	m->m_logdest = r.r_logdest == 1 ? LOG_DEST_SYSLOG : LOG_DEST_STDERR;
	log_set_dest(m->m_logdest);
}

/* From a request thread: the backend is slow or gone. */
static void
trackd_lost(void *arg)
{
	struct trackd_main *m = arg;

	atomic_store(&m->m_lost, true);
	ev_wakeup(m->m_ev);
}

static void
trackd_on_wake(struct ev *e, void *arg)
{
	struct trackd_main *m = arg;

	if (atomic_load(&m->m_lost)) {
		m->m_status = 1;
		ev_break(e);
	}
}

/* One thread per CPU this process may run on (its affinity: a cpuset or
 * taskset counts), at most 8. One is enough: a thread waits for the
 * backend's answer to a hit, never for a commit (an unsubscribe's
 * connection is suspended while it waits). */
static unsigned
trackd_threads(void)
{
	cpu_set_t set;
	int	  n;

	if (sched_getaffinity(0, sizeof(set), &set) == -1)
		return 1;
	n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

/* tls_cert's text: it may hold the key too (one file for both) */
static void
trackd_wipe_cert(struct trackd_main *m)
{
	if (m->m_cert != NULL)
		explicit_bzero(m->m_cert, strlen(m->m_cert));
	free(m->m_cert);
	m->m_cert = NULL;
}

/* The backend's sockets (hc_threads, the unsubscribes', control) and
 * the backend itself,
 * forked while still root (it drops to trackd_user). */
static void
trackd_fork_backend(struct trackd_main *m, unsigned threads)
{
	int   *peer, sp[2];
	size_t i;

	m->m_nchan = threads + 2;
	m->m_chan = xcalloc(m->m_nchan, sizeof(*m->m_chan));
	peer = xcalloc(m->m_nchan, sizeof(*peer));
	for (i = 0; i < m->m_nchan; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) ==
		    -1)
			log_fatal("socketpair");
		m->m_chan[i] = sp[0];
		peer[i] = sp[1];
	}
	if ((m->m_child = fork()) == -1)
		log_fatal("fork");
	if (m->m_child == 0) {
		for (i = 0; i < m->m_nchan; i++)
			(void)close(m->m_chan[i]);
		(void)close(m->m_fd); /* nothing of the network side */
		trackd_key_close_fds(m->m_keyp);
		trackd_wipe_cert(m);
		sig_child();
		log_set_procname("trackd/backend");
		(void)prctl(PR_SET_NAME, "trackd-backend");
		trackd_backend_main(m->m_cf, peer, m->m_nchan);
	}
	for (i = 0; i < m->m_nchan; i++)
		(void)close(peer[i]);
	free(peer);
}

/*
 * As root: into an empty directory that no longer exists (made, entered
 * and removed again: nothing can ever be created in it), then down to
 * trackd_http_user and its group alone. Not root: nothing (test mode).
 */
static void
trackd_jail(struct trackd_main *m)
{
	m->m_logdest = daemon_log_dest(m->m_cf);
	if (!priv_is_root())
		return;
	m->m_jailed = true;
	trackd_key_void(m->m_cf);
	priv_drop(m->m_cf->cf_trackd_http_user, NULL, ".");
}

/* After the threads stopped: the sockets close, the backend finishes
 * (the committer commits) and is waited for, bounded: it runs as
 * another user, ours is not to kill it (systemd's KillMode=mixed does). */
static void
trackd_stop_backend(struct trackd_main *m)
{
	/* a backend that stopped answering may never finish: not long */
	int64_t until = ev_clock_ms() +
	    (atomic_load(&m->m_lost) ? TRACKD_LOST_GRACE_MS
				     : TRACKD_BACKEND_GRACE_MS);
	int    status;
	size_t i;
	pid_t  pid;

	for (i = 0; i < m->m_nchan; i++)
		(void)close(m->m_chan[i]); /* EOF for the backend */
	while (m->m_child > 0) {
		if ((pid = waitpid(m->m_child, &status, WNOHANG)) ==
			m->m_child ||
		    (pid == -1 && errno != EINTR)) {
			if (pid == m->m_child)
				log_info(
				    "backend (pid %ld) exited with status 0x%x",
				    (long)m->m_child, status);
			if (pid == m->m_child && status != 0)
				m->m_status = 1;
			break;
		}
		if (ev_clock_ms() > until) {
			log_warnx("backend did not finish in %d s",
			    TRACKD_BACKEND_GRACE_MS / 1000);
			m->m_status = 1; /* it may not be ours to kill now */
			break;
		}
		(void)poll(NULL, 0, 10);
	}
}

static void
trackd_serve(struct trackd_main *m, unsigned threads)
{
	struct trackd_http_conf hc = { .hc_fd = m->m_fd,
		.hc_threads = threads,
		.hc_proxies = m->m_proxies,
		.hc_nproxies = m->m_nproxies,
		.hc_conn_max = TRACKD_CONN_MAX,
		.hc_timeout_s = TRACKD_TIMEOUT_S,
		.hc_chan = m->m_chan,
		.hc_unsub = m->m_chan[threads],
		.hc_lost = trackd_lost,
		.hc_lost_arg = m };
	struct trackd_http     *h;
	char			err[256];

	if (m->m_keyp != NULL) {
		trackd_key_on_lost(m->m_keyp, trackd_lost, m);
		if ((m->m_tls = trackd_tls_new(m->m_cert, trackd_key_sign,
			 m->m_keyp, err, sizeof(err))) == NULL)
			log_fatalx("%s: %s", m->m_cf->cf_tls_cert, err);
		trackd_wipe_cert(m); /* GnuTLS decoded the certificates only */
		hc.hc_tls_retrieve = trackd_tls_retrieve();
	}
	if ((m->m_ev = ev_new(4, 1)) == NULL ||
	    ev_signal(m->m_ev, trackd_on_signal, m) == -1 ||
	    ev_wakeup_init(m->m_ev, trackd_on_wake, m) == -1 ||
	    ev_fd_add(m->m_ev, m->m_chan[m->m_nchan - 1], EV_READ,
		trackd_on_ctl, m) == -1)
		log_fatal("ev");
	if ((h = trackd_http_start(&hc)) == NULL)
		log_fatalx("%s: cannot serve", m->m_cf->cf_track_listen);
	log_info("started: listen=%s, threads=%u, spool=%s",
	    m->m_cf->cf_track_listen, threads, m->m_cf->cf_spool_dir);
	if (!sig_stopping())
		ev_run(m->m_ev);
	trackd_http_stop(&h);
}

static int
trackd_run(struct daemon *d)
{
	struct trackd_main *m = d->d_arg;
	unsigned	    threads = trackd_threads();

	if (m->m_cert != NULL) /* first: no other process has forked yet */
		m->m_keyp = trackd_key_start(m->m_cf, threads, m->m_fd);
	trackd_fork_backend(m, threads);
	conf_forget_secrets(m->m_cf); /* the backend has it; HTTP never */
	/* nothing of the database side is ours: no map, no pid file to write */
	metrics_detach();
	trackd_jail(m);
	trackd_serve(m, threads);
	trackd_stop_backend(m);
	trackd_key_stop(&m->m_keyp);
	trackd_tls_free(&m->m_tls);
	ev_free(&m->m_ev);
	trackd_wipe_cert(m);
	free(m->m_proxies);
	free(m->m_chan);
	conf_free(&m->m_cf);
	return m->m_status;
}

int
main(int argc, char **argv)
{
	static struct trackd_main	m = { .m_fd = -1 };
	static const struct daemon_spec spec = {
		.ds_name = "trackd",
		.ds_check = trackd_check,
		.ds_spool = spool_tree_create_err,
		.ds_bind = trackd_bind,
		.ds_user = NULL, /* two users: trackd_run drops */
		.ds_run = trackd_run,
		.ds_arg = &m,
	};

	daemon_main(argc, argv, &spec);
}
