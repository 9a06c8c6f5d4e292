/*
 * Unit tests for common/track_scan: gumbo's tokenizer alone finds the
 * same hrefs (offsets, lengths, URLs) and the same pixel position as its
 * whole parse on documents without the markup that changes tokenizer
 * states through tree building (raw text, RCDATA, script, plaintext,
 * comments, character references, unquoted and duplicate attributes,
 * misnested and unclosed markup); documents with svg, math, template,
 * select or frameset, where the tokenizer alone would be wrong, are left
 * alone; where the two place the pixel differently by design
 * (a </body> the tree builder ignores) the test says so.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "track_html.h"
#include "track_scan.h"

/* The two scans of doc agree exactly. */
static bool
same(const char *what, const char *doc)
{
	struct track_scan a, b;
	size_t		  n = strlen(doc), i;
	bool		  ok;

	track_scan_how(doc, n, TRACK_SCAN_LEX, &a);
	track_scan_how(doc, n, TRACK_SCAN_TREE, &b);
	ok = a.ts_n == b.ts_n && a.ts_pixel == b.ts_pixel;
	for (i = 0; ok && i < a.ts_n; i++)
		ok = a.ts_v[i].th_off == b.ts_v[i].th_off &&
		    a.ts_v[i].th_len == b.ts_v[i].th_len &&
		    strcmp(a.ts_v[i].th_url, b.ts_v[i].th_url) == 0;
	if (!ok)
		t_diag("%s: lex %zu hrefs, pixel %zu; tree %zu, pixel %zu",
		    what, a.ts_n, a.ts_pixel, b.ts_n, b.ts_pixel);
	track_scan_free(&a);
	track_scan_free(&b);
	return t_ok(ok, "%s: the tokenizer alone agrees with the parse", what);
}

/* hrefs found by how, as "url|url|" and the pixel offset. */
static void
scan_str(const char *doc, enum track_scan_how how, char *out, size_t outsz,
    size_t *pixel)
{
	struct track_scan s;
	size_t		  i, at = 0;

	out[0] = '\0';
	track_scan_how(doc, strlen(doc), how, &s);
	for (i = 0; i < s.ts_n && at < outsz; i++)
		at += (size_t)snprintf(out + at, outsz - at, "%s|",
		    s.ts_v[i].th_url);
	*pixel = s.ts_pixel;
	track_scan_free(&s);
}

static void
t_available(void)
{
#ifdef HAVE_GUMBO_LEX
	t_ok(track_scan_init(),
	    "gumbo 0.10's tokenizer passes the start-up check");
#else
	t_diag("gumbo is not 0.10.x: only the whole parse");
	t_ok(!track_scan_init(), "no tokenizer: the check says so");
#endif
}

static const char *const agree[][2] = {
	{ "plain",
	    "<html><body><a href=\"https://a.test/x\">x</a>"
	    "<a href='http://b.test/'>y</a></body></html>" },
	{ "no body end tag", "<p><a href=https://a.test/>x</a>" },
	{ "html end tag only",
	    "<html><body><p>x<a href=https://a.test/>y</a>"
	    "</html>" },
	{ "raw text",
	    "<style>a{}<a href=\"https://no.test/\"></style>"
	    "<script>var s='<a href=\"https://no2.test/\">';</script>"
	    "<a href=\"https://yes.test/\">y</a></body>" },
	{ "rcdata",
	    "<title><a href=https://t.test/></title><textarea>"
	    "</body><a href=https://ta.test/></textarea>"
	    "<a href=https://y.test/>y</a></body>" },
	{ "rawtext kin",
	    "<xmp><a href=https://x.test/></xmp><iframe>"
	    "<a href=https://i.test/></iframe><noembed>"
	    "<a href=https://e.test/></noembed><noframes>"
	    "<a href=https://f.test/></noframes>"
	    "<a href=https://y.test/>y</a>" },
	{ "noscript (scripting off)",
	    "<noscript><a href=https://n.test/>n</a></noscript>"
	    "<head><noscript><style><a href=https://s.test/></style>"
	    "</noscript></head>" },
	{ "plaintext",
	    "<a href=https://y.test/>y</a><plaintext>"
	    "<a href=https://p.test/></body>" },
	{ "comments",
	    "<!-- <a href=https://c.test/> --><a href=https://y"
	    ".test/>y</a><!--> <a href=https://z.test/>z</a>"
	    "<! bogus <a href=https://b.test/> ></body>" },
	{ "references",
	    "<a href=\"https://a.test/?a=1&amp;b=2&copy=3&#x41;\">"
	    "x</a><a href=\"&#104;ttps://e.test/\">e</a></body>" },
	{ "attributes",
	    "<a title=x HREF = 'https://a.test/' href=https://"
	    "dup.test/>a</a><a href=\"https://b.test/\" "
	    "data-no-track>b</a><a href=mailto:x@y.test>m</a>"
	    "<a href=\"  https://s.test/  \">s</a>" },
	{ "misnested",
	    "<b><a href=https://a.test/><p>x</b>y</a><i><a href="
	    "https://b.test/>z<a href=https://c.test/>w</i></p>"
	    "</body>" },
	{ "tables",
	    "<table><tr><td><a href=https://a.test/>a</a></td></tr>"
	    "<a href=https://fostered.test/>f</a><style><a href="
	    "https://s.test/></style></table></body></html>" },
	{ "head and body end tags early",
	    "<head></body><a href=https://a.test/>a</a></html>" },
	{ "no-break space and case",
	    "<A Href=HTTPS://A.TEST/>a</A>"
	    "<a href=ftp://f.test/>f</a></BODY>" },
	{ "end of file in a tag", "<a href=https://a.test/>x</a><a href=\"" },
	{ "raw text never closed",
	    "<a href=https://a.test/>a</a><script>"
	    "<a href=https://no.test/></body>" },
	{ "long text runs (skipped)",
	    "<!doctype html><p>text that runs on for a while &amp; on &lt; "
	    "and on, with \r\n line ends\r\n and more</p><!-- a comment -->"
	    "more text after the comment, long enough to skip<a href="
	    "https://a.test/>a</a> and text after the link that is long<b>"
	    "b</b>\x00 nul and text, long, long, long<a href=https://b.test/>"
	    "b</a></body> trailing text that is long enough too" },
	{ "long raw text (not skipped)",
	    "<title>a title long enough to skip <a href=https://no.test/> "
	    "</title>text after the title, long enough<a href=https://y.test/"
	    ">y</a><textarea>long text in a textarea, then </body> inside "
	    "</textarea>long text after the textarea to skip </body>" },
	{ "doctype emitted early by gumbo",
	    "<!doctypeh\tPUBLIC\x04 then "
	    "a long bogus doctype<a href="
	    "http://x.test/>" },
	{ "raw text skipped to its end tag",
	    "<head><style>.a{color:red} </styl <a href=https://n1.test/> "
	    "</stylex><a href=https://n2.test/> </style\x00<a href=https://"
	    "n3.test/></STYLE\t><a href=https://y1.test/>y</a><title>a long"
	    " title with </title-x <a href=https://n4.test/> </TITLE/><a hre"
	    "f=https://y2.test/>y</a><textarea>long text </textarea\r></b"
	    "ody><a href=https://y3.test/>y</a><xmp>long, never closed <a hr"
	    "ef=https://n5.test/> </xm" },
	{ "raw text at the very end",
	    "<style>a long style sheet to the end"
	    " </style" },
	{ "text to the end",
	    "<a href=https://a.test/>a</a> and text to the "
	    "end of the document without any tag" },
	{ "nul and bad utf-8",
	    "<a href=\"https://a.test/\xff\xfe\">\xc3(x</a></body>" },
};

static void
t_agree(void)
{
	size_t i;

	for (i = 0; i < sizeof(agree) / sizeof(agree[0]); i++)
		(void)same(agree[i][0], agree[i][1]);
}

/* Markup the tokenizer alone would get wrong: the part is left alone
 * (gumbo's tree builder, which it would need, aborts on some of it). */
static void
t_skip(void)
{
	static const char *const docs[] = {
		"<svg><style><a href=https://s.test/>s</a></style></svg>"
		"<a href=https://y.test/>y</a>",
		"<template><a href=https://t.test/></template></body><p>x",
		"<MATH><a href=https://m.test/>",
		"<select><style>x</style>",
		"<frameset><noframes><a href=https://f.test/></noframes>",
		"<table><svg><select><title><select><td>",
	};
	struct track_scan s;
	size_t		  i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		track_scan(docs[i], strlen(docs[i]), &s);
#ifdef HAVE_GUMBO_LEX
		t_ok(s.ts_skip && s.ts_n == 0 && s.ts_pixel == SIZE_MAX,
		    "left alone: %.30s", docs[i]);
#else
		t_ok(!s.ts_skip, "the whole parse: %.30s", docs[i]);
#endif
		track_scan_free(&s);
	}
	track_scan("<p><a href=https://a.test/>a</a><svgx>", 38, &s);
	t_ok(!s.ts_skip && s.ts_n == 1, "<svgx> is not svg");
	track_scan_free(&s);
}

/* The tokenizer alone would take svg's style for raw text, as the
 * reference parse shows. */
static void
t_svg_reference(void)
{
	static const char svg[] = "<svg><style><a href=https://s.test/>s</a>"
				  "</style></svg><a href=https://y.test/>y</a>";
	char		  got[512];
	size_t		  pg;

	scan_str(svg, TRACK_SCAN_TREE, got, sizeof(got), &pg);
	t_str_eq(got, "https://s.test/|https://y.test/|",
	    "svg: the parse finds the link inside svg's style");
#ifdef HAVE_GUMBO_LEX
	scan_str(svg, TRACK_SCAN_LEX, got, sizeof(got), &pg);
	t_str_eq(got, "https://y.test/|",
	    "svg: the tokenizer alone would not: such parts are left alone");
#endif
}

/* By design: the first </body> of the source, where the parse ignores
 * one inside a table that is still open. */
static void
t_pixel_table(void)
{
	static const char doc[] = "<table><tr><td>x</body></html>";
	char		  got[64];
	size_t		  pl, pt;

	scan_str(doc, TRACK_SCAN_TREE, got, sizeof(got), &pt);
	t_int_eq((long long)pt, (long long)strlen(doc),
	    "open table: the parse puts the pixel at the end");
#ifdef HAVE_GUMBO_LEX
	scan_str(doc, TRACK_SCAN_LEX, got, sizeof(got), &pl);
	t_int_eq((long long)pl, (long long)(strstr(doc, "</body>") - doc),
	    "open table: the tokenizer puts it before the </body> of the "
	    "source");
#else
	(void)pl;
#endif
}

static const struct t_case cases[] = {
	{ "available", t_available },
	{ "agree", t_agree },
	{ "skip", t_skip },
	{ "svg_reference", t_svg_reference },
	{ "pixel_table", t_pixel_table },
};

int
main(void)
{
	track_html_init();
	return T_RUN(cases);
}
