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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "ev.h"
#include "kids.h"
#include "log.h"
#include "priv.h"
#include "sig.h"
#include "smtpd.h"
#include "smtpd_limits.h"
#include "spool.h"
#include "tls.h"
#include "xmem.h"

#define SMTPD_MAX_LISTENERS    64
#define SMTPD_LKA_SLOT	       0  /* kids slot of the lka */
#define SMTPD_KEY_SLOT	       1  /* the key process's */
#define SMTPD_WORKER_SLOT      2  /* the first worker's */
#define SMTPD_WORKERS_AUTO_MAX 16 /* smtpd_workers = 0: 2 per CPU, at most */

/* A child younger than 10 s that fails backs off 1 s, 2 s, ... 30 s. */
static const struct kids_policy smtpd_worker_policy = {
	.kp_retry_ms = 1000,
	.kp_young_ms = 10000,
	.kp_base_ms = 1000,
	.kp_max_ms = 30000,
	.kp_clean_fails = false,
};
/* The lka and the key process never exit on their own: any young exit
 * backs off. */
static const struct kids_policy smtpd_lka_policy = {
	.kp_retry_ms = 1000,
	.kp_young_ms = 10000,
	.kp_base_ms = 1000,
	.kp_max_ms = 30000,
	.kp_clean_fails = true,
};

struct smtpd_master {
	const char	     *ma_path;
	struct smtpd_env      ma_env;
	struct smtpd_listener ma_ls[SMTPD_MAX_LISTENERS];
	struct ev	     *ma_ev;
	struct kids	     *ma_kids;	   /* the lka, then the workers */
	bool		     *ma_retiring; /* per slot: said so (max_use) */
	pid_t		      ma_board_pid[SMTPD_BOARD_SLOTS];
	int		ma_lka_ctl; /* the lka's control socket, -1: down */
	struct ev_timer ma_lka_up;  /* a restarted lka or key process:
				       replace the workers */
	pid_t ma_key_next; /* started for the key slot (a reload), or 0 */
};

static void smtpd_notice(struct ev *, int, unsigned, void *);

/* ---- phase 1: listeners and TLS */

static int
smtpd_bind_one(const struct conf *cf, const struct conf_listen *cl,
    const char *host, const char *port, enum conf_tls tls,
    struct smtpd_listener *l)
{
	struct addrinfo hints, *res = NULL;
	int		fd, one = 1, rc;
	char		w[4200];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		log_fatalx_status(2, "%s: %s:%s: %s",
		    conf_where_listen(cf, cl, w, sizeof(w)), host, port,
		    gai_strerror(rc));
	fd = socket(res->ai_family,
	    res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		log_fatalx_status(2, "%s: %s:%s: socket: %s",
		    conf_where_listen(cf, cl, w, sizeof(w)), host, port,
		    strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 1024) == -1)
		log_fatalx_status(2, "%s: %s:%s: %s",
		    conf_where_listen(cf, cl, w, sizeof(w)), host, port,
		    strerror(errno));
	freeaddrinfo(res);
	l->sl_fd = fd;
	l->sl_tls = tls;
	(void)snprintf(l->sl_name, sizeof(l->sl_name), "%s%s%s:%s",
	    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
	    port);
	return 0;
}

static size_t
smtpd_bind(const struct conf *cf, struct smtpd_listener *ls)
{
	size_t			  i, n = 0;
	const struct conf_listen *cl;

	for (i = 0; i < cf->cf_nlisten; i++) {
		cl = &cf->cf_listen[i];
		if (n + 2 > SMTPD_MAX_LISTENERS)
			log_fatalx_status(2, "%s: listen: too many listeners",
			    cf->cf_path);
		if (strcmp(cl->cl_addr, "*") == 0 || cl->cl_addr[0] == '\0') {
			smtpd_bind_one(cf, cl, "0.0.0.0", cl->cl_port,
			    cl->cl_tls, &ls[n++]);
			smtpd_bind_one(cf, cl, "::", cl->cl_port, cl->cl_tls,
			    &ls[n++]);
		} else
			smtpd_bind_one(cf, cl, cl->cl_addr, cl->cl_port,
			    cl->cl_tls, &ls[n++]);
	}
	/* only after every bind succeeded: a bad config prints one line */
	for (i = 0; i < n; i++)
		log_info("listening on %s tls=%s", ls[i].sl_name,
		    ls[i].sl_tls == CONF_TLS_NONE	    ? "none"
			: ls[i].sl_tls == CONF_TLS_STARTTLS ? "starttls"
			: ls[i].sl_tls == CONF_TLS_REQUIRED ? "required"
							    : "implicit");
	return n;
}

/* The key process's error, named after the file it is about. */
static void
smtpd_key_error(const struct conf *cf, const char *why, char *err, size_t errsz)
{
	size_t clen = strlen(cf->cf_tls_cert);
	char   w[4200];

	if (access(cf->cf_tls_key, R_OK) == -1)
		(void)snprintf(err, errsz, "%s: %s: %s",
		    conf_where(cf, "tls_key", w, sizeof(w)), cf->cf_tls_key,
		    strerror(errno));
	else if (strncmp(why, cf->cf_tls_cert, clen) == 0 && why[clen] == ':')
		(void)snprintf(err, errsz, "%s: %s",
		    conf_where(cf, "tls_cert", w, sizeof(w)), why);
	else
		(void)snprintf(err, errsz, "%s: %s",
		    conf_where(cf, "tls_key", w, sizeof(w)), why);
}

/*
 * The workers' TLS context: the certificate chain and a key whose
 * signatures the key process makes (smtpd_key.c); the master never reads
 * tls_key. NULL when no certificate is configured; err set on failure.
 */
static struct tls_ctx *
smtpd_tls_load(const struct conf *cf, char *err, size_t errsz)
{
	struct tls_ctx *t;
	size_t		i;
	char		w[4200], why[300];

	err[0] = '\0';
	if (cf->cf_tls_cert[0] == '\0' && cf->cf_tls_key[0] == '\0') {
		for (i = 0; i < cf->cf_nlisten; i++)
			if (cf->cf_listen[i].cl_tls == CONF_TLS_IMPLICIT ||
			    cf->cf_listen[i].cl_tls == CONF_TLS_REQUIRED) {
				(void)snprintf(err, errsz,
				    "%s: %s:%s: tls=%s "
				    "needs tls_cert and tls_key",
				    conf_where_listen(cf, &cf->cf_listen[i], w,
					sizeof(w)),
				    cf->cf_listen[i].cl_addr,
				    cf->cf_listen[i].cl_port,
				    cf->cf_listen[i].cl_tls == CONF_TLS_IMPLICIT
					? "implicit"
					: "required");
				return NULL;
			}
		return NULL;
	}
	if (cf->cf_tls_cert[0] == '\0' || cf->cf_tls_key[0] == '\0') {
		(void)snprintf(err, errsz,
		    "%s: tls_cert and tls_key go together",
		    conf_where(cf,
			cf->cf_tls_cert[0] != '\0' ? "tls_cert" : "tls_key", w,
			sizeof(w)));
		return NULL;
	}
	if ((t = tls_server_ctx_signer(cf->cf_tls_cert, why, sizeof(why))) ==
	    NULL) {
		if (access(cf->cf_tls_cert, R_OK) == -1)
			(void)snprintf(err, errsz, "%s: %s: %s",
			    conf_where(cf, "tls_cert", w, sizeof(w)),
			    cf->cf_tls_cert, strerror(errno));
		else
			(void)snprintf(err, errsz, "%s: %s",
			    conf_where(cf, "tls_cert", w, sizeof(w)), why);
	}
	return t;
}

/*
 * A key process for cf (the current configuration, or a reload's): its
 * pid and *ctl_r, or -1 with err in the configuration's words.
 */
static pid_t
smtpd_key_spawn(struct smtpd_master *m, struct conf *cf, int *ctl_r, char *err,
    size_t errsz)
{
	struct smtpd_env env = m->ma_env;
	int		 fds[2] = { m->ma_lka_ctl, m->ma_env.se_key_ctl };
	char		 why[600];
	pid_t		 pid;

	env.se_cf = cf;
	env.se_tls = NULL; /* the master's, not the child's to free */
	if ((pid = smtpd_key_start(&env, fds, 2, ctl_r, why, sizeof(why))) ==
	    -1) {
		if (cf->cf_tls_key[0] != '\0' &&
		    strncmp(why, "key process:", 12))
			smtpd_key_error(cf, why, err, errsz);
		else
			(void)snprintf(err, errsz, "%s", why);
	}
	return pid;
}

/* ---- children: slot 0 is the lka, 1 the key process, the workers follow */

static pid_t
smtpd_spawn_lka(struct smtpd_master *m)
{
	bool  restart = kids_started_ms(m->ma_kids, SMTPD_LKA_SLOT) != 0;
	pid_t pid;

	if ((pid = smtpd_lka_start(&m->ma_env, &m->ma_lka_ctl)) == -1)
		return -1;
	log_info("lka %ld started", (long)pid);
	/* each worker's socket led to the dead one: replace them all, once
	 * this slot is recorded (not from inside the start) */
	if (restart)
		(void)ev_timer_arm(m->ma_ev, &m->ma_lka_up, 0, 0);
	return pid;
}

/* The reload's key process, else a new one (a restart: replace the
 * workers, whose sockets lead to the dead one). */
static pid_t
smtpd_spawn_key(struct smtpd_master *m)
{
	bool  restart = kids_started_ms(m->ma_kids, SMTPD_KEY_SLOT) != 0;
	pid_t pid = m->ma_key_next;
	char  err[700];
	int   ctl;

	m->ma_key_next = 0;
	if (pid != 0) {
		log_info("key process %ld started", (long)pid);
		return pid; /* its socket is se_key_ctl already */
	}
	if ((pid = smtpd_key_spawn(m, m->ma_env.se_cf, &ctl, err,
		 sizeof(err))) == -1) {
		log_warnx("key process: %s", err);
		return -1;
	}
	if (m->ma_env.se_key_ctl != -1)
		(void)close(m->ma_env.se_key_ctl);
	m->ma_env.se_key_ctl = ctl;
	log_info("key process %ld started", (long)pid);
	if (restart)
		(void)ev_timer_arm(m->ma_ev, &m->ma_lka_up, 0, 0);
	return pid;
}

static void
smtpd_worker_child(void *arg)
{
	struct smtpd_master *m = arg;

	if (m->ma_lka_ctl != -1)
		(void)close(m->ma_lka_ctl); /* the master's, not ours */
	if (m->ma_env.se_key_ctl != -1)
		(void)close(m->ma_env.se_key_ctl);
	m->ma_env.se_key_ctl = -1;
	smtpd_worker_main(&m->ma_env);
}

static pid_t
smtpd_spawn_worker(struct smtpd_master *m)
{
	struct smtpd_env *env = &m->ma_env;
	pid_t		  pid = -1;
	int		  b;

	for (b = 0; b < SMTPD_BOARD_SLOTS && m->ma_board_pid[b] != 0; b++)
		;
	if (b == SMTPD_BOARD_SLOTS)
		log_panic("no free board slot");
	atomic_store(&env->se_board->sb_avail[b], 0);
	env->se_slot = b;
	env->se_lka_fd = smtpd_lka_attach(m->ma_lka_ctl);
	env->se_key_fd = smtpd_key_attach(env->se_key_ctl);
	if (smtpd_limits_spawn(env->se_limits, (size_t)b,
		(size_t)env->se_cf->cf_smtpd_max_sessions) == -1 ||
	    (pid = kids_fork_fn(smtpd_worker_child, m)) == -1) {
		log_warn("starting a worker");
		smtpd_limits_reaped(env->se_limits, (size_t)b);
	}
	if (env->se_lka_fd != -1)
		(void)close(env->se_lka_fd); /* the worker's end (or unused) */
	if (env->se_key_fd != -1)
		(void)close(env->se_key_fd);
	env->se_lka_fd = env->se_key_fd = -1;
	if (pid == -1)
		return -1; /* kids tries again in a second */
	smtpd_limits_spawned(env->se_limits, (size_t)b);
	m->ma_board_pid[b] = pid;
	if (ev_fd_add(m->ma_ev,
		smtpd_limits_notice_fd(env->se_limits, (size_t)b), EV_READ,
		smtpd_notice, m) == -1)
		log_warn("watching worker %ld", (long)pid);
	log_debug("worker %ld started", (long)pid);
	return pid;
}

static pid_t
smtpd_spawn(struct kids *k, size_t slot, void *arg)
{
	(void)k;
	return slot == SMTPD_LKA_SLOT ? smtpd_spawn_lka(arg)
	    : slot == SMTPD_KEY_SLOT  ? smtpd_spawn_key(arg)
				      : smtpd_spawn_worker(arg);
}

static void
smtpd_retire_all(struct smtpd_master *m)
{
	size_t i;

	for (i = SMTPD_WORKER_SLOT; i < kids_nslots(m->ma_kids); i++) {
		m->ma_retiring[i] = false;
		if (kids_pid(m->ma_kids, i) != 0 &&
		    kids_retire(m->ma_kids, i, SIGUSR1) == -1)
			log_warn("retiring worker %ld",
			    (long)kids_pid(m->ma_kids, i));
	}
}

static void
smtpd_lka_up(struct ev *e, struct ev_timer *t, void *arg)
{
	(void)e;
	(void)t;
	smtpd_retire_all(arg);
}

/*
 * Workers that told smtpd_limits they retire (max_use) get a replacement
 * now, as long as fewer than smtpd_workers are retiring already (a bound
 * on processes); the others keep their slot, and go on accepting while no
 * other worker has room, until that is so.
 */
static void
smtpd_retiring(struct smtpd_master *m)
{
	size_t i, n = kids_nslots(m->ma_kids);

	for (i = SMTPD_WORKER_SLOT;
	     i < n && kids_nretired(m->ma_kids) < n - SMTPD_WORKER_SLOT; i++)
		if (m->ma_retiring[i] && kids_pid(m->ma_kids, i) != 0) {
			log_debug("worker %ld retiring: starting a replacement",
			    (long)kids_pid(m->ma_kids, i));
			m->ma_retiring[i] = false;
			(void)kids_retire(m->ma_kids, i, 0);
		}
}

/* A worker's notice pipe is readable: counters, a notice, or its death. */
static void
smtpd_notice(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct smtpd_master *m = arg;
	size_t		     b, i;
	bool		     retire;

	(void)revents;
	for (b = 0; b < SMTPD_BOARD_SLOTS; b++)
		if (smtpd_limits_notice_fd(m->ma_env.se_limits, b) == fd)
			break;
	if (b == SMTPD_BOARD_SLOTS) {
		ev_fd_del(e, fd);
		return;
	}
	if (smtpd_limits_notice(m->ma_env.se_limits, b, &retire) == 1)
		ev_fd_del(e, fd); /* closed by smtpd_limits_notice */
	for (i = SMTPD_WORKER_SLOT; retire && i < kids_nslots(m->ma_kids); i++)
		if (kids_pid(m->ma_kids, i) == m->ma_board_pid[b])
			m->ma_retiring[i] = true;
	smtpd_retiring(m);
}

/*
 * The lookup process died: workers answer AUTH with 454 and pin nobody
 * until it is back; then every worker is replaced (smtpd_spawn_lka).
 */
static void
smtpd_lka_exit(struct smtpd_master *m, pid_t pid, int st, int64_t delay)
{
	if (m->ma_lka_ctl != -1)
		(void)close(m->ma_lka_ctl); /* its peer is gone */
	m->ma_lka_ctl = -1;
	if (delay < 0)
		log_debug("lka %ld exited", (long)pid); /* stopping */
	else if (WIFSIGNALED(st))
		log_warnx("lka %ld killed by signal %d: restarting", (long)pid,
		    WTERMSIG(st));
	else
		log_warnx("lka %ld exited with status %d: restarting",
		    (long)pid, WEXITSTATUS(st));
}

/* The key process died: handshakes fail until it is back, then every
 * worker is replaced (smtpd_spawn_key). */
static void
smtpd_key_exit(struct smtpd_master *m, pid_t pid, int st, int64_t delay)
{
	if (m->ma_env.se_key_ctl != -1)
		(void)close(m->ma_env.se_key_ctl);
	m->ma_env.se_key_ctl = -1;
	if (delay < 0)
		log_debug("key process %ld exited", (long)pid);
	else if (WIFSIGNALED(st))
		log_warnx("key process %ld killed by signal %d: restarting",
		    (long)pid, WTERMSIG(st));
	else
		log_warnx("key process %ld exited with status %d: restarting",
		    (long)pid, WEXITSTATUS(st));
}

static void
smtpd_exit(struct kids *k, size_t slot, pid_t pid, int st, int64_t delay,
    void *arg)
{
	struct smtpd_master *m = arg;
	size_t		     b;

	(void)k;
	if (slot == SMTPD_LKA_SLOT) {
		smtpd_lka_exit(m, pid, st, delay);
		return;
	}
	if (slot == SMTPD_KEY_SLOT) {
		smtpd_key_exit(m, pid, st, delay);
		return;
	}
	/* A killed worker cannot clear its own board slot. */
	for (b = 0; b < SMTPD_BOARD_SLOTS; b++)
		if (m->ma_board_pid[b] == pid) {
			atomic_store(&m->ma_env.se_board->sb_avail[b], 0);
			m->ma_board_pid[b] = 0;
			ev_fd_del(m->ma_ev,
			    smtpd_limits_notice_fd(m->ma_env.se_limits, b));
			smtpd_limits_reaped(m->ma_env.se_limits, b);
			break;
		}
	if (slot == KIDS_RETIRED)
		return;
	m->ma_retiring[slot] = false;
	if (WIFSIGNALED(st))
		log_warnx("worker %ld killed by signal %d", (long)pid,
		    WTERMSIG(st));
	else if (WEXITSTATUS(st) != 0)
		log_warnx("worker %ld exited with status %d", (long)pid,
		    WEXITSTATUS(st));
	if (delay > 0)
		log_warnx("worker crash loop: next start in %lld ms",
		    (long long)delay);
}

/* ---- signals */

/* SIGTERM: the workers finish (the lka outlives them), then exit 0. */
static void
smtpd_stop(struct smtpd_master *m)
{
	size_t killed;

	log_info("stopping: %zu workers",
	    kids_alive(m->ma_kids) -
		(kids_pid(m->ma_kids, SMTPD_LKA_SLOT) != 0) -
		(kids_pid(m->ma_kids, SMTPD_KEY_SLOT) != 0));
	killed = kids_stop(m->ma_kids, SIGTERM, SMTPD_GRACE_MS + 3000);
	if (killed > 0)
		log_warnx("%zu processes still running after the grace period: "
			  "killed",
		    killed);
	log_info("stopped");
	ev_break(m->ma_ev);
}

/* Listeners stay: only their TLS mode may change on reload. */
static bool
smtpd_same_listeners(const struct conf *a, const struct conf *b)
{
	size_t i;

	if (a->cf_nlisten != b->cf_nlisten)
		return false;
	for (i = 0; i < a->cf_nlisten; i++)
		if (strcmp(a->cf_listen[i].cl_addr, b->cf_listen[i].cl_addr) !=
			0 ||
		    strcmp(a->cf_listen[i].cl_port, b->cf_listen[i].cl_port) !=
			0)
			return false;
	return true;
}

/*
 * The old workers retire (finish their sessions); new ones start now, in
 * fresh slots (a slot backing off after crashes starts at once too).
 */
static void
smtpd_workers_replace(struct smtpd_master *m, size_t n)
{
	kids_hold(m->ma_kids, true);
	smtpd_retire_all(m);
	if (kids_resize(m->ma_kids, SMTPD_WORKER_SLOT) == 0 &&
	    kids_resize(m->ma_kids, SMTPD_WORKER_SLOT + n) == 0) {
		free(m->ma_retiring);
		m->ma_retiring = xcalloc(SMTPD_WORKER_SLOT + n,
		    sizeof(*m->ma_retiring));
	} else
		log_warn("reload: %zu workers", n);
	kids_hold(m->ma_kids, false);
}

/* smtpd_workers = 0 (the default): two per online CPU, 2 to 16. */
static void
smtpd_workers_auto(struct conf *cf)
{
	long n;

	if (cf->cf_smtpd_workers != 0)
		return;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	n = n < 1 ? 2 : 2 * n;
	cf->cf_smtpd_workers = n > SMTPD_WORKERS_AUTO_MAX
	    ? SMTPD_WORKERS_AUTO_MAX
	    : n;
}

static void
smtpd_reload(struct smtpd_master *m)
{
	struct conf    *ncf;
	struct tls_ctx *nt;
	char		err[700];
	size_t		i, j, k;
	pid_t		kp = -1;
	int		kctl = -1;

	if ((ncf = conf_load(m->ma_path, err, sizeof(err))) == NULL) {
		log_warnx("reload failed, keeping the old configuration: %s",
		    err);
		return;
	}
	smtpd_workers_auto(ncf);
	nt = smtpd_tls_load(ncf, err, sizeof(err));
	if (err[0] == '\0' &&
	    (kp = smtpd_key_spawn(m, ncf, &kctl, err, sizeof(err))) == -1)
		tls_ctx_free(&nt);
	if (err[0] != '\0') {
		log_warnx("reload failed, keeping the old configuration: %s",
		    err);
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
	log_set_dest(daemon_log_dest(ncf));
	tls_ctx_free(&m->ma_env.se_tls);
	m->ma_env.se_tls = nt;
	conf_free(&m->ma_env.se_cf);
	m->ma_env.se_cf = ncf;
	/* the old key process serves the retiring workers, then goes */
	if (m->ma_env.se_key_ctl != -1)
		(void)close(m->ma_env.se_key_ctl);
	m->ma_env.se_key_ctl = kctl;
	if (m->ma_key_next != 0) /* a reload before the slot took one */
		(void)kill(m->ma_key_next, SIGTERM);
	m->ma_key_next = kp;
	if (kids_pid(m->ma_kids, SMTPD_KEY_SLOT) != 0 &&
	    kids_retire(m->ma_kids, SMTPD_KEY_SLOT, SIGUSR1) == -1)
		log_warn("retiring the key process");
	smtpd_limits_conf(m->ma_env.se_limits, ncf);
	smtpd_workers_replace(m, (size_t)ncf->cf_smtpd_workers);
	log_info("reloaded %s: %d workers", m->ma_path,
	    (int)ncf->cf_smtpd_workers);
}

static void
smtpd_signals(struct ev *e, unsigned sigs, void *arg)
{
	struct smtpd_master *m = arg;

	(void)e;
	if (sigs & SIG_CHLD)
		kids_reap(m->ma_kids);
	smtpd_retiring(m);
	if (sigs & SIG_TERM)
		smtpd_stop(m);
	else if (sigs & SIG_HUP)
		smtpd_reload(m);
}

/* ---- the skeleton's steps */

/* As root: fail here, not in a crash loop of workers. */
static void
smtpd_check(struct daemon *d)
{
	uid_t uid;
	gid_t gid;
	char  w[4200];

	smtpd_workers_auto(d->d_cf);
	if (!priv_is_root())
		return;
	if (priv_lookup(d->d_cf->cf_smtpd_user, &uid, &gid) == -1)
		log_fatalx_status(2, "%s: unknown user %s",
		    conf_where(d->d_cf, "smtpd_user", w, sizeof(w)),
		    d->d_cf->cf_smtpd_user);
	smtpd_lka_check_ids(d->d_cf);
}

/* Phase 1, privileged: the board, sockets, key, SASL plugins (dlopen). */
static void
smtpd_bind_all(struct daemon *d)
{
	struct smtpd_master *m = d->d_arg;
	struct conf	    *cf = d->d_cf;
	char		     err[700];

	m->ma_path = d->d_path != NULL ? d->d_path : conf_default_path();
	m->ma_env.se_cf = cf;
	m->ma_env.se_lka_fd = m->ma_lka_ctl = -1;
	m->ma_env.se_key_fd = m->ma_env.se_key_ctl = -1;
	m->ma_env.se_board = mmap(NULL, sizeof(struct smtpd_board),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m->ma_env.se_board == MAP_FAILED)
		log_fatal("mmap");
	m->ma_env.se_limits = smtpd_limits_new(SMTPD_BOARD_SLOTS,
	    (uint64_t)cf->cf_smtpd_workers *
		(uint64_t)cf->cf_smtpd_max_sessions);
	if (m->ma_env.se_limits == NULL)
		log_fatal("mmap");
	smtpd_limits_conf(m->ma_env.se_limits, cf);
	tls_init();
	m->ma_env.se_tls = smtpd_tls_load(cf, err, sizeof(err));
	/* the key process before the listeners and the SASL plugins: it
	 * inherits neither, and a bad key fails here */
	if (err[0] == '\0')
		m->ma_key_next = smtpd_key_spawn(m, cf, &m->ma_env.se_key_ctl,
		    err, sizeof(err));
	if (err[0] != '\0')
		log_fatalx_status(2, "%s", err);
	m->ma_env.se_ls = m->ma_ls;
	m->ma_env.se_nls = smtpd_bind(cf, m->ma_ls);
	if (smtpd_sasl_init() == -1)
		log_warnx("SASL unavailable: AUTH will fail");
}

/*
 * The master's loop: signals and the workers' retirement pipes. Phase 2
 * happens in each child: the lka (spoold_user, the database) and the
 * workers (smtpd_user, chrooted, no database).
 */
static int
smtpd_run(struct daemon *d)
{
	struct smtpd_master *m = d->d_arg;
	size_t		     n = (size_t)d->d_cf->cf_smtpd_workers;

	if ((m->ma_ev = ev_new(SMTPD_BOARD_SLOTS + 4, 4)) == NULL ||
	    ev_signal(m->ma_ev, smtpd_signals, m) == -1 ||
	    (m->ma_kids = kids_new(m->ma_ev, SMTPD_WORKER_SLOT + n,
		 SMTPD_BOARD_SLOTS, &smtpd_worker_policy, smtpd_spawn,
		 smtpd_exit, m)) == NULL)
		log_fatal("event loop");
	kids_set_policy(m->ma_kids, SMTPD_LKA_SLOT, &smtpd_lka_policy);
	kids_set_policy(m->ma_kids, SMTPD_KEY_SLOT, &smtpd_lka_policy);
	m->ma_retiring = xcalloc(SMTPD_WORKER_SLOT + n,
	    sizeof(*m->ma_retiring));
	ev_timer_init(&m->ma_lka_up, smtpd_lka_up, m);
	log_info("started: %zu listeners, %zu workers, tls=%s",
	    m->ma_env.se_nls, n, m->ma_env.se_tls ? "yes" : "no");
	kids_start(m->ma_kids);
	ev_run(m->ma_ev);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct smtpd_master	m;
	static const struct daemon_spec spec = {
		.ds_name = "smtpd",
		.ds_check = smtpd_check,
		.ds_spool = spool_tree_create_err,
		.ds_bind = smtpd_bind_all,
		.ds_user = NULL, /* the master keeps root (STYLE P4) */
		.ds_run = smtpd_run,
		.ds_arg = &m,
	};

	daemon_main(argc, argv, &spec);
}
