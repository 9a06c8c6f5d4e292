/*
 * tls_key_pss: the asking side's RSA-PSS encoding for a TLS library that
 * hands over a digest, not the block (GnuTLS's external keys: trackd).
 * The block is what the key's process signs as TLS_SIGN_RSA_PSS
 * (tls_key.h): EMSA-PSS (RFC 8017 9.1.1) with MGF1 of the same hash and
 * a random salt as long as the digest, as TLS 1.3 requires. No secret:
 * the modulus is the certificate's. Errors: NULL or -1.
 */
#ifndef SG_TLS_KEY_PSS_H
#define SG_TLS_KEY_PSS_H

#include <stddef.h>
#include <stdint.h>

#include "tls_key.h"

struct tls_key_pss;

/* For the RSA public key with modulus n (big-endian, nlen bytes). */
struct tls_key_pss *tls_key_pss_new(const uint8_t *n, size_t nlen);
/* The request for a signature of digest (of md: enum tls_sign_md). */
int  tls_key_pss_encode(const struct tls_key_pss *, uint8_t md,
     const uint8_t *digest, size_t dlen, struct tls_sign *r);
void tls_key_pss_free(struct tls_key_pss **);

#endif
