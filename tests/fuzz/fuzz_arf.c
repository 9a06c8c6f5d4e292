/*
 * libFuzzer target for common/arf (feedback-loop reports through GMime):
 * any input parses to a status without crashing, every field it fills is
 * NUL-terminated inside its array, a success names a recipient with
 * an '@' and a Message-ID, and every tracking token kept has its length
 * and one of the kinds o, c, u. The seeds in tests/fuzz/corpus/arf/ replay in
 * `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "arf.h"
#include "log.h"

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
	struct arf_report r;
	enum arf_status	  st;
	size_t		  i;

	if (len > 256 * 1024)
		return 0;
	st = arf_parse((const char *)d, len, &r);
	if (memchr(r.ar_type, '\0', sizeof(r.ar_type)) == NULL ||
	    memchr(r.ar_rcpt, '\0', sizeof(r.ar_rcpt)) == NULL ||
	    memchr(r.ar_message_id, '\0', sizeof(r.ar_message_id)) == NULL ||
	    memchr(r.ar_user_agent, '\0', sizeof(r.ar_user_agent)) == NULL ||
	    memchr(r.ar_source_ip, '\0', sizeof(r.ar_source_ip)) == NULL)
		log_panic("arf: a field is not terminated");
	if (st == ARF_OK &&
	    (strchr(r.ar_rcpt, '@') == NULL || r.ar_message_id[0] == '\0' ||
		r.ar_type[0] == '\0'))
		log_panic("arf: ok without recipient, Message-ID or type");
	if (r.ar_ntoken > ARF_TOKEN_MAX)
		log_panic("arf: too many tokens");
	for (i = 0; i < r.ar_ntoken; i++)
		if (strlen(r.ar_token[i]) != ARF_TOKEN_LEN ||
		    strchr("ocu", r.ar_token_kind[i]) == NULL)
			log_panic("arf: a token of the wrong length or kind");
	return 0;
}
