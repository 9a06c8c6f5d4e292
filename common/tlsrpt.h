/*
 * tlsrpt: the "_smtp._tls.DOMAIN" TXT record of SMTP TLS reporting (RFC
 * 8460 section 3): where a recipient domain wants its aggregate reports.
 * Pure (STYLE R1): no I/O, no logging, no allocation; the result is
 * copied into the caller's struct. spoolctl tls-report --send uses it.
 */
#ifndef SG_TLSRPT_H
#define SG_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>

#define TLSRPT_RUA_MAX 4   /* report URIs kept; more are ignored */
#define TLSRPT_URI_MAX 256 /* one URI, NUL included; longer: ignored */

enum tlsrpt_kind { TLSRPT_MAILTO, TLSRPT_HTTPS };

struct tlsrpt_rua {
	size_t		 n;	  /* usable URIs in uri[] */
	size_t		 ignored; /* other schemes, bad or too many */
	enum tlsrpt_kind kind[TLSRPT_RUA_MAX];
	char		 uri[TLSRPT_RUA_MAX][TLSRPT_URI_MAX];
	/* mailto: the address (percent-decoded, no "?" part); https: "" */
	char addr[TLSRPT_RUA_MAX][TLSRPT_URI_MAX];
};

/*
 * One TXT record's text (its strings concatenated). 0 for a valid
 * "v=TLSRPTv1; rua=..." record (r->n may be 0 when no URI is usable);
 * 1 when the record does not start with v=TLSRPTv1 (not a TLSRPT record:
 * ignored); -1 and a reason in err when it does but is invalid (no rua,
 * two rua fields, bad syntax, control characters).
 */
int tlsrpt_txt_parse(const char *txt, size_t len, struct tlsrpt_rua *r,
    char *err, size_t errsz);

#endif
