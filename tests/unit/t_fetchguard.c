/* Unit tests for common/fetchguard: which addresses an outside-driven
 * fetch may reach. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "fetchguard.h"
#include "log.h"
#include "tap.h"

static const struct {
	const char *addr, *kind; /* kind NULL: public */
} addrs[] = {
	{ "127.0.0.1", "loopback" },
	{ "127.255.0.9", "loopback" },
	{ "0.0.0.0", "unspecified" },
	{ "10.1.2.3", "private (RFC 1918)" },
	{ "172.16.0.1", "private (RFC 1918)" },
	{ "172.31.255.255", "private (RFC 1918)" },
	{ "172.32.0.1", NULL },
	{ "192.168.1.1", "private (RFC 1918)" },
	{ "169.254.169.254", "link-local" },
	{ "100.64.0.1", "shared (RFC 6598)" },
	{ "224.0.0.1", "multicast" },
	{ "255.255.255.255", "reserved" },
	{ "198.18.0.1", "benchmarking" },
	{ "192.0.2.1", NULL },
	{ "8.8.8.8", NULL },
	{ "::1", "loopback" },
	{ "::", "unspecified" },
	{ "fe80::1", "link-local" },
	{ "fd00::1", "unique-local" },
	{ "ff02::1", "multicast" },
	{ "::ffff:127.0.0.1", "loopback" },
	{ "::ffff:169.254.169.254", "link-local" },
	{ "::ffff:8.8.8.8", NULL },
	{ "64:ff9b::a9fe:a9fe", "link-local" }, /* NAT64 169.254.169.254 */
	{ "64:ff9b::808:808", NULL },
	{ "2001:db8::1", NULL },
};

static socklen_t
sa_of(const char *a, struct sockaddr_storage *ss)
{
	struct sockaddr_in  *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return sizeof(*s6);
	}
	return 0;
}

static void
t_kinds(void)
{
	struct sockaddr_storage ss;
	const char	       *k;
	size_t			i;

	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		if (!t_ok(sa_of(addrs[i].addr, &ss) != 0, "parse %s",
			addrs[i].addr))
			continue;
		k = fetchguard_kind((struct sockaddr *)&ss);
		if (addrs[i].kind == NULL)
			t_ok(k == NULL, "%s is public (got %s)", addrs[i].addr,
			    k ? k : "");
		else
			t_str_eq(k ? k : "(public)", addrs[i].kind,
			    addrs[i].addr);
	}
}

static void
t_allow(void)
{
	char		       *v[] = { "127.0.0.0/8", "10.9.0.0/16" };
	struct conf_list	l = { v, 2 };
	struct fetchguard	g;
	struct sockaddr_storage ss;
	char			why[200];

	fetchguard_init(&g, &l);
	(void)sa_of("127.0.0.1", &ss);
	t_ok(fetchguard_check(&g, (struct sockaddr *)&ss, why, sizeof(why)) ==
		0,
	    "allowed loopback");
	(void)sa_of("::ffff:10.9.1.1", &ss);
	t_ok(fetchguard_check(&g, (struct sockaddr *)&ss, why, sizeof(why)) ==
		0,
	    "allowed range, v4-mapped");
	(void)sa_of("10.8.1.1", &ss);
	t_ok(fetchguard_check(&g, (struct sockaddr *)&ss, why, sizeof(why)) ==
		-1,
	    "10.8.1.1 outside the allowed range");
	t_str_eq(why,
	    "10.8.1.1 is a private (RFC 1918) address (allow_fetch_to)", "why");
	(void)sa_of("169.254.169.254", &ss);
	t_ok(fetchguard_check(&g, (struct sockaddr *)&ss, why, sizeof(why)) ==
		-1,
	    "metadata address refused");
	(void)sa_of("203.0.113.5", &ss);
	t_ok(fetchguard_check(&g, (struct sockaddr *)&ss, why, sizeof(why)) ==
		0,
	    "public address");
	fetchguard_free(&g);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "kinds", t_kinds },
		{ "allow", t_allow },
	};

	log_init("t_fetchguard", LOG_DEST_STDERR);
	return T_RUN(cases);
}
