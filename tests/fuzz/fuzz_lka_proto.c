/*
 * libFuzzer target for smtpd/lka_proto: one datagram, read by both the
 * lookup process's query parser (a hostile worker's bytes) and the
 * worker's reply parser. Whatever they accept must keep their promises:
 * fields inside the datagram and within the limits, re-encodable to the
 * same bytes. Seeds: tests/fuzz/corpus/lka_proto/.
 */
#include <stdlib.h>
#include <string.h>

#include "lka_proto.h"

static void
fuzz_query(const uint8_t *data, size_t size)
{
	struct lka_query q;
	uint8_t		 out[LKA_MSG_MAX];
	size_t		 n = 0;
	char		 addr[LKA_ADDR_MAX + 1];

	if (lka_query_parse(data, size, &q) != LKA_OK)
		return;
	if (q.lq_type == LKA_Q_PIN) {
		if (q.lq_addrlen == 0 || q.lq_addrlen > LKA_ADDR_MAX ||
		    (const uint8_t *)q.lq_addr + q.lq_addrlen > data + size)
			abort();
		memcpy(addr, q.lq_addr, q.lq_addrlen);
		addr[q.lq_addrlen] = '\0';
		n = lka_query_pin(out, sizeof(out), q.lq_id, addr);
	} else if (q.lq_type == LKA_Q_AUTH) {
		if (q.lq_userlen == 0 || q.lq_userlen > LKA_USER_MAX ||
		    q.lq_passlen > LKA_PASS_MAX ||
		    (const uint8_t *)q.lq_pass + q.lq_passlen > data + size)
			abort();
		n = lka_query_auth(out, sizeof(out), q.lq_id, q.lq_user,
		    q.lq_userlen, q.lq_pass, q.lq_passlen);
	} else
		abort();
	if (n != size || memcmp(out, data, size) != 0)
		abort();
}

static void
fuzz_reply(const uint8_t *data, size_t size)
{
	struct lka_reply r;
	uint8_t		 out[LKA_MSG_MAX];
	size_t		 n;

	if (lka_reply_parse(data, size, &r) != LKA_OK)
		return;
	if (r.lr_type != LKA_R_OK && r.lr_type != LKA_R_NO &&
	    r.lr_type != LKA_R_TEMP)
		abort();
	if (r.lr_type == LKA_R_OK &&
	    (strlen(r.lr_login) == 0 || strlen(r.lr_tag) != LKA_TAG_MAX - 1))
		abort();
	n = lka_reply_make(out, sizeof(out), r.lr_type, r.lr_id, r.lr_login,
	    r.lr_tag);
	if (n != size || memcmp(out, data, size) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_query(data, size);
	fuzz_reply(data, size);
	return 0;
}
