/*
 * libFuzzer target for common/rfc5322addr: iterates every mailbox of the
 * input, leniently and strictly; results must be NUL-terminated, bounded, and the iteration must
 * always advance. The seeds in tests/fuzz/corpus/rfc5322addr/ replay in
 * `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322addr.h"

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
	struct rfc5322addr	r;
	enum rfc5322addr_status st;
	size_t			pos = 0, last = 0, n = 0;

	if (len > 64 * 1024)
		return 0;
	while ((st = rfc5322addr_next((const char *)d, len, &pos, &r)) ==
		RFC5322ADDR_OK ||
	    st == RFC5322ADDR_NOADDR) {
		if (strlen(r.ra_addr) >= sizeof(r.ra_addr) ||
		    strlen(r.ra_name) >= sizeof(r.ra_name) || pos > len ||
		    (pos <= last && n > 0) || ++n > len + 1)
			abort();
		if (st == RFC5322ADDR_OK && strchr(r.ra_addr, '@') == NULL)
			abort();
		last = pos;
	}
	(void)rfc5322addr_first((const char *)d, len, &r);
	/* the strict reading (From:) obeys the same rules and stops at JUNK */
	pos = last = n = 0;
	while ((st = rfc5322addr_next_strict((const char *)d, len, &pos, &r)) ==
		RFC5322ADDR_OK ||
	    st == RFC5322ADDR_NOADDR) {
		if (strlen(r.ra_addr) >= sizeof(r.ra_addr) || pos > len ||
		    (pos <= last && n > 0) || ++n > len + 1)
			abort();
		last = pos;
	}
	if (st != RFC5322ADDR_END && pos != len)
		abort();
	return 0;
}
