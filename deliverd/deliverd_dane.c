/*
 * deliverd_dane: DANE for SMTP (RFC 7672) on top of DNSSEC answers from a
 * trusted validating resolver (dnssec = trust-ad; common/dns.h). Called
 * per MX candidate whose MX and address records were secure, and for
 * the relayhost (relayhost_tls = dane) when its address records were:
 *
 *   TLSA _PORT._tcp.MXHOST secure, some usable  -> TLS mandatory, chain
 *	matched against the records (OpenSSL's DANE API, common/tls.c)
 *   secure, none usable (PKIX-TA/PKIX-EE, unknown) -> TLS mandatory,
 *	unauthenticated (RFC 7672 2.2)
 *   no records, or an insecure answer		 -> the ordinary policy
 *   lookup failed (SERVFAIL: bogus or unreachable) -> this host is not
 *	used now: 4.7.5 "dnssec-invalid" (RFC 7672 2.2.1)
 *
 * DANE wins over MTA-STS (RFC 8461 2): a DANE policy set here replaces
 * whatever level the candidate had.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "deliverd_worker.h"
#include "dns.h"
#include "log.h"
#include "tls.h"

/* RFC 7672 3.1: DANE-TA(2) and DANE-EE(3); selectors 0/1; matching types
 * 0 (full), 1 (SHA2-256), 2 (SHA2-512). */
static bool
deliverd_dane_usable(const struct dns_tlsa *r)
{
	return (r->tl_usage == 2 || r->tl_usage == 3) && r->tl_selector <= 1 &&
	    r->tl_mtype <= 2;
}

int
deliverd_dane_policy(struct worker *w, const struct deliverd_worker_cand *c,
    struct deliverd_dane *d, struct tls_policy *pol, char *reply,
    size_t replysz)
{
	size_t		n, i, k = 0;
	unsigned	port = c->port;
	char		err[512] = "";
	enum dns_status st;

	d->dd_n = 0;
	st = dns_tlsa(w->dw_dns, c->host, port, d->dd_rec, DNS_TLSA_MAX, &n,
	    err, sizeof(err));
	if (st == DNS_TEMPFAIL) {
		(void)snprintf(reply, replysz,
		    "451 4.7.5 %s: DANE: TLSA lookup failed "
		    "(dnssec-invalid): %s",
		    c->host, err);
		return -1;
	}
	if (st != DNS_OK || !dns_secure(w->dw_dns))
		return 0; /* no DANE for this host: the ordinary policy */
	for (i = 0; i < n; i++) {
		if (!deliverd_dane_usable(&d->dd_rec[i]))
			continue;
		d->dd_tlsa[k].usage = d->dd_rec[i].tl_usage;
		d->dd_tlsa[k].selector = d->dd_rec[i].tl_selector;
		d->dd_tlsa[k].mtype = d->dd_rec[i].tl_mtype;
		d->dd_tlsa[k].len = d->dd_rec[i].tl_len;
		d->dd_tlsa[k].data = d->dd_rec[i].tl_data;
		k++;
	}
	pol->tp_name = NULL; /* the MX host: the TLSA base domain */
	if (k == 0) {
		log_info("%s: DANE: %zu TLSA records, none usable: TLS "
			 "without authentication",
		    c->host, n);
		pol->tp_level = TLS_LEVEL_ENCRYPT;
		pol->tp_tlsa = NULL;
		pol->tp_ntlsa = 0;
		return 0;
	}
	d->dd_n = k;
	pol->tp_level = TLS_LEVEL_VERIFY;
	pol->tp_tlsa = d->dd_tlsa;
	pol->tp_ntlsa = k;
	return 0;
}

void
deliverd_dane_outcome(struct worker *w, const char *host,
    const struct deliverd_dane *d, int rc)
{
	const struct deliverd_tlsout *o = deliverd_smtp_tls_out(w->dw_smtp);
	char		   pstr[DELIVERD_TLS_PSTR_MAX] = "", rec[160];
	size_t		   i, j, n, plen = 0;
	enum tlsres_result r = TLSRES_R_SUCCESS;

	if (d != NULL && rc != 0 && !o->to_set)
		return; /* no TLS verdict: connect or greeting failed */
	if (d == NULL)
		r = TLSRES_R_DNSSEC_INVALID;
	else if (rc != 0)
		r = o->to_set && o->to_result == TLSRES_R_STARTTLS_NOT_SUPPORTED
		    ? TLSRES_R_STARTTLS_NOT_SUPPORTED
		    : TLSRES_R_TLSA_INVALID;
	/* no session with this host: nothing of the last one (its
	 * addresses) may stick; a refused session keeps its addresses */
	if (d == NULL) {
		deliverd_smtp_tls_reset(w->dw_smtp);
		w->dw_tls_noconn = true; /* reported without a relay */
	}
	deliverd_smtp_tls_outcome(w->dw_smtp,
	    r == TLSRES_R_SUCCESS ? TLSRES_V_DANE : TLSRES_V_NONE,
	    TLSRES_P_TLSA, r);
	deliverd_smtp_tls_mx(w->dw_smtp, host);
	for (i = 0; d != NULL && i < d->dd_n; i++) {
		/* RFC 8460 4.3: the TLSA records in presentation form */
		n = (size_t)snprintf(rec, sizeof(rec), "%s%u %u %u ",
		    i > 0 ? "\n" : "", d->dd_tlsa[i].usage,
		    d->dd_tlsa[i].selector, d->dd_tlsa[i].mtype);
		for (j = 0; j < d->dd_tlsa[i].len && n + 3 < sizeof(rec); j++)
			n += (size_t)snprintf(rec + n, sizeof(rec) - n, "%02x",
			    d->dd_tlsa[i].data[j]);
		if (n < sizeof(rec) && plen + n < sizeof(pstr)) {
			memcpy(pstr + plen, rec, n + 1);
			plen += n;
		}
	}
	deliverd_smtp_tls_policy_strings(w->dw_smtp, pstr, "");
}
