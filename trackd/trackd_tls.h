/*
 * trackd_tls: the only file that includes a <gnutls/...> header (STYLE L2):
 * libmicrohttpd's TLS is GnuTLS. The HTTP process's certificate chain
 * and a GnuTLS external private key (gnutls_privkey_import_ext4) that
 * holds nothing secret: each signature of a handshake becomes a struct
 * tls_sign (tls_key.h) for the signer (trackd_key_sign: the key
 * process), which GnuTLS gets back. Offered: RSA PKCS#1 v1.5 and
 * RSA-PSS (rsae) or ECDSA, with SHA-256/384/512; never a decryption (no
 * RSA key exchange). One per process: libmicrohttpd's certificate
 * callback has no argument. Errors: NULL with a reason in err.
 */
#ifndef SG_TRACKD_TLS_H
#define SG_TRACKD_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "tls_key.h"

typedef int trackd_tls_sign_fn(void *arg, const struct tls_sign *, uint8_t *sig,
    size_t sigsz, size_t *siglen_r);
/* Any function pointer: MHD_OPTION_HTTPS_CERT_CALLBACK casts it back. */
typedef void trackd_tls_cb(void);

struct trackd_tls;

/* cert_pem: the chain, the server's certificate first. */
struct trackd_tls *trackd_tls_new(const char *cert_pem, trackd_tls_sign_fn *,
    void *arg, char *err, size_t errsz);
/* The gnutls_certificate_retrieve_function2 for libmicrohttpd. */
trackd_tls_cb *trackd_tls_retrieve(void);
void	       trackd_tls_free(struct trackd_tls **);

#endif
