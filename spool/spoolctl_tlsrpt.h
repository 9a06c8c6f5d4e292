/*
 * The delivery side of spoolctl tls-report --send (RFC 8460 section 5):
 * gzip, the HTTPS POST (libcurl) and the mailto: message (GMime 3). Kept
 * in spool/libctltlsrpt.a, the only part of spoolctl that includes the
 * zlib, libcurl and GMime headers. Output goes into the caller's struct
 * buf; functions return 0, or -1 with a one-line reason in err.
 */
#ifndef SG_SPOOLCTL_TLSRPT_H
#define SG_SPOOLCTL_TLSRPT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct conf;

#define TLSRPT_CONNECT_TIMEOUT 10 /* seconds, per https: URI */
#define TLSRPT_TOTAL_TIMEOUT   60 /* seconds, per https: URI */

/* in[0..len) gzipped (RFC 1952) into out. */
int tlsrpt_gzip(const void *in, size_t len, struct buf *out, char *err,
    size_t errsz);

/* POSTs body as application/tlsrpt+gzip to url: TLS verified
 * (tls_report_ca_file, or the system store when ""), redirects not
 * followed, no private or loopback address unless allow_fetch_to holds it
 * (common/fetchguard.h), bounded by the timeouts above; 0 on a 2xx
 * answer. */
int tlsrpt_post(const struct conf *, const char *url, const void *body,
    size_t len, char *err, size_t errsz);

/* What the mailto: report says (RFC 8460 5.3). */
struct tlsrpt_mail {
	const char *from, *to;
	const char *domain;    /* TLS-Report-Domain: the policy domain */
	const char *submitter; /* TLS-Report-Submitter: this gateway */
	const char *report_id;
	const char *date;      /* YYYY-MM-DD, the report's day */
	int64_t	    day_start; /* its first second */
	const void *gz;	       /* the gzipped report */
	size_t	    gzlen;
};

/* The whole message (headers with Message-ID, Date and MIME-Version, a
 * multipart/report; report-type="tlsrpt" of a text part and the
 * application/tlsrpt+gzip attachment) with CRLF line ends into out. */
int tlsrpt_mail_build(const struct tlsrpt_mail *, struct buf *out, char *err,
    size_t errsz);

#endif
