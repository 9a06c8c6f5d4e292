/*
 * smtpd_lka: the lookup process (OpenSMTPD's lka). smtpd's master forks
 * it before any worker; it drops to spoold_user (chrooted into spool_dir),
 * the only smtpd process that opens the database, and answers the
 * workers' account lookups (pinned address, login + password) over one
 * SOCK_SEQPACKET socketpair per worker (lka_proto.h). The master hands it
 * the lka end of each new worker's pair over a control socket (SCM_RIGHTS)
 * and never reads from it. Replies say only what a worker needs: the
 * account and its envelope tag (spool_tag_make), never a password hash.
 *
 * A worker is not trusted: a malformed, oversized or unexpected message
 * closes that worker's socket (one log line); every request is answered
 * at once, a worker that does not read its replies loses its socket.
 * Passwords are hashed here, a dummy hash for unknown users so a wrong
 * login costs what a wrong password costs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev.h"
#include "kids.h"
#include "lka_proto.h"
#include "log.h"
#include "priv.h"
#include "pwcheck.h"
#include "sig.h"
#include "smtpd.h"
#include "smtpd_peers.h"
#include "tls.h"
#include "xmem.h"

#define LKA_MAX_PEERS (2 * SMTPD_BOARD_SLOTS)

struct smtpd_lka {
	const struct conf *lk_cf;
	const char	  *lk_spool; /* "/" when chrooted */
	struct spool	  *lk_db;
	unsigned char	   lk_key[SPOOL_TAG_KEYLEN];
	int		  *lk_ports; /* the listening sockets' ports */
	size_t		   lk_nports;
	struct smtpd_peers lk_peers;
};

/* Room for the one descriptor a worker's request carries. */
union smtpd_lka_cmsg {
	struct cmsghdr hdr;
	char	       buf[CMSG_SPACE(sizeof(int))];
};

static struct spool *
smtpd_lka_db(struct smtpd_lka *lk)
{
	int rc;

	if (lk->lk_db == NULL &&
	    (rc = spool_open(lk->lk_spool, lk->lk_cf->cf_lmdb_map_size,
		 lk->lk_cf->cf_lmdb_map_max, SPOOL_RDONLY, &lk->lk_db)) != 0) {
		log_warnx("spool_open %s (read-only): %s", lk->lk_spool,
		    spool_strerror(rc));
		lk->lk_db = NULL;
	}
	return lk->lk_db;
}

/* Looks an account up by address or login: 0, SPOOL_ENOTFOUND or an error. */
static int
smtpd_lka_get(struct smtpd_lka *lk, bool by_ip, const char *what,
    struct spool_account *a)
{
	struct spool_txn *txn = NULL;
	struct spool	 *db;
	int		  rc;

	if ((db = smtpd_lka_db(lk)) == NULL)
		return SPOOL_EDB;
	if ((rc = spool_begin(db, false, &txn)) != 0) {
		log_warnx("spool_begin: %s", spool_strerror(rc));
		spool_close(&lk->lk_db); /* reopened at the next request */
		return rc;
	}
	rc = by_ip ? spool_account_by_ip(txn, what, a)
		   : spool_account_get(txn, what, a);
	spool_abort(&txn);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		log_warnx("account lookup: %s", spool_strerror(rc));
	return rc;
}

static enum lka_type
smtpd_lka_do_pin(struct smtpd_lka *lk, const struct lka_query *q, int cfd,
    struct spool_account *a)
{
	char	    addr[LKA_ADDR_MAX + 1], peer[LKA_ADDR_MAX + 1];
	const char *why;
	int	    rc;

	memcpy(addr, q->lq_addr, q->lq_addrlen);
	addr[q->lq_addrlen] = '\0';
	/* the address is the connection's, not what the worker says */
	if ((why = smtpd_lka_peer_addr(lk->lk_ports, lk->lk_nports, cfd, peer,
		 sizeof(peer))) != NULL ||
	    strcmp(peer, addr) != 0) {
		log_warnx("lka: pinned-address lookup for %s refused: %s%s",
		    addr, why != NULL ? why : "the connection is from ",
		    why != NULL ? "" : peer);
		return LKA_R_NO;
	}
	rc = smtpd_lka_get(lk, true, addr, a);
	return rc == 0		    ? LKA_R_OK
	    : rc == SPOOL_ENOTFOUND ? LKA_R_NO
				    : LKA_R_TEMP;
}

static enum lka_type
smtpd_lka_do_auth(struct smtpd_lka *lk, const struct lka_query *q,
    struct spool_account *a)
{
	char user[LKA_USER_MAX + 1], pass[LKA_PASS_MAX + 1];
	int  rc;
	bool ok;

	memcpy(user, q->lq_user, q->lq_userlen);
	user[q->lq_userlen] = '\0';
	memcpy(pass, q->lq_pass, q->lq_passlen);
	pass[q->lq_passlen] = '\0';
	rc = smtpd_lka_get(lk, false, user, a);
	if (rc != 0 && rc != SPOOL_ENOTFOUND) {
		explicit_bzero(pass, sizeof(pass));
		return LKA_R_TEMP;
	}
	/* no account, no password login: pwcheck hashes a dummy (same time) */
	ok = pwcheck_ok(rc == 0 && a->ac_pwhash[0] != '\0' ? a->ac_pwhash
							   : NULL,
	    pass, q->lq_passlen);
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(a->ac_pwhash, sizeof(a->ac_pwhash));
	return ok ? LKA_R_OK : LKA_R_NO;
}

/* One datagram from a worker, and the descriptor it carries (else -1). */
static ssize_t
smtpd_lka_recv(int fd, uint8_t *in, size_t insz, int *cfd_r)
{
	union smtpd_lka_cmsg cm;
	struct msghdr	     mh;
	struct iovec	     iov = { .iov_base = in, .iov_len = insz };
	struct cmsghdr	    *c;
	ssize_t		     n;

	*cfd_r = -1;
	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	/* more descriptors than one: the kernel closes those beyond room */
	n = recvmsg(fd, &mh, MSG_TRUNC | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n == -1)
		return -1;
	if ((c = CMSG_FIRSTHDR(&mh)) != NULL && c->cmsg_level == SOL_SOCKET &&
	    c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(cfd_r, CMSG_DATA(c), sizeof(int));
	return n;
}

/* One request from a worker's socket; false: drop that socket. */
static bool
smtpd_lka_serve(void *arg, int fd)
{
	struct smtpd_lka     *lk = arg;
	uint8_t		      in[LKA_MSG_MAX + 1], out[LKA_MSG_MAX];
	struct lka_query      q;
	struct spool_account *a;
	char		      tag[SPOOL_TAG_HEX];
	enum lka_type	      t;
	ssize_t		      n;
	size_t		      olen;
	int		      cfd;

	tag[0] = '\0';
	n = smtpd_lka_recv(fd, in, sizeof(in), &cfd);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false; /* the worker exited */
	if ((size_t)n > LKA_MSG_MAX ||
	    lka_query_parse(in, (size_t)n, &q) != LKA_OK) {
		log_warnx("lka: bad request from a worker (%zd bytes): "
			  "closing its socket",
		    n);
		explicit_bzero(in, sizeof(in));
		if (cfd != -1)
			(void)close(cfd);
		return false;
	}
	a = xcalloc(1, sizeof(*a));
	t = q.lq_type == LKA_Q_PIN ? smtpd_lka_do_pin(lk, &q, cfd, a)
				   : smtpd_lka_do_auth(lk, &q, a);
	if (cfd != -1)
		(void)close(cfd); /* the client's connection: only looked at */
	explicit_bzero(in, sizeof(in));
	if (t == LKA_R_OK)
		spool_tag_make(lk->lk_key, a->ac_login, tag);
	olen = lka_reply_make(out, sizeof(out), t, q.lq_id, a->ac_login, tag);
	freezero(a, sizeof(*a)); /* the pin lookup read the hash too */
	if (olen == 0)
		olen = lka_reply_make(out, sizeof(out), LKA_R_TEMP, q.lq_id,
		    NULL, NULL);
	/* a worker that does not read its replies is gone or hostile */
	return send(fd, out, olen, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)olen;
}

static void
smtpd_lka_refuse(void *arg, size_t npeers, bool full)
{
	(void)arg;
	(void)npeers;
	if (full)
		log_warnx("lka: %d worker sockets: refusing another",
		    LKA_MAX_PEERS);
	else
		log_warn("lka: watching a worker socket");
}

/*
 * SIGTERM (the master stops): the workers finish their sessions first and
 * may still ask; the lka goes once their sockets are closed, or at once
 * when the master is gone (its control socket closed).
 */
static void __attribute__((noreturn)) smtpd_lka_loop(struct smtpd_lka *lk)
{
	struct smtpd_peers *pp = &lk->lk_peers;

	pp->pp_name = "lka";
	pp->pp_max = LKA_MAX_PEERS;
	pp->pp_retire_sigs = SIG_TERM;
	pp->pp_ctl_exit = true;
	pp->pp_serve = smtpd_lka_serve;
	pp->pp_refuse = smtpd_lka_refuse;
	pp->pp_arg = lk;
	smtpd_peers_run(pp);
	spool_close(&lk->lk_db);
	exit(0);
}

void
smtpd_lka_main(struct smtpd_env *env, int ctl)
{
	static struct smtpd_lka lk;
	bool			jailed = priv_is_root();
	size_t			i;
	int			rc;

	log_set_procname("smtpd/lka");
	(void)prctl(PR_SET_NAME,
	    "smtpd-lka"); /* ps and the tests tell it apart */
	lk.lk_cf = env->se_cf;
	lk.lk_peers.pp_ctl = ctl;
	/* nothing of the network side: listeners (their ports kept, for the
	 * pinned-address check), the TLS key, the board */
	lk.lk_ports = xcalloc(env->se_nls + 1, sizeof(*lk.lk_ports));
	for (i = 0; i < env->se_nls; i++) {
		lk.lk_ports[lk.lk_nports++] = smtpd_lka_peer_local_port(
		    env->se_ls[i].sl_fd);
		(void)close(env->se_ls[i].sl_fd);
	}
	tls_ctx_free(&env->se_tls);
	conf_forget_secrets(env->se_cf);
	(void)munmap(env->se_board, sizeof(*env->se_board));
	if (pwcheck_init() == -1) /* before the chroot: the random source */
		log_fatal("lka: cannot make the dummy hash");
	priv_drop(lk.lk_cf->cf_spoold_user, NULL,
	    jailed ? lk.lk_cf->cf_spool_dir : NULL);
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	lk.lk_spool = jailed ? "/" : lk.lk_cf->cf_spool_dir;
	if ((rc = spool_tag_load(lk.lk_spool, lk.lk_key)) != 0)
		log_fatalx("lka: envelope key in %s/db: %s", lk.lk_spool,
		    spool_strerror(rc));
	log_debug("lka: started");
	smtpd_lka_loop(&lk);
}

/* ---- the master's side */

/*
 * As root, before anything starts: a worker's only group is smtpd_group,
 * so that group must exist and be none of the groups that guard the
 * database, the events and maildrop/.
 */
void
smtpd_lka_check_ids(const struct conf *cf)
{
	const char *names[] = { cf->cf_group, cf->cf_maildrop_group };
	uid_t	    uid;
	gid_t	    sg, g;
	size_t	    i;
	char	    w[4200];

	if (priv_lookup_group(cf->cf_smtpd_group, &sg) == -1)
		log_fatalx_status(2,
		    "%s: unknown group \"%s\" (create it, see "
		    "contrib/sysusers.d)",
		    conf_where(cf, "smtpd_group", w, sizeof(w)),
		    cf->cf_smtpd_group);
	if (priv_lookup(cf->cf_spoold_user, &uid, &g) == 0 && g == sg)
		log_fatalx_status(2,
		    "%s: %s is spoold_user %s's group: smtpd "
		    "needs a group of its own",
		    conf_where(cf, "smtpd_group", w, sizeof(w)),
		    cf->cf_smtpd_group, cf->cf_spoold_user);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (priv_lookup_group(names[i], &g) == 0 && g == sg)
			log_fatalx_status(2,
			    "%s: %s is also %s: smtpd needs a "
			    "group of its own",
			    conf_where(cf, "smtpd_group", w, sizeof(w)),
			    cf->cf_smtpd_group,
			    i == 0 ? "smtpgate_group" : "maildrop_group");
}

struct smtpd_lka_child {
	struct smtpd_env *lc_env;
	int		  lc_sp[2];
};

static void
smtpd_lka_child(void *arg)
{
	struct smtpd_lka_child *c = arg;

	(void)close(c->lc_sp[0]);
	if (c->lc_env->se_key_ctl != -1)
		(void)close(c->lc_env->se_key_ctl); /* the master's */
	smtpd_lka_main(c->lc_env, c->lc_sp[1]);
}

pid_t
smtpd_lka_start(struct smtpd_env *env, int *ctl_r)
{
	struct smtpd_lka_child c = { .lc_env = env };
	pid_t		       pid;

	*ctl_r = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c.lc_sp) ==
	    -1) {
		log_warn("lka: socketpair");
		return -1;
	}
	if ((pid = kids_fork_fn(smtpd_lka_child, &c)) == -1) {
		log_warn("lka: fork");
		(void)close(c.lc_sp[0]);
		(void)close(c.lc_sp[1]);
		return -1;
	}
	(void)close(c.lc_sp[1]);
	*ctl_r = c.lc_sp[0];
	return pid;
}

int
smtpd_lka_attach(int ctl)
{
	/* the lka down or stuck: the worker's lookups fail (454) until the
	 * restarted lka makes the master replace it */
	return smtpd_peers_attach(ctl, "lka",
	    "the lookup process: the new worker answers AUTH with 454");
}
