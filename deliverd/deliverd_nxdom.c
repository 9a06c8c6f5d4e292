/*
 * NXDOMAIN, believed with care. A recipient domain that DNS says does not
 * exist bounces at once (CONTRACT), but two mistakes must not follow from
 * it:
 *  - a resolver that answers NXDOMAIN for every name (a broken forwarder,
 *    a captive or filtering resolver, a bad local zone) would bounce every
 *    recipient: the worker asks for the NS records of the domain's
 *    top-level zone, and when the resolver says NXDOMAIN for that too, of
 *    the root, which always exists; an answer proves the resolver sane
 *    (and a top-level domain that the root does not know is really
 *    unknown: "gmail.con" still bounces). Otherwise the reply becomes a
 *    451 4.4.3 deferral (deliverd_worker_nxparent);
 *  - a domain that is NXDOMAIN for an hour (expired and renewed, a DNS
 *    migration, a broken zone push) would put every address mailed in that
 *    hour on the suppression list for a year: the scheduler suppresses only
 *    once the domain has stayed NXDOMAIN for nxdomain_confirm
 *    (deliverd_commit.c, spool_nxdom_*).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "deliverd_worker.h"
#include "ev.h"
#include "log.h"

bool
deliverd_nxdom_reply(enum bounce_stage st, const char *reply)
{
	size_t n = strlen(reply), tl = strlen(DELIVERD_NOHOST_TAIL);

	if (st != BOUNCE_ST_CONNECT)
		return false;
	if (strncmp(reply, DELIVERD_NXDOMAIN_REPLY,
		strlen(DELIVERD_NXDOMAIN_REPLY)) == 0)
		return true;
	return strncmp(reply, DELIVERD_NOHOST_REPLY,
		   strlen(DELIVERD_NOHOST_REPLY)) == 0 &&
	    n > tl && strcmp(reply + n - tl, DELIVERD_NOHOST_TAIL) == 0;
}

/* The top-level zone of domain ("test" of "a.b.test"; "." for a name of
 * one label); false when it does not fit. */
static bool
deliverd_nxdom_tld(const char *domain, char *dst, size_t dstsz)
{
	const char *dot = strrchr(domain, '.');
	size_t	    n = strlen(domain);

	if (n > 0 && domain[n - 1] == '.') /* "example.com.": not ours */
		return false;
	return str_copy(dst, dstsz, dot != NULL ? dot + 1 : ".") == 0 &&
	    dst[0] != '\0';
}

/* The cached check of tld, or NULL; *slot_r: where to keep a new one. */
static struct deliverd_worker_nxp *
deliverd_nxdom_cached(struct worker *w, const char *tld, int64_t now,
    struct deliverd_worker_nxp **slot_r)
{
	struct deliverd_worker_nxp *e, *old = &w->dw_nxp[0];
	size_t			    i;

	for (i = 0; i < WORKER_NXP_MAX; i++) {
		e = &w->dw_nxp[i];
		if (e->np_tld[0] != '\0' && strcasecmp(e->np_tld, tld) == 0) {
			*slot_r = e;
			return e->np_until > now ? e : NULL;
		}
		/* a free slot, else the one that expires first */
		if (old->np_tld[0] != '\0' &&
		    (e->np_tld[0] == '\0' || e->np_until < old->np_until))
			old = e;
	}
	*slot_r = old;
	return NULL;
}

/* Asks the resolver about tld (and the root when tld is NXDOMAIN); why
 * is "" when it answered, else what it said. */
static void
deliverd_nxdom_ask(struct worker *w, const char *tld, char *why, size_t whysz)
{
	char		err[256] = "", rerr[256] = "";
	enum dns_status st, rst;

	why[0] = '\0';
	if ((st = dns_zone(w->dw_dns, tld, err, sizeof(err))) == DNS_OK)
		return;
	if (st == DNS_NXDOMAIN && strcmp(tld, ".") != 0 &&
	    (rst = dns_zone(w->dw_dns, ".", rerr, sizeof(rerr))) == DNS_OK) {
		log_info("nxdomain check: top-level domain %s does not exist "
			 "(the root zone answers): its NXDOMAIN replies stand",
		    tld);
		return;
	}
	if (st == DNS_NXDOMAIN)
		(void)snprintf(why, whysz,
		    "DNS resolver answers NXDOMAIN for the parent zone too "
		    "(%s%s%s)",
		    err, rerr[0] != '\0' ? "; " : "", rerr);
	else
		(void)snprintf(why, whysz,
		    "DNS lookup of the parent zone failed (%s)", err);
	log_warnx("nxdomain check: %s: NXDOMAIN replies under %s defer for "
		  "%ds",
	    why, tld, WORKER_NXP_BAD_MS / 1000);
}

void
deliverd_worker_nxparent(struct worker *w, const char *qid, const char *domain,
    char *reply, size_t replysz)
{
	struct deliverd_worker_nxp *e, *slot;
	char			    tld[sizeof(e->np_tld)];
	int64_t			    now = ev_clock_ms();

	if (strncmp(reply, DELIVERD_NXDOMAIN_REPLY,
		strlen(DELIVERD_NXDOMAIN_REPLY)) != 0 ||
	    !deliverd_nxdom_tld(domain, tld, sizeof(tld)))
		return;
	if ((e = deliverd_nxdom_cached(w, tld, now, &slot)) == NULL) {
		e = slot;
		(void)str_copy(e->np_tld, sizeof(e->np_tld), tld);
		deliverd_nxdom_ask(w, tld, e->np_why, sizeof(e->np_why));
		e->np_until = now +
		    (e->np_why[0] == '\0' ? WORKER_NXP_OK_MS
					  : WORKER_NXP_BAD_MS);
	}
	if (e->np_why[0] == '\0')
		return;
	log_info("%s: NXDOMAIN for %s not believed: %s", qid, domain,
	    e->np_why);
	/* a DNS failure like any other: it counts toward the resolver-down
	 * rule (deliverd_dest_resolver.c) */
	(void)snprintf(reply, replysz,
	    DELIVERD_DNS_TEMPFAIL_REPLY "%s: NXDOMAIN for %s", e->np_why,
	    domain);
}
