#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mtasts.h"

static const char *const mtasts_modes[] = { "none", "testing", "enforce" };

const char *
mtasts_mode_name(enum mtasts_mode m)
{
	return (unsigned)m < 3 ? mtasts_modes[m] : NULL;
}

int
mtasts_mode_parse(const char *s, size_t len, enum mtasts_mode *r)
{
	size_t i;

	for (i = 0; i < 3; i++)
		if (strlen(mtasts_modes[i]) == len &&
		    memcmp(s, mtasts_modes[i], len) == 0) {
			*r = (enum mtasts_mode)i;
			return 0;
		}
	return -1;
}

static size_t
mtasts_skip_ws(const char *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

/* The id field's value: 1*32 ALPHA / DIGIT. */
static int
mtasts_txt_id(const char *v, size_t n, char id_r[MTASTS_ID_MAX])
{
	size_t i;

	if (n == 0 || n >= MTASTS_ID_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]))
			return -1;
	memcpy(id_r, v, n);
	id_r[n] = '\0';
	return 0;
}

int
mtasts_txt_parse(const char *txt, size_t len, char id_r[MTASTS_ID_MAX])
{
	size_t i = 0, k, e, ve;
	bool   have_id = false;

	if (len < 7 || memcmp(txt, "v=STSv1", 7) != 0)
		return 1;
	i = mtasts_skip_ws(txt, 7, len);
	while (i < len) {
		if (txt[i] != ';')
			return -1;
		i = mtasts_skip_ws(txt, i + 1, len);
		if (i == len)
			break;
		for (k = i; k < len && txt[k] != '='; k++)
			if (!isalnum((unsigned char)txt[k]) && txt[k] != '_' &&
			    txt[k] != '-' && txt[k] != '.')
				return -1;
		if (k == len || k == i)
			return -1;
		for (e = k + 1; e < len && txt[e] != ';'; e++)
			if (txt[e] < 0x21 || txt[e] > 0x7e)
				break;
		ve = e;
		if (k - i == 2 && memcmp(txt + i, "id", 2) == 0) {
			if (have_id ||
			    mtasts_txt_id(txt + k + 1, ve - k - 1, id_r) != 0)
				return -1;
			have_id = true;
		}
		i = mtasts_skip_ws(txt, e, len);
	}
	return have_id ? 0 : -1;
}

static int
mtasts_err(char *err, size_t errsz, const char *why, unsigned line)
{
	snprintf(err, errsz, "line %u: %s", line, why);
	return -1;
}

/* An mx pattern: an optional "*." then a host name of LDH labels. */
static int
mtasts_mx_valid(const char *v, size_t n)
{
	size_t i, lab = 0;

	if (n >= 2 && v[0] == '*' && v[1] == '.') {
		v += 2;
		n -= 2;
	}
	if (n == 0 || n >= MTASTS_HOST_MAX - 2)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] == '.') {
			if (lab == 0)
				return -1;
			lab = 0;
		} else if (isalnum((unsigned char)v[i]) || v[i] == '-' ||
		    v[i] == '_') {
			if (++lab > 63)
				return -1;
		} else
			return -1;
	}
	return lab == 0 ? -1 : 0;
}

static int
mtasts_max_age(const char *v, size_t n, unsigned long *r)
{
	unsigned long x = 0;
	size_t	      i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		x = x * 10 + (unsigned long)(v[i] - '0');
	}
	/* RFC 8461 3.2: up to 31557600; larger values are clamped. */
	*r = x > MTASTS_MAX_AGE_MAX ? MTASTS_MAX_AGE_MAX : x;
	return 0;
}

struct mtasts_seen {
	bool version, mode, max_age;
};

static int
mtasts_field(struct mtasts_policy *p, struct mtasts_seen *s, const char *k,
    size_t kn, const char *v, size_t vn, char *err, size_t errsz, unsigned line)
{
	size_t i;

	if (kn == 7 && memcmp(k, "version", 7) == 0) {
		if (s->version || vn != 5 || memcmp(v, "STSv1", 5) != 0)
			return mtasts_err(err, errsz, "bad version", line);
		s->version = true;
	} else if (kn == 4 && memcmp(k, "mode", 4) == 0) {
		if (s->mode || mtasts_mode_parse(v, vn, &p->mode) != 0)
			return mtasts_err(err, errsz, "bad mode", line);
		s->mode = true;
	} else if (kn == 7 && memcmp(k, "max_age", 7) == 0) {
		if (s->max_age || mtasts_max_age(v, vn, &p->max_age) != 0)
			return mtasts_err(err, errsz, "bad max_age", line);
		s->max_age = true;
	} else if (kn == 2 && memcmp(k, "mx", 2) == 0) {
		if (mtasts_mx_valid(v, vn) != 0)
			return mtasts_err(err, errsz, "bad mx", line);
		if (p->n_mx == MTASTS_MX_MAX)
			return mtasts_err(err, errsz, "too many mx", line);
		for (i = 0; i < vn; i++)
			p->mx[p->n_mx][i] = (char)tolower((unsigned char)v[i]);
		p->mx[p->n_mx++][vn] = '\0';
	}
	return 0;
}

/* One line [s, e): "key:" *WSP value *WSP. */
static int
mtasts_line(struct mtasts_policy *p, struct mtasts_seen *s, const char *l,
    size_t n, char *err, size_t errsz, unsigned line)
{
	size_t c, vs, ve;

	if (n == 0)
		return 0;
	for (c = 0; c < n && l[c] != ':'; c++)
		if (!isalnum((unsigned char)l[c]) && l[c] != '_' &&
		    l[c] != '-' && l[c] != '.')
			return mtasts_err(err, errsz, "bad key", line);
	if (c == n || c == 0)
		return mtasts_err(err, errsz, "no key: value", line);
	vs = mtasts_skip_ws(l, c + 1, n);
	for (ve = n; ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'); ve--)
		;
	return mtasts_field(p, s, l, c, l + vs, ve - vs, err, errsz, line);
}

int
mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p,
    char *err, size_t errsz)
{
	struct mtasts_seen s = { false, false, false };
	size_t		   i = 0, e, n;
	unsigned	   line = 1;

	memset(p, 0, sizeof(*p));
	if (len > MTASTS_BODY_MAX)
		return mtasts_err(err, errsz, "policy too large", 0);
	for (; i < len; line++) {
		for (e = i; e < len && text[e] != '\n'; e++)
			if (text[e] == '\0')
				return mtasts_err(err, errsz, "NUL", line);
		n = e - i;
		if (n > 0 && text[i + n - 1] == '\r')
			n--;
		if (mtasts_line(p, &s, text + i, n, err, errsz, line) != 0)
			return -1;
		i = e + 1;
	}
	if (!s.version || !s.mode || !s.max_age)
		return mtasts_err(err, errsz,
		    "version, mode and max_age are required", 0);
	if (p->mode != MTASTS_MODE_NONE && p->n_mx == 0)
		return mtasts_err(err, errsz, "no mx", 0);
	return 0;
}

bool
mtasts_mx_match(const struct mtasts_policy *p, const char *host)
{
	size_t	    n = strlen(host), i, pn;
	const char *pat, *dot;

	if (n > 0 && host[n - 1] == '.')
		n--;
	if (n == 0)
		return false;
	for (i = 0; i < p->n_mx; i++) {
		pat = p->mx[i];
		pn = strlen(pat);
		if (pat[0] == '*') {
			/* "*.b.c" matches "a.b.c", not "b.c" nor "x.a.b.c" */
			dot = memchr(host, '.', n);
			if (dot == NULL || dot == host)
				continue;
			if ((size_t)(host + n - dot) == pn - 1 &&
			    strncasecmp(dot, pat + 1, pn - 1) == 0)
				return true;
		} else if (pn == n && strncasecmp(host, pat, n) == 0)
			return true;
	}
	return false;
}

int
mtasts_policy_format(const struct mtasts_policy *p, char sep, char *dst,
    size_t dstsz)
{
	size_t i, o;
	int    n;

	n = snprintf(dst, dstsz, "version: STSv1%cmode: %s", sep,
	    mtasts_mode_name(p->mode));
	if (n < 0 || (size_t)n >= dstsz)
		return -1;
	o = (size_t)n;
	for (i = 0; i < p->n_mx; i++) {
		n = snprintf(dst + o, dstsz - o, "%cmx: %s", sep, p->mx[i]);
		if (n < 0 || (size_t)n >= dstsz - o)
			return -1;
		o += (size_t)n;
	}
	n = snprintf(dst + o, dstsz - o, "%cmax_age: %lu", sep, p->max_age);
	return n < 0 || (size_t)n >= dstsz - o ? -1 : 0;
}
