/*
 * smtpd_session: one ESMTP session as a state machine over the session's
 * input buffer: replies, line framing, message content, timers and the
 * life cycle. The verbs are in smtpd_cmd.c, the message file in
 * smtpd_msg.c. No I/O here: the worker loop reads into ss_in, calls
 * smtpd_session_process(), and writes ss_out. Replies are queued in
 * order, so pipelined commands are answered in order.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "ownaddr.h"
#include "mailaddr.h"
#include "qid.h"
#include "smtp_cmd.h"
#include "smtpd.h"
#include "smtpd_limits.h"
#include "tls.h"
#include "xmem.h"

#define SMTPD_CHUNK 16384 /* decoder step: bounds the stack buffer */

/* ---- states */

const char *
smtpd_strstate(enum smtpd_state st)
{
	static const char *const names[] = {
		[SS_NEW] = "new",
		[SS_HANDSHAKE] = "handshake",
		[SS_CMD] = "cmd",
		[SS_AUTH] = "auth",
		[SS_DATA] = "data",
		[SS_BDAT] = "bdat",
		[SS_DELAY] = "delay",
		[SS_COMMIT] = "commit",
		[SS_STARTTLS] = "starttls",
		[SS_CLOSING] = "closing",
		[SS_DEAD] = "dead",
	};

	if ((size_t)st < sizeof(names) / sizeof(names[0]) && names[st] != NULL)
		return names[st];
	return "unknown";
}

void
smtpd_enter_state(struct smtpd_session *s, enum smtpd_state st)
{
	if (s->ss_state == st)
		return;
	log_debug("NOQUEUE: client=%s: state %s -> %s", s->ss_client,
	    smtpd_strstate(s->ss_state), smtpd_strstate(st));
	s->ss_state = st;
}

/* ---- replies */

void
smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
	va_list ap;
	size_t	at = s->ss_out.len;
	int	rc;

	va_start(ap, fmt);
	rc = buf_vprintf(&s->ss_out, fmt, ap);
	va_end(ap);
	if (rc == 0)
		metrics_smtp_reply(s->ss_out.data + at);
	if (rc == 0)
		rc = buf_append(&s->ss_out, "\r\n", 2);
	if (rc == -1) {
		/* The client does not read its replies: give up on it. */
		log_info("NOQUEUE: reply buffer full: client=%s", s->ss_client);
		smtpd_enter_state(s, SS_DEAD);
	}
}

const char *
smtpd_session_hostname(const struct smtpd_session *s)
{
	return s->ss_env->se_cf->cf_hostname;
}

void
smtpd_session_error(struct smtpd_session *s, const char *fmt, ...)
{
	va_list ap;
	char	line[512];

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	smtpd_reply(s, "%s", line);
	log_debug("NOQUEUE: client=%s: %s", s->ss_client, line);
	if (++s->ss_errors >= s->ss_env->se_cf->cf_smtpd_max_errors) {
		log_info("NOQUEUE: too many errors: client=%s, errors=%d",
		    s->ss_client, s->ss_errors);
		smtpd_session_shutdown(s, "421 4.7.0 Error: too many errors");
	}
}

void
smtpd_session_shutdown(struct smtpd_session *s, const char *reply)
{
	if (s->ss_state == SS_CLOSING || s->ss_state == SS_DEAD ||
	    s->ss_committing)
		return;
	smtpd_reply(s, "%s %s", reply, smtpd_session_hostname(s));
	if (s->ss_state != SS_DEAD)
		smtpd_enter_state(s, SS_CLOSING);
}

static bool
smtpd_line(struct smtpd_session *s)
{
	char   line[SMTPD_AUTH_LINE_MAX + 1];
	char  *lf;
	size_t limit, n;

	limit = s->ss_state == SS_AUTH ? SMTPD_AUTH_LINE_MAX
				       : SMTP_CMD_LINE_MAX;
	lf = s->ss_in.len ? memchr(s->ss_in.data, '\n', s->ss_in.len) : NULL;
	if (lf == NULL) {
		if (s->ss_skip_line)
			buf_reset(&s->ss_in);
		else if (s->ss_in.len >= limit) {
			buf_reset(&s->ss_in);
			s->ss_skip_line = true;
			goto toolong;
		}
		return false;
	}
	n = (size_t)(lf - s->ss_in.data);
	if (s->ss_skip_line) {
		buf_consume(&s->ss_in, n + 1);
		s->ss_skip_line = false;
		return true;
	}
	if (n + 1 > limit) {
		buf_consume(&s->ss_in, n + 1);
		goto toolong;
	}
	memcpy(line, s->ss_in.data, n);
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	buf_consume(&s->ss_in, (size_t)(lf - s->ss_in.data) + 1);
	smtpd_session_touch(s);
	if (s->ss_state == SS_AUTH)
		smtpd_cmd_auth_line(s, line);
	else
		smtpd_cmd_dispatch(s, line, n);
	explicit_bzero(line, n);
	return true;
toolong:
	if (s->ss_state == SS_AUTH) {
		smtpd_sasl_free(&s->ss_sasl);
		smtpd_enter_state(s, SS_CMD);
	}
	smtpd_session_error(s, "500 5.5.2 Error: line too long");
	return true;
}

/* DATA or BDAT content out of ss_in; false when more input is needed. */
static bool
smtpd_content(struct smtpd_session *s)
{
	char	 out[SMTPD_CHUNK + 2];
	size_t	 n, used, o;
	uint64_t lines = s->ss_dec.da_lines;

	if (s->ss_state == SS_BDAT && s->ss_bdat_left == 0) {
		smtpd_cmd_bdat_end(s);
		smtpd_session_touch(s);
		return true;
	}
	if (s->ss_in.len == 0)
		return false;
	n = s->ss_in.len < SMTPD_CHUNK ? s->ss_in.len : SMTPD_CHUNK;
	if (s->ss_state == SS_BDAT && n > s->ss_bdat_left)
		n = (size_t)s->ss_bdat_left;
	if (s->ss_state == SS_BDAT && s->ss_bdat_reject)
		used = n;
	else {
		used = smtpd_data_push(&s->ss_dec, s->ss_in.data, n, out, &o);
		smtpd_msg_write(s, out, o);
	}
	buf_consume(&s->ss_in, used);
	/* The deadline is per line: a trickled line cannot hold the session. */
	if (s->ss_dec.da_lines != lines)
		smtpd_session_touch(s);
	if (s->ss_state == SS_BDAT)
		s->ss_bdat_left -= used;
	else if (s->ss_dec.da_done)
		smtpd_msg_end(s);
	return true;
}

void
smtpd_session_process(struct smtpd_session *s)
{
	for (;;) {
		if (s->ss_out.len > SMTPD_OUT_HIGH)
			return;
		switch (s->ss_state) {
		case SS_CMD:
		case SS_AUTH:
			if (!smtpd_line(s))
				return;
			break;
		case SS_DATA:
		case SS_BDAT:
			if (!smtpd_content(s))
				return;
			break;
		default:
			return;
		}
	}
}

/* ---- life cycle */

void
smtpd_session_touch(struct smtpd_session *s)
{
	const struct conf *cf = s->ss_env->se_cf;
	time_t		   t;

	t = (s->ss_state == SS_DATA || s->ss_state == SS_BDAT)
	    ? cf->cf_smtpd_data_timeout
	    : cf->cf_smtpd_timeout;
	s->ss_touched = s->ss_env->se_now;
	s->ss_deadline = s->ss_env->se_now + (int64_t)t * 1000;
}

/* Under stress (most sessions of all workers busy) timeouts are short. */
static int64_t
smtpd_session_deadline(const struct smtpd_session *s, bool *stress_r)
{
	int64_t d = s->ss_deadline, sd;

	*stress_r = false;
	if (smtpd_limits_stress(s->ss_env->se_limits)) {
		sd = s->ss_touched +
		    (int64_t)s->ss_env->se_cf->cf_smtpd_stress_timeout * 1000;
		if (sd < d) {
			d = sd;
			*stress_r = true;
		}
	}
	return d;
}

/*
 * smtpd_session_timeout: a session that old is closed once it is between
 * transactions; one still in a transaction smtpd_timeout later is closed
 * anyway. 421 lets the client reconnect; nothing acknowledged is lost.
 */
static void
smtpd_session_lifetime(struct smtpd_session *s)
{
	const struct conf *cf = s->ss_env->se_cf;
	int64_t		   age = s->ss_env->se_now - s->ss_started;
	int64_t		   life = (int64_t)cf->cf_smtpd_session_timeout * 1000;

	if (age < life || s->ss_state == SS_CLOSING || s->ss_state == SS_DEAD ||
	    s->ss_committing)
		return;
	if (!smtpd_session_idle(s) &&
	    age < life + (int64_t)cf->cf_smtpd_timeout * 1000)
		return;
	log_info("NOQUEUE: lifetime exceeded: client=%s, seconds=%lld, "
		 "idle=%s",
	    s->ss_client, (long long)(age / 1000),
	    smtpd_session_idle(s) ? "yes" : "no");
	if (s->ss_state == SS_HANDSHAKE)
		smtpd_enter_state(s, SS_DEAD);
	else
		smtpd_session_shutdown(s,
		    "421 4.4.2 Error: session lifetime exceeded");
	s->ss_deadline = s->ss_env->se_now + 5000;
}

bool
smtpd_session_idle(const struct smtpd_session *s)
{
	return s->ss_state == SS_CMD && !s->ss_mail && s->ss_in.len == 0 &&
	    s->ss_out.len == 0;
}

void
smtpd_session_timer(struct smtpd_session *s)
{
	int64_t now = s->ss_env->se_now;
	bool	stress;

	if (s->ss_state == SS_DELAY && now >= s->ss_wake) {
		smtpd_enter_state(s, SS_CMD);
		smtpd_session_error(s,
		    "535 5.7.8 Error: authentication failed");
		if (s->ss_auth_failures >=
		    s->ss_env->se_cf->cf_smtpd_auth_max_failures) {
			log_info("NOQUEUE: too many auth failures: client=%s",
			    s->ss_client);
			smtpd_session_shutdown(s,
			    "421 4.7.0 Error: too many authentication "
			    "failures");
		}
		smtpd_session_touch(s);
		smtpd_session_process(s);
		return;
	}
	if (s->ss_state != SS_DELAY && s->ss_state != SS_CLOSING &&
	    s->ss_state != SS_DEAD && !s->ss_committing &&
	    now >= smtpd_session_deadline(s, &stress)) {
		log_info("NOQUEUE: timeout: client=%s, state=%s%s",
		    s->ss_client, smtpd_strstate(s->ss_state),
		    stress ? ", stress=yes" : "");
		if (s->ss_state == SS_HANDSHAKE)
			smtpd_enter_state(s, SS_DEAD);
		else
			smtpd_session_shutdown(s,
			    "421 4.4.2 Error: timeout exceeded");
		/* A client that reads nothing cannot hold the slot either. */
		s->ss_deadline = now + 5000;
	} else if ((s->ss_state == SS_CLOSING) && now >= s->ss_deadline)
		smtpd_enter_state(s, SS_DEAD);
	else
		smtpd_session_lifetime(s);
}

static void
smtpd_greet(struct smtpd_session *s)
{
	metrics_inc(mb_smtpd_sessions[0]);
	smtpd_reply(s, "220 %s ESMTP smtpgate", smtpd_session_hostname(s));
}

/* The gateway's own addresses (issue 14), loaded once per worker. */
static const struct ownaddr *
smtpd_own(const struct smtpd_env *env)
{
	static struct ownaddr own;
	static bool	      loaded;
	char		      err[256];

	if (!loaded) {
		loaded = true;
		if (ownaddr_load(&own, env->se_cf->cf_listen,
			env->se_cf->cf_nlisten, err, sizeof(err)) == -1)
			log_warnx(
			    "own addresses: %s (only the listen addresses "
			    "are known)",
			    err);
	}
	return &own;
}

/* IP-pinned accounts (CONTRACT): the client address is the credential;
 * the lka answers. Unanswered (lka down), the session is not pinned. */
static void
smtpd_pin(struct smtpd_session *s)
{
	int rc;

	if (!ownaddr_pin_ok(smtpd_own(s->ss_env), s->ss_addr)) {
		/* the gateway talking to itself: never an account's credential */
		log_info(
		    "NOQUEUE: no IP pinning: client=%s is one of this host's "
		    "own addresses",
		    s->ss_client);
		return;
	}
	rc = smtpd_lka_pin(s->ss_env, s->ss_fd, s->ss_addr, s->ss_account,
	    s->ss_tag);
	if (rc == 0)
		s->ss_authed = true;
	else {
		s->ss_account[0] = s->ss_tag[0] = '\0';
		if (rc == -1)
			log_warnx("NOQUEUE: client=%s: pinned-address lookup "
				  "unavailable",
			    s->ss_client);
	}
}

struct smtpd_session *
smtpd_session_new(struct smtpd_env *env, int fd, const struct smtpd_listener *l,
    const char *addr, const char *port)
{
	struct smtpd_session *s;

	s = xcalloc(1, sizeof(*s));
	s->ss_env = env;
	s->ss_fd = fd;
	s->ss_listener = l;
	s->ss_started = env->se_now;
	buf_init(&s->ss_in, SMTPD_INBUF_MAX);
	buf_init(&s->ss_out, SMTPD_OUTBUF_MAX);
	spool_env_init(&s->ss_envl);
	(void)str_copy(s->ss_addr, sizeof(s->ss_addr), addr);
	(void)str_copy(s->ss_port, sizeof(s->ss_port), port);
	(void)snprintf(s->ss_client, sizeof(s->ss_client), "[%s]:%s", addr,
	    port);
	smtpd_pin(s);
	/* One line per connection; "account=" names an IP-pinned account. */
	log_info("NOQUEUE: connect: client=%s, listener=%s%s%s", s->ss_client,
	    l->sl_name, s->ss_authed ? ", account=" : "", s->ss_account);
	if (l->sl_tls == CONF_TLS_IMPLICIT)
		smtpd_session_start_tls(s);
	else {
		smtpd_enter_state(s, SS_CMD);
		smtpd_greet(s);
	}
	smtpd_session_touch(s);
	return s;
}

void
smtpd_session_start_tls(struct smtpd_session *s)
{
	if ((s->ss_tls = tls_server_conn_new(s->ss_env->se_tls, s->ss_fd)) ==
	    NULL) {
		log_warnx("NOQUEUE: TLS setup failed: client=%s", s->ss_client);
		smtpd_enter_state(s, SS_DEAD);
		return;
	}
	/* RFC 3207 4.2: forget everything learnt before the handshake. */
	smtpd_msg_reset(s);
	s->ss_helo[0] = '\0';
	s->ss_esmtp = false;
	if (s->ss_sasl_user[0] != '\0') {
		s->ss_sasl_user[0] = '\0';
		s->ss_authed = false;
		s->ss_account[0] = s->ss_tag[0] = '\0';
	}
	smtpd_enter_state(s, SS_HANDSHAKE);
	smtpd_session_touch(s);
}

void
smtpd_session_tls_ready(struct smtpd_session *s)
{
	tls_info_str(s->ss_tls, s->ss_tlsinfo, sizeof(s->ss_tlsinfo));
	log_info("NOQUEUE: tls: client=%s, %s", s->ss_client, s->ss_tlsinfo);
	metrics_inc(mb_smtpd_sessions_tls);
	smtpd_enter_state(s, SS_CMD);
	if (s->ss_listener->sl_tls == CONF_TLS_IMPLICIT)
		smtpd_greet(s);
	smtpd_session_touch(s);
}

void
smtpd_session_free(struct smtpd_session **sp)
{
	struct smtpd_session *s;
	char		      helo[LOG_VIS_MAX];

	if (sp == NULL || (s = *sp) == NULL)
		return;
	log_info("NOQUEUE: disconnect: client=%s, helo=%s, account=%s, "
		 "sasl_username=%s, tls=%s, msgs=%u, commands=%u, errors=%d, "
		 "seconds=%.1f",
	    s->ss_client,
	    log_vis(helo, sizeof(helo), s->ss_helo, strlen(s->ss_helo)),
	    s->ss_account, s->ss_sasl_user,
	    s->ss_tlsinfo[0] ? s->ss_tlsinfo : "none", s->ss_nmsgs, s->ss_ncmds,
	    s->ss_errors, (double)(s->ss_env->se_now - s->ss_started) / 1000.0);
	smtpd_msg_reset(s);
	spool_env_free(&s->ss_envl);
	smtpd_sasl_free(&s->ss_sasl);
	tls_conn_free(&s->ss_tls);
	buf_release(&s->ss_in);
	buf_release(&s->ss_out);
	free(s);
	*sp = NULL;
}
