#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "ev.h"
#include "tls.h"
#include "tls_key.h"
#include "xmem.h"

struct tls_ctx {
	SSL_CTX *tc_ssl;
};

struct tls_conn {
	SSL *tn_ssl;
	int  tn_fd;
	char tn_err[256];
};

/* Modern suites for TLS 1.2 (1.3 suites are OpenSSL's defaults). */
#define TLS_CIPHERS12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

void
tls_err_text(char *err, size_t errsz, const char *what, const char *none)
{
	unsigned long e;
	char	      reason[200];

	if (err == NULL || errsz == 0)
		return;
	e = ERR_peek_last_error();
	if (e != 0) {
		ERR_error_string_n(e, reason, sizeof(reason));
		(void)snprintf(err, errsz, "%s: %s", what, reason);
	} else if (errno != 0)
		(void)snprintf(err, errsz, "%s: %s", what, strerror(errno));
	else if (none != NULL)
		(void)snprintf(err, errsz, "%s: %s", what, none);
	else
		(void)snprintf(err, errsz, "%s", what);
	ERR_clear_error();
}

static void
tls_errstr(char *err, size_t errsz, const char *what)
{
	tls_err_text(err, errsz, what, NULL);
}

void
tls_init(void)
{
	(void)OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS |
		OPENSSL_INIT_LOAD_CONFIG,
	    NULL);
}

static SSL_CTX *
tls_ctx_base(const SSL_METHOD *m)
{
	SSL_CTX *c;

	if ((c = SSL_CTX_new(m)) == NULL)
		return NULL;
	(void)SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	/* SMTP frames its own data: a missing close_notify is plain EOF. */
	SSL_CTX_set_options(c,
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
		SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(c,
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(c, TLS_CIPHERS12) != 1) {
		SSL_CTX_free(c);
		return NULL;
	}
	return c;
}

struct tls_ctx *
tls_server_ctx_signer(const char *cert, char *err, size_t errsz)
{
	struct tls_ctx *t;
	SSL_CTX	       *c;

	ERR_clear_error();
	errno = 0;
	if ((c = tls_ctx_base(TLS_server_method())) == NULL) {
		tls_errstr(err, errsz, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
		tls_errstr(err, errsz, cert);
		goto fail;
	}
	if (tls_key_proxy_use(c, err, errsz) == -1)
		goto fail;
	/* DHE-RSA suites with RFC 7919 groups sized to the key; every suite
	 * is authenticated by a signature (no RSA key exchange) */
	(void)SSL_CTX_set_dh_auto(c, 1);
	/* No session cache shared between preforked workers. */
	(void)SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	(void)SSL_CTX_set_num_tickets(c, 0);
	t = xcalloc(1, sizeof(*t));
	t->tc_ssl = c;
	return t;
fail:
	SSL_CTX_free(c);
	return NULL;
}

struct tls_ctx *
tls_client_ctx_new(const char *ca_file, char *err, size_t errsz)
{
	struct tls_ctx *t;
	SSL_CTX	       *c;

	ERR_clear_error();
	errno = 0;
	if ((c = tls_ctx_base(TLS_client_method())) == NULL) {
		tls_errstr(err, errsz, "SSL_CTX_new");
		return NULL;
	}
	/* VERIFY_NONE: the chain is still verified and the result kept
	 * (SSL_get_verify_result) for the policy to judge after the
	 * handshake, so an opportunistic session never fails on it. */
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_dane_enable(c) <= 0)
		ERR_clear_error(); /* then no TLSA record ever matches */
	if (ca_file != NULL && ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1) {
			tls_errstr(err, errsz, ca_file);
			SSL_CTX_free(c);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(c) != 1)
		ERR_clear_error(); /* no system store: nothing verifies */
	t = xcalloc(1, sizeof(*t));
	t->tc_ssl = c;
	return t;
}

void
tls_ctx_free(struct tls_ctx **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	SSL_CTX_free((*tp)->tc_ssl);
	free(*tp);
	*tp = NULL;
}

static struct tls_conn *
tls_conn_new(struct tls_ctx *t, int fd)
{
	struct tls_conn *c;
	SSL		*s;

	ERR_clear_error();
	if ((s = SSL_new(t->tc_ssl)) == NULL)
		return NULL;
	if (SSL_set_fd(s, fd) != 1) {
		SSL_free(s);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->tn_ssl = s;
	c->tn_fd = fd;
	return c;
}

struct tls_conn *
tls_server_conn_new(struct tls_ctx *t, int fd)
{
	struct tls_conn *c;

	if ((c = tls_conn_new(t, fd)) != NULL)
		SSL_set_accept_state(c->tn_ssl);
	return c;
}

/* Maps an SSL_* result to our convention, recording the reason. */
static int
tls_result(struct tls_conn *c, int rc, const char *what)
{
	int e = SSL_get_error(c->tn_ssl, rc);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (errno == 0)
				errno = ECONNRESET;
			(void)snprintf(c->tn_err, sizeof(c->tn_err), "%s: %s",
			    what, strerror(errno));
			ERR_clear_error();
			return -1;
		}
		/* FALLTHROUGH */
	default:
		errno = EPROTO;
		tls_errstr(c->tn_err, sizeof(c->tn_err), what);
		return -1;
	}
}

int
tls_handshake(struct tls_conn *c)
{
	int rc;

	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_do_handshake(c->tn_ssl)) == 1)
		return 0;
	rc = tls_result(c, rc, "handshake");
	return rc == 0 ? -1 : rc;
}

ssize_t
tls_read(struct tls_conn *c, void *p, size_t n)
{
	size_t got = 0;
	int    rc;

	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_read_ex(c->tn_ssl, p, n, &got)) == 1)
		return (ssize_t)got;
	return tls_result(c, rc, "read");
}

ssize_t
tls_write(struct tls_conn *c, const void *p, size_t n)
{
	size_t done = 0;
	int    rc;

	if (n == 0)
		return 0;
	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_write_ex(c->tn_ssl, p, n, &done)) == 1)
		return (ssize_t)done;
	rc = tls_result(c, rc, "write");
	return rc == 0 ? -1 : rc;
}

size_t
tls_pending(struct tls_conn *c)
{
	int n = SSL_pending(c->tn_ssl);

	return n > 0 ? (size_t)n : 0;
}

/* Waits for the direction OpenSSL asked for until deadline; 0 or -1 (ETIMEDOUT). */
static int
tls_wait(int fd, int want, int64_t deadline)
{
	return ev_wait_fd(fd, want == TLS_WANT_WRITE ? POLLOUT : POLLIN,
	    deadline);
}

/* Arms DANE on a client session: 0, or -1 when no record could be added
 * (then nothing can match: the policy check fails the session). */
static int
tls_dane_arm(struct tls_conn *c, const struct tls_policy *p)
{
	size_t i, n = 0;

	if (SSL_dane_enable(c->tn_ssl, p->tp_name) <= 0)
		return -1;
	(void)SSL_dane_set_flags(c->tn_ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (i = 0; i < p->tp_ntlsa; i++)
		if (SSL_dane_tlsa_add(c->tn_ssl, p->tp_tlsa[i].usage,
			p->tp_tlsa[i].selector, p->tp_tlsa[i].mtype,
			p->tp_tlsa[i].data, p->tp_tlsa[i].len) > 0)
			n++;
	ERR_clear_error();
	return n > 0 ? 0 : -1;
}

int
tls_client_start(struct tls_ctx *t, int fd, const char *servername,
    int timeout_ms, struct tls_conn **conn_r, char *err, size_t errsz)
{
	return tls_client_start_pol(t, fd, servername, NULL, timeout_ms, conn_r,
	    err, errsz);
}

int
tls_client_start_pol(struct tls_ctx *t, int fd, const char *servername,
    const struct tls_policy *p, int timeout_ms, struct tls_conn **conn_r,
    char *err, size_t errsz)
{
	struct tls_conn *c;
	int64_t		 deadline = ev_clock_ms() + timeout_ms;
	int		 fl, rc;

	*conn_r = NULL;
	if ((c = tls_conn_new(t, fd)) == NULL) {
		tls_errstr(err, errsz, "SSL_new");
		return -1;
	}
	SSL_set_connect_state(c->tn_ssl);
	if (servername != NULL && *servername != '\0')
		(void)SSL_set_tlsext_host_name(c->tn_ssl, servername);
	if (p != NULL && p->tp_ntlsa > 0 && p->tp_name != NULL)
		(void)tls_dane_arm(c, p);
	fl = fcntl(fd, F_GETFL);
	if (fl != -1 && !(fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (
	    (rc = tls_handshake(c)) == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
		if (tls_wait(fd, rc, deadline) == -1) {
			(void)snprintf(c->tn_err, sizeof(c->tn_err),
			    "handshake: %s",
			    errno == ETIMEDOUT ? "timeout" : strerror(errno));
			rc = -1;
			break;
		}
	}
	if (fl != -1 && !(fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl);
	if (rc != 0) {
		if (err != NULL && errsz > 0)
			(void)snprintf(err, errsz, "%s", c->tn_err);
		tls_conn_free(&c);
		return -1;
	}
	*conn_r = c;
	return 0;
}

int
tls_write_all(struct tls_conn *c, const void *p, size_t n, int timeout_ms)
{
	const char *s = p;
	ssize_t	    w;

	while (n > 0) {
		w = tls_write(c, s, n);
		if (w > 0) {
			s += w;
			n -= (size_t)w;
			continue;
		}
		if (w == TLS_WANT_READ || w == TLS_WANT_WRITE) {
			if (tls_wait(c->tn_fd, (int)w,
				ev_clock_ms() + timeout_ms) == -1)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

ssize_t
tls_read_timeout(struct tls_conn *c, void *p, size_t n, int timeout_ms)
{
	int64_t deadline = ev_clock_ms() + timeout_ms;
	ssize_t r;

	for (;;) {
		if (tls_pending(c) == 0) {
			/* A blocking fd would block in SSL_read past the deadline. */
			if (tls_wait(c->tn_fd, TLS_WANT_READ, deadline) == -1)
				return -1;
		}
		r = tls_read(c, p, n);
		if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
			if (tls_wait(c->tn_fd, (int)r, deadline) == -1)
				return -1;
			continue;
		}
		return r;
	}
}

void
tls_info(const struct tls_conn *c, const char **proto_r, const char **cipher_r)
{
	if (proto_r != NULL)
		*proto_r = SSL_get_version(c->tn_ssl);
	if (cipher_r != NULL)
		*cipher_r = SSL_CIPHER_get_name(
		    SSL_get_current_cipher(c->tn_ssl));
}

void
tls_info_str(const struct tls_conn *c, char *dst, size_t dstsz)
{
	const char *p, *ci;

	tls_info(c, &p, &ci);
	(void)snprintf(dst, dstsz, "%s %s", p ? p : "?", ci ? ci : "?");
}

const char *
tls_error(const struct tls_conn *c)
{
	return c->tn_err[0] ? c->tn_err : "unknown TLS error";
}

void
tls_shutdown(struct tls_conn *c)
{
	ERR_clear_error();
	/* One non-waiting attempt: the peer's close_notify is not awaited. */
	(void)SSL_shutdown(c->tn_ssl);
	ERR_clear_error();
}

void
tls_conn_free(struct tls_conn **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	SSL_free((*cp)->tn_ssl);
	free(*cp);
	*cp = NULL;
}

/* ---- client policy */

static const char *const tls_level_names[] = {
	[TLS_LEVEL_NONE] = "none",
	[TLS_LEVEL_MAY] = "may",
	[TLS_LEVEL_ENCRYPT] = "encrypt",
	[TLS_LEVEL_VERIFY] = "verify",
	[TLS_LEVEL_SECURE] = "secure",
};

int
tls_level_parse(const char *s, enum tls_level *r)
{
	size_t i;

	for (i = 0; i < sizeof(tls_level_names) / sizeof(tls_level_names[0]);
	     i++)
		if (strcmp(s, tls_level_names[i]) == 0) {
			*r = (enum tls_level)i;
			return 0;
		}
	return -1;
}

const char *
tls_level_name(enum tls_level l)
{
	return (unsigned)l <
		sizeof(tls_level_names) / sizeof(tls_level_names[0])
	    ? tls_level_names[l]
	    : "?";
}

/* Does the certificate name `name` (DNS name, or IP address)? */
static bool
tls_cert_names(X509 *x, const char *name)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, name, a) == 1 ||
	    inet_pton(AF_INET6, name, a) == 1)
		return X509_check_ip_asc(x, name, 0) == 1;
	return X509_check_host(x, name, strlen(name),
		   X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

/* DANE: did a TLSA record match the peer's chain (RFC 7672 3)? */
static int
tls_dane_check(const struct tls_conn *c, char *why, size_t whysz)
{
	long vr;

	if (SSL_get0_dane_authority(c->tn_ssl, NULL, NULL) >= 0)
		return 0;
	vr = SSL_get_verify_result(c->tn_ssl);
	(void)snprintf(why, whysz,
	    "DANE: no TLSA record matches the certificate (%s)",
	    vr != X509_V_OK ? X509_verify_cert_error_string(vr)
			    : "not authenticated");
	return -1;
}

bool
tls_dane_authenticated(const struct tls_conn *c)
{
	return c != NULL && SSL_get0_dane_authority(c->tn_ssl, NULL, NULL) >= 0;
}

int
tls_policy_check(const struct tls_policy *p, const struct tls_conn *c,
    char *why, size_t whysz)
{
	return tls_policy_verdict(p, c, why, whysz, NULL);
}

int
tls_policy_verdict(const struct tls_policy *p, const struct tls_conn *c,
    char *why, size_t whysz, enum tls_fail *kind)
{
	enum tls_fail k = TLS_FAIL_NONE;
	X509	     *x;
	long	      vr;

	if (kind == NULL)
		kind = &k;
	*kind = TLS_FAIL_NONE;
	if (p->tp_level <= TLS_LEVEL_MAY)
		return 0;
	if (c == NULL) {
		*kind = TLS_FAIL_NOTLS;
		(void)snprintf(why, whysz, "TLS is required (%s)",
		    p->tp_ntlsa > 0 ? "DANE" : tls_level_name(p->tp_level));
		return -1;
	}
	if (p->tp_ntlsa > 0 && tls_dane_check(c, why, whysz) == -1)
		*kind = TLS_FAIL_UNTRUSTED;
	if (p->tp_ntlsa > 0)
		return *kind == TLS_FAIL_NONE ? 0 : -1;
	if (p->tp_level == TLS_LEVEL_ENCRYPT)
		return 0;
	if ((x = SSL_get0_peer_certificate(c->tn_ssl)) == NULL) {
		*kind = TLS_FAIL_UNTRUSTED;
		(void)snprintf(why, whysz,
		    "certificate verification failed: "
		    "no certificate");
		return -1;
	}
	if ((vr = SSL_get_verify_result(c->tn_ssl)) != X509_V_OK) {
		*kind = vr == X509_V_ERR_CERT_HAS_EXPIRED ? TLS_FAIL_EXPIRED
							  : TLS_FAIL_UNTRUSTED;
		(void)snprintf(why, whysz,
		    "certificate verification failed: %s",
		    X509_verify_cert_error_string(vr));
		return -1;
	}
	if ((p->tp_name == NULL || p->tp_name[0] == '\0' ||
		!tls_cert_names(x, p->tp_name)) &&
	    (p->tp_alt == NULL || p->tp_alt[0] == '\0' ||
		!tls_cert_names(x, p->tp_alt))) {
		*kind = TLS_FAIL_NAME;
		(void)snprintf(why, whysz,
		    "certificate name mismatch: the "
		    "certificate does not name %s",
		    p->tp_name ? p->tp_name : "");
		return -1;
	}
	return 0;
}
