#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cidr.h"
#include "conf.h"
#include "conf_keys.h"
#include "srcaddr.h"
#include "log.h"
#include "priv.h"
#include "xmem.h"

#define CONF_LINE_MAX 4096

const char *
conf_default_path(void)
{
	return SYSCONFDIR "/smtpgate/smtpgate.conf";
}

struct conf_unit {
	char		   u_suffix;
	unsigned long long u_mul;
};

static const struct conf_unit conf_time_units[] = { { 's', 1 }, { 'm', 60 },
	{ 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 }, { '\0', 0 } };

static const struct conf_unit conf_size_units[] = { { 'k', 1024 },
	{ 'K', 1024 }, { 'm', 1024 * 1024 }, { 'M', 1024 * 1024 },
	{ 'g', 1024ULL * 1024 * 1024 }, { 'G', 1024ULL * 1024 * 1024 },
	{ '\0', 0 } };

/* Decimal digits, then at most one suffix from units; at most INT64_MAX. */
static int
conf_parse_scaled(const char *s, const struct conf_unit *units, int64_t *r)
{
	char		  *end;
	unsigned long long v;
	unsigned long long mul = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		while (units->u_suffix != '\0' && units->u_suffix != *end)
			units++;
		if (units->u_suffix == '\0' || end[1] != '\0')
			return -1;
		mul = units->u_mul;
	}
	if (v > (unsigned long long)INT64_MAX / mul)
		return -1;
	*r = (int64_t)(v * mul);
	return 0;
}

int
conf_parse_duration(const char *s, time_t *r)
{
	int64_t v;

	if (conf_parse_scaled(s, conf_time_units, &v) == -1)
		return -1;
	*r = (time_t)v;
	return 0;
}

int
conf_parse_size(const char *s, int64_t *r)
{
	return conf_parse_scaled(s, conf_size_units, r);
}

int
conf_parse_bool(const char *s, bool *r)
{
	if (str_ieq(s, "yes") || str_ieq(s, "true") || str_ieq(s, "on") ||
	    strcmp(s, "1") == 0)
		*r = true;
	else if (str_ieq(s, "no") || str_ieq(s, "false") || str_ieq(s, "off") ||
	    strcmp(s, "0") == 0)
		*r = false;
	else
		return -1;
	return 0;
}

int
conf_split_hostport(const char *s, char *host, size_t hostsz, char *port,
    size_t portsz, const char *defport)
{
	const char *colon, *p;
	char	   *end;
	long	    n;

	if (*s == '[') {
		if ((p = strchr(s, ']')) == NULL)
			return -1;
		if (str_ncopy(host, hostsz, s + 1, (size_t)(p - s - 1)) == -1)
			return -1;
		colon = p[1] == ':' ? p + 1 : NULL;
		if (p[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon)
			return -1; /* bare IPv6 needs [] */
		if (str_ncopy(host, hostsz, s,
			colon ? (size_t)(colon - s) : strlen(s)) == -1)
			return -1;
	}
	if (host[0] == '\0')
		return -1;
	if (colon == NULL)
		return str_copy(port, portsz, defport);
	if (!isdigit((unsigned char)colon[1]))
		return -1;
	errno = 0;
	n = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || n < 1 ||
	    n > 65535)
		return -1;
	return str_copy(port, portsz, colon + 1);
}

int
conf_parse_listen(const char *s, struct conf_listen *r, char *err, size_t errsz)
{
	char	    word[256];
	const char *sp;

	memset(r, 0, sizeof(*r));
	r->cl_tls = CONF_TLS_NONE;
	sp = strpbrk(s, " \t");
	if (str_ncopy(word, sizeof(word), s,
		sp ? (size_t)(sp - s) : strlen(s)) == -1 ||
	    conf_split_hostport(word, r->cl_addr, sizeof(r->cl_addr),
		r->cl_port, sizeof(r->cl_port), "25") == -1) {
		(void)snprintf(err, errsz, "bad address \"%s\" (ADDR:PORT)", s);
		return -1;
	}
	if (strcmp(r->cl_addr, "*") == 0)
		(void)str_copy(r->cl_addr, sizeof(r->cl_addr), "0.0.0.0");
	while (sp != NULL) {
		while (*sp == ' ' || *sp == '\t')
			sp++;
		if (*sp == '\0')
			break;
		if (strncmp(sp, "tls=", 4) != 0) {
			(void)snprintf(err, errsz, "unknown option \"%s\"", sp);
			return -1;
		}
		sp += 4;
		if (strncmp(sp, "none", 4) == 0 &&
		    (sp[4] == '\0' || isspace((unsigned char)sp[4])))
			r->cl_tls = CONF_TLS_NONE, sp += 4;
		else if (strncmp(sp, "starttls", 8) == 0 &&
		    (sp[8] == '\0' || isspace((unsigned char)sp[8])))
			r->cl_tls = CONF_TLS_STARTTLS, sp += 8;
		else if (strncmp(sp, "required", 8) == 0 &&
		    (sp[8] == '\0' || isspace((unsigned char)sp[8])))
			r->cl_tls = CONF_TLS_REQUIRED, sp += 8;
		else if (strncmp(sp, "implicit", 8) == 0 &&
		    (sp[8] == '\0' || isspace((unsigned char)sp[8])))
			r->cl_tls = CONF_TLS_IMPLICIT, sp += 8;
		else {
			(void)snprintf(err, errsz,
			    "bad tls= (none|starttls|required|implicit)");
			return -1;
		}
		sp = *sp == '\0' ? NULL : sp;
	}
	return 0;
}

static void
conf_list_add_words(struct conf_list *l, const char *v)
{
	const char *p = v, *e;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		e = p;
		while (*e != '\0' && *e != ' ' && *e != '\t' && *e != ',')
			e++;
		l->v = xreallocarray(l->v, l->n + 1, sizeof(char *));
		l->v[l->n++] = xstrndup(p, (size_t)(e - p));
		p = e;
	}
}

static void
conf_list_clear(struct conf_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static const struct conf_key *
conf_key_find(const char *name)
{
	size_t i;

	for (i = 0; i < conf_nkeys; i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

static bool
conf_enum_ok(const char *choices, const char *v)
{
	const char *p = choices, *e;
	size_t	    n = strlen(v);

	while (*p != '\0') {
		e = strchr(p, '|');
		if (e == NULL)
			e = p + strlen(p);
		if ((size_t)(e - p) == n && strncmp(p, v, n) == 0)
			return true;
		p = *e == '|' ? e + 1 : e;
	}
	return false;
}

/*
 * The member a key's value lives in. CONF_OFF() in conf_keys.c checked at
 * compile time that it has the C type of the key's CONF_T_*, so these are
 * the only places that turn an offset back into a typed pointer.
 */
static void *
conf_member(struct conf *cf, const struct conf_key *k)
{
	return (char *)cf + k->off;
}

#define CONF_STRP(cf, k)  ((char **)conf_member(cf, k))
#define CONF_I64P(cf, k)  ((int64_t *)conf_member(cf, k))
#define CONF_TIMEP(cf, k) ((time_t *)conf_member(cf, k))
#define CONF_BOOLP(cf, k) ((bool *)conf_member(cf, k))
#define CONF_LISTP(cf, k) ((struct conf_list *)conf_member(cf, k))

/* Applies one value. seen[] tracks keys given in the file: a repeatable key
 * given in the file replaces its default instead of adding to it. */
static int
conf_set(struct conf *cf, const struct conf_key *k, const char *v, bool *seen,
    char *why, size_t whysz)
{
	int64_t		   i64;
	time_t		   t;
	bool		   b;
	char		  *end;
	size_t		   idx = (size_t)(k - conf_keys);
	struct conf_listen cl;
	char		   lerr[128];

	switch (k->type) {
	case CONF_T_STR:
	case CONF_T_ENUM:
		if (k->type == CONF_T_ENUM && !conf_enum_ok(k->choices, v)) {
			(void)snprintf(why, whysz, "must be one of %s",
			    k->choices);
			return -1;
		}
		free(*CONF_STRP(cf, k));
		*CONF_STRP(cf, k) = xstrdup(v);
		break;
	case CONF_T_INT:
		errno = 0;
		i64 = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0') {
			(void)snprintf(why, whysz, "not a number: \"%s\"", v);
			return -1;
		}
		goto range;
	case CONF_T_SIZE:
		if (conf_parse_size(v, &i64) == -1) {
			(void)snprintf(why, whysz,
			    "not a size (e.g. 52428800, 64k, 50m, 1g): \"%s\"",
			    v);
			return -1;
		}
	range:
		if (i64 < k->min || i64 > k->max) {
			(void)snprintf(why, whysz,
			    "%lld out of range [%lld, %lld]", (long long)i64,
			    (long long)k->min, (long long)k->max);
			return -1;
		}
		*CONF_I64P(cf, k) = i64;
		break;
	case CONF_T_DURATION:
		if (conf_parse_duration(v, &t) == -1) {
			(void)snprintf(why, whysz,
			    "not a duration (e.g. 30s 5m 4h 5d): \"%s\"", v);
			return -1;
		}
		if (t < k->min || t > k->max) {
			(void)snprintf(why, whysz,
			    "%llds out of range [%llds, %llds]", (long long)t,
			    (long long)k->min, (long long)k->max);
			return -1;
		}
		*CONF_TIMEP(cf, k) = t;
		break;
	case CONF_T_BOOL:
		if (conf_parse_bool(v, &b) == -1) {
			(void)snprintf(why, whysz, "must be yes or no: \"%s\"",
			    v);
			return -1;
		}
		*CONF_BOOLP(cf, k) = b;
		break;
	case CONF_T_LIST:
		if (seen != NULL && !seen[idx])
			conf_list_clear(CONF_LISTP(cf, k));
		conf_list_add_words(CONF_LISTP(cf, k), v);
		break;
	case CONF_T_LINES:
		if (seen != NULL && !seen[idx])
			conf_list_clear(CONF_LISTP(cf, k));
		if (*v == '\0')
			break; /* an empty default: no line */
		CONF_LISTP(cf, k)->v = xreallocarray(CONF_LISTP(cf, k)->v,
		    CONF_LISTP(cf, k)->n + 1, sizeof(char *));
		CONF_LISTP(cf, k)->v[CONF_LISTP(cf, k)->n++] = xstrdup(v);
		break;
	case CONF_T_LISTEN:
		if (conf_parse_listen(v, &cl, lerr, sizeof(lerr)) == -1) {
			(void)snprintf(why, whysz, "%s", lerr);
			return -1;
		}
		if (seen != NULL && !seen[idx])
			cf->cf_nlisten = 0;
		cf->cf_listen = xreallocarray(cf->cf_listen, cf->cf_nlisten + 1,
		    sizeof(cl));
		cf->cf_listen[cf->cf_nlisten++] = cl;
		break;
	}
	if (seen != NULL)
		seen[idx] = true;
	return 0;
}

static int
conf_apply_defaults(struct conf *cf, char *err, size_t errsz)
{
	size_t	    i;
	char	    why[256], host[256];
	const char *d, *nl;
	struct buf  v;

	for (i = 0; i < conf_nkeys; i++) {
		d = conf_keys[i].def;
		if (conf_keys[i].type == CONF_T_LISTEN) {
			/* several default lines separated by \n */
			while (*d != '\0') {
				nl = strchr(d, '\n');
				buf_init(&v, 256);
				(void)buf_append(&v, d,
				    nl ? (size_t)(nl - d) : strlen(d));
				if (conf_set(cf, &conf_keys[i], v.data, NULL,
					why, sizeof(why)) == -1)
					log_panic("default %s: %s",
					    conf_keys[i].name, why);
				buf_release(&v);
				d = nl ? nl + 1 : d + strlen(d);
			}
			continue;
		}
		if (strcmp(d, "@HOSTNAME@") == 0) {
			if (gethostname(host, sizeof(host)) == -1)
				(void)str_copy(host, sizeof(host), "localhost");
			host[sizeof(host) - 1] = '\0';
			d = host;
		}
		if (strncmp(d, "@SPOOL@", 7) == 0)
			continue; /* resolved after the file is read */
		if (conf_set(cf, &conf_keys[i], d, NULL, why, sizeof(why)) ==
		    -1) {
			(void)snprintf(err, errsz, "default %s: %s",
			    conf_keys[i].name, why);
			return -1;
		}
	}
	return 0;
}

/* Values whose syntax the table cannot express (checked once, here, so
 * that every program reports them with FILE:LINE: KEY and exit 2). */
static int
conf_check_values(const struct conf *cf, char *err, size_t errsz)
{
	char	       w[4200], host[256], port[8];
	struct in_addr a4;

	if (cf->cf_hostname[0] == '\0' ||
	    strpbrk(cf->cf_hostname, " \t<>[]") != NULL) {
		(void)snprintf(err, errsz, "%s: not a host name: \"%s\"",
		    conf_where(cf, "hostname", w, sizeof(w)), cf->cf_hostname);
		return -1;
	}
	if (cf->cf_relayhost[0] != '\0' &&
	    conf_split_hostport(cf->cf_relayhost, host, sizeof(host), port,
		sizeof(port), "25") == -1) {
		(void)snprintf(err, errsz, "%s: want HOST:PORT, got \"%s\"",
		    conf_where(cf, "relayhost", w, sizeof(w)),
		    cf->cf_relayhost);
		return -1;
	}
	if (cf->cf_dns_server[0] != '\0' &&
	    (conf_split_hostport(cf->cf_dns_server, host, sizeof(host), port,
		 sizeof(port), "53") == -1 ||
		inet_pton(AF_INET, host, &a4) != 1)) {
		(void)snprintf(err, errsz,
		    "%s: want IPv4ADDR[:PORT], got \"%s\"",
		    conf_where(cf, "dns_server", w, sizeof(w)),
		    cf->cf_dns_server);
		return -1;
	}
	if (cf->cf_event_log[0] != '/') {
		(void)snprintf(err, errsz, "%s: must be an absolute path",
		    conf_where(cf, "event_log", w, sizeof(w)));
		return -1;
	}
	return 0;
}

/* Every word of the list a CIDR range. */
static int
conf_check_cidrs(const struct conf *cf, const struct conf_list *l,
    const char *key, char *err, size_t errsz)
{
	struct cidr c;
	char	    w[4200];
	size_t	    i;

	for (i = 0; i < l->n; i++)
		if (cidr_parse(l->v[i], &c) == -1) {
			(void)snprintf(err, errsz,
			    "%s: not an address range: \"%s\"",
			    conf_where(cf, key, w, sizeof(w)), l->v[i]);
			return -1;
		}
	return 0;
}

/* allow_next_hop (issue 14) and allow_fetch_to: CIDR ranges. */
static int
conf_check_next_hops(const struct conf *cf, char *err, size_t errsz)
{
	if (conf_check_cidrs(cf, &cf->cf_allow_next_hop, "allow_next_hop", err,
		errsz) == -1)
		return -1;
	return conf_check_cidrs(cf, &cf->cf_allow_fetch_to, "allow_fetch_to",
	    err, errsz);
}

/* Host-name syntax: LDH labels of 1 to 63 characters, 253 in all
 * (common/mailaddr.c lives in smtpd's library, not in libcommon). */
bool
conf_hostname_ok(const char *d)
{
	size_t n = 0, i;

	for (i = 0; d[i] != '\0'; i++, n++) {
		if (d[i] == '.') {
			if (n == 0 || d[i - 1] == '-')
				return false;
			n = (size_t)-1;
		} else if (!isalnum((unsigned char)d[i]) && d[i] != '-')
			return false;
		else if ((n == 0 && d[i] == '-') || n >= 63)
			return false;
	}
	return i > 0 && i <= 253 && n > 0 && d[i - 1] != '-';
}

int
conf_node_host(const char *tmpl, const char *node, char *dst, size_t dstsz)
{
	static const char ph[] = "{node}";
	const char	 *p;
	size_t		  at = 0, len;

	while (*tmpl != '\0') {
		if (strncmp(tmpl, ph, sizeof(ph) - 1) == 0) {
			p = node;
			len = strlen(node);
			tmpl += sizeof(ph) - 1;
		} else {
			p = tmpl++;
			len = 1;
		}
		if (len >= dstsz - at)
			return -1;
		memcpy(dst + at, p, len);
		at += len;
	}
	dst[at] = '\0';
	return conf_hostport_ok(dst) ? 0 : -1;
}

bool
conf_hostport_ok(const char *hp)
{
	char	    host[254];
	const char *colon = strchr(hp, ':'), *p;
	long	    port = 0;

	if (colon == NULL)
		return conf_hostname_ok(hp);
	if ((size_t)(colon - hp) >= sizeof(host) || colon[1] == '0')
		return false; /* no leading zero: one spelling per port */
	for (p = colon + 1; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p) ||
		    (port = port * 10 + (*p - '0')) > 65535)
			return false;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = '\0';
	return port > 0 && conf_hostname_ok(host);
}

/* simulator_domain (issue 18): empty or a host name (no address literal). */
static int
conf_check_simulator(const struct conf *cf, char *err, size_t errsz)
{
	const char *d = cf->cf_simulator_domain;
	char	    w[4200];

	if (d[0] == '\0' || conf_hostname_ok(d))
		return 0;
	(void)snprintf(err, errsz, "%s: not a domain name: \"%s\"",
	    conf_where(cf, "simulator_domain", w, sizeof(w)), d);
	return -1;
}

/* feedback_id_sender: empty, or 1 to 64 of [A-Za-z0-9._-] (no colon,
 * no space: it is the last field of Feedback-ID, deliverd/deliverd_fbid.h) */
static int
conf_check_feedback_id(const struct conf *cf, char *err, size_t errsz)
{
	const char *v = cf->cf_feedback_id_sender;
	char	    w[4200];

	if (strlen(v) <= 64 &&
	    strspn(v,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789._-") == strlen(v))
		return 0;
	(void)snprintf(err, errsz,
	    "%s: want up to 64 of A-Z a-z 0-9 . _ -, got \"%.80s\"",
	    conf_where(cf, "feedback_id_sender", w, sizeof(w)), v);
	return -1;
}

/* track_listen (issue 16): one listen line, tls=none or tls=implicit;
 * track_trusted_proxy: address ranges. */
static int
conf_check_track_listen(const struct conf *cf, char *err, size_t errsz)
{
	struct conf_listen l;
	struct cidr	   c;
	char		   w[4200], why[256];
	size_t		   i;

	if (conf_parse_listen(cf->cf_track_listen, &l, why, sizeof(why)) ==
	    -1) {
		(void)snprintf(err, errsz, "%s: %s",
		    conf_where(cf, "track_listen", w, sizeof(w)), why);
		return -1;
	}
	if (l.cl_tls != CONF_TLS_NONE && l.cl_tls != CONF_TLS_IMPLICIT) {
		(void)snprintf(err, errsz, "%s: tls must be none or implicit",
		    conf_where(cf, "track_listen", w, sizeof(w)));
		return -1;
	}
	for (i = 0; i < cf->cf_track_trusted_proxy.n; i++)
		if (cidr_parse(cf->cf_track_trusted_proxy.v[i], &c) == -1) {
			(void)snprintf(err, errsz,
			    "%s: not an address range: \"%s\"",
			    conf_where(cf, "track_trusted_proxy", w, sizeof(w)),
			    cf->cf_track_trusted_proxy.v[i]);
			return -1;
		}
	return 0;
}

/* One line of a CONF_T_LINES key, checked where it is read (FILE:LINE). */
static int
conf_check_line(const struct conf *cf, const struct conf_key *k, const char *v,
    char *why, size_t whysz)
{
	struct srcaddr r;
	char	       name[SRCADDR_NAME_MAX];

	if (strcmp(k->name, "source_pool") != 0 || *v == '\0')
		return 0; /* "key =" alone: no line (the sample's default) */
	if (cf->cf_source_pool.n > SRCADDR_POOL_LINES) {
		(void)snprintf(why, whysz, "more than %d lines",
		    SRCADDR_POOL_LINES);
		return -1;
	}
	return srcaddr_parse_pool(v, name, &r, why, whysz);
}

/* source_address: an address or a pool that source_pool lines define. */
static int
conf_check_sources(const struct conf *cf, char *err, size_t errsz)
{
	struct srcaddr r;
	char	       w[4200], why[256];

	if (cf->cf_source_address[0] != '\0' &&
	    srcaddr_pick(cf->cf_source_address, cf->cf_source_pool.v,
		cf->cf_source_pool.n, NULL, 0, &r, why, sizeof(why)) == -1) {
		(void)snprintf(err, errsz,
		    "%s: %s (want ADDR [HELO-NAME] or a pool name)",
		    conf_where(cf, "source_address", w, sizeof(w)), why);
		return -1;
	}
	return 0;
}

/* Cross-key checks and derived values, after the file. */
static int
conf_finish(struct conf *cf, char *err, size_t errsz)
{
	size_t	   i;
	struct buf b;
	char	   w[4200];

	if (cf->cf_event_log == NULL) {
		buf_init(&b, 4096);
		if (buf_printf(&b, "%s/events.jsonl", cf->cf_spool_dir) == -1) {
			buf_release(&b);
			(void)snprintf(err, errsz, "%s: spool_dir: too long",
			    cf->cf_path);
			return -1;
		}
		cf->cf_event_log = xstrdup(b.data);
		buf_release(&b);
	}
	if (cf->cf_spool_dir[0] != '/') {
		(void)snprintf(err, errsz, "%s: must be an absolute path",
		    conf_where(cf, "spool_dir", w, sizeof(w)));
		return -1;
	}
	if (cf->cf_retry_schedule.n == 0) {
		(void)snprintf(err, errsz, "%s: empty",
		    conf_where(cf, "retry_schedule", w, sizeof(w)));
		return -1;
	}
	free(cf->cf_retry_delays);
	cf->cf_retry_delays = xcalloc(cf->cf_retry_schedule.n, sizeof(time_t));
	cf->cf_nretry_delays = cf->cf_retry_schedule.n;
	for (i = 0; i < cf->cf_retry_schedule.n; i++)
		if (conf_parse_duration(cf->cf_retry_schedule.v[i],
			&cf->cf_retry_delays[i]) == -1 ||
		    cf->cf_retry_delays[i] < 1) {
			(void)snprintf(err, errsz, "%s: not a duration: \"%s\"",
			    conf_where(cf, "retry_schedule", w, sizeof(w)),
			    cf->cf_retry_schedule.v[i]);
			return -1;
		}
	if (conf_check_values(cf, err, errsz) == -1)
		return -1;
	if (conf_check_next_hops(cf, err, errsz) == -1)
		return -1;
	if (conf_check_sources(cf, err, errsz) == -1)
		return -1;
	if (conf_check_track_listen(cf, err, errsz) == -1)
		return -1;
	if (conf_check_simulator(cf, err, errsz) == -1)
		return -1;
	if (conf_check_feedback_id(cf, err, errsz) == -1)
		return -1;
	if ((cf->cf_tls_cert[0] == '\0') != (cf->cf_tls_key[0] == '\0')) {
		(void)snprintf(err, errsz,
		    "%s: tls_cert and tls_key go together",
		    conf_where(cf,
			cf->cf_tls_cert[0] != '\0' ? "tls_cert" : "tls_key", w,
			sizeof(w)));
		return -1;
	}
	return 0;
}

static char *
conf_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s &&
	    (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Closes fp; the file's text (cluster_dsn's password) is wiped from its
 * buffers. */
static void
conf_read_wipe(FILE *fp, char *line, size_t linesz, char *iobuf, size_t iosz)
{
	(void)fclose(fp);
	explicit_bzero(line, linesz);
	explicit_bzero(iobuf, iosz);
}

static int
conf_read_file(struct conf *cf, const char *path, char *err, size_t errsz)
{
	FILE		      *fp;
	char		       line[CONF_LINE_MAX + 2], why[256];
	char		       iobuf[BUFSIZ];
	char		      *p, *eq, *key, *val;
	unsigned	       lineno = 0;
	const struct conf_key *k;
	bool		       seen[256] = { false };

	_Static_assert(sizeof(seen) / sizeof(seen[0]) >= 64,
	    "seen[] too small");
	if (conf_nkeys > sizeof(seen) / sizeof(seen[0]))
		log_panic("conf: too many keys");
	if ((fp = fopen(path, "r")) == NULL) {
		(void)snprintf(err, errsz, "%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	/* our buffer, not a freed one of stdio's: wiped below */
	(void)setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			(void)snprintf(err, errsz, "%s:%u: line too long", path,
			    lineno);
			goto fail;
		}
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		p = conf_trim(line);
		if (*p == '\0')
			continue;
		if ((eq = strchr(p, '=')) == NULL) {
			(void)snprintf(err, errsz,
			    "%s:%u: expected \"key = value\"", path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = conf_trim(p);
		val = conf_trim(eq + 1);
		if ((k = conf_key_find(key)) == NULL) {
			(void)snprintf(err, errsz, "%s:%u: %s: unknown key",
			    path, lineno, key);
			goto fail;
		}
		if (seen[k - conf_keys] && k->type != CONF_T_LIST &&
		    k->type != CONF_T_LISTEN && k->type != CONF_T_LINES) {
			(void)snprintf(err, errsz, "%s:%u: %s: given twice",
			    path, lineno, key);
			goto fail;
		}
		if (conf_set(cf, k, val, seen, why, sizeof(why)) == -1 ||
		    (k->type == CONF_T_LINES &&
			conf_check_line(cf, k, val, why, sizeof(why)) == -1)) {
			(void)snprintf(err, errsz, "%s:%u: %s: %s", path,
			    lineno, key, why);
			goto fail;
		}
		cf->cf_key_lines[k - conf_keys] = lineno;
		if (k->type == CONF_T_LISTEN)
			cf->cf_listen[cf->cf_nlisten - 1].cl_line = lineno;
	}
	if (ferror(fp)) {
		(void)snprintf(err, errsz, "%s: read error: %s", path,
		    strerror(errno));
		goto fail;
	}
	conf_read_wipe(fp, line, sizeof(line), iobuf, sizeof(iobuf));
	return 0;
fail:
	conf_read_wipe(fp, line, sizeof(line), iobuf, sizeof(iobuf));
	return -1;
}

static struct conf *
conf_build(const char *path, char *err, size_t errsz)
{
	struct conf *cf;

	cf = xcalloc(1, sizeof(*cf));
	cf->cf_path = xstrdup(path ? path : "(defaults)");
	cf->cf_key_lines = xcalloc(conf_nkeys, sizeof(*cf->cf_key_lines));
	if (conf_apply_defaults(cf, err, errsz) == -1 ||
	    (path != NULL && conf_read_file(cf, path, err, errsz) == -1) ||
	    conf_finish(cf, err, errsz) == -1) {
		conf_free(&cf);
		return NULL;
	}
	return cf;
}

struct conf *
conf_load(const char *path, char *err, size_t errsz)
{
	return conf_build(path, err, errsz);
}

struct conf *
conf_defaults(char *err, size_t errsz)
{
	return conf_build(NULL, err, errsz);
}

/*
 * Started as root, every program drops to (or creates the spool for) the
 * configured users and group: one that does not exist is a bad value,
 * reported like the others (not as a failure deep in the spool code).
 */
static int
conf_check_users(const struct conf *cf, char *err, size_t errsz)
{
	static const char *const users[] = { "smtpd_user", "spoold_user",
		"deliverd_user" };
	const char		*names[3];
	char			 w[4200];
	uid_t			 uid;
	gid_t			 gid;
	size_t			 i;

	if (!priv_is_root())
		return 0;
	names[0] = cf->cf_smtpd_user;
	names[1] = cf->cf_spoold_user;
	names[2] = cf->cf_deliverd_user;
	for (i = 0; i < 3; i++)
		if (priv_lookup(names[i], &uid, &gid) == -1) {
			(void)snprintf(err, errsz, "%s: unknown user \"%s\"",
			    conf_where(cf, users[i], w, sizeof(w)), names[i]);
			return -1;
		}
	if (priv_lookup_group(cf->cf_group, &gid) == -1) {
		(void)snprintf(err, errsz, "%s: unknown group \"%s\"",
		    conf_where(cf, "smtpgate_group", w, sizeof(w)),
		    cf->cf_group);
		return -1;
	}
	return 0;
}

struct conf *
conf_load_or_exit(const char *path)
{
	struct conf *cf;
	char	     err[1024];

	if (path == NULL)
		path = conf_default_path();
	if ((cf = conf_load(path, err, sizeof(err))) == NULL) {
		(void)fprintf(stderr, "%s\n", err);
		exit(2);
	}
	if (conf_check_users(cf, err, sizeof(err)) == -1) {
		(void)fprintf(stderr, "%s\n", err);
		conf_free(&cf);
		exit(2);
	}
	return cf;
}

/* Values may be secrets (cluster_dsn's password): none stays in freed
 * memory that a later fork hands to a network-facing child. */
static void
conf_str_free(char *v)
{
	if (v != NULL)
		freezero(v, strlen(v));
}

void
conf_forget_secrets(struct conf *cf)
{
	if (cf->cf_cluster_dsn == NULL || cf->cf_cluster_dsn[0] == '\0')
		return;
	conf_str_free(cf->cf_cluster_dsn);
	/* still set: cluster mode is on, only the credentials are gone */
	cf->cf_cluster_dsn = xstrdup("(not in this process)");
}

void
conf_free(struct conf **cfp)
{
	struct conf *cf = *cfp;
	size_t	     i;

	if (cf == NULL)
		return;
	for (i = 0; i < conf_nkeys; i++) {
		switch (conf_keys[i].type) {
		case CONF_T_STR:
		case CONF_T_ENUM:
			conf_str_free(*CONF_STRP(cf, &conf_keys[i]));
			break;
		case CONF_T_LIST:
		case CONF_T_LINES:
			conf_list_clear(CONF_LISTP(cf, &conf_keys[i]));
			break;
		default:
			break;
		}
	}
	free(cf->cf_listen);
	free(cf->cf_retry_delays);
	free(cf->cf_key_lines);
	free(cf->cf_path);
	free(cf);
	*cfp = NULL;
}

const char *
conf_where(const struct conf *cf, const char *key, char *buf, size_t bufsz)
{
	const struct conf_key *k = conf_key_find(key);
	unsigned	       line = 0;

	if (k != NULL && cf->cf_key_lines != NULL)
		line = cf->cf_key_lines[k - conf_keys];
	if (line != 0)
		(void)snprintf(buf, bufsz, "%s:%u: %s", cf->cf_path, line, key);
	else
		(void)snprintf(buf, bufsz, "%s: %s (default)", cf->cf_path,
		    key);
	return buf;
}

const char *
conf_where_listen(const struct conf *cf, const struct conf_listen *cl,
    char *buf, size_t bufsz)
{
	if (cl->cl_line != 0)
		(void)snprintf(buf, bufsz, "%s:%u: listen", cf->cf_path,
		    cl->cl_line);
	else
		(void)snprintf(buf, bufsz, "%s: listen (default)", cf->cf_path);
	return buf;
}
