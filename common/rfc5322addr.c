/*
 * rfc5322addr: mailbox-list parser (see rfc5322addr.h). A lexer turns the
 * value into tokens (comments and whitespace vanish, but a token remembers
 * whether CFWS preceded it); a mailbox is scanned twice: once to find what
 * ends its first part ('<', ':', ',', ';' or the end), then again to build
 * the display name and the address.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "rfc5322addr.h"

enum ra_tok { RT_END, RT_ATOM, RT_QSTR, RT_DLIT, RT_ENC, RT_SPECIAL, RT_ERROR };

struct ra_token {
	enum ra_tok t;
	const char *s;
	size_t	    len;
	char	    c;	 /* RT_SPECIAL */
	bool	    wsp; /* CFWS before it */
};

struct ra_str {
	char  *d;
	size_t sz, len;
	bool   cut;
};

static bool
ra_is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true; /* UTF-8 (RFC 6532) */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static void
ra_put(struct ra_str *s, const char *p, size_t n)
{
	if (s->len + n >= s->sz) {
		s->cut = true;
		n = s->sz - 1 - s->len;
	}
	memcpy(s->d + s->len, p, n);
	s->len += n;
	s->d[s->len] = '\0';
}

static void
ra_putc(struct ra_str *s, char c)
{
	ra_put(s, &c, 1);
}

/* Length of "=?charset?X?text?=" at v, or 0. */
static size_t
ra_encword_len(const char *v, size_t len)
{
	size_t i, j;

	if (len < 8 || v[0] != '=' || v[1] != '?')
		return 0;
	for (i = 2; i < len && v[i] != '?'; i++)
		if ((unsigned char)v[i] <= ' ' || v[i] == 0x7f)
			return 0;
	if (i == 2 || i + 3 >= len || strchr("BbQq", v[i + 1]) == NULL ||
	    v[i + 1] == '\0' || v[i + 2] != '?')
		return 0;
	for (j = i + 3; j < len && v[j] != '?'; j++)
		if ((unsigned char)v[j] <= ' ' || v[j] == 0x7f)
			return 0;
	if (j + 1 >= len || v[j + 1] != '=')
		return 0;
	return j + 2;
}

/* Skips a (nested) comment at v[*pos] == '('. false if unterminated. */
static bool
ra_skip_comment(const char *v, size_t len, size_t *pos)
{
	size_t depth = 0, i;

	for (i = *pos; i < len; i++) {
		if (v[i] == '\0' ||
		    (v[i] == '\\' && i + 1 < len && v[i + 1] == '\0'))
			return false;
		if (v[i] == '\\')
			i++;
		else if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && --depth == 0) {
			*pos = i + 1;
			return true;
		}
	}
	return false;
}

/* A quoted string or domain literal ending at `close`; false if unterminated. */
static bool
ra_skip_quoted(const char *v, size_t len, size_t *pos, char close)
{
	size_t i;

	for (i = *pos + 1; i < len; i++) {
		if (v[i] == '\0' ||
		    (v[i] == '\\' && i + 1 < len && v[i + 1] == '\0'))
			return false;
		if (v[i] == '\\')
			i++;
		else if (v[i] == close) {
			*pos = i + 1;
			return true;
		} else if (close == ']' && v[i] == '[')
			return false;
	}
	return false;
}

static void
ra_lex(const char *v, size_t len, size_t *pos, struct ra_token *t)
{
	size_t p = *pos, n;

	memset(t, 0, sizeof(*t));
	for (;;) {
		while (p < len && strchr(" \t\r\n", v[p]) != NULL &&
		    v[p] != '\0') {
			p++;
			t->wsp = true;
		}
		if (p >= len || v[p] != '(')
			break;
		if (!ra_skip_comment(v, len, &p)) {
			t->t = RT_ERROR;
			return;
		}
		t->wsp = true;
	}
	t->s = v + p;
	if (p >= len) {
		t->t = RT_END;
		*pos = p;
		return;
	}
	n = p;
	if (v[p] == '"' || v[p] == '[') {
		t->t = v[p] == '"' ? RT_QSTR : RT_DLIT;
		if (!ra_skip_quoted(v, len, &n, v[p] == '"' ? '"' : ']')) {
			t->t = RT_ERROR;
			return;
		}
	} else if ((n = ra_encword_len(v + p, len - p)) != 0) {
		t->t = RT_ENC;
		n += p;
	} else if (ra_is_atext((unsigned char)v[p])) {
		t->t = RT_ATOM;
		for (n = p; n < len && ra_is_atext((unsigned char)v[n]); n++)
			;
	} else if (strchr("<>@,;:.", v[p]) != NULL && v[p] != '\0') {
		t->t = RT_SPECIAL;
		t->c = v[p];
		n = p + 1;
	} else {
		t->t = RT_ERROR;
		return;
	}
	t->len = n - p;
	*pos = n;
}

static int
ra_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
ra_b64(char c)
{
	const char *a =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p;

	if (c == '\0' || (p = strchr(a, c)) == NULL)
		return -1;
	return (int)(p - a);
}

/* Emits one decoded byte, converting Latin-1 to UTF-8 when asked. */
static void
ra_emit(struct ra_str *s, unsigned char c, bool latin1)
{
	if (latin1 && c >= 0x80) {
		ra_putc(s, (char)(0xc0 | (c >> 6)));
		ra_putc(s, (char)(0x80 | (c & 0x3f)));
	} else
		ra_putc(s, (char)c);
}

/* Decodes an encoded word into s; false (nothing written) if it cannot. */
static bool
ra_decode_word(const char *w, size_t len, struct ra_str *s)
{
	const char *cs = w + 2, *q1, *text, *end = w + len - 2;
	size_t	    cslen, i;
	bool	    latin1, b;
	unsigned    acc = 0, bits = 0;
	int	    x, y;

	q1 = memchr(cs, '?', (size_t)(end - cs));
	if (q1 == NULL || q1 + 3 > end)
		return false;
	cslen = (size_t)(q1 - cs);
	if (memchr(cs, '*', cslen) != NULL) /* RFC 2231 language suffix */
		cslen = (size_t)((const char *)memchr(cs, '*', cslen) - cs);
	if (cslen == 5 && strncasecmp(cs, "utf-8", 5) == 0)
		latin1 = false;
	else if (cslen == 8 && strncasecmp(cs, "us-ascii", 8) == 0)
		latin1 = false;
	else if ((cslen == 10 && strncasecmp(cs, "iso-8859-1", 10) == 0) ||
	    (cslen == 6 && strncasecmp(cs, "latin1", 6) == 0))
		latin1 = true;
	else
		return false;
	b = q1[1] == 'B' || q1[1] == 'b';
	text = q1 + 3;
	for (i = 0; text + i < end; i++) {
		char c = text[i];

		if (b) {
			if (c == '=')
				break;
			if ((x = ra_b64(c)) < 0)
				continue;
			acc = (acc << 6) | (unsigned)x;
			if ((bits += 6) >= 8) {
				bits -= 8;
				ra_emit(s, (unsigned char)(acc >> bits),
				    latin1);
				acc &= (1u << bits) - 1;
			}
		} else if (c == '_')
			ra_putc(s, ' ');
		else if (c == '=' && text + i + 2 < end &&
		    (x = ra_hex(text[i + 1])) >= 0 &&
		    (y = ra_hex(text[i + 2])) >= 0) {
			ra_emit(s, (unsigned char)(x * 16 + y), latin1);
			i += 2;
		} else
			ra_emit(s, (unsigned char)c, latin1);
	}
	return true;
}

/* Appends the unquoted content of a quoted string. */
static void
ra_unquote(const char *q, size_t len, struct ra_str *s)
{
	size_t i;

	for (i = 1; i + 1 < len; i++) {
		if (q[i] == '\\' && i + 2 < len)
			i++;
		ra_putc(s, q[i]);
	}
}

/* Builds the display name from the tokens of v[from..to). */
static void
ra_build_name(const char *v, size_t from, size_t to, struct rfc5322addr *r)
{
	struct ra_str	s = { r->ra_name, sizeof(r->ra_name), 0, false };
	struct ra_token t;
	size_t		p = from;
	enum ra_tok	prev = RT_END;

	r->ra_name[0] = '\0';
	for (;;) {
		ra_lex(v, to, &p, &t);
		if (t.t == RT_END || t.t == RT_ERROR)
			break;
		if (s.len > 0 && t.wsp && !(prev == RT_ENC && t.t == RT_ENC))
			ra_putc(&s, ' ');
		if (t.t == RT_QSTR)
			ra_unquote(t.s, t.len, &s);
		else if (t.t != RT_ENC || !ra_decode_word(t.s, t.len, &s))
			ra_put(&s, t.s, t.len);
		prev = t.t;
	}
}

/* Accumulates an addr-spec token by token. */
struct ra_acc {
	struct ra_str local, dom;
	char	      lbuf[RFC5322ADDR_MAX], dbuf[RFC5322ADDR_MAX];
	int	      part; /* 0 local-part, 1 domain */
	bool	      word; /* the last token was a word */
	bool	      bad;
	bool	      any;
	bool	      strict; /* words before an addr-spec are junk */
	bool	      junk;
};

static void
ra_acc_init(struct ra_acc *a)
{
	memset(a, 0, sizeof(*a));
	a->local = (struct ra_str){ a->lbuf, sizeof(a->lbuf), 0, false };
	a->dom = (struct ra_str){ a->dbuf, sizeof(a->dbuf), 0, false };
}

static void
ra_acc_feed(struct ra_acc *a, const struct ra_token *t)
{
	struct ra_str *s = a->part == 0 ? &a->local : &a->dom;
	bool isword = t->t == RT_ATOM || t->t == RT_QSTR || t->t == RT_ENC;

	a->any = true;
	if (isword || t->t == RT_DLIT) {
		if (a->word && a->part == 0) {
			/* "John john@x": the words before belong to no address */
			a->junk |= a->strict;
			s->len = 0;
			s->d[0] = '\0';
		} else if (a->word ||
		    (t->t == RT_DLIT && (a->part == 0 || s->len > 0)))
			a->bad = true;
		ra_put(s, t->s, t->len);
		a->word = true;
	} else if (t->t == RT_SPECIAL && t->c == '.') {
		ra_putc(s, '.');
		a->word = false;
	} else if (t->t == RT_SPECIAL && t->c == '@' && a->part == 0) {
		a->part = 1;
		a->word = false;
	} else
		a->bad = true;
}

static enum rfc5322addr_status
ra_acc_finish(struct ra_acc *a, struct rfc5322addr *r)
{
	const char *d = a->dbuf;
	size_t	    dl = a->dom.len;

	r->ra_addr[0] = '\0';
	if (a->part == 0)
		return RFC5322ADDR_NOADDR;
	if (a->local.cut || a->dom.cut)
		return RFC5322ADDR_TOOLONG;
	if (a->bad || a->local.len == 0 || dl == 0 || d[0] == '.' ||
	    d[dl - 1] == '.' || strstr(d, "..") != NULL)
		return RFC5322ADDR_SYNTAX;
	if (a->junk)
		return RFC5322ADDR_JUNK;
	if (a->local.len + 1 + dl >= sizeof(r->ra_addr))
		return RFC5322ADDR_TOOLONG;
	memcpy(r->ra_addr, a->lbuf, a->local.len);
	r->ra_addr[a->local.len] = '@';
	memcpy(r->ra_addr + a->local.len + 1, d, dl);
	r->ra_addr[a->local.len + 1 + dl] = '\0';
	return RFC5322ADDR_OK;
}

/* Finds the token that ends a mailbox's first part; *mark_r is its start. */
static enum ra_tok
ra_find_kind(const char *v, size_t len, size_t p, char *kind_r, size_t *mark_r,
    size_t *after_r)
{
	struct ra_token t;

	for (;;) {
		ra_lex(v, len, &p, &t);
		if (t.t == RT_ERROR)
			return RT_ERROR;
		if (t.t == RT_END) {
			*kind_r = '\0';
			*mark_r = *after_r = len;
			return RT_END;
		}
		if (t.t == RT_SPECIAL && strchr("<:,;>", t.c) != NULL) {
			if (t.c == '>')
				return RT_ERROR;
			*kind_r = t.c;
			*mark_r = (size_t)(t.s - v);
			*after_r = p;
			return RT_SPECIAL;
		}
	}
}

/* Strict: a display name is words and '.' (obs-phrase), nothing else. */
static bool
ra_phrase_ok(const char *v, size_t from, size_t to)
{
	struct ra_token t;
	size_t		p = from;

	for (;;) {
		ra_lex(v, to, &p, &t);
		if (t.t == RT_END)
			return true;
		if (t.t == RT_ERROR || t.t == RT_DLIT ||
		    (t.t == RT_SPECIAL && t.c != '.'))
			return false;
	}
}

/* Parses "<[@route,...:]addr-spec>" after the '<' at *pos. */
static enum rfc5322addr_status
ra_angle(const char *v, size_t len, size_t *pos, struct rfc5322addr *r,
    bool strict)
{
	struct ra_acc	a;
	struct ra_token t;
	size_t		p = *pos, save = p;

	ra_acc_init(&a);
	ra_lex(v, len, &p, &t);
	if (t.t == RT_SPECIAL && t.c == '@') { /* obs-route */
		do
			ra_lex(v, len, &p, &t);
		while (t.t != RT_END && t.t != RT_ERROR &&
		    !(t.t == RT_SPECIAL && (t.c == ':' || t.c == '>')));
		if (t.t != RT_SPECIAL || t.c != ':')
			return RFC5322ADDR_SYNTAX;
	} else
		p = save;
	for (;;) {
		ra_lex(v, len, &p, &t);
		if (t.t == RT_END || t.t == RT_ERROR)
			return RFC5322ADDR_SYNTAX;
		if (t.t == RT_SPECIAL && t.c == '>')
			break;
		ra_acc_feed(&a, &t);
	}
	/* whatever follows up to the next ',' or ';' is ignored (lenient),
	 * or is junk (strict: "<a@b> c@d", "<a@b> <c@d>") */
	for (;;) {
		save = p;
		ra_lex(v, len, &p, &t);
		if (t.t == RT_ERROR || t.t == RT_END)
			break;
		if (t.t == RT_SPECIAL && (t.c == ',' || t.c == ';'))
			break;
		a.junk |= strict;
	}
	*pos = t.t == RT_ERROR ? len : p;
	(void)save;
	return a.any ? ra_acc_finish(&a, r) : RFC5322ADDR_NOADDR;
}

static enum rfc5322addr_status
ra_next(const char *v, size_t len, size_t *pos, struct rfc5322addr *r,
    bool strict)
{
	struct ra_acc		a;
	struct ra_token		t;
	size_t			mark, after, p;
	char			kind;
	enum rfc5322addr_status st;

	for (;;) {
		r->ra_addr[0] = r->ra_name[0] = '\0';
		if (*pos >= len)
			return RFC5322ADDR_END;
		if (ra_find_kind(v, len, *pos, &kind, &mark, &after) ==
		    RT_ERROR) {
			*pos = len;
			return RFC5322ADDR_SYNTAX;
		}
		if (kind == ':' && strict) { /* no groups in From:/Sender: */
			*pos = len;
			return RFC5322ADDR_JUNK;
		}
		if (kind == ':') { /* group name: skip it */
			*pos = after;
			continue;
		}
		if (kind == '<') {
			if (strict && !ra_phrase_ok(v, *pos, mark)) {
				*pos =
				    len; /* "a@b <c@d>": an address as a name */
				return RFC5322ADDR_JUNK;
			}
			ra_build_name(v, *pos, mark, r);
			*pos = after;
			st = ra_angle(v, len, pos, r, strict);
			if (st != RFC5322ADDR_OK && st != RFC5322ADDR_NOADDR)
				*pos = len;
			return st;
		}
		ra_acc_init(&a);
		a.strict = strict;
		for (p = *pos;;) {
			ra_lex(v, mark, &p, &t);
			if (t.t == RT_END || t.t == RT_ERROR)
				break;
			ra_acc_feed(&a, &t);
		}
		*pos = after;
		if (!a.any)
			continue; /* empty element, or a group's ';' */
		st = ra_acc_finish(&a, r);
		if (st != RFC5322ADDR_OK && st != RFC5322ADDR_NOADDR)
			*pos = len;
		return st;
	}
}

enum rfc5322addr_status
rfc5322addr_next(const char *v, size_t len, size_t *pos, struct rfc5322addr *r)
{
	return ra_next(v, len, pos, r, false);
}

enum rfc5322addr_status
rfc5322addr_next_strict(const char *v, size_t len, size_t *pos,
    struct rfc5322addr *r)
{
	return ra_next(v, len, pos, r, true);
}

enum rfc5322addr_status
rfc5322addr_first(const char *v, size_t len, struct rfc5322addr *r)
{
	enum rfc5322addr_status st;
	size_t			pos = 0;

	while ((st = rfc5322addr_next(v, len, &pos, r)) == RFC5322ADDR_NOADDR)
		;
	return st == RFC5322ADDR_END ? RFC5322ADDR_NOADDR : st;
}

const char *
rfc5322addr_status_name(enum rfc5322addr_status st)
{
	switch (st) {
	case RFC5322ADDR_OK:
		return "ok";
	case RFC5322ADDR_NOADDR:
		return "noaddr";
	case RFC5322ADDR_END:
		return "end";
	case RFC5322ADDR_SYNTAX:
		return "syntax";
	case RFC5322ADDR_TOOLONG:
		return "toolong";
	case RFC5322ADDR_JUNK:
		return "junk";
	}
	return "?";
}
