/*
 * libFuzzer target for spool_env_parse: any input must parse or fail
 * cleanly; a successful parse must re-format and re-parse to the same
 * envelope, with pe_hdrlen inside the input.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "spool.h"

static void
fuzz_spool_env_check(const struct spool_env *a, size_t len)
{
	struct spool_env b;
	struct buf	 out;
	size_t		 i;

	if (a->pe_hdrlen == 0 || a->pe_hdrlen > len)
		abort();
	buf_init(&out, 1 << 24);
	if (spool_env_format(a, &out) != 0 ||
	    spool_env_parse(out.data, out.len, &b) != 0)
		abort();
	if (strcmp(a->pe_qid, b.pe_qid) != 0 || a->pe_time != b.pe_time ||
	    strcmp(a->pe_from, b.pe_from) != 0 ||
	    strcmp(a->pe_helo, b.pe_helo) != 0 || a->pe_nrcpt != b.pe_nrcpt ||
	    b.pe_hdrlen != out.len)
		abort();
	for (i = 0; i < a->pe_nrcpt; i++)
		if (strcmp(a->pe_rcpt[i], b.pe_rcpt[i]) != 0)
			abort();
	spool_env_free(&b);
	buf_release(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_env e;

	if (size > 65536)
		return 0;
	if (spool_env_parse((const char *)data, size, &e) == 0)
		fuzz_spool_env_check(&e, size);
	spool_env_free(&e);
	return 0;
}
