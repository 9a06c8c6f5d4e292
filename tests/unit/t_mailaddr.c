/* Unit tests for common/mailaddr: paths, domains, ESMTP parameters. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailaddr.h"
#include "tap.h"

static const struct {
	const char	    *arg;
	unsigned	     flags;
	enum mailaddr_status st;
	const char	    *addr;
	const char	    *params;
} cases[] = {
	{ "<a@b.c>", 0, MAILADDR_OK, "a@b.c", "" },
	{ "<a@b.c> SIZE=100 BODY=8BITMIME", 0, MAILADDR_OK, "a@b.c",
	    "SIZE=100 BODY=8BITMIME" },
	{ "<>", MAILADDR_NULL_OK, MAILADDR_OK, "", "" },
	{ "<>", 0, MAILADDR_NULL, NULL, NULL },
	{ "<> SIZE=5", MAILADDR_NULL_OK, MAILADDR_OK, "", "SIZE=5" },
	{ "<first.last+tag@sub.example.com>", 0, MAILADDR_OK,
	    "first.last+tag@sub.example.com", "" },
	{ "<\"odd > name\"@example.com>", 0, MAILADDR_OK,
	    "\"odd > name\"@example.com", "" },
	{ "<\"a\\\"b\"@example.com>", 0, MAILADDR_OK, "\"a\\\"b\"@example.com",
	    "" },
	{ "<@relay.example,@r2.example:u@d.example>", 0, MAILADDR_OK,
	    "u@d.example", "" },
	{ "<@bad_route:u@d.example>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<u@[192.0.2.1]>", 0, MAILADDR_OK, "u@[192.0.2.1]", "" },
	{ "<u@[IPv6:2001:db8::1]>", 0, MAILADDR_OK, "u@[IPv6:2001:db8::1]",
	    "" },
	{ "<u@[300.1.1.1]>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<postmaster>", 0, MAILADDR_OK, "postmaster", "" },
	{ "<user>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a@b.c", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "a@b.c", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "a@b.c SIZE=1", MAILADDR_NOBRACKET_OK, MAILADDR_OK, "a@b.c",
	    "SIZE=1" },
	{ "<a@b.c>SIZE=1", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a..b@c.d>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<.a@c.d>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a.@c.d>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a b@c.d>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a@-c.d>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a@c-.d>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a@c..d>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a@c.d.>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<a@>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<@c.d>", 0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
	  "cole.fr>",
	    0, MAILADDR_SYNTAX, NULL, NULL },
	{ "<\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
	  "cole.fr> SMTPUTF8",
	    MAILADDR_UTF8, MAILADDR_OK,
	    "\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
	    "cole.fr",
	    "SMTPUTF8" },
	{ "<a@b.c> =x", 0, MAILADDR_PARAMS, NULL, NULL },
	{ "<a@b.c> SIZE=", 0, MAILADDR_PARAMS, NULL, NULL },
	{ "<a@b.c> K=v=w", 0, MAILADDR_PARAMS, NULL, NULL },
	{ "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@"
	  "b.c>",
	    0, MAILADDR_TOOLONG, NULL, NULL }, /* 65-octet local part */
};

static void
t_table(void)
{
	char		     addr[300], params[300];
	enum mailaddr_status st;
	size_t		     i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st = mailaddr_parse_path(cases[i].arg, strlen(cases[i].arg),
		    cases[i].flags, addr, sizeof(addr), params, sizeof(params));
		t_ok(st == cases[i].st, "status of '%s' (%d)", cases[i].arg,
		    (int)st);
		if (st == MAILADDR_OK && cases[i].addr != NULL) {
			t_str_eq(addr, cases[i].addr, "address");
			t_str_eq(params, cases[i].params, "params");
		}
	}
}

#define LABELS \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaa"

static void
t_long_domain(void)
{
	char   s[400], addr[512], params[16];
	size_t i;

	/* 63-octet labels are fine; 64 is not; the domain caps at 255. */
	(void)snprintf(s, sizeof(s), "<u@%.63s.com>", LABELS);
	t_ok(mailaddr_parse_path(s, strlen(s), 0, addr, sizeof(addr), params,
		 sizeof(params)) == MAILADDR_OK,
	    "63-octet label");
	(void)snprintf(s, sizeof(s), "<u@%.64s.com>", LABELS);
	t_ok(mailaddr_parse_path(s, strlen(s), 0, addr, sizeof(addr), params,
		 sizeof(params)) != MAILADDR_OK,
	    "64-octet label refused");
	for (i = 0; i < 300; i++)
		s[i] = (i % 10 == 9) ? '.' : 'a';
	s[300] = '\0';
	t_ok(!mailaddr_domain_ok(s, 300, 0), "300-octet domain refused");
	t_ok(mailaddr_domain_ok("xn--e1afmkfd.xn--p1ai", 21, 0), "punycode");
	t_ok(mailaddr_ok("a@b.c", 0) && mailaddr_ok("a@b", 0) &&
		!mailaddr_ok("a", 0),
	    "mailaddr_ok");
}

static void
t_params(void)
{
	const char	     *p = "SIZE=1000  BODY=8BITMIME SMTPUTF8";
	struct mailaddr_param mp;
	size_t		      pos = 0;
	int		      n = 0;

	while (mailaddr_param_next(p, strlen(p), &pos, &mp) == 1) {
		if (n == 0)
			t_ok(mailaddr_param_is(&mp, "size") && mp.vlen == 4 &&
				memcmp(mp.value, "1000", 4) == 0,
			    "SIZE=1000");
		if (n == 2)
			t_ok(mailaddr_param_is(&mp, "SMTPUTF8") &&
				mp.value == NULL,
			    "SMTPUTF8 without value");
		n++;
	}
	t_int_eq(n, 3, "three params");
}

static void
t_trickle(void)
{
	char		     addr[300], params[300], *q;
	size_t		     i, n, len, bad = 0;
	enum mailaddr_status st;

	/* Every prefix in a buffer of its own size (ASan checks bounds): an
	 * accepted prefix yields no more text than it had, and the whole
	 * argument gets the table's verdict. */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i].arg);
		for (n = 0; n <= len; n++) {
			q = malloc(n ? n : 1);
			memcpy(q, cases[i].arg, n);
			st = mailaddr_parse_path(q, n, cases[i].flags, addr,
			    sizeof(addr), params, sizeof(params));
			free(q);
			if (st == MAILADDR_OK &&
			    strlen(addr) + strlen(params) > n)
				bad++;
			if (n == len && st != cases[i].st)
				bad++;
		}
	}
	t_int_eq((long long)bad, 0, "every prefix parses within its length");
}

static const struct t_case t_cases[] = {
	{ "table", t_table },
	{ "long_domain", t_long_domain },
	{ "params", t_params },
	{ "trickle", t_trickle },
};

int
main(void)
{
	return T_RUN(t_cases);
}
