/*
 * The shaping file parser and the throttle-reply classifier (shaping.h).
 * Pure: no I/O, no globals that change, no allocation.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "shaping.h"

/* Texts that mean "slow down" whatever the code (lower case). From the
 * providers' public documentation and Postfix/Exim defaults. */
static const char *const shaping_builtin[] = {
	"too many connections",
	"too many concurrent",
	"too many sessions",
	"too many messages",
	"too much mail",
	"rate limit",
	"ratelimit",
	"rate-limit",
	"rate limited",
	"unusual rate",
	"exceeded the rate",
	"throttl",
	"slow down",
	"server busy",
	"temporarily deferred",
	"unexpected volume",
	"[ts01]",
	"[ts02]",
	"[ts03]",
	"[tss04]",
	"try again later, closing connection",
	"connection limit",
	"too many recipients this",
	"reputation",
};

enum shaping_key {
	SK_CONNS,
	SK_MSGS,
	SK_RATE,
	SK_RCPT,
	SK_SLOW_CONNS,
	SK_SLOW_RATE,
	SK_SLOW_FOR,
	SK_SUSP_AFTER,
	SK_SUSP_FOR,
	SK_DOMAINS,
	SK_THROTTLE,
	SK_MX,
	SK_TLS
};

static const struct {
	const char	*name;
	enum shaping_key key;
	uint32_t	 min, max;
} shaping_keys[] = {
	{ .name = "connections", .key = SK_CONNS, .min = 1, .max = 10000 },
	{ .name = "messages_per_connection",
	    .key = SK_MSGS,
	    .min = 1,
	    .max = 1000000 },
	{ .name = "rate", .key = SK_RATE },
	{ .name = "recipients_per_transaction",
	    .key = SK_RCPT,
	    .min = 1,
	    .max = 100000 },
	{ .name = "slowed_connections",
	    .key = SK_SLOW_CONNS,
	    .min = 1,
	    .max = 10000 },
	{ .name = "slowed_rate", .key = SK_SLOW_RATE },
	{ .name = "slow_for", .key = SK_SLOW_FOR, .min = 1, .max = 7 * 86400 },
	{ .name = "suspend_after",
	    .key = SK_SUSP_AFTER,
	    .min = 0,
	    .max = 10000 },
	{ .name = "suspend_for",
	    .key = SK_SUSP_FOR,
	    .min = 1,
	    .max = 7 * 86400 },
	{ .name = "domains", .key = SK_DOMAINS },
	{ .name = "throttle_text", .key = SK_THROTTLE },
	{ .name = "mx", .key = SK_MX },
	{ .name = "tls", .key = SK_TLS },
};

/* SHAPING_TLS_* - 1 */
static const char *const shaping_tls_names[] = { "none", "may", "encrypt",
	"verify", "secure" };

static int
shaping_tls(const char *v, uint32_t *r)
{
	size_t i;

	for (i = 0;
	     i < sizeof(shaping_tls_names) / sizeof(shaping_tls_names[0]); i++)
		if (strcmp(v, shaping_tls_names[i]) == 0) {
			*r = (uint32_t)i + 1;
			return 0;
		}
	return -1;
}

struct shaping_parser {
	struct shaping *sh;
	int		cur; /* -1: [default] or before any section */
	bool		cur_has_domains;
	char	       *why;
	size_t		whysz;
};

static int shaping_fail(struct shaping_parser *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
shaping_fail(struct shaping_parser *p, int st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(p->why, p->whysz, fmt, ap);
	va_end(ap);
	return st;
}

static int
shaping_u32(const char *v, uint32_t min, uint32_t max, uint32_t *r)
{
	char		  *end;
	unsigned long long n;

	if (!isdigit((unsigned char)*v))
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*r = (uint32_t)n;
	return 0;
}

/* seconds: "90", "30s", "5m", "2h", "1d" */
static int
shaping_dur(const char *v, uint32_t min, uint32_t max, uint32_t *r)
{
	char	 num[32];
	size_t	 n = strlen(v);
	uint32_t mul = 1, x;

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, v, n + 1);
	switch (num[n - 1]) {
	case 's':
		num[n - 1] = '\0';
		break;
	case 'm':
		mul = 60;
		num[n - 1] = '\0';
		break;
	case 'h':
		mul = 3600;
		num[n - 1] = '\0';
		break;
	case 'd':
		mul = 86400;
		num[n - 1] = '\0';
		break;
	default:
		break;
	}
	if (shaping_u32(num, 0, UINT32_MAX / mul, &x) == -1 || x * mul < min ||
	    x * mul > max)
		return -1;
	*r = x * mul;
	return 0;
}

int
shaping_rate_parse(const char *v, struct shaping_rate *r)
{
	char	    num[32];
	const char *slash = strchr(v, '/');
	size_t	    n = slash ? (size_t)(slash - v) : strlen(v);

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, v, n);
	num[n] = '\0';
	if (shaping_u32(num, 0, 1000000, &r->n) == -1)
		return -1;
	if (slash == NULL)
		return r->n == 0 ? (r->per_s = 1, 0) : -1; /* "0": none */
	if (strcmp(slash, "/s") == 0)
		r->per_s = 1;
	else if (strcmp(slash, "/m") == 0)
		r->per_s = 60;
	else if (strcmp(slash, "/h") == 0)
		r->per_s = 3600;
	else
		return -1;
	return 0;
}

void
shaping_rate_format(const struct shaping_rate *r, char *dst, size_t dstsz)
{
	static const struct {
		uint32_t u;
		char	 c;
	} unit[] = { { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t i;

	if (r->n == 0) {
		(void)snprintf(dst, dstsz, "-");
		return;
	}
	for (i = 0; i < 3; i++) /* the file's own unit first */
		if (r->per_s == unit[i].u) {
			(void)snprintf(dst, dstsz, "%u/%c", r->n, unit[i].c);
			return;
		}
	/* a share (shaping_share): 60 per 120 s is 30/m; 1 per 3 s stays */
	for (i = 0; i < 3; i++)
		if (r->per_s % unit[i].u == 0 &&
		    r->n % (r->per_s / unit[i].u) == 0) {
			(void)snprintf(dst, dstsz, "%u/%c",
			    r->n / (r->per_s / unit[i].u), unit[i].c);
			return;
		}
	(void)snprintf(dst, dstsz, "%u/%us", r->n, r->per_s);
}

static uint32_t
shaping_share_div(uint32_t v, uint32_t n)
{
	if (v == 0)
		return 0; /* unlimited stays unlimited */
	v = (v + n - 1) / n;
	return v > 0 ? v : 1;
}

static void
shaping_share_rate(struct shaping_rate *r, uint32_t n)
{
	uint64_t per = (uint64_t)r->per_s * n;

	if (r->n == 0)
		return;
	/* n/(per_s * N): exact, a rate of 1/s shared by 3 is 1 per 3 s */
	if (per <= UINT32_MAX)
		r->per_s = (uint32_t)per;
	else
		r->n = r->n / n > 0 ? r->n / n : 1;
}

void
shaping_share(struct shaping_limits *l, uint32_t n)
{
	if (n <= 1)
		return;
	l->sl_conns = shaping_share_div(l->sl_conns, n);
	l->sl_slow_conns = shaping_share_div(l->sl_slow_conns, n);
	shaping_share_rate(&l->sl_rate, n);
	shaping_share_rate(&l->sl_slow_rate, n);
}

static bool
shaping_domain_ok(const char *d)
{
	size_t i, n = strlen(d);

	if (n == 0 || n >= SHAPING_DOMAIN_MAX || strcmp(d, ".") == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)d[i]) && d[i] != '-' &&
		    d[i] != '.' && d[i] != '_' && d[i] != '[' && d[i] != ']' &&
		    d[i] != ':')
			return false;
	return true;
}

/* A domain (mx false) or an MX host pattern (mx true) of the current rule. */
static int
shaping_add_domain(struct shaping_parser *p, const char *d, bool mx)
{
	struct shaping	      *sh = p->sh;
	struct shaping_domain *v = mx ? sh->sh_mx : sh->sh_doms;
	size_t		      *nv = mx ? &sh->sh_nmx : &sh->sh_ndoms;
	size_t		       i, n = strlen(d);

	if (!shaping_domain_ok(d))
		return shaping_fail(p, SHAPING_EVALUE, "bad %s \"%.200s\"",
		    mx ? "mx" : "domain", d);
	for (i = 0; i < *nv; i++)
		if (strcasecmp(v[i].sd_name, d) == 0)
			return shaping_fail(p, SHAPING_EDUP, "%s listed twice",
			    d);
	if (*nv >= (mx ? SHAPING_MX_MAX : SHAPING_DOMAINS_MAX))
		return shaping_fail(p, SHAPING_ELIMIT,
		    "more than %d %s entries",
		    mx ? SHAPING_MX_MAX : SHAPING_DOMAINS_MAX,
		    mx ? "mx" : "domain");
	for (i = 0; i <= n; i++)
		v[*nv].sd_name[i] = (char)tolower((unsigned char)d[i]);
	v[(*nv)++].sd_rule = (uint16_t)p->cur;
	return SHAPING_OK;
}

static int
shaping_domains(struct shaping_parser *p, char *v, bool mx)
{
	char *w, *save = v;
	int   st;

	if (p->cur < 0)
		return shaping_fail(p, SHAPING_EKEY,
		    "%s is not allowed in [default]", mx ? "mx" : "domains");
	for (;;) {
		while (*save == ' ' || *save == '\t' || *save == ',')
			save++;
		if (*save == '\0')
			break;
		w = save;
		while (*save != '\0' && *save != ' ' && *save != '\t' &&
		    *save != ',')
			save++;
		if (*save != '\0')
			*save++ = '\0';
		if ((st = shaping_add_domain(p, w, mx)) != SHAPING_OK)
			return st;
	}
	if (!mx)
		p->cur_has_domains = true;
	return SHAPING_OK;
}

static int
shaping_throttle(struct shaping_parser *p, const char *v)
{
	struct shaping *sh = p->sh;
	size_t		i, n = strlen(v);

	if (p->cur >= 0)
		return shaping_fail(p, SHAPING_EKEY,
		    "%s is allowed in [default] only", "throttle_text");
	if (n == 0 || n >= SHAPING_PATTERN_MAX)
		return shaping_fail(p, SHAPING_EVALUE,
		    "%s: empty or longer than 127 bytes", "throttle_text");
	if (sh->sh_npat >= SHAPING_PATTERNS_MAX)
		return shaping_fail(p, SHAPING_ELIMIT,
		    "more than %s throttle_text lines", "64");
	for (i = 0; i <= n; i++)
		sh->sh_pat[sh->sh_npat][i] = (char)tolower((unsigned char)v[i]);
	sh->sh_npat++;
	return SHAPING_OK;
}

/* One "key = value" into the current section's limits. */
static int
shaping_set(struct shaping_parser *p, const char *k, char *v)
{
	struct shaping_limits *l = p->cur < 0 ? &p->sh->sh_def
					      : &p->sh->sh_rules[p->cur].sr_lim;
	size_t		       i;
	int		       rc = 0;

	for (i = 0; i < sizeof(shaping_keys) / sizeof(shaping_keys[0]); i++)
		if (strcmp(shaping_keys[i].name, k) == 0)
			break;
	if (i == sizeof(shaping_keys) / sizeof(shaping_keys[0]))
		return shaping_fail(p, SHAPING_EKEY, "unknown key \"%.100s\"",
		    k);
	switch (shaping_keys[i].key) {
	case SK_DOMAINS:
	case SK_MX:
		return shaping_domains(p, v, shaping_keys[i].key == SK_MX);
	case SK_THROTTLE:
		return shaping_throttle(p, v);
	case SK_RATE:
		rc = shaping_rate_parse(v, &l->sl_rate);
		break;
	case SK_TLS:
		rc = shaping_tls(v, &l->sl_tls);
		break;
	case SK_SLOW_RATE:
		rc = shaping_rate_parse(v, &l->sl_slow_rate);
		break;
	case SK_SLOW_FOR:
	case SK_SUSP_FOR:
		rc = shaping_dur(v, shaping_keys[i].min, shaping_keys[i].max,
		    shaping_keys[i].key == SK_SLOW_FOR ? &l->sl_slow_for
						       : &l->sl_suspend_for);
		break;
	default:
		rc = shaping_u32(v, shaping_keys[i].min, shaping_keys[i].max,
		    shaping_keys[i].key == SK_CONNS	 ? &l->sl_conns
			: shaping_keys[i].key == SK_MSGS ? &l->sl_msgs_per_conn
			: shaping_keys[i].key == SK_RCPT ? &l->sl_rcpt_per_tx
			: shaping_keys[i].key == SK_SLOW_CONNS
			? &l->sl_slow_conns
			: &l->sl_suspend_after);
		if (shaping_keys[i].key == SK_SUSP_AFTER)
			l->sl_set |= SHAPING_SET_SUSPEND_AFTER;
		break;
	}
	if (rc == -1)
		return shaping_fail(p, SHAPING_EVALUE, "bad value for %.100s",
		    k);
	return SHAPING_OK;
}

/* A section without `domains` names its own domain. */
static int
shaping_close_section(struct shaping_parser *p)
{
	if (p->cur < 0 || p->cur_has_domains)
		return SHAPING_OK;
	return shaping_add_domain(p, p->sh->sh_rules[p->cur].sr_name, false);
}

static int
shaping_section(struct shaping_parser *p, char *s, size_t n)
{
	struct shaping *sh = p->sh;
	size_t		i;
	int		st;

	if (n < 3 || s[n - 1] != ']')
		return shaping_fail(p, SHAPING_ESYNTAX, "%s",
		    "bad section header");
	s[n - 1] = '\0';
	s++;
	if ((st = shaping_close_section(p)) != SHAPING_OK)
		return st;
	if (strcmp(s, "default") == 0) {
		p->cur = -1;
		p->cur_has_domains = false;
		return SHAPING_OK;
	}
	if (strlen(s) >= SHAPING_NAME_MAX || !shaping_domain_ok(s))
		return shaping_fail(p, SHAPING_EVALUE,
		    "bad section name \"%.100s\"", s);
	for (i = 0; i < sh->sh_nrules; i++)
		if (strcasecmp(sh->sh_rules[i].sr_name, s) == 0)
			return shaping_fail(p, SHAPING_EDUP,
			    "section [%.100s] given twice", s);
	if (sh->sh_nrules >= SHAPING_RULES_MAX)
		return shaping_fail(p, SHAPING_ELIMIT, "more than %s sections",
		    "256");
	(void)str_copy(sh->sh_rules[sh->sh_nrules].sr_name, SHAPING_NAME_MAX,
	    s);
	p->cur = (int)sh->sh_nrules++;
	p->cur_has_domains = false;
	return SHAPING_OK;
}

static char *
shaping_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int
shaping_line(struct shaping_parser *p, char *line)
{
	char *hash, *eq, *k, *v;

	if ((hash = strchr(line, '#')) != NULL)
		*hash = '\0';
	line = shaping_trim(line);
	if (*line == '\0')
		return SHAPING_OK;
	if (*line == '[')
		return shaping_section(p, line, strlen(line));
	if ((eq = strchr(line, '=')) == NULL)
		return shaping_fail(p, SHAPING_ESYNTAX, "%s",
		    "expected key = value");
	*eq = '\0';
	k = shaping_trim(line);
	v = shaping_trim(eq + 1);
	if (*k == '\0' || *v == '\0')
		return shaping_fail(p, SHAPING_ESYNTAX, "%s",
		    "expected key = value");
	return shaping_set(p, k, v);
}

enum shaping_status
shaping_parse(const char *text, size_t len, struct shaping *sh_r,
    size_t *line_r, char *why, size_t whysz)
{
	struct shaping_parser p = { sh_r, -1, false, why, whysz };
	char		      line[SHAPING_LINE_MAX + 1];
	size_t		      off = 0, n, lineno = 0;
	const char	     *nl;
	int		      st;

	memset(sh_r, 0, sizeof(*sh_r));
	*line_r = 0;
	if (whysz > 0)
		why[0] = '\0';
	while (off < len) {
		lineno++;
		nl = memchr(text + off, '\n', len - off);
		n = nl ? (size_t)(nl - (text + off)) : len - off;
		*line_r = lineno;
		if (n > SHAPING_LINE_MAX)
			return shaping_fail(&p, SHAPING_ELIMIT, "%s",
			    "line longer than 1024 bytes");
		if (memchr(text + off, '\0', n) != NULL)
			return shaping_fail(&p, SHAPING_ESYNTAX, "%s",
			    "NUL byte");
		memcpy(line, text + off, n);
		line[n] = '\0';
		if ((st = shaping_line(&p, line)) != SHAPING_OK)
			return (enum shaping_status)st;
		off += n + (nl != NULL);
	}
	*line_r = lineno + 1;
	if ((st = shaping_close_section(&p)) != SHAPING_OK)
		return (enum shaping_status)st;
	*line_r = 0;
	return SHAPING_OK;
}

/* Exact name first, then the longest ".suffix" (".b.com" matches
 * "b.com" and "x.b.com"). */
static int
shaping_lookup(const struct shaping_domain *v, size_t n, const char *domain)
{
	size_t i, dl = strlen(domain), sl, best = 0;
	int    r = -1;

	for (i = 0; i < n; i++)
		if (strcasecmp(v[i].sd_name, domain) == 0)
			return v[i].sd_rule;
	for (i = 0; i < n; i++) {
		sl = strlen(v[i].sd_name);
		if (v[i].sd_name[0] != '.' || sl <= best)
			continue;
		if ((dl + 1 == sl &&
			strcasecmp(v[i].sd_name + 1, domain) == 0) ||
		    (dl > sl &&
			strcasecmp(domain + dl - sl, v[i].sd_name) == 0)) {
			best = sl;
			r = v[i].sd_rule;
		}
	}
	return r;
}

int
shaping_match(const struct shaping *sh, const char *domain)
{
	return sh == NULL ? -1
			  : shaping_lookup(sh->sh_doms, sh->sh_ndoms, domain);
}

int
shaping_match_mx(const struct shaping *sh, const char *mxhost)
{
	size_t n = strlen(mxhost);
	char   h[SHAPING_DOMAIN_MAX];

	if (sh == NULL || n == 0 || n >= sizeof(h))
		return -1;
	memcpy(h, mxhost, n + 1);
	if (h[n - 1] == '.')
		h[n - 1] = '\0'; /* a rooted name */
	return shaping_lookup(sh->sh_mx, sh->sh_nmx, h);
}

void
shaping_dest_name(const struct shaping *sh, const char *domain, char *dst,
    size_t dstsz)
{
	int    r = shaping_match(sh, domain);
	size_t i;

	if (r >= 0) {
		(void)str_copy(dst, dstsz, sh->sh_rules[r].sr_name);
		return;
	}
	for (i = 0; i + 1 < dstsz && domain[i] != '\0'; i++)
		dst[i] = (char)tolower((unsigned char)domain[i]);
	if (dstsz > 0)
		dst[i] = '\0';
}

static uint32_t
shaping_pick(uint32_t rule, uint32_t def, uint32_t builtin)
{
	return rule != 0 ? rule : def != 0 ? def : builtin;
}

static struct shaping_rate
shaping_pick_rate(struct shaping_rate rule, struct shaping_rate def,
    struct shaping_rate builtin)
{
	return rule.n != 0 ? rule : def.n != 0 ? def : builtin;
}

static uint32_t
shaping_min(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

void
shaping_effective(const struct shaping *sh, int rule, uint32_t workers,
    uint32_t msgs_default, uint32_t rcpt_max, struct shaping_limits *r)
{
	static const struct shaping_limits zero;
	const struct shaping_limits	  *d = sh != NULL ? &sh->sh_def : &zero;
	const struct shaping_limits	  *l = sh != NULL && rule >= 0 &&
		      (size_t)rule < sh->sh_nrules
		  ? &sh->sh_rules[rule].sr_lim
		  : &zero;
	struct shaping_rate		   none = { 0, 1 }, slow = { 60, 60 };

	workers = workers == 0 ? 1 : workers;
	memset(r, 0, sizeof(*r));
	r->sl_conns = shaping_min(shaping_pick(l->sl_conns, d->sl_conns,
				      workers / 2 > 0 ? workers / 2 : 1),
	    workers);
	r->sl_msgs_per_conn = shaping_pick(l->sl_msgs_per_conn,
	    d->sl_msgs_per_conn, msgs_default);
	r->sl_rate = shaping_pick_rate(l->sl_rate, d->sl_rate, none);
	r->sl_rcpt_per_tx = shaping_min(shaping_pick(l->sl_rcpt_per_tx,
					    d->sl_rcpt_per_tx, rcpt_max),
	    rcpt_max);
	r->sl_slow_conns =
	    shaping_min(shaping_pick(l->sl_slow_conns, d->sl_slow_conns,
			    r->sl_conns / 4 > 0 ? r->sl_conns / 4 : 1),
		r->sl_conns);
	r->sl_slow_rate = shaping_pick_rate(l->sl_slow_rate, d->sl_slow_rate,
	    slow);
	r->sl_slow_for = shaping_pick(l->sl_slow_for, d->sl_slow_for, 300);
	r->sl_suspend_after = (l->sl_set & SHAPING_SET_SUSPEND_AFTER)
	    ? l->sl_suspend_after
	    : (d->sl_set & SHAPING_SET_SUSPEND_AFTER) ? d->sl_suspend_after
						      : 5;
	r->sl_suspend_for = shaping_pick(l->sl_suspend_for, d->sl_suspend_for,
	    300);
	r->sl_tls = shaping_pick(l->sl_tls, d->sl_tls, SHAPING_TLS_MAY);
}

/* Case-insensitive substring (needle already lower case). */
static bool
shaping_has(const char *hay, const char *needle)
{
	size_t i, n = strlen(needle);

	for (; *hay != '\0'; hay++) {
		for (i = 0; i < n && hay[i] != '\0' &&
		     tolower((unsigned char)hay[i]) == needle[i];
		     i++)
			;
		if (i == n)
			return true;
	}
	return false;
}

/* The enhanced code's class and subject ("4.7.1" -> 7, detail 1) or -1. */
static int
shaping_enhanced(const char *reply, int *detail_r)
{
	const char *p = reply;
	char	   *end;
	long	    subj, det;

	while (isdigit((unsigned char)*p))
		p++;
	while (*p == ' ' || *p == '-')
		p++;
	if (p[0] != '4' || p[1] != '.')
		return -1;
	subj = strtol(p + 2, &end, 10);
	if (end == p + 2 || *end != '.' || subj < 0 || subj > 999)
		return -1;
	det = strtol(end + 1, &end, 10);
	if (det < 0 || det > 999)
		return -1;
	*detail_r = (int)det;
	return (int)subj;
}

enum shaping_reply
shaping_classify(const struct shaping *sh, const char *reply)
{
	size_t i;
	int    subj, det = 0;

	if (reply[0] != '4')
		return SHAPING_REPLY_OK;
	subj = shaping_enhanced(reply, &det);
	if (subj == 4 && (det == 1 || det == 2))
		return SHAPING_REPLY_CONNFAIL;
	if (shaping_has(reply, "greylist") || shaping_has(reply, "graylist"))
		return SHAPING_REPLY_OK;
	for (i = 0; i < sizeof(shaping_builtin) / sizeof(shaping_builtin[0]);
	     i++)
		if (shaping_has(reply, shaping_builtin[i]))
			return SHAPING_REPLY_THROTTLE;
	for (i = 0; sh != NULL && i < sh->sh_npat; i++)
		if (shaping_has(reply, sh->sh_pat[i]))
			return SHAPING_REPLY_THROTTLE;
	/* 421: the server closes the channel; 4.7.x: policy/reputation
	 * (4.7.5 is our own TLS policy refusal, not the peer's word) */
	if (strncmp(reply, "421", 3) == 0 || (subj == 7 && det != 5))
		return SHAPING_REPLY_THROTTLE;
	return SHAPING_REPLY_OK;
}

/* ---- MX host sets */

static bool
shaping_mxset_char(int c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_';
}

void
shaping_mxset_add(struct shaping_mxset *ms, const char *host)
{
	char   h[SHAPING_DOMAIN_MAX];
	size_t i, n = strlen(host);
	int    c = 1;

	if (n > 1 && host[n - 1] == '.')
		n--; /* a rooted name */
	if (n == 0 || n >= sizeof(h)) {
		ms->ms_bad = true;
		return;
	}
	for (i = 0; i < n; i++) {
		if (!shaping_mxset_char((unsigned char)host[i])) {
			ms->ms_bad = true;
			return;
		}
		h[i] = (char)tolower((unsigned char)host[i]);
	}
	h[n] = '\0';
	for (i = 0; i < ms->ms_n && (c = strcmp(ms->ms_host[i], h)) < 0; i++)
		continue;
	if (i < ms->ms_n && c == 0)
		return; /* an MX host with several addresses */
	if (ms->ms_n == SHAPING_MXSET_MAX) {
		ms->ms_bad = true;
		return;
	}
	memmove(&ms->ms_host[i + 1], &ms->ms_host[i],
	    (ms->ms_n - i) * sizeof(ms->ms_host[0]));
	memcpy(ms->ms_host[i], h, n + 1);
	ms->ms_n++;
}

/* "+N#HASH}": the hosts left out, a hash of the whole list */
#define SHAPING_MXSET_TAIL (1 + 2 + 1 + 16 + 1)

int
shaping_mxset_key(const struct shaping_mxset *ms, char *dst, size_t dstsz)
{
	uint64_t    h = 14695981039346656037ull;
	size_t	    i, len, total = sizeof(SHAPING_MXSET_PREFIX); /* and '}' */
	const char *p;

	if (dstsz > 0)
		dst[0] = '\0';
	if (ms->ms_n == 0 || ms->ms_bad ||
	    dstsz < sizeof(SHAPING_MXSET_PREFIX) + SHAPING_MXSET_TAIL + 8)
		return -1;
	for (i = 0; i < ms->ms_n; i++) {
		for (p = ms->ms_host[i]; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		h = (h ^ ',') * 1099511628211ull;
		total += strlen(ms->ms_host[i]) + (i > 0);
	}
	len = strlen(SHAPING_MXSET_PREFIX);
	memcpy(dst, SHAPING_MXSET_PREFIX, len + 1);
	for (i = 0; i < ms->ms_n; i++) {
		size_t hl = strlen(ms->ms_host[i]) + (i > 0);

		if (total + 1 > dstsz &&
		    len + hl + 1 + SHAPING_MXSET_TAIL + 1 > dstsz)
			break;
		(void)snprintf(dst + len, dstsz - len, "%s%s", i > 0 ? "," : "",
		    ms->ms_host[i]);
		len += hl;
	}
	if (i == ms->ms_n)
		(void)snprintf(dst + len, dstsz - len, "}");
	else
		(void)snprintf(dst + len, dstsz - len, "%s+%zu#%016llx}",
		    i > 0 ? "," : "", ms->ms_n - i, (unsigned long long)h);
	return 0;
}

bool
shaping_mxset_name(const char *name)
{
	return strncmp(name, SHAPING_MXSET_PREFIX,
		   strlen(SHAPING_MXSET_PREFIX)) == 0;
}
