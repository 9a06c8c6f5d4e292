/*
 * ownaddr: the gateway's own network addresses, for the mail-loop checks
 * (issue 14). The set holds the listen addresses, and every interface
 * address (getifaddrs) when a listener binds the wildcard (0.0.0.0, ::).
 * Loopback (127/8, ::1) and unspecified (0/8, ::) addresses are internal
 * whatever the set holds. IPv4-mapped IPv6 addresses count as IPv4.
 * ownaddr_load() allocates the set; ownaddr_free() releases it (NULL-safe).
 * No logging: ownaddr_load() reports trouble in err and keeps what it has.
 */
#ifndef SG_OWNADDR_H
#define SG_OWNADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cidr.h"

struct conf_listen;

struct ownaddr {
	struct cidr *oa_v; /* single addresses (/32, /128) */
	size_t	     oa_n;
};

enum ownaddr_kind {
	OWNADDR_REMOTE,	  /* someone else */
	OWNADDR_LOOPBACK, /* 127/8, ::1 */
	OWNADDR_UNSPEC,	  /* 0/8, :: */
	OWNADDR_SELF	  /* one of the set */
};

/* The set for these listeners. 0, or -1 with err when getifaddrs failed
 * (the listen addresses are in the set all the same). */
int ownaddr_load(struct ownaddr *, const struct conf_listen *, size_t n,
    char *err, size_t errsz);
/* Adds one address (a numeric string); -1 if it is none. */
int		  ownaddr_add(struct ownaddr *, const char *addr);
void		  ownaddr_free(struct ownaddr *);
enum ownaddr_kind ownaddr_classify(const struct ownaddr *,
    const struct sockaddr *);
enum ownaddr_kind ownaddr_classify_str(const struct ownaddr *,
    const char *addr);
/* True when addr lies in one of the n ranges. */
bool ownaddr_in(const struct cidr *v, size_t n, const struct sockaddr *);
/*
 * May an account pinned by IP (--ip) match a client at addr? Not when addr
 * is one of the gateway's own non-loopback addresses: such a connection is
 * the gateway talking to itself (a next hop that points back, hairpin NAT),
 * and a pinned range that happens to cover the host must not sign and
 * relay it as that account. Loopback stays allowed: only local processes
 * reach it, and deliverd never delivers there unless allow_next_hop says.
 */
bool ownaddr_pin_ok(const struct ownaddr *, const char *addr);

#endif
