/*
 * tlsres: the outcome of the TLS decision for one delivery attempt, shared
 * by the code that makes it (the TLS level, MTA-STS, DANE: deliverd) and
 * the code that reports it (events' "tls" field, TLS reporting, RFC 8460).
 * The names are the RFC's where it has them.
 */
#ifndef SG_TLSRES_H
#define SG_TLSRES_H

/* How the session's peer was authenticated (the events' tls= suffix). */
enum tlsres_verified {
	TLSRES_V_NONE = 0,  /* no TLS */
	TLSRES_V_UNTRUSTED, /* TLS, certificate not checked or not trusted */
	TLSRES_V_VERIFIED,  /* WebPKI chain and name checked (verify/secure) */
	TLSRES_V_MTASTS,    /* verified under an enforced MTA-STS policy */
	TLSRES_V_DANE,	    /* matched a DNSSEC-validated TLSA record */
	TLSRES_V_COUNT
};

/* RFC 8460 policy-type. */
enum tlsres_policy {
	TLSRES_P_NONE = 0, /* "no-policy-found" */
	TLSRES_P_STS,	   /* "sts" */
	TLSRES_P_TLSA,	   /* "tlsa" */
	TLSRES_P_RELAY,	   /* "relayhost": not RFC 8460's, never reported
			    * (a session with the relayhost, not the MX) */
	TLSRES_P_COUNT
};

/* RFC 8460 result-type; TLSRES_R_SUCCESS counts a successful session. */
enum tlsres_result {
	TLSRES_R_SUCCESS = 0,
	TLSRES_R_STARTTLS_NOT_SUPPORTED,
	TLSRES_R_CERT_HOST_MISMATCH,
	TLSRES_R_CERT_EXPIRED,
	TLSRES_R_CERT_NOT_TRUSTED,
	TLSRES_R_VALIDATION_FAILURE,
	TLSRES_R_TLSA_INVALID,
	TLSRES_R_DNSSEC_INVALID,
	TLSRES_R_DANE_REQUIRED,
	TLSRES_R_STS_POLICY_FETCH_ERROR,
	TLSRES_R_STS_POLICY_INVALID,
	TLSRES_R_STS_WEBPKI_INVALID,
	TLSRES_R_COUNT
};

/* "none", "untrusted", "verified", "mta-sts", "dane"; NULL out of range. */
const char *tlsres_verified_name(enum tlsres_verified);
/* "no-policy-found", "sts", "tlsa". */
const char *tlsres_policy_name(enum tlsres_policy);
/* "success" (not an RFC name: the success count), "starttls-not-supported",
 * "certificate-host-mismatch", ... as RFC 8460 section 4.3 spells them. */
const char *tlsres_result_name(enum tlsres_result);
/* The reverse of the three; -1 when name is not one of them. */
int tlsres_verified_parse(const char *, enum tlsres_verified *);
int tlsres_policy_parse(const char *, enum tlsres_policy *);
int tlsres_result_parse(const char *, enum tlsres_result *);

#endif
