/*
 * Unit tests for smtpd's session and verbs (smtpd_session.c, smtpd_cmd.c,
 * smtpd_msg.c) through libsmtpd.a, without sockets: the test does what the
 * worker loop does (append bytes to ss_in, smtpd_session_process(), take
 * ss_out; on the commit pool's wake-up, smtpd_msg_committed()). The lka
 * is replaced at link time (STYLE T3): 192.0.2.10 is pinned to "acct",
 * every other address is not. The expected replies are today's behaviour:
 *   - the verb table's phases and their 503s, and the other verbs' replies;
 *   - the EHLO capability list per listener;
 *   - MAIL and RCPT parameter errors (SIZE, BODY, SMTPUTF8, unknown ones);
 *   - the recipient limit (452, not an error), the error limit, the junk
 *     command limit (reset by an accepted message);
 *   - several commands in one read, answered in order, also across DATA;
 *   - an overlong command line;
 *   - DATA: dot-unstuffing into the spool file, the size and line limits,
 *     bare LF in content (550, nothing smuggled) and in a command line.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ev.h"
#include "smtp_cmd.h"
#include "smtpd.h"
#include "smtpd_limits.h"
#include "spool.h"
#include "tap.h"
#include "tfix.h"
#include "xmem.h"

#define PINNED	 "192.0.2.10"
#define UNPINNED "192.0.2.99"
#define HOST	 "mx.test"

#define E_HELO	   "503 5.5.1 Error: send HELO/EHLO first\r\n"
#define E_NESTED   "503 5.5.1 Error: nested MAIL command\r\n"
#define E_NEEDMAIL "503 5.5.1 Error: need MAIL command\r\n"
#define E_INBDAT   "503 5.5.1 Error: BDAT transfer in progress\r\n"
#define E_INMAIL   "503 5.5.1 Error: MAIL transaction in progress\r\n"
#define OK	   "250 2.0.0 Ok\r\n"
#define MAIL_OK	   "250 2.1.0 Ok\r\n"
#define RCPT_OK	   "250 2.1.5 Ok\r\n"
#define GO_AHEAD   "354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED	   "250 2.0.0 Ok: queued as "
#define MAIL	   "MAIL FROM:<a@example.org>\r\n"
#define RCPT	   "RCPT TO:<b@example.com>\r\n"

/* link-time substitutes for smtpd_lka_client.c */
int
smtpd_lka_pin(struct smtpd_env *env, int cfd, const char *addr,
    char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX])
{
	(void)env;
	(void)cfd;
	if (strcmp(addr, PINNED) != 0)
		return 1;
	(void)str_copy(login, SPOOL_LOGIN_MAX, "acct");
	memset(tag, '0', SPOOL_TAG_HEX - 1);
	tag[SPOOL_TAG_HEX - 1] = '\0';
	return 0;
}

int
smtpd_lka_auth(struct smtpd_env *env, const char *user, const char *pass,
    size_t passlen, char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX])
{
	(void)env;
	(void)user;
	(void)pass;
	(void)passlen;
	login[0] = tag[0] = '\0';
	return 1;
}

static char		     tdir[64];
static struct conf	    *cf;
static struct smtpd_env	     env;
static struct smtpd_listener lis = { .sl_fd = -1,
	.sl_tls = CONF_TLS_NONE,
	.sl_name = "127.0.0.1:25" };
static struct ev	    *loop; /* the commit pool wakes it */
static struct buf	     got;  /* replies not yet looked at */
static char		     said[256 * 1024];

/* The worker's flush: what the session wrote is taken from ss_out. */
static void
take_out(struct smtpd_session *s)
{
	if (buf_append(&got, s->ss_out.data, s->ss_out.len) == -1)
		abort();
	buf_reset(&s->ss_out);
}

/* The worker's read and process, in reads of at most 16 KB. */
static void
feed(struct smtpd_session *s, const char *p, size_t n)
{
	size_t k;

	while (n > 0 && s->ss_in.len < SMTPD_INBUF_MAX) {
		k = SMTPD_INBUF_MAX - s->ss_in.len;
		k = k < 16384 ? k : 16384;
		k = k < n ? k : n;
		if (buf_append(&s->ss_in, p, k) == -1)
			abort();
		p += k;
		n -= k;
		smtpd_session_process(s);
		take_out(s);
	}
}

/* Every reply since the last call, as one string. */
static const char *
replies(struct smtpd_session *s)
{
	take_out(s);
	(void)str_ncopy(said, sizeof(said), got.data ? got.data : "", got.len);
	buf_reset(&got);
	return said;
}

static const char *
talk(struct smtpd_session *s, const char *in)
{
	feed(s, in, strlen(in));
	return replies(s);
}

/* The worker's commit step: waits (10 s at most) for the session's commit. */
static bool
commit_wait(struct smtpd_session *s)
{
	struct smtpd_session *done;
	int		      waited;

	for (waited = 0; waited < 10000 && s->ss_committing; waited += 50) {
		(void)ev_run_once(loop, 50);
		while (smtpd_commit_take(&done, 1) == 1) {
			smtpd_msg_committed(done);
			take_out(done);
		}
	}
	return !s->ss_committing;
}

static struct smtpd_session *
session(const char *addr)
{
	struct smtpd_session *s;

	s = smtpd_session_new(&env, -1, &lis, addr, "40000");
	take_out(s);
	buf_reset(&got);
	return s;
}

/* A pinned session after EHLO. */
static struct smtpd_session *
session_ehlo(void)
{
	struct smtpd_session *s = session(PINNED);

	(void)talk(s, "EHLO client.example\r\n");
	return s;
}

static void
session_end(struct smtpd_session **sp)
{
	smtpd_session_free(sp);
	buf_reset(&got);
}

/* Files in incoming/<sub>. */
static int
count_files(const char *sub)
{
	char	       path[128];
	DIR	      *d;
	struct dirent *e;
	int	       n = 0;

	(void)snprintf(path, sizeof(path), "%s/incoming/%s", tdir, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	(void)closedir(d);
	return n;
}

/* A test name from client text: CR and LF shown as \r and \n. */
static const char *
label(const char *a, const char *b)
{
	static char l[160];
	const char *p;
	size_t	    n = 0;

	for (p = a; *p != '\0' && n < sizeof(l) - 8; p++) {
		if (*p == '\r' || *p == '\n') {
			l[n++] = '\\';
			l[n++] = *p == '\r' ? 'r' : 'n';
		} else
			l[n++] = *p;
		if (p[1] == '\0' && b != NULL) {
			l[n++] = ' ';
			l[n++] = '|';
			l[n++] = ' ';
			p = b - 1;
			b = NULL;
		}
	}
	l[n] = '\0';
	return l;
}

/* ---- cases */

static void
test_greeting(void)
{
	struct smtpd_session *s;

	s = smtpd_session_new(&env, -1, &lis, PINNED, "40000");
	t_str_eq(replies(s), "220 " HOST " ESMTP smtpgate\r\n", "greeting");
	t_int_eq(s->ss_state, SS_CMD, "reading commands");
	t_ok(s->ss_authed, "pinned address: authenticated");
	t_str_eq(s->ss_account, "acct", "pinned account");
	session_end(&s);
	s = session(UNPINNED);
	t_ok(!s->ss_authed, "other address: not authenticated");
	(void)talk(s, "EHLO c\r\n");
	t_str_eq(talk(s, MAIL), "530 5.7.0 Authentication required\r\n",
	    "MAIL unauthenticated");
	t_int_eq(s->ss_errors, 1, "counted as an error");
	session_end(&s);
}

static const struct phase_case {
	const char *before; /* commands that set the phase */
	const char *cmd;
	const char *want;
} phase_cases[] = {
	{ "", MAIL, E_HELO },
	{ "", RCPT, E_NEEDMAIL },
	{ "", "DATA\r\n", E_NEEDMAIL },
	{ "", "AUTH PLAIN\r\n", E_HELO },
	{ "", "BDAT 3\r\nabc", E_NEEDMAIL }, /* chunk read, then refused */
	{ "", "NOOP\r\n", OK },
	{ "", "RSET\r\n", OK },
	{ "", "HELO c\r\n", "250 " HOST "\r\n" },
	{ "", "VRFY x\r\n",
	    "252 2.0.0 Cannot VRFY user, but will accept message\r\n" },
	{ "", "HELP\r\n", "214 2.0.0 See RFC 5321; man smtpd(8)\r\n" },
	{ "", "EXPN x\r\n", "502 5.5.1 Error: command not implemented\r\n" },
	{ "", "STARTTLS\r\n", "502 5.5.1 Error: command not implemented\r\n" },
	{ "", "FOO\r\n", "500 5.5.2 Error: command not recognized\r\n" },
	{ "", "GET / HTTP/1.0\r\n",
	    "421 4.7.0 Error: this is an SMTP server " HOST "\r\n" },
	{ "", "QUIT\r\n", "221 2.0.0 Bye\r\n" },
	{ "HELO c\r\n", MAIL, MAIL_OK },
	{ "HELO c\r\n", RCPT, E_NEEDMAIL },
	{ "HELO c\r\n", "DATA\r\n", E_NEEDMAIL },
	{ "HELO c\r\n", "AUTH PLAIN\r\n",
	    "503 5.5.1 Error: authentication not enabled\r\n" },
	{ "HELO c\r\n" MAIL, MAIL, E_NESTED },
	{ "HELO c\r\n" MAIL, RCPT, RCPT_OK },
	{ "HELO c\r\n" MAIL, "DATA\r\n",
	    "554 5.5.1 Error: no valid recipients\r\n" },
	{ "HELO c\r\n" MAIL, "AUTH PLAIN\r\n", E_INMAIL },
	{ "HELO c\r\n" MAIL "RSET\r\n", RCPT, E_NEEDMAIL },
	{ "HELO c\r\n" MAIL "HELO c\r\n", RCPT, E_NEEDMAIL },
	{ "HELO c\r\n" MAIL RCPT, "BDAT 3\r\nabc",
	    "250 2.0.0 Ok: 3 octets received\r\n" },
	{ "HELO c\r\n" MAIL RCPT "BDAT 3\r\nabc", "DATA\r\n", E_INBDAT },
	{ "HELO c\r\n" MAIL RCPT "BDAT 3\r\nabc", MAIL, E_NESTED },
	{ "HELO c\r\n" MAIL RCPT "BDAT 3\r\nabc", "AUTH PLAIN\r\n", E_INMAIL },
	{ "HELO c\r\n" MAIL RCPT "BDAT 3\r\nabc", RCPT, RCPT_OK },
};

static void
test_phases(void)
{
	const struct phase_case *c;
	struct smtpd_session	*s;
	size_t			 i;

	for (i = 0; i < sizeof(phase_cases) / sizeof(phase_cases[0]); i++) {
		c = &phase_cases[i];
		s = session(PINNED);
		(void)talk(s, c->before);
		t_str_eq(talk(s, c->cmd), c->want,
		    label(c->before[0] != '\0' ? c->before : "(greeted)",
			c->cmd));
		session_end(&s);
	}
	s = session(PINNED);
	(void)talk(s, "QUIT\r\n");
	t_int_eq(s->ss_state, SS_CLOSING, "QUIT: closing");
	t_str_eq(talk(s, "NOOP\r\n"), "", "nothing read after QUIT");
	session_end(&s);
}

static void
test_ehlo(void)
{
	struct smtpd_session *s;
	char		      want[512];

	(void)snprintf(want, sizeof(want),
	    "250-" HOST "\r\n250-PIPELINING\r\n"
	    "250-SIZE %lld\r\n%s250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	    "250-SMTPUTF8\r\n250 CHUNKING\r\n",
	    (long long)cf->cf_max_message_size, "");
	s = session(PINNED);
	t_str_eq(talk(s, "EHLO c\r\n"), want, "EHLO, plain listener");
	t_ok(s->ss_esmtp, "EHLO: ESMTP");
	t_str_eq(talk(s, "HELO c\r\n"), "250 " HOST "\r\n", "HELO");
	t_ok(!s->ss_esmtp, "HELO: not ESMTP");
	session_end(&s);

	lis.sl_tls = CONF_TLS_STARTTLS;
	cf->cf_auth_plaintext = true;
	(void)snprintf(want, sizeof(want),
	    "250-" HOST "\r\n250-PIPELINING\r\n"
	    "250-SIZE %lld\r\n%s250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	    "250-SMTPUTF8\r\n250 CHUNKING\r\n",
	    (long long)cf->cf_max_message_size, "250-AUTH PLAIN LOGIN\r\n");
	s = session(PINNED);
	t_str_eq(talk(s, "EHLO c\r\n"), want,
	    "EHLO, STARTTLS listener, auth_plaintext, no certificate");
	session_end(&s);
	cf->cf_auth_plaintext = false;

	lis.sl_tls = CONF_TLS_REQUIRED;
	s = session(PINNED);
	(void)talk(s, "EHLO c\r\n");
	t_str_eq(talk(s, MAIL),
	    "530 5.7.0 Must issue a STARTTLS command first\r\n",
	    "MAIL on a TLS-required listener without TLS");
	session_end(&s);
	lis.sl_tls = CONF_TLS_NONE;
}

static const struct param_case {
	const char *cmd;
	const char *want;
} param_cases[] = {
	{ "MAIL FROM:<a@example.org> SIZE=100\r\n", MAIL_OK },
	{ "MAIL FROM:<a@example.org> SIZE=\r\n",
	    "501 5.1.7 Bad sender address syntax\r\n" },
	{ "MAIL FROM:<a@example.org> SIZE=12x\r\n",
	    "501 5.5.4 Bad SIZE parameter\r\n" },
	{ "MAIL FROM:<a@example.org> SIZE=10240000\r\n",
	    MAIL_OK }, /* the limit */
	{ "MAIL FROM:<a@example.org> SIZE=10240001\r\n",
	    "552 5.3.4 Message size exceeds fixed limit\r\n" },
	{ "MAIL FROM:<a@example.org> SIZE=999999999999\r\n",
	    "552 5.3.4 Message size exceeds fixed limit\r\n" },
	{ "MAIL FROM:<a@example.org> BODY=8BITMIME\r\n", MAIL_OK },
	{ "MAIL FROM:<a@example.org> BODY=7bit\r\n", MAIL_OK },
	{ "MAIL FROM:<a@example.org> BODY=BINARYMIME\r\n",
	    "501 5.5.4 Unsupported BODY parameter\r\n" },
	{ "MAIL FROM:<a@example.org> BODY\r\n",
	    "501 5.5.4 Unsupported BODY parameter\r\n" },
	{ "MAIL FROM:<a@example.org> SMTPUTF8\r\n", MAIL_OK },
	{ "MAIL FROM:<a@example.org> SMTPUTF8=yes\r\n",
	    "555 5.5.4 Unsupported option: SMTPUTF8\r\n" },
	{ "MAIL FROM:<a@example.org> AUTH=<>\r\n", MAIL_OK },
	{ "MAIL FROM:<a@example.org> RET=FULL\r\n",
	    "555 5.5.4 Unsupported option: RET\r\n" },
	{ "MAIL FROM:<> SIZE=1\r\n", MAIL_OK },
	{ "MAIL FROM:<a@@example.org>\r\n",
	    "501 5.1.7 Bad sender address syntax\r\n" },
	{ "MAIL FROM:a@example.org\r\n", MAIL_OK },
};

static void
test_mail_params(void)
{
	struct smtpd_session *s;
	size_t		      i;

	for (i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
		s = session_ehlo();
		t_str_eq(talk(s, param_cases[i].cmd), param_cases[i].want,
		    label(param_cases[i].cmd, NULL));
		t_ok(s->ss_mail == (param_cases[i].want[0] == '2'),
		    "transaction open only after 250");
		session_end(&s);
	}
	s = session_ehlo();
	(void)talk(s, "MAIL FROM:<a@example.org> SMTPUTF8\r\n");
	t_ok(s->ss_smtputf8, "SMTPUTF8 recorded");
	(void)talk(s, "RSET\r\n");
	t_ok(!s->ss_smtputf8, "RSET forgets SMTPUTF8");
	(void)talk(s, MAIL);
	t_str_eq(talk(s, "RCPT TO:<b@example.com> NOTIFY=NEVER\r\n"),
	    "555 5.5.4 Unsupported option: NOTIFY=NEVER\r\n", "RCPT parameter");
	t_str_eq(talk(s, "RCPT TO:<postmaster>\r\n"),
	    "504 5.5.2 Recipient address "
	    "rejected: need fully-qualified address\r\n",
	    "RCPT without domain");
	t_str_eq(talk(s, "RCPT TO:<b@example.com\r\n"),
	    "501 5.1.3 Bad recipient address syntax\r\n", "RCPT bad syntax");
	t_int_eq(s->ss_errors, 3, "each counted as an error");
	t_int_eq(s->ss_nrcpt_all, 0, "no recipient taken");
	session_end(&s);
}

static void
test_limits(void)
{
	struct smtpd_session *s;
	int64_t		      saved;

	saved = cf->cf_max_recipients;
	cf->cf_max_recipients = 3;
	s = session_ehlo();
	t_str_eq(talk(s, MAIL RCPT RCPT RCPT RCPT),
	    MAIL_OK RCPT_OK RCPT_OK RCPT_OK
	    "452 4.5.3 Error: too many recipients\r\n",
	    "fourth recipient: 452");
	t_int_eq(s->ss_nrcpt_all, 3, "three recipients");
	t_int_eq(s->ss_errors, 0, "452 is not an error");
	session_end(&s);
	cf->cf_max_recipients = saved;

	saved = cf->cf_smtpd_max_errors;
	cf->cf_smtpd_max_errors = 3;
	s = session(PINNED);
	t_str_eq(talk(s, "FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n"),
	    "500 5.5.2 Error: command not recognized\r\n"
	    "500 5.5.2 Error: command not recognized\r\n"
	    "500 5.5.2 Error: command not recognized\r\n"
	    "421 4.7.0 Error: too many errors " HOST "\r\n",
	    "third error: 421");
	t_int_eq(s->ss_state, SS_CLOSING, "closing after too many errors");
	session_end(&s);
	cf->cf_smtpd_max_errors = saved;
}

static void
test_junk(void)
{
	struct smtpd_session *s;
	int64_t		      saved = cf->cf_smtpd_junk_command_limit;
	const char	     *r;

	cf->cf_smtpd_junk_command_limit = 3;
	s = session(PINNED);
	t_str_eq(talk(s,
		     "HELO c\r\nNOOP\r\nNOOP\r\n" MAIL RCPT "DATA\r\n"
		     "Subject: j\r\n\r\nx\r\n.\r\n"),
	    "250 " HOST "\r\n" OK OK MAIL_OK RCPT_OK GO_AHEAD,
	    "HELO and two NOOPs: three junk commands");
	t_ok(commit_wait(s), "message committed");
	r = replies(s);
	t_ok(strncmp(r, QUEUED, strlen(QUEUED)) == 0, "accepted: %s",
	    label(r, NULL));
	t_str_eq(talk(s, "NOOP\r\nRSET\r\nVRFY x\r\n"),
	    OK OK "252 2.0.0 Cannot VRFY user, but will accept message\r\n",
	    "the count starts again after a message");
	t_str_eq(talk(s, "NOOP\r\nNOOP\r\n"),
	    "421 4.7.0 Error: too many junk commands " HOST "\r\n",
	    "fourth junk command: 421, nothing after it");
	t_int_eq(s->ss_state, SS_CLOSING, "closing");
	session_end(&s);

	s = session(PINNED);
	t_str_eq(talk(s, "HELO c\r\n" MAIL RCPT RCPT RCPT "NOOP\r\nNOOP\r\n"),
	    "250 " HOST "\r\n" MAIL_OK RCPT_OK RCPT_OK RCPT_OK OK OK,
	    "MAIL and RCPT are not junk");
	t_str_eq(talk(s, "RSET\r\n"),
	    "421 4.7.0 Error: too many junk commands " HOST "\r\n",
	    "without a message the count goes on");
	session_end(&s);
	cf->cf_smtpd_junk_command_limit = saved;
}

static void
test_pipelining(void)
{
	struct smtpd_session *s = session(PINNED);
	const char	     *r;

	(void)talk(s, "EHLO c\r\n");
	t_str_eq(talk(s,
		     "HELO c\r\n" MAIL RCPT "RCPT TO:<postmaster>\r\nNOOP\r\n"),
	    "250 " HOST "\r\n" MAIL_OK RCPT_OK "504 5.5.2 Recipient address "
	    "rejected: need fully-qualified address\r\n" OK,
	    "five commands in one read, answered in order");
	t_str_eq(talk(s, "DATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nNOOP\r\n"),
	    GO_AHEAD, "354, then nothing before the commit");
	t_int_eq(s->ss_state, SS_COMMIT, "committing");
	t_ok(commit_wait(s), "committed");
	r = replies(s);
	t_ok(strncmp(r, QUEUED, strlen(QUEUED)) == 0 &&
		strlen(r) > strlen(OK) &&
		strcmp(r + strlen(r) - strlen(OK), OK) == 0,
	    "250 queued, then the pipelined NOOP: %s", label(r, NULL));
	t_int_eq(s->ss_nmsgs, 1, "one message");
	session_end(&s);
}

static void
test_line_too_long(void)
{
	struct smtpd_session *s = session(PINNED);
	char		      line[SMTP_CMD_LINE_MAX + 100];

	memset(line, 'A', sizeof(line));
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	feed(s, line, sizeof(line));
	t_str_eq(talk(s, "NOOP\r\n"), "500 5.5.2 Error: line too long\r\n" OK,
	    "overlong line: 500, then served");
	/* no LF yet: refused at the limit, the rest of it skipped */
	feed(s, line, SMTP_CMD_LINE_MAX + 10);
	t_str_eq(replies(s), "500 5.5.2 Error: line too long\r\n",
	    "500 before the line ends");
	t_str_eq(talk(s, "MAIL FROM:<x@y.example>\r\nNOOP\r\n"), OK,
	    "the rest of that line is not a command");
	t_int_eq(s->ss_errors, 2, "two errors");
	t_str_eq(talk(s, "NOOP\n"), OK, "a command ended by a bare LF is read");
	session_end(&s);
}

/* The file committed for the reply "250 ... queued as QID". */
static char *
committed_file(const char *reply, size_t *len_r)
{
	char   path[160];
	char  *p = NULL;
	FILE  *f;
	size_t n;

	*len_r = 0;
	if (strncmp(reply, QUEUED, strlen(QUEUED)) != 0)
		return NULL;
	n = strcspn(reply + strlen(QUEUED), "\r");
	(void)snprintf(path, sizeof(path), "%s/incoming/new/%.*s", tdir, (int)n,
	    reply + strlen(QUEUED));
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	p = xcalloc(1, 65536);
	*len_r = fread(p, 1, 65535, f);
	(void)fclose(f);
	return p;
}

static void
test_data(void)
{
	struct smtpd_session *s = session_ehlo();
	char		     *file;
	size_t		      len;
	int		      before;

	t_str_eq(talk(s, MAIL RCPT "DATA\r\n"), MAIL_OK RCPT_OK GO_AHEAD,
	    "354");
	t_int_eq(s->ss_state, SS_DATA, "reading content");
	(void)talk(s, "Subject: d\r\n\r\n..leading dot\r\n...\r\n.x\r\n.\r\n");
	t_ok(commit_wait(s), "committed");
	file = committed_file(replies(s), &len);
	t_ok(file != NULL, "the message is in incoming/new");
	t_ok(file != NULL &&
		strstr(file, "\r\n\r\n.leading dot\r\n..\r\nx\r\n") != NULL,
	    "dots unstuffed");
	t_ok(file != NULL && strstr(file, "..leading") == NULL,
	    "no stuffed dot");
	free(file);
	t_int_eq(s->ss_state, SS_CMD, "commands again");

	before = count_files("new");
	cf->cf_max_message_size = 100;
	t_str_eq(talk(s, MAIL RCPT "DATA\r\n"), MAIL_OK RCPT_OK GO_AHEAD,
	    "354");
	feed(s, "Subject: big\r\n\r\n", 16);
	for (len = 0; len < 10; len++)
		feed(s, "0123456789012345678\r\n", 21);
	t_str_eq(talk(s, ".\r\n"),
	    "552 5.3.4 Message size exceeds fixed maximum "
	    "message size\r\n",
	    "over max_message_size: 552");
	t_int_eq(count_files("new"), before, "nothing committed");
	t_int_eq(count_files("tmp"), 0, "nothing left in incoming/tmp");
	cf->cf_max_message_size = 10240000;

	t_str_eq(talk(s, MAIL RCPT "DATA\r\n"), MAIL_OK RCPT_OK GO_AHEAD,
	    "354");
	feed(s, "Subject: wide\r\n\r\n", 17);
	for (len = 0; len < 110; len++)
		feed(s, "0123456789", 10);
	t_str_eq(talk(s, "\r\n.\r\n"), "552 5.3.4 Message line too long\r\n",
	    "line over smtpd_max_line: 552");
	t_int_eq(count_files("new"), before, "nothing committed");
	session_end(&s);
}

static void
test_bare_lf(void)
{
	struct smtpd_session *s = session_ehlo();
	int		      before = count_files("new");

	(void)talk(s, MAIL RCPT "DATA\r\n");
	t_str_eq(talk(s,
		     "Subject: b\r\n\r\nline\n.\nMAIL FROM:<x@y.example>\r\n"
		     "\r\n.\r\n"),
	    "550 5.5.2 Bare LF/CR not allowed\r\n",
	    "bare LF: 550 once, \\n.\\n does not end the data");
	t_int_eq(s->ss_state, SS_CMD, "commands again");
	t_ok(!s->ss_mail, "no transaction left open");
	t_int_eq(count_files("new"), before, "nothing committed");
	t_int_eq(count_files("tmp"), 0, "nothing left in incoming/tmp");
	(void)talk(s, MAIL RCPT "DATA\r\n");
	t_str_eq(talk(s, "a\rb\r\n.\r\n"),
	    "550 5.5.2 Bare LF/CR not allowed\r\n", "bare CR: 550");
	session_end(&s);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "greeting and pinning", test_greeting },
		{ "verb table phases", test_phases },
		{ "EHLO capabilities", test_ehlo },
		{ "MAIL and RCPT parameters", test_mail_params },
		{ "recipient and error limits", test_limits },
		{ "junk command limit", test_junk },
		{ "pipelining", test_pipelining },
		{ "line too long", test_line_too_long },
		{ "DATA", test_data },
		{ "bare LF", test_bare_lf },
	};
	int rc;

	cf = t_spool_conf(tdir, sizeof(tdir), "t_smtpd_session");
	if (spool_tree_create(cf) != 0)
		abort();
	free(cf->cf_hostname);
	cf->cf_hostname = xstrdup(HOST);
	cf->cf_min_free_space = 1;
	cf->cf_max_message_size = 10240000;
	env.se_cf = cf;
	env.se_ls = &lis;
	env.se_nls = 1;
	env.se_spool = tdir;
	env.se_lka_fd = -1;
	env.se_now = 1000000;
	env.se_limits = smtpd_limits_new(1, 16);
	buf_init(&got, 1 << 20);
	loop = t_wake_loop();
	smtpd_commit_init(1, loop);
	rc = T_RUN(cases);
	smtpd_commit_stop();
	ev_free(&loop);
	buf_release(&got);
	smtpd_limits_free(&env.se_limits);
	conf_free(&cf);
	t_rmtree(tdir);
	return rc;
}
