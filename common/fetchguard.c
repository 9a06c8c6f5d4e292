/*
 * fetchguard (fetchguard.h): the address ranges an outside-driven fetch
 * may not reach, and the libcurl hook that refuses them before connect.
 */
#include "config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fetchguard.h"
#include "xmem.h"

static const struct {
	const char *range, *kind;
} fetchguard_blocked[] = {
	{ "0.0.0.0/8", "unspecified" },
	{ "10.0.0.0/8", "private (RFC 1918)" },
	{ "100.64.0.0/10", "shared (RFC 6598)" },
	{ "127.0.0.0/8", "loopback" },
	{ "169.254.0.0/16", "link-local" },
	{ "172.16.0.0/12", "private (RFC 1918)" },
	{ "192.0.0.0/24", "IETF protocol" },
	{ "192.168.0.0/16", "private (RFC 1918)" },
	{ "198.18.0.0/15", "benchmarking" },
	{ "224.0.0.0/4", "multicast" },
	{ "240.0.0.0/4", "reserved" },
	{ "::/128", "unspecified" },
	{ "::1/128", "loopback" },
	{ "fc00::/7", "unique-local" },
	{ "fe80::/10", "link-local" },
	{ "fec0::/10", "site-local" },
	{ "ff00::/8", "multicast" },
};

/* 64:ff9b::a.b.c.d (RFC 6052) as the IPv4 address it carries */
static const struct sockaddr *
fetchguard_unwrap(const struct sockaddr *sa, struct sockaddr_in *s4)
{
	static const uint8_t	   nat64[12] = { 0, 0x64, 0xff, 0x9b };
	const struct sockaddr_in6 *s6;

	if (sa->sa_family != AF_INET6)
		return sa;
	s6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (memcmp(s6->sin6_addr.s6_addr, nat64, sizeof(nat64)) != 0)
		return sa;
	memset(s4, 0, sizeof(*s4));
	s4->sin_family = AF_INET;
	memcpy(&s4->sin_addr, s6->sin6_addr.s6_addr + 12, 4);
	return (const struct sockaddr *)s4;
}

const char *
fetchguard_kind(const struct sockaddr *sa)
{
	struct sockaddr_in s4;
	struct cidr	   c;
	size_t		   i;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return "not an internet address";
	sa = fetchguard_unwrap(sa, &s4);
	for (i = 0;
	     i < sizeof(fetchguard_blocked) / sizeof(fetchguard_blocked[0]);
	     i++)
		if (cidr_parse(fetchguard_blocked[i].range, &c) == 0 &&
		    cidr_match(&c, sa))
			return fetchguard_blocked[i].kind;
	return NULL;
}

static void
fetchguard_addr(const struct sockaddr *sa, char *dst, size_t dstsz)
{
	const void *p = sa->sa_family == AF_INET
	    ? (const void *)&((const struct sockaddr_in *)(const void *)sa)
		  ->sin_addr
	    : (const void *)&((const struct sockaddr_in6 *)(const void *)sa)
		  ->sin6_addr;

	if (inet_ntop(sa->sa_family, p, dst, (socklen_t)dstsz) == NULL)
		(void)snprintf(dst, dstsz, "?");
}

int
fetchguard_check(const struct fetchguard *g, const struct sockaddr *sa,
    char *why, size_t whysz)
{
	struct sockaddr_in s4;
	const char	  *kind;
	char		   a[INET6_ADDRSTRLEN];
	size_t		   i;

	if ((kind = fetchguard_kind(sa)) == NULL)
		return 0;
	for (i = 0; i < g->fg_nallow; i++)
		if (cidr_match(&g->fg_allow[i], sa) ||
		    cidr_match(&g->fg_allow[i], fetchguard_unwrap(sa, &s4)))
			return 0;
	fetchguard_addr(sa, a, sizeof(a));
	(void)snprintf(why, whysz, "%s is a %s address (allow_fetch_to)", a,
	    kind);
	return -1;
}

void
fetchguard_init(struct fetchguard *g, const struct conf_list *allow)
{
	size_t i;

	memset(g, 0, sizeof(*g));
	g->fg_allow = xcalloc(allow->n + 1, sizeof(*g->fg_allow));
	for (i = 0; i < allow->n; i++)
		if (cidr_parse(allow->v[i], &g->fg_allow[g->fg_nallow]) == 0)
			g->fg_nallow++;
}

void
fetchguard_free(struct fetchguard *g)
{
	free(g->fg_allow);
	g->fg_allow = NULL;
	g->fg_nallow = 0;
}

static curl_socket_t
fetchguard_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct fetchguard *g = arg;

	(void)purpose;
	if (fetchguard_check(g, &a->addr, g->fg_why, sizeof(g->fg_why)) == -1) {
		g->fg_refused++;
		return CURL_SOCKET_BAD; /* libcurl tries the next address */
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

void
fetchguard_curl(void *curl, struct fetchguard *g)
{
	(void)curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION,
	    fetchguard_open);
	(void)curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, g);
}
