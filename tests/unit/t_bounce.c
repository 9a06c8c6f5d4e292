/* Unit tests for common/bounce: names, the suppression decision, the
 * built-in fallbacks, the rule parser (valid and invalid files, fed whole
 * and cut at every byte) and first-match-wins classification. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "tap.h"

static void
t_names(void)
{
	int i;

	for (i = BOUNCE_NONE + 1; i < BOUNCE_CAT_COUNT; i++)
		t_int_eq(bounce_cat_parse(bounce_cat_name(i)), i,
		    bounce_cat_name(i));
	t_ok(bounce_cat_name(BOUNCE_NONE) == NULL, "NONE has no name");
	t_ok(bounce_cat_name(BOUNCE_CAT_COUNT) == NULL,
	    "out of range has no name");
	t_int_eq(bounce_cat_parse("Bad-Mailbox"), BOUNCE_NONE,
	    "names are exact");
	t_str_eq(bounce_cat_name(BOUNCE_RELAYING_DENIED), "relaying-denied",
	    "pinned");
	t_str_eq(bounce_cat_name(BOUNCE_INACTIVE_MAILBOX), "inactive-mailbox",
	    "pinned");
	for (i = 0; i < BOUNCE_ST_COUNT; i++)
		t_int_eq(bounce_stage_parse(bounce_stage_name(i)), i,
		    bounce_stage_name(i));
	t_int_eq(bounce_stage_parse("quit"), BOUNCE_ST_UNKNOWN,
	    "unknown stage");
}

static void
t_suppresses(void)
{
	t_ok(bounce_suppresses(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT, 550),
	    "5.1.1 at RCPT");
	t_ok(bounce_suppresses(BOUNCE_BAD_DOMAIN, BOUNCE_ST_RCPT, 550),
	    "bad domain");
	t_ok(bounce_suppresses(BOUNCE_INACTIVE_MAILBOX, BOUNCE_ST_DATA, 550),
	    "inactive");
	t_ok(!bounce_suppresses(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT, 450),
	    "4xx never");
	t_ok(!bounce_suppresses(BOUNCE_BAD_MAILBOX, BOUNCE_ST_GREETING, 554),
	    "greeting");
	t_ok(!bounce_suppresses(BOUNCE_BAD_MAILBOX, BOUNCE_ST_MAIL, 550),
	    "sender");
	t_ok(!bounce_suppresses(BOUNCE_SPAM, BOUNCE_ST_DATA, 550), "spam");
	t_ok(!bounce_suppresses(BOUNCE_POLICY, BOUNCE_ST_RCPT, 550), "policy");
	t_ok(!bounce_suppresses(BOUNCE_RELAYING_DENIED, BOUNCE_ST_RCPT, 554),
	    "relay");
	t_ok(!bounce_suppresses(BOUNCE_QUOTA, BOUNCE_ST_RCPT, 552), "quota");
	t_ok(!bounce_suppresses(BOUNCE_BAD_MAILBOX, BOUNCE_ST_UNKNOWN, 550),
	    "unknown stage");
	t_ok(bounce_suppresses(BOUNCE_BAD_DOMAIN, BOUNCE_ST_CONNECT, 550),
	    "NXDOMAIN");
	t_ok(!bounce_suppresses(BOUNCE_BAD_DOMAIN, BOUNCE_ST_CONNECT, 451),
	    "DNS trouble");
	t_ok(!bounce_suppresses(BOUNCE_ROUTING, BOUNCE_ST_CONNECT, 554),
	    "loop");
	t_ok(!bounce_suppresses(BOUNCE_NO_ANSWER, BOUNCE_ST_CONNECT, 550),
	    "no answer");
}

struct ccase {
	enum bounce_stage st;
	const char	 *reply;
	enum bounce_cat	  want;
};

/* Built-in fallbacks, no rule file. */
static const struct ccase fallback_cases[] = {
	{ BOUNCE_ST_RCPT, "250 2.1.5 Ok", BOUNCE_NONE },
	{ BOUNCE_ST_DATA, "354 go ahead", BOUNCE_NONE },
	{ BOUNCE_ST_RCPT, "550 5.1.1 <a@b>: Recipient address rejected",
	    BOUNCE_BAD_MAILBOX },
	{ BOUNCE_ST_RCPT, "550-5.1.1 The email account", BOUNCE_BAD_MAILBOX },
	{ BOUNCE_ST_RCPT, "550 #5.1.0 Address rejected.", BOUNCE_OTHER },
	{ BOUNCE_ST_RCPT, "550 5.1.2 bad destination system",
	    BOUNCE_BAD_DOMAIN },
	{ BOUNCE_ST_RCPT, "556 5.1.10 null MX", BOUNCE_BAD_DOMAIN },
	{ BOUNCE_ST_RCPT, "550 5.1.100 x", BOUNCE_OTHER },
	{ BOUNCE_ST_RCPT, "550 5.2.1 mailbox disabled",
	    BOUNCE_INACTIVE_MAILBOX },
	{ BOUNCE_ST_RCPT, "552 5.2.2 mailbox full", BOUNCE_QUOTA },
	{ BOUNCE_ST_RCPT, "452 4.2.2 over quota", BOUNCE_QUOTA },
	{ BOUNCE_ST_DATA, "550 5.7.1 message rejected", BOUNCE_POLICY },
	{ BOUNCE_ST_DATA, "550 5.7.1 message rejected as spam", BOUNCE_SPAM },
	{ BOUNCE_ST_DATA, "554 5.7.1 virus found", BOUNCE_VIRUS },
	{ BOUNCE_ST_RCPT, "554 5.7.1 <x@y>: Relay access denied",
	    BOUNCE_RELAYING_DENIED },
	{ BOUNCE_ST_RCPT, "550 5.7.26 unauthenticated mail, DMARC",
	    BOUNCE_POLICY },
	{ BOUNCE_ST_RCPT, "550 5.4.1 Recipient address rejected: Access denied",
	    BOUNCE_ROUTING },
	{ BOUNCE_ST_RCPT, "554 5.4.7 delivery time expired", BOUNCE_EXPIRED },
	{ BOUNCE_ST_MAIL, "501 5.5.2 syntax error", BOUNCE_PROTOCOL },
	{ BOUNCE_ST_MAIL, "502 command not implemented", BOUNCE_PROTOCOL },
	{ BOUNCE_ST_MAIL, "553 sender rejected", BOUNCE_POLICY },
	{ BOUNCE_ST_GREETING, "554 no SMTP service here", BOUNCE_POLICY },
	{ BOUNCE_ST_CONNECT, "421 4.4.1 connect to mx: Connection refused",
	    BOUNCE_NO_ANSWER },
	{ BOUNCE_ST_CONNECT, "550 5.1.2 no such domain", BOUNCE_BAD_DOMAIN },
	{ BOUNCE_ST_CONNECT, "554 5.4.6 mail for x loops back to myself",
	    BOUNCE_ROUTING },
	{ BOUNCE_ST_CONNECT, "451 4.4.3 DNS lookup failed: timeout",
	    BOUNCE_NO_ANSWER },
	{ BOUNCE_ST_RCPT, "550 5.1.1 <spam-reports@example.com>: unknown",
	    BOUNCE_BAD_MAILBOX },
	{ BOUNCE_ST_RCPT, "550 5.7.1 <virus@example.com>: refused",
	    BOUNCE_POLICY },
	{ BOUNCE_ST_RCPT, "550 5.7.1 spam <unclosed", BOUNCE_SPAM },
	{ BOUNCE_ST_RCPT, "554 relay access denied", BOUNCE_RELAYING_DENIED },
	{ BOUNCE_ST_RCPT, "550 no such user", BOUNCE_OTHER },
	{ BOUNCE_ST_RCPT, "552 too much", BOUNCE_QUOTA },
	{ BOUNCE_ST_RCPT, "", BOUNCE_OTHER },
	{ BOUNCE_ST_COUNT, "garbage", BOUNCE_OTHER },
};

static void
t_fallbacks(void)
{
	size_t i;

	for (i = 0; i < sizeof(fallback_cases) / sizeof(fallback_cases[0]);
	     i++) {
		const struct ccase *c = &fallback_cases[i];
		enum bounce_cat got = bounce_classify(NULL, c->st, c->reply);

		t_ok(got == c->want, "fallback \"%s\": got %s want %s",
		    c->reply,
		    bounce_cat_name(got) ? bounce_cat_name(got) : "none",
		    bounce_cat_name(c->want) ? bounce_cat_name(c->want)
					     : "none");
	}
	t_ok(bounce_classify(NULL, BOUNCE_ST_RCPT, NULL) == BOUNCE_OTHER,
	    "NULL reply");
}

static const char rules_text[] =
    "# comment line\n"
    "\n"
    "relaying-denied  text=\"relay access denied\"\n"
    "spam     enh=5.7.1 regex=\"(spam|junk)[ -]?(mail|content)?\"\n"
    "bad-mailbox stage=rcpt code=55x regex=\"(no such|unknown) "
    "(user|recipient)\"\n"
    "quota    stage=rcpt,data text=\"mailbox full\"   # trailing comment\n"
    "policy   code=4xx text=\"too many connections\"\r\n"
    "inactive-mailbox enh=5.2.1 text=\"disabled\"\n"
    "other    text=\"\\\"quoted\\\"\"\n"
    "routing  regex=\"hop\\.count\"\n";

static const struct ccase rule_cases[] = {
	{ BOUNCE_ST_RCPT, "554 5.7.1 <x@y>: Relay access denied",
	    BOUNCE_RELAYING_DENIED },
	{ BOUNCE_ST_DATA, "550 5.7.1 Junk mail rejected", BOUNCE_SPAM },
	{ BOUNCE_ST_DATA, "550 5.7.10 Junk mail rejected",
	    BOUNCE_POLICY }, /* not 5.7.1 */
	{ BOUNCE_ST_RCPT, "550 No such user here", BOUNCE_BAD_MAILBOX },
	{ BOUNCE_ST_RCPT, "450 No such user here", BOUNCE_OTHER },
	{ BOUNCE_ST_MAIL, "550 No such user here", BOUNCE_POLICY },
	{ BOUNCE_ST_DATA, "452 Mailbox FULL", BOUNCE_QUOTA },
	{ BOUNCE_ST_MAIL, "452 Mailbox FULL", BOUNCE_OTHER },
	{ BOUNCE_ST_GREETING, "421 Too many connections from your IP",
	    BOUNCE_POLICY },
	{ BOUNCE_ST_GREETING, "554 Too many connections from your IP",
	    BOUNCE_POLICY },
	{ BOUNCE_ST_RCPT, "550 5.2.1 account disabled",
	    BOUNCE_INACTIVE_MAILBOX },
	{ BOUNCE_ST_RCPT, "550 5.2.10 disabled", BOUNCE_OTHER },
	{ BOUNCE_ST_RCPT, "550 say \"quoted\" here", BOUNCE_OTHER },
	{ BOUNCE_ST_DATA, "554 hop.count exceeded",
	    BOUNCE_ROUTING }, /* \. kept */
	{ BOUNCE_ST_DATA, "554 hopXcount exceeded", BOUNCE_OTHER },
};

static void
t_rules(void)
{
	struct bounce_rules *rs;
	char		     err[256] = "";
	size_t		     i;

	rs = bounce_rules_parse(rules_text, sizeof(rules_text) - 1, "t", err,
	    sizeof(err));
	if (!t_ok(rs != NULL, "rules parse: %s", err))
		return;
	for (i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
		const struct ccase *c = &rule_cases[i];
		enum bounce_cat	    got = bounce_classify(rs, c->st, c->reply);

		t_ok(got == c->want, "rules \"%s\": got %s want %s", c->reply,
		    bounce_cat_name(got) ? bounce_cat_name(got) : "none",
		    bounce_cat_name(c->want) ? bounce_cat_name(c->want)
					     : "none");
	}
	t_ok(bounce_classify(rs, BOUNCE_ST_RCPT, "250 ok") == BOUNCE_NONE,
	    "2xx with rules");
	bounce_rules_free(rs);
	bounce_rules_free(NULL);
}

struct bad {
	const char *text;
	const char *err; /* substring of the error */
};

static const struct bad bad_cases[] = {
	{ "nonsense text=x\n", "t:1: unknown category" },
	{ "\nspam\n", "t:2: a rule needs at least one condition" },
	{ "spam text=\"open\n", "unterminated quote" },
	{ "spam foo=bar\n", "unknown key" },
	{ "spam text\n", "expected key=value" },
	{ "spam text=\n", "empty" },
	{ "spam stage=quit\n", "unknown stage" },
	{ "spam code=250\n", "code must be" },
	{ "spam code=5x0\n", "code must be" },
	{ "spam code=5500\n", "code must be" },
	{ "spam enh=5..1\n", "enh must be" },
	{ "spam enh=5.7.\n", "enh must be" },
	{ "spam enh=2.0.0\n", "enh must be" },
	{ "spam enh=5.7.1.1\n", "enh must be" },
	{ "spam regex=\"(unclosed\"\n", "regex:" },
	{ "spam regex=a regex=b\n", "more than one regex" },
	{ "spam text=a text=b\n", "more than one text" },
	{ "spam text=\"a\tb\"\n", "control character" },
};

static void
t_bad(void)
{
	struct bounce_rules *rs;
	char		     err[256];
	size_t		     i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		err[0] = '\0';
		rs = bounce_rules_parse(bad_cases[i].text,
		    strlen(bad_cases[i].text), "t", err, sizeof(err));
		t_ok(rs == NULL && strstr(err, bad_cases[i].err) != NULL,
		    "bad rule %zu: \"%s\" (want \"%s\")", i, err,
		    bad_cases[i].err);
		bounce_rules_free(rs);
	}
}

/* Limits: a long pattern, a long line, a NUL byte, many rules. */
static void
t_limits(void)
{
	struct bounce_rules *rs;
	char		     err[256], *big;
	size_t		     i, n;

	big = malloc(8192);
	if (big == NULL)
		return;
	n = (size_t)snprintf(big, 8192, "spam text=");
	for (i = 0; i < 300; i++)
		big[n++] = 'a';
	big[n++] = '\n';
	rs = bounce_rules_parse(big, n, "t", err, sizeof(err));
	t_ok(rs == NULL && strstr(err, "longer than 256") != NULL,
	    "long pattern: %s", err);
	memset(big, 'a', 2000);
	rs = bounce_rules_parse(big, 2000, "t", err, sizeof(err));
	t_ok(rs == NULL && strstr(err, "line longer") != NULL, "long line: %s",
	    err);
	rs = bounce_rules_parse("spam text=a\0b\n", 14, "t", err, sizeof(err));
	t_ok(rs == NULL && strstr(err, "NUL") != NULL, "NUL: %s", err);
	free(big);
	n = 2001 * 12;
	big = malloc(n + 1);
	if (big == NULL)
		return;
	for (i = 0; i < 2001; i++)
		memcpy(big + i * 12, "spam text=x\n", 12);
	rs = bounce_rules_parse(big, n, "t", err, sizeof(err));
	t_ok(rs == NULL && strstr(err, "more than 2000 rules") != NULL,
	    "many: %s", err);
	rs = bounce_rules_parse(big, n - 12, "t", err, sizeof(err));
	t_ok(rs != NULL, "2000 rules load");
	bounce_rules_free(rs);
	free(big);
}

/* Every prefix of a valid file either parses or fails cleanly (no crash,
 * no leak under ASan); a prefix ending on a line boundary parses. */
static void
t_prefixes(void)
{
	struct bounce_rules *rs;
	char		     err[256];
	size_t		     n, ok = 0;

	for (n = 0; n <= sizeof(rules_text) - 1; n++) {
		rs = bounce_rules_parse(rules_text, n, "t", err, sizeof(err));
		if (n == 0 || rules_text[n - 1] == '\n')
			t_ok(rs != NULL, "prefix %zu parses: %s", n,
			    rs ? "" : err);
		ok += rs != NULL;
		bounce_rules_free(rs);
	}
	t_ok(ok > 0, "some prefixes parse");
}

static void
t_load(void)
{
	struct bounce_rules *rs;
	char		     err[256];

	rs = bounce_rules_load("/nonexistent/bounce-rules", err, sizeof(err));
	t_ok(rs == NULL && strstr(err, "/nonexistent/bounce-rules: ") != NULL,
	    "missing file: %s", err);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "names", t_names },
		{ "suppresses", t_suppresses },
		{ "fallbacks", t_fallbacks },
		{ "rules", t_rules },
		{ "bad", t_bad },
		{ "limits", t_limits },
		{ "prefixes", t_prefixes },
		{ "load", t_load },
	};

	return T_RUN(cases);
}
