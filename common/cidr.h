/*
 * cidr: IPv4/IPv6 network ranges ("192.0.2.0/24", "2001:db8::/32", or a
 * bare address = /32 or /128). Pure; no allocation. IPv4-mapped IPv6
 * client addresses (::ffff:a.b.c.d) match IPv4 ranges.
 */
#ifndef SG_CIDR_H
#define SG_CIDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	uint8_t family;	  /* AF_INET or AF_INET6 */
	uint8_t prefix;	  /* bits */
	uint8_t addr[16]; /* network order; IPv4 in the first 4 bytes */
};

/* 0, or -1 if the text is not a range (host bits set are cleared). */
int cidr_parse(const char *, struct cidr *r);
/* Canonical text ("192.0.2.0/24"); dst at least 64 bytes. */
void cidr_format(const struct cidr *, char *dst, size_t dstsz);
bool cidr_match(const struct cidr *, const struct sockaddr *);
/* Match against a numeric address string. */
bool cidr_match_str(const struct cidr *, const char *addr);

#endif
