/*
 * tls_key: the TLS private key kept out of the network-facing processes
 * (OpenSMTPD's ca). One process loads the key (tls_key_load) and answers
 * signature requests (tls_key_sign); the others' server context holds the
 * certificate and a public key whose private operation becomes a struct
 * tls_sign handed to the process's signer (tls_key_signer), which asks
 * the key's process and returns the signature.
 *
 * Only signatures, one digest per request: PKCS#1 v1.5 over a digest
 * (the key's side adds the DigestInfo and the padding), an RSA-PSS
 * encoded block (checked to be a PSS encoding with a salt as long as the
 * digest before the private operation: never a raw RSA decryption), ECDSA
 * over a digest. Errors: 0 or -1, with a reason in err / *why_r.
 */
#ifndef SG_TLS_KEY_H
#define SG_TLS_KEY_H

#include <stddef.h>
#include <stdint.h>

#define TLS_SIGN_MAX 1024 /* bytes of a request or a signature: RSA-8192 */

enum tls_sign_kind {
	TLS_SIGN_RSA_PKCS1 = 1, /* ts_data: a digest of ts_md */
	TLS_SIGN_RSA_PSS = 2,	/* ts_data: the PSS block (RSA_size bytes) */
	TLS_SIGN_ECDSA = 3	/* ts_data: a digest of ts_md */
};

enum tls_sign_md {
	TLS_MD_NONE = 0, /* TLS_SIGN_RSA_PSS: the block says */
	TLS_MD_SHA256 = 1,
	TLS_MD_SHA384 = 2,
	TLS_MD_SHA512 = 3
};

struct tls_sign {
	uint8_t ts_kind; /* enum tls_sign_kind */
	uint8_t ts_md;	 /* enum tls_sign_md */
	size_t	ts_len;	 /* 1 .. TLS_SIGN_MAX */
	uint8_t ts_data[TLS_SIGN_MAX];
};

struct tls_key;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX, for tls.c only */

/*
 * The signer of this process: 0 and the signature in sig (*siglen_r
 * bytes, at most sigsz), or -1 (the handshake that asked fails).
 */
typedef int tls_key_signer_fn(const struct tls_sign *, uint8_t *sig,
    size_t sigsz, size_t *siglen_r);
void	    tls_key_signer(tls_key_signer_fn *);

/*
 * Loads the PEM private key (RSA or EC, not encrypted) and checks that
 * it belongs to the first certificate of the PEM file cert. NULL with
 * err: "<key>: reason", "<cert>: reason" or "key does not match
 * certificate".
 */
struct tls_key *tls_key_load(const char *cert, const char *key, char *err,
    size_t errsz);
/* A signature by the loaded key, or -1 with a reason (refused, failed). */
int  tls_key_sign(struct tls_key *, const struct tls_sign *, uint8_t *sig,
     size_t sigsz, size_t *siglen_r, const char **why_r);
void tls_key_free(struct tls_key **);

/*
 * For tls.c: the context's private key becomes a copy of its
 * certificate's public key whose private operations call the signer;
 * signature algorithms are limited to those tls_key_sign answers.
 */
int tls_key_proxy_use(struct ssl_ctx_st *, char *err, size_t errsz);
/*
 * The same for a public key alone (deliverd's DKIM signer, deliverd_key.c):
 * a new RSA or EC key holding pub's public part whose private operations
 * call the signer; NULL for another type or on failure.
 */
struct evp_pkey_st *tls_key_proxy_pkey(struct evp_pkey_st *pub);

/*
 * A key process's start, told its parent over a control socket: 'K'
 * alone when the key is loaded, 'K' and the error otherwise. The key
 * process sends it (and _exits 1 if its parent is gone); the parent waits
 * up to TLS_KEY_STATUS_WAIT_MS: 0, or -1 with the error or why none came.
 */
#define TLS_KEY_STATUS_MAX     600
#define TLS_KEY_STATUS_WAIT_MS 10000 /* loading a key takes milliseconds */
void tls_key_status_send(int ctl, const char *err);
int  tls_key_status_wait(int ctl, char *err, size_t errsz);

#endif
