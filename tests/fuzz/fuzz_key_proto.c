/*
 * libFuzzer target for smtpd/key_proto: one datagram, read by both the
 * key process's request parser (a hostile worker's bytes) and the
 * worker's reply parser. Whatever they accept must keep their promises:
 * lengths within TLS_SIGN_MAX and the datagram, re-encodable to the same
 * bytes. Seeds: tests/fuzz/corpus/key_proto/.
 */
#include <stdlib.h>
#include <string.h>

#include "key_proto.h"

static void
fuzz_request(const uint8_t *data, size_t size)
{
	static struct tls_sign r;
	uint8_t		       out[KEY_MSG_MAX];
	uint32_t	       id;
	size_t		       n;

	if (key_request_parse(data, size, &id, &r) != KEY_OK)
		return;
	if (r.ts_len == 0 || r.ts_len > TLS_SIGN_MAX ||
	    r.ts_len + KEY_HDR_LEN + 1 != size || r.ts_md > TLS_MD_SHA512 ||
	    r.ts_kind < TLS_SIGN_RSA_PKCS1 || r.ts_kind > TLS_SIGN_ECDSA)
		abort();
	n = key_request_make(out, sizeof(out), id, &r);
	if (n != size || memcmp(out, data, size) != 0)
		abort();
}

static void
fuzz_reply(const uint8_t *data, size_t size)
{
	struct key_reply r;
	uint8_t		 out[KEY_MSG_MAX];
	size_t		 n;

	if (key_reply_parse(data, size, &r) != KEY_OK)
		return;
	if ((r.kr_type != KEY_R_OK && r.kr_type != KEY_R_NO) ||
	    r.kr_len > TLS_SIGN_MAX || r.kr_sig + r.kr_len > data + size)
		abort();
	n = key_reply_make(out, sizeof(out), r.kr_type, r.kr_id, r.kr_sig,
	    r.kr_len);
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
