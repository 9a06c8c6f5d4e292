/*
 * smtpd_key: the key process (OpenSMTPD's ca). smtpd's master forks it
 * before any worker and never reads the TLS key itself: the key process
 * reads tls_key as root, checks it against tls_cert, tells the master
 * (one status message on its control socket), then drops to smtpd_user
 * with smtpd_group alone like the workers, chrooted into spool_dir, not
 * dumpable (no worker of the same uid may ptrace it or read its memory), and answers the workers'
 * signature requests (key_proto.h) over one SOCK_SEQPACKET socketpair per
 * worker, handed to it by the master like the lka's (smtpd_peers.c).
 *
 * The workers' TLS context holds the certificate and a public key whose
 * signatures come from here (tls_key.h): a worker that is taken over
 * finds no key in its memory and can have only signatures made, one
 * digest per request, in the forms TLS 1.2 (ECDHE) and 1.3 use. A
 * malformed or refused request closes that worker's socket (one log
 * line). On reload a new key process starts with the new key; the old
 * one (SIGUSR1) serves the retiring workers until their sockets close.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ev.h"
#include "key_proto.h"
#include "kids.h"
#include "log.h"
#include "priv.h"
#include "sig.h"
#include "smtpd.h"
#include "smtpd_peers.h"
#include "tls.h"
#include "tls_key.h"

#define KEY_MAX_PEERS (2 * SMTPD_BOARD_SLOTS)

struct smtpd_keyp {
	struct tls_key	  *kp_key; /* NULL: no tls_key configured */
	struct smtpd_peers kp_peers;
};

/* One request from a worker's socket; false: drop that socket. */
static bool
smtpd_key_serve(void *arg, int fd)
{
	struct smtpd_keyp *kp = arg;
	uint8_t in[KEY_MSG_MAX + 1], sig[TLS_SIGN_MAX], out[KEY_MSG_MAX];
	struct tls_sign req;
	const char     *why = "no key";
	uint32_t	id = 0;
	size_t		siglen = 0, olen;
	ssize_t		n;
	int		rc = -1;

	n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false; /* the worker exited */
	if ((size_t)n > KEY_MSG_MAX ||
	    key_request_parse(in, (size_t)n, &id, &req) != KEY_OK) {
		log_warnx("key: bad request from a worker (%zd bytes): "
			  "closing its socket",
		    n);
		return false;
	}
	if (kp->kp_key != NULL)
		rc = tls_key_sign(kp->kp_key, &req, sig, sizeof(sig), &siglen,
		    &why);
	olen = key_reply_make(out, sizeof(out), rc == 0 ? KEY_R_OK : KEY_R_NO,
	    id, sig, rc == 0 ? siglen : 0);
	explicit_bzero(&req, sizeof(req));
	if (rc == -1) {
		/* workers ask only for what tls_key_proxy_use allows */
		log_warnx("key: request refused (%s): closing the worker's "
			  "socket",
		    why);
		(void)send(fd, out, olen, MSG_DONTWAIT | MSG_NOSIGNAL);
		return false;
	}
	return send(fd, out, olen, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)olen;
}

static void
smtpd_key_refuse(void *arg, size_t npeers, bool full)
{
	(void)arg;
	(void)full;
	log_warnx("key: cannot take another worker socket (%zu)", npeers);
}

/* SIGTERM or SIGUSR1 (a reload): until the workers' sockets are gone. */
static void __attribute__((noreturn)) smtpd_key_loop(struct smtpd_keyp *kp)
{
	struct smtpd_peers *pp = &kp->kp_peers;

	pp->pp_name = "key";
	pp->pp_max = KEY_MAX_PEERS;
	pp->pp_retire_sigs = SIG_TERM | SIG_USR1;
	pp->pp_ctl_exit = false;
	pp->pp_serve = smtpd_key_serve;
	pp->pp_refuse = smtpd_key_refuse;
	pp->pp_arg = kp;
	smtpd_peers_run(pp);
	tls_key_free(&kp->kp_key);
	exit(0);
}

static void __attribute__((noreturn))
smtpd_key_main(struct smtpd_env *env, int ctl)
{
	static struct smtpd_keyp kp;
	const struct conf	*cf = env->se_cf;
	bool			 jailed = priv_is_root();
	size_t			 i;
	char			 err[TLS_KEY_STATUS_MAX];

	log_set_procname("smtpd/key");
	(void)prctl(PR_SET_NAME, "smtpd-key"); /* ps and the tests */
	kp.kp_peers.pp_ctl = ctl;
	/* nothing of the network side */
	for (i = 0; i < env->se_nls; i++)
		(void)close(env->se_ls[i].sl_fd);
	tls_ctx_free(&env->se_tls);
	(void)munmap(env->se_board, sizeof(*env->se_board));
	conf_forget_secrets(env->se_cf);
	if (cf->cf_tls_key[0] != '\0') {
		kp.kp_key = tls_key_load(cf->cf_tls_cert, cf->cf_tls_key, err,
		    sizeof(err));
		if (kp.kp_key == NULL) {
			tls_key_status_send(ctl, err);
			_exit(1);
		}
	}
	tls_key_status_send(ctl, NULL);
	/* the workers' user and only group: never smtpd_user's primary
	 * group, which may read the database */
	priv_drop_only(cf->cf_smtpd_user, cf->cf_smtpd_group,
	    jailed ? cf->cf_spool_dir : NULL);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	log_debug("key: started%s", kp.kp_key != NULL ? "" : " (no tls_key)");
	smtpd_key_loop(&kp);
}

/* ---- the master's side */

struct smtpd_key_child {
	struct smtpd_env *kc_env;
	const int	 *kc_close;
	size_t		  kc_nclose;
	int		  kc_sp[2];
};

static void
smtpd_key_child(void *arg)
{
	struct smtpd_key_child *c = arg;
	size_t			i;

	(void)close(c->kc_sp[0]);
	for (i = 0; i < c->kc_nclose; i++)
		if (c->kc_close[i] != -1)
			(void)close(c->kc_close[i]);
	smtpd_key_main(c->kc_env, c->kc_sp[1]);
}

pid_t
smtpd_key_start(struct smtpd_env *env, const int *close_fds, size_t nclose,
    int *ctl_r, char *err, size_t errsz)
{
	struct smtpd_key_child c = { .kc_env = env,
		.kc_close = close_fds,
		.kc_nclose = nclose };
	pid_t		       pid;

	*ctl_r = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c.kc_sp) ==
	    -1) {
		(void)snprintf(err, errsz, "key process: socketpair: %s",
		    strerror(errno));
		return -1;
	}
	if ((pid = kids_fork_fn(smtpd_key_child, &c)) == -1) {
		(void)snprintf(err, errsz, "key process: fork: %s",
		    strerror(errno));
		(void)close(c.kc_sp[0]);
		(void)close(c.kc_sp[1]);
		return -1;
	}
	(void)close(c.kc_sp[1]);
	if (tls_key_status_wait(c.kc_sp[0], err, errsz) == -1) {
		(void)close(c.kc_sp[0]);
		(void)kill(pid, SIGKILL); /* it exits by itself, or hung */
		(void)waitpid(pid, NULL, 0);
		return -1;
	}
	*ctl_r = c.kc_sp[0];
	return pid;
}

int
smtpd_key_attach(int ctl)
{
	/* the key process down: the worker's TLS handshakes fail until the
	 * restarted one makes the master replace it */
	return smtpd_peers_attach(ctl, "key",
	    "the key process: the new worker's TLS handshakes fail");
}

/* ---- a worker's side: the signer of its TLS context */

static struct smtpd_env *smtpd_key_env;

/* The reply to id: its signature into sig, or -1 (refused, gone, late). */
static int
smtpd_key_wait_reply(int fd, uint32_t id, uint8_t *sig, size_t sigsz,
    size_t *siglen_r)
{
	uint8_t		 in[KEY_MSG_MAX + 1];
	struct key_reply r;
	int64_t		 end = ev_clock_ms() + SMTPD_KEY_TIMEOUT_MS;
	ssize_t		 n;

	while ((n = smtpd_peers_recv(fd, end, in, sizeof(in))) > 0) {
		if ((size_t)n > KEY_MSG_MAX ||
		    key_reply_parse(in, (size_t)n, &r) != KEY_OK)
			break; /* gone, or not the key process */
		if (r.kr_id != id)
			continue; /* a late answer to an abandoned request */
		if (r.kr_type != KEY_R_OK || r.kr_len > sigsz)
			break;
		memcpy(sig, r.kr_sig, r.kr_len);
		*siglen_r = r.kr_len;
		return 0;
	}
	return -1;
}

static int
smtpd_key_sign(const struct tls_sign *req, uint8_t *sig, size_t sigsz,
    size_t *siglen_r)
{
	struct smtpd_env *env = smtpd_key_env;
	uint8_t		  q[KEY_MSG_MAX];
	uint32_t	  id = ++env->se_key_id;
	size_t		  qlen;

	/* a hung key process must not stall every session in turn */
	if (env->se_key_fd == -1 || ev_clock_ms() < env->se_key_quiet ||
	    (qlen = key_request_make(q, sizeof(q), id, req)) == 0 ||
	    send(env->se_key_fd, q, qlen, MSG_NOSIGNAL | MSG_DONTWAIT) !=
		(ssize_t)qlen) {
		log_warnx("key: no signature: the key process is unreachable");
		return -1;
	}
	if (smtpd_key_wait_reply(env->se_key_fd, id, sig, sigsz, siglen_r) == 0)
		return 0;
	env->se_key_quiet = ev_clock_ms() + SMTPD_KEY_QUIET_MS;
	log_warnx("key: no signature from the key process");
	return -1;
}

void
smtpd_key_client(struct smtpd_env *env)
{
	smtpd_key_env = env;
	tls_key_signer(smtpd_key_sign);
}
