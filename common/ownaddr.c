/*
 * ownaddr: the gateway's own addresses and the internal ranges (see
 * ownaddr.h).
 */
#include "config.h"

#include <sys/types.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "ownaddr.h"
#include "xmem.h"

#define OWNADDR_MAX 4096 /* interfaces are few; a bound all the same */

static void
ownaddr_push(struct ownaddr *oa, const struct cidr *c)
{
	size_t i;

	for (i = 0; i < oa->oa_n; i++)
		if (memcmp(&oa->oa_v[i], c, sizeof(*c)) == 0)
			return;
	if (oa->oa_n >= OWNADDR_MAX)
		return;
	oa->oa_v = xreallocarray(oa->oa_v, oa->oa_n + 1, sizeof(*c));
	oa->oa_v[oa->oa_n++] = *c;
}

int
ownaddr_add(struct ownaddr *oa, const char *addr)
{
	struct cidr c;

	if (strchr(addr, '/') != NULL || cidr_parse(addr, &c) == -1)
		return -1;
	ownaddr_push(oa, &c);
	return 0;
}

static void
ownaddr_add_sa(struct ownaddr *oa, const struct sockaddr *sa)
{
	struct cidr c;

	memset(&c, 0, sizeof(c));
	if (sa->sa_family == AF_INET) {
		c.family = AF_INET;
		c.prefix = 32;
		memcpy(c.addr,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    4);
	} else if (sa->sa_family == AF_INET6) {
		c.family = AF_INET6;
		c.prefix = 128;
		memcpy(c.addr,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    16);
	} else
		return;
	ownaddr_push(oa, &c);
}

static bool
ownaddr_wildcard(const char *a)
{
	return strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0 ||
	    strcmp(a, "*") == 0 || a[0] == '\0';
}

int
ownaddr_load(struct ownaddr *oa, const struct conf_listen *l, size_t n,
    char *err, size_t errsz)
{
	struct ifaddrs *ifa, *p;
	bool		wild = false;
	size_t		i;

	memset(oa, 0, sizeof(*oa));
	for (i = 0; i < n; i++) {
		if (ownaddr_wildcard(l[i].cl_addr))
			wild = true;
		else
			(void)ownaddr_add(oa, l[i].cl_addr);
	}
	if (!wild)
		return 0;
	if (getifaddrs(&ifa) == -1) {
		(void)snprintf(err, errsz, "getifaddrs: %s", strerror(errno));
		return -1;
	}
	for (p = ifa; p != NULL; p = p->ifa_next)
		if (p->ifa_addr != NULL)
			ownaddr_add_sa(oa, p->ifa_addr);
	freeifaddrs(ifa);
	return 0;
}

void
ownaddr_free(struct ownaddr *oa)
{
	if (oa == NULL)
		return;
	free(oa->oa_v);
	oa->oa_v = NULL;
	oa->oa_n = 0;
}

bool
ownaddr_in(const struct cidr *v, size_t n, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cidr_match(&v[i], sa))
			return true;
	return false;
}

/* 127/8 and 0/8 for IPv4 (also mapped), ::1 and :: for IPv6. */
static enum ownaddr_kind
ownaddr_fixed(const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
		0xff };
	static const uint8_t zero[16];
	const uint8_t	    *a;

	if (sa->sa_family == AF_INET)
		a = (const uint8_t *)&(
		    (const struct sockaddr_in *)(const void *)sa)
			->sin_addr;
	else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)
			->sin6_addr.s6_addr;
		if (memcmp(a, mapped, 12) != 0) {
			if (memcmp(a, zero, 16) == 0)
				return OWNADDR_UNSPEC;
			if (memcmp(a, zero, 15) == 0 && a[15] == 1)
				return OWNADDR_LOOPBACK;
			return OWNADDR_REMOTE;
		}
		a += 12;
	} else
		return OWNADDR_REMOTE;
	if (a[0] == 127)
		return OWNADDR_LOOPBACK;
	if (a[0] == 0)
		return OWNADDR_UNSPEC;
	return OWNADDR_REMOTE;
}

enum ownaddr_kind
ownaddr_classify(const struct ownaddr *oa, const struct sockaddr *sa)
{
	enum ownaddr_kind k = ownaddr_fixed(sa);

	if (k != OWNADDR_REMOTE)
		return k;
	return ownaddr_in(oa->oa_v, oa->oa_n, sa) ? OWNADDR_SELF
						  : OWNADDR_REMOTE;
}

enum ownaddr_kind
ownaddr_classify_str(const struct ownaddr *oa, const char *addr)
{
	struct sockaddr_storage ss;
	struct sockaddr_in     *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6    *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		return OWNADDR_REMOTE;
	return ownaddr_classify(oa, (struct sockaddr *)&ss);
}

bool
ownaddr_pin_ok(const struct ownaddr *oa, const char *addr)
{
	enum ownaddr_kind k = ownaddr_classify_str(oa, addr);

	return k == OWNADDR_REMOTE || k == OWNADDR_LOOPBACK;
}
