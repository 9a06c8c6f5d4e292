/*
 * smtp_cmd: the SMTP command-line parser (STYLE 4.8, R1). Pure: no I/O, no
 * allocation, no globals. The caller hands one line WITHOUT its CRLF; the
 * I/O layer has already enforced SMTP_CMD_LINE_MAX (R3), the parser checks
 * it again. On SMTP_CMD_OK, cmd_r->arg points into the caller's line (the
 * text after "MAIL FROM:", "RCPT TO:" or the verb and its space), with
 * leading and trailing blanks removed; arglen may be 0.
 */
#ifndef SG_SMTP_CMD_H
#define SG_SMTP_CMD_H

#include <stddef.h>

/* RFC 5321 4.5.3.1.4: 512 octets including the CRLF. */
#define SMTP_CMD_LINE_MAX 512

enum smtp_verb {
	SMTP_V_NONE = 0,
	SMTP_V_HELO,
	SMTP_V_EHLO,
	SMTP_V_MAIL,
	SMTP_V_RCPT,
	SMTP_V_DATA,
	SMTP_V_BDAT,
	SMTP_V_RSET,
	SMTP_V_NOOP,
	SMTP_V_QUIT,
	SMTP_V_VRFY,
	SMTP_V_EXPN,
	SMTP_V_HELP,
	SMTP_V_STARTTLS,
	SMTP_V_AUTH,
	SMTP_V_ETRN,
	SMTP_V_TURN,
	/* Not SMTP: an HTTP request sent to the SMTP port (close at once). */
	SMTP_V_HTTP,
	SMTP_V_COUNT
};

enum smtp_cmd_status {
	SMTP_CMD_OK,
	SMTP_CMD_SYNTAX,  /* known verb, bad arguments (501) */
	SMTP_CMD_TOOLONG, /* line over the limit (500 5.5.2) */
	SMTP_CMD_UNKNOWN, /* unknown verb (500 5.5.2) */
	SMTP_CMD_BADCHAR, /* NUL, CR or LF inside the line (500 5.5.2) */
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char    *arg; /* points into the caller's line */
	size_t	       arglen;
};

/*
 * Parses one command line of len bytes (no CRLF; a trailing CR is the
 * caller's to strip). Verbs are case-insensitive. "MAIL FROM:" and
 * "RCPT TO:" accept blanks after the colon (as Postfix does). Verbs that
 * take no argument (DATA, RSET, QUIT, STARTTLS) refuse one with
 * SMTP_CMD_SYNTAX; HELO/EHLO/MAIL/RCPT/BDAT/AUTH/VRFY require one.
 */
enum smtp_cmd_status smtp_cmd_parse(const char *line, size_t len,
    struct smtp_cmd *cmd_r);

/* "MAIL", "RCPT", ... for logs. */
const char *smtp_verb_name(enum smtp_verb);
const char *smtp_cmd_status_name(enum smtp_cmd_status);

#endif
