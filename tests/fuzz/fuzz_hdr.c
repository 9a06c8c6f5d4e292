/*
 * libFuzzer target for common/hdr: the input is parsed whole and again in
 * chunks whose sizes come from the first byte; both runs must give the same
 * events, every field must lie inside the input, and nothing may crash.
 * The seeds in tests/fuzz/corpus/hdr/ replay in `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hdr.h"

static void
fuzz_run(const uint8_t *d, size_t len, size_t chunk, size_t max,
    struct buf *out)
{
	struct hdr_limits lim = { 0, max };
	struct hdr	  p;
	struct hdr_field  f;
	enum hdr_status	  st;
	size_t		  off = 0, n;

	hdr_init(&p, &lim);
	buf_reset(out);
	while ((st = hdr_next(&p, &f)) == HDR_MORE || st == HDR_FIELD) {
		if (st == HDR_FIELD) {
			if (f.hf_offset + f.hf_rawlen > len ||
			    f.hf_namelen == 0 || f.hf_valuelen > f.hf_rawlen)
				abort();
			(void)buf_printf(out, "%zu:%zu:%zu:%zu;", f.hf_offset,
			    f.hf_rawlen, f.hf_namelen, f.hf_valuelen);
			(void)buf_append(out, f.hf_value, f.hf_valuelen);
			continue;
		}
		if (off == len) {
			hdr_push_eof(&p);
			continue;
		}
		n = len - off < chunk ? len - off : chunk;
		hdr_push(&p, d + off, n);
		off += n;
	}
	if (st == HDR_END && hdr_body_offset(&p) > len)
		abort();
	(void)buf_printf(out, "=%d", (int)st);
	hdr_release(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
	struct buf a, b;
	size_t	   chunk = len > 0 ? (size_t)d[0] % 17 + 1 : 1;
	size_t	   max = 512 + (len > 1 ? (size_t)d[1] * 8 : 0);

	if (len > 256 * 1024)
		return 0;
	buf_init(&a, 1 << 24);
	buf_init(&b, 1 << 24);
	fuzz_run(d, len, len == 0 ? 1 : len, max, &a);
	fuzz_run(d, len, chunk, max, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	buf_release(&a);
	buf_release(&b);
	return 0;
}
