/*
 * common/shaping: the shaping file parser (valid and invalid cases, every
 * prefix of a full file), domain matching, the effective limits and the
 * throttle-reply classifier.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "shaping.h"
#include "tap.h"
#include "xmem.h"

static const char full[] =
    "# defaults\n"
    "[default]\n"
    "connections = 4\n"
    "rate = 0\n"
    "throttle_text = Please Back Off\n"
    "suspend_after = 3   # consecutive connection failures\n"
    "\n"
    "[gmail]\n"
    "domains = gmail.com googlemail.com\n"
    "connections = 10\n"
    "messages_per_connection = 50\n"
    "rate = 20/s\n"
    "recipients_per_transaction = 100\n"
    "slowed_connections = 2\n"
    "slowed_rate = 30/m\n"
    "slow_for = 10m\n"
    "suspend_for = 2m\n"
    "mx = .google.com aspmx.l.googlemail.com\n"
    "tls = secure\n"
    "[outlook]\n"
    "domains = outlook.com, hotmail.com .live.com\n"
    "rate = 600/h\n"
    "[example.org]\n"
    "tls = encrypt\n"
    "connections = 1\r\n"
    "suspend_after = 0\n";

static void
t_shaping_full(void)
{
	struct shaping *sh = xcalloc(1, sizeof(*sh));
	char		why[256];
	size_t		line;

	t_int_eq(shaping_parse(full, strlen(full), sh, &line, why, sizeof(why)),
	    SHAPING_OK, why);
	t_int_eq((long long)sh->sh_nrules, 3, "three sections");
	t_int_eq((long long)sh->sh_ndoms, 6, "six domains");
	t_int_eq(sh->sh_def.sl_conns, 4, "default connections");
	t_int_eq(sh->sh_def.sl_suspend_after, 3, "default suspend_after");
	t_str_eq(sh->sh_pat[0], "please back off", "throttle_text lower-cased");
	t_int_eq(sh->sh_rules[0].sr_lim.sl_rate.n, 20, "rate n");
	t_int_eq(sh->sh_rules[0].sr_lim.sl_rate.per_s, 1, "rate per second");
	t_int_eq(sh->sh_rules[0].sr_lim.sl_slow_for, 600, "slow_for 10m");
	t_int_eq(sh->sh_rules[1].sr_lim.sl_rate.per_s, 3600, "per hour");
	t_int_eq(sh->sh_rules[0].sr_lim.sl_tls, SHAPING_TLS_SECURE,
	    "tls = secure (issue 17)");
	t_int_eq(sh->sh_rules[2].sr_lim.sl_tls, SHAPING_TLS_ENCRYPT,
	    "tls = encrypt");
	t_int_eq(sh->sh_rules[1].sr_lim.sl_tls, 0, "tls not set");
	t_int_eq(shaping_match(sh, "gmail.com"), 0, "gmail.com");
	t_int_eq(shaping_match(sh, "GoogleMail.COM"), 0, "case-insensitive");
	t_int_eq(shaping_match(sh, "live.com"), 1,
	    ".live.com matches live.com");
	t_int_eq(shaping_match(sh, "eu.live.com"), 1,
	    ".live.com matches a subdomain");
	t_int_eq(shaping_match(sh, "xlive.com"), -1, "no partial label");
	t_int_eq(shaping_match(sh, "example.org"), 2,
	    "section name is the domain");
	t_int_eq(shaping_match(sh, "mail.gmail.com"), -1,
	    "exact entries are exact");
	t_int_eq(shaping_match(NULL, "gmail.com"), -1, "no file");
	t_int_eq((long long)sh->sh_nmx, 2, "two mx entries");
	t_int_eq(shaping_match_mx(sh, "alt1.aspmx.l.google.com"), 0,
	    "mx suffix");
	t_int_eq(shaping_match_mx(sh, "ALT1.ASPMX.L.GOOGLE.COM."), 0,
	    "rooted, any case");
	t_int_eq(shaping_match_mx(sh, "aspmx.l.googlemail.com"), 0, "mx exact");
	t_int_eq(shaping_match_mx(sh, "x.aspmx.l.googlemail.com"), -1,
	    "exact is exact");
	t_int_eq(shaping_match_mx(sh, "google.com.evil.test"), -1,
	    "suffix only");
	t_int_eq(shaping_match(sh, "google.com"), -1,
	    "mx entries are no domains");
	free(sh);
}

static void
t_shaping_effective(void)
{
	struct shaping	     *sh = xcalloc(1, sizeof(*sh));
	struct shaping_limits l;
	char		      why[256];
	size_t		      line;

	shaping_effective(NULL, -1, 8, 100, 500, &l);
	t_int_eq(l.sl_conns, 4, "built-in connections = workers/2");
	t_int_eq(l.sl_slow_conns, 1, "built-in slowed connections");
	t_int_eq(l.sl_rcpt_per_tx, 500, "built-in recipients");
	t_int_eq(l.sl_msgs_per_conn, 100, "msgs from the config");
	t_int_eq(l.sl_tls, SHAPING_TLS_MAY, "built-in tls = may");
	t_int_eq(l.sl_suspend_after, 5, "built-in suspend_after");
	t_int_eq(l.sl_rate.n, 0, "no rate");
	shaping_effective(NULL, -1, 1, 100, 500, &l);
	t_int_eq(l.sl_conns, 1, "one worker: one connection");
	(void)shaping_parse(full, strlen(full), sh, &line, why, sizeof(why));
	shaping_effective(sh, 0, 8, 100, 500, &l);
	t_int_eq(l.sl_conns, 8, "never more connections than workers");
	t_int_eq(l.sl_slow_conns, 2, "slowed connections");
	t_int_eq(l.sl_msgs_per_conn, 50, "rule msgs");
	t_int_eq(l.sl_suspend_after, 3, "suspend_after from [default]");
	shaping_effective(sh, 2, 8, 100, 500, &l);
	t_int_eq(l.sl_conns, 1, "example.org connections");
	t_int_eq(l.sl_suspend_after, 0, "suspend_after = 0 (never) kept");
	shaping_effective(sh, -1, 8, 100, 500, &l);
	t_int_eq(l.sl_conns, 4, "[default] connections");
	free(sh);
}

static const struct {
	const char	   *text;
	enum shaping_status st;
	size_t		    line;
} bad[] = {
	{ "connections = 4\nfoo = 1\n", SHAPING_EKEY, 2 },
	{ "[x.com]\nconnections = 0\n", SHAPING_EVALUE, 2 },
	{ "[x.com]\nconnections = -1\n", SHAPING_EVALUE, 2 },
	{ "[x.com]\nconnections = 99999999999999999999\n", SHAPING_EVALUE, 2 },
	{ "[x.com]\ntls = strict\n", SHAPING_EVALUE, 2 },
	{ "[x.com]\nrate = 5/w\n", SHAPING_EVALUE, 2 },
	{ "[x.com]\nrate = 5\n", SHAPING_EVALUE, 2 },
	{ "[x.com]\nslow_for = 5y\n", SHAPING_EVALUE, 2 },
	{ "[x.com]\nslow_for = 0\n", SHAPING_EVALUE, 2 },
	{ "[x.com\n", SHAPING_ESYNTAX, 1 },
	{ "[]\n", SHAPING_ESYNTAX, 1 },
	{ "[a b]\n", SHAPING_EVALUE, 1 },
	{ "just words\n", SHAPING_ESYNTAX, 1 },
	{ "connections =\n", SHAPING_ESYNTAX, 1 },
	{ "[x.com]\n[x.com]\n", SHAPING_EDUP, 2 },
	{ "[a]\ndomains = x.com\n[b]\ndomains = X.com\n", SHAPING_EDUP, 4 },
	{ "[a]\ndomains = x/com\n", SHAPING_EVALUE, 2 },
	{ "domains = x.com\n", SHAPING_EKEY, 1 },
	{ "[a]\nthrottle_text = slow\n", SHAPING_EKEY, 2 },
	{ "mx = .x.com\n", SHAPING_EKEY, 1 },
	{ "[a]\nmx = .x.com .X.com\n", SHAPING_EDUP, 2 },
	{ "[a]\nmx = x!com\n", SHAPING_EVALUE, 2 },
	{ "[x.com]\nconnections = 1\0\n", SHAPING_ESYNTAX, 2 },
};

static void
t_shaping_bad(void)
{
	struct shaping *sh = xcalloc(1, sizeof(*sh));
	char		why[256];
	size_t		i, line, len;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = strlen(bad[i].text);
		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			len += 2; /* the embedded NUL and newline */
		t_int_eq(shaping_parse(bad[i].text, len, sh, &line, why,
			     sizeof(why)),
		    bad[i].st, bad[i].text);
		t_int_eq((long long)line, (long long)bad[i].line,
		    "line number");
		t_ok(why[0] != '\0', "a reason: %s", why);
	}
	free(sh);
}

static void
t_shaping_limits(void)
{
	struct shaping *sh = xcalloc(1, sizeof(*sh));
	struct buf	b;
	char		why[256], *text;
	size_t		i, line;

	text = xcalloc(1, 2000 + 1);
	memset(text, 'a', 2000);
	t_int_eq(shaping_parse(text, 2000, sh, &line, why, sizeof(why)),
	    SHAPING_ELIMIT, "overlong line");
	free(text);
	buf_init(&b, 1 << 20);
	for (i = 0; i < SHAPING_RULES_MAX + 1; i++)
		(void)buf_printf(&b, "[d%zu.example]\n", i);
	t_int_eq(shaping_parse(b.data, b.len, sh, &line, why, sizeof(why)),
	    SHAPING_ELIMIT, "too many sections");
	t_int_eq((long long)line, SHAPING_RULES_MAX + 1,
	    "at the first one too many");
	buf_reset(&b);
	for (i = 0; i < SHAPING_PATTERNS_MAX + 1; i++)
		(void)buf_printf(&b, "throttle_text = t%zu\n", i);
	t_int_eq(shaping_parse(b.data, b.len, sh, &line, why, sizeof(why)),
	    SHAPING_ELIMIT, "too many patterns");
	buf_release(&b);
	free(sh);
}

/* Every prefix of the full file: OK or an error, never a crash; the
 * bytes are copied so that the sanitizers see any overread. */
static void
t_shaping_prefixes(void)
{
	struct shaping *sh = xcalloc(1, sizeof(*sh));
	char		why[256], *p;
	size_t		n, line, ok = 0;

	for (n = 0; n <= strlen(full); n++) {
		p = xmalloc(n + 1);
		memcpy(p, full, n);
		ok += shaping_parse(p, n, sh, &line, why, sizeof(why)) ==
		    SHAPING_OK;
		free(p);
	}
	t_ok(ok > 0 && ok <= strlen(full) + 1, "%zu of the prefixes parse", ok);
	free(sh);
}

static const struct {
	const char	  *reply;
	enum shaping_reply want;
} replies[] = {
	{ "250 2.0.0 Ok: queued", SHAPING_REPLY_OK },
	{ "550 5.7.1 rate limited",
	    SHAPING_REPLY_OK }, /* permanent: not a back-off */
	{ "421 4.7.0 Try again later, closing connection. (EHLO) gsmtp",
	    SHAPING_REPLY_THROTTLE },
	{ "421 4.7.28 Our system has detected an unusual rate of unsolicited "
	  "mail",
	    SHAPING_REPLY_THROTTLE },
	{ "451 4.7.500 Server busy. Please try again later from [1.2.3.4]",
	    SHAPING_REPLY_THROTTLE },
	{ "421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred due to "
	  "unexpected volume or user complaints",
	    SHAPING_REPLY_THROTTLE },
	{ "451 Too many connections from your IP", SHAPING_REPLY_THROTTLE },
	{ "450 4.7.1 Client host rejected: Greylisted, see http://x",
	    SHAPING_REPLY_OK },
	{ "451 4.7.1 Please try again later (greylisting)", SHAPING_REPLY_OK },
	{ "451 4.7.5 relay[1.2.3.4]:25: STARTTLS not offered",
	    SHAPING_REPLY_OK },
	{ "451 4.4.1 mx[127.0.0.2]:25: connect: Connection refused",
	    SHAPING_REPLY_CONNFAIL },
	{ "451 4.4.2 mx[127.0.0.2]:25: greeting: timeout",
	    SHAPING_REPLY_CONNFAIL },
	{ "451 4.4.3 DNS lookup failed: SERVFAIL", SHAPING_REPLY_OK },
	{ "452 4.2.2 Mailbox full", SHAPING_REPLY_OK },
	{ "451 4.3.0 please back off now",
	    SHAPING_REPLY_THROTTLE }, /* file pattern */
	{ "", SHAPING_REPLY_OK },
	{ "4", SHAPING_REPLY_OK },
	{ "421", SHAPING_REPLY_THROTTLE },
};

static void
t_shaping_classify(void)
{
	struct shaping *sh = xcalloc(1, sizeof(*sh));
	char		why[256];
	size_t		i, line;

	(void)shaping_parse(full, strlen(full), sh, &line, why, sizeof(why));
	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
		t_int_eq(shaping_classify(sh, replies[i].reply),
		    replies[i].want, replies[i].reply);
	t_int_eq(shaping_classify(NULL, "451 4.3.0 please back off now"),
	    SHAPING_REPLY_OK, "the file's pattern only with the file");
	free(sh);
}

static void
t_shaping_rate(void)
{
	struct shaping_rate r;
	char		    s[32];

	t_int_eq(shaping_rate_parse("600/m", &r), 0, "600/m");
	shaping_rate_format(&r, s, sizeof(s));
	t_str_eq(s, "600/m", "format");
	t_int_eq(shaping_rate_parse("0", &r), 0, "0");
	shaping_rate_format(&r, s, sizeof(s));
	t_str_eq(s, "-", "none");
	/* a node's share in a cluster (shaping_share) */
	r = (struct shaping_rate){ .n = 60, .per_s = 120 };
	shaping_rate_format(&r, s, sizeof(s));
	t_str_eq(s, "30/m", "60 per 120 s");
	r = (struct shaping_rate){ .n = 1, .per_s = 3 };
	shaping_rate_format(&r, s, sizeof(s));
	t_str_eq(s, "1/3s", "1 per 3 s");
	r = (struct shaping_rate){ .n = 7, .per_s = 3600 };
	shaping_rate_format(&r, s, sizeof(s));
	t_str_eq(s, "7/h", "7/h");
	t_int_eq(shaping_rate_parse("/s", &r), -1, "no number");
	t_int_eq(shaping_rate_parse("3/", &r), -1, "no unit");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "full file", t_shaping_full },
		{ "effective limits", t_shaping_effective },
		{ "bad input", t_shaping_bad },
		{ "limits", t_shaping_limits },
		{ "prefixes", t_shaping_prefixes },
		{ "classify", t_shaping_classify },
		{ "rates", t_shaping_rate },
	};

	return T_RUN(cases);
}
