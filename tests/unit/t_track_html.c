/*
 * Unit tests for common/track_html (issue 16): which links are tracked
 * and in what order, the positions of the edits (everything else byte
 * for byte), the pixel, quoted-printable and base64 parts re-encoded,
 * multipart/alternative with a text part left alone, a malformed message
 * left alone by both sides, the bound on links, and extraction and
 * rewriting agreeing on the numbering.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "buf.h"
#include "tap.h"
#include "track_html.h"

#define H1 \
	"From: a@b.test\r\nTo: c@d.test\r\nSubject: s\r\nMIME-Version: " \
	"1.0\r\n"

static int
tok_cb(void *arg, int kind, unsigned link, char *out, size_t outsz)
{
	(void)arg;
	return snprintf(out, outsz, "T%c%u", kind, link) > 0 ? 0 : -1;
}

static const struct track_opts opts_all = { "t.test", true, true, 9999, tok_cb,
	NULL, false };
static const struct track_opts opts_clicks = { "t.test", false, true, 9999,
	tok_cb, NULL, false };

/* The decoded body of the first text/html (or, html false, text/plain) part. */
static char *
body_of(const char *msg, bool html)
{
	GMimeStream   *st = g_mime_stream_mem_new_with_buffer(msg, strlen(msg));
	GMimeParser   *p = g_mime_parser_new_with_stream(st);
	GMimeMessage  *m = g_mime_parser_construct_message(p, NULL);
	GMimePartIter *it;
	GMimeObject   *o = NULL, *x;
	GMimeStream   *out;
	GByteArray    *ba;
	char	      *s = NULL;

	if (m == NULL)
		return NULL;
	it = g_mime_part_iter_new((GMimeObject *)m);
	x = g_mime_message_get_mime_part(m);
	if (GMIME_IS_PART(x))
		o = x;
	while (o == NULL && g_mime_part_iter_is_valid(it)) {
		x = g_mime_part_iter_get_current(it);
		if (GMIME_IS_PART(x) &&
		    g_mime_content_type_is_type(g_mime_object_get_content_type(
						    x),
			"text", html ? "html" : "plain"))
			o = x;
		(void)g_mime_part_iter_next(it);
	}
	if (o != NULL) {
		ba = g_byte_array_new();
		out = g_mime_stream_mem_new_with_byte_array(ba);
		g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(out), FALSE);
		(void)g_mime_data_wrapper_write_to_stream(
		    g_mime_part_get_content(GMIME_PART(o)), out);
		s = strndup((const char *)ba->data, ba->len);
		g_object_unref(out);
		g_byte_array_free(ba, TRUE);
	}
	g_mime_part_iter_free(it);
	g_object_unref(m);
	g_object_unref(p);
	g_object_unref(st);
	return s;
}

static size_t plan_checked, plan_differs;

/* Both decoded bodies (html, then text) of two messages agree. */
static bool
same_bodies(const char *a, const char *b)
{
	bool  same = true;
	char *x, *y;
	int   k;

	for (k = 0; k < 2; k++) {
		x = body_of(a, k == 0);
		y = body_of(b, k == 0);
		same = same &&
		    ((x == NULL && y == NULL) ||
			(x != NULL && y != NULL && strcmp(x, y) == 0));
		free(x);
		free(y);
	}
	return same;
}

/*
 * track_rewrite, and track_plan_apply of the extraction's plan: re-encoding
 * whole parts (to_whole) it must give the same bytes; editing only the
 * runs of lines around the edits, the same result and decoded bodies
 * (counted in plan_checked/plan_differs).
 */
static int
rewrite(const char *msg, const struct track_opts *o, struct buf *out)
{
	struct track_links tl;
	struct track_opts  whole = *o;
	struct buf	   alt, loc;
	int		   rc, rc2, rc3;

	whole.to_whole = true;
	buf_init(out, 1 << 24);
	rc = track_rewrite(msg, strlen(msg), o, out);
	(void)track_links_extract(msg, strlen(msg), &tl);
	buf_init(&alt, 1 << 24);
	buf_init(&loc, 1 << 24);
	rc2 = track_plan_apply(msg, strlen(msg), tl.tl_plan, tl.tl_planlen,
	    &whole, &alt);
	rc3 = track_plan_apply(msg, strlen(msg), tl.tl_plan, tl.tl_planlen, o,
	    &loc);
	plan_checked++;
	if (rc2 != rc || alt.len != out->len ||
	    (alt.len > 0 && memcmp(alt.data, out->data, alt.len) != 0) ||
	    rc3 != rc || (rc == 1 && !same_bodies(loc.data, out->data)))
		plan_differs++;
	buf_release(&loc);
	buf_release(&alt);
	track_links_free(&tl);
	return rc;
}

static void
t_plan_agrees(void)
{
	static const char msg[] = H1
	    "Content-Type: text/html\r\n\r\n"
	    "<p><a href=\"http://x.test/\">x</a></p>\r\n";
	struct track_links tl;
	struct buf	   out;
	char		  *plan;

	t_ok(plan_checked > 10 && plan_differs == 0,
	    "the plan gave track_rewrite's result for every message above, "
	    "edit-local the same decoded bodies (%zu of %zu differ)",
	    plan_differs, plan_checked);
	(void)track_links_extract(msg, strlen(msg), &tl);
	buf_init(&out, 1 << 20);
	t_int_eq(track_plan_apply(H1
		     "Content-Type: text/html\r\n\r\n<p>other</p>\r\n",
		     strlen(H1) + 40, tl.tl_plan, tl.tl_planlen, &opts_all,
		     &out),
	    -1, "a plan that does not fit the message: not applied");
	plan = tl.tl_plan;
	plan[tl.tl_planlen - 1] ^= 1;
	t_int_eq(track_plan_apply(msg, strlen(msg), plan, tl.tl_planlen,
		     &opts_all, &out),
	    -1, "a changed plan: not applied");
	t_int_eq(track_plan_apply(msg, strlen(msg), plan, tl.tl_planlen - 3,
		     &opts_all, &out),
	    -1, "a truncated plan: not applied");
	t_int_eq((long long)out.len, 0, "nothing written");
	buf_release(&out);
	track_links_free(&tl);
}

static void
t_links_and_positions(void)
{
	static const char msg[] = H1
	    "Content-Type: text/html; charset=utf-8\r\n\r\n"
	    "<html><body><p>Hi <a  HREF='https://shop.test/a?x=1&amp;y=2' "
	    "class=c>one</a>\r\n"
	    "<a href=\"mailto:x@y.test\">m</a> <a href=\"tel:+100\">t</a> <a "
	    "href=\"#top\">a</a>\r\n"
	    "<a data-no-track href=\"https://keep.test/\">k</a> <a href=  "
	    "http://two.test/b >two</a>\r\n"
	    "<a href=\"ftp://f.test/\">f</a><A hReF=\" HTTPS://three.test/ "
	    "\">3</a>\r\n"
	    "</body></html>\r\n";
	static const char want[] = H1
	    "Content-Type: text/html; charset=utf-8\r\n\r\n"
	    "<html><body><p>Hi <a  HREF=\"https://t.test/c/Tc0\" "
	    "class=c>one</a>\r\n"
	    "<a href=\"mailto:x@y.test\">m</a> <a href=\"tel:+100\">t</a> <a "
	    "href=\"#top\">a</a>\r\n"
	    "<a data-no-track href=\"https://keep.test/\">k</a> <a href=  "
	    "\"https://t.test/c/Tc1\" >two</a>\r\n"
	    "<a href=\"ftp://f.test/\">f</a><A "
	    "hReF=\"https://t.test/c/Tc2\">3</a>\r\n"
	    "<img src=\"https://t.test/o/To0\" width=\"1\" height=\"1\" "
	    "alt=\"\"></body></html>\r\n";
	struct track_links tl;
	struct buf	   out;

	t_int_eq(track_links_extract(msg, strlen(msg), &tl), 0, "extract");
	t_ok(tl.tl_n == 3 &&
		strcmp(tl.tl_v[0], "https://shop.test/a?x=1&y=2") == 0 &&
		strcmp(tl.tl_v[1], "http://two.test/b") == 0 &&
		strcmp(tl.tl_v[2], "HTTPS://three.test/") == 0,
	    "http/https only, in order, entities decoded, trimmed (%zu)",
	    tl.tl_n);
	track_links_free(&tl);
	t_int_eq(rewrite(msg, &opts_all, &out), 1, "rewritten");
	t_str_eq(out.data, want,
	    "only the hrefs changed, pixel before </body>");
	buf_release(&out);
}

static void
t_no_body_and_options(void)
{
	static const char msg[] = H1 "Content-Type: text/html\r\n\r\n"
				     "<p><a href=\"http://x.test/\">x</a>\r\n";
	struct buf	  out;

	t_int_eq(rewrite(msg, &opts_all, &out), 1, "rewritten");
	t_str_eq(out.data,
	    H1 "Content-Type: text/html\r\n\r\n"
	       "<p><a href=\"https://t.test/c/Tc0\">x</a>\r\n<img "
	       "src=\"https://t.test/o/To0\" "
	       "width=\"1\" height=\"1\" alt=\"\">",
	    "no </body>: the pixel at the end");
	buf_release(&out);
	t_int_eq(rewrite(msg, &opts_clicks, &out), 1, "clicks only");
	t_ok(strstr(out.data, "/o/") == NULL, "no pixel without opens");
	buf_release(&out);
	t_int_eq(rewrite(H1 "Content-Type: text/html\r\n\r\n<p>none</p>\r\n",
		     &opts_clicks, &out),
	    0, "clicks only, no link: unchanged");
	t_int_eq((long long)out.len, 0, "nothing written");
	buf_release(&out);
}

static char *
mkqp_msg(void)
{
	static char m[8192];

	(void)snprintf(m, sizeof(m), "%s",
	    H1
	    "Content-Type: multipart/alternative; boundary=\"=_b\"\r\n\r\n"
	    "preamble\r\n--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "See https://shop.test/a =E2=82=AC\r\n--=_b\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "<html><body><p style=3D\"color:red\">Price =E2=82=AC5 <a "
	    "href=3D\"https://sh=\r\n"
	    "op.test/a?q=3D1\">buy</a> <a "
	    "href=3D\"mailto:a@b.test\">mail</a></p>\r\n"
	    "<p>line two with trailing space=20\r\n</p></body></html>\r\n"
	    "--=_b--\r\nepilogue\r\n");
	return m;
}

static void
t_qp_alternative(void)
{
	const char	  *msg = mkqp_msg();
	const char	  *p;
	struct track_links tl;
	struct buf	   out;
	char		  *html, *txt;
	size_t		   hl;
	bool		   short_lines = true;

	t_ok(track_links_extract(msg, strlen(msg), &tl) == 0 && tl.tl_n == 1 &&
		strcmp(tl.tl_v[0], "https://shop.test/a?q=1") == 0,
	    "the link across a soft line break, decoded");
	track_links_free(&tl);
	t_int_eq(rewrite(msg, &opts_all, &out), 1, "rewritten");
	hl = strstr(msg, "\r\n\r\n") - msg;
	t_ok(memcmp(out.data, msg, hl) == 0, "header block byte for byte");
	p = strstr(msg, "--=_b\r\nContent-Type: text/html");
	t_ok(memcmp(out.data, msg, (size_t)(p - msg)) == 0,
	    "the text part and everything before the HTML part byte for byte");
	t_ok(strstr(out.data, "\r\n--=_b--\r\nepilogue\r\n") != NULL,
	    "closing boundary and epilogue kept");
	html = body_of(out.data, true);
	txt = body_of(out.data, false);
	t_str_eq(html,
	    "<html><body><p style=\"color:red\">Price \xe2\x82\xac"
	    "5 <a "
	    "href=\"https://t.test/c/Tc0\">buy</a> <a "
	    "href=\"mailto:a@b.test\">mail</a></p>\r\n"
	    "<p>line two with trailing space \r\n</p><img "
	    "src=\"https://t.test/o/To0\" "
	    "width=\"1\" height=\"1\" alt=\"\"></body></html>",
	    "decoded HTML: the old one with the edits (its last CRLF is the "
	    "boundary's)");
	t_str_eq(txt, "See https://shop.test/a \xe2\x82\xac",
	    "text part's text kept");
	for (p = out.data; (p = strchr(p, '\n')) != NULL; p++)
		short_lines = short_lines && p > out.data && p[-1] == '\r';
	t_ok(short_lines, "every line ends in CRLF");
	free(html);
	free(txt);
	buf_release(&out);
}

static void
t_base64(void)
{
	static const char html[] =
	    "<html><body>\r\n<a href=\"https://b.test/x\">x</a>"
	    "<a href=\"https://b.test/y\" "
	    "data-no-track>y</a>\r\n</body></html>\r\n";
	gchar	   *b64 = g_base64_encode((const guchar *)html, strlen(html));
	char	    msg[4096], *dec;
	struct buf  out;
	const char *p, *q;
	bool	    ok = true;

	(void)snprintf(msg, sizeof(msg),
	    H1 "Content-Type: multipart/mixed; boundary=zz\r\n"
	       "\r\n--zz\r\nContent-Type: "
	       "text/html\r\nContent-Transfer-Encoding: base64\r\n"
	       "\r\n%s\r\n--zz\r\nContent-Type: "
	       "text/html\r\nContent-Disposition: attachment; "
	       "filename=a.html\r\n\r\n<a "
	       "href=\"http://att.test/\">att</a>\r\n--zz--\r\n",
	    b64);
	g_free(b64);
	t_int_eq(rewrite(msg, &opts_all, &out), 1, "rewritten");
	dec = body_of(out.data, true);
	t_str_eq(dec,
	    "<html><body>\r\n<a href=\"https://t.test/c/Tc0\">x</a>"
	    "<a href=\"https://b.test/y\" data-no-track>y</a>\r\n<img "
	    "src=\"https://t.test"
	    "/o/To0\" width=\"1\" height=\"1\" alt=\"\"></body></html>\r\n",
	    "decoded base64 body: CRLFs of the content kept");
	p = strstr(out.data, "base64\r\n\r\n") + 10;
	q = strstr(p, "\r\n--zz");
	for (; p < q; p++)
		ok = ok &&
		    (*p == '\r' || *p == '\n' ||
			strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			       "abcdefghijklmnopqrstuvwxyz0123456789+/=",
			    *p) != NULL);
	t_ok(ok &&
		strstr(out.data, "<a href=\"http://att.test/\">att</a>") !=
		    NULL,
	    "base64 alphabet only; the HTML attachment untouched");
	free(dec);
	buf_release(&out);
}

static void
t_malformed(void)
{
	static const char *const bad[] = {
		H1 "Content-Type: "
		   "multipart/alternative\r\n\r\n--x\r\nContent-Type: text/html"
		   "\r\n\r\n<a href=\"http://x.test/\">x</a>\r\n--x--\r\n",
		H1 "Content-Type: multipart/mixed; boundary=q\r\n\r\nno parts "
		   "at all\r\n",
	};
	struct track_links tl;
	struct buf	   out;
	size_t		   i;
	bool		   ok = true;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ok = ok &&
		    track_links_extract(bad[i], strlen(bad[i]), &tl) == -1 &&
		    tl.tl_n == 0;
		track_links_free(&tl);
		ok = ok && rewrite(bad[i], &opts_all, &out) == -1 &&
		    out.len == 0;
		buf_release(&out);
	}
	t_ok(ok, "malformed MIME: no links, not rewritten");
}

/* An HTML part with svg markup is left alone, byte for byte; the other
 * HTML part is tracked and numbered from 0 on both sides. */
static void
t_skipped_part(void)
{
	static const char msg[] = H1
	    "Content-Type: multipart/mixed; boundary=\"s\"\r\n\r\n"
	    "--s\r\nContent-Type: text/html\r\n\r\n<p><svg><a href="
	    "\"https://svg.test/\">s</a></svg><a href=\"https://x.test/\">"
	    "x</a></p>\r\n--s\r\nContent-Type: text/html\r\n\r\n<a href="
	    "\"https://y.test/\">y</a></body>\r\n--s--\r\n";
	struct track_links tl;
	struct buf	   out;
	const char	  *p1 = strstr(msg, "--s\r\n"),
		   *p2 = strstr(p1 + 1, "--s\r\n");

	t_ok(track_links_extract(msg, strlen(msg), &tl) == 0 && tl.tl_n == 1 &&
		strcmp(tl.tl_v[0], "https://y.test/") == 0 &&
		tl.tl_skipped == 1,
	    "svg part: no links recorded, counted as skipped; the other's "
	    "link is number 0");
	track_links_free(&tl);
	t_int_eq(rewrite(msg, &opts_all, &out), 1, "rewritten");
	t_ok(out.len > (size_t)(p2 - msg) &&
		memcmp(out.data, msg, (size_t)(p2 - msg)) == 0,
	    "the svg part byte for byte");
	t_ok(strstr(out.data, "https://t.test/c/Tc0") != NULL &&
		strstr(out.data, "https://y.test/") == NULL,
	    "the other part's link rewritten as link 0");
	buf_release(&out);
}

static void
t_bound_and_clones(void)
{
	struct buf	   m, out;
	struct track_links tl;
	char		   want[64];
	size_t		   i;

	buf_init(&m, 1 << 24);
	(void)buf_puts(&m, H1 "Content-Type: text/html\r\n\r\n<body>");
	for (i = 0; i < TRACK_LINKS_MAX + 5; i++)
		(void)buf_printf(&m,
		    "<a href=\"http://x.test/%zu\">%zu</a>\r\n", i, i);
	/* a formatting element the parser clones: one source attribute */
	(void)buf_puts(&m,
	    "<a href=\"http://clone.test/\"><p>para</a></body>\r\n");
	t_ok(track_links_extract(m.data, m.len, &tl) == 0 &&
		tl.tl_n == TRACK_LINKS_MAX,
	    "at most TRACK_LINKS_MAX links recorded");
	track_links_free(&tl);
	t_int_eq(rewrite(m.data, &opts_clicks, &out), 1, "rewritten");
	(void)snprintf(want, sizeof(want), "/c/Tc%d\"", TRACK_LINKS_MAX - 1);
	t_ok(strstr(out.data, want) != NULL &&
		strstr(out.data, "http://x.test/499\"") == NULL,
	    "the 500th link rewritten");
	t_ok(strstr(out.data, "<a href=\"http://x.test/500\">") != NULL &&
		strstr(out.data, "<a href=\"http://clone.test/\">") != NULL,
	    "later ones left as they were");
	buf_release(&out);
	buf_reset(&m);
	(void)buf_puts(&m,
	    H1 "Content-Type: text/html\r\n\r\n<b><a href=\"http://c.test/\">"
	       "<p>x</a>y</b><a href=\"http://d.test/\">d</a>\r\n");
	t_ok(track_links_extract(m.data, m.len, &tl) == 0 && tl.tl_n == 2 &&
		strcmp(tl.tl_v[1], "http://d.test/") == 0,
	    "a cloned <a> counted once");
	track_links_free(&tl);
	buf_release(&m);
}

static void
t_long_line_7bit(void)
{
	struct buf m, out;
	size_t	   i;

	buf_init(&m, 1 << 20);
	(void)buf_puts(&m, H1 "Content-Type: text/html\r\n\r\n<p>");
	for (i = 0; i < 960; i++)
		(void)buf_putc(&m, 'x');
	(void)buf_puts(&m, "<a href=\"http://a.test/\">a</a></p>\r\n");
	t_int_eq(rewrite(m.data, &opts_clicks, &out), -1,
	    "a 7bit line that would pass 998 bytes: not rewritten");
	buf_release(&out);
	buf_release(&m);
}

/* Two 3 MB HTML parts: the second would pass TRACK_HTML_MAX, so neither
 * side touches it. */
static void
t_html_budget(void)
{
	struct buf	   m, out;
	struct track_links tl;
	size_t		   i, k;

	buf_init(&m, 1 << 24);
	(void)buf_puts(&m,
	    H1 "Content-Type: multipart/mixed; boundary=q\r\n\r\n");
	for (k = 0; k < 2; k++) {
		(void)buf_printf(&m,
		    "--q\r\nContent-Type: text/html\r\n\r\n"
		    "<a href=\"http://p%zu.test/\">x</a>\r\n",
		    k);
		for (i = 0; i < (3u << 20) / 64; i++)
			(void)buf_puts(&m,
			    "<p>filler filler filler filler filler filler "
			    "filler</p>\r\n");
	}
	(void)buf_puts(&m, "--q--\r\n");
	t_ok(track_links_extract(m.data, m.len, &tl) == 0 && tl.tl_n == 1 &&
		strcmp(tl.tl_v[0], "http://p0.test/") == 0,
	    "only the first part's link");
	track_links_free(&tl);
	t_int_eq(rewrite(m.data, &opts_clicks, &out), 1, "rewritten");
	t_ok(strstr(out.data, "<a href=\"http://p1.test/\">") != NULL &&
		strstr(out.data, "<a href=\"http://p0.test/\">") == NULL,
	    "the part past the budget left alone");
	buf_release(&out);
	buf_release(&m);
}

/* Past TRACK_PARTS_MAX HTML parts the rest is left alone. */
static void
t_parts_bound(void)
{
	struct buf	   m, out;
	struct track_links tl;
	size_t		   k;

	buf_init(&m, 1 << 24);
	(void)buf_puts(&m,
	    H1 "Content-Type: multipart/mixed; boundary=q\r\n\r\n");
	for (k = 0; k < TRACK_PARTS_MAX + 3; k++)
		(void)buf_printf(&m,
		    "--q\r\nContent-Type: text/html\r\n\r\n"
		    "<a href=\"http://p%zu.test/\">x</a>\r\n",
		    k);
	(void)buf_puts(&m, "--q--\r\n");
	t_ok(track_links_extract(m.data, m.len, &tl) == 0 &&
		tl.tl_n == TRACK_PARTS_MAX && tl.tl_planlen < 16384,
	    "TRACK_PARTS_MAX parts' links, a small plan");
	track_links_free(&tl);
	t_int_eq(rewrite(m.data, &opts_all, &out), 1, "rewritten");
	t_ok(strstr(out.data,
		 "\r\n\r\n<a href=\"http://p100.test/\">x</a>\r\n--q") !=
		    NULL &&
		strstr(out.data,
		    "\r\n\r\n<a href=\"http://p102.test/\">x</a>\r\n--q--") !=
		    NULL &&
		strstr(out.data, "http://p99.test/") == NULL,
	    "the parts past the bound left alone");
	buf_release(&out);
	buf_release(&m);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "links_and_positions", t_links_and_positions },
		{ "no_body_and_options", t_no_body_and_options },
		{ "qp_alternative", t_qp_alternative },
		{ "base64", t_base64 },
		{ "malformed", t_malformed },
		{ "skipped_part", t_skipped_part },
		{ "bound_and_clones", t_bound_and_clones },
		{ "long_line_7bit", t_long_line_7bit },
		{ "html_budget", t_html_budget },
		{ "parts_bound", t_parts_bound },
		{ "plan_agrees", t_plan_agrees },
	};

	track_html_init();
	return T_RUN(cases);
}
