/*
 * The SMTP client: one session to one next-hop address, reused for
 * several transactions. The socket is non-blocking; every wait is a poll
 * bounded by the timeout of the state (connect, command, data). Replies go
 * through the pure parser common/smtp_reply; TLS through common/tls.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_dest.h" /* deliverd_smtp_nmsgs */
#include "deliverd_smtp_int.h"
#include "log.h"
#include "smtp_reply.h"
#include "spool.h"
#include "tls.h"
#include "xmem.h"

#define SMTP_WBUF_FLUSH (64 * 1024)

struct deliverd_smtp *
deliverd_smtp_new(const struct conf *cf, struct tls_ctx *tls)
{
	struct deliverd_smtp *s = xcalloc(1, sizeof(*s));

	s->s_cf = cf;
	s->s_tlsctx = tls;
	s->s_fd = -1;
	smtp_reply_init(&s->s_rp, NULL);
	buf_init(&s->s_wbuf, 4 * SMTP_WBUF_FLUSH);
	return s;
}

void
deliverd_smtp_free(struct deliverd_smtp **sp)
{
	if (*sp == NULL)
		return;
	deliverd_smtp_close(*sp, true);
	smtp_reply_release(&(*sp)->s_rp);
	buf_release(&(*sp)->s_wbuf);
	free(*sp);
	*sp = NULL;
}

bool
deliverd_smtp_connected(const struct deliverd_smtp *s)
{
	return s->s_fd != -1;
}

int64_t
deliverd_smtp_nmsgs(const struct deliverd_smtp *s)
{
	return s->s_fd != -1 ? s->s_nmsgs : 0;
}

const char *
deliverd_smtp_relay(const struct deliverd_smtp *s)
{
	return s->s_relay;
}

enum bounce_stage
deliverd_smtp_stage(const struct deliverd_smtp *s)
{
	return s->s_stage;
}

static void
deliverd_smtp_drop(struct deliverd_smtp *s)
{
	if (s->s_tls != NULL)
		tls_conn_free(&s->s_tls);
	if (s->s_fd != -1)
		(void)close(s->s_fd);
	s->s_fd = -1;
	s->s_roff = s->s_rlen = 0;
	s->s_key[0] = '\0';
	buf_reset(&s->s_wbuf);
	smtp_reply_reset(&s->s_rp); /* nothing of this peer reaches the next */
}

/* ---- I/O */

static int
deliverd_smtp_wait(int fd, short ev, int64_t deadline)
{
	return ev_wait_fd(fd, ev, deadline);
}

static int
deliverd_smtp_write(struct deliverd_smtp *s, const char *p, size_t n,
    time_t tmo)
{
	int64_t deadline = ev_clock_ms() + (int64_t)tmo * 1000;
	ssize_t w;

	if (s->s_tls != NULL) {
		if (tls_write_all(s->s_tls, p, n, (int)tmo * 1000) == -1) {
			(void)snprintf(s->s_err, sizeof(s->s_err),
			    "TLS write: %s", tls_error(s->s_tls));
			return -1;
		}
		return 0;
	}
	while (n > 0) {
		w = write(s->s_fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w == -1 && (errno == EAGAIN || errno == EINTR)) {
			if (deliverd_smtp_wait(s->s_fd, POLLOUT, deadline) == 0)
				continue;
		}
		(void)snprintf(s->s_err, sizeof(s->s_err), "write: %s",
		    errno == ETIMEDOUT ? "timeout" : strerror(errno));
		return -1;
	}
	return 0;
}

static int
deliverd_smtp_flush(struct deliverd_smtp *s, time_t tmo)
{
	int rc;

	rc = deliverd_smtp_write(s, s->s_wbuf.data, s->s_wbuf.len, tmo);
	buf_reset(&s->s_wbuf);
	return rc;
}

/* Reads what is there, waiting until deadline (monotonic ms) at most. */
static ssize_t
deliverd_smtp_fill(struct deliverd_smtp *s, int64_t deadline)
{
	int64_t left = deadline - ev_clock_ms();
	ssize_t r;

	s->s_roff = s->s_rlen = 0;
	if (left <= 0) {
		errno = ETIMEDOUT;
		r = -1;
	} else if (s->s_tls != NULL) {
		r = tls_read_timeout(s->s_tls, s->s_rbuf, sizeof(s->s_rbuf),
		    (int)left);
	} else {
		for (;;) {
			r = read(s->s_fd, s->s_rbuf, sizeof(s->s_rbuf));
			if (r >= 0 || (errno != EAGAIN && errno != EINTR))
				break;
			if (deliverd_smtp_wait(s->s_fd, POLLIN, deadline) == -1)
				break;
		}
	}
	if (r > 0)
		s->s_rlen = (size_t)r;
	else
		(void)snprintf(s->s_err, sizeof(s->s_err), "%s",
		    r == 0		     ? "connection closed"
			: errno == ETIMEDOUT ? "timeout"
					     : "read error");
	return r;
}

/* Reads one reply into s_rp within tmo seconds for the whole reply (a
 * trickling server cannot stretch it). 0, or -1 (s_err says why). */
static int
deliverd_smtp_read(struct deliverd_smtp *s, time_t tmo)
{
	enum smtp_reply_status st;
	size_t		       used;
	int64_t		       deadline = ev_clock_ms() + (int64_t)tmo * 1000;

	smtp_reply_reset(&s->s_rp);
	for (;;) {
		if (s->s_roff < s->s_rlen) {
			st = smtp_reply_feed(&s->s_rp, s->s_rbuf + s->s_roff,
			    s->s_rlen - s->s_roff, &used);
			s->s_roff += used;
			if (st == SMTP_REPLY_DONE)
				return 0;
			if (st != SMTP_REPLY_MORE) {
				(void)snprintf(s->s_err, sizeof(s->s_err),
				    "malformed reply");
				return -1;
			}
		}
		if (deliverd_smtp_fill(s, deadline) <= 0)
			return -1;
	}
}

/* Command + reply; -1 only on I/O trouble. */
static int
deliverd_smtp_cmd(struct deliverd_smtp *s, const char *cmd, time_t tmo)
{
	buf_reset(&s->s_wbuf);
	if (buf_printf(&s->s_wbuf, "%s\r\n", cmd) == -1 ||
	    deliverd_smtp_flush(s, tmo) == -1)
		return -1;
	return deliverd_smtp_read(s, tmo);
}

/* "451 4.4.2 host[addr]:port: what: why" for local trouble. */
static void
deliverd_smtp_lost(struct deliverd_smtp *s, const char *what, char *dst,
    size_t dstsz)
{
	(void)snprintf(dst, dstsz, "451 4.4.2 %s: %s: %s", s->s_relay, what,
	    s->s_err);
}

/* ---- connect */

void
deliverd_smtp_source(struct deliverd_smtp *s,
    const struct sockaddr_storage *src, const char *text, const char *helo)
{
	memset(&s->s_src, 0, sizeof(s->s_src));
	s->s_srctext[0] = '\0';
	if (src != NULL) {
		s->s_src = *src;
		(void)str_copy(s->s_srctext, sizeof(s->s_srctext), text);
	}
	(void)str_copy(s->s_helo, sizeof(s->s_helo), helo != NULL ? helo : "");
}

/*
 * Binds fd to the source address before connect. The port stays the
 * kernel's to pick at connect (IP_BIND_ADDRESS_NO_PORT), so many
 * destinations share one source without running out of ports. -1 with
 * s_err: an address this host does not have, or of the other family.
 */
static int
deliverd_smtp_bind(struct deliverd_smtp *s, int fd,
    const struct sockaddr_storage *to)
{
	int	  one = 1;
	socklen_t sl = s->s_src.ss_family == AF_INET6
	    ? sizeof(struct sockaddr_in6)
	    : sizeof(struct sockaddr_in);

	if (s->s_src.ss_family != to->ss_family) {
		(void)snprintf(s->s_err, sizeof(s->s_err),
		    "source address %s is IPv%c, "
		    "the next hop IPv%c",
		    s->s_srctext, s->s_src.ss_family == AF_INET6 ? '6' : '4',
		    to->ss_family == AF_INET6 ? '6' : '4');
		return -1;
	}
#ifdef IP_BIND_ADDRESS_NO_PORT
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
	    sizeof(one));
#else
	(void)one;
#endif
	if (bind(fd, (const struct sockaddr *)&s->s_src, sl) == -1) {
		(void)snprintf(s->s_err, sizeof(s->s_err),
		    "bind to source address %s: %s", s->s_srctext,
		    strerror(errno));
		return -1;
	}
	return 0;
}

static int
deliverd_smtp_connect(struct deliverd_smtp *s,
    const struct sockaddr_storage	   *ss)
{
	socklen_t sl;
	int	  fd, err = 0;
	socklen_t el = sizeof(err);
	int64_t	  deadline = ev_clock_ms() +
	    (int64_t)s->s_cf->cf_connect_timeout * 1000;

	sl = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
				       : sizeof(struct sockaddr_in);
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		goto fail;
	if (s->s_src.ss_family != AF_UNSPEC &&
	    deliverd_smtp_bind(s, fd, ss) == -1) {
		(void)close(fd);
		return -1;
	}
	if (connect(fd, (const struct sockaddr *)ss, sl) == -1) {
		if (errno != EINPROGRESS)
			goto fail;
		if (deliverd_smtp_wait(fd, POLLOUT, deadline) == -1)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	s->s_fd = fd;
	return 0;
fail:
	(void)snprintf(s->s_err, sizeof(s->s_err), "connect: %s",
	    errno == ETIMEDOUT ? "timeout" : strerror(errno));
	if (fd != -1)
		(void)close(fd);
	return -1;
}

static void
deliverd_smtp_ehlo_facts(struct deliverd_smtp *s, bool esmtp)
{
	s->s_pipelining = esmtp &&
	    smtp_reply_ehlo_has(&s->s_rp, "PIPELINING", NULL, NULL);
	s->s_8bit = esmtp &&
	    smtp_reply_ehlo_has(&s->s_rp, "8BITMIME", NULL, NULL);
	s->s_utf8 = esmtp &&
	    smtp_reply_ehlo_has(&s->s_rp, "SMTPUTF8", NULL, NULL);
	s->s_size = esmtp && smtp_reply_ehlo_has(&s->s_rp, "SIZE", NULL, NULL);
	s->s_starttls = esmtp &&
	    smtp_reply_ehlo_has(&s->s_rp, "STARTTLS", NULL, NULL);
	s->s_requiretls = esmtp &&
	    smtp_reply_ehlo_has(&s->s_rp, "REQUIRETLS", NULL, NULL);
	deliverd_smtp_tls_helo(s);
}

/* EHLO, falling back to HELO on a 5xx. 0 ok, -1 (reply set). */
static int
deliverd_smtp_hello(struct deliverd_smtp *s, char *reply, size_t replysz)
{
	char	    cmd[512];
	time_t	    tmo = s->s_cf->cf_command_timeout;
	const char *name = s->s_helo[0] != '\0' ? s->s_helo
						: s->s_cf->cf_hostname;

	(void)snprintf(cmd, sizeof(cmd), "EHLO %s", name);
	if (deliverd_smtp_cmd(s, cmd, tmo) == -1) {
		deliverd_smtp_lost(s, "EHLO", reply, replysz);
		return -1;
	}
	if (smtp_reply_class(&s->s_rp) == 2) {
		deliverd_smtp_ehlo_facts(s, true);
		return 0;
	}
	if (smtp_reply_class(&s->s_rp) == 5) {
		(void)snprintf(cmd, sizeof(cmd), "HELO %s", name);
		if (deliverd_smtp_cmd(s, cmd, tmo) == -1) {
			deliverd_smtp_lost(s, "HELO", reply, replysz);
			return -1;
		}
		if (smtp_reply_class(&s->s_rp) == 2) {
			deliverd_smtp_ehlo_facts(s, false);
			return 0;
		}
	}
	(void)str_copy(reply, replysz, s->s_rp.rp_text.data);
	return -1;
}

/* The TLS policy refuses this session: "451 4.7.5 relay: why[: detail]",
 * QUIT (inside TLS when it is up), -1. Never a word of mail in clear. */
static int
deliverd_smtp_tls_refused(struct deliverd_smtp *s, const char *why,
    const char *detail, char *reply, size_t replysz)
{
	(void)snprintf(reply, replysz, "451 4.7.5 %s: %s%s%s", s->s_relay, why,
	    detail != NULL ? ": " : "", detail != NULL ? detail : "");
	deliverd_smtp_close(s, true);
	return -1;
}

/* Going on in clear: 0 when the policy allows it (may), else -1. */
static int
deliverd_smtp_clear(struct deliverd_smtp *s, const char *detail, char *reply,
    size_t replysz)
{
	char	      why[256];
	enum tls_fail k;

	if (tls_policy_verdict(&s->s_pol, NULL, why, sizeof(why), &k) == 0) {
		deliverd_smtp_tls_level_outcome(s, TLS_FAIL_NONE);
		return 0;
	}
	deliverd_smtp_tls_level_outcome(s, k);
	return deliverd_smtp_tls_refused(s, why, detail, reply, replysz);
}

/* STARTTLS when offered and the policy is not "none". 0 (TLS or plain),
 * -1 the session is unusable or refused by the policy (reply set), 1 the
 * handshake failed and the policy allows clear: reconnect without TLS. */
static int
deliverd_smtp_starttls(struct deliverd_smtp *s, char *reply, size_t replysz)
{
	char	      err[256];
	int	      tmo = (int)s->s_cf->cf_command_timeout;
	enum tls_fail k;

	if (s->s_pol.tp_level == TLS_LEVEL_NONE) {
		deliverd_smtp_tls_level_outcome(s, TLS_FAIL_NONE);
		return 0;
	}
	if (!s->s_starttls)
		return deliverd_smtp_clear(s, "STARTTLS not offered", reply,
		    replysz);
	if (s->s_tlsctx == NULL)
		return deliverd_smtp_clear(s, "TLS client unavailable", reply,
		    replysz);
	if (deliverd_smtp_cmd(s, "STARTTLS", tmo) == -1) {
		deliverd_smtp_lost(s, "STARTTLS", reply, replysz);
		return -1;
	}
	if (smtp_reply_class(&s->s_rp) != 2) /* refused: clear if allowed */
		return deliverd_smtp_clear(s, s->s_rp.rp_text.data, reply,
		    replysz);
	s->s_roff = s->s_rlen = 0; /* nothing read before TLS is trusted */
	if (tls_client_start_pol(s->s_tlsctx, s->s_fd, s->s_host, &s->s_pol,
		(int)s->s_cf->cf_connect_timeout * 1000, &s->s_tls, err,
		sizeof(err)) == -1) {
		if (s->s_pol.tp_level >= TLS_LEVEL_ENCRYPT) {
			deliverd_smtp_tls_outcome(s, TLSRES_V_NONE,
			    TLSRES_P_NONE, TLSRES_R_VALIDATION_FAILURE);
			deliverd_smtp_drop(
			    s); /* no QUIT into a broken handshake */
			return deliverd_smtp_tls_refused(s,
			    "TLS handshake failed", err, reply, replysz);
		}
		log_info(
		    "TLS handshake with %s failed: %s; retrying without TLS",
		    s->s_relay, err);
		return 1;
	}
	k = TLS_FAIL_NONE;
	if (tls_policy_verdict(&s->s_pol, s->s_tls, err, sizeof(err), &k) ==
	    -1) {
		deliverd_smtp_tls_level_outcome(s, k);
		return deliverd_smtp_tls_refused(s, err, NULL, reply, replysz);
	}
	deliverd_smtp_tls_level_outcome(s, TLS_FAIL_NONE);
	tls_info_str(s->s_tls, s->s_tlsinfo, sizeof(s->s_tlsinfo));
	if (deliverd_smtp_hello(s, reply, replysz) == -1)
		return -1;
	return 0;
}

static void
deliverd_smtp_relay_name(struct deliverd_smtp *s, const char *host,
    const struct sockaddr_storage *ss)
{
	char	 addr[INET6_ADDRSTRLEN];
	unsigned port;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)
		    ss;
		(void)inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		port = ntohs(sin6->sin6_port);
	} else {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		(void)inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		port = ntohs(sin->sin_port);
	}
	(void)snprintf(s->s_relay, sizeof(s->s_relay), "%s[%s]:%u", host, addr,
	    port);
}

static int
deliverd_smtp_open1(struct deliverd_smtp *s, const struct sockaddr_storage *ss,
    bool notls, char *reply, size_t replysz)
{
	struct tls_ctx *saved = s->s_tlsctx;
	int		rc;

	deliverd_smtp_drop(s);
	s->s_tlsinfo[0] = '\0';
	deliverd_smtp_tls_reset(s);
	s->s_nmsgs = 0;
	s->s_dirty = false;
	s->s_probe = false;
	s->s_stage = BOUNCE_ST_CONNECT; /* no SMTP reply until the greeting */
	if (deliverd_smtp_connect(s, ss) == -1) {
		(void)snprintf(reply, replysz, "451 4.4.1 %s: %s", s->s_relay,
		    s->s_err);
		return -1;
	}
	deliverd_smtp_tls_addrs(s, ss);
	if (deliverd_smtp_read(s, s->s_cf->cf_command_timeout) == -1) {
		deliverd_smtp_lost(s, "greeting", reply, replysz);
		goto fail;
	}
	if (smtp_reply_class(&s->s_rp) != 2) {
		s->s_stage = BOUNCE_ST_GREETING;
		(void)str_copy(reply, replysz, s->s_rp.rp_text.data);
		goto fail;
	}
	s->s_stage = BOUNCE_ST_HELO; /* EHLO, HELO, STARTTLS */
	if (deliverd_smtp_hello(s, reply, replysz) == -1)
		goto fail;
	if (notls)
		s->s_tlsctx = NULL;
	rc = deliverd_smtp_starttls(s, reply, replysz);
	s->s_tlsctx = saved;
	if (rc == 0)
		return 0;
	deliverd_smtp_drop(s);
	return rc == 1 ? 1 : -1;
fail:
	deliverd_smtp_close(s, true);
	return -1;
}

/*
 * A 5xx greeting or EHLO/HELO reply says nothing about the recipients: it
 * refuses this client (a DNSBL listing, a host that does not take mail).
 * It becomes a 4xx naming the host, with the reply verbatim, so the
 * caller tries the next MX host and a message that no host talks to is
 * deferred, never bounced (Postfix's smtp_skip_5xx_greeting).
 */
static void
deliverd_smtp_refused(const struct deliverd_smtp *s, char *reply,
    size_t replysz)
{
	char   orig[SPOOL_REPLY_MAX], esc[16] = "4.0.0";
	size_t n = 0;

	if (reply[0] != '5' || strlen(reply) < 3 ||
	    !isdigit((unsigned char)reply[1]) ||
	    !isdigit((unsigned char)reply[2]))
		return;
	(void)str_copy(orig, sizeof(orig), reply);
	if (orig[3] == ' ' && orig[4] == '5' && orig[5] == '.') {
		while (n < sizeof(esc) - 1 &&
		    (isdigit((unsigned char)orig[4 + n]) || orig[4 + n] == '.'))
			n++;
		memcpy(esc, orig + 4, n);
		esc[n] = '\0';
		esc[0] = '4';
	}
	(void)snprintf(reply, replysz, "4%c%c %s %s refused to talk to me: %s",
	    orig[1], orig[2], esc, s->s_relay, orig);
}

int
deliverd_smtp_open(struct deliverd_smtp *s, const char *key, const char *host,
    const struct sockaddr_storage *ss, const struct tls_policy *pol,
    char *reply, size_t replysz)
{
	int rc;

	deliverd_smtp_close(s, true);
	(void)str_copy(s->s_host, sizeof(s->s_host), host);
	(void)str_copy(s->s_tlsname, sizeof(s->s_tlsname),
	    pol->tp_name != NULL ? pol->tp_name : host);
	s->s_pol.tp_level = pol->tp_level;
	s->s_pol.tp_name = s->s_tlsname;
	s->s_pol.tp_tlsa = pol->tp_tlsa; /* the caller's, during this call */
	s->s_pol.tp_ntlsa = pol->tp_ntlsa;
	deliverd_smtp_secure_alt(s, host);
	deliverd_smtp_relay_name(s, host, ss);
	rc = deliverd_smtp_open1(s, ss, false, reply, replysz);
	if (rc == 1)
		rc = deliverd_smtp_open1(s, ss, true, reply, replysz);
	s->s_pol.tp_tlsa = NULL;
	s->s_pol.tp_ntlsa = 0;
	if (rc != 0) {
		deliverd_smtp_refused(s, reply, replysz);
		return -1;
	}
	(void)str_copy(s->s_key, sizeof(s->s_key), key);
	log_debug("connected to %s%s%s", s->s_relay,
	    s->s_tlsinfo[0] ? " tls=" : "", s->s_tlsinfo);
	return 0;
}

bool
deliverd_smtp_reuse(struct deliverd_smtp *s, const char *key)
{
	if (s->s_fd == -1 || strcmp(s->s_key, key) != 0)
		return false;
	if (s->s_nmsgs >= s->s_cf->cf_max_msgs_per_connection) {
		deliverd_smtp_close(s, true);
		return false;
	}
	/* The server may have dropped an idle connection: probe it with
	 * RSET. With PIPELINING the RSET travels in the same write as the
	 * envelope (RFC 2920 allows it anywhere in a group) and a failed
	 * probe makes deliverd_smtp_send() return PROBE_FAILED before anything of the
	 * transaction was answered; without, one round trip here. */
	if (s->s_pipelining) {
		s->s_probe = true;
		return true;
	}
	if (deliverd_smtp_cmd(s, "RSET", s->s_cf->cf_command_timeout) == -1 ||
	    smtp_reply_class(&s->s_rp) != 2) {
		deliverd_smtp_close(s, false);
		return false;
	}
	return true;
}

void
deliverd_smtp_close(struct deliverd_smtp *s, bool quit)
{
	if (s->s_fd == -1)
		return;
	if (quit) {
		buf_reset(&s->s_wbuf);
		if (buf_puts(&s->s_wbuf, "QUIT\r\n") == 0 &&
		    deliverd_smtp_flush(s, 2) == 0)
			(void)deliverd_smtp_read(s, 2);
		if (s->s_tls != NULL)
			tls_shutdown(s->s_tls);
	}
	deliverd_smtp_drop(s);
}

/* ---- one transaction */

bool
deliverd_smtp_param(const char *params, const char *kw)
{
	size_t	    kl = strlen(kw);
	const char *p;

	for (p = params; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		if (strncasecmp(p, kw, kl) == 0 &&
		    (p[kl] == '\0' || p[kl] == ' '))
			return true;
		p = strchr(p, ' ');
	}
	return false;
}

static bool
deliverd_smtp_8bit(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return true;
	return false;
}

/* MAIL FROM line with the parameters the next hop understands. 0, 1
 * when the message needs SMTPUTF8 and the server lacks it, 2 when it
 * needs REQUIRETLS and the session does not meet it. */
static int
deliverd_smtp_mail(struct deliverd_smtp *s, const struct deliverd_tx *tx)
{
	size_t i;
	bool   utf8 = deliverd_smtp_param(tx->tx_from_params, "SMTPUTF8");
	bool   rtls = deliverd_smtp_wants_requiretls(tx);

	if (rtls && !deliverd_smtp_requiretls_ok(s, tx->tx_qid))
		return 2;

	utf8 = utf8 || deliverd_smtp_8bit(tx->tx_from, strlen(tx->tx_from));
	for (i = 0; i < tx->tx_nrcpt; i++)
		utf8 = utf8 ||
		    deliverd_smtp_8bit(tx->tx_rcpt[i], strlen(tx->tx_rcpt[i]));
	if (utf8 && !s->s_utf8)
		return 1;
	(void)buf_printf(&s->s_wbuf, "MAIL FROM:<%s>", tx->tx_from);
	if (s->s_size)
		(void)buf_printf(&s->s_wbuf, " SIZE=%zu",
		    tx->tx_msglen + strlen(tx->tx_sig));
	if (s->s_8bit &&
	    (deliverd_smtp_param(tx->tx_from_params, "BODY=8BITMIME") ||
		deliverd_smtp_8bit(tx->tx_msg, tx->tx_msglen)))
		(void)buf_puts(&s->s_wbuf, " BODY=8BITMIME");
	if (utf8)
		(void)buf_puts(&s->s_wbuf, " SMTPUTF8");
	if (rtls)
		(void)buf_puts(&s->s_wbuf, " REQUIRETLS");
	(void)buf_puts(&s->s_wbuf, "\r\n");
	return 0;
}

/* Streams the message with dot-stuffing, then ".". */
static int
deliverd_smtp_data(struct deliverd_smtp *s, const struct deliverd_tx *tx)
{
	const char *p = tx->tx_msg, *end = tx->tx_msg + tx->tx_msglen, *nl;
	size_t	    n;
	time_t	    tmo = s->s_cf->cf_data_timeout;

	buf_reset(&s->s_wbuf);
	(void)buf_puts(&s->s_wbuf, tx->tx_sig);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (*p == '.' && buf_putc(&s->s_wbuf, '.') == -1)
			return -1;
		if (n > SMTP_WBUF_FLUSH) {
			if (deliverd_smtp_flush(s, tmo) == -1 ||
			    deliverd_smtp_write(s, p, n, tmo) == -1)
				return -1;
		} else if (buf_append(&s->s_wbuf, p, n) == -1)
			return -1;
		p += n;
		if (s->s_wbuf.len >= SMTP_WBUF_FLUSH &&
		    deliverd_smtp_flush(s, tmo) == -1)
			return -1;
	}
	if (tx->tx_msglen > 0 && end[-1] != '\n')
		(void)buf_puts(&s->s_wbuf, "\r\n");
	(void)buf_puts(&s->s_wbuf, ".\r\n");
	return deliverd_smtp_flush(s, tmo);
}

static void
deliverd_smtp_set(struct deliverd_tx *tx, size_t i, const char *text,
    enum bounce_stage st)
{
	(void)str_copy(tx->tx_reply[i], SPOOL_REPLY_MAX, text);
	if (tx->tx_stage != NULL)
		tx->tx_stage[i] = st;
}

static void
deliverd_smtp_all(struct deliverd_tx *tx, const bool *skip, const char *text,
    enum bounce_stage st)
{
	size_t i;

	for (i = 0; i < tx->tx_nrcpt; i++)
		if (skip == NULL || !skip[i])
			deliverd_smtp_set(tx, i, text, st);
}

static enum deliverd_smtp_status
deliverd_smtp_fail(struct deliverd_smtp *s, struct deliverd_tx *tx,
    const bool *done, const char *what, enum bounce_stage st)
{
	char r[SPOOL_REPLY_MAX];

	deliverd_smtp_lost(s, what, r, sizeof(r));
	deliverd_smtp_all(tx, done, r, st);
	deliverd_smtp_close(s, false);
	return DELIVERD_SMTP_GONE;
}

/* Sends what is in s_wbuf (with pipelining: everything) and reads the
 * MAIL and RCPT replies; final[i] marks recipients already answered. */
static enum deliverd_smtp_status
deliverd_smtp_envelope(struct deliverd_smtp *s, struct deliverd_tx *tx,
    bool *final, size_t *nok_r)
{
	size_t i;
	time_t tmo = s->s_cf->cf_command_timeout;

	*nok_r = 0;
	if (s->s_probe) {
		/* the reused connection's RSET: no reply of the transaction
		 * has been read yet, so a dead connection costs nothing */
		s->s_probe = false;
		if (deliverd_smtp_flush(s, tmo) == -1 ||
		    deliverd_smtp_read(s, tmo) == -1 ||
		    smtp_reply_class(&s->s_rp) != 2) {
			deliverd_smtp_close(s, false);
			return DELIVERD_SMTP_PROBE_FAILED;
		}
	}
	if (deliverd_smtp_flush(s, tmo) == -1 ||
	    deliverd_smtp_read(s, tmo) == -1)
		return deliverd_smtp_fail(s, tx, NULL, "MAIL FROM",
		    BOUNCE_ST_MAIL);
	if (smtp_reply_class(&s->s_rp) != 2) {
		/* Every recipient gets the sender's rejection. */
		deliverd_smtp_all(tx, NULL, s->s_rp.rp_text.data,
		    BOUNCE_ST_MAIL);
		for (i = 0; i < tx->tx_nrcpt; i++)
			final[i] = true;
		if (!s->s_pipelining)
			return DELIVERD_SMTP_DONE;
	}
	for (i = 0; i < tx->tx_nrcpt; i++) {
		if (!s->s_pipelining && !final[i]) {
			(void)buf_printf(&s->s_wbuf, "RCPT TO:<%s>\r\n",
			    tx->tx_rcpt[i]);
			if (deliverd_smtp_flush(s, tmo) == -1)
				return deliverd_smtp_fail(s, tx, final,
				    "RCPT TO", BOUNCE_ST_RCPT);
		} else if (!s->s_pipelining)
			continue;
		if (deliverd_smtp_read(s, tmo) == -1)
			return deliverd_smtp_fail(s, tx, final, "RCPT TO",
			    BOUNCE_ST_RCPT);
		if (final[i])
			continue;
		if (smtp_reply_class(&s->s_rp) == 2)
			(*nok_r)++;
		else {
			deliverd_smtp_set(tx, i, s->s_rp.rp_text.data,
			    BOUNCE_ST_RCPT);
			final[i] = true;
		}
	}
	return DELIVERD_SMTP_DONE;
}

/* DATA (already sent when pipelining), message, final reply. */
static enum deliverd_smtp_status
deliverd_smtp_body(struct deliverd_smtp *s, struct deliverd_tx *tx, bool *final,
    size_t nok)
{
	time_t tmo = s->s_cf->cf_command_timeout;

	if (s->s_pipelining) {
		if (deliverd_smtp_read(s, tmo) == -1)
			return deliverd_smtp_fail(s, tx, final, "DATA",
			    BOUNCE_ST_DATA);
		if (nok == 0 && smtp_reply_class(&s->s_rp) == 3)
			/* A server that starts DATA with no recipient: abandon. */
			return deliverd_smtp_fail(s, tx, final,
			    "DATA without recipients", BOUNCE_ST_DATA);
	} else if (nok > 0 && deliverd_smtp_cmd(s, "DATA", tmo) == -1)
		return deliverd_smtp_fail(s, tx, final, "DATA", BOUNCE_ST_DATA);
	if (nok == 0) {
		s->s_dirty = true;
		return DELIVERD_SMTP_DONE;
	}
	if (smtp_reply_class(&s->s_rp) != 3) {
		deliverd_smtp_all(tx, final, s->s_rp.rp_text.data,
		    BOUNCE_ST_DATA);
		s->s_dirty = true;
		return DELIVERD_SMTP_DONE;
	}
	if (deliverd_smtp_data(s, tx) == -1 ||
	    deliverd_smtp_read(s, s->s_cf->cf_data_timeout) == -1)
		return deliverd_smtp_fail(s, tx, final, "end of data",
		    BOUNCE_ST_DATA);
	deliverd_smtp_all(tx, final, s->s_rp.rp_text.data, BOUNCE_ST_DATA);
	return DELIVERD_SMTP_DONE;
}

enum deliverd_smtp_status
deliverd_smtp_send(struct deliverd_smtp *s, struct deliverd_tx *tx)
{
	enum deliverd_smtp_status rc;
	bool			 *final;
	size_t			  i, nok;
	int			  mrc;

	final = xcalloc(tx->tx_nrcpt + 1, sizeof(bool));
	buf_reset(&s->s_wbuf);
	if (s->s_probe)
		(void)buf_puts(&s->s_wbuf, "RSET\r\n");
	if ((mrc = deliverd_smtp_mail(s, tx)) != 0) {
		s->s_probe = false; /* nothing is sent this time */
		buf_reset(&s->s_wbuf);
		deliverd_smtp_all(tx, NULL,
		    mrc == 2 ? DELIVERD_REQUIRETLS_REPLY
			     : "553 5.6.7 The next hop does not support "
			       "SMTPUTF8, which this message needs",
		    BOUNCE_ST_MAIL);
		free(final);
		return DELIVERD_SMTP_DONE;
	}
	if (s->s_pipelining) {
		for (i = 0; i < tx->tx_nrcpt; i++)
			(void)buf_printf(&s->s_wbuf, "RCPT TO:<%s>\r\n",
			    tx->tx_rcpt[i]);
		(void)buf_puts(&s->s_wbuf, "DATA\r\n");
	}
	s->s_nmsgs++;
	rc = deliverd_smtp_envelope(s, tx, final, &nok);
	if (rc == DELIVERD_SMTP_PROBE_FAILED) {
		s->s_nmsgs--;
		free(final);
		return rc;
	}
	if (rc == DELIVERD_SMTP_DONE)
		rc = deliverd_smtp_body(s, tx, final, nok);
	free(final);
	return rc;
}
