/*
 * libFuzzer target for common/smtp_cmd and common/mailaddr: every input
 * line is parsed as a command; MAIL/RCPT arguments then go through the
 * path parser and the ESMTP parameter iterator. Results must point inside
 * the input and parse again to the same thing; nothing may crash.
 * Seeds: tests/fuzz/corpus/smtp_cmd/.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mailaddr.h"
#include "smtp_cmd.h"

static void
fuzz_path(const char *arg, size_t len)
{
	char addr[MAILADDR_PATH_MAX], params[SMTP_CMD_LINE_MAX];
	struct mailaddr_param mp;
	size_t		      pos = 0, n = 0;
	unsigned	      fl;

	for (fl = 0; fl < 8; fl++) {
		if (mailaddr_parse_path(arg, len, fl, addr, sizeof(addr),
			params, sizeof(params)) != MAILADDR_OK)
			continue;
		if (strlen(addr) >= sizeof(addr) || strlen(params) > len)
			log_panic("mailaddr: result longer than input");
		if (addr[0] != '\0' && !mailaddr_ok(addr, fl) &&
		    strcasecmp(addr, "postmaster") != 0)
			log_panic(
			    "mailaddr: parsed address does not re-validate");
		while (mailaddr_param_next(params, strlen(params), &pos, &mp) ==
		    1) {
			if (mp.key < params ||
			    mp.key + mp.klen > params + strlen(params))
				log_panic("mailaddr: parameter outside input");
			if (++n > SMTP_CMD_LINE_MAX)
				log_panic("mailaddr: parameter loop");
		}
		pos = 0;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	    *p = (const char *)data, *end = p + size, *nl;
	struct smtp_cmd	     c;
	enum smtp_cmd_status st;
	char		    *line;
	size_t		     n;

	if (size > 65536)
		return 0;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		/* an exact-size copy: overreads show under ASan */
		line = malloc(n ? n : 1);
		memcpy(line, p, n);
		st = smtp_cmd_parse(line, n, &c);
		if (c.arg < line || c.arg + c.arglen > line + n)
			log_panic("smtp_cmd: argument outside the line");
		if (st == SMTP_CMD_OK &&
		    (c.verb == SMTP_V_MAIL || c.verb == SMTP_V_RCPT))
			fuzz_path(c.arg, c.arglen);
		free(line);
		p += n + (nl != NULL);
	}
	return 0;
}
