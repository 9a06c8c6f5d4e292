/*
 * libFuzzer target for deliverd/dkey_proto: one datagram, read by both the
 * DKIM key process's request parser (a hostile worker's bytes) and the
 * worker's reply parser. Whatever they accept must keep their promises: a
 * key file name that stays inside keys/ (or, for a tokens request, no name
 * and a well-formed QID with at most DKEY_LINKS_MAX links and at least one
 * token), lengths within the datagram, re-encodable to the same bytes. Seeds: tests/fuzz/corpus/dkey_proto/.
 */
#include <stdlib.h>
#include <string.h>

#include "dkey_proto.h"

static void
fuzz_request(const uint8_t *data, size_t size)
{
	static struct dkey_req r;
	uint8_t		       out[DKEY_REQ_MAX];
	uint32_t	       id;
	size_t		       n, nl;

	if (dkey_request_parse(data, size, &id, &r) != DKEY_OK)
		return;
	nl = strnlen(r.dq_name, sizeof(r.dq_name));
	if (r.dq_type == DKEY_Q_TOKENS) {
		if (nl != 0 || strnlen(r.dq_qid, sizeof(r.dq_qid)) != QID_LEN ||
		    !qid_ok(r.dq_qid) || r.dq_links > DKEY_LINKS_MAX ||
		    dkey_tokens_count(&r) == 0 ||
		    dkey_tokens_count(&r) > DKEY_TOKENS_MAX)
			abort();
		n = dkey_request_make(out, sizeof(out), id, &r);
		if (n != size || memcmp(out, data, size) != 0)
			abort();
		return;
	}
	if (nl == 0 || nl > DKEY_NAME_MAX || r.dq_name[0] == '.' ||
	    strchr(r.dq_name, '/') != NULL || !dkey_name_ok(r.dq_name, nl) ||
	    (r.dq_type != DKEY_Q_PUB && r.dq_type != DKEY_Q_RSA &&
		r.dq_type != DKEY_Q_ED25519))
		abort();
	n = dkey_request_make(out, sizeof(out), id, &r);
	if (n != size || memcmp(out, data, size) != 0)
		abort();
}

static void
fuzz_reply(const uint8_t *data, size_t size)
{
	struct dkey_reply r;
	uint8_t		  out[DKEY_REP_MAX];
	size_t		  n;

	if (dkey_reply_parse(data, size, &r) != DKEY_OK)
		return;
	if ((r.dr_type != DKEY_R_OK && r.dr_type != DKEY_R_NO) ||
	    r.dr_len > DKEY_OUT_MAX || r.dr_out + r.dr_len > data + size)
		abort();
	n = dkey_reply_make(out, sizeof(out), r.dr_type, r.dr_id, r.dr_out,
	    r.dr_len);
	if (n != size || memcmp(out, data, size) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_request(data, size);
	fuzz_reply(data, size);
	return 0;
}
