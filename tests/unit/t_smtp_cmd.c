/* Unit tests for common/smtp_cmd: table, trickle, golden file. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_cmd.h"
#include "tap.h"

static const struct {
	const char	    *line;
	enum smtp_cmd_status st;
	enum smtp_verb	     verb;
	const char	    *arg;
} cases[] = {
	{ .line = "EHLO client.example",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_EHLO,
	    .arg = "client.example" },
	{ .line = "ehlo   x  ",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_EHLO,
	    .arg = "x" },
	{ .line = "HELO", .st = SMTP_CMD_SYNTAX, .verb = SMTP_V_HELO },
	{ .line = "MAIL FROM:<a@b.c>",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_MAIL,
	    .arg = "<a@b.c>" },
	{ .line = "mail from: <a@b.c> SIZE=10",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_MAIL,
	    .arg = "<a@b.c> SIZE=10" },
	{ .line = "MAIL FROM:<>",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_MAIL,
	    .arg = "<>" },
	{ .line = "MAIL TO:<a@b.c>",
	    .st = SMTP_CMD_SYNTAX,
	    .verb = SMTP_V_MAIL },
	{ .line = "MAIL FROM:", .st = SMTP_CMD_SYNTAX, .verb = SMTP_V_MAIL },
	{ .line = "MAIL", .st = SMTP_CMD_SYNTAX, .verb = SMTP_V_MAIL },
	{ .line = "RCPT TO:<x@y.z>",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_RCPT,
	    .arg = "<x@y.z>" },
	{ .line = "RCPT FROM:<x@y.z>",
	    .st = SMTP_CMD_SYNTAX,
	    .verb = SMTP_V_RCPT },
	{ .line = "DATA", .st = SMTP_CMD_OK, .verb = SMTP_V_DATA, .arg = "" },
	{ .line = "DATA x", .st = SMTP_CMD_SYNTAX, .verb = SMTP_V_DATA },
	{ .line = "data ", .st = SMTP_CMD_OK, .verb = SMTP_V_DATA, .arg = "" },
	{ .line = "BDAT 100 LAST",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_BDAT,
	    .arg = "100 LAST" },
	{ .line = "BDAT", .st = SMTP_CMD_SYNTAX, .verb = SMTP_V_BDAT },
	{ .line = "RSET", .st = SMTP_CMD_OK, .verb = SMTP_V_RSET, .arg = "" },
	{ .line = "NOOP", .st = SMTP_CMD_OK, .verb = SMTP_V_NOOP, .arg = "" },
	{ .line = "NOOP hello",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_NOOP,
	    .arg = "hello" },
	{ .line = "QUIT", .st = SMTP_CMD_OK, .verb = SMTP_V_QUIT, .arg = "" },
	{ .line = "QUIT now", .st = SMTP_CMD_SYNTAX, .verb = SMTP_V_QUIT },
	{ .line = "STARTTLS",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_STARTTLS,
	    .arg = "" },
	{ .line = "STARTTLSX", .st = SMTP_CMD_UNKNOWN },
	{ .line = "AUTH PLAIN AGZvbwBiYXI=",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_AUTH,
	    .arg = "PLAIN AGZvbwBiYXI=" },
	{ .line = "AUTH", .st = SMTP_CMD_SYNTAX, .verb = SMTP_V_AUTH },
	{ .line = "VRFY root",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_VRFY,
	    .arg = "root" },
	{ .line = "HELP", .st = SMTP_CMD_OK, .verb = SMTP_V_HELP, .arg = "" },
	{ .line = "GET / HTTP/1.0",
	    .st = SMTP_CMD_OK,
	    .verb = SMTP_V_HTTP,
	    .arg = "/ HTTP/1.0" },
	{ .line = "", .st = SMTP_CMD_UNKNOWN },
	{ .line = "   ", .st = SMTP_CMD_UNKNOWN },
	{ .line = "FOO bar", .st = SMTP_CMD_UNKNOWN },
	{ .line = "MAILFROM:<a@b>", .st = SMTP_CMD_UNKNOWN },
	{ .line = "EHLO a\rb", .st = SMTP_CMD_BADCHAR },
	{ .line = "EHLO a\nb", .st = SMTP_CMD_BADCHAR },
};

static void
t_table(void)
{
	struct smtp_cmd	     c;
	enum smtp_cmd_status st;
	size_t		     i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st = smtp_cmd_parse(cases[i].line, strlen(cases[i].line), &c);
		t_ok(st == cases[i].st, "status of case %zu: %s", i,
		    smtp_cmd_status_name(st));
		if (st != SMTP_CMD_OK && st != SMTP_CMD_SYNTAX)
			continue;
		t_ok(c.verb == cases[i].verb, "verb of '%s'", cases[i].line);
		if (st == SMTP_CMD_OK && cases[i].arg != NULL)
			t_ok(c.arglen == strlen(cases[i].arg) &&
				memcmp(c.arg, cases[i].arg, c.arglen) == 0,
			    "arg of '%s'", cases[i].line);
	}
}

static void
t_nul_and_length(void)
{
	char		line[1024];
	struct smtp_cmd c;

	t_ok(smtp_cmd_parse("EHLO a\0b", 8, &c) == SMTP_CMD_BADCHAR,
	    "NUL refused");
	memset(line, 'a', sizeof(line));
	memcpy(line, "EHLO ", 5);
	t_ok(smtp_cmd_parse(line, 510, &c) == SMTP_CMD_OK, "510 + CRLF fits");
	t_ok(smtp_cmd_parse(line, 511, &c) == SMTP_CMD_TOOLONG,
	    "511 + CRLF too long");
	t_ok(smtp_cmd_parse(line, sizeof(line), &c) == SMTP_CMD_TOOLONG,
	    "1024 too long");
}

/*
 * Trickle: a line is only parsed once complete, so feeding the prefixes
 * must never crash or read past len (ASan checks the reads). Each prefix
 * is copied into an exact-size heap block.
 */
static void
t_trickle(void)
{
	struct smtp_cmd c;
	size_t		i, n;
	char	       *p;
	int		ok = 1;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (n = 0; n <= strlen(cases[i].line); n++) {
			p = malloc(n ? n : 1);
			memcpy(p, cases[i].line, n);
			(void)smtp_cmd_parse(p, n, &c);
			if (c.arg < p || c.arg + c.arglen > p + n)
				ok = 0;
			free(p);
		}
	}
	t_ok(ok, "every prefix parses within bounds");
}

/* Golden file: each line of smtp_cmd.in -> "status verb [arg]" in .ref */
static void
t_golden(void)
{
	char		     in[512], ref[512], out[1200], *srcdir;
	FILE		    *fi, *fr;
	struct smtp_cmd	     c;
	enum smtp_cmd_status st;
	size_t		     n, lineno = 0;
	int		     bad = 0;

	srcdir = getenv("SMTPGATE_SRCDIR");
	(void)snprintf(in, sizeof(in), "%s/tests/unit/data/smtp_cmd.in",
	    srcdir ? srcdir : ".");
	(void)snprintf(ref, sizeof(ref), "%s/tests/unit/data/smtp_cmd.ref",
	    srcdir ? srcdir : ".");
	fi = fopen(in, "r");
	fr = fopen(ref, "r");
	if (!t_ok(fi != NULL && fr != NULL, "golden files open")) {
		if (fi)
			fclose(fi);
		if (fr)
			fclose(fr);
		return;
	}
	while (fgets(in, sizeof(in), fi) != NULL) {
		lineno++;
		n = strcspn(in, "\n");
		in[n] = '\0';
		st = smtp_cmd_parse(in, n, &c);
		(void)snprintf(out, sizeof(out), "%s %s %.*s\n",
		    smtp_cmd_status_name(st),
		    st == SMTP_CMD_OK || st == SMTP_CMD_SYNTAX
			? smtp_verb_name(c.verb)
			: "-",
		    st == SMTP_CMD_OK ? (int)c.arglen : 0,
		    st == SMTP_CMD_OK ? c.arg : "");
		if (fgets(ref, sizeof(ref), fr) == NULL ||
		    strcmp(ref, out) != 0) {
			t_diag("line %zu: got '%s'", lineno, out);
			bad++;
		}
	}
	t_ok(bad == 0 && lineno > 0, "golden smtp_cmd.in/.ref (%zu lines)",
	    lineno);
	fclose(fi);
	fclose(fr);
}

static const struct t_case t_cases[] = {
	{ "table", t_table },
	{ "nul_and_length", t_nul_and_length },
	{ "trickle", t_trickle },
	{ "golden", t_golden },
};

int
main(void)
{
	return T_RUN(t_cases);
}
