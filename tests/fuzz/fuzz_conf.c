/* Fuzz the configuration value parsers of common/conf and common/cidr:
 * the first byte picks the parser, the rest is the value text. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "conf.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		  *s, err[256], host[256], port[8], out[64];
	struct conf_listen cl;
	struct cidr	   c;
	time_t		   t;
	int64_t		   n;
	bool		   b;

	if (size < 1 || size > 4096)
		return 0;
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 6) {
	case 0:
		(void)conf_parse_duration(s, &t);
		break;
	case 1:
		(void)conf_parse_size(s, &n);
		break;
	case 2:
		(void)conf_parse_bool(s, &b);
		break;
	case 3:
		(void)conf_parse_listen(s, &cl, err, sizeof(err));
		break;
	case 4:
		(void)conf_split_hostport(s, host, sizeof(host), port,
		    sizeof(port), "25");
		break;
	default:
		if (cidr_parse(s, &c) == 0) {
			cidr_format(&c, out, sizeof(out));
			(void)cidr_match_str(&c, "192.0.2.1");
			(void)cidr_match_str(&c, "2001:db8::1");
		}
		break;
	}
	free(s);
	return 0;
}
