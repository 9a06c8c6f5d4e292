/*
 * Unit tests for the edit-local rewriting of quoted-printable HTML parts
 * (common/track_enc.c, track_html's runs of lines): lines decoded one by
 * one give what the whole body decoded gives; a run encoded again decodes
 * to its edited text, keeps lines within 76 characters and ends where the
 * next line can follow; a message's untouched lines stay byte for byte
 * while the decoded HTML is the one whole re-encoding gives; plans made
 * before runs (TP1) still apply; a plan whose runs do not fit is refused.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "buf.h"
#include "tap.h"
#include "track_enc.h"
#include "track_html.h"

#define H1 \
	"From: a@b.test\r\nTo: c@d.test\r\nSubject: s\r\nMIME-Version: " \
	"1.0\r\n"
#define QPHDR "Content-Transfer-Encoding: quoted-printable\r\n\r\n"

static int
tok_cb(void *arg, int kind, unsigned link, char *out, size_t outsz)
{
	(void)arg;
	return snprintf(out, outsz, "T%c%u", kind, link) > 0 ? 0 : -1;
}

/* The reference: CRLF as LF, then GMime's decoder over the whole body. */
static void
whole_decode(const char *raw, size_t n, struct buf *out)
{
	GMimeEncoding e;
	struct buf    lf;
	size_t	      i, got;

	buf_init(&lf, 1 << 24);
	for (i = 0; i < n; i++)
		if (raw[i] != '\r' || i + 1 == n || raw[i + 1] != '\n')
			(void)buf_putc(&lf, raw[i]);
	g_mime_encoding_init_decode(&e, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	(void)buf_reserve(out, lf.len + 16);
	got = g_mime_encoding_flush(&e, lf.data ? lf.data : "", lf.len,
	    out->data);
	out->len = got;
	out->data[got] = '\0';
	buf_release(&lf);
}

static void
t_decode_lines(void)
{
	static const char *const bodies[] = { "abc=\r\ndef\r\n",
		"a=3Db=\r\n=3d", "=4\r\nx", "=XY=\r\n",
		"==\r\n=", "trailing =\r\n", "lone\rcr\r\n", "bare\nlf=\nx\n",
		"end=", "=0D=0A\r\n", "= \r\n", "=\r", "", "\r\n\r\n",
		"x=\r\r\n", "=\r\n=\r\n=\r\n",
		"caf=C3=A9 =E2=82=AC\r\n<a href=3D\"h=\r\nt\">" };
	struct buf		 a, b;
	size_t			 i, same = 0;

	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		buf_reset(&a);
		buf_reset(&b);
		whole_decode(bodies[i], strlen(bodies[i]), &a);
		if (track_qp_decode_lines(bodies[i], strlen(bodies[i]), &b) ==
			0 &&
		    a.len == b.len &&
		    (a.len == 0 || memcmp(a.data, b.data, a.len) == 0))
			same++;
		else
			t_diag("differs: %s", bodies[i]);
	}
	t_int_eq((long long)same, (long long)(sizeof(bodies) / sizeof(*bodies)),
	    "lines decoded one by one: the whole body decoded, every case");
	buf_release(&a);
	buf_release(&b);
}

/* Every line of s[0, n) (CRLF-terminated or last) within max bytes. */
static bool
lines_within(const char *s, size_t n, size_t max)
{
	size_t i, line = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			continue;
		line = s[i] == '\n' ? 0 : line + 1;
		if (line > max)
			return false;
	}
	return true;
}

static void
t_encode_run(void)
{
	static const char *const texts[] = { "short", "ends in a LF\n",
		"trailing space ", "trailing tab\t",
		"=3D and = signs ==", "two\nlines, the second not ended",
		"8-bit \xc3\xa9\xe2\x82\xac and a CR\r in it",
		"<a href=\"https://t.test/c/Tc0\" style=\"color:#06c\">see "
		"item 0</a>. A line that goes on past the seventy-six "
		"columns of quoted-printable, and on, and on, and on, and on, "
		"until it needs two soft breaks at least</p>",
		"" };
	struct buf		 enc, dec, want;
	size_t i, ok = 0, n = sizeof(texts) / sizeof(texts[0]);
	int    last;

	buf_init(&enc, 1 << 20);
	buf_init(&dec, 1 << 20);
	buf_init(&want, 1 << 20);
	for (i = 0; i < n; i++)
		for (last = 0; last < 2; last++) {
			buf_reset(&enc);
			buf_reset(&dec);
			buf_reset(&want);
			/* the run was one line; "next" follows unless last */
			if (track_qp_encode_run(last ? "x" : "x=\r\n",
				last ? 1 : 4, last, texts[i], strlen(texts[i]),
				&enc) == -1)
				continue;
			if (!last &&
			    (enc.len < 2 ||
				memcmp(enc.data + enc.len - 2, "\r\n", 2) != 0))
				continue; /* the next line must start a line */
			if (!last)
				(void)buf_puts(&enc, "next\r\n");
			(void)buf_puts(&want, texts[i]);
			if (!last)
				(void)buf_puts(&want, "next\n");
			else /* the part's end: its last LF is raw's, none */
				while (want.len > 0 &&
				    want.data[want.len - 1] == '\n')
					want.data[--want.len] = '\0';
			(void)track_qp_decode_lines(enc.data, enc.len, &dec);
			if (dec.len == want.len &&
			    memcmp(dec.data, want.data, want.len) == 0 &&
			    lines_within(enc.data, enc.len, 76))
				ok++;
			else
				t_diag("text %zu last %d: got [%s]", i, last,
				    enc.data);
		}
	t_int_eq((long long)ok, (long long)(2 * n),
	    "each run encoded again ends a line and decodes to its text (then "
	    "the next line as it was), lines of at most 76");
	buf_release(&enc);
	buf_release(&dec);
	buf_release(&want);
}

/*
 * A quoted-printable HTML part as another encoder wrapped it (40 columns)
 * with three links, one href across a soft break, and a long untouched
 * paragraph between them.
 */
static const char qp_msg[] = H1
    "Content-Type: multipart/alternative; boundary=\"=_b\"\r\n\r\n"
    "--=_b\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
    "--=_b\r\nContent-Type: text/html; charset=utf-8\r\n" QPHDR
    "<html><body><p style=3D\"color:red\">Fir=\r\n"
    "st paragraph, untouched, wrapped at=\r\n"
    " forty columns by its encoder.</p>\r\n"
    "<p><a href=3D\"https://shop.test/a?x=3D=\r\n"
    "1&amp;y=3D2\">one</a> and some text =\r\n"
    "after it.</p>\r\n"
    "<p>Untouched again: caf=C3=A9 and an =\r\n"
    "equals sign =3D and a trailing space=20\r\n"
    "</p>\r\n"
    "<p><a href=3D\"https://shop.test/b\">two</a>=\r\n"
    "<a href=3D'http://shop.test/c'>three<=\r\n"
    "/a></p>\r\n"
    "<p>Last untouched line before the end.</p>\r\n"
    "</body></html>\r\n"
    "--=_b--\r\n";

/* The decoded body of the message's quoted-printable part. */
static void
qp_body(const char *msg, struct buf *out)
{
	const char *b = strstr(msg, QPHDR), *e;

	buf_reset(out);
	if (b == NULL || (e = strstr(b, "\r\n--=_b--")) == NULL)
		return;
	b += strlen(QPHDR);
	(void)track_qp_decode_lines(b, (size_t)(e - b), out);
}

static void
t_local_message(void)
{
	static const char *const kept[] = {
		"st paragraph, untouched, wrapped at=\r\n"
		" forty columns by its encoder.</p>\r\n",
		"<p>Untouched again: caf=C3=A9 and an =\r\n"
		"equals sign =3D and a trailing space=20\r\n</p>\r\n",
	};
	struct track_opts  o = { "t.test", true, true, 9999, tok_cb, NULL,
		 false };
	struct track_links tl;
	struct buf	   loc, whole, a, b;
	const char	  *p;
	size_t		   i, hl;
	bool		   kept_ok = true;

	buf_init(&loc, 1 << 20);
	buf_init(&whole, 1 << 20);
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	t_ok(track_links_extract(qp_msg, strlen(qp_msg), &tl) == 0 &&
		tl.tl_n == 3 &&
		strcmp(tl.tl_v[0], "https://shop.test/a?x=1&y=2") == 0,
	    "three links, the first across a soft break");
	t_int_eq(track_plan_apply(qp_msg, strlen(qp_msg), tl.tl_plan,
		     tl.tl_planlen, &o, &loc),
	    1, "edited run by run");
	o.to_whole = true;
	t_int_eq(track_plan_apply(qp_msg, strlen(qp_msg), tl.tl_plan,
		     tl.tl_planlen, &o, &whole),
	    1, "and whole");
	qp_body(loc.data, &a);
	qp_body(whole.data, &b);
	t_ok(a.len > 0 && a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
	    "the same decoded HTML as re-encoding the whole part");
	t_ok(strstr(a.data, "<a href=\"https://t.test/c/Tc0\">one</a>") !=
		    NULL &&
		strstr(a.data, "<a href=\"https://t.test/c/Tc2\">three</a>") !=
		    NULL &&
		strstr(a.data,
		    "<img src=\"https://t.test/o/To0\" width=\"1\" "
		    "height=\"1\" alt=\"\"></body>") != NULL,
	    "links and pixel in it");
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		kept_ok = kept_ok && strstr(loc.data, kept[i]) != NULL;
	t_ok(kept_ok, "the untouched lines byte for byte, as wrapped");
	p = strstr(loc.data, QPHDR);
	t_ok(p != NULL && lines_within(p, strlen(p), 76),
	    "every line of the part within 76");
	hl = (size_t)(strstr(qp_msg, QPHDR) - qp_msg);
	t_ok(loc.len > hl && memcmp(loc.data, qp_msg, hl) == 0,
	    "headers and the text part byte for byte");
	o.to_whole = false;
	o.to_opens = false;
	o.to_links = 1; /* only link 0: the runs of links 1, 2 stay */
	buf_reset(&loc);
	t_int_eq(track_plan_apply(qp_msg, strlen(qp_msg), tl.tl_plan,
		     tl.tl_planlen, &o, &loc),
	    1, "one link only");
	t_ok(strstr(loc.data,
		 "<p><a href=3D\"https://shop.test/b\">two</a>=\r\n"
		 "<a href=3D'http://shop.test/c'>three<=\r\n/a></p>\r\n"
		 "<p>Last untouched line before the end.</p>\r\n"
		 "</body></html>\r\n--=_b--\r\n") != NULL,
	    "the rest of the part as it was");
	track_links_free(&tl);
	buf_release(&loc);
	buf_release(&whole);
	buf_release(&a);
	buf_release(&b);
}

/*
 * No </body>: the pixel goes at the part's end, after its blank lines;
 * the last run must take them in, or the copy ends otherwise than the
 * whole part encoded again.
 */
static void
t_trailing_lines(void)
{
	static const char msg[] = H1
	    "Content-Type: multipart/alternative; boundary=\"=_b\"\r\n\r\n"
	    "--=_b\r\nContent-Type: text/html\r\n" QPHDR
	    "<p><a href=3D\"https://shop.test/a\">one</a></p>\r\n"
	    "<p>plain</p></html>\r\n\r\n\r\n--=_b--\r\n";
	struct track_opts  o = { "t.test", true, true, 9999, tok_cb, NULL,
		 false };
	struct track_links tl;
	struct buf	   loc, whole, a, b;

	buf_init(&loc, 1 << 20);
	buf_init(&whole, 1 << 20);
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	(void)track_links_extract(msg, strlen(msg), &tl);
	t_int_eq(track_plan_apply(msg, strlen(msg), tl.tl_plan, tl.tl_planlen,
		     &o, &loc),
	    1, "edit-local");
	o.to_whole = true;
	t_int_eq(track_plan_apply(msg, strlen(msg), tl.tl_plan, tl.tl_planlen,
		     &o, &whole),
	    1, "whole");
	qp_body(loc.data, &a);
	qp_body(whole.data, &b);
	t_ok(a.len > 0 && a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
	    "the same decoded HTML, its end included");
	track_links_free(&tl);
	buf_release(&loc);
	buf_release(&whole);
	buf_release(&a);
	buf_release(&b);
}

/* A plan of before runs of lines (TP1): one part, its hrefs, no runs. */
static void
t_plan_v1(void)
{
	struct track_opts  o = { "t.test", true, true, 9999, tok_cb, NULL,
		 false };
	struct track_links tl;
	struct buf	   v1, out, ref;
	size_t		   len = strlen(qp_msg);

	buf_init(&v1, 1 << 20);
	buf_init(&out, 1 << 20);
	buf_init(&ref, 1 << 20);
	(void)track_links_extract(qp_msg, len, &tl);
	/* magic, flags, count; a part's 6 fields, its hrefs; then its runs */
	(void)buf_append(&v1, "TP1", 4);
	(void)buf_append(&v1, tl.tl_plan + 4, 16 + 48 + 16 * tl.tl_n);
	t_int_eq(track_plan_apply(qp_msg, len, v1.data, v1.len, &o, &out), 1,
	    "a TP1 plan applies");
	t_int_eq(track_rewrite(qp_msg, len, &o, &ref), 1, "track_rewrite");
	t_ok(out.len == ref.len && memcmp(out.data, ref.data, out.len) == 0,
	    "as track_rewrite: the whole part encoded again");
	track_links_free(&tl);
	buf_release(&v1);
	buf_release(&out);
	buf_release(&ref);
}

/* The last run's field k (tl_es, tl_ee, tl_ds, tl_de) += d in the plan. */
static void
bump_run(char *plan, size_t planlen, int k, int d)
{
	unsigned char *f = (unsigned char *)plan + planlen - 32 + 8 * k + 7;

	*f = (unsigned char)(*f + d);
}

static void
t_bad_runs(void)
{
	static const int   fields[] = { 0, 1, 2, 3 };
	struct track_opts  o = { "t.test", true, true, 9999, tok_cb, NULL,
		 false };
	struct track_links tl;
	struct buf	   out;
	size_t		   i, refused = 0, len = strlen(qp_msg);

	buf_init(&out, 1 << 20);
	for (i = 0; i < 4; i++) {
		(void)track_links_extract(qp_msg, len, &tl);
		bump_run(tl.tl_plan, tl.tl_planlen, fields[i], 1);
		buf_reset(&out);
		if (track_plan_apply(qp_msg, len, tl.tl_plan, tl.tl_planlen, &o,
			&out) == -1 &&
		    out.len == 0)
			refused++;
		track_links_free(&tl);
	}
	t_int_eq((long long)refused, 4,
	    "a run moved by a byte (either end, encoded or decoded): "
	    "refused, nothing written");
	buf_release(&out);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "decode_lines", t_decode_lines },
		{ "encode_run", t_encode_run },
		{ "local_message", t_local_message },
		{ "trailing_lines", t_trailing_lines },
		{ "plan_v1", t_plan_v1 },
		{ "bad_runs", t_bad_runs },
	};

	track_html_init();
	return T_RUN(cases);
}
