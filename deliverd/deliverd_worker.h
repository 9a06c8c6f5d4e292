/*
 * deliverd_worker.h: what the delivery worker's files share (private to
 * deliverd_worker.c and deliverd_worker_route.c).
 */
#ifndef SG_DELIVERD_WORKER_H
#define SG_DELIVERD_WORKER_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounce.h"
#include "buf.h"
#include "cidr.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_dest.h"
#include "deliverd_track.h"
#include "dns.h"
#include "ownaddr.h"
#include "spool.h"
#include "mtasts.h"
#include "tls.h"
#include "tlsres.h"

#define WORKER_IDLE_CLOSE_MS 5000
#define WORKER_CAND_MAX	     32
/* mx_address_limit and mx_session_limit (default 5 and 2, at most
 * WORKER_CAND_MAX), Postfix's smtp_mx_address_limit and
 * smtp_mx_session_limit: one delivery tries at most that many next-hop
 * addresses (in MX preference order; a host whose TLSA lookup fails
 * counts), and keeps at most that many sessions that completed EHLO and
 * TLS (only a REQUIRETLS message that a session cannot carry goes on to
 * another). Addresses that time out cost a connect_timeout each. */
#define WORKER_FILE_GRACE    60 /* s: a missing queue file is not yet an error */

/* The parent-zone checks behind an NXDOMAIN (deliverd_nxdom.c): one per
 * top-level domain, kept WORKER_NXP_OK_MS when the zone answered and
 * WORKER_NXP_BAD_MS when it did not; at most WORKER_NXP_MAX of them. */
#define WORKER_NXP_MAX	  64
#define WORKER_NXP_OK_MS  (300 * 1000)
#define WORKER_NXP_BAD_MS (60 * 1000)
struct deliverd_worker_nxp {
	char	np_tld[64];  /* "" = a free slot; "." for the root */
	int64_t np_until;    /* ev_clock_ms() */
	char	np_why[256]; /* "" when the parent answered */
};

struct worker {
	struct conf	     *dw_cf;
	int		      dw_in, dw_out;
	struct spool	     *dw_sp;
	struct dns	     *dw_dns;
	struct tls_ctx	     *dw_tls;	 /* relayhost_tls_ca_file */
	struct tls_ctx	     *dw_tls_mx; /* tls_ca_file (issue 17) */
	struct deliverd_smtp *dw_smtp;
	struct ownaddr	      dw_own;	/* the gateway's own addresses */
	struct cidr	     *dw_allow; /* allow_next_hop */
	size_t		      dw_nallow;
	enum tls_level	      dw_relay_tls;  /* relayhost_tls (dane: may) */
	bool		      dw_relay_dane; /* relayhost_tls = dane */
	struct buf	      dw_inbuf;
	struct buf	      dw_out_buf;
	int64_t		      dw_last_use;
	bool		      dw_eof;
	/* source addresses: the last job's hop and source, the pool rotation */
	char		     dw_src_hop[SPOOL_DOMAIN_MAX + 8];
	char		     dw_src_addr[INET6_ADDRSTRLEN];
	unsigned	     dw_src_pick;
	struct shaping_mxset dw_mx; /* the job's MX hosts (deliverd_dest.h) */
	bool dw_tls_noconn; /* the job's TLS outcome came without a session
			       (a failed TLSA lookup): report it anyway */
	struct deliverd_mtasts	  *dw_sts; /* MTA-STS policies (mta_sts = on) */
	struct deliverd_worker_nxp dw_nxp[WORKER_NXP_MAX];
};

/* One recipient of the current job. */
struct deliverd_worker_rcpt {
	uint32_t	  idx;
	char		  addr[SPOOL_ADDR_MAX];
	bool		  skip;
	bool		  sim;	    /* simulator_domain: never sent */
	uint32_t	  attempts; /* made before this one */
	char		  reply[SPOOL_REPLY_MAX];
	enum bounce_stage stage;
	bool		  shared; /* its DATA reply answered others too */
	bool reported; /* its result went before the job's end (452 split) */
};

struct deliverd_worker_cand {
	char			host[DNS_HOST_MAX];
	struct sockaddr_storage ss;
	bool	 secure; /* MX and address records DNSSEC-validated (dnssec) */
	unsigned port;	 /* the TLSA records' port (_PORT._tcp.HOST) */
};

struct deliverd_worker_msg {
	struct spool_msg m;
	char		*map;
	size_t		 maplen;
	const char	*body;
	size_t		 bodylen;
	struct buf	 sig;
	char		 source[sizeof(((struct spool_account *)0)->ac_source)];
	struct deliverd_track *track; /* issue 16: NULL = one copy for all */
};

/* deliverd_worker_route.c: the next hops of a job, as candidates to try in
 * order; reply says why when there are none. */
size_t deliverd_worker_relay_cands(struct worker *,
    struct deliverd_worker_cand *, size_t max, char *reply, size_t replysz);
size_t deliverd_worker_mx_cands(struct worker *, const char *domain,
    struct deliverd_worker_cand *, size_t max, char *reply, size_t replysz);
/* deliverd_worker_route.c: MTA-STS (issue 17 item 2) on the MX
 * candidates of domain: under enforce, keeps the matching ones and sets
 * pol to verify; under testing logs the mismatches. The count left; 0
 * with reply when enforce leaves none. */
struct deliverd_worker_sts {
	enum mtasts_mode   mode;     /* MTASTS_MODE_NONE: no policy applies */
	enum tlsres_result res;	     /* a lookup's failure, or SUCCESS */
	bool		   mismatch; /* an MX host the policy does not list */
	char		   pstr[DELIVERD_TLS_PSTR_MAX]; /* RFC 8460 strings */
	char		   mxpat[512];
};
struct tls_policy;
size_t deliverd_worker_mtasts(struct worker *, const char *qid,
    const char *domain, struct deliverd_worker_cand *, size_t n,
    struct tls_policy *pol, struct deliverd_worker_sts *, char *reply,
    size_t replysz);
/* The session's TLS outcome under the policy (deliverd_smtp_tls_outcome),
 * after the candidates were tried; host: the one that took the session,
 * NULL if none. Under enforce a failed 4.7.x reply names the policy. */
void deliverd_worker_sts_outcome(struct worker *, const char *qid,
    const char *domain, const struct deliverd_worker_sts *, const char *host,
    char *reply, size_t replysz);
/* RFC 8689 4.2.1: a REQUIRETLS message goes only to MX hosts that DNSSEC
 * validated (MX and address records) or that an MTA-STS policy in enforce
 * mode lists; drops the others. None left: the 550 5.7.30 in reply. */
size_t deliverd_worker_rtls_mx(const char *qid, const char *domain,
    struct deliverd_worker_cand *, size_t n, const struct deliverd_worker_sts *,
    char *reply, size_t replysz);
/*
 * deliverd_nxdom.c: an NXDOMAIN for domain (reply: DELIVERD_NXDOMAIN_REPLY)
 * is believed only when the DNS resolver still answers for the domain's
 * top-level zone (its NS; when that is NXDOMAIN too, for the root: a
 * top-level domain that does not exist). Otherwise reply becomes a 451
 * 4.4.3 deferral and one line is logged. Checks are cached per top-level
 * domain (dw_nxp).
 */
void deliverd_worker_nxparent(struct worker *, const char *qid,
    const char *domain, char *reply, size_t replysz);

/* Drops the candidates that are this host (unless allow_next_hop). */
size_t deliverd_worker_no_loops(struct worker *, const char *qid,
    const char *domain, struct deliverd_worker_cand *, size_t n, char *reply,
    size_t replysz);

/*
 * DANE (RFC 7672; deliverd_dane.c): for a candidate whose MX and address
 * records are secure, looks up its TLSA records and turns pol into a DANE
 * policy (TLS mandatory, the certificate matched against the usable
 * records; none usable: TLS mandatory, unauthenticated). 0 with pol set
 * (unchanged when there are no secure TLSA records), -1 when the host must
 * not be used now (the TLSA lookup failed: reply says why). The records
 * live in d until the next call.
 */
struct deliverd_dane {
	struct dns_tlsa dd_rec[DNS_TLSA_MAX];
	struct tls_tlsa dd_tlsa[DNS_TLSA_MAX];
	size_t		dd_n; /* usable records in dd_tlsa */
};
int deliverd_dane_policy(struct worker *, const struct deliverd_worker_cand *,
    struct deliverd_dane *, struct tls_policy *pol, char *reply,
    size_t replysz);
/* The attempt's TLS outcome (deliverd_smtp_tls_outcome) after a DANE
 * policy: rc 0 "dane"/tlsa/success, -1 the session was refused; d NULL:
 * the TLSA lookup failed (dnssec-invalid). */
void deliverd_dane_outcome(struct worker *, const char *host,
    const struct deliverd_dane *d, int rc);

#endif
