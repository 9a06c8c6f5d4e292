/*
 * Routing for the delivery worker: a job's next hops as connection
 * candidates — the relayhost, an address literal, or the MX hosts in
 * preference order with their addresses — minus those that are this host
 * (a loop), unless allow_next_hop lets them through.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliverd_worker.h"
#include "log.h"
#include "xmem.h"

size_t
deliverd_worker_relay_cands(struct worker *w, struct deliverd_worker_cand *c,
    size_t max, char *reply, size_t replysz)
{
	char		host[256], port[8];
	struct addrinfo hints, *res, *ai;
	size_t		n = 0;
	int		rc;

	if (conf_split_hostport(w->dw_cf->cf_relayhost, host, sizeof(host),
		port, sizeof(port), "25") == -1) {
		(void)snprintf(reply, replysz, "451 4.3.5 bad relayhost %s",
		    w->dw_cf->cf_relayhost);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		(void)snprintf(reply, replysz, "451 4.4.3 relayhost %s: %s",
		    host, gai_strerror(rc));
		return 0;
	}
	for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(c[n].ss))
			continue;
		memset(&c[n], 0, sizeof(c[n]));
		memcpy(&c[n].ss, ai->ai_addr, ai->ai_addrlen);
		(void)str_copy(c[n].host, sizeof(c[n].host), host);
		n++;
	}
	freeaddrinfo(res);
	return n;
}

/*
 * An address literal ("[192.0.2.7]", "[IPv6:2001:db8::1]"): no MX lookup
 * (RFC 5321 section 5.1), that address on remote_port. 1, or 0 with a
 * bounce in reply for a literal that is no address.
 */
static size_t
deliverd_worker_literal_cand(struct worker *w, const char *dom,
    struct deliverd_worker_cand *c, char *reply, size_t replysz)
{
	char		     lit[SPOOL_DOMAIN_MAX];
	size_t		     n = strlen(dom);
	struct sockaddr_in  *sin = (struct sockaddr_in *)&c->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->ss;
	uint16_t	     port = htons((uint16_t)w->dw_cf->cf_remote_port);

	memset(c, 0, sizeof(*c));
	if (n < 3 || dom[n - 1] != ']' || n - 2 >= sizeof(lit))
		goto bad;
	memcpy(lit, dom + 1, n - 2);
	lit[n - 2] = '\0';
	if (strncasecmp(lit, "ipv6:", 5) == 0) {
		if (inet_pton(AF_INET6, lit + 5, &sin6->sin6_addr) != 1)
			goto bad;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		(void)str_copy(c->host, sizeof(c->host), lit + 5);
	} else {
		if (inet_pton(AF_INET, lit, &sin->sin_addr) != 1)
			goto bad;
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		(void)str_copy(c->host, sizeof(c->host), lit);
	}
	return 1;
bad:
	(void)snprintf(reply, replysz, "550 5.1.2 Bad address literal %s", dom);
	return 0;
}

/* 0 with candidates, else every recipient's reply is in reply. */
size_t
deliverd_worker_mx_cands(struct worker *w, const char *domain,
    struct deliverd_worker_cand *c, size_t max, char *reply, size_t replysz)
{
	struct dns_mx		mx[DNS_MX_MAX];
	struct sockaddr_storage ss[DNS_ADDR_MAX];
	size_t			nmx, na, i, j, n = 0;
	char			err[512] = "";
	enum dns_status		st;
	bool			mxsec;

	if (domain[0] == '[')
		return max > 0
		    ? deliverd_worker_literal_cand(w, domain, c, reply, replysz)
		    : 0;
	st = dns_mx(w->dw_dns, domain, mx, DNS_MX_MAX, &nmx, err, sizeof(err));
	mxsec = dns_secure(w->dw_dns);
	switch (st) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
		(void)snprintf(reply, replysz,
		    "550 5.1.2 Host or domain name not found: "
		    "%s (NXDOMAIN)",
		    domain);
		return 0;
	case DNS_NULLMX:
		(void)snprintf(reply, replysz,
		    "556 5.1.10 Domain %s does not accept "
		    "mail (null MX)",
		    domain);
		return 0;
	case DNS_NOHOST:
		(void)snprintf(reply, replysz,
		    "550 5.1.2 Domain %s has no MX or "
		    "address records",
		    domain);
		return 0;
	default:
		(void)snprintf(reply, replysz,
		    "451 4.4.3 DNS lookup failed: %s", err);
		return 0;
	}
	for (i = 0; i < nmx && n < max; i++) {
		st = dns_addrs(w->dw_dns, mx[i].mx_host,
		    (unsigned)w->dw_cf->cf_remote_port, ss, DNS_ADDR_MAX, &na,
		    err, sizeof(err));
		for (j = 0; st == DNS_OK && j < na && n < max; j++, n++) {
			(void)str_copy(c[n].host, sizeof(c[n].host),
			    mx[i].mx_host);
			c[n].ss = ss[j];
			c[n].secure = mxsec && dns_secure(w->dw_dns);
		}
	}
	if (n == 0)
		(void)snprintf(reply, replysz,
		    "451 4.4.3 No address for the MX hosts "
		    "of %s: %s",
		    domain, err);
	return n;
}

/*
 * Mail loops (issue 14): MX hosts and address literals that are loopback,
 * unspecified or one of the gateway's own addresses are skipped unless
 * allow_next_hop lists them; the others keep their order. When a
 * non-empty set loses every host, reply says the mail loops back (a
 * bounce, as Postfix's "mail for DOMAIN loops back to myself").
 */
size_t
deliverd_worker_no_loops(struct worker *w, const char *qid, const char *domain,
    struct deliverd_worker_cand *c, size_t n, char *reply, size_t replysz)
{
	const struct sockaddr *sa;
	char		       a[INET6_ADDRSTRLEN] = "?";
	size_t		       i, k = 0;

	for (i = 0; i < n; i++) {
		sa = (const struct sockaddr *)&c[i].ss;
		if (ownaddr_classify(&w->dw_own, sa) == OWNADDR_REMOTE ||
		    ownaddr_in(w->dw_allow, w->dw_nallow, sa)) {
			if (k != i)
				c[k] = c[i];
			k++;
			continue;
		}
		(void)inet_ntop(sa->sa_family,
		    sa->sa_family == AF_INET6
			? (const void *)&(
			      (const struct sockaddr_in6 *)(const void *)sa)
			      ->sin6_addr
			: (const void *)&(
			      (const struct sockaddr_in *)(const void *)sa)
			      ->sin_addr,
		    a, sizeof(a));
		log_info("%s: next hop %s[%s] skipped: it is this host "
			 "(loopback, unspecified or own address; see "
			 "allow_next_hop)",
		    qid, c[i].host, a);
	}
	if (n > 0 && k == 0)
		(void)snprintf(reply, replysz,
		    "554 5.4.6 mail for %s loops back "
		    "to myself",
		    domain);
	return k;
}
