/*
 * track_html (track_html.h): the only file that includes <gmime/gmime.h>
 * (track_scan.c the only one with <gumbo.h>). GMime finds the leaf parts
 * and the byte range of each one's encoded body in the message (a parser
 * over a seekable memory stream keeps each body as a bounded substream of
 * it); gumbo finds the href attributes and the body's end tag by their
 * source positions (track_scan.h).
 * Edits are spliced into the original bytes: nothing else is rewritten.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "buf.h"
#include "track_enc.h"
#include "track_html.h"
#include "track_scan.h"
#include "xmem.h"

#define TRACK_PIXEL_MAX (TRACK_URL_MAX + 128)

struct track_walk {
	const char	  *tw_msg;
	size_t		   tw_len;
	struct track_part *tw_v;
	size_t		   tw_n, tw_cap;
	bool		   tw_bad; /* GMime reported a malformed message */
};

void
track_html_init(void)
{
	g_mime_init();
	(void)track_scan_init();
}

/* ---- MIME: the tracked HTML parts in document order */

static void
track_warn_cb(gint64 off, GMimeParserWarning w, const gchar *item, gpointer arg)
{
	struct track_walk *tw = arg;

	(void)off;
	(void)item;
	switch (w) {
	case GMIME_WARN_DUPLICATED_HEADER:
	case GMIME_WARN_DUPLICATED_PARAMETER:
	case GMIME_WARN_UNENCODED_8BIT_HEADER:
	case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE:
	case GMIME_WARN_INVALID_PARAMETER:
	case GMIME_WARN_INVALID_ADDRESS_LIST:
		return; /* about headers we do not touch */
	default:
		tw->tw_bad = true;
	}
}

static bool
track_charset_ok(GMimeObject *o)
{
	const char *cs = g_mime_object_get_content_type_parameter(o, "charset");

	/* gumbo reads bytes: the charset must keep ASCII as ASCII (not the
	 * 7-bit escape-sequence charsets either) */
	return cs == NULL ||
	    (strncasecmp(cs, "utf-16", 6) != 0 &&
		strncasecmp(cs, "utf-32", 6) != 0 &&
		strncasecmp(cs, "ucs", 3) != 0 &&
		strncasecmp(cs, "utf-7", 5) != 0 &&
		strncasecmp(cs, "iso-2022", 8) != 0 &&
		strncasecmp(cs, "hz-gb", 5) != 0);
}

static void
track_part_cb(GMimeObject *parent, GMimeObject *o, gpointer arg)
{
	struct track_walk	*tw = arg;
	GMimeContentDisposition *cd;
	GMimeDataWrapper	*dw;
	GMimeStream		*st;

	(void)parent;
	if (!GMIME_IS_PART(o) ||
	    !g_mime_content_type_is_type(g_mime_object_get_content_type(o),
		"text", "html"))
		return;
	cd = g_mime_object_get_content_disposition(o);
	if ((cd != NULL && g_mime_content_disposition_is_attachment(cd)) ||
	    !track_charset_ok(o) ||
	    !track_enc_ok(g_mime_part_get_content_encoding(GMIME_PART(o))))
		return;
	if ((dw = g_mime_part_get_content(GMIME_PART(o))) == NULL ||
	    (st = g_mime_data_wrapper_get_stream(dw)) == NULL ||
	    st->bound_start < 0 || st->bound_end < st->bound_start ||
	    (uint64_t)st->bound_end > tw->tw_len) {
		tw->tw_bad = true; /* no place in the message: leave it all */
		return;
	}
	if (tw->tw_n == TRACK_PARTS_MAX)
		return; /* the rest is left alone, on both sides */
	if (tw->tw_n == tw->tw_cap) {
		tw->tw_cap = tw->tw_cap ? tw->tw_cap * 2 : 4;
		tw->tw_v = xreallocarray(tw->tw_v, tw->tw_cap,
		    sizeof(*tw->tw_v));
	}
	tw->tw_v[tw->tw_n].tp_start = (size_t)st->bound_start;
	tw->tw_v[tw->tw_n].tp_end = (size_t)st->bound_end;
	tw->tw_v[tw->tw_n++].tp_enc = g_mime_part_get_content_encoding(
	    GMIME_PART(o));
}

/* The tracked parts of msg into tw; -1 when GMime finds it malformed. */
static int
track_walk(const char *msg, size_t len, struct track_walk *tw)
{
	GMimeParserOptions *po;
	GMimeStream	   *st;
	GMimeParser	   *p;
	GMimeMessage	   *m;

	memset(tw, 0, sizeof(*tw));
	tw->tw_msg = msg;
	tw->tw_len = len;
	po = g_mime_parser_options_new();
	g_mime_parser_options_set_warning_callback(po, track_warn_cb, tw);
	st = g_mime_stream_mem_new_with_buffer(msg, len);
	p = g_mime_parser_new_with_stream(st);
	g_mime_parser_set_persist_stream(p, TRUE);
	m = g_mime_parser_construct_message(p, po);
	if (m == NULL)
		tw->tw_bad = true;
	else
		g_mime_message_foreach(m, track_part_cb, tw);
	if (m != NULL)
		g_object_unref(m);
	g_object_unref(p);
	g_object_unref(st);
	g_mime_parser_options_free(po);
	if (tw->tw_bad) {
		free(tw->tw_v);
		tw->tw_v = NULL;
		tw->tw_n = 0;
		return -1;
	}
	return 0;
}

/* ---- extraction (spoold) */

static void
track_links_add(struct track_links *tl, char *url)
{
	tl->tl_v = xreallocarray(tl->tl_v, tl->tl_n + 1, sizeof(*tl->tl_v));
	tl->tl_v[tl->tl_n++] = url;
}

/* ---- the plan: where the edits go, made once at filing (track_html.h) */

#define TRACK_PLAN_MAGIC    "TP2" /* NUL included: 4 bytes */
#define TRACK_PLAN_MAGIC_V1 "TP1" /* before runs of lines: whole parts */
#define TRACK_PLAN_BAD	    1	  /* flags: the message cannot be parsed */

static int
track_put64(struct buf *b, uint64_t v)
{
	uint8_t x[8];
	int	i;

	for (i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (56 - 8 * i));
	return buf_append(b, x, sizeof(x));
}

static bool
track_get64(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	int i;

	if (end - *p < 8)
		return false;
	for (*v = 0, i = 0; i < 8; i++)
		*v = *v << 8 | (*p)[i];
	*p += 8;
	return true;
}

/* One part, its numbered hrefs (the first nhref) and its runs of lines. */
static int
track_plan_part(struct buf *plan, const struct track_part *tp,
    const struct track_scan *ts, size_t nhref)
{
	size_t i;
	int    rc = 0;

	rc |= track_put64(plan, tp->tp_start);
	rc |= track_put64(plan, tp->tp_end);
	rc |= track_put64(plan, (uint64_t)tp->tp_enc);
	rc |= track_put64(plan, tp->tp_declen);
	rc |= track_put64(plan, ts->ts_pixel);
	rc |= track_put64(plan, nhref);
	for (i = 0; i < nhref; i++) {
		rc |= track_put64(plan, ts->ts_v[i].th_off);
		rc |= track_put64(plan, ts->ts_v[i].th_len);
	}
	rc |= track_put64(plan, ts->ts_nruns);
	for (i = 0; i < ts->ts_nruns; i++) {
		rc |= track_put64(plan, ts->ts_runs[i].tl_es);
		rc |= track_put64(plan, ts->ts_runs[i].tl_ee);
		rc |= track_put64(plan, ts->ts_runs[i].tl_ds);
		rc |= track_put64(plan, ts->ts_runs[i].tl_de);
	}
	return rc;
}

/*
 * A quoted-printable part's runs of lines (lines: its decoded lines)
 * around its first nhref hrefs and the pixel.
 */
static void
track_plan_runs(const char *raw, const struct track_lines *lines, size_t nl,
    size_t hlen, struct track_scan *ts, size_t nhref)
{
	size_t *want, i;

	if (lines == NULL)
		return; /* not quoted-printable */
	want = xreallocarray(NULL, nhref + 1, 2 * sizeof(*want));
	for (i = 0; i < nhref; i++) {
		want[2 * i] = ts->ts_v[i].th_off;
		want[2 * i + 1] = ts->ts_v[i].th_off + ts->ts_v[i].th_len;
	}
	want[2 * nhref] = want[2 * nhref + 1] = ts->ts_pixel;
	if (track_qp_runs(raw, lines, nl, hlen, want, nhref + 1, &ts->ts_runs,
		&ts->ts_nruns) == -1) {
		ts->ts_runs = NULL;
		ts->ts_nruns = 0;
	}
	free(want);
}

/* A part's decoded HTML into html (empty), with its lines when it is
 * quoted-printable. */
static int
track_extract_decode(const char *msg, const struct track_part *tp,
    struct buf *html, struct track_lines **lines, size_t *nl)
{
	*lines = NULL;
	*nl = 0;
	if (tp->tp_enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE)
		return track_qp_decode_map(msg + tp->tp_start,
		    tp->tp_end - tp->tp_start, html, lines, nl);
	return track_decode(tp, msg + tp->tp_start, html);
}

static void
track_plan_begin(struct buf *plan, uint64_t flags, uint64_t nparts)
{
	buf_reset(plan);
	(void)buf_append(plan, TRACK_PLAN_MAGIC, 4);
	(void)track_put64(plan, flags);
	(void)track_put64(plan, nparts);
}

int
track_links_extract(const char *msg, size_t len, struct track_links *tl)
{
	struct track_walk   tw;
	struct track_scan   ts;
	struct track_lines *lines = NULL;
	struct buf	    html, plan;
	size_t		    p, i, n, nl = 0, left = TRACK_HTML_MAX, nparts = 0;

	memset(tl, 0, sizeof(*tl));
	buf_init(&plan, SIZE_MAX / 2);
	if (track_walk(msg, len, &tw) == -1) {
		track_plan_begin(&plan, TRACK_PLAN_BAD, 0);
		tl->tl_plan = plan.data;
		tl->tl_planlen = plan.len;
		return -1;
	}
	track_plan_begin(&plan, 0, 0);
	buf_init(&html, TRACK_HTML_MAX);
	for (p = 0; p < tw.tw_n; p++) {
		buf_reset(&html);
		free(lines);
		if (track_extract_decode(msg, &tw.tw_v[p], &html, &lines,
			&nl) == -1 ||
		    html.len > left)
			continue; /* too large: the rewriter skips it too */
		left -= html.len;
		tw.tw_v[p].tp_declen = html.len;
		track_scan(html.data ? html.data : "", html.len, &ts);
		if (ts.ts_skip) { /* left alone: the rewriter skips it too */
			tl->tl_skipped++;
			track_scan_free(&ts);
			continue;
		}
		for (i = 0; i < ts.ts_n && tl->tl_n < TRACK_LINKS_MAX; i++) {
			track_links_add(tl, ts.ts_v[i].th_url);
			ts.ts_v[i].th_url = NULL;
		}
		n = i;
		track_plan_runs(msg + tw.tw_v[p].tp_start, lines, nl, html.len,
		    &ts, n);
		(void)track_plan_part(&plan, &tw.tw_v[p], &ts, n);
		nparts++;
		track_scan_free(&ts);
	}
	buf_release(&html);
	free(lines);
	free(tw.tw_v);
	for (i = 0; i < 8; i++) /* the count, now known */
		plan.data[4 + 8 + i] = (char)(uint8_t)((uint64_t)nparts >>
		    (56 - 8 * i));
	tl->tl_plan = plan.data;
	tl->tl_planlen = plan.len;
	return 0;
}

void
track_links_free(struct track_links *tl)
{
	size_t i;

	for (i = 0; i < tl->tl_n; i++)
		free(tl->tl_v[i]);
	free(tl->tl_v);
	free(tl->tl_plan);
	memset(tl, 0, sizeof(*tl));
}

/* ---- rewriting (deliverd) */

static int
track_pixel(const struct track_opts *o, struct buf *out)
{
	char tok[256];

	if (o->to_token(o->to_arg, 'o', 0, tok, sizeof(tok)) == -1)
		return -1;
	return buf_printf(out,
	    "<img src=\"https://%s/o/%s\" width=\"1\" height=\"1\" "
	    "alt=\"\">",
	    o->to_host, tok);
}

/* "https://HOST/c/TOKEN", quotes included (no printf: once per link). */
static int
track_link(struct buf *out, const char *host, const char *tok)
{
	size_t hl = strlen(host), tl = strlen(tok);

	return buf_reserve(out, hl + tl + 13) == -1 ||
		buf_append(out, "\"https://", 9) == -1 ||
		buf_append(out, host, hl) == -1 ||
		buf_append(out, "/c/", 3) == -1 ||
		buf_append(out, tok, tl) == -1 || buf_append(out, "\"", 1) == -1
	    ? -1
	    : 0;
}

/* The part's new HTML: the old with hrefs replaced and the pixel added. */
static int
track_html_edit(const char *html, size_t n, const struct track_scan *ts,
    const struct track_opts *o, unsigned *link, struct buf *out)
{
	char   tok[256];
	size_t at = 0, i;
	bool   pixel = !o->to_opens || ts->ts_pixel == SIZE_MAX;

	for (i = 0; i <= ts->ts_n; i++) {
		const struct track_href *h = i < ts->ts_n ? &ts->ts_v[i] : NULL;
		bool			 edit = h != NULL && o->to_clicks &&
		    *link < TRACK_LINKS_MAX && *link < o->to_links;

		if (!pixel && (h == NULL || h->th_off >= ts->ts_pixel)) {
			if (buf_append(out, html + at, ts->ts_pixel - at) ==
				-1 ||
			    track_pixel(o, out) == -1)
				return -1;
			at = ts->ts_pixel;
			pixel = true;
		}
		if (!edit)
			continue;
		if (o->to_token(o->to_arg, 'c', *link, tok, sizeof(tok)) ==
			-1 ||
		    buf_append(out, html + at, h->th_off - at) == -1 ||
		    track_link(out, o->to_host, tok) == -1)
			return -1;
		(*link)++;
		at = h->th_off + h->th_len;
	}
	return buf_append(out, html + at, n - at);
}

/* An attribute value as the source has it: quoted, or unquoted. */
static bool
track_value_ok(const char *v, size_t len)
{
	size_t i;

	if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0])
		return memchr(v + 1, v[0], len - 2) == NULL;
	for (i = 0; i < len; i++)
		if (v[i] != '\0' && strchr(" \t\r\n\f>", v[i]) != NULL)
			return false;
	return len > 0;
}

/* The plan's hrefs must lie in order inside the decoded HTML and look
 * like attribute values there. */
static bool
track_scan_fits(const struct track_scan *ts, const char *html, size_t n)
{
	size_t i, at = 0;

	for (i = 0; i < ts->ts_n; i++) {
		if (ts->ts_v[i].th_off < at || ts->ts_v[i].th_len > n ||
		    ts->ts_v[i].th_off > n - ts->ts_v[i].th_len ||
		    !track_value_ok(html + ts->ts_v[i].th_off,
			ts->ts_v[i].th_len))
			return false;
		at = ts->ts_v[i].th_off + ts->ts_v[i].th_len;
	}
	return ts->ts_pixel == SIZE_MAX || ts->ts_pixel <= n;
}

/* Buffers reused for every run of a part. */
struct track_runbufs {
	struct track_href *rb_v; /* the run's hrefs, shifted */
	struct buf	   rb_dec, rb_edited;
};

/* One run of lines with its hrefs h0..h1 (and the pixel): decoded, edited
 * and encoded again, to out. */
static int
track_rewrite_run(const char *raw, const struct track_part *tp,
    const struct track_lines *l, const struct track_scan *ts, size_t h0,
    size_t h1, bool pixel, const struct track_opts *o, unsigned *link,
    struct track_runbufs *rb, struct buf *out)
{
	struct track_scan sub;
	struct buf	 *dec = &rb->rb_dec, *ed = &rb->rb_edited;
	size_t		  i;

	memset(&sub, 0, sizeof(sub));
	sub.ts_n = h1 - h0;
	sub.ts_v = rb->rb_v;
	for (i = h0; i < h1; i++) /* the caller checked th_off >= tl_ds */
		sub.ts_v[i - h0] = (struct track_href){
			ts->ts_v[i].th_off - l->tl_ds, ts->ts_v[i].th_len, NULL
		};
	sub.ts_pixel = pixel ? ts->ts_pixel - l->tl_ds : SIZE_MAX;
	buf_reset(dec);
	buf_reset(ed);
	return track_qp_decode_lines(raw + l->tl_es, l->tl_ee - l->tl_es,
		   dec) == 0 &&
		dec->len == l->tl_de - l->tl_ds &&
		track_scan_fits(&sub, dec->data ? dec->data : "", dec->len) &&
		track_html_edit(dec->data ? dec->data : "", dec->len, &sub, o,
		    link, ed) == 0 &&
		track_qp_encode_run(raw + l->tl_es, l->tl_ee - l->tl_es,
		    l->tl_ee == tp->tp_end - tp->tp_start,
		    ed->data ? ed->data : "", ed->len, out) == 0
	    ? 0
	    : -1;
}

/* A run of the plan that fits the part and follows the one before. */
static bool
track_run_ok(const char *raw, size_t rawlen, const struct track_lines *l,
    const struct track_lines *prev)
{
	return l->tl_es < l->tl_ee && l->tl_ee <= rawlen &&
	    l->tl_ds <= l->tl_de &&
	    (prev == NULL ||
		(l->tl_es >= prev->tl_ee && l->tl_ds >= prev->tl_de)) &&
	    (l->tl_es == 0 || raw[l->tl_es - 1] == '\n') &&
	    (l->tl_ee == rawlen || raw[l->tl_ee - 1] == '\n');
}

/*
 * A quoted-printable part edited run by run (track_html.h): the lines of
 * a run with an edit are decoded, edited and encoded again, every other
 * line is copied as it is. 0 unchanged, 1 changed, -1 (nothing written
 * then) when the plan does not fit the part.
 */
static int
track_rewrite_runs(const char *msg, const struct track_part *tp,
    const struct track_scan *ts, const struct track_opts *o, unsigned *link,
    struct buf *out)
{
	const char	    *raw = msg + tp->tp_start;
	size_t		     rawlen = tp->tp_end - tp->tp_start, at = 0, h = 0;
	size_t		     h1, r, mark = out->len;
	bool		     pixel_left = o->to_opens, pixel, active;
	struct track_runbufs rb;
	int		     rc = -1;

	rb.rb_v = xcalloc(ts->ts_n + 1, sizeof(*rb.rb_v));
	buf_init(&rb.rb_dec, TRACK_HTML_MAX);
	buf_init(&rb.rb_edited, SIZE_MAX / 2);

	for (r = 0; r < ts->ts_nruns; r++, h = h1) {
		const struct track_lines *l = &ts->ts_runs[r];

		if (!track_run_ok(raw, rawlen, l, r ? l - 1 : NULL))
			goto bad;
		for (h1 = h; h1 < ts->ts_n && ts->ts_v[h1].th_off < l->tl_de;
		     h1++)
			if (ts->ts_v[h1].th_off < l->tl_ds)
				goto bad; /* before the run: in none */
		pixel = pixel_left && ts->ts_pixel >= l->tl_ds &&
		    ts->ts_pixel <= l->tl_de;
		active = pixel ||
		    (h1 > h && o->to_clicks && *link < TRACK_LINKS_MAX &&
			*link < o->to_links);
		if (pixel)
			pixel_left = false;
		if (!active)
			continue;
		if (buf_append(out, raw + at, l->tl_es - at) == -1 ||
		    track_rewrite_run(raw, tp, l, ts, h, h1, pixel, o, link,
			&rb, out) == -1)
			goto bad;
		at = l->tl_ee;
	}
	if (h != ts->ts_n || pixel_left)
		goto bad; /* an edit outside every run */
	if (out->len == mark)
		rc = 0;
	else if (buf_append(out, raw + at, rawlen - at) == 0)
		rc = 1;
bad:
	if (rc == -1) {
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
	}
	buf_release(&rb.rb_edited);
	buf_release(&rb.rb_dec);
	free(rb.rb_v);
	return rc;
}

/*
 * One part: its new encoded body to out; 0 unchanged, 1 changed, -1. The
 * edits come from gumbo (planned NULL) or from the plan, which must fit
 * the decoded part exactly.
 */
static int
track_rewrite_part(const char *msg, const struct track_part *tp,
    const struct track_scan *planned, const struct track_opts *o,
    unsigned *link, size_t *left, struct buf *out)
{
	struct track_scan ts;
	struct buf	  html, edited;
	const char	 *raw = msg + tp->tp_start;
	int		  rc = -1;

	if (planned != NULL && planned->ts_nruns > 0 && !o->to_whole)
		return tp->tp_enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE
		    ? track_rewrite_runs(msg, tp, planned, o, link, out)
		    : -1;
	buf_init(&html, TRACK_HTML_MAX);
	if (track_decode(tp, raw, &html) == -1 ||
	    (planned == NULL && html.len > *left) ||
	    (planned != NULL &&
		(html.len != tp->tp_declen ||
		    !track_scan_fits(planned, html.data ? html.data : "",
			html.len)))) {
		buf_release(&html);
		return planned == NULL ? 0
				       : -1; /* too large: as extraction did */
	}
	if (planned == NULL) {
		*left -= html.len;
		track_scan(html.data ? html.data : "", html.len, &ts);
	} else
		ts = *planned;
	if (ts.ts_skip ||
	    (!o->to_opens &&
		(ts.ts_n == 0 || *link >= TRACK_LINKS_MAX ||
		    *link >= o->to_links)))
		rc = 0; /* unchanged */
	else {
		buf_init(&edited, SIZE_MAX / 2);
		if (track_html_edit(html.data ? html.data : "", html.len, &ts,
			o, link, &edited) == 0 &&
		    track_encode(tp, raw, edited.data, edited.len, out) == 0)
			rc = 1;
		buf_release(&edited);
	}
	if (planned == NULL)
		track_scan_free(&ts);
	buf_release(&html);
	return rc;
}

/* The message with each part's new body (planned: NULL, or one scan per part). */
static int
track_splice(const char *msg, size_t len, const struct track_part *parts,
    size_t nparts, const struct track_scan *planned, const struct track_opts *o,
    struct buf *out)
{
	struct buf res;
	size_t	   p, at = 0, mark, left = TRACK_HTML_MAX;
	unsigned   link = 0;
	int	   rc = 0, r;

	buf_init(&res, SIZE_MAX / 2);
	for (p = 0; p < nparts && rc != -1; p++) {
		if (parts[p].tp_start < at ||
		    parts[p].tp_end < parts[p].tp_start ||
		    parts[p].tp_end > len ||
		    buf_append(&res, msg + at, parts[p].tp_start - at) == -1) {
			rc = -1;
			break;
		}
		mark = res.len;
		r = track_rewrite_part(msg, &parts[p],
		    planned ? &planned[p] : NULL, o, &link, &left, &res);
		if (r == 0)
			r = buf_append(&res, msg + parts[p].tp_start,
				parts[p].tp_end - parts[p].tp_start) == 0
			    ? 0
			    : -1;
		else if (r == -1)
			res.len = mark;
		rc = r == -1 ? -1 : rc | r;
		at = parts[p].tp_end;
	}
	if (rc == 1 &&
	    (buf_append(&res, msg + at, len - at) == -1 ||
		buf_append(out, res.data, res.len) == -1))
		rc = -1;
	buf_release(&res);
	return rc;
}

int
track_rewrite(const char *msg, size_t len, const struct track_opts *o,
    struct buf *out)
{
	struct track_walk tw;
	int		  rc;

	if (!o->to_opens && !o->to_clicks)
		return 0;
	if (track_walk(msg, len, &tw) == -1)
		return -1;
	rc = track_splice(msg, len, tw.tw_v, tw.tw_n, NULL, o, out);
	free(tw.tw_v);
	return rc;
}

/* A part's runs of lines (plans since TP2). */
static int
track_plan_read_runs(const uint8_t **p, const uint8_t *end,
    struct track_scan *ts)
{
	uint64_t n, k, v[4];
	size_t	 j;

	if (!track_get64(p, end, &n) || n > (uint64_t)(end - *p) / 32)
		return -1;
	ts->ts_nruns = n;
	ts->ts_runs = xcalloc(n + 1, sizeof(*ts->ts_runs));
	for (k = 0; k < n; k++) {
		for (j = 0; j < 4; j++)
			if (!track_get64(p, end, &v[j]))
				return -1;
		ts->ts_runs[k] = (struct track_lines){ v[0], v[1], v[2], v[3] };
	}
	return 0;
}

/* Decodes the plan's parts, hrefs and runs of lines (TP1: no runs). */
static int
track_plan_read(const uint8_t *p, const uint8_t *end,
    struct track_part **parts_r, struct track_scan **scans_r, size_t *n_r)
{
	struct track_part *parts = NULL;
	struct track_scan *scans = NULL;
	uint64_t	   flags, n, v[6], i, k;
	bool		   v1;
	int		   rc = -1;

	if (end - p < 4 ||
	    (memcmp(p, TRACK_PLAN_MAGIC, 4) != 0 &&
		memcmp(p, TRACK_PLAN_MAGIC_V1, 4) != 0))
		return -1;
	v1 = memcmp(p, TRACK_PLAN_MAGIC_V1, 4) == 0;
	p += 4;
	if (!track_get64(&p, end, &flags) || !track_get64(&p, end, &n) ||
	    (flags & TRACK_PLAN_BAD) || n > (uint64_t)(end - p) / 48)
		return -1;
	parts = xcalloc(n + 1, sizeof(*parts));
	scans = xcalloc(n + 1, sizeof(*scans));
	for (i = 0; i < n; i++) {
		for (k = 0; k < 6; k++)
			if (!track_get64(&p, end, &v[k]))
				goto done;
		if (v[5] > (uint64_t)(end - p) / 16 ||
		    !track_enc_ok((GMimeContentEncoding)v[2]))
			goto done;
		parts[i] = (struct track_part){ v[0], v[1],
			(GMimeContentEncoding)v[2], v[3] };
		scans[i].ts_pixel = v[4];
		scans[i].ts_n = v[5];
		scans[i].ts_v = xcalloc(v[5] + 1, sizeof(*scans[i].ts_v));
		for (k = 0; k < v[5]; k++)
			if (!track_get64(&p, end, &v[0]) ||
			    !track_get64(&p, end, &v[1]))
				goto done;
			else {
				scans[i].ts_v[k].th_off = v[0];
				scans[i].ts_v[k].th_len = v[1];
			}
		if (!v1 && track_plan_read_runs(&p, end, &scans[i]) == -1)
			goto done;
	}
	rc = p == end ? 0 : -1;
done:
	*parts_r = parts;
	*scans_r = scans;
	*n_r = n;
	return rc;
}

int
track_plan_apply(const char *msg, size_t len, const void *plan, size_t planlen,
    const struct track_opts *o, struct buf *out)
{
	struct track_part *parts = NULL;
	struct track_scan *scans = NULL;
	size_t		   n = 0, i;
	int		   rc;

	if (!o->to_opens && !o->to_clicks)
		return 0;
	rc = track_plan_read(plan, (const uint8_t *)plan + planlen, &parts,
	    &scans, &n);
	if (rc == 0)
		rc = track_splice(msg, len, parts, n, scans, o, out);
	for (i = 0; scans != NULL && i < n; i++) {
		free(scans[i].ts_v);
		free(scans[i].ts_runs);
	}
	free(scans);
	free(parts);
	return rc;
}
