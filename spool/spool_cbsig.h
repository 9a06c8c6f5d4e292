/*
 * Callback signatures (issue 18 item 1). Every callback POST of an account
 * that has secrets (spoolctl account set --callback-secret) carries
 *     X-Smtpgate-Signature: t=UNIXTIME,v1=HEX[,v1=HEX]
 * (CONTRACT), each HEX being HMAC-SHA256(secret, "UNIXTIME." || body) in
 * lower-case hex, one per secret in the account's order (the new secret
 * first while two are kept for a rotation). Also the checks on a secret
 * and the fingerprint that spoolctl shows instead of one. Nothing here
 * allocates for the caller; OpenSSL failures come back as -1.
 */
#ifndef SG_SPOOL_CBSIG_H
#define SG_SPOOL_CBSIG_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"

#define SPOOL_CBSIG_HEADER     "X-Smtpgate-Signature"
#define SPOOL_CBSIG_SECRET_MIN 16 /* bytes */
#define SPOOL_CBSIG_FPR_LEN    8  /* hex digits of the fingerprint */
/* "X-Smtpgate-Signature: t=" + 20 digits + 2 x ",v1=" + 64 hex, NUL */
#define SPOOL_CBSIG_HDR_MAX    256

/* NULL when s is a usable secret (16 to SPOOL_CB_SECRET_MAX bytes of
 * printable ASCII, no space), else why not, as a static text. */
const char *spool_cbsig_secret_check(const char *s);

/* The number of secrets the account has (0 = its callbacks are unsigned). */
size_t spool_cbsig_count(const struct spool_account *);

/* The first 8 hex digits of SHA-256(secret) into dst: 0, or -1. The same
 * as `printf %s "$SECRET" | sha256sum | cut -c1-8`. */
int spool_cbsig_fingerprint(const char *secret,
    char				dst[SPOOL_CBSIG_FPR_LEN + 1]);

/* The header line (no CRLF) for body sent at time t into dst (at least
 * SPOOL_CBSIG_HDR_MAX bytes): 1 written, 0 the account has no secret (dst
 * is ""), -1 OpenSSL failed or dst is too small (dst is ""). */
int spool_cbsig_header(const struct spool_account *, int64_t t,
    const void *body, size_t len, char *dst, size_t dstsz);

#endif
