/*
 * track_scan (track_scan.h): the hrefs and the pixel position of one
 * decoded HTML part, with gumbo's tokenizer alone or its whole parse.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gumbo.h>

#include "track_html.h"
#include "track_scan.h"
#include "xmem.h"

static bool
track_in(const char *html, size_t n, const char *p, size_t len)
{
	return p != NULL && p >= html && len <= n &&
	    (size_t)(p - html) <= n - len;
}

/* The value of an http/https href, trimmed; NULL if not one to track. */
static char *
track_url(const char *v)
{
	const char *e;
	size_t	    len;

	while (
	    *v == ' ' || *v == '\t' || *v == '\n' || *v == '\r' || *v == '\f')
		v++;
	len = strlen(v);
	e = v + len;
	while (e > v &&
	    (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r' ||
		e[-1] == '\f'))
		e--;
	len = (size_t)(e - v);
	if (len > TRACK_URL_MAX ||
	    (strncasecmp(v, "http://", 7) != 0 &&
		strncasecmp(v, "https://", 8) != 0))
		return NULL;
	return xstrndup(v, len);
}

/* An <a> start tag of the source with these attributes. */
static void
track_anchor(const char *html, size_t n, const GumboVector *attrs,
    struct track_scan *ts)
{
	const GumboAttribute *href;
	char		     *url;

	if ((href = gumbo_get_attribute(attrs, "href")) == NULL ||
	    gumbo_get_attribute(attrs, "data-no-track") != NULL ||
	    href->original_value.length == 0 ||
	    !track_in(html, n, href->original_value.data,
		href->original_value.length) ||
	    (url = track_url(href->value)) == NULL)
		return;
	if (ts->ts_n == ts->ts_cap) {
		ts->ts_cap = ts->ts_cap ? ts->ts_cap * 2 : 16;
		ts->ts_v = xreallocarray(ts->ts_v, ts->ts_cap,
		    sizeof(*ts->ts_v));
	}
	ts->ts_v[ts->ts_n].th_off = (size_t)(href->original_value.data - html);
	ts->ts_v[ts->ts_n].th_len = href->original_value.length;
	ts->ts_v[ts->ts_n++].th_url = url;
}

static int
track_href_cmp(const void *a, const void *b)
{
	const struct track_href *x = a, *y = b;

	return x->th_off < y->th_off ? -1 : x->th_off > y->th_off;
}

/* Source order, each source attribute once. */
static void
track_scan_sort(struct track_scan *ts)
{
	size_t i, o = 0;

	if (ts->ts_n == 0)
		return;
	qsort(ts->ts_v, ts->ts_n, sizeof(*ts->ts_v), track_href_cmp);
	for (i = 0; i < ts->ts_n; i++) {
		if (o > 0 && ts->ts_v[o - 1].th_off == ts->ts_v[i].th_off) {
			free(ts->ts_v[i].th_url);
			continue;
		}
		ts->ts_v[o++] = ts->ts_v[i];
	}
	ts->ts_n = o;
}

/*
 * gumbo's memory: a bump arena reused for every parse of the process
 * (gumbo spends a fifth of its time in malloc and free otherwise; bench/
 * README.md), malloc once it is used up. Its parse errors are not kept.
 */
#define TRACK_ARENA_SIZE (1u << 20)

struct track_arena {
	char  *ta_buf;
	size_t ta_used;
	size_t ta_outside; /* allocations that went to malloc */
};

static struct track_arena track_arena;

static void *
track_arena_alloc(void *arg, size_t n)
{
	struct track_arena *a = arg;
	void		   *p;

	n = (n + 15) & ~(size_t)15;
	if (a->ta_buf == NULL || n > TRACK_ARENA_SIZE - a->ta_used) {
		a->ta_outside++;
		return xmalloc(n);
	}
	p = a->ta_buf + a->ta_used;
	a->ta_used += n;
	return p;
}

static void
track_arena_free(void *arg, void *p)
{
	struct track_arena *a = arg;

	if (a->ta_buf == NULL || (char *)p < a->ta_buf ||
	    (char *)p >= a->ta_buf + TRACK_ARENA_SIZE)
		free(p);
}

/* Options for a parse or a tokenizer run in the arena. */
static void
track_parse_options(GumboOptions *go)
{
	if (track_arena.ta_buf == NULL)
		track_arena.ta_buf = xmalloc(TRACK_ARENA_SIZE);
	track_arena.ta_used = 0;
	track_arena.ta_outside = 0;
	*go = kGumboDefaultOptions;
	go->allocator = track_arena_alloc;
	go->deallocator = track_arena_free;
	go->userdata = &track_arena;
	go->max_errors = 0;
}

static GumboOutput *
track_parse(const char *html, size_t n, GumboOptions *go)
{
	track_parse_options(go);
	return gumbo_parse_with_options(go, html, n);
}

static void
track_parse_done(GumboOptions *go, GumboOutput *g)
{
	/* all in the arena: nothing to walk and free (g NULL: the
	 * tokenizer's tokens, freed one by one) */
	if (g != NULL && track_arena.ta_outside > 0)
		gumbo_destroy_output(go, g);
	track_arena.ta_used = 0;
}

/* Walks the tree without recursion (HTML may nest without bound). */
static void
track_scan_tree(const char *html, size_t n, struct track_scan *ts)
{
	GumboOptions	   go;
	GumboOutput	  *g;
	const GumboNode	 **stack, *node;
	const GumboVector *kids;
	size_t		   sp = 0, cap = 64, i;

	memset(ts, 0, sizeof(*ts));
	ts->ts_pixel = n;
	g = track_parse(html, n, &go);
	stack = xcalloc(cap, sizeof(*stack));
	stack[sp++] = g->root;
	while (sp > 0) {
		node = stack[--sp];
		if (node->type != GUMBO_NODE_ELEMENT &&
		    node->type != GUMBO_NODE_TEMPLATE)
			continue;
		if (node->v.element.tag == GUMBO_TAG_A &&
		    !(node->parse_flags &
			(GUMBO_INSERTION_BY_PARSER |
			    GUMBO_INSERTION_RECONSTRUCTED_FORMATTING_ELEMENT |
			    GUMBO_INSERTION_ADOPTION_AGENCY_CLONED)))
			track_anchor(html, n, &node->v.element.attributes,
			    ts); /* an element of the source */
		if (node->v.element.tag == GUMBO_TAG_BODY &&
		    node->v.element.original_end_tag.length > 0 &&
		    track_in(html, n, node->v.element.original_end_tag.data,
			node->v.element.original_end_tag.length))
			ts->ts_pixel =
			    (size_t)(node->v.element.original_end_tag.data -
				html);
		kids = &node->v.element.children;
		if (sp + kids->length > cap) {
			cap = (sp + kids->length) * 2;
			stack = xreallocarray(stack, cap, sizeof(*stack));
		}
		for (i = kids->length; i > 0; i--)
			stack[sp++] = kids->data[i - 1];
	}
	free(stack);
	track_parse_done(&go, g);
	track_scan_sort(ts);
}

void
track_scan_free(struct track_scan *ts)
{
	size_t i;

	for (i = 0; i < ts->ts_n; i++)
		free(ts->ts_v[i].th_url);
	free(ts->ts_v);
	free(ts->ts_runs);
	memset(ts, 0, sizeof(*ts));
}

/* ---- gumbo's tokenizer alone */

#ifdef HAVE_GUMBO_LEX
/*
 * gumbo 0.10's tokenizer, as its src/parser.h, token_type.h, tokenizer.h
 * and tokenizer_states.h declare it (the library exports these symbols;
 * the installed gumbo.h does not declare them). configure enables this
 * only for the 0.10 series, whose tokenizer has not changed since 0.10.1
 * (upstream is archived), and track_scan_init() checks it at start.
 */
struct track_gumbo_parser {
	const GumboOptions *gp_options;
	GumboOutput	   *gp_output;
	void		   *gp_tokenizer_state;
	void		   *gp_parser_state;
};

enum track_gumbo_token_type {
	TRACK_GT_DOCTYPE,
	TRACK_GT_START_TAG,
	TRACK_GT_END_TAG,
	TRACK_GT_COMMENT,
	TRACK_GT_WHITESPACE,
	TRACK_GT_CHARACTER,
	TRACK_GT_CDATA,
	TRACK_GT_NULL,
	TRACK_GT_EOF
};

enum track_gumbo_lex_state { /* the first seven of GumboTokenizerEnum */
	TRACK_GL_DATA,
	TRACK_GL_CHAR_REF_IN_DATA,
	TRACK_GL_RCDATA,
	TRACK_GL_CHAR_REF_IN_RCDATA,
	TRACK_GL_RAWTEXT,
	TRACK_GL_SCRIPT,
	TRACK_GL_PLAINTEXT
};

struct track_gumbo_token {
	enum track_gumbo_token_type gt_type;
	GumboSourcePosition	    gt_position;
	GumboStringPiece	    gt_original_text;
	union {
		struct {
			const char *name, *public_identifier,
			    *system_identifier;
			bool force_quirks, has_public_identifier,
			    has_system_identifier;
		} doc_type;
		struct {
			GumboTag    tag;
			GumboVector attributes;
			bool	    is_self_closing;
		} start_tag;
		GumboTag    end_tag;
		const char *text;
		int	    character;
	} gt_v;
};

void gumbo_tokenizer_state_init(struct track_gumbo_parser *, const char *,
    size_t);
void gumbo_tokenizer_state_destroy(struct track_gumbo_parser *);
void gumbo_tokenizer_set_state(struct track_gumbo_parser *, int);
bool gumbo_lex(struct track_gumbo_parser *, struct track_gumbo_token *);
void gumbo_token_destroy(struct track_gumbo_parser *,
    struct track_gumbo_token *);

static int track_lex_ok = -1; /* -1: not checked yet */

/*
 * The tokenizer state the tree builder sets after a start tag (HTML
 * content only: the markup that changes this is sent to the whole parse).
 */
static int
track_lex_next_state(GumboTag tag)
{
	switch (tag) {
	case GUMBO_TAG_TITLE:
	case GUMBO_TAG_TEXTAREA:
		return TRACK_GL_RCDATA;
	case GUMBO_TAG_STYLE:
	case GUMBO_TAG_XMP:
	case GUMBO_TAG_IFRAME:
	case GUMBO_TAG_NOEMBED:
	case GUMBO_TAG_NOFRAMES:
		return TRACK_GL_RAWTEXT;
	case GUMBO_TAG_SCRIPT:
		return TRACK_GL_SCRIPT;
	case GUMBO_TAG_PLAINTEXT:
		return TRACK_GL_PLAINTEXT;
	default: /* noscript too: gumbo parses with scripting off */
		return -1;
	}
}

/* Markup whose tree-building rules change the tokenizer's states beyond
 * track_lex_next_state (foreign content and CDATA, template contents,
 * ignored start tags in select and frameset). */
static bool
track_lex_applies(const char *html, size_t n)
{
	static const char *const names[] = { "svg", "math", "template",
		"select", "frameset" };
	const char		*p = html, *end = html + n;
	size_t			 i, len;

	while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if (++p == end || strchr("smtfSMTF", *p) == NULL || *p == '\0')
			continue; /* not the first letter of one */
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			len = strlen(names[i]);
			if ((size_t)(end - p) >= len &&
			    strncasecmp(p, names[i], len) == 0 &&
			    ((size_t)(end - p) == len ||
				(p[len] != '\0' &&
				    strchr("\t\n\f\r />", p[len]) != NULL)))
				return false; /* a start tag of that name */
		}
	}
	return true;
}

/*
 * Text the tokenizer would take without a state change is skipped: a
 * fresh tokenizer (in the data state) is started where the old one would
 * be in the data state again, if that is at least this far on:
 *   - after a tag or comment that leaves the data state, the next '<' (in
 *     the data state every other character, a character reference or a
 *     NUL included, is text: HTML 13.2.5.1);
 *   - after the start tag of an RCDATA or raw text element (title,
 *     textarea, style, xmp, iframe, noembed, noframes), its end tag: the
 *     first "</" with the element's name (any case) and then whitespace,
 *     '/' or '>' (13.2.5.2-3, 9-14: nothing else leaves those states);
 *     not after script (its escapes nest) or plaintext (it never ends).
 * Not after a doctype: gumbo 0.10 emits one at some errors and goes on in
 * the bogus doctype state (the differential fuzz target found it).
 */
#define TRACK_LEX_SKIP_MIN 16

/* The next '<' at or after from (n: none). */
static size_t
track_lex_next_lt(const char *html, size_t n, size_t from)
{
	const char *lt;

	if (from >= n)
		return n;
	lt = memchr(html + from, '<', n - from);
	return lt == NULL ? n : (size_t)(lt - html);
}

/* Where the RCDATA or raw text of tag that starts at from ends (n: it
 * runs to the end). */
static size_t
track_lex_raw_end(const char *html, size_t n, size_t from, GumboTag tag)
{
	const char *name = gumbo_normalized_tagname(tag);
	size_t	    len = strlen(name), at;

	for (at = track_lex_next_lt(html, n, from); at < n;
	     at = track_lex_next_lt(html, n, at + 1))
		if (n - at > len + 2 && html[at + 1] == '/' &&
		    strncasecmp(html + at + 2, name, len) == 0 &&
		    strchr("\t\n\f\r />", html[at + 2 + len]) != NULL &&
		    html[at + 2 + len] != '\0')
			return at;
	return n;
}

/* A start tag ending at end: its href, the state the tree builder would
 * set, and where a fresh tokenizer may take over (SIZE_MAX: nowhere). */
static size_t
track_lex_tag(const char *html, size_t n, struct track_gumbo_parser *gp,
    const struct track_gumbo_token *t, size_t end, struct track_scan *ts)
{
	GumboTag tag = t->gt_v.start_tag.tag;
	int	 st;

	if (tag == GUMBO_TAG_A)
		track_anchor(html, n, &t->gt_v.start_tag.attributes, ts);
	if ((st = track_lex_next_state(tag)) == -1)
		return track_lex_next_lt(html, n, end);
	gumbo_tokenizer_set_state(gp, st);
	return st == TRACK_GL_RCDATA || st == TRACK_GL_RAWTEXT
	    ? track_lex_raw_end(html, n, end, tag)
	    : SIZE_MAX;
}

/* One token ending at end (SIZE_MAX: not in html): its href or the
 * pixel's place; where a fresh tokenizer may take over (SIZE_MAX:
 * nowhere). */
static size_t
track_lex_token(const char *html, size_t n, struct track_gumbo_parser *gp,
    const struct track_gumbo_token *t, size_t end, struct track_scan *ts)
{
	switch (t->gt_type) {
	case TRACK_GT_START_TAG:
		return track_lex_tag(html, n, gp, t, end, ts);
	case TRACK_GT_END_TAG: /* in raw text only its own end tag is one */
		if (t->gt_v.end_tag == GUMBO_TAG_BODY && ts->ts_pixel == n &&
		    end != SIZE_MAX)
			ts->ts_pixel = (size_t)(t->gt_original_text.data -
			    html);
		return track_lex_next_lt(html, n, end);
	case TRACK_GT_COMMENT:
		return track_lex_next_lt(html, n, end);
	default:
		return SIZE_MAX;
	}
}

/* The pixel goes before the first </body> of the source (else at the
 * end, as where the parse finds no end tag of the body). */
static void
track_lex_scan(const char *html, size_t n, struct track_scan *ts)
{
	struct track_gumbo_parser gp;
	struct track_gumbo_token  t;
	GumboOptions		  go;
	GumboOutput		  out;
	size_t			  end, at;
	bool			  eof = false, in;

	memset(ts, 0, sizeof(*ts));
	ts->ts_pixel = n;
	memset(&out, 0, sizeof(out));
	track_parse_options(&go);
	gp = (struct track_gumbo_parser){ &go, &out, NULL, NULL };
	gumbo_tokenizer_state_init(&gp, html, n);
	while (!eof) {
		(void)gumbo_lex(&gp, &t);
		eof = t.gt_type == TRACK_GT_EOF;
		in = track_in(html, n, t.gt_original_text.data,
		    t.gt_original_text.length);
		end = in ? (size_t)(t.gt_original_text.data - html) +
			t.gt_original_text.length
			 : SIZE_MAX;
		at = track_lex_token(html, n, &gp, &t, end, ts);
		if (!in || at == SIZE_MAX || at - end < TRACK_LEX_SKIP_MIN)
			at = SIZE_MAX; /* go on with this tokenizer */
		gumbo_token_destroy(&gp, &t);
		if (at != SIZE_MAX) { /* at == n: the next token is the EOF */
			gumbo_tokenizer_state_destroy(&gp);
			gumbo_tokenizer_state_init(&gp, html + at, n - at);
		}
	}
	gumbo_tokenizer_state_destroy(&gp);
	track_parse_done(&go, NULL);
	track_scan_sort(ts);
}
#endif /* HAVE_GUMBO_LEX */

bool
track_scan_init(void)
{
#ifdef HAVE_GUMBO_LEX
	static const char doc[] =
	    "<!doctype html><html><head><title><a href=\"http://t/\">"
	    "</title></head><body><p>x<a data-x=1 href='https://a.example/"
	    "?a=1&amp;b=2'>y</a><textarea><a href=\"https://n/\"></textarea>"
	    "<a HREF=http://b.example/>z</a></body></html>";
	struct track_scan lex, tree;
	size_t		  i;

	if (track_lex_ok != -1)
		return track_lex_ok == 1;
	track_lex_ok = 0;
	track_lex_scan(doc, sizeof(doc) - 1, &lex);
	track_scan_tree(doc, sizeof(doc) - 1, &tree);
	track_lex_ok = lex.ts_n == 2 && tree.ts_n == 2 &&
	    lex.ts_pixel == tree.ts_pixel;
	for (i = 0; track_lex_ok && i < lex.ts_n; i++)
		track_lex_ok = lex.ts_v[i].th_off == tree.ts_v[i].th_off &&
		    lex.ts_v[i].th_len == tree.ts_v[i].th_len &&
		    strcmp(lex.ts_v[i].th_url, tree.ts_v[i].th_url) == 0;
	track_scan_free(&lex);
	track_scan_free(&tree);
	return track_lex_ok == 1;
#else
	return false;
#endif
}

void
track_scan_how(const char *html, size_t n, enum track_scan_how how,
    struct track_scan *ts)
{
#ifdef HAVE_GUMBO_LEX
	if (how != TRACK_SCAN_TREE && track_scan_init()) {
		if (how == TRACK_SCAN_LEX || track_lex_applies(html, n))
			track_lex_scan(html, n, ts);
		else {
			memset(ts, 0, sizeof(*ts));
			ts->ts_pixel = SIZE_MAX;
			ts->ts_skip = true;
		}
		return;
	}
#else
	(void)how;
#endif
	track_scan_tree(html, n, ts);
}

void
track_scan(const char *html, size_t n, struct track_scan *ts)
{
	track_scan_how(html, n, TRACK_SCAN_AUTO, ts);
}
