/* Unit tests for common/rfc5322addr: a table of From:/To: values. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "rfc5322addr.h"
#include "tap.h"

struct acase {
	const char		*in;
	enum rfc5322addr_status	 st;
	const char		*addr;
	const char		*name;
};

static const struct acase first_cases[] = {
	{ "user@example.com", RFC5322ADDR_OK, "user@example.com", "" },
	{ "User Name <user@example.com>", RFC5322ADDR_OK, "user@example.com", "User Name" },
	{ "\"Name, Jr.\" <user@example.com>", RFC5322ADDR_OK, "user@example.com", "Name, Jr." },
	{ "\"a \\\"q\\\" b\" <u@x.org>", RFC5322ADDR_OK, "u@x.org", "a \"q\" b" },
	{ "user@example.com (Comment (nested))", RFC5322ADDR_OK, "user@example.com", "" },
	{ "(c) user (c) @ (c) example (c) . com (c)", RFC5322ADDR_OK, "user@example.com", "" },
	{ "<user@example.com>", RFC5322ADDR_OK, "user@example.com", "" },
	{ "  < user @ example.com >  ", RFC5322ADDR_OK, "user@example.com", "" },
	{ "<@route1,@route2:user@example.com>", RFC5322ADDR_OK, "user@example.com", "" },
	{ "\"john doe\"@example.com", RFC5322ADDR_OK, "\"john doe\"@example.com", "" },
	{ "user@[192.0.2.1]", RFC5322ADDR_OK, "user@[192.0.2.1]", "" },
	{ "J. Smith <js@example.com>", RFC5322ADDR_OK, "js@example.com", "J. Smith" },
	{ "=?UTF-8?B?0JjQstCw0L0=?= <ivan@example.ru>", RFC5322ADDR_OK, "ivan@example.ru",
	  "\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd" },
	{ "=?utf-8?Q?Caf=C3=A9_Bar?= <cafe@example.fr>", RFC5322ADDR_OK, "cafe@example.fr",
	  "Caf\xc3\xa9 Bar" },
	{ "=?iso-8859-1?q?Andr=E9?= <a@example.fr>", RFC5322ADDR_OK, "a@example.fr",
	  "Andr\xc3\xa9" },
	{ "=?utf-8?Q?a?= =?utf-8?Q?b?= <ab@x.y>", RFC5322ADDR_OK, "ab@x.y", "ab" },
	{ "=?utf-8?Q?who@where.com?= <real@x.y>", RFC5322ADDR_OK, "real@x.y", "who@where.com" },
	{ "=?koi8-r?B?8NLJ18XU?= <k@x.y>", RFC5322ADDR_OK, "k@x.y", "=?koi8-r?B?8NLJ18XU?=" },
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
	{ "user.name+tag@sub.example.com", RFC5322ADDR_OK, "user.name+tag@sub.example.com", "" },
};

static void
t_first(void)
{
	struct rfc5322addr	 r;
	enum rfc5322addr_status	 st;
	size_t			 i;

	for (i = 0; i < sizeof(first_cases) / sizeof(first_cases[0]); i++) {
		const struct acase *c = &first_cases[i];

		st = rfc5322addr_first(c->in, strlen(c->in), &r);
		if (!t_ok(st == c->st, "[%s] status %s", c->in, rfc5322addr_status_name(st)))
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
	const char		*v = "A <a@x.y>, \"B\" <b@x.y>, grp: c@x.y, d@x.y;, e@x.y (E)";
	const char		*want[] = { "a@x.y", "b@x.y", "c@x.y", "d@x.y", "e@x.y" };
	struct rfc5322addr	 r;
	size_t			 pos = 0, n = 0;

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
	char			 big[2048];
	struct rfc5322addr	 r;

	memset(big, 'a', sizeof(big));
	memcpy(big + 1500, "@example.com", 12);
	t_ok(rfc5322addr_first(big, 1512, &r) == RFC5322ADDR_TOOLONG, "address too long");
	memset(big, 'n', 1000);
	memcpy(big + 1000, " <a@b.c>", 8);
	t_ok(rfc5322addr_first(big, 1008, &r) == RFC5322ADDR_OK &&
	    strlen(r.ra_name) == RFC5322ADDR_NAME_MAX - 1, "long display name cut");
	t_ok(rfc5322addr_first("a\0b@c.d", 7, &r) != RFC5322ADDR_OK, "NUL refused");
}

int
main(void)
{
	static const struct t_case tc[] = {
		{ "first address", t_first },
		{ "iterate a list", t_iterate },
		{ "limits", t_limits },
	};

	return T_RUN(tc);
}
