/*
 * smtpd: shared declarations of the master (smtpd.c), the worker event
 * loop (smtpd_worker.c), the SMTP session state machine (smtpd_session.c)
 * and the SASL wrapper (smtpd_sasl.c). Memory: a session owns its buffers,
 * its TLS and SASL objects and its open spool file; smtpd_session_free()
 * releases them all (aborting an unfinished spool file).
 */
#ifndef SG_SMTPD_H
#define SG_SMTPD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "conf.h"
#include "smtpd_data.h"
#include "spool.h"

struct tls_ctx;
struct tls_conn;
struct smtpd_sasl;
struct smtpd_limits;

#define SMTPD_INBUF_MAX	     (64 * 1024)  /* per-session input buffer */
#define SMTPD_OUTBUF_MAX     (256 * 1024) /* per-session reply buffer */
#define SMTPD_OUT_HIGH	     (32 * 1024)  /* stop reading commands above this */
#define SMTPD_AUTH_LINE_MAX  12288	  /* RFC 4954 4 */
#define SMTPD_AUTH_DELAY_MS  1000	  /* per failed AUTH */
#define SMTPD_GRACE_MS	     10000	  /* SIGTERM: time to finish */
#define SMTPD_LKA_TIMEOUT_MS 5000	  /* a lookup, then 454 / not pinned */
#define SMTPD_LKA_QUIET_MS   3000 /* then no lookup waits for a hung lka */
#define SMTPD_KEY_TIMEOUT_MS 5000 /* a signature, then the handshake fails */
#define SMTPD_KEY_QUIET_MS   3000 /* then no handshake waits for it */

struct smtpd_listener {
	int	      sl_fd;
	enum conf_tls sl_tls;
	char	      sl_name[80]; /* "127.0.0.1:25" */
};

/*
 * A board in shared memory (mapped by the master before any fork): each
 * worker says there whether it can take a session now. A full worker
 * answers 421 only when no other worker can (no other IPC exists).
 */
#define SMTPD_BOARD_SLOTS 1024
struct smtpd_board {
	atomic_int sb_avail[SMTPD_BOARD_SLOTS];
};

/* What every session of a worker shares. */
struct smtpd_env {
	struct conf	      *se_cf;
	struct smtpd_listener *se_ls;
	size_t		       se_nls;
	struct tls_ctx	      *se_tls;	  /* NULL: no certificate */
	const char	      *se_spool;  /* "/" when chrooted */
	int		       se_lka_fd; /* this worker's socket to the lka */
	uint32_t	       se_lka_id; /* the last request's id */
	int64_t	 se_lka_quiet; /* ms: after a timeout, fail fast until */
	int	 se_key_ctl;   /* the master's socket to the key process */
	int	 se_key_fd;    /* this worker's socket to the key process */
	uint32_t se_key_id;    /* the last signature request's id */
	int64_t	 se_key_quiet; /* ms: after a failure, fail fast until */
	bool	 se_stopping;  /* SIGTERM: finish, then 421 */
	int64_t	 se_now;       /* ms, monotonic, once per loop */
	struct smtpd_board  *se_board;
	int		     se_slot;	/* this worker's board slot */
	struct smtpd_limits *se_limits; /* shared counts (smtpd_limits.h) */
};

/*
 * The session's input mode. Every change goes through smtpd_enter_state()
 * (logged at debug level with smtpd_strstate()'s names); which verbs a
 * session in SS_CMD accepts is the verb table's column (smtpd_cmd.c).
 */
enum smtpd_state {
	SS_NEW,	      /* allocated, not yet greeted or handshaking */
	SS_HANDSHAKE, /* TLS handshake in progress */
	SS_CMD,	      /* reading command lines */
	SS_AUTH,      /* reading an AUTH continuation line */
	SS_DATA,      /* DATA content */
	SS_BDAT,      /* BDAT chunk content */
	SS_DELAY,     /* paused until ss_wake (failed AUTH) */
	SS_COMMIT,    /* a commit thread is making the message durable */
	SS_STARTTLS,  /* flush "220", then start the handshake */
	SS_CLOSING,   /* flush, then close */
	SS_DEAD	      /* close now */
};

struct smtpd_session {
	struct smtpd_env	    *ss_env;
	int			     ss_fd;
	const struct smtpd_listener *ss_listener;
	enum smtpd_state	     ss_state;
	struct tls_conn		    *ss_tls;
	char	   ss_tlsinfo[128]; /* "" or "TLSv1.3 CIPHER" */
	struct buf ss_in;
	struct buf ss_out;
	bool	   ss_skip_line; /* discarding an overlong line */
	int64_t	   ss_deadline;	 /* ms: idle timeout */
	int64_t	   ss_wake;	 /* ms: end of SS_DELAY */
	int64_t	   ss_started;
	char	   ss_addr[64]; /* numeric client address */
	char	   ss_port[8];
	char	   ss_client[96]; /* "[addr]:port" for logs */
	char	   ss_helo[256];
	bool	   ss_esmtp;
	/* authentication */
	bool ss_authed;
	char ss_account[SPOOL_LOGIN_MAX];   /* account login */
	char ss_sasl_user[SPOOL_LOGIN_MAX]; /* "" if IP-pinned */
	char ss_tag[SPOOL_TAG_HEX];	    /* the lka's tag of ss_account */
	struct smtpd_sasl *ss_sasl;
	int		   ss_auth_failures;
	int		   ss_errors;
	/* transaction */
	bool		  ss_mail; /* MAIL given */
	bool		  ss_smtputf8;
	bool		  ss_requiretls; /* MAIL FROM ... REQUIRETLS */
	struct spool_env  ss_envl;	 /* from, params, rcpts */
	unsigned	  ss_nrcpt_all;	 /* including blackholed */
	bool		  ss_file_open;
	bool		  ss_committing; /* owned by a commit thread */
	int		  ss_commit_rc;
	struct spool_in	  ss_file;
	bool		  ss_ioerr;
	struct smtpd_data ss_dec;
	uint64_t	  ss_bdat_left;
	uint64_t ss_bdat_octets; /* BDAT octets of this message so far */
	bool	 ss_bdat_last;
	bool	 ss_bdat_active;     /* a BDAT transfer began */
	bool	 ss_bdat_reject;     /* chunk read only to discard it */
	char	 ss_bdat_reply[128]; /* reply after a discarded chunk */
	/* statistics for the disconnect line */
	unsigned ss_nmsgs;
	unsigned ss_ncmds;
	/* limits (issue 14) */
	int	 ss_limit_idx; /* smtpd_limits ledger entry */
	int64_t	 ss_touched;   /* ms: last touch */
	unsigned ss_junk;      /* commands since a message */
	unsigned ss_junk_msgs; /* ss_nmsgs at the last reset */
	unsigned ss_revents;   /* worker: EV_* seen this turn */
};

/* smtpd_session.c */
struct smtpd_session *smtpd_session_new(struct smtpd_env *, int fd,
    const struct smtpd_listener *, const char *addr, const char *port);
void		      smtpd_session_free(struct smtpd_session **);
/* Bytes arrived (or a timer fired): run the state machine. */
void smtpd_session_process(struct smtpd_session *);
/* The one place ss_state changes; logs the change at debug level. */
void smtpd_enter_state(struct smtpd_session *, enum smtpd_state);
/* The state's name for logs ("cmd", "data", ...). */
const char *smtpd_strstate(enum smtpd_state);
/* Called by the loop after a flush emptied ss_out in SS_STARTTLS. */
void smtpd_session_start_tls(struct smtpd_session *);
/* TLS handshake finished (greet on implicit TLS). */
void smtpd_session_tls_ready(struct smtpd_session *);
/* Timeouts and SIGTERM: reply 421 and close. */
void smtpd_session_shutdown(struct smtpd_session *, const char *reply);
void smtpd_session_timer(struct smtpd_session *);
bool smtpd_session_idle(const struct smtpd_session *);
/* Restarts the idle timeout for the current state. */
void smtpd_session_touch(struct smtpd_session *);
void smtpd_reply(struct smtpd_session *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *smtpd_session_hostname(const struct smtpd_session *);
/* An error reply that counts toward smtpd_max_errors (then 421). */
void smtpd_session_error(struct smtpd_session *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* smtpd_cmd.c: the verbs */
/* One command line (no CRLF): parse, check, act, reply. */
void smtpd_cmd_dispatch(struct smtpd_session *, const char *line, size_t len);
/* A line of an AUTH exchange (SS_AUTH). */
void smtpd_cmd_auth_line(struct smtpd_session *, const char *line);
/* The current BDAT chunk was read completely. */
void smtpd_cmd_bdat_end(struct smtpd_session *);

/* smtpd_msg.c: the message in progress */
void smtpd_msg_reset(struct smtpd_session *); /* aborts an open file */
/* Creates incoming/tmp/QID with envelope and Received:; 0 or -1.
 * With only blackholed recipients no file is made (0). */
int smtpd_msg_open(struct smtpd_session *);
/* Appends decoded content unless the message is already doomed. */
void smtpd_msg_write(struct smtpd_session *, const void *, size_t);
/* End of DATA / BDAT LAST: reject, or hand over to a commit thread. */
void smtpd_msg_end(struct smtpd_session *);
/* A commit finished (ss_commit_rc): reply 250 or 452 and go on. */
void smtpd_msg_committed(struct smtpd_session *);
/* smtpd_space.c: false after "452 4.3.1 Insufficient system storage" and a
 * log line when the spool is below min_free_space; `what` names the step. */
bool smtpd_space_ok(struct smtpd_session *, const char *what);

/* smtpd_commit.c: spool_in_commit() in a thread pool; a finished commit
 * wakes the loop ev (ev_wakeup: its wake-up callback takes them). */
struct ev;
void smtpd_commit_init(int nthreads, struct ev *);
/* Lets the threads finish what was submitted and joins them. */
void smtpd_commit_stop(void);
void smtpd_commit_submit(struct smtpd_session *);
/* Up to max sessions whose commit finished. */
size_t smtpd_commit_take(struct smtpd_session **, size_t max);

/* smtpd_worker.c */
void smtpd_worker_main(struct smtpd_env *) __attribute__((noreturn));

/* smtpd_lka.c: the lookup process (the only smtpd process with the database) */
/* Forks it; returns its pid (-1 on failure) and the master's control socket. */
pid_t smtpd_lka_start(struct smtpd_env *, int *ctl_r);
/* A new worker's socket: its peer goes to the lka over ctl; -1 if none. */
int  smtpd_lka_attach(int ctl);
void smtpd_lka_main(struct smtpd_env *, int ctl) __attribute__((noreturn));
/* As root: exits 2 if smtpd_group is missing, or is the database's,
 * events' or maildrop's group. */
void smtpd_lka_check_ids(const struct conf *);
/*
 * smtpd_key.c: the key process (the only smtpd process with the TLS
 * key). Start: the pid and *ctl_r once it loaded the key of env->se_cf,
 * or -1 with err (its "<file>: reason"); the child closes close_fds.
 */
pid_t smtpd_key_start(struct smtpd_env *, const int *close_fds, size_t nclose,
    int *ctl_r, char *err, size_t errsz);
/* A new worker's socket: its peer goes to the key process over ctl. */
int smtpd_key_attach(int ctl);
/* In a worker: its TLS context's signatures go over env->se_key_fd. */
void smtpd_key_client(struct smtpd_env *);
/* smtpd_lka_peer.c: the client address of the connection cfd that a
 * worker handed over with a pinned-address lookup; NULL, or why it is
 * not one (no descriptor, not TCP, its local port none of ports: the
 * listening sockets'). */
const char *smtpd_lka_peer_addr(const int *ports, size_t nports, int cfd,
    char *addr, size_t addrsz);
/* The local port of socket fd, or -1. */
int smtpd_lka_peer_local_port(int fd);
/* smtpd_lka_client.c, in a worker: 0 found (login and tag set), 1 no such
 * pinned address / wrong login or password, -1 try later (lka down, timeout).
 * A pinned-address lookup hands the lka the client's connection (cfd): it
 * reads the address from the socket itself, never the worker's word. */
int smtpd_lka_pin(struct smtpd_env *, int cfd, const char *addr,
    char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX]);
int smtpd_lka_auth(struct smtpd_env *, const char *user, const char *pass,
    size_t passlen, char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX]);

/* smtpd_sasl.c */
/* Checks a password (the lka): 0 right, 1 wrong, -1 temporary failure. */
typedef int smtpd_sasl_check_fn(const char *user, const char *pass,
    size_t passlen, void *arg);
enum smtpd_sasl_rc {
	SMTPD_SASL_OK,
	SMTPD_SASL_CONTINUE,
	SMTPD_SASL_FAIL,
	SMTPD_SASL_BADMECH,
	SMTPD_SASL_BADPROT,
	SMTPD_SASL_TEMP
};
int		   smtpd_sasl_init(void); /* in the master, before chroot */
struct smtpd_sasl *smtpd_sasl_new(const char *hostname, smtpd_sasl_check_fn *,
    void				     *arg);
void		   smtpd_sasl_free(struct smtpd_sasl **);
/* initial: the base64 initial response or NULL; chal_r: base64 challenge. */
enum smtpd_sasl_rc smtpd_sasl_start(struct smtpd_sasl *, const char *mech,
    const char *initial, struct buf *chal_r);
enum smtpd_sasl_rc smtpd_sasl_step(struct smtpd_sasl *, const char *resp,
    struct buf *chal_r);
const char	  *smtpd_sasl_user(const struct smtpd_sasl *);

#endif
