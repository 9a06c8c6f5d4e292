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

#include "deliverd_mtasts.h"
#include "deliverd_worker.h"
#include "log.h"
#include "xmem.h"

/*
 * relayhost_tls = dane: the relayhost's addresses from DNS (dns_server,
 * with their DNSSEC status for DANE, RFC 7672 2.2.2) rather than
 * getaddrinfo; deliverd refuses to start with an address as the relayhost.
 */
static size_t
deliverd_worker_relay_dns(struct worker *w, const char *host, const char *port,
    struct deliverd_worker_cand *c, size_t max, char *reply, size_t replysz)
{
	struct sockaddr_storage ss[DNS_ADDR_MAX];
	char			err[512] = "";
	unsigned		p = (unsigned)strtoul(port, NULL, 10);
	size_t			na = 0, n;
	enum dns_status		st;

	st = dns_addrs(w->dw_dns, host, p, ss, DNS_ADDR_MAX, &na, err,
	    sizeof(err));
	if (st != DNS_OK || na == 0) {
		(void)snprintf(reply, replysz, "451 4.4.3 relayhost %s: %s",
		    host, err[0] != '\0' ? err : "no address records");
		return 0;
	}
	for (n = 0; n < na && n < max; n++) {
		memset(&c[n], 0, sizeof(c[n]));
		c[n].ss = ss[n];
		c[n].secure = dns_secure(w->dw_dns);
		c[n].port = p;
		(void)str_copy(c[n].host, sizeof(c[n].host), host);
	}
	return n;
}

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
	if (w->dw_relay_dane) /* its address records' DNSSEC status */
		return deliverd_worker_relay_dns(w, host, port, c, max, reply,
		    replysz);
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
		(void)snprintf(reply, replysz, DELIVERD_DNS_TEMPFAIL_REPLY "%s",
		    err);
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
			c[n].port = (unsigned)w->dw_cf->cf_remote_port;
		}
	}
	if (n == 0)
		(void)snprintf(reply, replysz,
		    "451 4.4.3 No address for the MX hosts "
		    "of %s: %s",
		    domain, err);
	return n;
}

size_t
deliverd_worker_rtls_mx(const char *qid, const char *domain,
    struct deliverd_worker_cand *c, size_t n,
    const struct deliverd_worker_sts *sts, char *reply, size_t replysz)
{
	size_t i, kept = 0;

	if (sts->mode == MTASTS_MODE_ENFORCE)
		return n; /* the policy already chose the hosts */
	for (i = 0; i < n; i++)
		if (c[i].secure)
			c[kept++] = c[i];
	if (kept == n)
		return n;
	log_info("%s: REQUIRETLS: %zu of %zu MX hosts of %s passed over: "
		 "neither DNSSEC-validated nor listed by an MTA-STS policy "
		 "(enforce)",
	    qid, n - kept, n, domain);
	if (kept == 0)
		(void)snprintf(reply, replysz,
		    DELIVERD_REQUIRETLS_REPLY
		    " (the MX hosts of %s are neither DNSSEC-validated nor "
		    "listed by an MTA-STS policy)",
		    domain);
	return kept;
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

/* The candidates whose host the policy lists, in order (all of them under
 * testing, where the others are only logged); *mismatch_r when one is not. */
static size_t
deliverd_worker_sts_keep(const struct mtasts_policy *p, const char *qid,
    const char *domain, struct deliverd_worker_cand *c, size_t n,
    bool *mismatch_r)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (mtasts_mx_match(p, c[i].host))
			c[k++] = c[i];
		else {
			*mismatch_r = true;
			if (p->mode == MTASTS_MODE_TESTING)
				log_warnx("%s: MTA-STS (testing) policy of %s: "
					  "MX %s does not match; delivering as "
					  "usual",
				    qid, domain, c[i].host);
			else
				log_info("%s: MTA-STS (enforce) policy of %s: "
					 "MX %s does not match; skipped",
				    qid, domain, c[i].host);
		}
	return p->mode == MTASTS_MODE_TESTING ? n : k;
}

/* RFC 8460 4.3: the policy-string (its lines) and mx-host (its patterns). */
static void
deliverd_worker_sts_strings(const struct mtasts_policy *p,
    struct deliverd_worker_sts			       *st)
{
	size_t i, o = 0;
	int    n;

	if (mtasts_policy_format(p, '\n', st->pstr, sizeof(st->pstr)) == -1)
		st->pstr[0] = '\0';
	st->mxpat[0] = '\0';
	for (i = 0; i < p->n_mx; i++) {
		n = snprintf(st->mxpat + o, sizeof(st->mxpat) - o, "%s%s",
		    i > 0 ? " " : "", p->mx[i]);
		if (n < 0 || (size_t)n >= sizeof(st->mxpat) - o)
			break;
		o += (size_t)n;
	}
}

size_t
deliverd_worker_mtasts(struct worker *w, const char *qid, const char *domain,
    struct deliverd_worker_cand *c, size_t n, struct tls_policy *pol,
    struct deliverd_worker_sts *st, char *reply, size_t replysz)
{
	struct mtasts_policy p;
	size_t		     k;

	memset(st, 0, sizeof(*st));
	if (!w->dw_cf->cf_mta_sts || n == 0 || domain[0] == '[')
		return n;
	deliverd_mtasts_get(w->dw_sts, w->dw_cf, w->dw_dns, w->dw_sp,
	    &w->dw_out_buf, qid, domain, &p, &st->res);
	if ((st->mode = p.mode) == MTASTS_MODE_NONE)
		return n;
	deliverd_worker_sts_strings(&p, st);
	k = deliverd_worker_sts_keep(&p, qid, domain, c, n, &st->mismatch);
	if (p.mode != MTASTS_MODE_ENFORCE)
		return k;
	/* at least verify (tp_name NULL: the MX host) with tls_ca_file's CAs;
	 * a destination's secure stays (it names the domain, stricter) */
	if (pol->tp_level < TLS_LEVEL_VERIFY) {
		pol->tp_level = TLS_LEVEL_VERIFY;
		pol->tp_name = NULL;
		pol->tp_alt = NULL;
	}
	if (k == 0)
		(void)snprintf(reply, replysz,
		    "451 4.7.5 MTA-STS policy of %s (enforce): no MX host "
		    "matches the policy's mx patterns",
		    domain);
	return k;
}

/* enforce: a failed 4.7.x reply of the last candidate names the policy */
static void
deliverd_worker_sts_reply(const char *domain, char *reply, size_t replysz)
{
	char t[SPOOL_REPLY_MAX];

	if (strncmp(reply, "451 4.7.", 8) != 0 || strstr(reply, "MTA-STS"))
		return;
	if (snprintf(t, sizeof(t), "%.*sMTA-STS policy of %.255s (enforce): %s",
		10, reply, domain, reply + 10) < 0)
		return;
	(void)str_copy(reply, replysz, t);
}

/* testing: what enforce would have said of the session (RFC 8460 result),
 * logged when it fails; the mail goes on as usual. */
static enum tlsres_result
deliverd_worker_sts_testing(struct worker *w, const char *qid,
    const char *domain, const char *host, enum tlsres_result r)
{
	struct tls_policy vp = { TLS_LEVEL_VERIFY, NULL, NULL, NULL,
		0 }; /* MX host */
	enum tls_fail	  k = TLS_FAIL_NONE;
	char		  why[256];

	if (host == NULL ||
	    deliverd_smtp_tls_verdict(w->dw_smtp, &vp, why, sizeof(why), &k) ==
		0)
		return r;
	log_warnx("%s: MTA-STS (testing) policy of %s: MX %s fails it: %s; "
		  "delivering as usual",
	    qid, domain, host, why);
	return deliverd_tls_fail_result(k);
}

void
deliverd_worker_sts_outcome(struct worker *w, const char *qid,
    const char *domain, const struct deliverd_worker_sts *st, const char *host,
    char *reply, size_t replysz)
{
	const struct deliverd_tlsout *o = deliverd_smtp_tls_out(w->dw_smtp);
	enum tlsres_result	      r = o->to_result;

	if (st->mode == MTASTS_MODE_NONE) {
		/* a policy that could not be had is reported (RFC 8460) */
		if (st->res != TLSRES_R_SUCCESS && o->to_set)
			deliverd_smtp_tls_outcome(w->dw_smtp, o->to_verified,
			    TLSRES_P_STS, st->res);
		return;
	}
	deliverd_smtp_tls_policy_strings(w->dw_smtp, st->pstr, st->mxpat);
	if (st->mode == MTASTS_MODE_TESTING) {
		r = deliverd_worker_sts_testing(w, qid, domain, host, r);
		if (st->mismatch && r == TLSRES_R_SUCCESS)
			r = TLSRES_R_VALIDATION_FAILURE;
		deliverd_smtp_tls_outcome(w->dw_smtp, o->to_verified,
		    TLSRES_P_STS, r);
		return;
	}
	if (host != NULL) {
		deliverd_smtp_tls_outcome(w->dw_smtp, TLSRES_V_MTASTS,
		    TLSRES_P_STS, TLSRES_R_SUCCESS);
		log_info("%s: MTA-STS (enforce) policy of %s: MX %s verified, "
			 "verify=mta-sts",
		    qid, domain, host);
		return;
	}
	deliverd_smtp_tls_outcome(w->dw_smtp, o->to_verified, TLSRES_P_STS,
	    r == TLSRES_R_SUCCESS ? TLSRES_R_VALIDATION_FAILURE : r);
	deliverd_worker_sts_reply(domain, reply, replysz);
}
