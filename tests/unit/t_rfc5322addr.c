/* Unit tests for common/rfc5322addr: a table of From:/To: values. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "rfc5322addr.h"
#include "tap.h"

struct acase {
	const char	       *in;
	enum rfc5322addr_status st;
	const char	       *addr;
	const char	       *name;
};

static const struct acase first_cases[] = {
	{ "user@example.com", RFC5322ADDR_OK, "user@example.com", "" },
	{ "User Name <user@example.com>", RFC5322ADDR_OK, "user@example.com",
	    "User Name" },
	{ "\"Name, Jr.\" <user@example.com>", RFC5322ADDR_OK,
	    "user@example.com", "Name, Jr." },
	{ "\"a \\\"q\\\" b\" <u@x.org>", RFC5322ADDR_OK, "u@x.org",
	    "a \"q\" b" },
	{ "user@example.com (Comment (nested))", RFC5322ADDR_OK,
	    "user@example.com", "" },
	{ "(c) user (c) @ (c) example (c) . com (c)", RFC5322ADDR_OK,
	    "user@example.com", "" },
	{ "<user@example.com>", RFC5322ADDR_OK, "user@example.com", "" },
	{ "  < user @ example.com >  ", RFC5322ADDR_OK, "user@example.com",
	    "" },
	{ "<@route1,@route2:user@example.com>", RFC5322ADDR_OK,
	    "user@example.com", "" },
	{ "\"john doe\"@example.com", RFC5322ADDR_OK,
	    "\"john doe\"@example.com", "" },
	{ "user@[192.0.2.1]", RFC5322ADDR_OK, "user@[192.0.2.1]", "" },
	{ "J. Smith <js@example.com>", RFC5322ADDR_OK, "js@example.com",
	    "J. Smith" },
	{ "=?UTF-8?B?0JjQstCw0L0=?= <ivan@example.ru>", RFC5322ADDR_OK,
	    "ivan@example.ru", "\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd" },
	{ "=?utf-8?Q?Caf=C3=A9_Bar?= <cafe@example.fr>", RFC5322ADDR_OK,
	    "cafe@example.fr", "Caf\xc3\xa9 Bar" },
	{ "=?iso-8859-1?q?Andr=E9?= <a@example.fr>", RFC5322ADDR_OK,
	    "a@example.fr", "Andr\xc3\xa9" },
	{ "=?utf-8?Q?a?= =?utf-8?Q?b?= <ab@x.y>", RFC5322ADDR_OK, "ab@x.y",
	    "ab" },
	{ "=?utf-8?Q?who@where.com?= <real@x.y>", RFC5322ADDR_OK, "real@x.y",
	    "who@where.com" },
	{ "=?koi8-r?B?8NLJ18XU?= <k@x.y>", RFC5322ADDR_OK, "k@x.y",
	    "=?koi8-r?B?8NLJ18XU?=" },
	{ "Group: a@b.c, d@e.f;", RFC5322ADDR_OK, "a@b.c", "" },
	{ "undisclosed-recipients:;", RFC5322ADDR_NOADDR, "", "" },
	{ "Group:;, last@x.y", RFC5322ADDR_OK, "last@x.y", "" },
	{ "john", RFC5322ADDR_NOADDR, "", "" },
	{ "", RFC5322ADDR_NOADDR, "", "" },
	{ "   ", RFC5322ADDR_NOADDR, "", "" },
	{ "Name <>", RFC5322ADDR_NOADDR, "", "" },
	{ "Name <>, b@c.d", RFC5322ADDR_OK, "b@c.d", "" },
	{ "a@b.c, d@e.f", RFC5322ADDR_OK, "a@b.c", "" },
	{ ",,a@b.c", RFC5322ADDR_OK, "a@b.c", "" },
	{ "John john@example.com", RFC5322ADDR_OK, "john@example.com", "" },
	{ "Name <user@example.com", RFC5322ADDR_SYNTAX, "", "" },
	{ "\"unterminated <a@b.c>", RFC5322ADDR_SYNTAX, "", "" },
	{ "a@b.c (unterminated", RFC5322ADDR_SYNTAX, "", "" },
	{ "a@@b.c", RFC5322ADDR_SYNTAX, "", "" },
	{ "a@b..c", RFC5322ADDR_SYNTAX, "", "" },
	{ "a@.b", RFC5322ADDR_SYNTAX, "", "" },
	{ "@b.c", RFC5322ADDR_SYNTAX, "", "" },
	{ "a@", RFC5322ADDR_SYNTAX, "", "" },
	{ "a@b c", RFC5322ADDR_SYNTAX, "", "" },
	{ "a>b@c", RFC5322ADDR_SYNTAX, "", "" },
	{ "Пётр <petr@пример.рф>", RFC5322ADDR_OK, "petr@пример.рф", "Пётр" },
	{ "user.name+tag@sub.example.com", RFC5322ADDR_OK,
	    "user.name+tag@sub.example.com", "" },
};

static void
t_first(void)
{
	struct rfc5322addr	r;
	enum rfc5322addr_status st;
	size_t			i;

	for (i = 0; i < sizeof(first_cases) / sizeof(first_cases[0]); i++) {
		const struct acase *c = &first_cases[i];

		st = rfc5322addr_first(c->in, strlen(c->in), &r);
		if (!t_ok(st == c->st, "[%s] status %s", c->in,
			rfc5322addr_status_name(st)))
			t_diag("want %s", rfc5322addr_status_name(c->st));
		if (c->st == RFC5322ADDR_OK) {
			t_str_eq(r.ra_addr, c->addr, c->in);
			if (c->name[0] != '\0')
				t_str_eq(r.ra_name, c->name, c->in);
		}
	}
}

static void
t_iterate(void)
{
	const char *v =
	    "A <a@x.y>, \"B\" <b@x.y>, grp: c@x.y, d@x.y;, e@x.y (E)";
	const char *want[] = { "a@x.y", "b@x.y", "c@x.y", "d@x.y", "e@x.y" };
	struct rfc5322addr r;
	size_t		   pos = 0, n = 0;

	while (rfc5322addr_next(v, strlen(v), &pos, &r) == RFC5322ADDR_OK) {
		if (n < 5)
			t_str_eq(r.ra_addr, want[n], "list element");
		n++;
	}
	t_int_eq((long long)n, 5, "five mailboxes");
}

static void
t_limits(void)
{
	char		   big[2048];
	struct rfc5322addr r;

	memset(big, 'a', sizeof(big));
	memcpy(big + 1500, "@example.com", 12);
	t_ok(rfc5322addr_first(big, 1512, &r) == RFC5322ADDR_TOOLONG,
	    "address too long");
	memset(big, 'n', 1000);
	memcpy(big + 1000, " <a@b.c>", 8);
	t_ok(rfc5322addr_first(big, 1008, &r) == RFC5322ADDR_OK &&
		strlen(r.ra_name) == RFC5322ADDR_NAME_MAX - 1,
	    "long display name cut");
	t_ok(rfc5322addr_first("a\0b@c.d", 7, &r) != RFC5322ADDR_OK,
	    "NUL refused");
}

/* From: read strictly: every mailbox, "st:addr" joined by '|'. */
static const struct {
	const char *in;
	const char *want;
} strict_cases[] = {
	{ "ok@approved.test", "ok:ok@approved.test|end" },
	{ "Boss <ok@approved.test>", "ok:ok@approved.test|end" },
	{ "\"Boss, Big\" <ok@approved.test> (the boss)",
	    "ok:ok@approved.test|end" },
	{ "J. Smith <js@x.y>", "ok:js@x.y|end" },
	{ "=?utf-8?Q?a?= <a@x.y>", "ok:a@x.y|end" },
	{ "ok@approved.test, ceo@victim.test",
	    "ok:ok@approved.test|ok:ceo@victim.test|end" },
	{ "A <a@x.y>, B <b@x.y>", "ok:a@x.y|ok:b@x.y|end" },
	{ "<ok@approved.test> ceo@victim.test", "junk" },
	{ "Boss <ok@approved.test> <ceo@victim.test>", "junk" },
	{ "<ok@approved.test> (comment) junk", "junk" },
	{ "<ok@approved.test>>", "junk" },
	{ "ceo@victim.test <ok@approved.test>", "junk" },
	{ "John john@x.y", "junk" },
	{ "Group: a@x.y, b@x.y;", "junk" },
	{ "undisclosed-recipients:;", "junk" },
	{ "ok@approved.test ceo@victim.test", "syntax" },
	{ "john", "noaddr:|end" },
	{ "john, ok@x.y", "noaddr:|ok:ok@x.y|end" },
	{ "<ok@x.y", "syntax" },
	{ "", "end" },
};

static void
t_strict(void)
{
	struct rfc5322addr	r;
	enum rfc5322addr_status st;
	char			got[2048];
	size_t			i, pos, n, o;

	for (i = 0; i < sizeof(strict_cases) / sizeof(strict_cases[0]); i++) {
		const char *in = strict_cases[i].in;

		got[0] = '\0';
		for (pos = 0, n = 0; n < 10; n++) {
			st = rfc5322addr_next_strict(in, strlen(in), &pos, &r);
			o = strlen(got);
			if (st == RFC5322ADDR_OK || st == RFC5322ADDR_NOADDR) {
				if (snprintf(got + o, sizeof(got) - o, "%s:%s|",
					rfc5322addr_status_name(st),
					r.ra_addr) >= (int)(sizeof(got) - o))
					break;
				continue;
			}
			if (snprintf(got + o, sizeof(got) - o, "%s",
				rfc5322addr_status_name(st)) >=
			    (int)(sizeof(got) - o))
				break;
			t_ok(st == RFC5322ADDR_END || pos == strlen(in),
			    "[%s] stops at the end after %s", in, got);
			break;
		}
		t_str_eq(got, strict_cases[i].want, in);
	}
}

/* The lenient reading (To:, sendmail -t) is unchanged by the strict one. */
static void
t_lenient_unchanged(void)
{
	struct rfc5322addr r;

	t_ok(rfc5322addr_first("<a@x.y> junk", 12, &r) == RFC5322ADDR_OK &&
		strcmp(r.ra_addr, "a@x.y") == 0,
	    "lenient: junk after '>' skipped");
	t_ok(rfc5322addr_first("b@x.y <a@x.y>", 13, &r) == RFC5322ADDR_OK &&
		strcmp(r.ra_addr, "a@x.y") == 0,
	    "lenient: address as a name");
}

int
main(void)
{
	static const struct t_case tc[] = {
		{ "first address", t_first },
		{ "iterate a list", t_iterate },
		{ "limits", t_limits },
		{ "strict From: reading", t_strict },
		{ "lenient reading unchanged", t_lenient_unchanged },
	};

	return T_RUN(tc);
}
