/*
 * smtpgate-sendmail: the sendmail(8)-compatible injector (issue 7). It
 * reads a message from stdin (or an SMTP dialogue with -bs), builds the
 * envelope for the configured sendmail_account and writes it into
 * incoming/ through the spool library exactly like smtpd does, so the
 * rest of the pipeline cannot tell the two apart. Functions that can fail
 * return 0 or an EX_* code from <sysexits.h> and leave a one-line reason in
 * the caller's err buffer; they never exit (main() decides).
 */
#ifndef SG_SENDMAIL_H
#define SG_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sysexits.h>

#include "buf.h"
#include "spool.h"

struct conf;

#define SM_PROGNAME  "smtpgate-sendmail"
#define SM_PIECE_MAX 65536 /* longest line handed on in one piece */

/* Buffered, bounded line reader over stdin. */
struct sm_rd {
	int    fd;
	bool   flush_stdout; /* -bs: flush replies before blocking */
	bool   eof;
	size_t off, len;
	char   data[SM_PIECE_MAX];
};

/*
 * How the message read from stdin ends: at EOF (-i), at a line holding
 * only "." or EOF (sendmail's default), or SMTP DATA (dot-stuffed, "."
 * required).
 */
enum sm_term { SM_TERM_EOF, SM_TERM_DOT, SM_TERM_SMTP };

/* Everything one invocation knows. */
struct sm_ctx {
	struct conf *cf;
	uid_t	     uid;		   /* the invoking user */
	char	     user[64];		   /* its name, or "uid%lu" */
	char	     gecos[256];	   /* its full name, may be "" */
	char	     fullname[256];	   /* -F, else gecos */
	char	     from[SPOOL_ADDR_MAX]; /* envelope sender; "" = <> */
	char	     helo[256]; /* "localhost", or the -bs EHLO name */
	bool	     extract;	/* -t */
	bool	     verbose;	/* -v */
	bool	     smtp;	/* -bs: Received says so */
};

/* sendmail_msg.c */
void sm_rd_init(struct sm_rd *, int fd, bool flush_stdout);
/*
 * The next line or piece of a line into out (terminator removed: LF,
 * CRLF or a bare CR each end a line). *complete is false when the line
 * went on past cap bytes: the rest follows in the next call. Returns 1,
 * 0 at EOF, -1 on a read error (errno set).
 */
int sm_rd_line(struct sm_rd *, struct buf *out, size_t cap, bool *complete);
/*
 * Checks an address and completes it: "<a@b>" -> "a@b", "user" ->
 * "user@hostname". Returns 0, or -1 with a reason in err.
 */
int sm_addr_fix(const struct sm_ctx *, const char *in, char *out, size_t outsz,
    char *err, size_t errsz);
/* Adds a recipient unless already there (case-insensitive); EX_* or 0. */
int sm_rcpt_add(const struct sm_ctx *, struct spool_env *, const char *addr,
    char *err, size_t errsz);
/*
 * Reads one message from rd (ending as term says), adds recipients from
 * To:/Cc:/Bcc: when ctx->extract, removes Bcc:, adds Received: and the
 * missing From:/Date:/Message-Id:/To:/MIME headers, and writes envelope +
 * message durably into incoming/. env holds the recipients so far (it is
 * completed here). Returns 0 with qid_r set once the file is durable, or
 * an EX_* code with err set. In SM_TERM_SMTP mode the rest of the data is
 * always read up to the final "." so the dialogue stays in step.
 */
int sm_inject(const struct sm_ctx *, struct sm_rd *, enum sm_term,
    struct spool_env *env, char qid_r[QID_SIZE], char *err, size_t errsz);

/* sendmail_smtp.c: the -bs dialogue on stdin/stdout; returns an exit code. */
int sm_smtp_session(struct sm_ctx *, struct sm_rd *);

/* sendmail.c */
void sm_log_queued(const struct sm_ctx *, const struct spool_env *,
    const char *qid);

#endif
