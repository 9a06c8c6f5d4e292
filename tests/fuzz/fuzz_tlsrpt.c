/*
 * libFuzzer target for common/tlsrpt (RFC 8460 section 3): any input is a
 * TXT record; a parsed one keeps its bounds, every kept URI has its
 * scheme and NUL, every mailto address one '@' and nothing below 0x21.
 * Seeds: tests/fuzz/corpus/tlsrpt/.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsrpt_rua r;
	char		  err[128];
	const char	 *a;
	size_t		  i;

	if (size > 4096)
		return 0;
	if (tlsrpt_txt_parse((const char *)data, size, &r, err, sizeof(err)) !=
	    0)
		return 0;
	if (r.n > TLSRPT_RUA_MAX)
		abort();
	for (i = 0; i < r.n; i++) {
		if (memchr(r.uri[i], '\0', TLSRPT_URI_MAX) == NULL ||
		    memchr(r.addr[i], '\0', TLSRPT_URI_MAX) == NULL)
			abort();
		if (r.kind[i] == TLSRPT_HTTPS &&
		    strncasecmp(r.uri[i], "https://", 8) != 0)
			abort();
		if (r.kind[i] != TLSRPT_MAILTO)
			continue;
		a = r.addr[i];
		if (strchr(a, '@') == NULL || strchr(a, '@') != strrchr(a, '@'))
			abort();
		for (; *a != '\0'; a++)
			if ((unsigned char)*a < 0x21 ||
			    (unsigned char)*a > 0x7e)
				abort();
	}
	return 0;
}
