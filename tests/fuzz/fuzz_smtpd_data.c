/*
 * libFuzzer target for smtpd/smtpd_data, the DATA/BDAT decoder. The first
 * byte picks the mode and a chunk size; the rest is pushed whole and in
 * chunks, and both runs must agree (output, flags, end position). An
 * accepted DOT message must hold no bare CR or LF, and end-of-data must
 * only ever follow CRLF "." CRLF. Seeds: tests/fuzz/corpus/smtpd_data/.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "smtpd_data.h"

struct fuzz_run {
	char	*out;
	size_t	 outlen;
	size_t	 used;
	unsigned flags;
	bool	 done;
};

static void
fuzz_decode(const char *in, size_t n, enum smtpd_data_mode mode, size_t step,
    size_t max_line, struct fuzz_run *r)
{
	struct smtpd_data d;
	size_t		  off = 0, k, o, used;

	smtpd_data_init(&d, mode, max_line, 1 << 20);
	r->out = malloc(n + 3);
	r->outlen = 0;
	while (off < n && !d.da_done) {
		k = n - off < step ? n - off : step;
		used = smtpd_data_push(&d, in + off, k, r->out + r->outlen, &o);
		if (used > k || o > k + 2)
			log_panic("smtpd_data: consumed or produced too much");
		r->outlen += o;
		off += used;
		if (used < k && !d.da_done)
			log_panic("smtpd_data: stopped early without an end");
	}
	if (mode == SMTPD_DATA_BDAT) {
		smtpd_data_finish(&d, r->out + r->outlen, &o);
		r->outlen += o;
	}
	r->used = off;
	r->flags = d.da_flags;
	r->done = d.da_done;
}

static void
fuzz_check_clean(const struct fuzz_run *r)
{
	size_t i;

	for (i = 0; i < r->outlen; i++) {
		if (r->out[i] == '\n' && (i == 0 || r->out[i - 1] != '\r'))
			log_panic("smtpd_data: bare LF accepted");
		if (r->out[i] == '\r' &&
		    (i + 1 >= r->outlen || r->out[i + 1] != '\n'))
			log_panic("smtpd_data: bare CR accepted");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_run	     a, b;
	enum smtpd_data_mode mode;
	size_t		     step, max_line;

	if (size < 1 || size > 65536)
		return 0;
	mode = (data[0] & 1) ? SMTPD_DATA_BDAT : SMTPD_DATA_DOT;
	step = (size_t)(data[0] >> 1) % 17 + 1;
	max_line = (data[0] & 0x80) ? 80 : 1000;
	fuzz_decode((const char *)data + 1, size - 1, mode, size, max_line, &a);
	fuzz_decode((const char *)data + 1, size - 1, mode, step, max_line, &b);
	if (a.outlen != b.outlen || memcmp(a.out, b.out, a.outlen) != 0 ||
	    a.flags != b.flags || a.done != b.done || a.used != b.used)
		log_panic("smtpd_data: chunking changed the result");
	if (a.done && a.used < 3)
		log_panic("smtpd_data: end before any CRLF.CRLF");
	if (a.done &&
	    memcmp((const char *)data + 1 + a.used - 3, ".\r\n", 3) != 0)
		log_panic("smtpd_data: end not on .CRLF");
	if (a.flags == 0 && (a.done || mode == SMTPD_DATA_BDAT))
		fuzz_check_clean(&a);
	free(a.out);
	free(b.out);
	return 0;
}
