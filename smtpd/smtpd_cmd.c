/*
 * smtpd_cmd: the SMTP verbs (RFC 5321, 2920 PIPELINING, 3030 CHUNKING,
 * 3207 STARTTLS, 4954 AUTH, 6531 SMTPUTF8, 8689 REQUIRETLS) as one table
 * with a handler each (STYLE R4). The table says in which phase of the session each verb
 * is allowed and what it answers otherwise (the 503s, in one place, as
 * OpenSMTPD's commands[] table); the handlers check the rest (TLS,
 * authentication, syntax), then act.
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
#include "mailaddr.h"
#include "qid.h"
#include "smtp_cmd.h"
#include "smtpd.h"
#include "tls.h"
#include "xmem.h"

/*
 * Where a session in SS_CMD stands in the dialogue, from what it was told:
 * derived, never stored, so it cannot disagree with ss_helo, ss_mail and
 * ss_bdat_active (STARTTLS and HELO/EHLO reset those, smtpd_msg_reset()
 * ends a transaction).
 */
enum smtpd_phase {
	SP_GREETED, /* no HELO/EHLO yet (or since STARTTLS) */
	SP_HELO,    /* between transactions */
	SP_MAIL,    /* MAIL given, no BDAT chunk yet */
	SP_BDAT,    /* between the chunks of a BDAT transfer */
	SP_COUNT
};

#define SV_ONCE 0x01 /* refused once SASL authenticated */

#define E_HELO	   "503 5.5.1 Error: send HELO/EHLO first"
#define E_NESTED   "503 5.5.1 Error: nested MAIL command"
#define E_NEEDMAIL "503 5.5.1 Error: need MAIL command"
#define E_INBDAT   "503 5.5.1 Error: BDAT transfer in progress"
#define E_INMAIL   "503 5.5.1 Error: MAIL transaction in progress"

struct smtpd_verb {
	enum smtp_verb verb;
	void (*fn)(struct smtpd_session *, const char *arg, size_t len);
	/* per phase: NULL where the verb is allowed, else the reply */
	const char *refuse[SP_COUNT];
	unsigned    flags;
};

static void smtpd_do_helo(struct smtpd_session *, const char *, size_t);
static void smtpd_do_ehlo(struct smtpd_session *, const char *, size_t);
static void smtpd_do_mail(struct smtpd_session *, const char *, size_t);
static void smtpd_do_rcpt(struct smtpd_session *, const char *, size_t);
static void smtpd_do_data(struct smtpd_session *, const char *, size_t);
static void smtpd_do_bdat(struct smtpd_session *, const char *, size_t);
static void smtpd_do_rset(struct smtpd_session *, const char *, size_t);
static void smtpd_do_noop(struct smtpd_session *, const char *, size_t);
static void smtpd_do_quit(struct smtpd_session *, const char *, size_t);
static void smtpd_do_vrfy(struct smtpd_session *, const char *, size_t);
static void smtpd_do_help(struct smtpd_session *, const char *, size_t);
static void smtpd_do_starttls(struct smtpd_session *, const char *, size_t);
static void smtpd_do_auth(struct smtpd_session *, const char *, size_t);
static void smtpd_do_notimpl(struct smtpd_session *, const char *, size_t);
static void smtpd_do_http(struct smtpd_session *, const char *, size_t);

/* clang-format off */
/*
 * The verb table (STYLE R4). BDAT has no refusals here: RFC 3030 3 wants
 * the chunk read and discarded, so its handler defers the reply.
 *	verb		handler		greeted	  helo	    mail      bdat
 */
static const struct smtpd_verb smtpd_verbs[] = {
	{ SMTP_V_HELO,	smtpd_do_helo,	{ NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_EHLO,	smtpd_do_ehlo,	{ NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_MAIL,	smtpd_do_mail,	{ E_HELO, NULL, E_NESTED, E_NESTED }, 0 },
	{ SMTP_V_RCPT,	smtpd_do_rcpt,	{ E_NEEDMAIL, E_NEEDMAIL, NULL, NULL }, 0 },
	{ SMTP_V_DATA,	smtpd_do_data,	{ E_NEEDMAIL, E_NEEDMAIL, NULL, E_INBDAT }, 0 },
	{ SMTP_V_BDAT,	smtpd_do_bdat,	{ NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_RSET,	smtpd_do_rset,	{ NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_NOOP,	smtpd_do_noop,	{ NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_QUIT,	smtpd_do_quit,	{ NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_VRFY,	smtpd_do_vrfy,	{ NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_EXPN,	smtpd_do_notimpl, { NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_HELP,	smtpd_do_help,	{ NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_STARTTLS, smtpd_do_starttls, { NULL, NULL, NULL, NULL }, 0 },
	/* SV_ONCE first: a SASL user has given HELO/EHLO since STARTTLS */
	{ SMTP_V_AUTH,	smtpd_do_auth,	{ E_HELO, NULL, E_INMAIL, E_INMAIL },
	    SV_ONCE },
	{ SMTP_V_ETRN,	smtpd_do_notimpl, { NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_TURN,	smtpd_do_notimpl, { NULL, NULL, NULL, NULL }, 0 },
	{ SMTP_V_HTTP,	smtpd_do_http,	{ NULL, NULL, NULL, NULL }, 0 },
};
/* clang-format on */

static const char *const smtpd_phase_names[SP_COUNT] = {
	[SP_GREETED] = "greeted",
	[SP_HELO] = "helo",
	[SP_MAIL] = "mail",
	[SP_BDAT] = "bdat",
};

static enum smtpd_phase
smtpd_phase(const struct smtpd_session *s)
{
	if (s->ss_helo[0] == '\0')
		return SP_GREETED;
	if (s->ss_bdat_active)
		return SP_BDAT;
	return s->ss_mail ? SP_MAIL : SP_HELO;
}

/* The table's checks; false after refusing the command. */
static bool
smtpd_verb_allowed(struct smtpd_session *s, const struct smtpd_verb *v)
{
	enum smtpd_phase ph = smtpd_phase(s);

	if ((v->flags & SV_ONCE) && s->ss_sasl_user[0] != '\0') {
		smtpd_session_error(s,
		    "503 5.5.1 Error: already authenticated");
		return false;
	}
	if (v->refuse[ph] == NULL)
		return true;
	log_debug("NOQUEUE: client=%s: %s refused in phase %s", s->ss_client,
	    smtp_verb_name(v->verb), smtpd_phase_names[ph]);
	smtpd_session_error(s, "%s", v->refuse[ph]);
	return false;
}

/* ---- commands */

static bool
smtpd_auth_allowed(const struct smtpd_session *s)
{
	if (s->ss_tls != NULL)
		return true;
	return s->ss_listener->sl_tls == CONF_TLS_STARTTLS &&
	    s->ss_env->se_cf->cf_auth_plaintext;
}

static bool
smtpd_starttls_offered(const struct smtpd_session *s)
{
	return s->ss_tls == NULL && s->ss_env->se_tls != NULL &&
	    (s->ss_listener->sl_tls == CONF_TLS_STARTTLS ||
		s->ss_listener->sl_tls == CONF_TLS_REQUIRED);
}

static void
smtpd_set_helo(struct smtpd_session *s, const char *arg, size_t len, bool esmtp)
{
	smtpd_msg_reset(s);
	if (len >= sizeof(s->ss_helo))
		len = sizeof(s->ss_helo) - 1;
	memcpy(s->ss_helo, arg, len);
	s->ss_helo[len] = '\0';
	s->ss_esmtp = esmtp;
}

static void
smtpd_do_helo(struct smtpd_session *s, const char *arg, size_t len)
{
	smtpd_set_helo(s, arg, len, false);
	smtpd_reply(s, "250 %s", smtpd_session_hostname(s));
}

static void
smtpd_do_ehlo(struct smtpd_session *s, const char *arg, size_t len)
{
	const struct conf *cf = s->ss_env->se_cf;

	smtpd_set_helo(s, arg, len, true);
	smtpd_reply(s, "250-%s", smtpd_session_hostname(s));
	smtpd_reply(s, "250-PIPELINING");
	smtpd_reply(s, "250-SIZE %" PRId64, cf->cf_max_message_size);
	if (smtpd_starttls_offered(s))
		smtpd_reply(s, "250-STARTTLS");
	if (smtpd_auth_allowed(s))
		smtpd_reply(s, "250-AUTH PLAIN LOGIN");
	smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
	smtpd_reply(s, "250-8BITMIME");
	smtpd_reply(s, "250-SMTPUTF8");
	if (s->ss_tls != NULL) /* RFC 8689 sec. 2: only inside TLS */
		smtpd_reply(s, "250-REQUIRETLS");
	smtpd_reply(s, "250 CHUNKING");
}

/* Checks MAIL parameters; 0, or -1 after replying. */
static int
smtpd_mail_params(struct smtpd_session *s, const char *p)
{
	struct mailaddr_param mp;
	size_t		      pos = 0;
	uint64_t	      v;
	size_t		      i;

	while (mailaddr_param_next(p, strlen(p), &pos, &mp) == 1) {
		if (mailaddr_param_is(&mp, "SIZE")) {
			v = 0;
			for (i = 0; i < mp.vlen && i < 20; i++) {
				if (mp.value[i] < '0' || mp.value[i] > '9')
					break;
				v = v * 10 + (uint64_t)(mp.value[i] - '0');
			}
			if (mp.vlen == 0 || i != mp.vlen) {
				smtpd_session_error(s,
				    "501 5.5.4 Bad SIZE parameter");
				return -1;
			}
			if (v >
			    (uint64_t)s->ss_env->se_cf->cf_max_message_size) {
				smtpd_session_error(s,
				    "552 5.3.4 Message size exceeds fixed "
				    "limit");
				return -1;
			}
		} else if (mailaddr_param_is(&mp, "BODY")) {
			if (mp.value == NULL ||
			    (!(mp.vlen == 4 &&
				 strncasecmp(mp.value, "7BIT", 4) == 0) &&
				!(mp.vlen == 8 &&
				    strncasecmp(mp.value, "8BITMIME", 8) ==
					0))) {
				smtpd_session_error(s,
				    "501 5.5.4 Unsupported BODY parameter");
				return -1;
			}
		} else if (mailaddr_param_is(&mp, "SMTPUTF8") &&
		    mp.value == NULL) {
			s->ss_smtputf8 = true;
		} else if (mailaddr_param_is(&mp, "REQUIRETLS") &&
		    mp.value == NULL) {
			/* RFC 8689 sec. 4.1: valid only in a TLS session; it
			 * stays in from_params, which deliverd obeys */
			if (s->ss_tls == NULL) {
				log_info("NOQUEUE: reject: MAIL from %s: "
					 "530 5.7.10 REQUIRETLS needs a TLS "
					 "session",
				    s->ss_client);
				smtpd_session_error(s,
				    "530 5.7.10 REQUIRETLS needs a TLS "
				    "session");
				return -1;
			}
			s->ss_requiretls = true;
		} else if (mailaddr_param_is(&mp, "AUTH") && mp.value != NULL) {
			/* RFC 4954 5: accepted and not used. */
		} else {
			smtpd_session_error(s,
			    "555 5.5.4 Unsupported option: %.*s",
			    (int)(mp.klen > 64 ? 64 : mp.klen), mp.key);
			return -1;
		}
	}
	return 0;
}

static void
smtpd_do_mail(struct smtpd_session *s, const char *arg, size_t len)
{
	char addr[MAILADDR_PATH_MAX], params[SMTP_CMD_LINE_MAX];

	if (s->ss_listener->sl_tls == CONF_TLS_REQUIRED && s->ss_tls == NULL) {
		smtpd_session_error(s,
		    "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	/* without complaints_address nothing is accepted unauthenticated */
	if (!s->ss_authed && s->ss_env->se_cf->cf_complaints_address.n == 0) {
		log_info(
		    "NOQUEUE: reject: MAIL from %s: 530 5.7.0 Authentication "
		    "required",
		    s->ss_client);
		smtpd_session_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (mailaddr_parse_path(arg, len,
		MAILADDR_NULL_OK | MAILADDR_UTF8 | MAILADDR_NOBRACKET_OK, addr,
		sizeof(addr), params, sizeof(params)) != MAILADDR_OK) {
		smtpd_session_error(s, "501 5.1.7 Bad sender address syntax");
		return;
	}
	smtpd_msg_reset(s);
	if (smtpd_mail_params(s, params) == -1 || !smtpd_space_ok(s, "MAIL"))
		return;
	if (str_copy(s->ss_envl.pe_from, sizeof(s->ss_envl.pe_from), addr) ==
		-1 ||
	    str_copy(s->ss_envl.pe_from_params,
		sizeof(s->ss_envl.pe_from_params), params) == -1) {
		smtpd_session_error(s, "501 5.1.7 Bad sender address syntax");
		return;
	}
	s->ss_mail = true;
	smtpd_reply(s, "250 2.1.0 Ok");
}

/* One of complaints_address (feedback-loop reports, issue 16)? */
static bool
smtpd_complaints_rcpt(const struct smtpd_session *s, const char *addr)
{
	const struct conf_list *l = &s->ss_env->se_cf->cf_complaints_address;
	size_t			i;

	for (i = 0; i < l->n; i++)
		if (str_ieq(l->v[i], addr))
			return true;
	return false;
}

static bool
smtpd_blackholed(const struct smtpd_session *s, const char *addr)
{
	const struct conf_list *l = &s->ss_env->se_cf->cf_blackhole_recipients;
	size_t			i;

	for (i = 0; i < l->n; i++)
		if (str_ieq(l->v[i], addr))
			return true;
	return false;
}

static void
smtpd_do_rcpt(struct smtpd_session *s, const char *arg, size_t len)
{
	char addr[MAILADDR_PATH_MAX], params[SMTP_CMD_LINE_MAX];

	if (mailaddr_parse_path(arg, len, MAILADDR_UTF8 | MAILADDR_NOBRACKET_OK,
		addr, sizeof(addr), params, sizeof(params)) != MAILADDR_OK) {
		smtpd_session_error(s,
		    "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (params[0] != '\0') {
		smtpd_session_error(s, "555 5.5.4 Unsupported option: %.64s",
		    params);
		return;
	}
	/*
	 * No local delivery: a recipient without a domain (<postmaster>) could
	 * only wait in the queue for a DNS lookup of nothing until it expired.
	 * Refused as Postfix's reject_non_fqdn_recipient does.
	 */
	if (strchr(addr, '@') == NULL) {
		smtpd_session_error(s,
		    "504 5.5.2 Recipient address rejected: "
		    "need fully-qualified address");
		return;
	}
	/*
	 * An unauthenticated client (let past MAIL only because
	 * complaints_address is set) may send to those addresses only: spoold
	 * parses such mail as feedback reports and never delivers it.
	 */
	if (!s->ss_authed && !smtpd_complaints_rcpt(s, addr)) {
		log_info(
		    "NOQUEUE: reject: RCPT from %s: 530 5.7.0 Authentication "
		    "required",
		    s->ss_client);
		smtpd_session_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (s->ss_nrcpt_all >= (unsigned)s->ss_env->se_cf->cf_max_recipients) {
		/* Not counted as an error: pipelining clients send many. */
		smtpd_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (!smtpd_blackholed(s, addr) &&
	    spool_env_add_rcpt(&s->ss_envl, addr) != 0) {
		smtpd_session_error(s,
		    "501 5.1.3 Bad recipient address syntax");
		return;
	}
	s->ss_nrcpt_all++;
	smtpd_reply(s, "250 2.1.5 Ok");
}

/* Common checks before message content; 0 ok, -1 after replying. */
static int
smtpd_content_check(struct smtpd_session *s, char *why, size_t whysz)
{
	if (!s->ss_mail)
		(void)str_copy(why, whysz, E_NEEDMAIL);
	else if (s->ss_nrcpt_all == 0)
		(void)str_copy(why, whysz,
		    "554 5.5.1 Error: no valid recipients");
	else
		return 0;
	return -1;
}

static void
smtpd_do_data(struct smtpd_session *s, const char *arg, size_t len)
{
	const struct conf *cf = s->ss_env->se_cf;
	char		   why[128];

	(void)arg;
	(void)len;
	if (smtpd_content_check(s, why, sizeof(why)) == -1) {
		smtpd_session_error(s, "%s", why);
		return;
	}
	if (smtpd_msg_open(s) == -1) {
		smtpd_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	smtpd_data_init(&s->ss_dec, SMTPD_DATA_DOT,
	    (size_t)cf->cf_smtpd_max_line, (uint64_t)cf->cf_max_message_size);
	smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtpd_enter_state(s, SS_DATA);
	smtpd_session_touch(s);
}

/* "n" or "n LAST"; -1 on bad syntax. */
static int
smtpd_bdat_args(const char *arg, size_t len, uint64_t *n_r, bool *last_r)
{
	size_t	 i = 0;
	uint64_t n = 0;

	for (; i < len && arg[i] >= '0' && arg[i] <= '9'; i++) {
		if (i >= 18)
			return -1;
		n = n * 10 + (uint64_t)(arg[i] - '0');
	}
	if (i == 0)
		return -1;
	*n_r = n;
	*last_r = false;
	while (i < len && arg[i] == ' ')
		i++;
	if (i == len)
		return 0;
	if (len - i == 4 && strncasecmp(arg + i, "LAST", 4) == 0) {
		*last_r = true;
		return 0;
	}
	return -1;
}

static void
smtpd_bdat_begin_chunk(struct smtpd_session *s, uint64_t n, bool last)
{
	s->ss_bdat_left = n;
	s->ss_bdat_octets += n;
	s->ss_bdat_last = last;
	smtpd_enter_state(s, SS_BDAT);
	smtpd_session_touch(s);
}

static void
smtpd_do_bdat(struct smtpd_session *s, const char *arg, size_t len)
{
	const struct conf *cf = s->ss_env->se_cf;
	uint64_t	   n;
	bool		   last;
	char		   why[128];

	if (smtpd_bdat_args(arg, len, &n, &last) == -1) {
		smtpd_session_error(s, "501 5.5.4 Syntax: BDAT count [LAST]");
		return;
	}
	s->ss_bdat_reject = false;
	if (smtpd_content_check(s, why, sizeof(why)) == -1) {
		/* RFC 3030 3: the chunk is read and discarded anyway. */
		s->ss_bdat_reject = true;
		(void)str_copy(s->ss_bdat_reply, sizeof(s->ss_bdat_reply), why);
	} else if (!s->ss_bdat_active) {
		if (smtpd_msg_open(s) == -1) {
			s->ss_bdat_reject = true;
			(void)str_copy(s->ss_bdat_reply,
			    sizeof(s->ss_bdat_reply),
			    "452 4.3.1 Insufficient system storage");
		} else {
			smtpd_data_init(&s->ss_dec, SMTPD_DATA_BDAT,
			    (size_t)cf->cf_smtpd_max_line,
			    (uint64_t)cf->cf_max_message_size);
			s->ss_bdat_active = true;
		}
	}
	smtpd_bdat_begin_chunk(s, n, last);
}

void
smtpd_cmd_bdat_end(struct smtpd_session *s)
{
	char   out[4];
	size_t o;

	if (s->ss_bdat_reject) {
		smtpd_enter_state(s, SS_CMD);
		s->ss_bdat_reject = false;
		if (s->ss_bdat_reply[0] == '4' && s->ss_mail)
			smtpd_msg_reset(s);
		smtpd_session_error(s, "%s", s->ss_bdat_reply);
		return;
	}
	if (!s->ss_bdat_last) {
		smtpd_enter_state(s, SS_CMD);
		/* octets the client sent: the decoder may still hold back
		 * a CR that ends this chunk until the next one arrives */
		smtpd_reply(s, "250 2.0.0 Ok: %" PRIu64 " octets received",
		    s->ss_bdat_octets);
		return;
	}
	smtpd_data_finish(&s->ss_dec, out, &o);
	smtpd_msg_write(s, out, o);
	smtpd_msg_end(s);
}

static void
smtpd_do_rset(struct smtpd_session *s, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	smtpd_msg_reset(s);
	smtpd_reply(s, "250 2.0.0 Ok");
}

static void
smtpd_do_noop(struct smtpd_session *s, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	smtpd_reply(s, "250 2.0.0 Ok");
}

static void
smtpd_do_quit(struct smtpd_session *s, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	smtpd_reply(s, "221 2.0.0 Bye");
	smtpd_enter_state(s, SS_CLOSING);
}

static void
smtpd_do_vrfy(struct smtpd_session *s, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	smtpd_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message");
}

static void
smtpd_do_help(struct smtpd_session *s, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	smtpd_reply(s, "214 2.0.0 See RFC 5321; man smtpd(8)");
}

static void
smtpd_do_notimpl(struct smtpd_session *s, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	smtpd_session_error(s, "502 5.5.1 Error: command not implemented");
}

static void
smtpd_do_http(struct smtpd_session *s, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	log_info("NOQUEUE: reject: HTTP request from %s", s->ss_client);
	smtpd_session_shutdown(s, "421 4.7.0 Error: this is an SMTP server");
}

static void
smtpd_do_starttls(struct smtpd_session *s, const char *arg, size_t len)
{
	(void)arg;
	(void)len;
	if (s->ss_tls != NULL) {
		smtpd_session_error(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if (!smtpd_starttls_offered(s)) {
		smtpd_session_error(s,
		    "502 5.5.1 Error: command not implemented");
		return;
	}
	smtpd_reply(s, "220 2.0.0 Ready to start TLS");
	/*
	 * CVE-2011-0411 class: whatever the client pipelined after STARTTLS
	 * was sent in clear and must not be read as if it came over TLS.
	 */
	buf_reset(&s->ss_in);
	s->ss_skip_line = false;
	smtpd_enter_state(s, SS_STARTTLS);
}

/* ---- AUTH */

/* libsasl2's password check: the lka answers; its login and tag are kept. */
static int
smtpd_check_pass(const char *user, const char *pass, size_t passlen, void *arg)
{
	struct smtpd_session *s = arg;
	char		      login[SPOOL_LOGIN_MAX], tag[SPOOL_TAG_HEX];
	int		      rc;

	rc = smtpd_lka_auth(s->ss_env, user, pass, passlen, login, tag);
	if (rc == 0) {
		(void)str_copy(s->ss_account, sizeof(s->ss_account), login);
		(void)str_copy(s->ss_tag, sizeof(s->ss_tag), tag);
	}
	return rc;
}

static void
smtpd_auth_done(struct smtpd_session *s, enum smtpd_sasl_rc rc,
    struct buf *chal)
{
	const struct conf *cf = s->ss_env->se_cf;

	switch (rc) {
	case SMTPD_SASL_OK:
		(void)str_copy(s->ss_sasl_user, sizeof(s->ss_sasl_user),
		    smtpd_sasl_user(s->ss_sasl));
		/* ss_account and ss_tag: the lka's answer (smtpd_check_pass) */
		s->ss_authed = true;
		smtpd_enter_state(s, SS_CMD);
		smtpd_sasl_free(&s->ss_sasl);
		log_info("NOQUEUE: auth: client=%s, sasl_username=%s",
		    s->ss_client, s->ss_sasl_user);
		smtpd_reply(s, "235 2.7.0 Authentication successful");
		return;
	case SMTPD_SASL_CONTINUE:
		smtpd_enter_state(s, SS_AUTH);
		smtpd_reply(s, "334 %s", chal->data ? chal->data : "");
		return;
	case SMTPD_SASL_BADMECH:
		smtpd_enter_state(s, SS_CMD);
		smtpd_sasl_free(&s->ss_sasl);
		smtpd_session_error(s,
		    "504 5.5.4 Unrecognized authentication type");
		return;
	case SMTPD_SASL_BADPROT:
		smtpd_enter_state(s, SS_CMD);
		smtpd_sasl_free(&s->ss_sasl);
		smtpd_session_error(s, "501 5.5.2 Cannot decode response");
		return;
	case SMTPD_SASL_TEMP:
		smtpd_enter_state(s, SS_CMD);
		smtpd_sasl_free(&s->ss_sasl);
		log_info("NOQUEUE: auth: client=%s: lookup process unavailable",
		    s->ss_client);
		smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	case SMTPD_SASL_FAIL:
	default:
		break;
	}
	/* Slow down guessing without blocking other sessions: a timer. */
	smtpd_sasl_free(&s->ss_sasl);
	s->ss_auth_failures++;
	log_info("NOQUEUE: auth failed: client=%s, failures=%d", s->ss_client,
	    s->ss_auth_failures);
	smtpd_enter_state(s, SS_DELAY);
	s->ss_wake = s->ss_env->se_now + SMTPD_AUTH_DELAY_MS;
	(void)cf;
}

static void
smtpd_do_auth(struct smtpd_session *s, const char *arg, size_t len)
{
	char		   mech[32], initial[SMTP_CMD_LINE_MAX];
	const char	  *sp;
	struct buf	   chal;
	enum smtpd_sasl_rc rc;
	size_t		   mlen;

	if (!smtpd_auth_allowed(s)) {
		if (smtpd_starttls_offered(s)) {
			smtpd_session_error(s,
			    "530 5.7.0 Must issue a STARTTLS command first");
			return;
		}
		smtpd_session_error(s,
		    "503 5.5.1 Error: authentication not enabled");
		return;
	}
	sp = memchr(arg, ' ', len);
	mlen = sp ? (size_t)(sp - arg) : len;
	if (mlen == 0 || mlen >= sizeof(mech)) {
		smtpd_session_error(s,
		    "504 5.5.4 Unrecognized authentication type");
		return;
	}
	memcpy(mech, arg, mlen);
	mech[mlen] = '\0';
	initial[0] = '\0';
	if (sp != NULL)
		(void)str_ncopy(initial, sizeof(initial), sp + 1,
		    len - mlen - 1 < sizeof(initial) ? len - mlen - 1 : 0);
	if (s->ss_sasl == NULL &&
	    (s->ss_sasl = smtpd_sasl_new(smtpd_session_hostname(s),
		 smtpd_check_pass, s)) == NULL) {
		smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	buf_init(&chal, 8192);
	rc = smtpd_sasl_start(s->ss_sasl, mech, sp ? initial : NULL, &chal);
	explicit_bzero(initial, sizeof(initial));
	smtpd_auth_done(s, rc, &chal);
	buf_release(&chal);
}

void
smtpd_cmd_auth_line(struct smtpd_session *s, const char *line)
{
	struct buf	   chal;
	enum smtpd_sasl_rc rc;

	if (strcmp(line, "*") == 0) {
		smtpd_sasl_free(&s->ss_sasl);
		smtpd_enter_state(s, SS_CMD);
		smtpd_session_error(s, "501 5.7.0 Authentication aborted");
		return;
	}
	buf_init(&chal, 8192);
	rc = smtpd_sasl_step(s->ss_sasl, line, &chal);
	smtpd_auth_done(s, rc, &chal);
	buf_release(&chal);
}

/* ---- input */

/*
 * smtpd_junk_command_limit (Postfix's name): commands that carry no mail
 * (NOOP, RSET, HELO, EHLO, VRFY, HELP, unknown ones...) since the last
 * accepted message. Past the limit: 421 and close; true if so.
 */
static bool
smtpd_cmd_junk(struct smtpd_session *s, enum smtp_verb verb, bool parsed)
{
	if (parsed)
		switch (verb) {
		case SMTP_V_MAIL:
		case SMTP_V_RCPT:
		case SMTP_V_DATA:
		case SMTP_V_BDAT:
		case SMTP_V_QUIT:
		case SMTP_V_STARTTLS:
		case SMTP_V_AUTH:
		case SMTP_V_HTTP:
			return false;
		default:
			break;
		}
	if (s->ss_junk_msgs != s->ss_nmsgs) {
		s->ss_junk = 0;
		s->ss_junk_msgs = s->ss_nmsgs;
	}
	if (++s->ss_junk <=
	    (uint64_t)s->ss_env->se_cf->cf_smtpd_junk_command_limit)
		return false;
	log_info("NOQUEUE: too many junk commands: client=%s, commands=%u",
	    s->ss_client, s->ss_junk);
	smtpd_session_shutdown(s, "421 4.7.0 Error: too many junk commands");
	return true;
}

void
smtpd_cmd_dispatch(struct smtpd_session *s, const char *line, size_t len)
{
	struct smtp_cmd	     c;
	enum smtp_cmd_status st;
	size_t		     i;
	char		     vis[LOG_VIS_MAX];

	s->ss_ncmds++;
	if (log_is_verbose())
		log_debug("NOQUEUE: client=%s: < %s", s->ss_client,
		    log_vis(vis, sizeof(vis), line, len));
	st = smtp_cmd_parse(line, len, &c);
	if (smtpd_cmd_junk(s, c.verb, st == SMTP_CMD_OK))
		return;
	switch (st) {
	case SMTP_CMD_OK:
		break;
	case SMTP_CMD_SYNTAX:
		smtpd_session_error(s,
		    "501 5.5.4 Syntax error in parameters (%s)",
		    smtp_verb_name(c.verb));
		return;
	case SMTP_CMD_TOOLONG:
		smtpd_session_error(s, "500 5.5.2 Error: line too long");
		return;
	case SMTP_CMD_BADCHAR:
		smtpd_session_error(s,
		    "500 5.5.2 Error: bad character in command");
		return;
	case SMTP_CMD_UNKNOWN:
	default:
		smtpd_session_error(s,
		    "500 5.5.2 Error: command not recognized");
		return;
	}
	for (i = 0; i < sizeof(smtpd_verbs) / sizeof(smtpd_verbs[0]); i++)
		if (smtpd_verbs[i].verb == c.verb) {
			if (smtpd_verb_allowed(s, &smtpd_verbs[i]))
				smtpd_verbs[i].fn(s, c.arg, c.arglen);
			return;
		}
	smtpd_session_error(s, "502 5.5.1 Error: command not implemented");
}

/* One line out of ss_in; false when more input is needed. */
