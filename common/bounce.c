/*
 * bounce: failure categories, the rule file parser and the classifier.
 * The parser is pure (no I/O, no logging, no globals); every input is
 * bounded: the text (BOUNCE_TEXT_MAX), a line, a pattern and the number of
 * rules. Regular expressions are POSIX extended, compiled with REG_ICASE and
 * REG_NOSUB (no back-references in ERE, so matching is linear in glibc's
 * implementation for the bounded patterns and replies we feed it).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "buf.h"
#include "xmem.h"

#define BOUNCE_TEXT_MAX	 (256 * 1024) /* a rule file */
#define BOUNCE_LINE_MAX	 1024
#define BOUNCE_PAT_MAX	 256 /* text= and regex= */
#define BOUNCE_RULES_MAX 2000
#define BOUNCE_REPLY_MAX 4096 /* bytes of a reply examined */

struct bounce_rule {
	enum bounce_cat br_cat;
	unsigned	br_stages;  /* bit per enum bounce_stage; 0 = any */
	char		br_code[4]; /* "550", "55x", "5xx"; "" = any */
	char		br_enh[16]; /* "5.7" or "5.7.1": prefix by component */
	char	       *br_text;    /* lower case substring, or NULL */
	regex_t		br_re;
	bool		br_has_re;
};

struct bounce_rules {
	struct bounce_rule *rs_rule;
	size_t		    rs_n;
};

static const char *const bounce_cat_names[BOUNCE_CAT_COUNT] = {
	[BOUNCE_NONE] = NULL,
	[BOUNCE_BAD_MAILBOX] = "bad-mailbox",
	[BOUNCE_BAD_DOMAIN] = "bad-domain",
	[BOUNCE_INACTIVE_MAILBOX] = "inactive-mailbox",
	[BOUNCE_QUOTA] = "quota",
	[BOUNCE_POLICY] = "policy",
	[BOUNCE_SPAM] = "spam",
	[BOUNCE_VIRUS] = "virus",
	[BOUNCE_ROUTING] = "routing",
	[BOUNCE_PROTOCOL] = "protocol",
	[BOUNCE_NO_ANSWER] = "no-answer",
	[BOUNCE_RELAYING_DENIED] = "relaying-denied",
	[BOUNCE_EXPIRED] = "expired",
	[BOUNCE_OTHER] = "other",
};

static const char *const bounce_stage_names[BOUNCE_ST_COUNT] = {
	[BOUNCE_ST_UNKNOWN] = "unknown",
	[BOUNCE_ST_CONNECT] = "connect",
	[BOUNCE_ST_GREETING] = "greeting",
	[BOUNCE_ST_HELO] = "helo",
	[BOUNCE_ST_MAIL] = "mail",
	[BOUNCE_ST_RCPT] = "rcpt",
	[BOUNCE_ST_DATA] = "data",
};

const char *
bounce_cat_name(enum bounce_cat c)
{
	if ((int)c <= BOUNCE_NONE || c >= BOUNCE_CAT_COUNT)
		return NULL;
	return bounce_cat_names[c];
}

enum bounce_cat
bounce_cat_parse(const char *name)
{
	int i;

	for (i = BOUNCE_NONE + 1; i < BOUNCE_CAT_COUNT; i++)
		if (strcmp(name, bounce_cat_names[i]) == 0)
			return (enum bounce_cat)i;
	return BOUNCE_NONE;
}

const char *
bounce_stage_name(enum bounce_stage s)
{
	if ((int)s < 0 || s >= BOUNCE_ST_COUNT)
		return "unknown";
	return bounce_stage_names[s];
}

enum bounce_stage
bounce_stage_parse(const char *name)
{
	int i;

	for (i = 0; i < BOUNCE_ST_COUNT; i++)
		if (strcmp(name, bounce_stage_names[i]) == 0)
			return (enum bounce_stage)i;
	return BOUNCE_ST_UNKNOWN;
}

bool
bounce_suppresses(enum bounce_cat c, enum bounce_stage s, int code)
{
	if (code < 500 || code > 599)
		return false;
	/* no SMTP reply: DNS said the domain does not exist or takes no mail */
	if (s == BOUNCE_ST_CONNECT)
		return c == BOUNCE_BAD_DOMAIN;
	if (s != BOUNCE_ST_RCPT && s != BOUNCE_ST_DATA)
		return false;
	return c == BOUNCE_BAD_MAILBOX || c == BOUNCE_BAD_DOMAIN ||
	    c == BOUNCE_INACTIVE_MAILBOX;
}

/* ---- the reply: code, enhanced code, text */

struct bounce_reply {
	int	    code;    /* 0 if none */
	char	    enh[16]; /* "5.1.1" or "" */
	const char *text;    /* the whole reply */
	size_t	    len;
};

/* Length of "C.SSS.DDD" at s (C one digit, SSS and DDD 1-3 digits), or 0. */
static size_t
bounce_enh_len(const char *s, size_t len)
{
	size_t i = 0, part, n;

	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; i < len && isdigit((unsigned char)s[i]) && n < 3;
		     i++)
			n++;
		if (n == 0 || (i < len && isdigit((unsigned char)s[i])))
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '-' &&
	    s[i] != ',' && s[i] != ';' && s[i] != ':' && s[i] != ')' &&
	    s[i] != ']')
		return 0;
	return i;
}

/*
 * "550 5.1.1 text", "550-5.1.1 text", "550 #5.1.0 text" (AOL/Yahoo style),
 * "550 text". The enhanced code must come right after the code.
 */
static void
bounce_reply_parse(const char *reply, struct bounce_reply *r)
{
	size_t len = strnlen(reply, BOUNCE_REPLY_MAX), i, n;

	memset(r, 0, sizeof(*r));
	r->text = reply;
	r->len = len;
	if (len < 3 || !isdigit((unsigned char)reply[0]) ||
	    !isdigit((unsigned char)reply[1]) ||
	    !isdigit((unsigned char)reply[2]))
		return;
	if (len > 3 && reply[3] != ' ' && reply[3] != '-')
		return;
	r->code = (reply[0] - '0') * 100 + (reply[1] - '0') * 10 +
	    (reply[2] - '0');
	i = 4;
	while (i < len && reply[i] == ' ')
		i++;
	if (i < len && reply[i] == '#')
		i++;
	if (i >= len)
		return;
	n = bounce_enh_len(reply + i, len - i);
	if (n > 0 && n < sizeof(r->enh) && reply[i] == reply[0]) {
		memcpy(r->enh, reply + i, n);
		r->enh[n] = '\0';
	}
}

/* Case-insensitive substring search over hay[0..hlen); needle lower case. */
bool
bounce_icontains(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle), i, j;

	if (nlen == 0)
		return true;
	for (i = 0; i + nlen <= hlen; i++) {
		for (j = 0; j < nlen; j++)
			if (tolower((unsigned char)hay[i + j]) != needle[j])
				break;
		if (j == nlen)
			return true;
	}
	return false;
}

/* "5.7" matches 5.7.x; "5.7.1" matches 5.7.1 only (not 5.7.10). */
static bool
bounce_enh_match(const char *pat, const char *enh)
{
	size_t n = strlen(pat);

	if (enh[0] == '\0' || strncmp(pat, enh, n) != 0)
		return false;
	return enh[n] == '\0' || enh[n] == '.';
}

static bool
bounce_code_match(const char *pat, int code)
{
	char c[4];
	int  i;

	if (code < 200 || code > 599)
		return false;
	c[0] = (char)('0' + code / 100);
	c[1] = (char)('0' + code / 10 % 10);
	c[2] = (char)('0' + code % 10);
	for (i = 0; i < 3; i++)
		if (pat[i] != 'x' && pat[i] != c[i])
			return false;
	return true;
}

static bool
bounce_rule_match(const struct bounce_rule *br, enum bounce_stage st,
    const struct bounce_reply *r, const char *nulterm)
{
	if (br->br_stages != 0 && (br->br_stages & (1u << st)) == 0)
		return false;
	if (br->br_code[0] != '\0' && !bounce_code_match(br->br_code, r->code))
		return false;
	if (br->br_enh[0] != '\0' && !bounce_enh_match(br->br_enh, r->enh))
		return false;
	if (br->br_text != NULL &&
	    !bounce_icontains(r->text, r->len, br->br_text))
		return false;
	if (br->br_has_re && regexec(&br->br_re, nulterm, 0, NULL, 0) != 0)
		return false;
	return true;
}

/* ---- built-in fallbacks */

static const char *const bounce_spam_texts[] = {
	"spam",
	"unsolicited",
	"blocklist",
	"blacklist",
	"block list",
	"black list",
	"dnsbl",
	"rbl",
	"spamhaus",
	"spamcop",
	"reputation",
};

static bool
bounce_any_text(const struct bounce_reply *r, const char *const *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (bounce_icontains(r->text, r->len, t[i]))
			return true;
	return false;
}

/* By the enhanced code's subject and detail (RFC 3463, RFC 7505). */
static enum bounce_cat
bounce_by_enh(const struct bounce_reply *r)
{
	int subj, det;

	if (sscanf(r->enh + 2, "%d.%d", &subj, &det) != 2)
		return BOUNCE_NONE;
	switch (subj) {
	case 1:
		if (det == 2 || det == 10)
			return BOUNCE_BAD_DOMAIN;
		if (det == 1 || det == 3 || det == 6)
			return BOUNCE_BAD_MAILBOX;
		if (det == 7 || det == 8)
			return BOUNCE_POLICY; /* the sender's address */
		return BOUNCE_OTHER;
	case 2:
		if (det == 1)
			return BOUNCE_INACTIVE_MAILBOX;
		if (det == 2)
			return BOUNCE_QUOTA;
		if (det == 3)
			return BOUNCE_POLICY; /* message too big for the mailbox */
		return BOUNCE_OTHER;
	case 3:
		return det == 4 ? BOUNCE_POLICY : BOUNCE_OTHER;
	case 4:
		return det == 7 ? BOUNCE_EXPIRED : BOUNCE_ROUTING;
	case 5:
		return BOUNCE_PROTOCOL;
	case 7:
		if (det == 1 && bounce_icontains(r->text, r->len, "relay"))
			return BOUNCE_RELAYING_DENIED;
		if (bounce_icontains(r->text, r->len, "virus"))
			return BOUNCE_VIRUS;
		if (bounce_any_text(r, bounce_spam_texts,
			sizeof(bounce_spam_texts) /
			    sizeof(bounce_spam_texts[0])))
			return BOUNCE_SPAM;
		return BOUNCE_POLICY;
	default:
		return BOUNCE_OTHER;
	}
}

/* No enhanced code: by stage and basic code. */
static enum bounce_cat
bounce_by_code(enum bounce_stage st, const struct bounce_reply *r)
{
	switch (r->code) {
	case 500:
	case 501:
	case 502:
	case 503:
	case 504:
	case 555:
		return BOUNCE_PROTOCOL;
	default:
		break;
	}
	if (st == BOUNCE_ST_RCPT && r->code == 552)
		return BOUNCE_QUOTA;
	if (r->code >= 500 &&
	    (st == BOUNCE_ST_GREETING || st == BOUNCE_ST_HELO ||
		st == BOUNCE_ST_MAIL))
		return BOUNCE_POLICY;
	return BOUNCE_OTHER;
}

static enum bounce_cat
bounce_fallback(enum bounce_stage st, const struct bounce_reply *r)
{
	enum bounce_cat c;

	if (st == BOUNCE_ST_CONNECT) {
		/* No SMTP reply: our own text. A permanent one says why (no
		 * such domain, a loop back to us); anything else is no answer. */
		if (r->code >= 500 && r->enh[0] != '\0' &&
		    (c = bounce_by_enh(r)) != BOUNCE_NONE)
			return c;
		return BOUNCE_NO_ANSWER;
	}
	if (r->enh[0] != '\0' && (c = bounce_by_enh(r)) != BOUNCE_NONE)
		return c;
	if (bounce_icontains(r->text, r->len, "relay access denied") ||
	    bounce_icontains(r->text, r->len, "relaying denied"))
		return BOUNCE_RELAYING_DENIED;
	return bounce_by_code(st, r);
}

/*
 * Addresses in angle brackets are masked before any text is matched: a
 * reply about <spam-reports@example.com> or <virus@example.org> says
 * nothing about spam or viruses.
 */
void
bounce_mask(char *s, size_t len)
{
	size_t i, j;

	for (i = 0; i < len; i++) {
		if (s[i] != '<')
			continue;
		for (j = i + 1;
		     j < len && j - i <= 320 && s[j] != '>' && s[j] != ' '; j++)
			;
		if (j < len && s[j] == '>') {
			memset(s + i + 1, '_', j - i - 1);
			i = j;
		}
	}
}

enum bounce_cat
bounce_classify(const struct bounce_rules *rs, enum bounce_stage st,
    const char *reply)
{
	struct bounce_reply r;
	char		    text[BOUNCE_REPLY_MAX + 1];
	size_t		    i;

	if ((int)st < 0 || st >= BOUNCE_ST_COUNT)
		st = BOUNCE_ST_UNKNOWN;
	if (reply == NULL)
		reply = "";
	bounce_reply_parse(reply, &r);
	if (r.code >= 200 && r.code < 400)
		return BOUNCE_NONE;
	memcpy(text, reply, r.len);
	text[r.len] = '\0';
	bounce_mask(text, r.len);
	r.text = text;
	for (i = 0; rs != NULL && i < rs->rs_n; i++)
		if (bounce_rule_match(&rs->rs_rule[i], st, &r, text))
			return rs->rs_rule[i].br_cat;
	return bounce_fallback(st, &r);
}

/* ---- the rule file */

void
bounce_rules_free(struct bounce_rules *rs)
{
	size_t i;

	if (rs == NULL)
		return;
	for (i = 0; i < rs->rs_n; i++) {
		free(rs->rs_rule[i].br_text);
		if (rs->rs_rule[i].br_has_re)
			regfree(&rs->rs_rule[i].br_re);
	}
	free(rs->rs_rule);
	free(rs);
}

struct bounce_lex {
	const char *p, *end;
	char	    err[128];
};

/* Next word (up to blank) or key="quoted value" into out; 0 at end, -1 error. */
static int
bounce_lex_word(struct bounce_lex *lx, char *out, size_t outsz, size_t *outlen)
{
	size_t o = 0;
	bool   quoted = false;

	while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
		lx->p++;
	if (lx->p >= lx->end || *lx->p == '#')
		return 0;
	while (lx->p < lx->end) {
		char c = *lx->p;

		if (!quoted && (c == ' ' || c == '\t'))
			break;
		lx->p++;
		if (c == '"') {
			quoted = !quoted;
			continue;
		}
		/* inside quotes \" and \\ are escapes; any other backslash
		 * stays (regex escapes such as \. need no doubling) */
		if (quoted && c == '\\' && lx->p < lx->end &&
		    (*lx->p == '"' || *lx->p == '\\'))
			c = *lx->p++;
		if ((unsigned char)c < 0x20 || c == 0x7f) {
			snprintf(lx->err, sizeof(lx->err), "control character");
			return -1;
		}
		if (o + 1 >= outsz) {
			snprintf(lx->err, sizeof(lx->err),
			    "word longer than %zu bytes", outsz - 1);
			return -1;
		}
		out[o++] = c;
	}
	if (quoted) {
		snprintf(lx->err, sizeof(lx->err), "unterminated quote");
		return -1;
	}
	out[o] = '\0';
	*outlen = o;
	return 1;
}

static int
bounce_cond_stage(struct bounce_rule *br, char *v, char *err, size_t errlen)
{
	char		 *s, *comma;
	enum bounce_stage st;

	for (s = v; s != NULL; s = comma) {
		if ((comma = strchr(s, ',')) != NULL)
			*comma++ = '\0';
		st = bounce_stage_parse(s);
		if (st == BOUNCE_ST_UNKNOWN) {
			snprintf(err, errlen, "unknown stage \"%.40s\"", s);
			return -1;
		}
		br->br_stages |= 1u << st;
	}
	return 0;
}

static int
bounce_cond_code(struct bounce_rule *br, const char *v, char *err,
    size_t errlen)
{
	if (strlen(v) != 3 || (v[0] != '4' && v[0] != '5') ||
	    !(isdigit((unsigned char)v[1]) || v[1] == 'x') ||
	    !(isdigit((unsigned char)v[2]) || v[2] == 'x') ||
	    (v[1] == 'x' && v[2] != 'x')) {
		snprintf(err, errlen,
		    "code must be 4xx/5xx, 55x or 550, not \"%.20s\"", v);
		return -1;
	}
	memcpy(br->br_code, v, 4);
	return 0;
}

static int
bounce_cond_enh(struct bounce_rule *br, const char *v, char *err, size_t errlen)
{
	size_t len = strlen(v), i, dots = 0;
	bool   ok = len >= 1 && len < sizeof(br->br_enh) &&
	    (v[0] == '4' || v[0] == '5') && v[len - 1] != '.';

	for (i = 1; ok && i < len; i++) {
		if (v[i] == '.') {
			ok = v[i - 1] != '.' && ++dots <= 2;
		} else
			ok = isdigit((unsigned char)v[i]);
	}
	if (!ok || (len > 1 && v[1] != '.')) {
		snprintf(err, errlen,
		    "enh must be like 5, 5.7 or 5.7.1, not \"%.20s\"", v);
		return -1;
	}
	memcpy(br->br_enh, v, len + 1);
	return 0;
}

static int
bounce_cond_regex(struct bounce_rule *br, const char *v, char *err,
    size_t errlen)
{
	char msg[80];
	int  rc;

	if (br->br_has_re) {
		snprintf(err, errlen, "more than one regex=");
		return -1;
	}
	if ((rc = regcomp(&br->br_re, v,
		 REG_EXTENDED | REG_ICASE | REG_NOSUB)) != 0) {
		(void)regerror(rc, &br->br_re, msg, sizeof(msg));
		snprintf(err, errlen, "regex: %s", msg);
		return -1;
	}
	br->br_has_re = true;
	return 0;
}

static int
bounce_cond(struct bounce_rule *br, char *w, size_t wlen, char *err,
    size_t errlen)
{
	char *eq = strchr(w, '='), *v;

	if (eq == NULL || eq == w) {
		snprintf(err, errlen, "expected key=value, got \"%.40s\"", w);
		return -1;
	}
	*eq = '\0';
	v = eq + 1;
	if (*v == '\0' || (size_t)(w + wlen - v) > BOUNCE_PAT_MAX) {
		snprintf(err, errlen, "%.20s: empty or longer than %d bytes", w,
		    BOUNCE_PAT_MAX);
		return -1;
	}
	if (strcmp(w, "stage") == 0)
		return bounce_cond_stage(br, v, err, errlen);
	if (strcmp(w, "code") == 0)
		return bounce_cond_code(br, v, err, errlen);
	if (strcmp(w, "enh") == 0)
		return bounce_cond_enh(br, v, err, errlen);
	if (strcmp(w, "regex") == 0)
		return bounce_cond_regex(br, v, err, errlen);
	if (strcmp(w, "text") == 0) {
		if (br->br_text != NULL) {
			snprintf(err, errlen, "more than one text=");
			return -1;
		}
		br->br_text = xstrdup(v);
		str_lower(br->br_text);
		return 0;
	}
	snprintf(err, errlen, "unknown key \"%.40s\"", w);
	return -1;
}

/* One non-empty line: "category cond..." into br. 0, or -1 with err. */
static int
bounce_rule_line(const char *line, size_t len, struct bounce_rule *br,
    char *err, size_t errlen)
{
	struct bounce_lex lx = { .p = line, .end = line + len };
	char		  w[BOUNCE_LINE_MAX + 1];
	size_t		  wlen = 0;
	int		  rc, nc = 0;

	memset(br, 0, sizeof(*br));
	if ((rc = bounce_lex_word(&lx, w, sizeof(w), &wlen)) <= 0)
		return rc; /* 0: blank or comment */
	if ((br->br_cat = bounce_cat_parse(w)) == BOUNCE_NONE) {
		snprintf(err, errlen, "unknown category \"%.40s\"", w);
		return -1;
	}
	while ((rc = bounce_lex_word(&lx, w, sizeof(w), &wlen)) == 1) {
		if (bounce_cond(br, w, wlen, err, errlen) == -1)
			return -1;
		nc++;
	}
	if (rc == -1) {
		snprintf(err, errlen, "%s", lx.err);
		return -1;
	}
	if (nc == 0) {
		snprintf(err, errlen, "a rule needs at least one condition");
		return -1;
	}
	return 1;
}

static int
bounce_rules_add(struct bounce_rules *rs, const char *line, size_t len,
    size_t *cap, char *why, size_t whylen)
{
	struct bounce_rule br;
	int		   rc;

	if (len > BOUNCE_LINE_MAX) {
		snprintf(why, whylen, "line longer than %d bytes",
		    BOUNCE_LINE_MAX);
		return -1;
	}
	rc = bounce_rule_line(line, len, &br, why, whylen);
	if (rc == 1 && rs->rs_n >= BOUNCE_RULES_MAX) {
		snprintf(why, whylen, "more than %d rules", BOUNCE_RULES_MAX);
		rc = -1;
	}
	if (rc == -1) {
		free(br.br_text);
		if (br.br_has_re)
			regfree(&br.br_re);
		return -1;
	}
	if (rc == 0)
		return 0;
	if (rs->rs_n == *cap) {
		*cap = *cap == 0 ? 32 : *cap * 2;
		rs->rs_rule = xreallocarray(rs->rs_rule, *cap,
		    sizeof(*rs->rs_rule));
	}
	rs->rs_rule[rs->rs_n++] = br;
	return 0;
}

struct bounce_rules *
bounce_rules_parse(const char *text, size_t len, const char *name, char *err,
    size_t errlen)
{
	struct bounce_rules *rs = xcalloc(1, sizeof(*rs));
	const char	    *p = text, *end = text + len, *nl;
	char		     why[160];
	size_t		     cap = 0, lineno = 0, n;

	if (len > BOUNCE_TEXT_MAX) {
		snprintf(err, errlen, "%s: longer than %d bytes", name,
		    BOUNCE_TEXT_MAX);
		goto fail;
	}
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte", name);
		goto fail;
	}
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (bounce_rules_add(rs, p, n, &cap, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%zu: %s", name, lineno, why);
			goto fail;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	return rs;
fail:
	bounce_rules_free(rs);
	return NULL;
}

struct bounce_rules *
bounce_rules_load(const char *path, char *err, size_t errlen)
{
	struct bounce_rules *rs;
	struct buf	     b;
	char		     tmp[8192];
	ssize_t		     n;
	int		     fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, BOUNCE_TEXT_MAX + 1);
	for (;;) {
		n = read(fd, tmp, sizeof(tmp));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf_append(&b, tmp, (size_t)n) == -1) {
			snprintf(err, errlen, "%s: longer than %d bytes", path,
			    BOUNCE_TEXT_MAX);
			goto fail;
		}
	}
	if (n == -1) {
		snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
		goto fail;
	}
	(void)close(fd);
	rs = bounce_rules_parse(b.data != NULL ? b.data : "", b.len, path, err,
	    errlen);
	buf_release(&b);
	return rs;
fail:
	(void)close(fd);
	buf_release(&b);
	return NULL;
}
