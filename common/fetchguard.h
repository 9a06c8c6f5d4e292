/*
 * fetchguard: where an HTTP fetch that outside data drives may connect
 * (MTA-STS policy hosts from the recipient domain's DNS, TLS-RPT rua
 * https URIs from its TXT record). A hostile domain must not make the
 * relay talk to itself or to its private network (SSRF): loopback,
 * unspecified, RFC 1918, shared (RFC 6598), link-local (169.254/16, the
 * cloud metadata address), unique-local, multicast and reserved
 * addresses are refused unless one of the allow_fetch_to ranges holds
 * them. IPv4-mapped and NAT64 (64:ff9b::/96) addresses count as the IPv4
 * address they carry. The check runs on the address libcurl is about to
 * connect to (CURLOPT_OPENSOCKETFUNCTION), so a name that resolves
 * differently later (DNS rebinding) gains nothing. Through a proxy it is
 * the proxy's address that is checked. No logging: the caller logs why.
 */
#ifndef SG_FETCHGUARD_H
#define SG_FETCHGUARD_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cidr.h"

struct conf_list;

struct fetchguard {
	struct cidr *fg_allow; /* allow_fetch_to */
	size_t	     fg_nallow;
	int	     fg_refused;  /* connections refused so far */
	char	     fg_why[160]; /* the last refusal */
};

/* The kind of an address a fetch may not reach ("loopback", ...), or
 * NULL for a public one. */
const char *fetchguard_kind(const struct sockaddr *);
/* 0 when sa may be connected to; -1 with why ("127.0.0.1 is a loopback
 * address (allow_fetch_to)"). */
int fetchguard_check(const struct fetchguard *, const struct sockaddr *,
    char *why, size_t whysz);
/* g for the allow_fetch_to ranges (checked by conf_load: all parse);
 * fetchguard_free() releases them. */
void fetchguard_init(struct fetchguard *, const struct conf_list *allow);
void fetchguard_free(struct fetchguard *);
/* Installs the check on a libcurl easy handle (CURL *); g must outlive
 * the transfer. After a failed transfer, g->fg_refused > 0 says why. */
void fetchguard_curl(void *curl, struct fetchguard *g);
#endif
