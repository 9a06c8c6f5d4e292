/*
 * Unit tests of trackd's machine detection (trackd/trackd_machine.h):
 * the user-agent table, the delivery window, the link-scanner burst rule
 * and the bound on its LRU.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "trackd_machine.h"

static const struct {
	const char *ua;
	bool	    machine;
} t_uas[] = {
	{ NULL, true },
	{ "", true },
	{ "Mozilla/5.0", true }, /* Apple Mail Privacy Protection */
	{ "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via "
	  "ggpht.com GoogleImageProxy)",
	    true },
	{ "YahooMailProxy; "
	  "https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
	    true },
	{ "Mozilla/5.0 (compatible; Googlebot/2.1; "
	  "+http://www.google.com/bot.html)",
	    true },
	{ "curl/7.88.1", true },
	{ "python-requests/2.28.1", true },
	{ "Go-http-client/1.1", true },
	{ "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0 Safari/537.36",
	    true },
	{ "Barracuda Sentinel (EE)", true },
	{ "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 "
	  "Firefox/120.0",
	    false },
	{ "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
	  "AppleWebKit/605.1.15 "
	  "(KHTML, like Gecko) Mobile/15E148",
	    false },
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) "
	  "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
	    false },
	{ "Microsoft Outlook 16.0.17029", false },
};

static void
t_ua(void)
{
	size_t i;

	for (i = 0; i < sizeof(t_uas) / sizeof(t_uas[0]); i++)
		t_ok(trackd_machine_ua(t_uas[i].ua) == t_uas[i].machine,
		    "ua %s: %s", t_uas[i].ua != NULL ? t_uas[i].ua : "(none)",
		    t_uas[i].machine ? "machine" : "person");
}

static void
t_early(void)
{
	t_ok(trackd_machine_early(1000, 1000), "an open at delivery");
	t_ok(trackd_machine_early(1009, 1000), "9 s after");
	t_ok(!trackd_machine_early(1000 + TRACKD_EARLY_S, 1000),
	    "10 s after: a person");
	t_ok(!trackd_machine_early(5000, 0), "delivery unknown");
	t_ok(!trackd_machine_early(999, 1000),
	    "a clock step back is no evidence");
}

static void
t_burst(void)
{
	struct trackd_seen *s = trackd_seen_new(16);
	const char	   *q = "0123456789ABCDEF0123";

	t_ok(!trackd_seen_click(s, q, 0, 0, 10000), "first click");
	t_ok(!trackd_seen_click(s, q, 0, 0, 10200), "the same link again");
	t_ok(trackd_seen_click(s, q, 0, 1, 10400), "another link 200 ms later");
	t_ok(trackd_seen_click(s, q, 0, 1, 20000),
	    "held: still a scanner 10 s later");
	t_ok(!trackd_seen_click(s, q, 1, 2, 10450),
	    "another recipient is unaffected");
	t_ok(!trackd_seen_click(s, q, 2, 0, 50000), "recipient 2, first");
	t_ok(!trackd_seen_click(s, q, 2, 1, 51500),
	    "another link 1.5 s later: a person");
	t_ok(!trackd_seen_click(s, q, 0, 3, 10400 + TRACKD_SCAN_HOLD_MS + 5000),
	    "the hold ends");
	trackd_seen_free(&s);
	t_ok(s == NULL, "free sets NULL");
}

/* The LRU never holds more than its bound; the least recently used goes. */
static void
t_bound(void)
{
	struct trackd_seen *s = trackd_seen_new(4);
	char		    q[21];
	unsigned	    i;

	for (i = 0; i < 100; i++) {
		(void)snprintf(q, sizeof(q), "%020u", i);
		(void)trackd_seen_click(s, q, 0, 0, 1000);
	}
	t_int_eq((long long)trackd_seen_count(s), 4,
	    "entries after 100 recipients");
	(void)snprintf(q, sizeof(q), "%020u", 99u);
	t_ok(trackd_seen_click(s, q, 0, 1, 1100),
	    "the most recent is remembered");
	(void)snprintf(q, sizeof(q), "%020u", 0u);
	t_ok(!trackd_seen_click(s, q, 0, 1, 1100), "the oldest was forgotten");
	trackd_seen_free(&s);
	trackd_seen_free(&s); /* NULL is fine */
}

/* The earlier clicks of a burst committed together are marked too. */
static void
t_bursts(void)
{
	const char *a = "0123456789ABCDEF0123", *b = "0123456789ABCDEF0124";
	bool	    m[7] = { false };
	struct trackd_click v[] = {
		/* a/0: three links in 300 ms, out of order: all three */
		{ a, 0, 2, 10300, &m[0] },
		{ a, 0, 0, 10000, &m[1] },
		{ a, 0, 1, 10100, &m[2] },
		/* a/1: the same link twice: a person reloading */
		{ a, 1, 0, 10000, &m[3] },
		{ a, 1, 0, 10050, &m[4] },
		/* b/0: two links 1.5 s apart: a person */
		{ b, 0, 0, 10000, &m[5] },
		{ b, 0, 1, 11500, &m[6] },
	};

	trackd_machine_bursts(v, sizeof(v) / sizeof(v[0]));
	t_ok(m[0] && m[1] && m[2],
	    "a scanner's three clicks, the first included");
	t_ok(!m[3] && !m[4], "one link twice is no burst");
	t_ok(!m[5] && !m[6], "1.5 s apart is no burst");
	trackd_machine_bursts(v, 0);
	trackd_machine_bursts(v, 1);
	t_ok(true, "empty and single groups");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "ua", t_ua },
		{ "early", t_early },
		{ "burst", t_burst },
		{ "bound", t_bound },
		{ "bursts", t_bursts },
	};

	return T_RUN(cases);
}
