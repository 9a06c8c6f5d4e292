/*
 * libFuzzer target for the cluster journal's entry decoder
 * (spool/spool_cjent.c): what decodes points inside the input, encodes
 * again to exactly the input, and nothing crashes or reads past it.
 * Seeds: tests/fuzz/corpus/spool_centry/.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "spool_cluster.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_centry e;
	struct buf	    b;

	if (spool_centry_dec(data, size, &e) != 0)
		return 0;
	if (e.ce_key < data || e.ce_key + e.ce_klen > data + size ||
	    (e.ce_val != NULL &&
		(e.ce_val < data || e.ce_val + e.ce_vlen > data + size)))
		log_panic("centry: result outside the input");
	buf_init(&b, size + 16);
	if (spool_centry_enc(&e, &b) != 0 || b.len != size ||
	    memcmp(b.data, data, size) != 0)
		log_panic("centry: does not encode back to the input");
	buf_release(&b);
	return 0;
}
