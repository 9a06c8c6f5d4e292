/*
 * libFuzzer target for common/track_scan: the input is one decoded HTML
 * part. A part with svg, math, template, select or frameset markup must
 * be left alone (gumbo's tree builder aborts on some: it is not run
 * there). Elsewhere the scan (gumbo's tokenizer alone) must find exactly
 * the hrefs the whole parse finds (offsets, lengths, URLs); both must
 * stay inside the input, in order. The pixel positions may differ only where the
 * parse ignores a </body> (an open table, object, applet or marquee:
 * track_scan.h), so they are checked to lie inside the input, not
 * compared. The input is copied with a NUL after it, as every caller's
 * buffer has one (track_scan.h). Seeds in tests/fuzz/corpus/track_scan/.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "track_html.h"
#include "track_scan.h"

static void
fuzz_check(const struct track_scan *s, size_t n)
{
	size_t i, at = 0;

	if (s->ts_pixel > n)
		abort();
	for (i = 0; i < s->ts_n; i++) {
		if (s->ts_v[i].th_off < at || s->ts_v[i].th_len > n ||
		    s->ts_v[i].th_off > n - s->ts_v[i].th_len)
			abort();
		at = s->ts_v[i].th_off + s->ts_v[i].th_len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool	  init;
	struct track_scan a, b;
	char		 *html;
	size_t		  i;

	if (!init) {
		track_html_init();
		init = true;
	}
	if ((html = malloc(size + 1)) == NULL)
		return 0;
	if (size > 0)
		memcpy(html, data, size);
	html[size] = '\0';
	track_scan_how(html, size, TRACK_SCAN_AUTO, &a);
	if (a.ts_skip) { /* left alone: no hrefs, no pixel */
		if (a.ts_n != 0 || a.ts_pixel != SIZE_MAX)
			abort();
		track_scan_free(&a);
		free(html);
		return 0;
	}
	track_scan_how(html, size, TRACK_SCAN_TREE, &b);
	fuzz_check(&a, size);
	fuzz_check(&b, size);
	if (a.ts_n != b.ts_n)
		abort();
	for (i = 0; i < a.ts_n; i++)
		if (a.ts_v[i].th_off != b.ts_v[i].th_off ||
		    a.ts_v[i].th_len != b.ts_v[i].th_len ||
		    strcmp(a.ts_v[i].th_url, b.ts_v[i].th_url) != 0)
			abort();
	track_scan_free(&a);
	track_scan_free(&b);
	free(html);
	return 0;
}
