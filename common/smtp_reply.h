/*
 * smtp_reply: pure parser for the replies an SMTP server sends to our
 * client (deliverd). One reply is one or more lines "CODE-text" ending with
 * "CODE text" (RFC 5321 4.2), optionally with an enhanced status code
 * (RFC 3463) after the code. smtp_reply_feed() takes raw bytes (any split)
 * and reports when a reply is complete; every line and the line count are
 * bounded by the limits. The reply owns two bounded bufs, released by
 * smtp_reply_release(). No I/O, no logging, no globals (STYLE R1).
 */
#ifndef SG_SMTP_REPLY_H
#define SG_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

enum smtp_reply_status {
	SMTP_REPLY_MORE,    /* need more input */
	SMTP_REPLY_DONE,    /* a complete reply is in the struct */
	SMTP_REPLY_SYNTAX,  /* a line is not "DDD[ -]text", or codes differ */
	SMTP_REPLY_TOOLONG, /* a line is longer than max_line */
	SMTP_REPLY_TOOMANY  /* more than max_lines lines */
};

struct smtp_reply_limits {
	size_t max_line;  /* bytes per line without CRLF (RFC: 512) */
	size_t max_lines; /* lines per reply */
	size_t max_text;  /* bytes of the folded text kept (longer is cut) */
};
/* 4096 / 200 / 1023: generous for EHLO, fits SPOOL_REPLY_MAX. */
extern const struct smtp_reply_limits smtp_reply_default_limits;

struct smtp_reply {
	const struct smtp_reply_limits *rp_lim;
	int	   rp_code;    /* 200..599 once a line parsed, else 0 */
	char	   rp_enh[16]; /* "5.1.1" or "" */
	size_t	   rp_nlines;
	bool	   rp_done;
	bool	   rp_cut;     /* rp_text was cut at max_text */
	struct buf rp_text;    /* "550 5.1.1 first line second line" */
	struct buf rp_lines;   /* each line's text after "DDD-", '\n'-ended */
	struct buf rp_partial; /* bytes of an unfinished line (feed) */
};

void smtp_reply_init(struct smtp_reply *, const struct smtp_reply_limits *);
/* Forgets the reply and any unfinished line (keeps memory). */
void smtp_reply_reset(struct smtp_reply *);
void smtp_reply_release(struct smtp_reply *);

/* One line without its CRLF (a trailing CR or LF is ignored). */
enum smtp_reply_status smtp_reply_line(struct smtp_reply *, const char *,
    size_t);
/*
 * Bytes as they arrive. *used_r is set to the bytes consumed: on DONE it
 * stops right after the reply's last LF (the rest belongs to the next
 * reply, PIPELINING); on MORE every byte was consumed.
 */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *, const char *,
    size_t, size_t *used_r);

/* The first digit of the code (2, 3, 4, 5), 0 if none yet. */
int smtp_reply_class(const struct smtp_reply *);
/*
 * EHLO keyword lookup over lines 2..n, case-insensitive: true if present;
 * arg_r and arglen_r (may be NULL) get the parameters after the keyword.
 */
bool smtp_reply_ehlo_has(const struct smtp_reply *, const char *kw,
    const char **arg_r, size_t *arglen_r);
/* "2.0.0"-style code of the reply, or a default from the class. */
const char *smtp_reply_dsn(const struct smtp_reply *);

#endif
