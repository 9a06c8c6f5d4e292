#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cidr.h"

int
cidr_parse(const char *s, struct cidr *r)
{
	char	    a[INET6_ADDRSTRLEN + 1];
	const char *slash;
	char	   *end;
	long	    bits;
	unsigned    maxbits, i;

	memset(r, 0, sizeof(*r));
	slash = strchr(s, '/');
	if (str_ncopy(a, sizeof(a), s,
		slash ? (size_t)(slash - s) : strlen(s)) == -1)
		return -1;
	if (inet_pton(AF_INET, a, r->addr) == 1) {
		r->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, a, r->addr) == 1) {
		r->family = AF_INET6;
		maxbits = 128;
	} else
		return -1;
	bits = maxbits;
	if (slash != NULL) {
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		errno = 0;
		bits = strtol(slash + 1, &end, 10);
		if (errno != 0 || end == slash + 1 || *end != '\0' ||
		    bits < 0 || bits > (long)maxbits)
			return -1;
	}
	r->prefix = (uint8_t)bits;
	for (i = 0; i < maxbits; i++)
		if (i >= (unsigned)bits)
			r->addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	return 0;
}

void
cidr_format(const struct cidr *c, char *dst, size_t dstsz)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		(void)str_copy(a, sizeof(a), "?");
	(void)snprintf(dst, dstsz, "%s/%u", a, c->prefix);
}

static bool
cidr_match_bytes(const struct cidr *c, int family, const uint8_t *addr)
{
	unsigned i;

	if (family != c->family)
		return false;
	for (i = 0; i < c->prefix; i++) {
		uint8_t m = (uint8_t)(0x80u >> (i % 8));
		if ((addr[i / 8] & m) != (c->addr[i / 8] & m))
			return false;
	}
	return true;
}

bool
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const struct sockaddr_in  *s4;
	const struct sockaddr_in6 *s6;
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
		0xff };

	if (sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)(const void *)sa;
		return cidr_match_bytes(c, AF_INET,
		    (const uint8_t *)&s4->sin_addr);
	}
	if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (c->family == AF_INET &&
		    memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0)
			return cidr_match_bytes(c, AF_INET,
			    s6->sin6_addr.s6_addr + 12);
		return cidr_match_bytes(c, AF_INET6, s6->sin6_addr.s6_addr);
	}
	return false;
}

bool
cidr_match_str(const struct cidr *c, const char *addr)
{
	struct sockaddr_in  s4;
	struct sockaddr_in6 s6;

	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		return cidr_match(c, (struct sockaddr *)&s4);
	}
	if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
		s6.sin6_family = AF_INET6;
		return cidr_match(c, (struct sockaddr *)&s6);
	}
	return false;
}
