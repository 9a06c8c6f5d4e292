/*
 * tls: the only module that includes <openssl/...> headers (STYLE L2). A struct
 * tls_ctx holds configuration (certificate and key for a server; nothing
 * for an opportunistic client); a struct tls_conn is one TLS session over
 * a socket the caller owns (tls_conn_free never closes the fd). Objects
 * are heap-allocated and released with the matching _free(&p), which
 * accepts NULL and sets the pointer to NULL.
 *
 * Errors: functions returning int give 0 on success and -1 on failure,
 * with a one-line reason in the caller's err buffer (or in tls_error()).
 * tls_read/tls_write/tls_handshake on a non-blocking socket may return
 * TLS_WANT_READ or TLS_WANT_WRITE: poll for that and call again.
 * Protocol: TLS 1.2 and 1.3 only, modern cipher suites (no RC4/3DES/CBC-SHA1
 * kex without forward secrecy).
 */
#ifndef SG_TLS_H
#define SG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_ctx;
struct tls_conn;
struct tls_policy;

#define TLS_WANT_READ  (-2)
#define TLS_WANT_WRITE (-3)

/* Once per process, before chroot (loads OpenSSL configuration). */
void tls_init(void);
/* "what: reason" into err from OpenSSL's last error, else errno, else
 * "what: none" (none NULL: "what"); OpenSSL's error queue is cleared. */
void tls_err_text(char *err, size_t errsz, const char *what, const char *none);

/* ---- server side (smtpd) */
/*
 * The PEM certificate chain, and a key whose signatures come from the
 * process's signer (tls_key.h, the key process of smtpd: the private key
 * is never in this process). NULL with err ("<cert>: reason") on failure.
 */
struct tls_ctx *tls_server_ctx_signer(const char *cert, char *err,
    size_t errsz);
/* Wraps an accepted socket; the handshake runs in tls_handshake(). */
struct tls_conn *tls_server_conn_new(struct tls_ctx *, int fd);
/* 0 done, TLS_WANT_READ/TLS_WANT_WRITE (non-blocking fd), -1 failed. */
int tls_handshake(struct tls_conn *);

/* ---- client side (deliverd) */
/*
 * ca_file: PEM file of the trusted CAs, NULL or "" for the system's
 * default store. The handshake never fails on the certificate: the
 * verification result is kept for tls_policy_check().
 */
struct tls_ctx *tls_client_ctx_new(const char *ca_file, char *err,
    size_t errsz);
/*
 * Runs the whole client handshake on fd (blocking or not: it polls itself)
 * within timeout_ms milliseconds. servername (may be NULL) is sent as SNI.
 * The certificate is not checked here (opportunistic STARTTLS, RFC 3207
 * sec. 4.1); tls_policy_check() says whether it satisfies a policy.
 * 0 and *conn_r set, or -1 with err ("timeout", or OpenSSL's reason).
 * After return the fd's O_NONBLOCK flag is as it was before.
 */
int tls_client_start(struct tls_ctx *, int fd, const char *servername,
    int timeout_ms, struct tls_conn **conn_r, char *err, size_t errsz);
/* The same with the policy's TLSA records (if any) armed for DANE. */
int tls_client_start_pol(struct tls_ctx *, int fd, const char *servername,
    const struct tls_policy *, int timeout_ms, struct tls_conn **conn_r,
    char *err, size_t errsz);

/*
 * TLS policy of a client session (relayhost_tls; MTA-STS/DANE later):
 * none (never STARTTLS), may (opportunistic: clear when TLS is missing or
 * fails), encrypt (TLS or nothing), verify (TLS with a certificate that
 * chains to the context's CAs and names tp_name: a DNS name, or an IP
 * address in an iPAddress entry).
 */
enum tls_level {
	TLS_LEVEL_NONE,
	TLS_LEVEL_MAY,
	TLS_LEVEL_ENCRYPT,
	TLS_LEVEL_VERIFY,
	TLS_LEVEL_SECURE /* verify; the caller names the next-hop domain */
};

/* secure (issue 17): deliverd checks the next-hop domain (tp_name) or, when
 * the MX host is inside that domain, the MX host (tp_alt): Postfix's
 * "match=nexthop:dot-nexthop" for that host. The check is verify's. */
/* One TLSA record (RFC 6698) for DANE; data points into the caller's. */
struct tls_tlsa {
	unsigned char	     usage, selector, mtype;
	size_t		     len;
	const unsigned char *data;
};

/*
 * DANE (RFC 7672): with tp_ntlsa > 0 the session must be TLS and the
 * peer's chain must match one of tp_tlsa (DANE-TA(2) or DANE-EE(3); the
 * caller passes only those) through OpenSSL's DANE API; tp_name is the
 * TLSA base domain (the MX host) and, for DANE-TA, the name checked.
 * DANE-EE matches are not name-checked (RFC 7672 3.1.1).
 */
struct tls_policy {
	enum tls_level tp_level;
	const char    *tp_name; /* the name the certificate must carry */
	const char    *tp_alt;	/* or this one (NULL: none) */
	const struct tls_tlsa *tp_tlsa;
	size_t		       tp_ntlsa;
};

/* "none", "may", "encrypt", "verify", "secure": 0, or -1 otherwise. */
int	    tls_level_parse(const char *, enum tls_level *r);
const char *tls_level_name(enum tls_level);
/* Did a TLSA record of the session's DANE policy (tls_dane_arm) match the
 * peer's chain? false for a session without DANE. */
bool tls_dane_authenticated(const struct tls_conn *);
/*
 * The verdict on a session: conn is its TLS session, or NULL when it runs
 * (or would run) in clear. 0 when it satisfies the policy; -1 when not,
 * with the reason in why ("TLS is required", "certificate verification
 * failed: ...", "certificate name mismatch: ...").
 */
int tls_policy_check(const struct tls_policy *, const struct tls_conn *conn,
    char *why, size_t whysz);
/* The same, with the kind of failure in *kind (may be NULL) for TLS
 * reporting (RFC 8460 result types): TLS_FAIL_NONE when it passed. */
enum tls_fail {
	TLS_FAIL_NONE,
	TLS_FAIL_NOTLS,	    /* clear session, TLS required */
	TLS_FAIL_UNTRUSTED, /* no certificate, or it does not chain */
	TLS_FAIL_EXPIRED,   /* the certificate has expired */
	TLS_FAIL_NAME	    /* it does not name the required name */
};
int tls_policy_verdict(const struct tls_policy *, const struct tls_conn *conn,
    char *why, size_t whysz, enum tls_fail *kind);

/* ---- both sides */
/*
 * >0 bytes, 0 on clean close (close_notify or EOF), -1 on error,
 * TLS_WANT_READ/TLS_WANT_WRITE on a non-blocking fd. On a blocking fd they
 * block like read(2)/write(2). tls_write writes at most n bytes (partial
 * writes are possible only with TLS_WANT_*: SSL_MODE_ENABLE_PARTIAL_WRITE).
 */
ssize_t tls_read(struct tls_conn *, void *, size_t n);
ssize_t tls_write(struct tls_conn *, const void *, size_t n);
/* Bytes already decrypted and buffered: poll() will not report them. */
size_t tls_pending(struct tls_conn *);
/* Blocking helpers for simple clients: all of n bytes, or -1 (errors,
 * timeout of timeout_ms per wait). */
int tls_write_all(struct tls_conn *, const void *, size_t n, int timeout_ms);
/* Up to n bytes, waiting at most timeout_ms: >0, 0 closed, -1 error or
 * timeout (errno ETIMEDOUT). Works on blocking and non-blocking fds. */
ssize_t tls_read_timeout(struct tls_conn *, void *, size_t n, int timeout_ms);
/* Negotiated protocol ("TLSv1.3") and cipher ("TLS_AES_256_GCM_SHA384");
 * pointers stay valid until tls_conn_free. */
void tls_info(const struct tls_conn *, const char **proto_r,
    const char **cipher_r);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" into dst. */
void tls_info_str(const struct tls_conn *, char *dst, size_t dstsz);
/* The last error of this connection, for logs. */
const char *tls_error(const struct tls_conn *);
/* Sends close_notify without waiting for the peer's (never blocks long). */
void tls_shutdown(struct tls_conn *);
void tls_conn_free(struct tls_conn **);
void tls_ctx_free(struct tls_ctx **);

#endif
