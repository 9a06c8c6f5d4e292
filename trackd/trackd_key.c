/*
 * trackd_key: the key process and the HTTP process's signer (see
 * trackd_key.h). The protocol and the checks are smtpd's (key_proto.h,
 * tls_key_sign): the key process refuses anything but a signature on a
 * SHA-256/384/512 digest (PKCS#1 v1.5, ECDSA) or on a PSS encoding.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev.h"
#include "key_proto.h"
#include "log.h"
#include "metrics.h"
#include "priv.h"
#include "sig.h"
#include "trackd_key.h"
#include "xmem.h"

#define TRACKD_KEY_STOP_MS	  2000
#define TRACKD_KEY_JAIL		  ".trackd-jail.XXXXXX"

struct trackd_key_sock {
	int		k_fd;
	pthread_mutex_t k_mu; /* one request at a time on a socket */
};

struct trackd_key {
	pid_t			k_pid;
	struct trackd_key_sock *k_sock;
	unsigned		k_n;
	atomic_uint		k_id;
	void (*k_lost)(void *);
	void *k_lost_arg;
};

void
trackd_key_void(const struct conf *cf)
{
	struct stat st;
	char	    dir[4200];

	if (snprintf(dir, sizeof(dir), "%s/%s", cf->cf_spool_dir,
		TRACKD_KEY_JAIL) >= (int)sizeof(dir) ||
	    mkdtemp(dir) == NULL || chdir(dir) == -1 || rmdir(dir) == -1)
		log_fatal("empty directory %s", dir);
	/* spool_dir is the daemon user's: be sure the jail is ours and gone */
	if (stat(".", &st) == -1 || st.st_uid != 0 || st.st_nlink != 0)
		log_fatalx("empty directory %s was replaced", dir);
}

/* ---- the key process */

/* One request on fd; false: close that socket. */
static bool
trackd_key_serve(struct tls_key *key, int fd)
{
	uint8_t in[KEY_MSG_MAX + 1], sig[TLS_SIGN_MAX], out[KEY_MSG_MAX];
	struct tls_sign req;
	const char     *why = NULL;
	uint32_t	id = 0;
	size_t		siglen = 0, olen;
	ssize_t		n;
	int		rc;

	n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false; /* the HTTP process closed it */
	if ((size_t)n > KEY_MSG_MAX ||
	    key_request_parse(in, (size_t)n, &id, &req) != KEY_OK) {
		log_warnx("key: bad request (%zd bytes): closing its socket",
		    n);
		return false;
	}
	rc = tls_key_sign(key, &req, sig, sizeof(sig), &siglen, &why);
	explicit_bzero(&req, sizeof(req));
	olen = key_reply_make(out, sizeof(out), rc == 0 ? KEY_R_OK : KEY_R_NO,
	    id, sig, rc == 0 ? siglen : 0);
	if (rc == -1) {
		/* the HTTP process asks only for what trackd_tls offers */
		log_warnx("key: request refused (%s): closing its socket", why);
		(void)send(fd, out, olen, MSG_DONTWAIT | MSG_NOSIGNAL);
		return false;
	}
	return send(fd, out, olen, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)olen;
}

/* Until every socket is closed (the HTTP process stopped or died). */
static void __attribute__((noreturn))
trackd_key_loop(struct tls_key *key, int *fd, unsigned n)
{
	struct pollfd *pfd = xcalloc(n, sizeof(*pfd));
	unsigned       i, open = n;

	for (i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
	while (open > 0) {
		if (poll(pfd, n, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_fatal("key: poll");
		}
		for (i = 0; i < n; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0 ||
			    trackd_key_serve(key, pfd[i].fd))
				continue;
			(void)close(pfd[i].fd); /* a socket: nothing lost */
			pfd[i].fd = -1;
			open--;
		}
	}
	tls_key_free(&key);
	log_debug("key: the HTTP process is gone: exiting");
	_exit(0);
}

static void __attribute__((noreturn))
trackd_key_main(struct conf *cf, int ctl, int *fd, unsigned n)
{
	struct tls_key *key;
	char		err[TLS_KEY_STATUS_MAX];

	sig_reset(); /* SIGTERM (and the parent's death) end it */
	(void)signal(SIGHUP, SIG_IGN);
	(void)signal(SIGPIPE, SIG_IGN); /* a closed log pipe: EPIPE */
	log_set_procname("trackd/key");
	(void)prctl(PR_SET_NAME, "trackd-key"); /* ps and the tests */
	metrics_detach();			/* it counts nothing */
	conf_forget_secrets(cf);
	if ((key = tls_key_load(cf->cf_tls_cert, cf->cf_tls_key, err,
		 sizeof(err))) == NULL) {
		tls_key_status_send(ctl, err);
		_exit(1);
	}
	if (priv_is_root()) {
		trackd_key_void(cf);
		priv_drop(cf->cf_trackd_user, NULL, ".");
	}
	/* after the drop (which resets both): no process of its uid may
	 * read its memory or trace it; it follows its parent */
	(void)prctl(PR_SET_DUMPABLE, 0);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(0);
	tls_key_status_send(ctl, NULL);
	(void)close(ctl);
	log_debug("key: started");
	trackd_key_loop(key, fd, n);
}

/* ---- trackd's side */

struct trackd_key *
trackd_key_start(struct conf *cf, unsigned nsock, int close_fd)
{
	struct trackd_key *k = xcalloc(1, sizeof(*k));
	int		  *peer = xcalloc(nsock, sizeof(*peer)), ctl[2], sp[2];
	char		   err[TLS_KEY_STATUS_MAX + 64], w[4200];
	unsigned	   i;

	k->k_n = nsock;
	k->k_sock = xcalloc(nsock, sizeof(*k->k_sock));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == -1)
		log_fatal("socketpair");
	for (i = 0; i < nsock; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) ==
		    -1)
			log_fatal("socketpair");
		k->k_sock[i].k_fd = sp[0];
		peer[i] = sp[1];
		if (pthread_mutex_init(&k->k_sock[i].k_mu, NULL) != 0)
			log_fatalx("pthread_mutex_init");
	}
	if ((k->k_pid = fork()) == -1)
		log_fatal("fork");
	if (k->k_pid == 0) {
		(void)close(ctl[0]);
		if (close_fd != -1)
			(void)close(close_fd); /* nothing of the network */
		trackd_key_close_fds(k);
		trackd_key_main(cf, ctl[1], peer, nsock);
	}
	(void)close(ctl[1]);
	for (i = 0; i < nsock; i++)
		(void)close(peer[i]);
	free(peer);
	if (tls_key_status_wait(ctl[0], err, sizeof(err)) == -1) {
		(void)kill(k->k_pid, SIGKILL); /* it exits by itself, or hung */
		(void)waitpid(k->k_pid, NULL, 0);
		log_fatalx_status(2, "%s: %s",
		    conf_where(cf, "tls_key", w, sizeof(w)), err);
	}
	(void)close(ctl[0]);
	log_info("key process started (pid %ld)", (long)k->k_pid);
	return k;
}

pid_t
trackd_key_pid(const struct trackd_key *k)
{
	return k == NULL ? -1 : k->k_pid;
}

void
trackd_key_forget(struct trackd_key *k)
{
	k->k_pid = -1;
}

void
trackd_key_close_fds(const struct trackd_key *k)
{
	unsigned i;

	for (i = 0; k != NULL && i < k->k_n; i++)
		(void)close(k->k_sock[i].k_fd);
}

void
trackd_key_on_lost(struct trackd_key *k, void (*fn)(void *), void *arg)
{
	k->k_lost = fn;
	k->k_lost_arg = arg;
}

/* A free socket, or the one id picks (then wait for it): locked. */
static struct trackd_key_sock *
trackd_key_take(struct trackd_key *k, uint32_t id)
{
	struct trackd_key_sock *s;
	unsigned		i;

	for (i = 0; i < k->k_n; i++)
		if (pthread_mutex_trylock(&k->k_sock[i].k_mu) == 0)
			return &k->k_sock[i];
	s = &k->k_sock[id % k->k_n];
	(void)pthread_mutex_lock(&s->k_mu);
	return s;
}

/* The reply to id into sig, by end; -1: refused, gone or late. */
static int
trackd_key_reply(int fd, uint32_t id, int64_t end, uint8_t *sig, size_t sigsz,
    size_t *siglen_r)
{
	struct pollfd	 pfd = { .fd = fd, .events = POLLIN };
	uint8_t		 in[KEY_MSG_MAX + 1];
	struct key_reply r;
	int64_t		 left;
	ssize_t		 n;

	while ((left = end - ev_clock_ms()) > 0) {
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			return -1;
		n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0 || (size_t)n > KEY_MSG_MAX ||
		    key_reply_parse(in, (size_t)n, &r) != KEY_OK)
			return -1; /* gone, or not the key process */
		if (r.kr_id != id)
			continue; /* a late answer to an abandoned request */
		if (r.kr_type != KEY_R_OK || r.kr_len > sigsz)
			return -1;
		memcpy(sig, r.kr_sig, r.kr_len);
		*siglen_r = r.kr_len;
		return 0;
	}
	return -1;
}

int
trackd_key_sign(void *arg, const struct tls_sign *req, uint8_t *sig,
    size_t sigsz, size_t *siglen_r)
{
	struct trackd_key      *k = arg;
	struct trackd_key_sock *s;
	uint8_t			q[KEY_MSG_MAX];
	uint32_t		id = atomic_fetch_add(&k->k_id, 1) + 1;
	size_t			qlen;
	int			rc = -1;

	if ((qlen = key_request_make(q, sizeof(q), id, req)) == 0)
		return -1;
	s = trackd_key_take(k, id);
	if (send(s->k_fd, q, qlen, MSG_NOSIGNAL | MSG_DONTWAIT) ==
	    (ssize_t)qlen)
		rc = trackd_key_reply(s->k_fd, id,
		    ev_clock_ms() + TRACKD_KEY_TIMEOUT_MS, sig, sigsz,
		    siglen_r);
	(void)pthread_mutex_unlock(&s->k_mu);
	if (rc == -1) {
		log_warnx("key: no signature from the key process: stopping");
		if (k->k_lost != NULL)
			k->k_lost(k->k_lost_arg);
	}
	return rc;
}

void
trackd_key_stop(struct trackd_key **kp)
{
	struct trackd_key *k = *kp;
	int64_t		   until;
	unsigned	   i;
	pid_t		   pid;

	if (k == NULL)
		return;
	trackd_key_close_fds(k); /* EOF: it exits */
	until = ev_clock_ms() + TRACKD_KEY_STOP_MS;
	while (k->k_pid > 0) {
		pid = waitpid(k->k_pid, NULL, WNOHANG);
		if (pid == k->k_pid || (pid == -1 && errno != EINTR))
			break;
		if (ev_clock_ms() > until) {
			log_warnx("key process (pid %ld) did not exit",
			    (long)k->k_pid);
			break;
		}
		(void)poll(NULL, 0, 10);
	}
	for (i = 0; i < k->k_n; i++)
		(void)pthread_mutex_destroy(&k->k_sock[i].k_mu);
	free(k->k_sock);
	free(k);
	*kp = NULL;
}
