/*
 * track_scan (libtrack's own header, not for other users): the href
 * values and the body's end tag of one decoded HTML part, by their source
 * positions, as track_html.h describes.
 *
 * With gumbo 0.10 (configure checks) its HTML5 tokenizer alone finds them,
 * the tree builder's only effect on it (the raw-text, RCDATA, script and
 * plaintext states after the start tags that set them) applied here; the
 * library exports the tokenizer but declares it only in its sources, so
 * track_scan.c declares it, and track_scan_init() checks it at start.
 * A part with markup whose tree-building rules change what the tokenizer
 * sees (svg, math, template, select, frameset) is left alone (ts_skip):
 * gumbo's tree builder, which would be needed there, aborts the process
 * on some such input (an assertion: "<table><svg><select><title><select>
 * <td>", found by fuzz_track_scan), so the gateway never runs it. With
 * another gumbo, or if the start-up check fails, the whole parse is used.
 *
 * The tokenizer alone, text skipped, costs about half of the whole parse
 * (bench/README.md, "Tracking: rewriting").
 */
#ifndef SG_TRACK_SCAN_H
#define SG_TRACK_SCAN_H

#include <stdbool.h>
#include <stddef.h>

struct track_lines;

/* One href value (quotes included) in a decoded HTML part. */
struct track_href {
	size_t th_off, th_len;
	char  *th_url;
};

struct track_scan {
	struct track_href *ts_v;
	size_t		   ts_n, ts_cap;
	size_t ts_pixel; /* where the pixel goes (SIZE_MAX: not here) */
	struct track_lines *ts_runs;  /* quoted-printable: the lines to edit */
	size_t		    ts_nruns; /* 0: the whole part is encoded again */
	bool ts_skip; /* left alone: no hrefs, no pixel (see above) */
};
enum track_scan_how {
	TRACK_SCAN_AUTO, /* the tokenizer where it gives the same result */
	TRACK_SCAN_TREE, /* the whole parse (tests' reference only: it
			    can abort on hostile input) */
	TRACK_SCAN_LEX,	 /* the tokenizer (tests; falls back to TREE when
			    it is not available) */
};

/* Checks gumbo's tokenizer against a known document, once per process:
 * false means every scan uses the whole parse. */
bool track_scan_init(void);
/* The http/https hrefs (sorted, each source attribute once) and the pixel
 * position (n: at the end) of html[0..n). html[n] must be a NUL: gumbo
 * 0.10's named character reference matcher reads one byte past the end
 * (a struct buf always has it). */
void track_scan(const char *html, size_t n, struct track_scan *ts);
void track_scan_how(const char *html, size_t n, enum track_scan_how,
    struct track_scan *ts);
void track_scan_free(struct track_scan *ts);

#endif
