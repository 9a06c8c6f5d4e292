#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBUNBOUND
#include <errno.h>
#include <poll.h>
#include <unbound.h>
#include <unistd.h>

#include "ev.h"
#endif

#include "buf.h"
#include "conf.h"
#include "dns.h"
#include "xmem.h"

struct dns {
	struct __res_state d_res;
	bool		   d_ad; /* every answer since the last reset had AD */
	int		   d_timeout_ms;
#ifdef HAVE_LIBUNBOUND
	struct ub_ctx *d_ub; /* dnssec = validate */
#endif
};

#define DNS_PKT_MAX 65536

struct dns *
dns_new(const char *server, int timeout_s, char *err, size_t errsz)
{
	struct dns	  *d;
	struct sockaddr_in sin;
	char		   host[64], port[8];
	char		  *end;
	unsigned long	   p;

	d = xcalloc(1, sizeof(*d));
	if (res_ninit(&d->d_res) == -1) {
		(void)snprintf(err, errsz, "res_ninit failed");
		free(d);
		return NULL;
	}
	d->d_res.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	d->d_res.retrans = timeout_s > 0 ? timeout_s : 5;
	d->d_timeout_ms = d->d_res.retrans * 2 * 1000;
	d->d_res.retry = 2;
	if (server == NULL || *server == '\0')
		return d;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	if (conf_split_hostport(server, host, sizeof(host), port, sizeof(port),
		"53") == -1 ||
	    inet_pton(AF_INET, host, &sin.sin_addr) != 1 ||
	    (p = strtoul(port, &end, 10)) == 0 || p > 65535 || *end != '\0') {
		(void)snprintf(err, errsz,
		    "dns_server %s: want IPv4ADDR[:PORT]", server);
		res_nclose(&d->d_res);
		free(d);
		return NULL;
	}
	sin.sin_port = htons((unsigned short)p);
	d->d_res.nsaddr_list[0] = sin;
	d->d_res.nscount = 1;
	return d;
}

void
dns_free(struct dns **dp)
{
	if (*dp == NULL)
		return;
	res_nclose(&(*dp)->d_res);
#ifdef HAVE_LIBUNBOUND
	if ((*dp)->d_ub != NULL)
		ub_ctx_delete((*dp)->d_ub);
#endif
	free(*dp);
	*dp = NULL;
}

#ifdef HAVE_LIBUNBOUND
static void
dns_ub_done(void *arg, int rc, struct ub_result *r)
{
	struct ub_result **rp = arg;

	*rp = r;
	if (rc != 0 || r == NULL)
		*rp = (struct ub_result *)(void *)rp; /* failed: a marker */
}

/* One validated lookup through libunbound, bounded by d_timeout_ms
 * (the asynchronous API: ub_resolve has no time limit). */
static enum dns_status
dns_ub_query(struct dns *d, const char *name, int type, unsigned char *pkt,
    size_t pktsz, size_t *len_r, bool *nodata_r, char *err, size_t errsz)
{
	struct ub_result *r = NULL;
	int64_t		  deadline = ev_clock_ms() + d->d_timeout_ms;
	int		  id, rc, left;
	struct pollfd	  pfd;
	enum dns_status	  st = DNS_OK;

	if ((rc = ub_resolve_async(d->d_ub, name, type, ns_c_in, &r,
		 dns_ub_done, &id)) != 0) {
		(void)snprintf(err, errsz, "%s: %s", name, ub_strerror(rc));
		d->d_ad = false;
		return DNS_TEMPFAIL;
	}
	pfd.fd = ub_fd(d->d_ub);
	pfd.events = POLLIN;
	while (r == NULL && (left = (int)(deadline - ev_clock_ms())) > 0)
		if (poll(&pfd, 1, left) > 0)
			(void)ub_process(d->d_ub);
	if (r == NULL) {
		(void)ub_cancel(d->d_ub, id);
		(void)snprintf(err, errsz, "%s: DNS timeout", name);
		d->d_ad = false;
		return DNS_TEMPFAIL;
	}
	if (r == (struct ub_result *)(void *)&r) {
		(void)snprintf(err, errsz, "%s: lookup failed", name);
		d->d_ad = false;
		return DNS_TEMPFAIL;
	}
	d->d_ad = d->d_ad && r->secure;
	if (r->bogus) {
		(void)snprintf(err, errsz, "%s: DNSSEC validation failed: %s",
		    name, r->why_bogus != NULL ? r->why_bogus : "bogus");
		st = DNS_TEMPFAIL;
	} else if (r->nxdomain) {
		(void)snprintf(err, errsz, "%s: domain not found (NXDOMAIN)",
		    name);
		st = DNS_NXDOMAIN;
	} else if (r->rcode != 0) {
		(void)snprintf(err, errsz,
		    "%s: temporary DNS failure (rcode %d)", name, r->rcode);
		st = DNS_TEMPFAIL;
	} else if (!r->havedata) {
		*nodata_r = true;
		*len_r = 0;
	} else if (r->answer_len <= 0 || (size_t)r->answer_len > pktsz) {
		(void)snprintf(err, errsz, "%s: answer too long", name);
		st = DNS_TEMPFAIL;
	} else {
		memcpy(pkt, r->answer_packet, (size_t)r->answer_len);
		*len_r = (size_t)r->answer_len;
	}
	if (st != DNS_OK)
		d->d_ad = false;
	ub_resolve_free(r);
	return st;
}
#endif

/* res_nquery, mapping h_errno to our status. *len_r = answer length. */
static enum dns_status
dns_query(struct dns *d, const char *name, int type, unsigned char *pkt,
    size_t pktsz, size_t *len_r, bool *nodata_r, char *err, size_t errsz)
{
	const HEADER *hdr = (const HEADER *)(const void *)pkt;
	int	      n;

	*nodata_r = false;
#ifdef HAVE_LIBUNBOUND
	if (d->d_ub != NULL)
		return dns_ub_query(d, name, type, pkt, pktsz, len_r, nodata_r,
		    err, errsz);
#endif
	memset(pkt, 0, sizeof(HEADER)); /* NODATA/NXDOMAIN leave the answer */
	n = res_nquery(&d->d_res, name, ns_c_in, type, pkt, (int)pktsz);
	/* RES_TRUSTAD (dns_set_trust_ad) keeps the AD bit; else glibc
	 * clears it and nothing is ever secure. A denial (NODATA, NXDOMAIN)
	 * counts with the AD bit of its answer. */
	d->d_ad = d->d_ad && hdr->qr && hdr->ad;
	if (n >= (int)sizeof(HEADER)) {
		*len_r = (size_t)n;
		return DNS_OK;
	}
	if (n >= 0) {
		(void)snprintf(err, errsz, "%s: short DNS answer", name);
		return DNS_TEMPFAIL;
	}
	switch (d->d_res.res_h_errno) {
	case HOST_NOT_FOUND:
		(void)snprintf(err, errsz, "%s: domain not found (NXDOMAIN)",
		    name);
		return DNS_NXDOMAIN;
	case NO_DATA:
		*nodata_r = true;
		*len_r = 0;
		return DNS_OK;
	default:
		(void)snprintf(err, errsz, "%s: temporary DNS failure (%s)",
		    name, hstrerror(d->d_res.res_h_errno));
		return DNS_TEMPFAIL;
	}
}

int
dns_parse_mx(const unsigned char *pkt, size_t len, struct dns_mx *mx_r,
    size_t max, size_t *n_r, bool *nullmx_r)
{
	ns_msg msg;
	ns_rr  rr;
	int    i, cnt;
	size_t n = 0, nnull = 0, nrec = 0;
	char   name[NS_MAXDNAME];

	*n_r = 0;
	*nullmx_r = false;
	if (len > DNS_PKT_MAX || ns_initparse(pkt, (int)len, &msg) == -1)
		return -1;
	cnt = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < cnt; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			return -1;
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in)
			continue;
		if (ns_rr_rdlen(rr) < 3)
			return -1;
		if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg),
			ns_rr_rdata(rr) + 2, name, sizeof(name)) == -1)
			return -1;
		nrec++;
		if (name[0] == '\0' || strcmp(name, ".") == 0) {
			nnull++;
			continue;
		}
		if (n < max && strlen(name) < DNS_HOST_MAX) {
			(void)str_copy(mx_r[n].mx_host, DNS_HOST_MAX, name);
			mx_r[n].mx_pref = ns_get16(ns_rr_rdata(rr));
			mx_r[n].mx_implicit = false;
			n++;
		}
	}
	/* RFC 7505: a null MX is the only record; with others it is ignored. */
	*nullmx_r = nnull > 0 && nrec == nnull;
	*n_r = n;
	return 0;
}

void
dns_sort_mx(struct dns_mx *mx, size_t n)
{
	size_t	      i, j, k;
	struct dns_mx t;

	/* shuffle, then a stable insertion sort: equal preferences spread load */
	for (i = n; i > 1; i--) {
		k = (size_t)random() % i;
		t = mx[i - 1];
		mx[i - 1] = mx[k];
		mx[k] = t;
	}
	for (i = 1; i < n; i++) {
		t = mx[i];
		for (j = i; j > 0 && mx[j - 1].mx_pref > t.mx_pref; j--)
			mx[j] = mx[j - 1];
		mx[j] = t;
	}
}

/* A query's answer section, parsed: *cnt_r records (0 for no data or a
 * packet ns_initparse refuses). pkt holds DNS_PKT_MAX bytes. */
static enum dns_status
dns_answers(struct dns *d, const char *name, int type, unsigned char *pkt,
    ns_msg *msg, int *cnt_r, char *err, size_t errsz)
{
	size_t		len;
	bool		nodata;
	enum dns_status st;

	*cnt_r = 0;
	st = dns_query(d, name, type, pkt, DNS_PKT_MAX, &len, &nodata, err,
	    errsz);
	if (st == DNS_OK && !nodata && ns_initparse(pkt, (int)len, msg) == 0)
		*cnt_r = ns_msg_count(*msg, ns_s_an);
	return st;
}

static enum dns_status
dns_addr_type(struct dns *d, const char *host, int type, unsigned port,
    struct sockaddr_storage *addr_r, size_t max, size_t *n_r, char *err,
    size_t errsz)
{
	unsigned char	    *pkt = xmalloc(DNS_PKT_MAX);
	enum dns_status	     st;
	ns_msg		     msg;
	ns_rr		     rr;
	int		     i, cnt;
	struct sockaddr_in  *sin;
	struct sockaddr_in6 *sin6;

	st = dns_answers(d, host, type, pkt, &msg, &cnt, err, errsz);
	for (i = 0; i < cnt && *n_r < max; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1 ||
		    (int)ns_rr_type(rr) != type)
			continue;
		memset(&addr_r[*n_r], 0, sizeof(addr_r[*n_r]));
		if (type == ns_t_a && ns_rr_rdlen(rr) == 4) {
			sin = (struct sockaddr_in *)&addr_r[*n_r];
			sin->sin_family = AF_INET;
			sin->sin_port = htons((unsigned short)port);
			memcpy(&sin->sin_addr, ns_rr_rdata(rr), 4);
			(*n_r)++;
		} else if (type == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
			sin6 = (struct sockaddr_in6 *)&addr_r[*n_r];
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((unsigned short)port);
			memcpy(&sin6->sin6_addr, ns_rr_rdata(rr), 16);
			(*n_r)++;
		}
	}
	free(pkt);
	return st;
}

static bool
dns_numeric(const char *host, unsigned port, struct sockaddr_storage *ss)
{
	struct sockaddr_in  *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)port);
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)port);
		return true;
	}
	return false;
}

enum dns_status
dns_addrs(struct dns *d, const char *host, unsigned port,
    struct sockaddr_storage *addr_r, size_t max, size_t *n_r, char *err,
    size_t errsz)
{
	enum dns_status s4, s6;

	*n_r = 0;
	d->d_ad = true;
	if (max == 0)
		return DNS_NOHOST;
	if (dns_numeric(host, port, &addr_r[0])) {
		*n_r = 1;
		return DNS_OK;
	}
	s4 = dns_addr_type(d, host, ns_t_a, port, addr_r, max, n_r, err, errsz);
	if (s4 == DNS_NXDOMAIN)
		return DNS_NXDOMAIN;
	s6 = dns_addr_type(d, host, ns_t_aaaa, port, addr_r, max, n_r, err,
	    errsz);
	if (*n_r > 0)
		return DNS_OK;
	if (s4 == DNS_TEMPFAIL || s6 == DNS_TEMPFAIL)
		return DNS_TEMPFAIL;
	(void)snprintf(err, errsz, "%s: no address (A/AAAA) records", host);
	return DNS_NOHOST;
}

enum dns_status
dns_mx(struct dns *d, const char *domain, struct dns_mx *mx_r, size_t max,
    size_t *n_r, char *err, size_t errsz)
{
	unsigned char	       *pkt;
	size_t			len, na;
	bool			nodata, nullmx;
	enum dns_status		st;
	struct sockaddr_storage ss[1];

	*n_r = 0;
	d->d_ad = true;
	pkt = xmalloc(DNS_PKT_MAX);
	st = dns_query(d, domain, ns_t_mx, pkt, DNS_PKT_MAX, &len, &nodata, err,
	    errsz);
	if (st == DNS_OK && !nodata &&
	    dns_parse_mx(pkt, len, mx_r, max, n_r, &nullmx) == -1) {
		(void)snprintf(err, errsz, "%s: malformed MX answer", domain);
		st = DNS_TEMPFAIL;
	}
	free(pkt);
	if (st != DNS_OK)
		return st;
	if (!nodata && nullmx) {
		(void)snprintf(err, errsz,
		    "%s: domain does not accept mail (null MX)", domain);
		return DNS_NULLMX;
	}
	if (*n_r > 0) {
		dns_sort_mx(mx_r, *n_r);
		return DNS_OK;
	}
	/* RFC 5321 5.1: no MX records, the domain itself is the implicit MX. */
	st = dns_addrs(d, domain, 25, ss, 1, &na, err, errsz);
	if (st != DNS_OK)
		return st == DNS_NOHOST ? DNS_NOHOST : st;
	if (max == 0 || str_copy(mx_r[0].mx_host, DNS_HOST_MAX, domain) == -1)
		return DNS_NOHOST;
	mx_r[0].mx_pref = 0;
	mx_r[0].mx_implicit = true;
	*n_r = 1;
	return DNS_OK;
}

enum dns_status
dns_zone(struct dns *d, const char *name, char *err, size_t errsz)
{
	unsigned char  *pkt = xmalloc(DNS_PKT_MAX);
	size_t		len;
	bool		nodata;
	enum dns_status st;

	st = dns_query(d, name, ns_t_ns, pkt, DNS_PKT_MAX, &len, &nodata, err,
	    errsz);
	free(pkt);
	return st;
}

/* One TXT rdata: its character-strings concatenated; -1 when too long. */
static int
dns_txt_rdata(const unsigned char *rd, size_t n, char *dst, size_t dstsz)
{
	size_t i = 0, o = 0, l;

	while (i < n) {
		l = rd[i++];
		if (l > n - i || o + l >= dstsz)
			return -1;
		memcpy(dst + o, rd + i, l);
		o += l;
		i += l;
	}
	dst[o] = '\0';
	return 0;
}

enum dns_status
dns_txt(struct dns *d, const char *name, char (*txt_r)[DNS_TXT_MAX], size_t max,
    size_t *n_r, char *err, size_t errsz)
{
	unsigned char  *pkt = xmalloc(DNS_PKT_MAX);
	enum dns_status st;
	ns_msg		msg;
	ns_rr		rr;
	int		i, cnt;

	*n_r = 0;
	st = dns_answers(d, name, ns_t_txt, pkt, &msg, &cnt, err, errsz);
	for (i = 0; i < cnt && *n_r < max; i++)
		if (ns_parserr(&msg, ns_s_an, i, &rr) == 0 &&
		    ns_rr_type(rr) == ns_t_txt &&
		    dns_txt_rdata(ns_rr_rdata(rr), ns_rr_rdlen(rr), txt_r[*n_r],
			DNS_TXT_MAX) == 0)
			(*n_r)++;
	free(pkt);
	return st;
}

void
dns_set_trust_ad(struct dns *d, bool on)
{
	if (on)
		d->d_res.options |= (unsigned long)RES_TRUSTAD;
	else
		d->d_res.options &= ~(unsigned long)RES_TRUSTAD;
}

bool
dns_secure(const struct dns *d)
{
#ifdef HAVE_LIBUNBOUND
	if (d->d_ub != NULL)
		return d->d_ad;
#endif
	return d->d_ad && (d->d_res.options & (unsigned long)RES_TRUSTAD) != 0;
}

int
dns_set_validate(struct dns *d, const char *server, const char *anchor,
    char *err, size_t errsz)
{
#ifdef HAVE_LIBUNBOUND
	char host[64], port[8], fwd[80];
	int  rc;

	if (access(anchor, R_OK) == -1) { /* libunbound reads it later */
		(void)snprintf(err, errsz, "trust anchor %s: %s", anchor,
		    strerror(errno));
		return -1;
	}
	if ((d->d_ub = ub_ctx_create()) == NULL) {
		(void)snprintf(err, errsz, "ub_ctx_create failed");
		return -1;
	}
	if ((rc = ub_ctx_async(d->d_ub, 0)) != 0 ||
	    (rc = ub_ctx_set_option(d->d_ub,
		 "do-not-query-localhost:", "no")) != 0 ||
	    (rc = ub_ctx_add_ta_file(d->d_ub, anchor)) != 0)
		goto fail;
	if (server != NULL && *server != '\0') {
		/* the dns_server is a forwarder; it must pass DNSSEC data */
		if (conf_split_hostport(server, host, sizeof(host), port,
			sizeof(port), "53") == -1) {
			rc = UB_SYNTAX;
			goto fail;
		}
		(void)snprintf(fwd, sizeof(fwd), "%s@%s", host, port);
		if ((rc = ub_ctx_set_fwd(d->d_ub, fwd)) != 0)
			goto fail;
	}
	return 0;
fail:
	(void)snprintf(err, errsz, "libunbound: %s (trust anchor %s)",
	    ub_strerror(rc), anchor);
	ub_ctx_delete(d->d_ub);
	d->d_ub = NULL;
	return -1;
#else
	(void)d;
	(void)server;
	(void)anchor;
	(void)snprintf(err, errsz,
	    "built without libunbound (Debian libunbound-dev)");
	return -1;
#endif
}

int
dns_parse_tlsa(const unsigned char *pkt, size_t len, struct dns_tlsa *t_r,
    size_t max, size_t *n_r)
{
	ns_msg		     msg;
	ns_rr		     rr;
	int		     i, cnt;
	size_t		     dl;
	const unsigned char *rd;

	*n_r = 0;
	if (len > DNS_PKT_MAX || ns_initparse(pkt, (int)len, &msg) == -1)
		return -1;
	cnt = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < cnt && *n_r < max; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) == -1)
			return -1;
		if (ns_rr_type(rr) != DNS_T_TLSA || ns_rr_class(rr) != ns_c_in)
			continue;
		if (ns_rr_rdlen(rr) < 4 ||
		    (dl = ns_rr_rdlen(rr) - 3) > DNS_TLSA_DATA_MAX)
			continue; /* malformed or too long: unusable */
		rd = ns_rr_rdata(rr);
		t_r[*n_r].tl_usage = rd[0];
		t_r[*n_r].tl_selector = rd[1];
		t_r[*n_r].tl_mtype = rd[2];
		t_r[*n_r].tl_len = dl;
		memcpy(t_r[*n_r].tl_data, rd + 3, dl);
		(*n_r)++;
	}
	return 0;
}

enum dns_status
dns_tlsa(struct dns *d, const char *host, unsigned port, struct dns_tlsa *t_r,
    size_t max, size_t *n_r, char *err, size_t errsz)
{
	unsigned char  *pkt;
	char		name[DNS_HOST_MAX + 16];
	size_t		len;
	bool		nodata;
	enum dns_status st;

	*n_r = 0;
	d->d_ad = true;
	if (snprintf(name, sizeof(name), "_%u._tcp.%s", port, host) >=
	    (int)sizeof(name)) {
		(void)snprintf(err, errsz, "%s: name too long", host);
		return DNS_TEMPFAIL;
	}
	pkt = xmalloc(DNS_PKT_MAX);
	st = dns_query(d, name, DNS_T_TLSA, pkt, DNS_PKT_MAX, &len, &nodata,
	    err, errsz);
	if (st == DNS_OK && !nodata &&
	    dns_parse_tlsa(pkt, len, t_r, max, n_r) == -1) {
		(void)snprintf(err, errsz, "%s: malformed TLSA answer", name);
		st = DNS_TEMPFAIL;
	}
	free(pkt);
	if (st == DNS_OK && *n_r == 0) {
		(void)snprintf(err, errsz, "%s: no TLSA records", name);
		return DNS_NOHOST;
	}
	return st == DNS_NXDOMAIN ? DNS_NOHOST : st;
}
