/*
 * smtpd: main() and the master. The master binds every listener, loads
 * the TLS certificate and the SASL plugins (phase 1, as root when started
 * as root), then preforks smtpd_workers workers and supervises them. It
 * never reads a client byte, so it may keep root: to reload the
 * certificate on SIGHUP and to start workers that chroot and drop
 * privileges themselves (CONTRACT, STYLE P4).
 *
 *   SIGHUP:  reload the configuration and certificate; the listeners stay
 *            open; old workers retire (finish their sessions), new ones start.
 *   SIGTERM: workers stop accepting, finish within a grace period, else
 *            421; the master exits 0 when they are gone.
 *   A dead worker is replaced; one that dies young repeatedly is replaced
 *   with an exponential back-off (1 s .. 30 s) so a crash loop cannot spin.
 *   A worker that says it retires (smtpd_max_use) is replaced at once and
 *   finishes its sessions meanwhile (smtpd_limits.c carries the notice).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "priv.h"
#include "sig.h"
#include "smtpd.h"
#include "smtpd_limits.h"
#include "spool.h"
#include "tls.h"
#include "xmem.h"

#define SMTPD_MAX_LISTENERS	64
#define SMTPD_BACKOFF_MAX_MS	30000
#define SMTPD_YOUNG_MS		10000	/* dying younger than this is a crash loop */

struct smtpd_child {
	pid_t		 sc_pid;		/* 0: empty slot */
	int64_t		 sc_started;
	int64_t		 sc_respawn_at;
	unsigned	 sc_fails;
	bool		 sc_retiring;	/* said so (max_use); replace early */
};

struct smtpd_master {
	const char		*ma_path;
	struct smtpd_env	 ma_env;
	struct smtpd_listener	 ma_ls[SMTPD_MAX_LISTENERS];
	struct smtpd_child	*ma_slots;
	size_t			 ma_nslots;
	pid_t			*ma_retired;	/* retiring workers, still running */
	size_t			 ma_nretired;
	pid_t			 ma_board_pid[SMTPD_BOARD_SLOTS];
	struct smtpd_child	 ma_lka;	/* the lookup process */
	int			 ma_lka_ctl;	/* its control socket, -1: down */
};

static int64_t
smtpd_ms(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
smtpd_usage(void)
{
	(void)fprintf(stderr, "usage: smtpd [-v] [-c file]\n");
	exit(2);
}

/* ---- phase 1: listeners and TLS */

static int
smtpd_bind_one(const struct conf *cf, const struct conf_listen *cl,
    const char *host, const char *port, enum conf_tls tls,
    struct smtpd_listener *l)
{
	struct addrinfo	 hints, *res = NULL;
	int		 fd, one = 1, rc;
	char		 w[4200];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		log_fatalx_status(2, "%s: %s:%s: %s",
		    conf_where_listen(cf, cl, w, sizeof(w)), host, port,
		    gai_strerror(rc));
	fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		log_fatalx_status(2, "%s: %s:%s: socket: %s",
		    conf_where_listen(cf, cl, w, sizeof(w)), host, port,
		    strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 || listen(fd, 1024) == -1)
		log_fatalx_status(2, "%s: %s:%s: %s",
		    conf_where_listen(cf, cl, w, sizeof(w)), host, port,
		    strerror(errno));
	freeaddrinfo(res);
	l->sl_fd = fd;
	l->sl_tls = tls;
	(void)snprintf(l->sl_name, sizeof(l->sl_name), "%s%s%s:%s",
	    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
	return 0;
}

static size_t
smtpd_bind(const struct conf *cf, struct smtpd_listener *ls)
{
	size_t			 i, n = 0;
	const struct conf_listen *cl;

	for (i = 0; i < cf->cf_nlisten; i++) {
		cl = &cf->cf_listen[i];
		if (n + 2 > SMTPD_MAX_LISTENERS)
			log_fatalx_status(2, "%s: listen: too many listeners", cf->cf_path);
		if (strcmp(cl->cl_addr, "*") == 0 || cl->cl_addr[0] == '\0') {
			smtpd_bind_one(cf, cl, "0.0.0.0", cl->cl_port, cl->cl_tls, &ls[n++]);
			smtpd_bind_one(cf, cl, "::", cl->cl_port, cl->cl_tls, &ls[n++]);
		} else
			smtpd_bind_one(cf, cl, cl->cl_addr, cl->cl_port, cl->cl_tls, &ls[n++]);
	}
	/* only after every bind succeeded: a bad config prints one line */
	for (i = 0; i < n; i++)
		log_info("listening on %s tls=%s", ls[i].sl_name,
		    ls[i].sl_tls == CONF_TLS_NONE ? "none" :
		    ls[i].sl_tls == CONF_TLS_STARTTLS ? "starttls" :
		    ls[i].sl_tls == CONF_TLS_REQUIRED ? "required" : "implicit");
	return n;
}

/* NULL when no certificate is configured; err set on failure. */
static struct tls_ctx *
smtpd_tls_load(const struct conf *cf, char *err, size_t errsz)
{
	size_t	i;
	char	w[4200];

	err[0] = '\0';
	if (cf->cf_tls_cert[0] == '\0' && cf->cf_tls_key[0] == '\0') {
		for (i = 0; i < cf->cf_nlisten; i++)
			if (cf->cf_listen[i].cl_tls == CONF_TLS_IMPLICIT ||
			    cf->cf_listen[i].cl_tls == CONF_TLS_REQUIRED) {
				(void)snprintf(err, errsz, "%s: %s:%s: tls=%s "
				    "needs tls_cert and tls_key",
				    conf_where_listen(cf, &cf->cf_listen[i], w,
				    sizeof(w)), cf->cf_listen[i].cl_addr, cf->cf_listen[i].cl_port,
				    cf->cf_listen[i].cl_tls == CONF_TLS_IMPLICIT ?
				    "implicit" : "required");
				return NULL;
			}
		return NULL;
	}
	if (cf->cf_tls_cert[0] == '\0' || cf->cf_tls_key[0] == '\0') {
		(void)snprintf(err, errsz, "%s: tls_cert and tls_key go together",
		    conf_where(cf, cf->cf_tls_cert[0] != '\0' ? "tls_cert" :
		    "tls_key", w, sizeof(w)));
		return NULL;
	}
	{
		char		 why[300];
		struct tls_ctx	*t = tls_server_ctx_new(cf->cf_tls_cert,
				    cf->cf_tls_key, why, sizeof(why));

		if (t == NULL) {
			/* name the file that fails: unreadable, or the one
			 * tls_server_ctx_new() names first in why */
			size_t klen = strlen(cf->cf_tls_key);
			const char *key = access(cf->cf_tls_cert, R_OK) == -1 ?
			    "tls_cert" : access(cf->cf_tls_key, R_OK) == -1 ?
			    "tls_key" : strncmp(why, cf->cf_tls_key, klen) == 0 &&
			    why[klen] == ':' ? "tls_key" : "tls_cert";
			const char *file = strcmp(key, "tls_key") == 0 ?
			    cf->cf_tls_key : cf->cf_tls_cert;

			if (access(file, R_OK) == -1)
				(void)snprintf(err, errsz, "%s: %s: %s",
				    conf_where(cf, key, w, sizeof(w)), file,
				    strerror(errno));
			else
				(void)snprintf(err, errsz, "%s: %s",
				    conf_where(cf, key, w, sizeof(w)), why);
		}
		return t;
	}
}

/* ---- workers */

static void
smtpd_spawn(struct smtpd_master *m, struct smtpd_child *c)
{
	pid_t	pid;
	int	b;

	for (b = 0; b < SMTPD_BOARD_SLOTS && m->ma_board_pid[b] != 0; b++)
		;
	if (b == SMTPD_BOARD_SLOTS)
		log_panic("no free board slot");
	atomic_store(&m->ma_env.se_board->sb_avail[b], 0);
	m->ma_env.se_slot = b;
	m->ma_env.se_lka_fd = smtpd_lka_attach(m->ma_lka_ctl);
	if (smtpd_limits_spawn(m->ma_env.se_limits, (size_t)b,
	    (size_t)m->ma_env.se_cf->cf_smtpd_max_sessions) == -1 ||
	    (pid = fork()) == -1) {
		log_warn("starting a worker");
		smtpd_limits_reaped(m->ma_env.se_limits, (size_t)b);
		if (m->ma_env.se_lka_fd != -1)
			(void)close(m->ma_env.se_lka_fd);	/* unused socket */
		m->ma_env.se_lka_fd = -1;
		c->sc_respawn_at = smtpd_ms() + 1000;
		return;
	}
	if (pid == 0) {
		free(m->ma_retired);
		if (m->ma_lka_ctl != -1)
			(void)close(m->ma_lka_ctl);	/* the master's, not ours */
		smtpd_worker_main(&m->ma_env);
	}
	smtpd_limits_spawned(m->ma_env.se_limits, (size_t)b);
	if (m->ma_env.se_lka_fd != -1)
		(void)close(m->ma_env.se_lka_fd);	/* the worker's end */
	m->ma_env.se_lka_fd = -1;
	m->ma_board_pid[b] = pid;
	c->sc_pid = pid;
	c->sc_started = smtpd_ms();
	c->sc_respawn_at = 0;
	log_debug("worker %ld started", (long)pid);
}

/* The worker of slot i finishes its sessions; the slot starts a new one. */
static void
smtpd_retire_one(struct smtpd_master *m, size_t i)
{
	m->ma_retired = xreallocarray(m->ma_retired, m->ma_nretired + 1,
	    sizeof(pid_t));
	m->ma_retired[m->ma_nretired++] = m->ma_slots[i].sc_pid;
	m->ma_slots[i].sc_pid = 0;
	m->ma_slots[i].sc_respawn_at = 0;
	m->ma_slots[i].sc_retiring = false;
}

static void
smtpd_retire_all(struct smtpd_master *m)
{
	size_t	i;

	for (i = 0; i < m->ma_nslots; i++) {
		if (m->ma_slots[i].sc_pid == 0)
			continue;
		(void)kill(m->ma_slots[i].sc_pid, SIGUSR1);
		smtpd_retire_one(m, i);
	}
}

/*
 * Workers that told smtpd_limits they retire (max_use) get a replacement
 * now, as long as fewer than smtpd_workers are retiring already (a bound
 * on processes); the others keep their slot, and go on accepting while no
 * other worker has room, until that is so.
 */
static void
smtpd_retiring(struct smtpd_master *m, const struct pollfd *pfd, size_t n)
{
	size_t	slots[SMTPD_BOARD_SLOTS], k, j, i;

	k = smtpd_limits_retiring(m->ma_env.se_limits, pfd, n, slots);
	for (j = 0; j < k; j++)
		for (i = 0; i < m->ma_nslots; i++)
			if (m->ma_slots[i].sc_pid != 0 &&
			    m->ma_slots[i].sc_pid == m->ma_board_pid[slots[j]])
				m->ma_slots[i].sc_retiring = true;
	for (i = 0; i < m->ma_nslots && m->ma_nretired < m->ma_nslots; i++)
		if (m->ma_slots[i].sc_pid != 0 && m->ma_slots[i].sc_retiring) {
			log_debug("worker %ld retiring: starting a replacement",
			    (long)m->ma_slots[i].sc_pid);
			smtpd_retire_one(m, i);
		}
}

/*
 * The lookup process died: workers answer AUTH with 454 and pin nobody
 * until it is back; then every worker is replaced, because each one's
 * socket led to the dead process.
 */
static void
smtpd_lka_exit(struct smtpd_master *m, int st)
{
	struct smtpd_child	*c = &m->ma_lka;
	int64_t			 now = smtpd_ms(), delay = 0;

	if (WIFSIGNALED(st))
		log_warnx("lka %ld killed by signal %d: restarting",
		    (long)c->sc_pid, WTERMSIG(st));
	else
		log_warnx("lka %ld exited with status %d: restarting",
		    (long)c->sc_pid, WEXITSTATUS(st));
	c->sc_pid = 0;
	if (m->ma_lka_ctl != -1)
		(void)close(m->ma_lka_ctl);	/* its peer is gone */
	m->ma_lka_ctl = -1;
	if (now - c->sc_started < SMTPD_YOUNG_MS) {
		c->sc_fails++;
		delay = 1000LL << (c->sc_fails > 5 ? 5 : c->sc_fails - 1);
		if (delay > SMTPD_BACKOFF_MAX_MS)
			delay = SMTPD_BACKOFF_MAX_MS;
	} else
		c->sc_fails = 0;
	c->sc_respawn_at = now + delay;
}

static void
smtpd_child_exit(struct smtpd_master *m, pid_t pid, int st)
{
	struct smtpd_child	*c;
	int64_t			 now = smtpd_ms(), delay;
	size_t			 i;
	bool			 crash = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	if (pid == m->ma_lka.sc_pid) {
		smtpd_lka_exit(m, st);
		return;
	}
	/* A killed worker cannot clear its own board slot. */
	for (i = 0; i < SMTPD_BOARD_SLOTS; i++)
		if (m->ma_board_pid[i] == pid) {
			atomic_store(&m->ma_env.se_board->sb_avail[i], 0);
			m->ma_board_pid[i] = 0;
			smtpd_limits_reaped(m->ma_env.se_limits, i);
			break;
		}
	for (i = 0; i < m->ma_nretired; i++)
		if (m->ma_retired[i] == pid) {
			m->ma_retired[i] = m->ma_retired[--m->ma_nretired];
			return;
		}
	for (i = 0; i < m->ma_nslots; i++)
		if (m->ma_slots[i].sc_pid == pid)
			break;
	if (i == m->ma_nslots)
		return;
	c = &m->ma_slots[i];
	c->sc_pid = 0;
	c->sc_retiring = false;
	if (crash) {
		if (WIFSIGNALED(st))
			log_warnx("worker %ld killed by signal %d", (long)pid,
			    WTERMSIG(st));
		else
			log_warnx("worker %ld exited with status %d", (long)pid,
			    WEXITSTATUS(st));
	}
	if (crash && now - c->sc_started < SMTPD_YOUNG_MS) {
		c->sc_fails++;
		delay = 1000LL << (c->sc_fails > 5 ? 5 : c->sc_fails - 1);
		if (delay > SMTPD_BACKOFF_MAX_MS)
			delay = SMTPD_BACKOFF_MAX_MS;
		log_warnx("worker crash loop: next start in %lld ms", (long long)delay);
	} else {
		c->sc_fails = 0;
		delay = 0;
	}
	c->sc_respawn_at = now + delay;
}

/* Starts the lka if it is down and due; replaces the workers of the old one. */
static void
smtpd_lka_check(struct smtpd_master *m, int64_t now, int64_t *t)
{
	struct smtpd_child	*c = &m->ma_lka;
	bool			 restart = c->sc_started != 0;

	if (c->sc_pid != 0)
		return;
	if (c->sc_respawn_at > now) {
		if (c->sc_respawn_at - now < *t)
			*t = c->sc_respawn_at - now;
		return;
	}
	if ((c->sc_pid = smtpd_lka_start(&m->ma_env, &m->ma_lka_ctl)) == -1) {
		c->sc_pid = 0;
		c->sc_respawn_at = now + 1000;
		return;
	}
	c->sc_started = now;
	log_info("lka %ld started", (long)c->sc_pid);
	if (restart)
		smtpd_retire_all(m);
}

static void
smtpd_reap(struct smtpd_master *m)
{
	pid_t	pid;
	int	st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		smtpd_child_exit(m, pid, st);
}

static size_t
smtpd_alive(const struct smtpd_master *m)
{
	size_t	i, n = m->ma_nretired;

	for (i = 0; i < m->ma_nslots; i++)
		if (m->ma_slots[i].sc_pid != 0)
			n++;
	return n;
}

static void
smtpd_signal_all(struct smtpd_master *m, int signo)
{
	size_t	i;

	for (i = 0; i < m->ma_nslots; i++)
		if (m->ma_slots[i].sc_pid != 0)
			(void)kill(m->ma_slots[i].sc_pid, signo);
	for (i = 0; i < m->ma_nretired; i++)
		(void)kill(m->ma_retired[i], signo);
}

/* After the workers: nobody asks the lka anything any more. */
static void
smtpd_lka_stop(struct smtpd_master *m)
{
	pid_t	pid = m->ma_lka.sc_pid;
	int	i;

	if (pid == 0)
		return;
	(void)kill(pid, SIGTERM);
	for (i = 0; i < 30 && waitpid(pid, NULL, WNOHANG) == 0; i++)
		(void)poll(NULL, 0, 100);
	if (i == 30) {
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
	}
}

static void __attribute__((noreturn))
smtpd_stop(struct smtpd_master *m)
{
	int64_t		deadline = smtpd_ms() + SMTPD_GRACE_MS + 3000;
	struct pollfd	pfd;

	log_info("stopping: %zu workers", smtpd_alive(m));
	smtpd_signal_all(m, SIGTERM);
	while (smtpd_alive(m) > 0 && smtpd_ms() < deadline) {
		pfd.fd = sig_fd();
		pfd.events = POLLIN;
		(void)poll(&pfd, 1, 200);
		(void)sig_take();
		smtpd_reap(m);
	}
	if (smtpd_alive(m) > 0) {
		log_warnx("workers still running after the grace period: killing");
		smtpd_signal_all(m, SIGKILL);
		while (smtpd_alive(m) > 0 && waitpid(-1, NULL, 0) > 0)
			smtpd_reap(m);
	}
	smtpd_lka_stop(m);
	log_info("stopped");
	exit(0);
}

/* Listeners stay: only their TLS mode may change on reload. */
static bool
smtpd_same_listeners(const struct conf *a, const struct conf *b)
{
	size_t	i;

	if (a->cf_nlisten != b->cf_nlisten)
		return false;
	for (i = 0; i < a->cf_nlisten; i++)
		if (strcmp(a->cf_listen[i].cl_addr, b->cf_listen[i].cl_addr) != 0 ||
		    strcmp(a->cf_listen[i].cl_port, b->cf_listen[i].cl_port) != 0)
			return false;
	return true;
}

static void
smtpd_reload(struct smtpd_master *m)
{
	struct conf	*ncf;
	struct tls_ctx	*nt;
	char		 err[512];
	size_t		 i, j, k;

	if ((ncf = conf_load(m->ma_path, err, sizeof(err))) == NULL) {
		log_warnx("reload failed, keeping the old configuration: %s", err);
		return;
	}
	nt = smtpd_tls_load(ncf, err, sizeof(err));
	if (err[0] != '\0') {
		log_warnx("reload failed, keeping the old configuration: %s", err);
		conf_free(&ncf);
		return;
	}
	if (!smtpd_same_listeners(m->ma_env.se_cf, ncf))
		log_warnx("reload: listen changes need a restart; keeping the "
		    "listening sockets");
	else
		for (i = 0, k = 0; i < ncf->cf_nlisten; i++) {
			j = strcmp(ncf->cf_listen[i].cl_addr, "*") == 0 ? 2 : 1;
			for (; j > 0 && k < m->ma_env.se_nls; j--)
				m->ma_ls[k++].sl_tls = ncf->cf_listen[i].cl_tls;
		}
	log_set_dest(strcmp(ncf->cf_log, "syslog") == 0 ? LOG_DEST_SYSLOG :
	    LOG_DEST_STDERR);
	tls_ctx_free(&m->ma_env.se_tls);
	m->ma_env.se_tls = nt;
	conf_free(&m->ma_env.se_cf);
	m->ma_env.se_cf = ncf;
	smtpd_limits_conf(m->ma_env.se_limits, ncf);
	smtpd_retire_all(m);
	free(m->ma_slots);
	m->ma_nslots = (size_t)ncf->cf_smtpd_workers;
	m->ma_slots = xcalloc(m->ma_nslots, sizeof(*m->ma_slots));
	log_info("reloaded %s: %zu workers", m->ma_path, m->ma_nslots);
}

static void __attribute__((noreturn))
smtpd_master_loop(struct smtpd_master *m)
{
	static struct pollfd pfd[1 + SMTPD_BOARD_SLOTS];
	unsigned	 sigs;
	int64_t		 now, t;
	size_t		 i, n;

	for (;;) {
		now = smtpd_ms();
		t = 1000;
		smtpd_lka_check(m, now, &t);
		for (i = 0; i < m->ma_nslots; i++) {
			struct smtpd_child *c = &m->ma_slots[i];

			if (c->sc_pid != 0)
				continue;
			if (c->sc_respawn_at <= now)
				smtpd_spawn(m, c);
			else if (c->sc_respawn_at - now < t)
				t = c->sc_respawn_at - now;
		}
		pfd[0] = (struct pollfd){ .fd = sig_fd(), .events = POLLIN };
		n = smtpd_limits_pollfds(m->ma_env.se_limits, pfd + 1,
		    SMTPD_BOARD_SLOTS);
		if (poll(pfd, (nfds_t)(1 + n), (int)t) == -1 && errno != EINTR)
			log_fatal("poll");
		sigs = sig_take();
		if (sigs & SIG_CHLD)
			smtpd_reap(m);
		smtpd_retiring(m, pfd + 1, n);
		if (sigs & SIG_TERM)
			smtpd_stop(m);
		if (sigs & SIG_HUP)
			smtpd_reload(m);
	}
}

int
main(int argc, char **argv)
{
	static struct smtpd_master	 m;
	const char			*path = conf_default_path();
	struct conf			*cf;
	char				 err[512], why[4400];
	bool				 verbose = false;
	int				 ch;

	log_init("smtpd", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:v")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			smtpd_usage();
		}
	}
	if (optind != argc)
		smtpd_usage();
	log_set_verbose(verbose);
	cf = conf_load_or_exit(path);
	if (strcmp(cf->cf_log, "syslog") == 0)
		log_set_dest(LOG_DEST_SYSLOG);
	sig_init();

	/* Phase 1, privileged: tree, sockets, key, SASL plugins (dlopen), tz. */
	if (priv_is_root()) {
		uid_t	uid;
		gid_t	gid;
		char	w[4200];

		/* Fail here, not in a crash loop of workers. */
		if (priv_lookup(cf->cf_smtpd_user, &uid, &gid) == -1)
			log_fatalx_status(2, "%s: unknown user %s",
			    conf_where(cf, "smtpd_user", w, sizeof(w)),
			    cf->cf_smtpd_user);
		smtpd_lka_check_ids(cf);
	}
	if ((ch = spool_tree_create_err(cf, why, sizeof(why))) != 0)
		log_fatalx("spool tree: %s", why);
	daemon_pidfile_write(cf, "smtpd");	/* spoolctl status */
	m.ma_path = path;
	m.ma_env.se_cf = cf;
	m.ma_env.se_lka_fd = m.ma_lka_ctl = -1;
	m.ma_env.se_board = mmap(NULL, sizeof(struct smtpd_board),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m.ma_env.se_board == MAP_FAILED)
		log_fatal("mmap");
	m.ma_env.se_limits = smtpd_limits_new(SMTPD_BOARD_SLOTS,
	    (uint64_t)cf->cf_smtpd_workers * (uint64_t)cf->cf_smtpd_max_sessions);
	if (m.ma_env.se_limits == NULL)
		log_fatal("mmap");
	smtpd_limits_conf(m.ma_env.se_limits, cf);
	tls_init();
	m.ma_env.se_tls = smtpd_tls_load(cf, err, sizeof(err));
	if (err[0] != '\0')
		log_fatalx_status(2, "%s", err);
	m.ma_env.se_ls = m.ma_ls;
	m.ma_env.se_nls = smtpd_bind(cf, m.ma_ls);
	if (smtpd_sasl_init() == -1)
		log_warnx("SASL unavailable: AUTH will fail");
	tzset();
	m.ma_nslots = (size_t)cf->cf_smtpd_workers;
	m.ma_slots = xcalloc(m.ma_nslots, sizeof(*m.ma_slots));
	log_info("started: %zu listeners, %zu workers, tls=%s", m.ma_env.se_nls,
	    m.ma_nslots, m.ma_env.se_tls ? "yes" : "no");
	/* Phase 2 happens in each child: the lka (spoold_user, the database)
	 * and the workers (smtpd_user, chrooted, no database). */
	smtpd_master_loop(&m);
}
