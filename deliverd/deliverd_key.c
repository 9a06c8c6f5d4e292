/*
 * deliverd_key: the DKIM key process (deliverd-key), smtpd's key process
 * for deliverd. The delivery workers face hostile MX servers, DNS answers
 * and MTA-STS policies; none of them reads a DKIM private key. deliverd's
 * master forks this process before the scheduler forks any worker; it
 * alone opens spool_dir/keys/, not dumpable, closes every descriptor it
 * inherited but its control socket, and answers the workers' requests
 * (dkey_proto.h): a key's public part, an RSA-SHA256 PKCS#1 v1.5
 * signature of a digest, an Ed25519 signature of the 32-byte hash
 * libopendkim signs, and the engagement-tracking tokens of one recipient's
 * copy of a tracked message (spool_track_token_with under db/track.key,
 * which no worker reads either: a worker holding it could forge
 * unsubscribes, opens and clicks for every recipient until the key
 * changed). One SOCK_SEQPACKET pair per worker: the worker makes
 * it at start and hands the key process its end over the master's
 * control socket (smtpd_peers_attach), then closes that control socket
 * before it talks to any network.
 *
 * Keys are read on demand by the name the worker asks for (the spool's
 * dk_keyfile), checked (a regular file under keys/, no link followed, at
 * most 64 KB of PEM, RSA 1024..8192 bits or Ed25519) and kept decoded,
 * DKEY_CACHE_MAX of them, by name; a file whose inode, size or mtime
 * changed is read again (`spoolctl dkim add` replacing a key), so neither
 * SIGHUP nor a restart is needed for new keys. A malformed request closes
 * that worker's socket (one log line); a refused one (no such key, the
 * wrong algorithm) gets DKEY_R_NO and a log line.
 *
 * The master watches its control socket: when the key process dies the
 * socket closes, a new one starts (at most one start a second) and the
 * workers, whose own sockets closed, finish their job and exit; the
 * scheduler starts their replacements, which attach to the new one. A
 * worker waits DELIVERD_KEY_TIMEOUT_MS for an answer; then that
 * message's signing fails (deferred, 451 4.3.0, never sent unsigned; a
 * tracked copy without its tokens likewise, never sent untracked) and
 * for DELIVERD_KEY_QUIET_MS it does not wait again. The tracking key is
 * read at start, or at the first request when spoold has not made it yet.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "conf.h"
#include "deliverd.h"
#include "dkey_proto.h"
#include "ev.h"
#include "kids.h"
#include "log.h"
#include "sig.h"
#include "smtpd_peers.h"
#include "spool.h"
#include "spool_track.h"
#include "xmem.h"

#define DKEY_CACHE_MAX	 64
#define DKEY_PEM_MAX	 (64 * 1024)
#define DKEY_MAX_PEERS	 4096 /* deliverd_workers' ceiling, and spares */
#define DKEY_RESTART_MS	 1000
#define DKEY_RSA_MINBITS 1024
#define DKEY_RSA_MAXBITS 8192

/* ---- the key process */

struct deliverd_key_cached {
	char		kc_name[DKEY_NAME_MAX + 1]; /* "": a free slot */
	dev_t		kc_dev;
	ino_t		kc_ino;
	off_t		kc_size;
	struct timespec kc_mtim;
	EVP_PKEY       *kc_pkey;
	int		kc_type; /* EVP_PKEY_RSA or EVP_PKEY_ED25519 */
	uint64_t	kc_used;
};

struct deliverd_keyp {
	int			   kp_dir; /* spool_dir/keys/ */
	const char		  *kp_spool;
	struct spool_track_signer *kp_track; /* db/track.key, once loaded */
	struct deliverd_key_cached kp_cache[DKEY_CACHE_MAX];
	uint64_t		   kp_clock;
	struct smtpd_peers	   kp_peers;
};

static int
deliverd_key_no_password(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

/* The key in the open file fd (st: its fstat), or NULL with why. */
static EVP_PKEY *
deliverd_key_decode(int fd, const struct stat *st, const char **why_r)
{
	char	 *pem;
	size_t	  got = 0;
	ssize_t	  n;
	BIO	 *b;
	EVP_PKEY *pk = NULL;

	if (!S_ISREG(st->st_mode) || st->st_size <= 0 ||
	    st->st_size > DKEY_PEM_MAX) {
		*why_r = "not a regular file of at most 64 KB";
		return NULL;
	}
	pem = xmalloc((size_t)st->st_size);
	while (got < (size_t)st->st_size &&
	    (n = read(fd, pem + got, (size_t)st->st_size - got)) > 0)
		got += (size_t)n;
	*why_r = "not a PEM private key";
	if ((b = BIO_new_mem_buf(pem, (int)got)) != NULL) {
		pk = PEM_read_bio_PrivateKey_ex(b, NULL,
		    deliverd_key_no_password, NULL, NULL, NULL);
		BIO_free(b);
	}
	freezero(pem, (size_t)st->st_size);
	ERR_clear_error();
	if (pk == NULL)
		return NULL;
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 ||
	    (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA &&
		EVP_PKEY_get_bits(pk) >= DKEY_RSA_MINBITS &&
		EVP_PKEY_get_bits(pk) <= DKEY_RSA_MAXBITS))
		return pk;
	*why_r = "neither RSA of 1024 to 8192 bits nor Ed25519";
	EVP_PKEY_free(pk);
	return NULL;
}

static bool
deliverd_key_same(const struct deliverd_key_cached *c, const struct stat *st)
{
	return c->kc_dev == st->st_dev && c->kc_ino == st->st_ino &&
	    c->kc_size == st->st_size &&
	    c->kc_mtim.tv_sec == st->st_mtim.tv_sec &&
	    c->kc_mtim.tv_nsec == st->st_mtim.tv_nsec;
}

/* The decoded key of that name, read again if its file changed. */
static struct deliverd_key_cached *
deliverd_key_get(struct deliverd_keyp *kp, const char *name, const char **why_r)
{
	struct deliverd_key_cached *c = NULL, *lru = &kp->kp_cache[0];
	struct stat		    st;
	EVP_PKEY		   *pk;
	size_t			    i;
	int			    fd;

	if ((fd = openat(kp->kp_dir, name,
		 O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) == -1) {
		*why_r = errno == ENOENT ? "no such key file"
		    : errno == ELOOP	 ? "a symbolic link"
					 : "cannot open the key file";
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		(void)close(fd);
		*why_r = "cannot stat the key file";
		return NULL;
	}
	for (i = 0; i < DKEY_CACHE_MAX; i++) {
		if (strcmp(kp->kp_cache[i].kc_name, name) == 0)
			c = &kp->kp_cache[i];
		if (kp->kp_cache[i].kc_used < lru->kc_used)
			lru = &kp->kp_cache[i];
	}
	if (c != NULL && deliverd_key_same(c, &st)) {
		(void)close(fd); /* read only */
		c->kc_used = ++kp->kp_clock;
		return c;
	}
	pk = deliverd_key_decode(fd, &st, why_r);
	(void)close(fd); /* read only */
	if (pk == NULL)
		return NULL;
	if (c == NULL)
		c = lru;
	EVP_PKEY_free(c->kc_pkey);
	memset(c, 0, sizeof(*c));
	(void)snprintf(c->kc_name, sizeof(c->kc_name), "%s", name);
	c->kc_dev = st.st_dev;
	c->kc_ino = st.st_ino;
	c->kc_size = st.st_size;
	c->kc_mtim = st.st_mtim;
	c->kc_pkey = pk;
	c->kc_type = EVP_PKEY_get_base_id(pk);
	c->kc_used = ++kp->kp_clock;
	return c;
}

/* The answer to r into out: its length, or 0 with why. */
static size_t
deliverd_key_answer(struct deliverd_keyp *kp, const struct dkey_req *r,
    uint8_t *out, size_t outsz, const char **why_r)
{
	struct deliverd_key_cached *c;
	EVP_PKEY_CTX		   *pc = NULL;
	EVP_MD_CTX		   *mc = NULL;
	unsigned char		   *p = out;
	size_t			    n = outsz;
	int			    len, ok = 0;

	if ((c = deliverd_key_get(kp, r->dq_name, why_r)) == NULL)
		return 0;
	switch (r->dq_type) {
	case DKEY_Q_PUB:
		if ((len = i2d_PUBKEY(c->kc_pkey, NULL)) <= 0 ||
		    (size_t)len > outsz || i2d_PUBKEY(c->kc_pkey, &p) != len) {
			*why_r = "public key too long";
			return 0;
		}
		return (size_t)len;
	case DKEY_Q_RSA:
		if (c->kc_type != EVP_PKEY_RSA) {
			*why_r = "not an RSA key";
			return 0;
		}
		ok = (pc = EVP_PKEY_CTX_new(c->kc_pkey, NULL)) != NULL &&
		    EVP_PKEY_sign_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(pc, out, &n, r->dq_digest,
			sizeof(r->dq_digest)) == 1;
		EVP_PKEY_CTX_free(pc);
		break;
	case DKEY_Q_ED25519:
		if (c->kc_type != EVP_PKEY_ED25519) {
			*why_r = "not an Ed25519 key";
			return 0;
		}
		ok = (mc = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestSignInit(mc, NULL, NULL, NULL, c->kc_pkey) == 1 &&
		    EVP_DigestSign(mc, out, &n, r->dq_digest,
			sizeof(r->dq_digest)) == 1;
		EVP_MD_CTX_free(mc);
		break;
	default:
		break;
	}
	ERR_clear_error();
	if (!ok || n == 0 || n > outsz) {
		*why_r = "signing failed";
		return 0;
	}
	return n;
}

/* The tracking key, loaded on first use (spoold makes it: it may not be
 * there yet when deliverd starts) and kept in a keyed HMAC context. */
static struct spool_track_signer *
deliverd_key_track(struct deliverd_keyp *kp, const char **why_r)
{
	unsigned char key[SPOOL_TRACK_KEYLEN];
	int	      rc;

	if (kp->kp_track != NULL)
		return kp->kp_track;
	if ((rc = spool_track_key_load(kp->kp_spool, false, key)) != 0) {
		*why_r = rc == ENOENT ? "no db/" SPOOL_TRACK_KEY_FILE
		    : rc == EPERM     ? "db/" SPOOL_TRACK_KEY_FILE
				    " is open to others"
				  : "cannot read db/" SPOOL_TRACK_KEY_FILE;
		return NULL;
	}
	kp->kp_track = spool_track_signer_new(key);
	explicit_bzero(key, sizeof(key));
	if (kp->kp_track == NULL)
		*why_r = "no HMAC context";
	return kp->kp_track;
}

/* The tokens r asks for into out (dkey_proto.h): their length, or 0. */
static size_t
deliverd_key_make_tokens(struct deliverd_keyp *kp, const struct dkey_req *r,
    uint8_t *out, size_t outsz, const char **why_r)
{
	struct spool_track_signer *s;
	struct spool_track_ref	   ref;
	char			   tok[SPOOL_TRACK_TOKEN_MAX];
	size_t			   n = 0;
	unsigned		   i;

	if ((s = deliverd_key_track(kp, why_r)) == NULL)
		return 0;
	if (dkey_tokens_count(r) * SPOOL_TRACK_TOKEN_LEN > outsz) {
		*why_r = "too many tokens"; /* dkey_request_parse bounds it */
		return 0;
	}
	memset(&ref, 0, sizeof(ref));
	(void)snprintf(ref.tk_qid, sizeof(ref.tk_qid), "%s", r->dq_qid);
	ref.tk_idx = r->dq_idx;
	for (i = 0; i < 2u + r->dq_links; i++) {
		if ((i == 0 && !(r->dq_what & DKEY_TOK_OPEN)) ||
		    (i == 1 && !(r->dq_what & DKEY_TOK_UNSUB)))
			continue;
		ref.tk_kind = i == 0 ? SPOOL_TRACK_OPEN
		    : i == 1	     ? SPOOL_TRACK_UNSUB
				     : SPOOL_TRACK_CLICK;
		ref.tk_link = (uint16_t)(i < 2 ? 0 : i - 2);
		if (spool_track_token_with(s, &ref, tok, sizeof(tok)) == -1 ||
		    strlen(tok) != SPOOL_TRACK_TOKEN_LEN) {
			*why_r = "HMAC failed";
			return 0;
		}
		memcpy(out + n, tok, SPOOL_TRACK_TOKEN_LEN);
		n += SPOOL_TRACK_TOKEN_LEN;
	}
	return n;
}

/* One request from a worker's socket; false: drop that socket. */
static bool
deliverd_key_serve(void *arg, int fd)
{
	struct deliverd_keyp *kp = arg;
	uint8_t in[DKEY_REQ_MAX + 1], res[DKEY_OUT_MAX], out[DKEY_REP_MAX];
	struct dkey_req req;
	const char     *why = NULL;
	uint32_t	id = 0;
	size_t		rlen, olen;
	ssize_t		n;

	n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false; /* the worker exited */
	if ((size_t)n > DKEY_REQ_MAX ||
	    dkey_request_parse(in, (size_t)n, &id, &req) != DKEY_OK) {
		log_warnx("key: bad request from a worker (%zd bytes): "
			  "closing its socket",
		    n);
		return false;
	}
	if (req.dq_type == DKEY_Q_TOKENS) {
		rlen = deliverd_key_make_tokens(kp, &req, res, sizeof(res),
		    &why);
		if (rlen == 0)
			log_warnx("%s: key: tracking tokens refused: %s",
			    req.dq_qid, why);
	} else if ((rlen = deliverd_key_answer(kp, &req, res, sizeof(res),
			&why)) == 0)
		log_warnx("key: %s for keys/%s refused: %s",
		    req.dq_type == DKEY_Q_PUB	    ? "public key"
			: req.dq_type == DKEY_Q_RSA ? "RSA signature"
						    : "Ed25519 signature",
		    req.dq_name, why);
	olen = dkey_reply_make(out, sizeof(out),
	    rlen > 0 ? DKEY_R_OK : DKEY_R_NO, id, res, rlen);
	explicit_bzero(res, sizeof(res));
	return send(fd, out, olen, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)olen;
}

static void
deliverd_key_refuse(void *arg, size_t npeers, bool full)
{
	(void)arg;
	(void)full;
	log_warnx("key: cannot take another worker socket (%zu)", npeers);
}

/* Everything inherited but stdio, ctl and the signal pipe (both ends:
 * the same pipe inode as sig_fd()): the scheduler's worker pipes, the
 * trigger FIFO, LMDB's descriptors. */
static void
deliverd_key_close_inherited(int ctl)
{
	struct stat    sp, st;
	DIR	      *d;
	struct dirent *de;
	int	       fd, sfd = sig_fd(), dfd;
	bool	       pipe_ok;

	pipe_ok = sfd != -1 && fstat(sfd, &sp) == 0;
	if ((d = opendir("/proc/self/fd")) == NULL)
		log_fatal("key: /proc/self/fd");
	dfd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = (int)strtol(de->d_name, NULL, 10);
		if (fd <= 2 || fd == ctl || fd == dfd)
			continue;
		if (pipe_ok && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
		    st.st_dev == sp.st_dev && st.st_ino == sp.st_ino)
			continue;
		(void)close(
		    fd); /* an inherited copy: the owner keeps its own */
	}
	(void)closedir(d);
}

static void __attribute__((noreturn))
deliverd_key_main(const char *spool_dir, int ctl, pid_t parent)
{
	static struct deliverd_keyp kp;
	struct smtpd_peers	   *pp = &kp.kp_peers;
	char			    dir[4096];

	log_set_procname("deliverd/key");
	(void)prctl(PR_SET_NAME, "deliverd-key"); /* ps and the tests */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* no worker reads us */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(0); /* the master died before prctl */
	deliverd_key_close_inherited(ctl);
	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_KEYS, NULL) == -1 ||
	    (kp.kp_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		log_fatal("key: %s", dir);
	kp.kp_spool = spool_dir;
	(void)deliverd_key_track(&kp, &(const char *){ NULL }); /* if there */
	pp->pp_name = "key";
	pp->pp_ctl = ctl;
	pp->pp_max = DKEY_MAX_PEERS;
	pp->pp_retire_sigs = SIG_TERM;
	pp->pp_ctl_exit = true; /* the master is gone */
	pp->pp_serve = deliverd_key_serve;
	pp->pp_refuse = deliverd_key_refuse;
	pp->pp_arg = &kp;
	log_debug("key: started");
	smtpd_peers_run(pp);
	exit(0);
}

/* ---- the master's side */

static int	       deliverd_key_ctl = -1; /* the workers inherit it */
static char	       deliverd_key_spool[4096];
static struct ev      *deliverd_key_ev;
static struct ev_timer deliverd_key_timer;
static int64_t	       deliverd_key_started;

struct deliverd_key_child {
	int   kc_sp[2];
	pid_t kc_parent;
};

static void
deliverd_key_child(void *arg)
{
	struct deliverd_key_child *c = arg;

	(void)close(c->kc_sp[0]);
	deliverd_key_main(deliverd_key_spool, c->kc_sp[1], c->kc_parent);
}

static void deliverd_key_on_ctl(struct ev *, int, unsigned, void *);

static int
deliverd_key_spawn(void)
{
	struct deliverd_key_child c = { .kc_parent = getpid() };
	pid_t			  pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, c.kc_sp) ==
	    -1) {
		log_warn("key process: socketpair");
		return -1;
	}
	deliverd_key_started = ev_clock_ms();
	if ((pid = kids_fork_fn(deliverd_key_child, &c)) == -1) {
		log_warn("key process: fork");
		(void)close(c.kc_sp[0]);
		(void)close(c.kc_sp[1]);
		return -1;
	}
	(void)close(c.kc_sp[1]);
	deliverd_key_ctl = c.kc_sp[0];
	log_info("key process %ld started", (long)pid);
	if (deliverd_key_ev != NULL &&
	    ev_fd_add(deliverd_key_ev, deliverd_key_ctl, EV_READ,
		deliverd_key_on_ctl, NULL) == -1)
		log_warn("key process: watching it");
	return 0;
}

void
deliverd_key_start(const struct conf *cf)
{
	(void)snprintf(deliverd_key_spool, sizeof(deliverd_key_spool), "%s",
	    cf->cf_spool_dir);
	if (deliverd_key_spawn() == -1)
		log_fatalx("cannot start the DKIM key process");
}

static void
deliverd_key_on_timer(struct ev *e, struct ev_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	if (deliverd_key_ctl == -1 && deliverd_key_spawn() == -1)
		(void)ev_timer_arm(e, &deliverd_key_timer, DKEY_RESTART_MS, 0);
}

/* The key process's control socket: readable only when it is gone. */
static void
deliverd_key_on_ctl(struct ev *e, int fd, unsigned revents, void *arg)
{
	char	b[16];
	ssize_t n;
	int64_t wait;

	(void)revents;
	(void)arg;
	n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
		return;
	ev_fd_del(e, fd);
	(void)close(fd);
	deliverd_key_ctl = -1;
	wait = deliverd_key_started + DKEY_RESTART_MS - ev_clock_ms();
	log_warnx("key process exited: restarting it; the workers are "
		  "replaced, their messages in signing are deferred");
	(void)ev_timer_arm(e, &deliverd_key_timer, wait > 0 ? wait : 0, 0);
}

void
deliverd_key_watch(struct ev *e)
{
	deliverd_key_ev = e;
	ev_timer_init(&deliverd_key_timer, deliverd_key_on_timer, NULL);
	if (deliverd_key_ctl != -1 &&
	    ev_fd_add(e, deliverd_key_ctl, EV_READ, deliverd_key_on_ctl,
		NULL) == -1)
		log_warn("key process: watching it");
}

void
deliverd_key_forget(void)
{
	if (deliverd_key_ctl != -1)
		(void)close(deliverd_key_ctl); /* the master's, not ours */
	deliverd_key_ctl = -1;
}

/* ---- a worker's side */

static int	deliverd_key_fd = -1;
static uint32_t deliverd_key_id;
static int64_t	deliverd_key_quiet;

void
deliverd_key_attach(void)
{
	deliverd_key_fd = smtpd_peers_attach(deliverd_key_ctl, "key",
	    "the key process: DKIM signing fails until the worker is replaced");
	deliverd_key_forget();
}

bool
deliverd_key_gone(void)
{
	struct pollfd pfd = { .fd = deliverd_key_fd, .events = POLLIN };

	if (deliverd_key_fd == -1)
		return true;
	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP) != 0;
}

/* One request and its answer (deliverd_key_ask, deliverd_key_tokens). */
static int
deliverd_key_call(const struct dkey_req *req, const char *what, uint8_t *out,
    size_t outsz, size_t *outlen_r)
{
	struct dkey_reply r;
	uint8_t		  q[DKEY_REQ_MAX], in[DKEY_REP_MAX + 1];
	uint32_t	  id = ++deliverd_key_id;
	int64_t		  end;
	size_t		  qlen;
	ssize_t		  n;

	/* a hung key process must not stall every message in turn */
	if (deliverd_key_fd == -1 || ev_clock_ms() < deliverd_key_quiet ||
	    (qlen = dkey_request_make(q, sizeof(q), id, req)) == 0 ||
	    send(deliverd_key_fd, q, qlen, MSG_NOSIGNAL | MSG_DONTWAIT) !=
		(ssize_t)qlen) {
		log_warnx("key: no %s: the key process is unreachable", what);
		return -1;
	}
	end = ev_clock_ms() + DELIVERD_KEY_TIMEOUT_MS;
	while (
	    (n = smtpd_peers_recv(deliverd_key_fd, end, in, sizeof(in))) > 0) {
		if ((size_t)n > DKEY_REP_MAX ||
		    dkey_reply_parse(in, (size_t)n, &r) != DKEY_OK)
			break; /* not the key process */
		if (r.dr_id != id)
			continue; /* a late answer to an abandoned request */
		if (r.dr_type != DKEY_R_OK || r.dr_len > outsz)
			return -1; /* refused: the key process said why */
		memcpy(out, r.dr_out, r.dr_len);
		*outlen_r = r.dr_len;
		return 0;
	}
	if (n == -1 && errno == ETIMEDOUT) {
		deliverd_key_quiet = ev_clock_ms() + DELIVERD_KEY_QUIET_MS;
		log_warnx("key: no answer from the key process within %d ms: "
			  "no %s",
		    DELIVERD_KEY_TIMEOUT_MS, what);
	} else
		log_warnx("key: no answer: the key process is gone: no %s",
		    what);
	return -1;
}

int
deliverd_key_ask(uint8_t type, const char *name, const uint8_t *digest,
    uint8_t *out, size_t outsz, size_t *outlen_r)
{
	struct dkey_req req;

	memset(&req, 0, sizeof(req));
	req.dq_type = type;
	(void)snprintf(req.dq_name, sizeof(req.dq_name), "%s", name);
	if (digest != NULL)
		memcpy(req.dq_digest, digest, sizeof(req.dq_digest));
	return deliverd_key_call(&req, "signature", out, outsz, outlen_r);
}

int
deliverd_key_tokens(const char *qid, uint32_t idx, uint8_t what, unsigned links,
    uint8_t *out, size_t outsz, size_t *outlen_r)
{
	struct dkey_req req;

	if (links > DKEY_LINKS_MAX)
		return -1;
	memset(&req, 0, sizeof(req));
	req.dq_type = DKEY_Q_TOKENS;
	(void)snprintf(req.dq_qid, sizeof(req.dq_qid), "%s", qid);
	req.dq_idx = idx;
	req.dq_what = what;
	req.dq_links = (uint16_t)links;
	if (deliverd_key_call(&req, "tracking tokens", out, outsz, outlen_r) ==
	    -1)
		return -1;
	if (*outlen_r != dkey_tokens_count(&req) * SPOOL_TRACK_TOKEN_LEN) {
		log_warnx("%s: key: %zu bytes of tracking tokens, not %zu", qid,
		    *outlen_r, dkey_tokens_count(&req) * SPOOL_TRACK_TOKEN_LEN);
		return -1;
	}
	return 0;
}
