#include "config.h"

#include <string.h>
#include <strings.h>

#include "buf.h"
#include "smtp_reply.h"

const struct smtp_reply_limits smtp_reply_default_limits = {
	.max_line = 4096,
	.max_lines = 200,
	.max_text = 1023,
};

void
smtp_reply_init(struct smtp_reply *rp, const struct smtp_reply_limits *lim)
{
	memset(rp, 0, sizeof(*rp));
	rp->rp_lim = lim != NULL ? lim : &smtp_reply_default_limits;
	buf_init(&rp->rp_text, rp->rp_lim->max_text);
	buf_init(&rp->rp_lines,
	    (rp->rp_lim->max_line + 1) * rp->rp_lim->max_lines + 1);
	buf_init(&rp->rp_partial, rp->rp_lim->max_line + 2);
}

static void
smtp_reply_clear(struct smtp_reply *rp)
{
	rp->rp_code = 0;
	rp->rp_enh[0] = '\0';
	rp->rp_nlines = 0;
	rp->rp_done = false;
	rp->rp_cut = false;
	buf_reset(&rp->rp_text);
	buf_reset(&rp->rp_lines);
}

void
smtp_reply_reset(struct smtp_reply *rp)
{
	smtp_reply_clear(rp);
	/* a line left unfinished by a dropped peer must not prefix the next
	 * reply (feed() never leaves one behind after DONE) */
	buf_reset(&rp->rp_partial);
}

void
smtp_reply_release(struct smtp_reply *rp)
{
	buf_release(&rp->rp_text);
	buf_release(&rp->rp_lines);
	buf_release(&rp->rp_partial);
}

static bool
smtp_reply_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

/* Length of an enhanced status code "C.SSS.DDD" at s whose class is cls
 * (followed by a space or the end), else 0. */
static size_t
smtp_reply_enh_len(const char *s, size_t len, char cls)
{
	size_t i = 0, n, part;

	if (len < 5 || s[0] != cls || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; i < len && smtp_reply_isdigit(s[i]) && n < 3;
		     i++, n++)
			;
		if (n == 0)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* Appends text to the folded one-line form, replacing control bytes. */
static void
smtp_reply_fold(struct smtp_reply *rp, const char *s, size_t len)
{
	size_t i;
	char   c;

	for (i = 0; i < len; i++) {
		c = s[i];
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = ' ';
		if (buf_putc(&rp->rp_text, c) == -1) {
			rp->rp_cut = true;
			return;
		}
	}
}

static enum smtp_reply_status
smtp_reply_first(struct smtp_reply *rp, int code, const char *t, size_t tlen)
{
	size_t el;

	rp->rp_code = code;
	el = smtp_reply_enh_len(t, tlen, (char)('0' + code / 100));
	if (el > 0 && el < sizeof(rp->rp_enh)) {
		memcpy(rp->rp_enh, t, el);
		rp->rp_enh[el] = '\0';
	}
	if (buf_printf(&rp->rp_text, "%d", code) == -1)
		return SMTP_REPLY_TOOLONG;
	if (tlen > 0) {
		smtp_reply_fold(rp, " ", 1);
		smtp_reply_fold(rp, t, tlen);
	}
	return SMTP_REPLY_MORE;
}

static void
smtp_reply_next(struct smtp_reply *rp, const char *t, size_t tlen)
{
	size_t el = strlen(rp->rp_enh);

	/* A continuation repeats the enhanced code: keep it once. */
	if (el > 0 && tlen >= el && memcmp(t, rp->rp_enh, el) == 0 &&
	    (tlen == el || t[el] == ' ')) {
		t += el;
		tlen -= el;
		while (tlen > 0 && *t == ' ') {
			t++;
			tlen--;
		}
	}
	if (tlen > 0) {
		smtp_reply_fold(rp, " ", 1);
		smtp_reply_fold(rp, t, tlen);
	}
}

enum smtp_reply_status
smtp_reply_line(struct smtp_reply *rp, const char *s, size_t len)
{
	int	    code;
	bool	    last;
	const char *t;
	size_t	    tlen;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len > rp->rp_lim->max_line)
		return SMTP_REPLY_TOOLONG;
	if (rp->rp_done)
		smtp_reply_clear(rp); /* not the partial line: it may be s */
	if (rp->rp_nlines >= rp->rp_lim->max_lines)
		return SMTP_REPLY_TOOMANY;
	if (len < 3 || s[0] < '2' || s[0] > '5' || !smtp_reply_isdigit(s[1]) ||
	    !smtp_reply_isdigit(s[2]) ||
	    (len > 3 && s[3] != ' ' && s[3] != '-'))
		return SMTP_REPLY_SYNTAX;
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	last = len == 3 || s[3] == ' ';
	t = len > 4 ? s + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	if (rp->rp_nlines > 0 && code != rp->rp_code)
		return SMTP_REPLY_SYNTAX;
	if (rp->rp_nlines == 0) {
		if (smtp_reply_first(rp, code, t, tlen) != SMTP_REPLY_MORE)
			return SMTP_REPLY_TOOLONG;
	} else
		smtp_reply_next(rp, t, tlen);
	if (buf_append(&rp->rp_lines, t, tlen) == -1 ||
	    buf_putc(&rp->rp_lines, '\n') == -1)
		return SMTP_REPLY_TOOMANY;
	rp->rp_nlines++;
	if (!last)
		return SMTP_REPLY_MORE;
	rp->rp_done = true;
	return SMTP_REPLY_DONE;
}

enum smtp_reply_status
smtp_reply_feed(struct smtp_reply *rp, const char *data, size_t len,
    size_t *used_r)
{
	enum smtp_reply_status st;
	const char	      *nl;
	size_t		       off = 0, n;

	while (off < len) {
		nl = memchr(data + off, '\n', len - off);
		n = nl != NULL ? (size_t)(nl - (data + off)) + 1 : len - off;
		if (nl == NULL || rp->rp_partial.len > 0) {
			if (buf_append(&rp->rp_partial, data + off, n) == -1) {
				buf_reset(&rp->rp_partial);
				*used_r = off + n;
				return SMTP_REPLY_TOOLONG;
			}
			off += n;
			if (nl == NULL)
				break;
			st = smtp_reply_line(rp, rp->rp_partial.data,
			    rp->rp_partial.len);
			buf_reset(&rp->rp_partial);
		} else {
			st = smtp_reply_line(rp, data + off, n);
			off += n;
		}
		if (st != SMTP_REPLY_MORE) {
			*used_r = off;
			return st;
		}
	}
	*used_r = off;
	return SMTP_REPLY_MORE;
}

int
smtp_reply_class(const struct smtp_reply *rp)
{
	return rp->rp_code / 100;
}

bool
smtp_reply_ehlo_has(const struct smtp_reply *rp, const char *kw,
    const char **arg_r, size_t *arglen_r)
{
	const char *p, *end, *nl;
	size_t	    kl = strlen(kw), ll;

	if (rp->rp_lines.data == NULL)
		return false;
	p = rp->rp_lines.data;
	end = p + rp->rp_lines.len;
	/* line 1 is the greeting text: skip it */
	if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
		return false;
	for (p = nl + 1; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		ll = (size_t)(nl - p);
		if (ll < kl || (ll > kl && p[kl] != ' ' && p[kl] != '='))
			continue;
		if (strncasecmp(p, kw, kl) != 0)
			continue;
		if (arg_r != NULL)
			*arg_r = ll > kl ? p + kl + 1 : p + ll;
		if (arglen_r != NULL)
			*arglen_r = ll > kl ? ll - kl - 1 : 0;
		return true;
	}
	return false;
}

const char *
smtp_reply_dsn(const struct smtp_reply *rp)
{
	if (rp->rp_enh[0] != '\0')
		return rp->rp_enh;
	switch (rp->rp_code / 100) {
	case 2:
		return "2.0.0";
	case 4:
		return "4.0.0";
	default:
		return "5.0.0";
	}
}
