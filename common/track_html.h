/*
 * track_html: the links of a message's HTML parts and their rewriting for
 * engagement tracking (issue 16). One traversal serves both sides, so
 * spoold (which records the links at filing) and deliverd (which rewrites
 * each recipient's copy) number the links identically:
 *
 *   - MIME with GMime 3: the leaf parts in document order, descending into
 *     multiparts but not into attached messages; a text/html part that is
 *     not an attachment, in an ASCII-compatible charset, with a
 *     7bit/8bit/binary/none, quoted-printable or base64 transfer encoding,
 *     among the first TRACK_PARTS_MAX such parts,
 *     while the decoded HTML parts so far stay within TRACK_HTML_MAX bytes
 *     (a part that would pass it is left alone: HTML parsing costs about
 *     35 ms per MB);
 *   - HTML with gumbo's HTML5 tokenizer (track_scan.h; a part with svg,
 *     math, template, select or frameset markup is left alone, counted in
 *     tl_skipped): every <a> element of
 *     the source (not one the parser made or cloned) with an href whose value (entities decoded, spaces
 *     trimmed) starts with http:// or https:// (any case), is at most
 *     TRACK_URL_MAX bytes and whose element has no data-no-track
 *     attribute, in source order; link numbers start at 0 and run on across
 *     parts; links past TRACK_LINKS_MAX are left alone.
 *
 * The rewriter replaces each numbered href's value (quotes included) with
 * "https://HOST/c/TOKEN" and puts <img src="https://HOST/o/TOKEN" width="1"
 * height="1" alt=""> before the body's end tag (or at the part's end);
 * every other byte of the decoded HTML stays as it was. Only the changed
 * parts' bodies are re-encoded (same transfer encoding, CRLF lines); the
 * header block and every other part are copied byte for byte. Applying a
 * plan, a quoted-printable part is edited "edit-local": only the runs of
 * lines that hold an edit are decoded and encoded again (the decoded HTML
 * is the same as when the whole part is encoded again), every other line
 * is copied as it is.
 *
 * A message GMime reports as malformed (a multipart without boundary or
 * children, a conflicting header, nesting too deep, ...) has no links:
 * extraction returns -1 and the rewriter leaves it alone, so the two sides
 * still agree. Call track_html_init() once per process first.
 */
#ifndef SG_TRACK_HTML_H
#define SG_TRACK_HTML_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define TRACK_LINKS_MAX 500
#define TRACK_URL_MAX	2048
#define TRACK_HTML_MAX	(4u << 20) /* decoded HTML bytes per message */
#define TRACK_PARTS_MAX 100	   /* HTML parts per message */

struct track_links {
	char **tl_v; /* heap strings, the decoded URLs */
	size_t tl_n;
	char  *tl_plan; /* heap: the plan for track_plan_apply */
	size_t tl_planlen;
	size_t tl_skipped; /* HTML parts left alone (track_scan.h: svg,
			      math, template, select or frameset markup) */
};

/* Writes the token for an open ('o', link 0) or for link number link
 * ('c') into out (outsz bytes); -1 if it cannot. */
typedef int track_token_fn(void *arg, int kind, unsigned link, char *out,
    size_t outsz);

struct track_opts {
	const char     *to_host;   /* the tracking host in the links */
	bool		to_opens;  /* add the pixel */
	bool		to_clicks; /* rewrite the links */
	size_t		to_links;  /* links from this number on stay */
	track_token_fn *to_token;
	void	       *to_arg;
	bool		to_whole; /* re-encode whole parts (tests' reference) */
};

void track_html_init(void);
/*
 * The message's tracked links (msg: header block, empty line, body) and
 * the plan of its rewriting: each tracked part's place, encoding and
 * decoded size, and where its numbered hrefs and its pixel go. 0, or -1
 * when it cannot be parsed (no links; the plan says so). Free it with
 * track_links_free either way.
 */
int  track_links_extract(const char *msg, size_t len, struct track_links *);
void track_links_free(struct track_links *);
/*
 * Appends the rewritten message to out. 1: rewritten; 0: nothing to
 * change (out untouched); -1: the message cannot be parsed or re-encoded
 * (a 7bit/8bit line would pass 998 bytes, out of memory, a token failed):
 * out untouched, send the original.
 */
int track_rewrite(const char *msg, size_t len, const struct track_opts *,
    struct buf *out);
/*
 * track_rewrite without parsing: the edits the plan of track_links_extract
 * names, on the same message (each part's decoded size, or each run's, is
 * checked). The output is track_rewrite's when to_whole is set; without
 * it, quoted-printable parts are edited run by run (same outcome, same
 * decoded parts). A plan made before runs of lines ("TP1") applies whole.
 * -1 also for a plan that does not fit msg or says msg cannot be parsed.
 */
int track_plan_apply(const char *msg, size_t len, const void *plan,
    size_t planlen, const struct track_opts *, struct buf *out);

#endif
