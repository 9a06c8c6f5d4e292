/*
 * libFuzzer target for common/track_html (issue 16): the input is a whole
 * message. Extraction and rewriting must agree (a message extraction
 * refuses is never rewritten; a rewritten one used exactly as many link
 * numbers as extraction recorded, in order from 0; the plan extraction
 * made gives the same copy without parsing when it encodes whole parts
 * again, and the same outcome and links when it edits runs of lines of
 * quoted-printable parts), the output must be
 * non-empty, and nothing may crash, hang or leak (GMime and gumbo
 * included). The seeds in tests/fuzz/corpus/track_html/ replay in
 * `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "track_html.h"

struct fuzz_tok {
	unsigned next; /* the link number expected next */
	unsigned opens;
};

static int
fuzz_token(void *arg, int kind, unsigned link, char *out, size_t outsz)
{
	struct fuzz_tok *ft = arg;

	if (kind == 'c') {
		if (link != ft->next)
			abort(); /* numbers out of order */
		ft->next++;
	} else if (kind == 'o')
		ft->opens++;
	else
		abort();
	return snprintf(out, outsz, "T%c%u", kind, link) > 0 ? 0 : -1;
}

/* Two copies with the same tracked links (the rewritten ones included). */
static bool
fuzz_same_links(const struct buf *a, const struct buf *b)
{
	struct track_links x, y;
	size_t		   i;
	bool		   same;

	(void)track_links_extract(a->data, a->len, &x);
	(void)track_links_extract(b->data, b->len, &y);
	same = x.tl_n == y.tl_n;
	for (i = 0; same && i < x.tl_n; i++)
		same = strcmp(x.tl_v[i], y.tl_v[i]) == 0;
	track_links_free(&x);
	track_links_free(&y);
	return same;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static bool	   init;
	struct fuzz_tok	   ft = { 0, 0 };
	struct track_opts  o = { "t.test", true, true, TRACK_LINKS_MAX,
		 fuzz_token, &ft, false };
	struct track_links tl;
	struct buf	   out, alt;
	int		   ex, rw, ap;

	if (!init) {
		track_html_init();
		init = true;
	}
	if (len > (1u << 20))
		return 0;
	ex = track_links_extract((const char *)data, len, &tl);
	buf_init(&out, SIZE_MAX / 2);
	rw = track_rewrite((const char *)data, len, &o, &out);
	if ((ex == -1 && rw != -1) || (rw == 1 && ft.next != tl.tl_n) ||
	    (rw == 1 && out.len == 0) || (rw != 1 && out.len != 0) ||
	    tl.tl_n > TRACK_LINKS_MAX)
		abort();
	/* the plan made at filing, whole parts encoded again: exactly the
	 * same copy */
	ft.next = 0;
	o.to_whole = true;
	buf_init(&alt, SIZE_MAX / 2);
	ap = track_plan_apply((const char *)data, len, tl.tl_plan,
	    tl.tl_planlen, &o, &alt);
	if (ap != rw || alt.len != out.len ||
	    (alt.len > 0 && memcmp(alt.data, out.data, alt.len) != 0))
		abort();
	buf_release(&alt);
	/* edit-local: the same outcome, and a copy with the same links */
	ft.next = 0;
	o.to_whole = false;
	buf_init(&alt, SIZE_MAX / 2);
	ap = track_plan_apply((const char *)data, len, tl.tl_plan,
	    tl.tl_planlen, &o, &alt);
	if (ap != rw || (ap == 1 && ft.next != tl.tl_n) ||
	    (ap == 1 && !fuzz_same_links(&alt, &out)))
		abort();
	buf_release(&alt);
	buf_release(&out);
	track_links_free(&tl);
	return 0;
}
