/*
 * The SMTP client's TLS side (deliverd_smtp_int.h): the outcome of each
 * session (verification, RFC 8460 policy and result) for the events and
 * TLS reports, the secure level's name rule, and REQUIRETLS (RFC 8689):
 * what counts as verified TLS is decided here, once.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "deliverd_smtp_int.h"
#include "hdr.h"
#include "log.h"
#include "mailaddr.h"
#include "spool.h"

const char *
deliverd_smtp_tls(const struct deliverd_smtp *s)
{
	return s->s_tlsinfo;
}

const struct deliverd_tlsout *
deliverd_smtp_tls_out(const struct deliverd_smtp *s)
{
	return &s->s_out;
}

void
deliverd_smtp_tls_outcome(struct deliverd_smtp *s, enum tlsres_verified v,
    enum tlsres_policy p, enum tlsres_result r)
{
	s->s_out.to_set = true;
	s->s_out.to_verified = v;
	s->s_out.to_policy = p;
	s->s_out.to_result = r;
	(void)str_copy(s->s_out.to_mx, sizeof(s->s_out.to_mx), s->s_host);
}

void
deliverd_smtp_tls_relayhost(struct deliverd_smtp *s)
{
	if (s->s_out.to_set)
		s->s_out.to_policy = TLSRES_P_RELAY;
}

void
deliverd_smtp_tls_policy_strings(struct deliverd_smtp *s, const char *pstr,
    const char *mxpat)
{
	(void)str_copy(s->s_out.to_pstr, sizeof(s->s_out.to_pstr),
	    pstr != NULL ? pstr : "");
	(void)str_copy(s->s_out.to_mxpat, sizeof(s->s_out.to_mxpat),
	    mxpat != NULL ? mxpat : "");
}

void
deliverd_smtp_tls_ctx(struct deliverd_smtp *s, struct tls_ctx *tls)
{
	s->s_tlsctx = tls;
}

void
deliverd_smtp_tls_mx(struct deliverd_smtp *s, const char *host)
{
	(void)str_copy(s->s_out.to_mx, sizeof(s->s_out.to_mx), host);
}

void
deliverd_smtp_tls_reset(struct deliverd_smtp *s)
{
	memset(&s->s_out, 0, sizeof(s->s_out));
}

static void
deliverd_smtp_tls_ip(const struct sockaddr_storage *ss, char *dst, size_t dstsz)
{
	const void *a = ss->ss_family == AF_INET6
	    ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
	    : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if ((ss->ss_family != AF_INET && ss->ss_family != AF_INET6) ||
	    inet_ntop(ss->ss_family, a, dst, (socklen_t)dstsz) == NULL)
		dst[0] = '\0';
}

void
deliverd_smtp_tls_addrs(struct deliverd_smtp *s,
    const struct sockaddr_storage	     *peer)
{
	struct sockaddr_storage local;
	socklen_t		sl = sizeof(local);

	deliverd_smtp_tls_ip(peer, s->s_out.to_rip, sizeof(s->s_out.to_rip));
	memset(&local, 0, sizeof(local));
	if (getsockname(s->s_fd, (struct sockaddr *)&local, &sl) == -1)
		local.ss_family = AF_UNSPEC; /* reported without it */
	deliverd_smtp_tls_ip(&local, s->s_out.to_sip, sizeof(s->s_out.to_sip));
}

void
deliverd_smtp_tls_helo(struct deliverd_smtp *s)
{
	const char *l = s->s_rp.rp_lines.data;
	size_t	    n = l != NULL ? strcspn(l, " \n") : 0;

	if (n == 0 || n >= sizeof(s->s_out.to_helo) ||
	    !mailaddr_domain_ok(l, n, 0)) {
		s->s_out.to_helo[0] = '\0';
		return;
	}
	memcpy(s->s_out.to_helo, l, n);
	s->s_out.to_helo[n] = '\0';
}

/* The RFC 8460 result type of a failed policy check. */
enum tlsres_result
deliverd_tls_fail_result(enum tls_fail k)
{
	static const enum tlsres_result res[] = {
		[TLS_FAIL_NONE] = TLSRES_R_SUCCESS,
		[TLS_FAIL_NOTLS] = TLSRES_R_STARTTLS_NOT_SUPPORTED,
		[TLS_FAIL_UNTRUSTED] = TLSRES_R_CERT_NOT_TRUSTED,
		[TLS_FAIL_EXPIRED] = TLSRES_R_CERT_EXPIRED,
		[TLS_FAIL_NAME] = TLSRES_R_CERT_HOST_MISMATCH,
	};

	return (size_t)k < sizeof(res) / sizeof(res[0])
	    ? res[k]
	    : TLSRES_R_VALIDATION_FAILURE;
}

/* The TLS level's verdict as an outcome (policy no-policy-found): a
 * failure kind of tls_policy_verdict, or TLS_FAIL_NONE for a session the
 * level accepted (verified when it checked the certificate). */
void
deliverd_smtp_tls_level_outcome(struct deliverd_smtp *s, enum tls_fail k)
{
	enum tlsres_verified v = TLSRES_V_NONE;

	if (s->s_tls != NULL)
		v = k == TLS_FAIL_NONE && s->s_pol.tp_level >= TLS_LEVEL_VERIFY
		    ? TLSRES_V_VERIFIED
		    : TLSRES_V_UNTRUSTED;
	deliverd_smtp_tls_outcome(s, v, TLSRES_P_NONE,
	    deliverd_tls_fail_result(k));
}

/* secure: the certificate names the next-hop domain (tp_name) or, when
 * the MX host lies inside it, that host ("dot-nexthop"); a host of another
 * domain (DNS said so, unauthenticated) never counts. */
void
deliverd_smtp_secure_alt(struct deliverd_smtp *s, const char *host)
{
	size_t hl = strlen(host), dl = strlen(s->s_tlsname);

	s->s_tlsalt[0] = '\0';
	s->s_pol.tp_alt = NULL;
	if (s->s_pol.tp_level != TLS_LEVEL_SECURE || dl == 0 || hl <= dl + 1 ||
	    host[hl - dl - 1] != '.' ||
	    strcasecmp(host + hl - dl, s->s_tlsname) != 0)
		return;
	(void)str_copy(s->s_tlsalt, sizeof(s->s_tlsalt), host);
	s->s_pol.tp_alt = s->s_tlsalt;
}

/*
 * Is this session "verified TLS" in the sense of RFC 8689 sec. 4.2.1, the
 * one test a REQUIRETLS message must pass (besides the server's EHLO
 * keyword)? The one place that decides it: today a TLS session whose
 * certificate chains to the trusted CAs and names the next hop (the MX
 * host name, or the relayhost's: what tls_policy_check() checks at level
 * verify), whatever level the destination asked for, or a session a
 * secure TLSA record authenticated (DANE, RFC 7672: a DANE-EE certificate
 * need not chain to any CA). MTA-STS enforce needs nothing more: its MX
 * hosts are checked at level verify. true, or false with the reason in
 * why.
 */
bool
deliverd_smtp_tls_verified(const struct deliverd_smtp *s, char *why,
    size_t whysz)
{
	struct tls_policy p = { TLS_LEVEL_VERIFY, s->s_tlsname, NULL, NULL, 0 };

	if (s->s_tls == NULL) {
		(void)snprintf(why, whysz, "no TLS session%s",
		    s->s_starttls ? "" : " (STARTTLS not offered)");
		return false;
	}
	if (tls_dane_authenticated(s->s_tls))
		return true;
	return tls_policy_check(&p, s->s_tls, why, whysz) == 0;
}

/* A REQUIRETLS message goes only to a server that offers REQUIRETLS over
 * verified TLS: true, or false with the reason in why. */
bool
deliverd_smtp_requiretls_why(const struct deliverd_smtp *s, char *why,
    size_t whysz)
{
	if (!deliverd_smtp_tls_verified(s, why, whysz))
		return false;
	if (!s->s_requiretls) {
		(void)str_copy(why, whysz,
		    "the server does not offer REQUIRETLS");
		return false;
	}
	return true;
}

bool
deliverd_smtp_requiretls_met(const struct deliverd_smtp *s)
{
	char why[256];

	return s->s_fd != -1 &&
	    deliverd_smtp_requiretls_why(s, why, sizeof(why));
}

bool
deliverd_smtp_wants_requiretls(const struct deliverd_tx *tx)
{
	return deliverd_smtp_param(tx->tx_from_params, "REQUIRETLS");
}

bool
deliverd_tls_required_no(const char *msg, size_t len, const char *from_params)
{
	struct hdr_limits lim = { 0, DELIVERD_TLSNO_HDR_MAX };
	struct hdr	  h;
	struct hdr_field  f;
	bool		  no = false;

	if (msg == NULL || deliverd_smtp_param(from_params, "REQUIRETLS"))
		return false; /* REQUIRETLS wins (RFC 8689 5) */
	hdr_init(&h, &lim);
	hdr_push(&h, msg,
	    len < DELIVERD_TLSNO_HDR_MAX ? len : DELIVERD_TLSNO_HDR_MAX);
	hdr_push_eof(&h);
	while (!no && hdr_next(&h, &f) == HDR_FIELD)
		no = strcasecmp(f.hf_name, "TLS-Required") == 0 &&
		    strcasecmp(f.hf_value, "No") == 0;
	hdr_release(&h);
	return no;
}

bool
deliverd_smtp_tls_required_no(const struct deliverd_tx *tx)
{
	return deliverd_tls_required_no(tx->tx_msg, tx->tx_msglen,
	    tx->tx_from_params);
}

/* deliverd_smtp_requiretls_why(), with one log line either way. */
bool
deliverd_smtp_requiretls_ok(const struct deliverd_smtp *s, const char *qid)
{
	char why[256];

	if (qid == NULL)
		qid = "NOQUEUE";
	if (deliverd_smtp_requiretls_why(s, why, sizeof(why))) {
		log_info("%s: REQUIRETLS: relay=%s: verified TLS", qid,
		    s->s_relay);
		return true;
	}
	log_info("%s: REQUIRETLS refused: relay=%s: %s", qid, s->s_relay, why);
	return false;
}

int
deliverd_smtp_tls_verdict(const struct deliverd_smtp *s,
    const struct tls_policy *pol, char *why, size_t whysz, enum tls_fail *k)
{
	struct tls_policy p = *pol;

	if (p.tp_name == NULL)
		p.tp_name = s->s_host;
	return tls_policy_verdict(&p, s->s_tls, why, whysz, k);
}
