/*
 * tlsrpt (tlsrpt.h): RFC 8460 section 3's grammar, strictly:
 *
 *   tlsrpt-record = "v=TLSRPTv1" 1*(field-delim tlsrpt-field) [field-delim]
 *   field-delim   = *WSP ";" *WSP
 *   tlsrpt-rua    = "rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
 *   tlsrpt-ext    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *                   "=" 1*(%x21-3A / %x3C / %x3E-7E)
 *
 * Only mailto: and https: URIs are kept (section 3: others are ignored).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt.h"

#define TLSRPT_V "v=TLSRPTv1"

static size_t
tlsrpt_wsp(const char *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

static int
tlsrpt_fail(char *err, size_t errsz, const char *why)
{
	(void)snprintf(err, errsz, "%s", why);
	return -1;
}

static int
tlsrpt_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* mailto:ADDR[?...]: ADDR percent-decoded into out; 0 when it is one
 * plausible address (local@domain, printable, no specials). */
static int
tlsrpt_mailto(const char *u, size_t n, char out[TLSRPT_URI_MAX])
{
	size_t i, o = 0, at = 0, nat = 0;
	int    c, h, l;

	for (i = 0; i < n && u[i] != '?'; i++) {
		c = (unsigned char)u[i];
		if (c == '%') {
			if (i + 2 >= n || (h = tlsrpt_hex(u[i + 1])) < 0 ||
			    (l = tlsrpt_hex(u[i + 2])) < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c <= 0x20 || c >= 0x7f || strchr("<>,;:\"()[]\\", c))
			return -1;
		if (c == '@') {
			at = o;
			nat++;
		}
		if (o + 1 >= TLSRPT_URI_MAX)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (nat != 1 || at == 0 || at + 1 >= o || out[o - 1] == '.' ||
	    out[at + 1] == '.')
		return -1;
	return 0;
}

/* https://HOST[:PORT][/...]: a host is required, no userinfo. */
static int
tlsrpt_https(const char *u, size_t n)
{
	size_t i, h = strlen("https://");

	for (i = h; i < n && u[i] != '/' && u[i] != '?' && u[i] != '#'; i++)
		if (u[i] == '@')
			return -1;
	return i > h && u[h] != ':' ? 0 : -1;
}

/* One URI of the rua list (printable, no ',' or ';' by construction). */
static void
tlsrpt_uri(const char *u, size_t n, struct tlsrpt_rua *r)
{
	enum tlsrpt_kind k;
	char		 addr[TLSRPT_URI_MAX];

	addr[0] = '\0';
	if (r->n == TLSRPT_RUA_MAX || n >= TLSRPT_URI_MAX)
		goto ignore;
	if (n > 7 && strncasecmp(u, "mailto:", 7) == 0) {
		if (tlsrpt_mailto(u + 7, n - 7, addr) != 0)
			goto ignore;
		k = TLSRPT_MAILTO;
	} else if (n > 8 && strncasecmp(u, "https://", 8) == 0) {
		if (tlsrpt_https(u, n) != 0)
			goto ignore;
		k = TLSRPT_HTTPS;
	} else
		goto ignore;
	r->kind[r->n] = k;
	memcpy(r->uri[r->n], u, n);
	r->uri[r->n][n] = '\0';
	memcpy(r->addr[r->n], addr, sizeof(addr));
	r->n++;
	return;
ignore:
	r->ignored++;
}

/* The rua value s[0..n): URIs separated by *WSP "," *WSP. */
static int
tlsrpt_rua(const char *s, size_t n, struct tlsrpt_rua *r)
{
	size_t i = 0, b, e;

	for (;;) {
		for (b = i; i < n && s[i] != ',' && s[i] != ' ' && s[i] != '\t';
		     i++)
			;
		if (i == b)
			return -1; /* empty URI */
		tlsrpt_uri(s + b, i - b, r);
		e = tlsrpt_wsp(s, i, n);
		if (e == n)
			return i == n ? 0 : -1; /* no trailing WSP inside */
		if (s[e] != ',')
			return -1;
		i = tlsrpt_wsp(s, e + 1, n);
	}
}

/* A field name: (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."). */
static bool
tlsrpt_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 32 || !isalnum((unsigned char)s[0]))
		return false;
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* The value of a field runs to the next field-delim; a rua value may hold
 * WSP around its commas, an extension value none at all. */
static size_t
tlsrpt_value_end(const char *s, size_t i, size_t len)
{
	size_t e = i;

	while (e < len && s[e] != ';')
		e++;
	while (e > i && (s[e - 1] == ' ' || s[e - 1] == '\t'))
		e--;
	return e;
}

static bool
tlsrpt_value_ok(const char *s, size_t n, bool rua)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		if (rua && (s[i] == ' ' || s[i] == '\t'))
			continue;
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
		if (!rua && s[i] == '=')
			return false;
	}
	return true;
}

int
tlsrpt_txt_parse(const char *txt, size_t len, struct tlsrpt_rua *r, char *err,
    size_t errsz)
{
	size_t i, k, e;
	bool   rua, have = false;

	memset(r, 0, sizeof(*r));
	if (len < strlen(TLSRPT_V) || memcmp(txt, TLSRPT_V, 10) != 0 ||
	    (len > 10 && strchr(" \t;", txt[10]) == NULL))
		return 1; /* another record, or another version */
	for (i = 10; i < len;) {
		i = tlsrpt_wsp(txt, i, len);
		if (i == len || txt[i] != ';')
			return tlsrpt_fail(err, errsz, "expected \";\"");
		if ((i = tlsrpt_wsp(txt, i + 1, len)) == len)
			break; /* the optional trailing field-delim */
		for (k = i; k < len && txt[k] != '='; k++)
			;
		if (k == len || !tlsrpt_name_ok(txt + i, k - i))
			return tlsrpt_fail(err, errsz, "bad field name");
		rua = k - i == 3 && memcmp(txt + i, "rua", 3) == 0;
		e = tlsrpt_value_end(txt, k + 1, len);
		if (!tlsrpt_value_ok(txt + k + 1, e - k - 1, rua))
			return tlsrpt_fail(err, errsz, "bad field value");
		if (rua && have)
			return tlsrpt_fail(err, errsz, "more than one rua=");
		if (rua && tlsrpt_rua(txt + k + 1, e - k - 1, r) != 0)
			return tlsrpt_fail(err, errsz, "bad rua= list");
		have = have || rua;
		i = e;
	}
	if (!have)
		return tlsrpt_fail(err, errsz, "no rua=");
	return 0;
}
