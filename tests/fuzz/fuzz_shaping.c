/*
 * Fuzz common/shaping: the shaping file parser, then matching, the
 * effective limits and the reply classifier over the parsed table.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shaping.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct shaping sh;
	struct shaping_limits l;
	char		      why[256], reply[512];
	size_t		      line, n;

	if (len > SHAPING_FILE_MAX)
		return 0;
	if (shaping_parse((const char *)data, len, &sh, &line, why,
		sizeof(why)) != SHAPING_OK)
		return 0;
	shaping_effective(&sh, shaping_match(&sh, "gmail.com"), 8, 100, 500,
	    &l);
	shaping_effective(&sh, shaping_match(&sh, "a.b.example"), 1, 1, 1, &l);
	if (l.sl_tls < SHAPING_TLS_NONE || l.sl_tls > SHAPING_TLS_SECURE)
		abort(); /* the effective level is always one of the five */
	/* the input as a reply line too */
	n = len < sizeof(reply) - 1 ? len : sizeof(reply) - 1;
	memcpy(reply, data, n);
	reply[n] = '\0';
	(void)shaping_classify(&sh, reply);
	return 0;
}
