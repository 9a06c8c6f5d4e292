/*
 * dns: the lookups deliverd needs for MX routing (RFC 5321 5.1, RFC 7505),
 * through libresolv's res_nquery so that a configured dns_server
 * ("ADDR[:PORT]", IPv4) is used instead of resolv.conf. Each process keeps
 * its own struct dns (no sharing across fork). Results are copied into the
 * caller's arrays; functions return an enum dns_status and put a short
 * reason into err (for logs and bounce texts). No logging.
 */
#ifndef SG_DNS_H
#define SG_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum dns_status {
	DNS_OK = 0,
	DNS_NXDOMAIN, /* the name does not exist: permanent */
	DNS_NULLMX,   /* "MX 0 ." (RFC 7505): the domain takes no mail */
	DNS_NOHOST,   /* no MX and no A/AAAA: permanent */
	DNS_TEMPFAIL  /* timeout, SERVFAIL, anything else: try later */
};

#define DNS_HOST_MAX 256
#define DNS_MX_MAX   16
#define DNS_ADDR_MAX 8

struct dns_mx {
	char	 mx_host[DNS_HOST_MAX];
	unsigned mx_pref;
	bool	 mx_implicit; /* the domain itself (no MX records) */
};

struct dns;

/* server NULL or "" = system resolver. NULL on a bad server string. */
struct dns *dns_new(const char *server, int timeout_s, char *err, size_t errsz);
void	    dns_free(struct dns **);

/*
 * MX hosts of domain, lowest preference first (equal preferences in random
 * order); with no MX records, the implicit MX (the domain, if it has an
 * address). *n_r >= 1 on DNS_OK.
 */
enum dns_status dns_mx(struct dns *, const char *domain, struct dns_mx *mx_r,
    size_t max, size_t *n_r, char *err, size_t errsz);
/* IPv4 then IPv6 addresses of host, with port set. A numeric host is
 * returned as is. */
enum dns_status dns_addrs(struct dns *, const char *host, unsigned port,
    struct sockaddr_storage *addr_r, size_t max, size_t *n_r, char *err,
    size_t errsz);
/*
 * Whether the zone name ("test", "com", "." for the root) exists, by its
 * NS records: DNS_OK for any NOERROR answer (records or none),
 * DNS_NXDOMAIN, else DNS_TEMPFAIL. deliverd asks it before it believes
 * an NXDOMAIN (a resolver that says NXDOMAIN for every name says it for
 * the zone above too).
 */
enum dns_status dns_zone(struct dns *, const char *name, char *err,
    size_t errsz);
/* Pure: parses a DNS answer packet of an MX query (exported for tests and
 * fuzzing). Sets *nullmx_r when the only record is "0 .". */
int  dns_parse_mx(const unsigned char *pkt, size_t len, struct dns_mx *mx_r,
     size_t max, size_t *n_r, bool *nullmx_r);
void dns_sort_mx(struct dns_mx *, size_t n);

/* TXT records of name (MTA-STS, RFC 8461 3.1): each record's strings
 * concatenated, NUL-terminated, at most DNS_TXT_MAX - 1 bytes (longer
 * ones are skipped). No record: DNS_OK with *n_r = 0. */
#define DNS_TXT_MAX 512
enum dns_status dns_txt(struct dns *, const char *name,
    char (*txt_r)[DNS_TXT_MAX], size_t max, size_t *n_r, char *err,
    size_t errsz);

/*
 * DNSSEC through a trusted resolver's AD bit (dnssec = trust-ad, RFC 6698
 * 4.1 / RFC 7672 2.1): with dns_set_trust_ad(on) the queries carry AD
 * and glibc keeps the AD bit of answers (RES_TRUSTAD). dns_secure() is
 * true when every answer of the last dns_mx/dns_addrs/dns_tlsa call had
 * AD (never without trust-ad). Only a resolver on this host (or a
 * trusted link) should be believed: the bit is not signed.
 */
#define DNS_T_TLSA	  52
#define DNS_TLSA_MAX	  8
#define DNS_TLSA_DATA_MAX 64 /* SHA2-512; full keys/certs are skipped */

struct dns_tlsa {
	unsigned char tl_usage, tl_selector, tl_mtype;
	size_t	      tl_len;
	unsigned char tl_data[DNS_TLSA_DATA_MAX];
};

void dns_set_trust_ad(struct dns *, bool on);
/*
 * dnssec = validate: every lookup goes through libunbound, which validates
 * from the trust anchor file (DNSKEY or DS lines, e.g. Debian's
 * /usr/share/dns/root.key), recursing itself or through server (then a
 * forwarder that passes DNSSEC data); dns_secure() is libunbound's
 * "secure", a bogus answer is DNS_TEMPFAIL. Each lookup is bounded by the
 * resolver timeout (twice timeout_s). 0, or -1 with err (no libunbound in
 * this build, unreadable anchor).
 */
int  dns_set_validate(struct dns *, const char *server, const char *anchor,
     char *err, size_t errsz);
bool dns_secure(const struct dns *);
/* TLSA records of _PORT._tcp.HOST: DNS_OK with *n_r >= 1, DNS_NOHOST when
 * there are none (NXDOMAIN, NODATA), DNS_TEMPFAIL on failure (SERVFAIL:
 * what a validating resolver answers for bogus data). */
enum dns_status dns_tlsa(struct dns *, const char *host, unsigned port,
    struct dns_tlsa *t_r, size_t max, size_t *n_r, char *err, size_t errsz);
int dns_parse_tlsa(const unsigned char *pkt, size_t len, struct dns_tlsa *t_r,
    size_t max, size_t *n_r);

#endif
