/*
 * Fuzz common/bounce: the rule-file parser, then the classifier. The input
 * is parsed as a rule file; whatever parses classifies fixed replies at
 * every stage, and the input itself (as a NUL-terminated reply, at most
 * 4 KiB) is classified with and without those rules. Every result must be
 * a category; a 2xx is never a failure.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "log.h"

static void
fuzz_check(const struct bounce_rules *rs, enum bounce_stage st,
    const char *reply)
{
	enum bounce_cat c = bounce_classify(rs, st, reply);

	if ((int)c < 0 || c >= BOUNCE_CAT_COUNT)
		log_panic("fuzz: category %d out of range", (int)c);
	if (c != BOUNCE_NONE && bounce_cat_name(c) == NULL)
		log_panic("fuzz: category %d has no name", (int)c);
	if (reply[0] == '2' && strlen(reply) >= 4 && reply[1] >= '0' &&
	    reply[1] <= '9' && reply[2] >= '0' && reply[2] <= '9' &&
	    (reply[3] == ' ' || reply[3] == '-') && c != BOUNCE_NONE)
		log_panic("fuzz: a 2xx classified as a failure");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const replies[] = {
		"550 5.1.1 <a@b>: Recipient address rejected: User unknown",
		"554 5.7.1 Service unavailable; blocked using zen.spamhaus.org",
		"421 4.7.0 Try again later",
		"250 2.0.0 Ok",
		"",
		"5",
	};
	struct bounce_rules *rs;
	char		     err[256] = "", *text;
	size_t		     i, n = len > 4096 ? 4096 : len;
	int		     st;

	if (len > 256 * 1024)
		return 0;
	rs = bounce_rules_parse((const char *)data, len, "fuzz", err,
	    sizeof(err));
	if (rs == NULL && err[0] == '\0')
		log_panic("fuzz: a refused rule file without a reason");
	if ((text = malloc(n + 1)) == NULL)
		return 0;
	memcpy(text, data, n);
	text[n] = '\0';
	for (st = 0; st < BOUNCE_ST_COUNT; st++) {
		for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
			fuzz_check(rs, (enum bounce_stage)st, replies[i]);
		fuzz_check(rs, (enum bounce_stage)st, text);
		fuzz_check(NULL, (enum bounce_stage)st, text);
	}
	free(text);
	bounce_rules_free(rs);
	return 0;
}
