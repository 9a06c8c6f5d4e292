/*
 * libFuzzer target for common/smtp_reply (and common/dns's MX answer
 * parser). The input is an SMTP server's byte stream, fed in chunks whose
 * sizes come from the input itself; every complete reply must satisfy the
 * parser's promises (code 200..599, bounded folded text without control
 * bytes). An input starting with 0xFF is instead a DNS answer packet for
 * dns_parse_mx. Seeds: tests/fuzz/corpus/smtp_reply/.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "smtp_reply.h"

static void
fuzz_check(const struct smtp_reply *rp, const struct smtp_reply_limits *lim)
{
	size_t i;

	if (rp->rp_code < 200 || rp->rp_code > 599 ||
	    rp->rp_text.len > lim->max_text)
		abort();
	for (i = 0; i < rp->rp_text.len; i++)
		if ((unsigned char)rp->rp_text.data[i] < 0x20)
			abort();
	if (rp->rp_enh[0] != '\0' &&
	    rp->rp_enh[0] != (char)('0' + rp->rp_code / 100))
		abort();
	(void)smtp_reply_ehlo_has(rp, "PIPELINING", NULL, NULL);
	(void)smtp_reply_dsn(rp);
}

static void
fuzz_dns(const uint8_t *data, size_t size)
{
	struct dns_mx mx[DNS_MX_MAX];
	size_t	      n, i;
	bool	      nullmx;

	if (dns_parse_mx(data, size, mx, DNS_MX_MAX, &n, &nullmx) == 0) {
		if (n > DNS_MX_MAX)
			abort();
		dns_sort_mx(mx, n);
		for (i = 1; i < n; i++)
			if (mx[i - 1].mx_pref > mx[i].mx_pref)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct smtp_reply_limits lim = { .max_line = 512,
		.max_lines = 20,
		.max_text = 200 };
	struct smtp_reply		      rp;
	enum smtp_reply_status		      st;
	const char			     *p = (const char *)data;
	size_t				      off, chunk, used, take;

	if (size > 0 && data[0] == 0xff) {
		fuzz_dns(data + 1, size - 1);
		return 0;
	}
	chunk = size > 0 ? (data[0] % 16) + 1 : 1;
	smtp_reply_init(&rp, &lim);
	for (off = 0; off < size;) {
		take = size - off < chunk ? size - off : chunk;
		st = smtp_reply_feed(&rp, p + off, take, &used);
		if (used > take)
			abort();
		if (st == SMTP_REPLY_DONE)
			fuzz_check(&rp, &lim);
		else if (st != SMTP_REPLY_MORE) {
			/* an error: a client drops the connection; restart clean */
			smtp_reply_release(&rp);
			smtp_reply_init(&rp, &lim);
		}
		off += used > 0 ? used : take;
	}
	smtp_reply_release(&rp);
	return 0;
}
