/* Unit tests for common/cidr. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "log.h"
#include "tap.h"

static const struct {
	const char *range, *canon, *in, *out;
} good[] = {
	{ "192.0.2.77/24", "192.0.2.0/24", "192.0.2.1", "192.0.3.1" },
	{ "127.0.0.1", "127.0.0.1/32", "127.0.0.1", "127.0.0.2" },
	{ "0.0.0.0/0", "0.0.0.0/0", "203.0.113.9", "::1" },
	{ "10.1.2.3/8", "10.0.0.0/8", "10.255.0.1", "11.0.0.0" },
	{ "192.0.2.128/25", "192.0.2.128/25", "192.0.2.200", "192.0.2.127" },
	{ "2001:db8::/32", "2001:db8::/32", "2001:db8:1::5", "2001:db9::1" },
	{ "::1", "::1/128", "::1", "::2" },
	{ "::/0", "::/0", "2001:db8::1", "192.0.2.1" },
	{ "2001:db8::ff/120", "2001:db8::/120", "2001:db8::1",
	    "2001:db8::100" },
	{ "192.0.2.0/24", "192.0.2.0/24", "::ffff:192.0.2.9",
	    "::ffff:192.0.3.9" },
};

static const char *bad[] = {
	"",
	"nonsense",
	"10.0.0.0/33",
	"10.0.0.0/",
	"10.0.0.0/-1",
	"10.0.0.0/8x",
	" 10.0.0.0/8",
	"/8",
	"10.0.0.0/+8",
	"10.0.0.0/ 8",
	"2001:db8::/129",
	"1.2.3",
	"1.2.3.4.5",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/8",
};

static void
t_table(void)
{
	struct cidr c;
	char	    s[64];
	size_t	    i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!t_ok(cidr_parse(good[i].range, &c) == 0, "parse %s",
			good[i].range))
			continue;
		cidr_format(&c, s, sizeof(s));
		t_str_eq(s, good[i].canon, good[i].range);
		t_ok(cidr_match_str(&c, good[i].in), "%s matches %s",
		    good[i].range, good[i].in);
		t_ok(!cidr_match_str(&c, good[i].out), "%s does not match %s",
		    good[i].range, good[i].out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		t_ok(cidr_parse(bad[i], &c) == -1, "refuses \"%s\"", bad[i]);
}

static void
t_sockaddr(void)
{
	struct cidr	    c;
	struct sockaddr_in  s4;
	struct sockaddr_in6 s6;

	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	s4.sin_family = AF_INET;
	(void)inet_pton(AF_INET, "198.51.100.7", &s4.sin_addr);
	s6.sin6_family = AF_INET6;
	(void)inet_pton(AF_INET6, "::ffff:198.51.100.7", &s6.sin6_addr);
	(void)cidr_parse("198.51.100.0/24", &c);
	t_ok(cidr_match(&c, (struct sockaddr *)&s4), "sockaddr_in");
	t_ok(cidr_match(&c, (struct sockaddr *)&s6), "v4-mapped sockaddr_in6");
	(void)cidr_parse("::/0", &c);
	t_ok(cidr_match(&c, (struct sockaddr *)&s6) &&
		!cidr_match(&c, (struct sockaddr *)&s4),
	    "v6 range vs v4 client");
	t_ok(!cidr_match_str(&c, "not an address"),
	    "garbage address never matches");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "table", t_table },
		{ "sockaddr", t_sockaddr },
	};

	log_init("t_cidr", LOG_DEST_STDERR);
	return T_RUN(cases);
}
