/*
 * sendmail_smtp: "smtpgate-sendmail -bs", an SMTP dialogue on stdin and
 * stdout for programs that speak SMTP to a local sendmail (git send-email
 * --sendmail-cmd, some MUAs). No AUTH, no TLS: the caller is the local
 * user, and the mail belongs to sendmail_account like every injection.
 * Replies are flushed before each blocking read, so PIPELINING works.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "mailaddr.h"
#include "sendmail.h"
#include "smtp_cmd.h"
#include "spool.h"

struct sm_sess {
	struct sm_ctx	*ctx;
	struct spool_env env;
	bool		 helo, mail;
};

static void sm_reply(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
sm_reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vprintf(fmt, ap);
	va_end(ap);
	(void)fputs("\r\n", stdout);
}

static void
sm_sess_reset(struct sm_sess *s)
{
	spool_env_free(&s->env);
	spool_env_init(&s->env);
	s->mail = false;
}

/* The HELO name goes into Received: and the envelope: keep it tame. */
static void
sm_set_helo(struct sm_ctx *ctx, const char *arg, size_t len)
{
	size_t i, n = len < sizeof(ctx->helo) - 1 ? len : sizeof(ctx->helo) - 1;

	for (i = 0; i < n; i++)
		ctx->helo[i] = isalnum((unsigned char)arg[i]) ||
			strchr(".-_[]:", arg[i]) != NULL
		    ? arg[i]
		    : '?';
	ctx->helo[n] = '\0';
}

static void
sm_do_ehlo(struct sm_sess *s, const struct smtp_cmd *c)
{
	sm_sess_reset(s);
	sm_set_helo(s->ctx, c->arg, c->arglen);
	s->helo = true;
	if (c->verb == SMTP_V_HELO) {
		sm_reply("250 %s", s->ctx->cf->cf_hostname);
		return;
	}
	sm_reply("250-%s", s->ctx->cf->cf_hostname);
	sm_reply("250-PIPELINING");
	sm_reply("250-SIZE %lld", (long long)s->ctx->cf->cf_max_message_size);
	sm_reply("250-8BITMIME");
	sm_reply("250-SMTPUTF8");
	sm_reply("250 ENHANCEDSTATUSCODES");
}

/* SIZE=n over the limit is refused at MAIL (RFC 1870). */
static bool
sm_size_ok(const struct sm_ctx *ctx, const char *params)
{
	const char	  *p = params;
	char		  *end;
	unsigned long long n;

	while ((p = strcasestr(p, "SIZE=")) != NULL) {
		if (p == params || p[-1] == ' ') {
			errno = 0;
			n = strtoull(p + 5, &end, 10);
			return errno == 0 && end != p + 5 &&
			    n <=
			    (unsigned long long)ctx->cf->cf_max_message_size;
		}
		p += 5;
	}
	return true;
}

static void
sm_do_mail(struct sm_sess *s, const struct smtp_cmd *c)
{
	char addr[SPOOL_ADDR_MAX], params[SPOOL_PARAMS_MAX], err[256];

	if (!s->helo) {
		sm_reply("503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->mail) {
		sm_reply("503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (mailaddr_parse_path(c->arg, c->arglen,
		MAILADDR_NULL_OK | MAILADDR_UTF8 | MAILADDR_NOBRACKET_OK, addr,
		sizeof(addr), params, sizeof(params)) != MAILADDR_OK) {
		sm_reply("501 5.1.7 Bad sender address syntax");
		return;
	}
	if (!sm_size_ok(s->ctx, params)) {
		sm_reply("552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	if (addr[0] == '\0')
		s->ctx->from[0] = '\0';
	else if (sm_addr_fix(s->ctx, addr, s->ctx->from, sizeof(s->ctx->from),
		     err, sizeof(err)) == -1) {
		sm_reply("501 5.1.7 %s", err);
		return;
	}
	s->mail = true;
	sm_reply("250 2.1.0 Ok");
}

static void
sm_do_rcpt(struct sm_sess *s, const struct smtp_cmd *c)
{
	char addr[SPOOL_ADDR_MAX], params[SPOOL_PARAMS_MAX], err[256];
	int  rc;

	if (!s->mail) {
		sm_reply("503 5.5.1 Error: need MAIL command");
		return;
	}
	if (mailaddr_parse_path(c->arg, c->arglen,
		MAILADDR_UTF8 | MAILADDR_NOBRACKET_OK, addr, sizeof(addr),
		params, sizeof(params)) != MAILADDR_OK) {
		sm_reply("501 5.1.3 Bad recipient address syntax");
		return;
	}
	if ((rc = sm_rcpt_add(s->ctx, &s->env, addr, err, sizeof(err))) ==
	    EX_DATAERR)
		sm_reply("452 4.5.3 %s", err);
	else if (rc != 0)
		sm_reply("501 5.1.3 %s", err);
	else
		sm_reply("250 2.1.5 Ok");
}

static int
sm_do_data(struct sm_sess *s, struct sm_rd *rd)
{
	char qid[QID_SIZE], err[512];
	int  rc;

	if (!s->mail || s->env.pe_nrcpt == 0) {
		sm_reply("503 5.5.1 Error: need RCPT command");
		return 0;
	}
	sm_reply("354 End data with <CR><LF>.<CR><LF>");
	rc = sm_inject(s->ctx, rd, SM_TERM_SMTP, &s->env, qid, err,
	    sizeof(err));
	switch (rc) {
	case 0:
		sm_log_queued(s->ctx, &s->env, qid);
		sm_reply("250 2.0.0 Ok: queued as %s", qid);
		break;
	case EX_NOINPUT:
		return -1; /* the client went away inside DATA */
	case EX_DATAERR:
		sm_reply("552 5.3.4 %s", err);
		break;
	default:
		(void)fprintf(stderr, "%s: %s\n", SM_PROGNAME, err);
		sm_reply("451 4.3.0 %s", err);
		break;
	}
	sm_sess_reset(s);
	return 0;
}

/* One command; returns 1 after QUIT, -1 when the session must end. */
static int
sm_command(struct sm_sess *s, struct sm_rd *rd, const char *line, size_t len)
{
	struct smtp_cmd c;

	switch (smtp_cmd_parse(line, len, &c)) {
	case SMTP_CMD_OK:
		break;
	case SMTP_CMD_SYNTAX:
		sm_reply("501 5.5.4 Syntax error in parameters");
		return 0;
	default:
		sm_reply("500 5.5.2 Error: command not recognized");
		return 0;
	}
	switch (c.verb) {
	case SMTP_V_HELO:
	case SMTP_V_EHLO:
		sm_do_ehlo(s, &c);
		return 0;
	case SMTP_V_MAIL:
		sm_do_mail(s, &c);
		return 0;
	case SMTP_V_RCPT:
		sm_do_rcpt(s, &c);
		return 0;
	case SMTP_V_DATA:
		return sm_do_data(s, rd);
	case SMTP_V_RSET:
		sm_sess_reset(s);
		sm_reply("250 2.0.0 Ok");
		return 0;
	case SMTP_V_NOOP:
		sm_reply("250 2.0.0 Ok");
		return 0;
	case SMTP_V_QUIT:
		sm_reply("221 2.0.0 Bye");
		return 1;
	case SMTP_V_VRFY:
		sm_reply("252 2.0.0 Cannot VRFY user");
		return 0;
	case SMTP_V_HELP:
		sm_reply("214 2.0.0 HELO EHLO MAIL RCPT DATA RSET NOOP QUIT");
		return 0;
	case SMTP_V_HTTP:
		return -1;
	default:
		sm_reply("502 5.5.1 Error: command not implemented");
		return 0;
	}
}

int
sm_smtp_session(struct sm_ctx *ctx, struct sm_rd *rd)
{
	struct sm_sess s = { .ctx = ctx };
	struct buf     line;
	bool	       complete, toolong;
	int	       r, rc = EX_OK;

	spool_env_init(&s.env);
	buf_init(&line, SMTP_CMD_LINE_MAX * 4);
	ctx->smtp = true;
	sm_reply("220 %s ESMTP smtpgate-sendmail", ctx->cf->cf_hostname);
	for (;;) {
		if ((r = sm_rd_line(rd, &line, SMTP_CMD_LINE_MAX * 2,
			 &complete)) != 1)
			break;
		for (toolong = !complete; !complete;)
			if ((r = sm_rd_line(rd, &line, SMTP_CMD_LINE_MAX,
				 &complete)) != 1)
				break;
		if (r != 1)
			break;
		if (toolong) {
			sm_reply("500 5.5.2 Error: line too long");
			r = 0;
		} else
			r = sm_command(&s, rd, line.data, line.len);
		if (r != 0)
			break;
	}
	if (r == -1 && errno != 0)
		rc = EX_IOERR;
	(void)fflush(stdout);
	if (ferror(stdout))
		rc = EX_IOERR;
	spool_env_free(&s.env);
	buf_release(&line);
	return rc;
}
