/*
 * deliverd internals shared by its modules (libdeliverd.a):
 *   deliverd_proto.c     the line protocol on the scheduler <-> worker pipes
 *   deliverd_sched*.c    the scheduler: due recipients -> jobs -> outcomes
 *                        (main loop, claims, dispatch, commit: deliverd_sched.h)
 *   deliverd_worker.c    a delivery worker: job -> sign -> SMTP -> results
 *   deliverd_smtp.c      the SMTP client session (plain and STARTTLS)
 *   deliverd_dkim.c      DKIM signing (the only <opendkim/dkim.h>)
 *   deliverd_key.c       the DKIM key process (deliverd-key) and its clients
 *                        (messages: dkey_proto.h)
 *   deliverd_callback.c  the callback sender (the only <curl/curl.h>)
 * Library functions return 0 or -1 and leave logging to the caller except
 * where noted; the process mains (sched, worker, callback) log and exit.
 */
#ifndef SG_DELIVERD_H
#define SG_DELIVERD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounce.h"
#include "buf.h"
#include "ev.h"
#include "qid.h"
#include "spool.h"
#include "tls.h"
#include "tlsres.h"

struct conf;
struct spool_txn;

/* ---- pipe protocol: one job or result per '\n'-terminated line, fields
 * separated by TAB, escaped with deliverd_esc (\\, \t, \n, \r). */
#define DELIVERD_LINE_MAX     (64 * 1024)
#define DELIVERD_JOB_RCPT_MAX 500

struct deliverd_job {
	uint64_t dj_id;
	char	 dj_qid[QID_SIZE];
	bool	 dj_relay;		       /* dj_hop is relayhost */
	char	 dj_hop[SPOOL_DOMAIN_MAX + 8]; /* domain or relayhost */
	uint32_t dj_idx[DELIVERD_JOB_RCPT_MAX];
	size_t	 dj_nidx;
};

/*
 * The TLS outcome of one delivery attempt (issue 17 items 4 and 6): how the
 * next hop was authenticated, the RFC 8460 policy and result types, the MX
 * host it is about and, for TLS-RPT, the policy's strings ('\n' between
 * them: the STS policy's lines, the TLSA records) and MX patterns (' '
 * between them). deliverd_smtp.c records it per session (the TLS level's
 * verdict; MTA-STS and DANE code sets its own with deliverd_smtp_tls_outcome
 * and deliverd_smtp_tls_policy_strings); the worker puts it on the result
 * line; the scheduler's commit path logs it and counts it for tls-report.
 * to_set false: no session was attempted (simulator, no next hop).
 * RFC 8460 4.4's connection facts, "" when there was no connection (or
 * an older worker's line): to_sip the local address of the connection
 * (getsockname: source_address or the pool's), to_rip the peer's, to_helo
 * the name the MX declared in its last EHLO/HELO reply (when valid syntax).
 */
#define DELIVERD_TLS_PSTR_MAX 1024
#define DELIVERD_TLS_IP_MAX   48 /* >= INET6_ADDRSTRLEN */
struct deliverd_tlsout {
	bool		     to_set;
	enum tlsres_verified to_verified;
	enum tlsres_policy   to_policy;
	enum tlsres_result   to_result;
	char		     to_mx[256];
	char		     to_pstr[DELIVERD_TLS_PSTR_MAX];
	char		     to_mxpat[512];
	char		     to_sip[DELIVERD_TLS_IP_MAX];
	char		     to_rip[DELIVERD_TLS_IP_MAX];
	char		     to_helo[256];
};

/* One recipient's outcome as the worker saw it (reply starts with 2/4/5). */
struct deliverd_result {
	char	 dr_qid[QID_SIZE];
	uint32_t dr_idx;
	char	 dr_reply[SPOOL_REPLY_MAX];
	char	 dr_relay[256]; /* host[addr]:port or "" */
	char	 dr_tls[128];
	char dr_to[SPOOL_ADDR_MAX]; /* the address ("" from an older worker) */
	bool dr_skip;		    /* not attempted (held, gone): no outcome */
	enum bounce_stage dr_stage; /* where the reply came from */
	bool dr_shared; /* a DATA reply that answered several recipients
			 * (the stage field "data+"): about the message */
	char dr_mx[SPOOL_DOMAIN_MAX + 8]; /* the hop's MX host set
						 * (shaping_mxset_key), or "" */
	struct deliverd_tlsout dr_tlsout; /* issue 17: the TLS outcome */
};

/* "J id qid relay hop idx,idx,..." */
int deliverd_job_format(const struct deliverd_job *, struct buf *);
int deliverd_job_parse(const char *line, size_t len, struct deliverd_job *);
/* "R qid idx reply relay tls to stage mx [verified policy result tlsmx
 * pstr mxpat [sip rip helo]]" / "S qid" (skip); stage "data+" is a DATA
 * reply that answered several recipients (dr_shared); lines of an older worker
 * without "to", "stage", "mx", the TLS outcome or its addresses parse with
 * "", BOUNCE_ST_UNKNOWN, "", no outcome (to_set false; "" verified = none
 * recorded) and "" addresses; sip and rip are "" or an IP address. */
int deliverd_result_format(const struct deliverd_result *, struct buf *);
int deliverd_result_parse(const char *line, size_t len,
    struct deliverd_result *);
/* "K qid sig" : the DKIM-Signature header lines (or "" for unsigned) */
int  deliverd_sig_format(const char *qid, const char *sig, struct buf *);
int  deliverd_sig_parse(const char *line, size_t len, char qid[QID_SIZE],
     struct buf *sig);
void deliverd_esc(struct buf *, const char *);
/* Unescapes src[0..len) into dst (NUL-terminated); -1 if it does not fit. */
int deliverd_unesc(const char *src, size_t len, char *dst, size_t dstsz);

/* Reads lines from a non-blocking pipe into in; calls cb per line.
 * Returns 0, or -1 on EOF/error. */
int deliverd_pipe_read(int fd, struct buf *in,
    void (*cb)(const char *, size_t, void *), void *);
/* Blocking write of a whole buffer (the pipe may be non-blocking). */
int deliverd_pipe_write(int fd, const void *, size_t);

/* ---- committing outcomes (deliverd_commit.c): the scheduler's batch */
struct deliverd_sig {
	char  qid[QID_SIZE];
	char *sig; /* DKIM-Signature lines, "" = unsigned */
};
/* One write transaction for a batch of signatures and results (skip
 * entries are ignored); logs the outcomes and removes finished queue
 * files after the commit. 0, or a spool error (nothing recorded). */
int deliverd_commit(struct spool *, const struct conf *,
    const struct deliverd_sig *, size_t nsigs, const struct deliverd_result *,
    size_t nres, int64_t now);

/* ---- bounce classification rules (deliverd_bounce.c), scheduler only */
/* Loads cf's bounce_rules_file: at start an error is fatal; later (SIGHUP)
 * the old rules stay, a line is logged and -1 returned. */
int		deliverd_bounce_load(const struct conf *, bool start);
enum bounce_cat deliverd_bounce_classify(enum bounce_stage, const char *reply);

/* ---- process mains (never return) */
void deliverd_sched_main(struct conf *, int trigger_fd)
    __attribute__((noreturn));
void deliverd_worker_main(struct conf *, int in_fd, int out_fd, int id)
    __attribute__((noreturn));
void deliverd_callback_main(struct conf *) __attribute__((noreturn));

/* ---- DKIM (deliverd_dkim.c) */
/*
 * Signs the message (hdr: the header block without the empty line; body:
 * everything after it) with the account's key for the From domain, else
 * the default domain's keys. Appends the "DKIM-Signature: ..." header
 * lines (CRLF-ended) to sig. why says why when it is not SIGNED.
 */
enum deliverd_dkim_status {
	DELIVERD_DKIM_SIGNED, /* signature lines appended */
	DELIVERD_DKIM_NOKEY,  /* no key: nothing appended, send unsigned */
	DELIVERD_DKIM_ERROR   /* not signed: do not send */
};
enum deliverd_dkim_status deliverd_dkim_sign(struct spool_txn *,
    const struct conf *, const struct spool_msg *, const char *msg,
    size_t msglen, struct buf *sig, char *why, size_t whysz);
/*
 * The decoded-key cache behind deliverd_dkim_sign (see deliverd_dkim.c):
 * its counts since the process started (a miss is a decoded key kept),
 * and a switch that bench/dkim-sign-bench uses to measure without it.
 */
struct deliverd_dkim_cache_stats {
	uint64_t dcs_hits;
	uint64_t dcs_misses;
};
void deliverd_dkim_cache_stats(struct deliverd_dkim_cache_stats *);
void deliverd_dkim_cache_enable(bool);
/*
 * A delivery worker signs through the key process (deliverd_key.c): the
 * key file's name goes to libopendkim instead of its text, and the
 * private operation is the key process's. Never undone in that process.
 */
void deliverd_dkim_use_keyproc(void);

/* ---- the DKIM key process (deliverd_key.c) */
#define DELIVERD_KEY_TIMEOUT_MS 5000 /* a signature, or the message defers */
#define DELIVERD_KEY_QUIET_MS	3000 /* then no signing waits for it */
/* The master, before the scheduler: forks the key process (fatal). */
void deliverd_key_start(const struct conf *);
/* The scheduler's loop: restarts the key process when it exits. */
void deliverd_key_watch(struct ev *);
/* A child that does not sign (the callback sender) drops the master's
 * socket to the key process. */
void deliverd_key_forget(void);
/* A worker at start: its own socket to the key process; then it holds
 * no other way to reach it (logged if the key process is down). */
void deliverd_key_attach(void);
/* Did the key process close this worker's socket (dead or restarted)? */
bool deliverd_key_gone(void);
/* One request (dkey_proto.h; digest NULL for DKEY_Q_PUB): 0 and the
 * answer in out, or -1 (refused, gone, no answer in time: logged). */
int deliverd_key_ask(uint8_t type, const char *name, const uint8_t *digest,
    uint8_t *out, size_t outsz, size_t *outlen_r);
/* The tracking tokens of one recipient's copy (DKEY_Q_TOKENS: what is
 * DKEY_TOK_*, links the click tokens of links 0..links-1): 0 and the
 * tokens, SPOOL_TRACK_TOKEN_LEN bytes each, in out; -1 as above. */
int deliverd_key_tokens(const char *qid, uint32_t idx, uint8_t what,
    unsigned links, uint8_t *out, size_t outsz, size_t *outlen_r);

/* ---- SMTP client session (deliverd_smtp.c) */
struct deliverd_smtp;
struct tls_ctx;
struct tls_policy;
struct sockaddr_storage;

struct deliverd_tx {
	const char  *tx_qid;	     /* for log lines; NULL = none */
	const char  *tx_from;	     /* envelope sender, "" = null */
	const char  *tx_from_params; /* the client's MAIL FROM params */
	const char **tx_rcpt;
	size_t	     tx_nrcpt;
	const char  *tx_sig; /* header lines to prepend, or "" */
	const char  *tx_msg; /* the message (CRLF, unstuffed) */
	size_t	     tx_msglen;
	char (*tx_reply)[SPOOL_REPLY_MAX]; /* out: one per rcpt */
	enum bounce_stage *tx_stage;	   /* out: one per rcpt, or NULL */
};

/*
 * The worker's own bounces for a recipient domain DNS says does not exist
 * (deliverd_worker_route.c, the same texts): "550 5.1.2 Host or domain name not found:
 * DOMAIN (NXDOMAIN)" and "550 5.1.2 Domain DOMAIN has no MX or address
 * records". deliverd_nxdom_reply tells them (at stage connect) from any
 * other reply; the scheduler then suppresses the address only once the
 * domain has been NXDOMAIN for nxdomain_confirm (deliverd_commit.c).
 */
#define DELIVERD_NXDOMAIN_REPLY "550 5.1.2 Host or domain name not found: "
#define DELIVERD_NOHOST_REPLY	"550 5.1.2 Domain "
#define DELIVERD_NOHOST_TAIL	" has no MX or address records"
bool deliverd_nxdom_reply(enum bounce_stage, const char *reply);

/* RFC 8689: the reply of every recipient of a REQUIRETLS message that
 * the session cannot carry (a permanent failure: it bounces). */
#define DELIVERD_REQUIRETLS_REPLY   "550 5.7.30 REQUIRETLS support required"
/* The reply of every recipient when the MX lookup of the recipient domain
 * failed temporarily (timeout, SERVFAIL): the scheduler counts these
 * towards a resolver outage (deliverd_dest_resolver.c). */
#define DELIVERD_DNS_TEMPFAIL_REPLY "451 4.4.3 DNS lookup failed: "

/* The connection cache key: next hop, source address and HELO name. */
#define DELIVERD_SMTP_KEY_MAX (SPOOL_DOMAIN_MAX + 8 + 64 + 256)

/* tls may be NULL (no STARTTLS). The session keeps cf (reload: new one). */
struct deliverd_smtp *deliverd_smtp_new(const struct conf *, struct tls_ctx *);
void		      deliverd_smtp_free(struct deliverd_smtp **);
/*
 * Connects to addr, reads the greeting, EHLO (HELO fallback), STARTTLS as
 * the TLS policy says (common/tls.h; tp_name NULL = host). key names the
 * next hop for reuse. 0 ready; -1 with a reply-like text in reply ("4xx
 * ..." for local trouble, "451 4.7.5 ..." when the policy refuses the
 * session, the server's reply otherwise). A 5xx greeting or EHLO/HELO
 * reply comes back as a 4xx ("454 4.7.1 HOST[ADDR]:PORT refused to talk
 * to me: 554 5.7.1 ..."): try the next host, then defer.
 */
int deliverd_smtp_open(struct deliverd_smtp *, const char *key,
    const char *host, const struct sockaddr_storage *,
    const struct tls_policy *, char *reply, size_t replysz);
/*
 * The source address (text: its numeric form, for messages) and HELO name
 * of the connections opened from now on; src NULL = the kernel's choice,
 * helo NULL or "" = hostname. Callers put both into the key they pass to
 * deliverd_smtp_open and deliverd_smtp_reuse, so a cached connection is
 * never reused for another source.
 */
void deliverd_smtp_source(struct deliverd_smtp *,
    const struct sockaddr_storage *src, const char *text, const char *helo);
/* True if connected to next hop key and below max_msgs_per_connection;
 * probes it with RSET (with PIPELINING: in the next send's first write). */
bool deliverd_smtp_reuse(struct deliverd_smtp *, const char *key);
/* One mail transaction. */
enum deliverd_smtp_status {
	DELIVERD_SMTP_DONE, /* every tx_reply[i] is set */
	DELIVERD_SMTP_GONE, /* the connection is gone; the replies say why */
	DELIVERD_SMTP_PROBE_FAILED /* reused connection only: the RSET probe
					 * failed; closed, no reply set, nothing
					 * answered */
};
enum deliverd_smtp_status deliverd_smtp_send(struct deliverd_smtp *,
    struct deliverd_tx *);
void	    deliverd_smtp_close(struct deliverd_smtp *, bool quit);
bool	    deliverd_smtp_connected(const struct deliverd_smtp *);
const char *deliverd_smtp_relay(
    const struct deliverd_smtp *); /* host[addr]:port */
const char *deliverd_smtp_tls(
    const struct deliverd_smtp *); /* "" or "TLSv1.3 ..." */
/*
 * The TLS outcome of the last session opened (or refused) by
 * deliverd_smtp_open: deliverd_smtp.c sets it from the TLS level's
 * verdict (policy no-policy-found); a policy layer (MTA-STS, DANE) that
 * decides instead calls deliverd_smtp_tls_outcome after (or inside, through
 * its check) the open to override verification, policy type and result,
 * and deliverd_smtp_tls_policy_strings for the report's policy-string and
 * mx-host. Both keep the MX host the session went to.
 */
const struct deliverd_tlsout *deliverd_smtp_tls_out(
    const struct deliverd_smtp *);
void deliverd_smtp_tls_outcome(struct deliverd_smtp *, enum tlsres_verified,
    enum tlsres_policy, enum tlsres_result);
void deliverd_smtp_tls_policy_strings(struct deliverd_smtp *, const char *pstr,
    const char *mxpat);
/* The outcome is of a session with the relayhost: the events keep its
 * verification, TLS reports (RFC 8460: MX delivery) leave it out. */
void deliverd_smtp_tls_relayhost(struct deliverd_smtp *);
/* The TLS client context of the next opens (MX delivery's tls_ca_file or
 * the relayhost's relayhost_tls_ca_file; NULL: no STARTTLS). */
void deliverd_smtp_tls_ctx(struct deliverd_smtp *, struct tls_ctx *);
/* Forgets the outcome (before a job's first attempt). */
void deliverd_smtp_tls_reset(struct deliverd_smtp *);
/* The outcome's MX host, for an outcome decided before any session (a
 * failed TLSA lookup: DANE). */
void deliverd_smtp_tls_mx(struct deliverd_smtp *, const char *host);
/* The verdict pol would give on the open session (tls_policy_verdict;
 * tp_name NULL: its host): MTA-STS testing checks what enforce would. */
/* RFC 8689 section 5: the message's header says "TLS-Required: No" (and
 * it did not ask for REQUIRETLS): the recipient domain's MTA-STS and DANE
 * policies are not applied to it; TLS stays opportunistic. */
bool deliverd_smtp_tls_required_no(const struct deliverd_tx *);
/* The same test on the message's first len bytes (its header block: at
 * most DELIVERD_TLSNO_HDR_MAX are read) and its MAIL FROM parameters. */
#define DELIVERD_TLSNO_HDR_MAX (256 * 1024)
bool deliverd_tls_required_no(const char *msg, size_t len,
    const char *from_params);
/* The RFC 8460 result type of a tls_fail (a failed verdict). */
enum tlsres_result deliverd_tls_fail_result(enum tls_fail);
int		   deliverd_smtp_tls_verdict(const struct deliverd_smtp *,
		   const struct tls_policy *, char *why, size_t whysz, enum tls_fail *);
/* Where the last deliverd_smtp_open() failed: connect (no SMTP reply:
 * connect, I/O, timeout), greeting, or helo (EHLO/HELO/STARTTLS). */
enum bounce_stage deliverd_smtp_stage(const struct deliverd_smtp *);
/* RFC 8689: does the message ask for REQUIRETLS (its MAIL FROM did)? And
 * does the open session meet it (REQUIRETLS offered over verified TLS)? A
 * worker tries the next host of the destination when it does not. */
bool deliverd_smtp_wants_requiretls(const struct deliverd_tx *);
bool deliverd_smtp_requiretls_met(const struct deliverd_smtp *);

/* ---- helpers */
int64_t deliverd_now(void); /* unix seconds */
/* monotonic milliseconds: ev_clock_ms() (common/ev.h) */
/* Lower-cased domain of an address ("" for none). */
void deliverd_domain(const char *addr, char *dst, size_t dstsz);
/* Folds any reply text into one safe line (no CR/LF/TAB/NUL). */
void deliverd_fold(char *s);

#endif
