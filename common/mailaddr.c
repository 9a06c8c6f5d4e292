#include "config.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "mailaddr.h"

static bool
ma_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
ma_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
ma_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 atext, plus UTF-8 octets under SMTPUTF8 (RFC 6531 3.3). */
static bool
ma_atext(unsigned char c, unsigned flags)
{
	if (ma_alpha(c) || ma_digit(c))
		return true;
	if (c >= 0x80)
		return (flags & MAILADDR_UTF8) != 0;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Dot-string or quoted-string, exactly len bytes. */
static bool
ma_local_ok(const char *s, size_t len, unsigned flags)
{
	size_t	      i;
	unsigned char c;

	if (len == 0 || len > MAILADDR_LOCAL_MAX)
		return false;
	if (s[0] == '"') {
		if (len < 2 || s[len - 1] != '"')
			return false;
		for (i = 1; i < len - 1; i++) {
			c = (unsigned char)s[i];
			if (c == '\\') {
				/* quoted-pairSMTP: %d92 %d32-126 */
				if (++i >= len - 1)
					return false;
				c = (unsigned char)s[i];
				if (c < 32 || c > 126)
					return false;
			} else if (c == '"' || c < 32 || c == 127 ||
			    (c >= 0x80 && !(flags & MAILADDR_UTF8)))
				return false;
		}
		return true;
	}
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '.') {
			if (i == 0 || i == len - 1 || s[i - 1] == '.')
				return false;
		} else if (!ma_atext(c, flags))
			return false;
	}
	return true;
}

static bool
ma_literal_ok(const char *s, size_t len)
{
	char	      tmp[64];
	unsigned char a6[16];
	size_t	      i;

	if (len < 3 || len - 2 >= sizeof(tmp) || s[len - 1] != ']')
		return false;
	memcpy(tmp, s + 1, len - 2);
	tmp[len - 2] = '\0';
	if (strncmp(tmp, "IPv6:", 5) == 0 || strncmp(tmp, "ipv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, a6) == 1;
	for (i = 0; tmp[i] != '\0'; i++)
		if (!ma_digit((unsigned char)tmp[i]) && tmp[i] != '.')
			return false;
	return inet_pton(AF_INET, tmp, a6) == 1;
}

bool
mailaddr_domain_ok(const char *s, size_t len, unsigned flags)
{
	size_t	      i, lab = 0;
	unsigned char c;

	if (len == 0 || len > MAILADDR_DOMAIN_MAX)
		return false;
	if (s[0] == '[')
		return ma_literal_ok(s, len);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '.') {
			/* A label neither starts nor ends with '-'. */
			if (lab == 0 || s[i - 1] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (ma_alpha(c) || ma_digit(c) ||
		    (c >= 0x80 && (flags & MAILADDR_UTF8))) {
			lab++;
		} else if (c == '-' && lab > 0) {
			lab++;
		} else
			return false;
		if (lab > 63)
			return false;
	}
	return lab > 0 && s[len - 1] != '-';
}

/* local@domain over len bytes (no brackets). */
static enum mailaddr_status
ma_addr_check(const char *s, size_t len, unsigned flags)
{
	size_t at;

	if (len > MAILADDR_PATH_MAX - 2)
		return MAILADDR_TOOLONG;
	/* The last '@' outside quotes separates local part and domain. */
	for (at = len; at > 0; at--)
		if (s[at - 1] == '@')
			break;
	if (at == 0) {
		if (len == 10 && strncasecmp(s, "postmaster", 10) == 0)
			return MAILADDR_OK;
		return MAILADDR_SYNTAX;
	}
	at--;
	if (at > MAILADDR_LOCAL_MAX || len - at - 1 > MAILADDR_DOMAIN_MAX)
		return MAILADDR_TOOLONG;
	if (!ma_local_ok(s, at, flags) ||
	    !mailaddr_domain_ok(s + at + 1, len - at - 1, flags))
		return MAILADDR_SYNTAX;
	return MAILADDR_OK;
}

bool
mailaddr_ok(const char *s, unsigned flags)
{
	return ma_addr_check(s, strlen(s), flags) == MAILADDR_OK;
}

/* Finds the '>' closing a path that starts at s[0] == '<'; quotes respected. */
static size_t
ma_close(const char *s, size_t len)
{
	size_t i;
	bool   inq = false;

	for (i = 1; i < len; i++) {
		if (inq && s[i] == '\\' && i + 1 < len) {
			i++;
			continue;
		}
		if (s[i] == '"')
			inq = !inq;
		else if (!inq && s[i] == '>')
			return i;
	}
	return 0;
}

/* Skips an obsolete source route "@a,@b:" at the start of a path body. */
static enum mailaddr_status
ma_skip_route(const char **p, size_t *n, unsigned flags)
{
	const char *s = *p, *colon, *seg;
	size_t	    i, start;

	if (*n == 0 || s[0] != '@')
		return MAILADDR_OK;
	if ((colon = memchr(s, ':', *n)) == NULL)
		return MAILADDR_SYNTAX;
	start = 0;
	for (i = 0; i <= (size_t)(colon - s); i++) {
		if (s[i] != ',' && s[i] != ':')
			continue;
		seg = s + start;
		if (i - start < 2 || seg[0] != '@' ||
		    !mailaddr_domain_ok(seg + 1, i - start - 1, flags))
			return MAILADDR_SYNTAX;
		start = i + 1;
	}
	*n -= (size_t)(colon - s) + 1;
	*p = colon + 1;
	return MAILADDR_OK;
}

static enum mailaddr_status
ma_params_check(const char *p, size_t n)
{
	struct mailaddr_param mp;
	size_t		      pos = 0;
	int		      rc;

	while ((rc = mailaddr_param_next(p, n, &pos, &mp)) == 1)
		;
	return rc == 0 ? MAILADDR_OK : MAILADDR_PARAMS;
}

enum mailaddr_status
mailaddr_parse_path(const char *arg, size_t len, unsigned flags, char *addr_r,
    size_t addrsz, char *params_r, size_t paramsz)
{
	const char	    *a, *rest;
	size_t		     alen, rlen, close;
	enum mailaddr_status st;

	if (addrsz > 0)
		addr_r[0] = '\0';
	if (paramsz > 0)
		params_r[0] = '\0';
	while (len > 0 && ma_blank((unsigned char)*arg)) {
		arg++;
		len--;
	}
	if (len > 0 && arg[0] == '<') {
		if ((close = ma_close(arg, len)) == 0)
			return MAILADDR_SYNTAX;
		if (close + 1 > MAILADDR_PATH_MAX)
			return MAILADDR_TOOLONG;
		a = arg + 1;
		alen = close - 1;
		rest = arg + close + 1;
		rlen = len - close - 1;
		if (rlen > 0 && !ma_blank((unsigned char)rest[0]))
			return MAILADDR_SYNTAX;
	} else if (len > 0 && (flags & MAILADDR_NOBRACKET_OK)) {
		for (alen = 0;
		     alen < len && !ma_blank((unsigned char)arg[alen]); alen++)
			;
		a = arg;
		rest = arg + alen;
		rlen = len - alen;
	} else
		return MAILADDR_SYNTAX;
	while (rlen > 0 && ma_blank((unsigned char)rest[0])) {
		rest++;
		rlen--;
	}
	while (rlen > 0 && ma_blank((unsigned char)rest[rlen - 1]))
		rlen--;
	if ((st = ma_skip_route(&a, &alen, flags)) != MAILADDR_OK)
		return st;
	if (alen == 0) {
		if (!(flags & MAILADDR_NULL_OK))
			return MAILADDR_NULL;
	} else if ((st = ma_addr_check(a, alen, flags)) != MAILADDR_OK)
		return st;
	if (ma_params_check(rest, rlen) != MAILADDR_OK)
		return MAILADDR_PARAMS;
	if (alen >= addrsz || rlen >= paramsz)
		return MAILADDR_TOOLONG;
	memcpy(addr_r, a, alen);
	addr_r[alen] = '\0';
	memcpy(params_r, rest, rlen);
	params_r[rlen] = '\0';
	return MAILADDR_OK;
}

int
mailaddr_param_next(const char *p, size_t len, size_t *pos,
    struct mailaddr_param *r)
{
	size_t	      i = *pos;
	unsigned char c;

	while (i < len && ma_blank((unsigned char)p[i]))
		i++;
	if (i >= len) {
		*pos = i;
		return 0;
	}
	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	if (!ma_alpha((unsigned char)p[i]) && !ma_digit((unsigned char)p[i]))
		return -1;
	r->key = p + i;
	while (i < len &&
	    (ma_alpha((unsigned char)p[i]) || ma_digit((unsigned char)p[i]) ||
		p[i] == '-'))
		i++;
	r->klen = (size_t)(p + i - r->key);
	r->value = NULL;
	r->vlen = 0;
	if (i < len && p[i] == '=') {
		i++;
		r->value = p + i;
		/* esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 allowed (RFC 6531) */
		while (i < len) {
			c = (unsigned char)p[i];
			if (c == '=' || c <= 32 || c == 127)
				break;
			i++;
		}
		r->vlen = (size_t)(p + i - r->value);
		if (r->vlen == 0)
			return -1;
	}
	if (i < len && !ma_blank((unsigned char)p[i]))
		return -1;
	*pos = i;
	return 1;
}

bool
mailaddr_param_is(const struct mailaddr_param *mp, const char *key)
{
	size_t n = strlen(key);

	return mp->klen == n && strncasecmp(mp->key, key, n) == 0;
}
