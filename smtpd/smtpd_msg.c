/*
 * smtpd_msg: the message being received: its transaction state, the
 * spool file (envelope, Received:, content), the end-of-message checks and
 * the hand-off to the commit threads. The 250 reply is sent only after
 * spool_in_commit() returned 0.
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
#include "mailaddr.h"
#include "qid.h"
#include "smtp_cmd.h"
#include "smtpd.h"
#include "tls.h"
#include "xmem.h"

/* ---- transaction */

void
smtpd_msg_reset(struct smtpd_session *s)
{
	if (s->ss_file_open) {
		spool_in_abort(&s->ss_file);
		s->ss_file_open = false;
	}
	spool_env_free(&s->ss_envl);
	spool_env_init(&s->ss_envl);
	s->ss_mail = false;
	s->ss_smtputf8 = false;
	s->ss_requiretls = false;
	s->ss_nrcpt_all = 0;
	s->ss_ioerr = false;
	s->ss_bdat_active = false;
	s->ss_bdat_left = 0;
	s->ss_bdat_octets = 0;
	s->ss_bdat_last = false;
	s->ss_bdat_reject = false;
}

void
smtpd_msg_write(struct smtpd_session *s, const void *p, size_t n)
{
	int rc;

	/* A message that will be rejected is not written any further. */
	if (!s->ss_file_open || s->ss_ioerr || s->ss_dec.da_flags != 0 ||
	    n == 0)
		return;
	if ((rc = spool_in_write(&s->ss_file, p, n)) != 0) {
		log_warnx("%s: write: %s", s->ss_file.sn_qid,
		    spool_strerror(rc));
		s->ss_ioerr = true;
	}
}

/* "Received:" (RFC 5321 4.4; protocol names from RFC 3848). */
static int
smtpd_received(struct smtpd_session *s, struct buf *b)
{
	char	    date[64], helo[256];
	struct tm   tm;
	time_t	    now = time(NULL);
	const char *proto;
	size_t	    i;
	bool	    sasl;

	(void)gmtime_r(&now, &tm);
	(void)strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* HELO text goes into a header: printable ASCII only. */
	for (i = 0; s->ss_helo[i] != '\0' && i < sizeof(helo) - 1; i++)
		helo[i] = (s->ss_helo[i] > 32 && s->ss_helo[i] < 127 &&
			      s->ss_helo[i] != '(' && s->ss_helo[i] != ')')
		    ? s->ss_helo[i]
		    : '?';
	helo[i] = '\0';
	/* "A" only for SMTP AUTH (RFC 3848), not for an account pinned by IP */
	sasl = s->ss_sasl_user[0] != '\0';
	if (!s->ss_esmtp)
		proto = "SMTP";
	else if (s->ss_tls != NULL)
		proto = sasl ? "ESMTPSA" : "ESMTPS";
	else
		proto = sasl ? "ESMTPA" : "ESMTP";
	if (buf_printf(b, "Received: from %s (unknown [%s])\r\n",
		helo[0] ? helo : "unknown", s->ss_addr) == -1)
		return -1;
	if (s->ss_tls != NULL &&
	    buf_printf(b, "\t(using %s)\r\n", s->ss_tlsinfo) == -1)
		return -1;
	if (buf_printf(b, "\tby %s (smtpgate) with %s id %s",
		smtpd_session_hostname(s), proto, s->ss_file.sn_qid) == -1)
		return -1;
	if (s->ss_envl.pe_nrcpt == 1 &&
	    buf_printf(b, "\r\n\tfor <%s>", s->ss_envl.pe_rcpt[0]) == -1)
		return -1;
	return buf_printf(b, "; %s\r\n", date);
}

/* Creates incoming/tmp/QID and writes envelope + Received. 0 or -1. */
int
smtpd_msg_open(struct smtpd_session *s)
{
	struct spool_env *e = &s->ss_envl;
	struct buf	  b;
	int		  rc;

	if (e->pe_nrcpt == 0)
		return 0; /* blackholed only: nothing is written */
	if ((rc = spool_in_create(s->ss_env->se_spool, &s->ss_file)) != 0) {
		log_warnx("NOQUEUE: spool_in_create: %s", spool_strerror(rc));
		return -1;
	}
	s->ss_file_open = true;
	(void)str_copy(e->pe_qid, sizeof(e->pe_qid), s->ss_file.sn_qid);
	e->pe_time = (int64_t)time(NULL);
	(void)str_copy(e->pe_account, sizeof(e->pe_account), s->ss_account);
	/* spool.h: "ADDR:PORT" (an IPv6 address in brackets, or it is ambiguous) */
	(void)snprintf(e->pe_client, sizeof(e->pe_client),
	    strchr(s->ss_addr, ':') ? "[%s]:%s" : "%s:%s", s->ss_addr,
	    s->ss_port);
	(void)str_copy(e->pe_helo, sizeof(e->pe_helo), s->ss_helo);
	(void)str_copy(e->pe_tls, sizeof(e->pe_tls), s->ss_tlsinfo);
	(void)str_copy(e->pe_auth, sizeof(e->pe_auth), s->ss_sasl_user);
	(void)str_copy(e->pe_tag, sizeof(e->pe_tag), s->ss_tag);
	buf_init(&b, 4 << 20);
	if ((rc = spool_env_format(e, &b)) != 0 ||
	    smtpd_received(s, &b) == -1 ||
	    (rc = spool_in_write(&s->ss_file, b.data, b.len)) != 0) {
		log_warnx("%s: envelope: %s", s->ss_file.sn_qid,
		    rc ? spool_strerror(rc) : "too large");
		buf_release(&b);
		spool_in_abort(&s->ss_file);
		s->ss_file_open = false;
		return -1;
	}
	buf_release(&b);
	return 0;
}

static void
smtpd_log_accepted(struct smtpd_session *s, const char *qid, const char *what)
{
	char from[LOG_VIS_MAX];

	metrics_inc(mb_smtpd_messages[0]);
	(void)log_vis(from, sizeof(from), s->ss_envl.pe_from,
	    strlen(s->ss_envl.pe_from));
	/* nrcpt: the recipients written (blackholed ones are not). */
	log_info("%s: %sclient=%s, sasl_username=%s, from=<%s>, nrcpt=%zu, "
		 "size=%" PRIu64 "%s",
	    qid, what, s->ss_client, s->ss_sasl_user, from, s->ss_envl.pe_nrcpt,
	    s->ss_dec.da_size, s->ss_requiretls ? ", REQUIRETLS" : "");
}

static void
smtpd_message_done(struct smtpd_session *s)
{
	smtpd_msg_reset(s);
	if (s->ss_state != SS_DEAD && s->ss_state != SS_CLOSING)
		smtpd_enter_state(s, SS_CMD);
	smtpd_session_touch(s);
}

/* End of DATA or BDAT LAST: reject, or hand the commit to a thread. */
void
smtpd_msg_end(struct smtpd_session *s)
{
	unsigned f = s->ss_dec.da_flags;
	char	 qid[QID_SIZE];

	if (f == 0 && !s->ss_ioerr && s->ss_file_open &&
	    !smtpd_space_ok(s, "DATA")) {
		smtpd_message_done(
		    s); /* removes the file: the client retries */
		return;
	}
	if (f == 0 && !s->ss_ioerr && s->ss_file_open) {
		/* 250 only after spool_in_commit() returned 0 (CONTRACT). */
		smtpd_enter_state(s, SS_COMMIT);
		smtpd_commit_submit(s);
		return;
	}
	if (f & SMTPD_DATA_BARE)
		smtpd_session_error(s, "550 5.5.2 Bare LF/CR not allowed");
	else if (f & SMTPD_DATA_TOOBIG)
		smtpd_session_error(s,
		    "552 5.3.4 Message size exceeds fixed maximum message "
		    "size");
	else if (f & SMTPD_DATA_LONGLINE)
		smtpd_session_error(s, "552 5.3.4 Message line too long");
	else if (s->ss_ioerr)
		smtpd_reply(s, "452 4.3.1 Insufficient system storage");
	else {
		/* Every recipient blackholed: acknowledged, nothing written. */
		qid_make(qid);
		smtpd_reply(s, "250 2.0.0 Ok: queued as %s", qid);
		smtpd_log_accepted(s, qid, "blackholed: ");
		s->ss_nmsgs++;
	}
	if (f != 0 || s->ss_ioerr)
		metrics_inc(mb_smtpd_messages[1]);
	if (f != 0 || s->ss_ioerr)
		log_info("NOQUEUE: reject: %s from %s: flags=%u, size=%" PRIu64,
		    s->ss_bdat_active ? "BDAT" : "DATA", s->ss_client, f,
		    s->ss_dec.da_size);
	smtpd_message_done(s);
}

void
smtpd_msg_committed(struct smtpd_session *s)
{
	s->ss_committing = false;
	s->ss_file_open = false; /* committed, or removed by spool_in_commit */
	if (s->ss_commit_rc != 0) {
		log_warnx("%s: commit: %s", s->ss_file.sn_qid,
		    spool_strerror(s->ss_commit_rc));
		metrics_inc(mb_smtpd_messages[1]);
		smtpd_reply(s, "452 4.3.1 Insufficient system storage");
	} else {
		smtpd_reply(s, "250 2.0.0 Ok: queued as %s", s->ss_file.sn_qid);
		smtpd_log_accepted(s, s->ss_file.sn_qid, "");
		s->ss_nmsgs++;
	}
	smtpd_message_done(s);
	smtpd_session_process(s);
}
