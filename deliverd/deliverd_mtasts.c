#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "deliverd_mtasts.h"
#include "fetchguard.h"
#include "log.h"
#include "spool.h"
#include "xmem.h"

#define MTASTS_TXT_N   4
/* RFC 8461 5.1: a cached policy is fetched again, proactively, once a day
 * or when less than a day of its max_age is left */
#define MTASTS_REFRESH (24 * 3600)
/* a failed fetch is not tried again for this long (the cached policy, or
 * none, applies meanwhile): a broken policy server costs each worker one
 * mta_sts_timeout per domain per MTASTS_RETRY, not one per message */
#define MTASTS_RETRY   300

struct mtasts_ent {
	char		     domain[DNS_HOST_MAX];
	char		     id[MTASTS_ID_MAX];
	time_t		     expires;
	time_t		     fetched;
	time_t		     next_try; /* after a failed fetch */
	enum tlsres_result   res;      /* that failure, or SUCCESS */
	struct mtasts_policy pol;
};

struct deliverd_mtasts {
	struct mtasts_ent *ent;
	size_t		   n;
	unsigned long	   fetches;
};

struct deliverd_mtasts *
deliverd_mtasts_new(void)
{
	struct deliverd_mtasts *s = xcalloc(1, sizeof(*s));

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		log_warnx("MTA-STS: curl_global_init failed");

	s->ent = xcalloc(DELIVERD_MTASTS_CACHE_MAX, sizeof(*s->ent));
	return s;
}

void
deliverd_mtasts_free(struct deliverd_mtasts **sp)
{
	if (*sp == NULL)
		return;
	free((*sp)->ent);
	free(*sp);
	*sp = NULL;
}

unsigned long
deliverd_mtasts_fetches(const struct deliverd_mtasts *s)
{
	return s->fetches;
}

/* The entry of domain, after dropping the expired ones; NULL if none. */
static struct mtasts_ent *
deliverd_mtasts_find(struct deliverd_mtasts *s, const char *domain, time_t now)
{
	size_t i = 0;

	while (i < s->n)
		if (s->ent[i].expires <= now)
			s->ent[i] = s->ent[--s->n];
		else
			i++;
	for (i = 0; i < s->n; i++)
		if (strcasecmp(s->ent[i].domain, domain) == 0)
			return &s->ent[i];
	return NULL;
}

/* A slot for a new entry: a free one, or the one that expires first. */
static struct mtasts_ent *
deliverd_mtasts_slot(struct deliverd_mtasts *s)
{
	size_t i, k = 0;

	if (s->n < DELIVERD_MTASTS_CACHE_MAX)
		return &s->ent[s->n++];
	for (i = 1; i < s->n; i++)
		if (s->ent[i].expires < s->ent[k].expires)
			k = i;
	return &s->ent[k];
}

/* The id of the domain's one STSv1 record: 0; 1: none; -1: broken or
 * several (RFC 8461 3.1: then no policy is looked for). */
static int
deliverd_mtasts_txt(struct dns *d, const char *domain, char id[MTASTS_ID_MAX],
    char *why, size_t whysz)
{
	char(*txt)[DNS_TXT_MAX], name[DNS_HOST_MAX + 16];
	size_t n, i, nsts = 0;
	int    rc;

	(void)snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	txt = xcalloc(MTASTS_TXT_N, sizeof(*txt));
	if (dns_txt(d, name, txt, MTASTS_TXT_N, &n, why, whysz) != DNS_OK)
		n = 0;
	for (i = 0; i < n; i++)
		if ((rc = mtasts_txt_parse(txt[i], strlen(txt[i]), id)) <= 0)
			nsts += rc == 0 ? 1 : 2;
	free(txt);
	if (nsts == 0)
		return 1;
	if (nsts > 1)
		(void)snprintf(why, whysz,
		    "%.200s: invalid or several STSv1 records", name);
	return nsts == 1 ? 0 : -1;
}

static size_t
deliverd_mtasts_body(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	if (n != 0 && size > (size_t)MTASTS_BODY_MAX / n)
		return 0;
	if (b->len + size * n > MTASTS_BODY_MAX ||
	    buf_append(b, p, size * n) == -1)
		return 0; /* over the limit: libcurl fails the transfer */
	return size * n;
}

/* "mta-sts.DOMAIN:443:ADDR" for CURLOPT_RESOLVE, through dns_server. */
static struct curl_slist *
deliverd_mtasts_resolve(struct dns *d, const char *host, char *why,
    size_t whysz)
{
	struct sockaddr_storage ss[1];
	size_t			n = 0;
	char			a[INET6_ADDRSTRLEN], line[DNS_HOST_MAX + 128];
	const void	       *p;

	if (dns_addrs(d, host, 443, ss, 1, &n, why, whysz) != DNS_OK ||
	    n == 0) {
		if (n == 0 && why[0] == '\0')
			(void)snprintf(why, whysz, "%.200s: no address", host);
		return NULL;
	}
	p = ss[0].ss_family == AF_INET
	    ? (const void *)&((struct sockaddr_in *)&ss[0])->sin_addr
	    : (const void *)&((struct sockaddr_in6 *)&ss[0])->sin6_addr;
	if (inet_ntop(ss[0].ss_family, p, a, sizeof(a)) == NULL)
		return NULL;
	(void)snprintf(line, sizeof(line),
	    ss[0].ss_family == AF_INET ? "%s:443:%s" : "%s:443:[%s]", host, a);
	return curl_slist_append(NULL, line);
}

static void
deliverd_mtasts_setopt(CURL *e, const struct conf *cf, const char *url,
    struct curl_slist *res, struct buf *b)
{
	long t = (long)cf->cf_mta_sts_timeout;

	(void)curl_easy_setopt(e, CURLOPT_URL, url);
	(void)curl_easy_setopt(e, CURLOPT_RESOLVE, res);
	(void)curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	(void)curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* RFC 3.3 */
	(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	(void)curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cf->cf_mta_sts_ca_file[0] != '\0')
		(void)curl_easy_setopt(e, CURLOPT_CAINFO,
		    cf->cf_mta_sts_ca_file);
	(void)curl_easy_setopt(e, CURLOPT_TIMEOUT, t);
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, t < 5 ? t : 5L);
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(e, CURLOPT_USERAGENT, "smtpgate-mta-sts");
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, deliverd_mtasts_body);
	(void)curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
}

/* The HTTP status, the Content-Type; 0 when the fetch is good (200,
 * text/plain), -1 with why. */
static int
deliverd_mtasts_check(CURL *e, CURLcode rc, char *why, size_t whysz)
{
	long	    code = 0;
	const char *ct = NULL;

	if (rc != CURLE_OK) {
		(void)snprintf(why, whysz, "%s", curl_easy_strerror(rc));
		return -1;
	}
	(void)curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	(void)curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct);
	if (code != 200) {
		(void)snprintf(why, whysz, "HTTP status %ld", code);
		return -1;
	}
	if (ct == NULL || strncasecmp(ct, "text/plain", 10) != 0 ||
	    (ct[10] != '\0' && ct[10] != ';' && ct[10] != ' ')) {
		(void)snprintf(why, whysz, "Content-Type %s, not text/plain",
		    ct != NULL ? ct : "missing");
		return -1;
	}
	return 0;
}

/* 0 and the policy; -1 with *res_r and why. */
static int
deliverd_mtasts_fetch(const struct conf *cf, struct dns *d, const char *domain,
    struct mtasts_policy *p, enum tlsres_result *res_r, char *why, size_t whysz)
{
	char		   host[DNS_HOST_MAX + 16], url[DNS_HOST_MAX + 64];
	struct curl_slist *res;
	struct fetchguard  g;
	struct buf	   b;
	CURL		  *e;
	int		   rc = -1;

	*res_r = TLSRES_R_STS_POLICY_FETCH_ERROR;
	(void)snprintf(host, sizeof(host), "mta-sts.%s", domain);
	(void)snprintf(url, sizeof(url), "https://%s/.well-known/mta-sts.txt",
	    host);
	if ((res = deliverd_mtasts_resolve(d, host, why, whysz)) == NULL)
		return -1;
	if ((e = curl_easy_init()) == NULL) {
		curl_slist_free_all(res);
		(void)snprintf(why, whysz, "curl_easy_init failed");
		return -1;
	}
	buf_init(&b, MTASTS_BODY_MAX);
	deliverd_mtasts_setopt(e, cf, url, res, &b);
	fetchguard_init(&g, &cf->cf_allow_fetch_to);
	fetchguard_curl(e, &g);
	if (deliverd_mtasts_check(e, curl_easy_perform(e), why, whysz) == 0) {
		*res_r = TLSRES_R_STS_POLICY_INVALID;
		if (mtasts_policy_parse(b.data != NULL ? b.data : "", b.len, p,
			why, whysz) == 0) {
			*res_r = TLSRES_R_SUCCESS;
			rc = 0;
		}
	} else if (g.fg_refused > 0)
		(void)snprintf(why, whysz, "refused: %s", g.fg_why);
	curl_easy_cleanup(e);
	fetchguard_free(&g);
	curl_slist_free_all(res);
	buf_release(&b);
	return rc;
}

/* true while the cached entry needs no fetch for the TXT id seen */
static bool
deliverd_mtasts_fresh(const struct mtasts_ent *c, int t, const char *id,
    time_t now)
{
	time_t every = MTASTS_REFRESH;

	if (t != 0 || now < c->next_try)
		return true; /* no TXT (RFC 8461 5.1), or a failure is recent */
	if (strcmp(c->id, id) != 0)
		return false;
	if ((time_t)c->pol.max_age / 2 < every)
		every = (time_t)c->pol.max_age / 2;
	return now - c->fetched < every;
}

/* Records a fetch: the policy (res SUCCESS) or a failure, which keeps a
 * cached policy or, with none, caches "no policy" for MTASTS_RETRY. */
static struct mtasts_ent *
deliverd_mtasts_store(struct deliverd_mtasts *s, struct mtasts_ent *c,
    const char *domain, const char *id, const struct mtasts_policy *p,
    enum tlsres_result res, time_t now)
{
	if (res != TLSRES_R_SUCCESS && c != NULL) {
		c->next_try = now + MTASTS_RETRY;
		return c;
	}
	if (c == NULL)
		c = deliverd_mtasts_slot(s);
	memset(c, 0, sizeof(*c));
	(void)snprintf(c->domain, sizeof(c->domain), "%s", domain);
	(void)snprintf(c->id, sizeof(c->id), "%s", id);
	c->fetched = now;
	c->res = res;
	if (res != TLSRES_R_SUCCESS) {
		c->expires = c->next_try = now + MTASTS_RETRY;
		return c; /* c->pol: mode none */
	}
	c->pol = *p;
	c->expires = now + (time_t)(p->max_age > 0 ? p->max_age : 1);
	return c;
}

/* An unexpired policy of the shared cache (LMDB) into this worker's. */
static struct mtasts_ent *
deliverd_mtasts_load(struct deliverd_mtasts *s, struct spool *sp,
    const char *domain, time_t now)
{
	struct spool_mtasts_rec *r;
	struct spool_txn	*t;
	struct mtasts_policy	 p;
	struct mtasts_ent	*c = NULL;
	char			 err[128];

	if (sp == NULL || spool_begin(sp, false, &t) != 0)
		return NULL;
	r = xmalloc(sizeof(*r));
	if (spool_mtasts_get(t, domain, r) == 0 && r->mr_expires > now &&
	    strlen(r->mr_id) < MTASTS_ID_MAX &&
	    mtasts_policy_parse(r->mr_policy, strlen(r->mr_policy), &p, err,
		sizeof(err)) == 0) {
		c = deliverd_mtasts_slot(s);
		memset(c, 0, sizeof(*c));
		(void)snprintf(c->domain, sizeof(c->domain), "%s", domain);
		(void)snprintf(c->id, sizeof(c->id), "%s", r->mr_id);
		c->expires = (time_t)r->mr_expires;
		c->fetched = (time_t)r->mr_fetched;
		c->pol = p;
	}
	spool_abort(&t);
	free(r);
	return c;
}

/* The fetched policy to the scheduler, which stores it (header). */
static void
deliverd_mtasts_emit(struct buf *out, const struct mtasts_ent *c)
{
	char text[sizeof(((struct spool_mtasts_rec *)0)->mr_policy)];

	if (out == NULL ||
	    mtasts_policy_format(&c->pol, '|', text, sizeof(text)) == -1)
		return;
	(void)buf_printf(out, "P\t%s\t%lld\t%lld\t%s\t%s\n", c->domain,
	    (long long)c->expires, (long long)c->fetched, c->id, text);
}

static int
deliverd_mtasts_num(const char *f, int64_t *r)
{
	char	 *end;
	long long v;

	errno = 0;
	v = strtoll(f, &end, 10);
	if (errno != 0 || end == f || *end != '\0' || v < 0)
		return -1;
	*r = (int64_t)v;
	return 0;
}

int
deliverd_mtasts_parse_line(char *l, char **domain_r, struct spool_mtasts_rec *r)
{
	char		    *f[6], *p;
	size_t		     n = 0, i;
	struct mtasts_policy pol;
	char		     err[128];

	for (p = l; n < 6 && p != NULL; n++) {
		f[n] = p;
		if ((p = strchr(p, '\t')) != NULL)
			*p++ = '\0';
	}
	if (n != 6 || p != NULL || strcmp(f[0], "P") != 0 || f[1][0] == '\0' ||
	    strlen(f[1]) >= DNS_HOST_MAX ||
	    deliverd_mtasts_num(f[2], &r->mr_expires) == -1 ||
	    deliverd_mtasts_num(f[3], &r->mr_fetched) == -1 ||
	    strlen(f[5]) >= sizeof(r->mr_policy))
		return -1;
	for (i = 0; f[1][i] != '\0'; i++)
		if (!isalnum((unsigned char)f[1][i]) &&
		    strchr(".-_", f[1][i]) == NULL)
			return -1;
	(void)snprintf(r->mr_policy, sizeof(r->mr_policy), "%s", f[5]);
	for (p = r->mr_policy; (p = strchr(p, '|')) != NULL;)
		*p = '\n';
	if (strlen(f[4]) >= MTASTS_ID_MAX || f[4][0] == '\0' ||
	    mtasts_policy_parse(r->mr_policy, strlen(r->mr_policy), &pol, err,
		sizeof(err)) == -1)
		return -1;
	for (i = 0; f[4][i] != '\0'; i++)
		if (!isalnum((unsigned char)f[4][i]))
			return -1;
	(void)snprintf(r->mr_id, sizeof(r->mr_id), "%s", f[4]);
	*domain_r = f[1];
	return 0;
}

/* A full cache (SPOOL_MTASTS_MAX domains, none expired) gives up the
 * policy that expires first for the new one: the domains mail goes to
 * now keep theirs (h-astate; it used to refuse every new domain). */
static int
deliverd_mtasts_put(struct spool_txn *t, const char *domain,
    const struct spool_mtasts_rec *r)
{
	char old[256];
	int  rc;

	rc = spool_mtasts_put(t, domain, r, (int64_t)time(NULL));
	if (rc != ENOSPC)
		return rc;
	if ((rc = spool_mtasts_evict(t, old, sizeof(old))) != 0)
		return rc;
	log_info("MTA-STS: policy cache full (%d domains): the policy of %s "
		 "(the first to expire) dropped for %s's",
	    SPOOL_MTASTS_MAX, old, domain);
	return spool_mtasts_put(t, domain, r, (int64_t)time(NULL));
}

int
deliverd_mtasts_store_line(struct spool *sp, const char *line, size_t len)
{
	struct spool_mtasts_rec *r = xcalloc(1, sizeof(*r));
	struct spool_txn	*t;
	char			*l = xmalloc(len + 1), *domain;
	int			 rc = -1;

	memcpy(l, line, len);
	l[len] = '\0';
	if (deliverd_mtasts_parse_line(l, &domain, r) == -1) {
		log_warnx("MTA-STS: bad policy line from a worker");
		goto out;
	}
	if ((rc = spool_begin(sp, true, &t)) == 0) {
		if ((rc = deliverd_mtasts_put(t, domain, r)) == 0)
			rc = spool_commit(&t);
		else
			spool_abort(&t);
	}
	if (rc != 0) /* only a cache: the workers fetch again */
		log_warnx("MTA-STS: policy of %s not cached: %s", domain,
		    spool_strerror(rc));
out:
	free(l);
	free(r);
	return rc == 0 ? 0 : -1;
}

void
deliverd_mtasts_get(struct deliverd_mtasts *s, const struct conf *cf,
    struct dns *d, struct spool *sp, struct buf *out, const char *qid,
    const char *domain, struct mtasts_policy *p_r, enum tlsres_result *res_r)
{
	struct mtasts_ent *c;
	char		   id[MTASTS_ID_MAX] = "", why[256] = "";
	time_t		   now = time(NULL);
	int		   t;

	memset(p_r, 0, sizeof(*p_r));
	*res_r = TLSRES_R_SUCCESS;
	if ((c = deliverd_mtasts_find(s, domain, now)) == NULL)
		c = deliverd_mtasts_load(s, sp, domain, now);
	t = deliverd_mtasts_txt(d, domain, id, why, sizeof(why));
	if (c != NULL && deliverd_mtasts_fresh(c, t, id, now)) {
		*p_r = c->pol;
		*res_r = c->res;
		return;
	}
	if (t != 0) {
		if (t == -1) {
			*res_r = TLSRES_R_STS_POLICY_INVALID;
			log_warnx("%s: MTA-STS %s: %s", qid, domain, why);
		}
		return;
	}
	s->fetches++;
	if (deliverd_mtasts_fetch(cf, d, domain, p_r, res_r, why,
		sizeof(why)) == -1) {
		log_warnx("%s: MTA-STS policy of %s (id %s) not fetched: %s%s",
		    qid, domain, id, why,
		    c != NULL && c->res == TLSRES_R_SUCCESS
			? "; the cached policy applies"
			: "");
		deliverd_mtasts_store(s, c, domain, id, NULL, *res_r, now);
		memset(p_r, 0, sizeof(*p_r));
		if (c != NULL && c->res == TLSRES_R_SUCCESS) {
			*p_r = c->pol;
			*res_r = TLSRES_R_SUCCESS;
		}
		return;
	}
	log_info("%s: MTA-STS policy of %s fetched: id %s, mode %s, max_age "
		 "%lu, %zu mx",
	    qid, domain, id, mtasts_mode_name(p_r->mode), p_r->max_age,
	    p_r->n_mx);
	deliverd_mtasts_emit(out,
	    deliverd_mtasts_store(s, c, domain, id, p_r, TLSRES_R_SUCCESS,
		now));
}
