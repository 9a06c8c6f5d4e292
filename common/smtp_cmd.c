#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "smtp_cmd.h"

enum smtp_argreq { ARG_NONE, ARG_OPT, ARG_REQ };

/* The verb table: name, the prefix that must follow it, argument rule. */
static const struct smtp_verb_def {
	enum smtp_verb	 verb;
	const char	*name;
	const char	*prefix; /* after the verb and one space, or NULL */
	enum smtp_argreq arg;
} smtp_verbs[] = {
	{ .verb = SMTP_V_HELO, .name = "HELO", .arg = ARG_REQ },
	{ .verb = SMTP_V_EHLO, .name = "EHLO", .arg = ARG_REQ },
	{ .verb = SMTP_V_MAIL,
	    .name = "MAIL",
	    .prefix = "FROM:",
	    .arg = ARG_REQ },
	{ .verb = SMTP_V_RCPT, .name = "RCPT", .prefix = "TO:", .arg = ARG_REQ },
	{ .verb = SMTP_V_DATA, .name = "DATA", .arg = ARG_NONE },
	{ .verb = SMTP_V_BDAT, .name = "BDAT", .arg = ARG_REQ },
	{ .verb = SMTP_V_RSET, .name = "RSET", .arg = ARG_NONE },
	{ .verb = SMTP_V_NOOP, .name = "NOOP", .arg = ARG_OPT },
	{ .verb = SMTP_V_QUIT, .name = "QUIT", .arg = ARG_NONE },
	{ .verb = SMTP_V_VRFY, .name = "VRFY", .arg = ARG_REQ },
	{ .verb = SMTP_V_EXPN, .name = "EXPN", .arg = ARG_REQ },
	{ .verb = SMTP_V_HELP, .name = "HELP", .arg = ARG_OPT },
	{ .verb = SMTP_V_STARTTLS, .name = "STARTTLS", .arg = ARG_NONE },
	{ .verb = SMTP_V_AUTH, .name = "AUTH", .arg = ARG_REQ },
	{ .verb = SMTP_V_ETRN, .name = "ETRN", .arg = ARG_OPT },
	{ .verb = SMTP_V_TURN, .name = "TURN", .arg = ARG_OPT },
	{ .verb = SMTP_V_HTTP, .name = "GET", .arg = ARG_OPT },
	{ .verb = SMTP_V_HTTP, .name = "POST", .arg = ARG_OPT },
	{ .verb = SMTP_V_HTTP, .name = "CONNECT", .arg = ARG_OPT },
};

static bool
smtp_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool
smtp_ieq_n(const char *a, const char *b, size_t n)
{
	size_t i;
	char   x, y;

	for (i = 0; i < n; i++) {
		x = a[i];
		y = b[i];
		if (x >= 'a' && x <= 'z')
			x = (char)(x - 'a' + 'A');
		if (y >= 'a' && y <= 'z')
			y = (char)(y - 'a' + 'A');
		if (x != y)
			return false;
	}
	return true;
}

static const struct smtp_verb_def *
smtp_lookup(const char *w, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (strlen(smtp_verbs[i].name) == n &&
		    smtp_ieq_n(w, smtp_verbs[i].name, n))
			return &smtp_verbs[i];
	return NULL;
}

/* Trims blanks on both ends of [*p, *p + *n). */
static void
smtp_trim(const char **p, size_t *n)
{
	while (*n > 0 && smtp_blank(**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && smtp_blank((*p)[*n - 1]))
		(*n)--;
}

enum smtp_cmd_status
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *cmd_r)
{
	const struct smtp_verb_def *d;
	const char		   *a;
	size_t			    i, vlen, alen, plen;

	cmd_r->verb = SMTP_V_NONE;
	cmd_r->arg = line + len;
	cmd_r->arglen = 0;
	if (len + 2 > SMTP_CMD_LINE_MAX)
		return SMTP_CMD_TOOLONG;
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return SMTP_CMD_BADCHAR;
	for (vlen = 0; vlen < len && !smtp_blank(line[vlen]); vlen++)
		;
	if ((d = smtp_lookup(line, vlen)) == NULL)
		return SMTP_CMD_UNKNOWN;
	cmd_r->verb = d->verb;
	a = line + vlen;
	alen = len - vlen;
	if (d->prefix != NULL) {
		/* Exactly one space between verb and FROM:/TO: (RFC 5321); be lenient on more. */
		smtp_trim(&a, &alen);
		plen = strlen(d->prefix);
		if (alen < plen || !smtp_ieq_n(a, d->prefix, plen))
			return SMTP_CMD_SYNTAX;
		a += plen;
		alen -= plen;
	}
	smtp_trim(&a, &alen);
	cmd_r->arg = a;
	cmd_r->arglen = alen;
	if (d->arg == ARG_NONE && alen > 0)
		return SMTP_CMD_SYNTAX;
	if (d->arg == ARG_REQ && alen == 0)
		return SMTP_CMD_SYNTAX;
	return SMTP_CMD_OK;
}

const char *
smtp_verb_name(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (smtp_verbs[i].verb == v)
			return smtp_verbs[i].name;
	return "?";
}

const char *
smtp_cmd_status_name(enum smtp_cmd_status s)
{
	switch (s) {
	case SMTP_CMD_OK:
		return "ok";
	case SMTP_CMD_SYNTAX:
		return "syntax";
	case SMTP_CMD_TOOLONG:
		return "toolong";
	case SMTP_CMD_UNKNOWN:
		return "unknown";
	case SMTP_CMD_BADCHAR:
		return "badchar";
	}
	return "?";
}
