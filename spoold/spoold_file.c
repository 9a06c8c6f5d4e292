/*
 * spoold_file: one batch of incoming/new files -> one LMDB transaction ->
 * export events -> move files (see spoold_file.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fsx.h"
#include "hdr.h"
#include "log.h"
#include "metrics.h"
#include "spool.h"
#include "spool_qnote.h"
#include "spoold_complaint.h"
#include "spoold_dedupe.h"
#include "spoold_file.h"
#include "spoold_poison.h"
#include "spoold_policy.h"
#include "trigger.h"
#include "xmem.h"

#define SPOOLD_DONE_KEEP  600  /* seconds a finished marker is kept at least */
#define SPOOLD_DONE_CHUNK 5000 /* markers pruned per transaction */
#define SPOOLD_DONE_TXNS  20   /* transactions per prune */

enum spoold_action { SA_SKIP, SA_QUEUE, SA_DELETE, SA_QUARANTINE };

struct spoold_item {
	const char	  *it_name;
	enum spoold_action it_action;
	bool		   it_copy; /* queue/.QID.in exists */
	struct buf	   it_log;  /* lines to log after the commit */
	char		  *it_why;  /* quarantined: the reason, for the note */
};

/* One message being filed: everything read from its file. */
struct spoold_msgctx {
	struct spoold	     *mc_sd;
	struct spool_txn     *mc_txn;
	struct spoold_item   *mc_it;
	struct spool_env      mc_env;
	struct spoold_hdrinfo mc_h;
	struct spool_account  mc_acct;
	int64_t		      mc_size; /* message bytes after the envelope */
	bool	mc_legacy; /* unchanged since before the key existed */
	int64_t mc_now;
	int	mc_fd; /* the copy, read-only; -1 */
};

bool
spoold_error_transient(int rc)
{
	return rc == SPOOL_EFULL || rc == SPOOL_EDB || rc == ENOSPC ||
	    rc == EDQUOT || rc == EIO || rc == ENOMEM || rc == EAGAIN ||
	    rc == EMFILE || rc == ENFILE || rc == EROFS;
}

static void spoold_item_log(struct spoold_item *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void spoold_quarantine_note(const struct spoold *, const char *name,
    const char *why, unsigned count);

static void
spoold_item_log(struct spoold_item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)buf_vprintf(&it->it_log, fmt, ap); /* a cut log is acceptable */
	va_end(ap);
	(void)buf_putc(&it->it_log, '\n');
}

/* ---- LMDB-backed lookups for spoold_policy */
static int
spoold_lk_sender(void *arg, const char *key, enum spool_sender_status *st)
{
	struct spoold_msgctx *mc = arg;

	return spool_sender_get(mc->mc_txn, mc->mc_acct.ac_login, key, st);
}

static bool
spoold_lk_stop(void *arg, const char *addr)
{
	struct spoold_msgctx *mc = arg;
	char		      a[SPOOL_ADDR_MAX];

	(void)str_copy(a, sizeof(a), addr);
	str_lower(a);
	return spool_stop_has(mc->mc_txn, mc->mc_acct.ac_login, a);
}

static bool
spoold_lk_permfail(void *arg, const char *addr)
{
	struct spoold_msgctx *mc = arg;
	struct spool_permfail pf;
	int		      rc;

	rc = spool_permfail_get(mc->mc_txn, mc->mc_acct.ac_login, addr, &pf);
	if (rc == SPOOL_ECORRUPT)
		return true; /* there is an entry: refuse, as before */
	/* past suppression_ttl it no longer counts, pruned or not yet */
	return rc == 0 &&
	    pf.pf_when >=
	    mc->mc_now - (int64_t)mc->mc_sd->sd_cf->cf_suppression_ttl;
}

/* Reads the header block after the envelope into mc_h (bounded). */
static int
spoold_read_headers(struct spoold_msgctx *mc, int fd)
{
	struct hdr_limits lim = { 0,
		(size_t)mc->mc_sd->sd_cf->cf_max_header_size };
	struct hdr	  p;
	struct hdr_field  f;
	enum hdr_status	  st;
	char		  chunk[16384];
	off_t		  off = (off_t)mc->mc_env.pe_hdrlen;
	ssize_t		  r;
	int		  rc = 0;

	spoold_hdrinfo_init(&mc->mc_h);
	hdr_init(&p, &lim);
	for (;;) {
		st = hdr_next(&p, &f);
		if (st == HDR_FIELD) {
			spoold_hdrinfo_add(&mc->mc_h, &f);
			continue;
		}
		if (st != HDR_MORE)
			break;
		if ((r = pread(fd, chunk, sizeof(chunk), off)) == -1) {
			if (errno == EINTR)
				continue;
			rc = errno;
			break;
		}
		if (r == 0)
			hdr_push_eof(&p);
		else
			hdr_push(&p, chunk, (size_t)r);
		off += r;
	}
	hdr_release(&p);
	mc->mc_h.sh_status = st;
	if (rc == 0 && st == HDR_ENOMEM)
		rc = ENOMEM;
	return rc;
}

static void
spoold_set_quarantine(struct spoold_item *it, const char *why,
    const char *detail)
{
	char reason[SPOOL_QNOTE_REASON_MAX + 1];

	(void)str_printf(reason, sizeof(reason), "%s%s%s%s", why,
	    detail ? " (" : "", detail ? detail : "",
	    detail ? ")" : ""); /* a cut reason is acceptable */
	spoold_item_log(it, "%s: quarantined, reason=%s", it->it_name, reason);
	free(it->it_why);
	it->it_why = xstrdup(reason);
	it->it_action = SA_QUARANTINE;
}

/* Envelope and header block of an open file; 0 (maybe quarantined) or an error. */
static int
spoold_read_fd(struct spoold_msgctx *mc, int fd)
{
	struct spoold_item *it = mc->mc_it;
	const struct conf  *cf = mc->mc_sd->sd_cf;
	struct stat	    st;
	size_t		    envmax;
	int		    rc;

	if (fstat(fd, &st) == -1)
		return errno;
	envmax = SPOOLD_ENV_SLACK +
	    (size_t)cf->cf_max_recipients *
		(SPOOL_ADDR_MAX + SPOOL_PARAMS_MAX + 32);
	rc = spool_env_read(fd, envmax, &mc->mc_env);
	if (rc == SPOOL_EFORMAT || rc == SPOOL_ETOOBIG) {
		spoold_set_quarantine(it, "bad envelope", spool_strerror(rc));
		return 0;
	}
	if (rc != 0)
		return rc;
	mc->mc_size = (int64_t)st.st_size - (int64_t)mc->mc_env.pe_hdrlen;
	if (strcmp(mc->mc_env.pe_qid, it->it_name) != 0) {
		spoold_set_quarantine(it, "envelope qid differs",
		    mc->mc_env.pe_qid);
		return 0;
	}
	return spoold_read_headers(mc, fd);
}

/* Opens, checks and copies one file, then reads the copy. Returns an
 * error, or 0 (it_action may be set). */
static int
spoold_read_file(struct spoold_msgctx *mc)
{
	struct spoold_item *it = mc->mc_it;
	const char	   *why;
	struct stat	    st;
	char		    path[4096];
	int		    fd, cfd, rc;

	if (!qid_ok(it->it_name)) {
		spoold_set_quarantine(it, "not a queue id", NULL);
		return 0;
	}
	if (spool_path(path, sizeof(path), mc->mc_sd->sd_cf->cf_spool_dir,
		SPOOL_NEW, it->it_name) == -1)
		return errno;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		rc = errno;
		if (fd != -1)
			(void)close(fd); /* read-only */
		if (rc == ENOENT)
			it->it_action = SA_SKIP; /* gone since the scan */
		else if (spoold_error_transient(rc))
			return rc;
		else
			spoold_set_quarantine(it, "open", strerror(rc));
		return 0;
	}
	if ((why = spoold_file_refused(mc->mc_sd, &st)) != NULL) {
		(void)close(fd); /* read-only */
		spoold_set_quarantine(it, why, NULL);
		return 0;
	}
	/*
	 * ctime cannot be set back: a file last changed before the envelope
	 * key existed was written by an smtpd that made no tags (upgrade).
	 */
	mc->mc_legacy = st.st_ctime < mc->mc_sd->sd_key_made;
	cfd = spoold_copy(mc->mc_sd, it->it_name, fd, st.st_size);
	rc = errno;
	(void)close(fd); /* read-only */
	if (cfd == -1)
		return rc == EAGAIN ? 0 : rc; /* EAGAIN: SA_SKIP, next pass */
	it->it_copy = true;
	rc = spoold_read_fd(mc, cfd);
	mc->mc_fd = cfd; /* read-only from here; synced with its batch */
	return rc;
}

static bool
spoold_hdr_broken(const struct spoold_hdrinfo *h)
{
	return h->sh_status == HDR_ELINE || h->sh_status == HDR_ESIZE;
}

static bool
spoold_blackholed(const struct conf *cf, const char *addr)
{
	size_t i;

	for (i = 0; i < cf->cf_blackhole_recipients.n; i++)
		if (str_ieq(cf->cf_blackhole_recipients.v[i], addr))
			return true;
	return false;
}

/* The message record, before the recipients decide sm_npending. */
static void
spoold_make_msg(const struct spoold_msgctx *mc, uint64_t issue, uint32_t nrcpt,
    struct spool_msg *m)
{
	const struct spool_env	    *e = &mc->mc_env;
	const struct spoold_hdrinfo *h = &mc->mc_h;

	memset(m, 0, sizeof(*m));
	(void)str_copy(m->sm_qid, sizeof(m->sm_qid), e->pe_qid);
	(void)str_copy(m->sm_login, sizeof(m->sm_login), mc->mc_acct.ac_login);
	m->sm_arrival = e->pe_time;
	m->sm_size = mc->mc_size;
	m->sm_issue = issue;
	(void)str_copy(m->sm_from, sizeof(m->sm_from), e->pe_from);
	(void)str_copy(m->sm_from_params, sizeof(m->sm_from_params),
	    e->pe_from_params);
	(void)str_copy(m->sm_from_hdr, sizeof(m->sm_from_hdr), h->sh_from);
	(void)str_copy(m->sm_message_id, sizeof(m->sm_message_id),
	    h->sh_message_id);
	(void)str_copy(m->sm_subject, sizeof(m->sm_subject), h->sh_subject);
	if (h->sh_has_letter && h->sh_letter_ok) {
		(void)str_copy(m->sm_letter_id, sizeof(m->sm_letter_id),
		    h->sh_letter);
		m->sm_has_letter_id = true;
	}
	(void)str_copy(m->sm_client, sizeof(m->sm_client), e->pe_client);
	(void)str_copy(m->sm_auth, sizeof(m->sm_auth), e->pe_auth);
	m->sm_nrcpt = nrcpt;
	m->sm_npending = nrcpt;
	m->sm_sandbox = mc->mc_acct.ac_sandbox;
	m->sm_body_off = (int64_t)e->pe_hdrlen;
}

static int
spoold_bounce_event(struct spoold_msgctx *mc, const struct spool_msg *m,
    const char *to, const char *text)
{
	struct spool_event ev;

	spool_event_init(&ev, m, to, mc->mc_now);
	ev.ev_type = SPOOL_EV_BOUNCED;
	ev.ev_class = SPOOL_CL_POLICY;
	ev.ev_msg = text;
	return spool_event_add(mc->mc_txn, &ev, NULL);
}

static int
spoold_put_rcpt(struct spoold_msgctx *mc, const struct spool_msg *m, uint32_t i,
    const char *addr, const char *why)
{
	struct spool_rcpt r;

	memset(&r, 0, sizeof(r));
	(void)str_copy(r.sr_qid, sizeof(r.sr_qid), m->sm_qid);
	r.sr_idx = i;
	(void)str_copy(r.sr_addr, sizeof(r.sr_addr), addr);
	r.sr_state = why != NULL ? SPOOL_RS_BOUNCED : SPOOL_RS_QUEUED;
	r.sr_next = why != NULL ? 0 : mc->mc_now;
	if (why != NULL)
		(void)str_copy(r.sr_reply, sizeof(r.sr_reply), why);
	return spool_rcpt_put(mc->mc_txn, &r);
}

/*
 * Decides each recipient, writes the message, its recipients, the issue
 * counters and the policy events. msgtext != NULL bounces every recipient.
 * A message refused whole (no recipient left) keeps no records: only its
 * events, its counters and a finished marker (spool_done_put), which
 * makes filing the same file again a no-op.
 */
static int
spoold_put_message(struct spoold_msgctx *mc, struct spool_issue *is,
    const char *msgtext, char **rcpts, uint32_t nrcpt)
{
	struct spoold_lookup lk = { mc, spoold_lk_sender, spoold_lk_stop,
		spoold_lk_permfail };
	struct spool_msg    *m;
	const char	   **why;
	uint32_t	     i;
	bool		     keep;
	int		     rc;

	m = xmalloc(sizeof(*m));
	why = xcalloc(nrcpt, sizeof(*why));
	spoold_make_msg(mc, is->su_id, nrcpt, m);
	for (i = 0; i < nrcpt; i++) {
		why[i] = msgtext != NULL ? msgtext
					 : spoold_policy_rcpt(&lk, rcpts[i]);
		if (why[i] != NULL)
			m->sm_npending--;
	}
	is->su_msgs++;
	is->su_rcpts += nrcpt;
	keep = m->sm_npending > 0;
	/* the issue first: spool_event_add then bumps its bounce counter */
	if ((rc = spool_issue_put(mc->mc_txn, is)) != 0 ||
	    (rc = keep
		    ? spool_msg_put(mc->mc_txn, m)
		    : spool_done_put(mc->mc_txn, m->sm_qid, mc->mc_now)) != 0)
		goto done;
	/* issue 18 item 3: a retry with this X-Letter-Id is not sent again */
	if (keep &&
	    (rc = spoold_dedupe_note(mc->mc_txn, mc->mc_sd->sd_cf, m,
		 mc->mc_now)) != 0)
		goto done;
	/* issue 16: what the tracked copies will link to, in this transaction */
	if (keep && mc->mc_acct.ac_track != 0 &&
	    (rc = spoold_track_record(mc->mc_txn, &mc->mc_acct, m, mc->mc_fd,
		 rcpts, nrcpt)) != 0)
		goto done;
	for (i = 0; i < nrcpt; i++) {
		if (keep &&
		    (rc = spoold_put_rcpt(mc, m, i, rcpts[i], why[i])) != 0)
			goto done;
		if (why[i] == NULL)
			continue;
		if ((rc = spoold_bounce_event(mc, m, rcpts[i], why[i])) != 0)
			goto done;
		spoold_item_log(mc->mc_it, "%s: to=<%s>, status=bounced (%s)",
		    m->sm_qid, rcpts[i], why[i]);
	}
	spoold_item_log(mc->mc_it,
	    "%s: filed, account=%s, issue=%llu, nrcpt=%u, status=%s%s%s%s",
	    m->sm_qid, m->sm_login, (unsigned long long)is->su_id, nrcpt,
	    m->sm_npending == nrcpt   ? "queued"
		: m->sm_npending == 0 ? "bounced"
				      : "partial",
	    msgtext ? " (" : "", msgtext ? msgtext : "", msgtext ? ")" : "");
	mc->mc_it->it_action = m->sm_npending > 0 ? SA_QUEUE
	    : spoold_hdr_broken(&mc->mc_h)	  ? SA_QUARANTINE
						  : SA_DELETE;
done:
	free(why);
	free(m);
	return rc;
}

/*
 * Issue 18 item 3: a repeated X-Letter-Id within dedupe_window is finished
 * like a message refused whole, with one duplicate event instead of its
 * deliveries. SPOOL_ENOTFOUND: not a duplicate, file it as usual.
 */
static int
spoold_file_duplicate(struct spoold_msgctx *mc, const struct spool_issue *is,
    char **rcpts, uint32_t nrcpt)
{
	struct spool_msg *m = xmalloc(sizeof(*m));
	char		  orig[QID_SIZE];
	int		  rc;

	spoold_make_msg(mc, is->su_id, nrcpt, m);
	rc = spoold_dedupe_find(mc->mc_txn, mc->mc_sd->sd_cf, m, mc->mc_now,
	    orig, &mc->mc_it->it_log);
	if (rc == 0 &&
	    (rc = spoold_dedupe_file(mc->mc_txn, m, orig, rcpts[0], mc->mc_now,
		 &mc->mc_it->it_log)) == 0)
		mc->mc_it->it_action = spoold_hdr_broken(&mc->mc_h)
		    ? SA_QUARANTINE
		    : SA_DELETE;
	free(m);
	return rc;
}

/* The recipients that are not blackholed (CONTRACT: no stats, no events). */
static uint32_t
spoold_rcpts(const struct spoold_msgctx *mc, char **v)
{
	uint32_t n = 0;
	size_t	 i;

	for (i = 0; i < mc->mc_env.pe_nrcpt; i++)
		if (!spoold_blackholed(mc->mc_sd->sd_cf, mc->mc_env.pe_rcpt[i]))
			v[n++] = mc->mc_env.pe_rcpt[i];
	return n;
}

/*
 * The envelope's account is gone (deleted after the 250): every recipient
 * gets a policy bounce, a finished marker makes filing it again a no-op,
 * and the file is kept in quarantine/ for the operator.
 */
static int
spoold_refuse_no_account(struct spoold_msgctx *mc)
{
	struct spoold_item *it = mc->mc_it;
	struct spool_msg   *m = xmalloc(sizeof(*m));
	char   **rcpts = xcalloc(mc->mc_env.pe_nrcpt + 1, sizeof(*rcpts));
	uint32_t i, n;
	int	 rc;

	(void)str_copy(mc->mc_acct.ac_login, sizeof(mc->mc_acct.ac_login),
	    mc->mc_env.pe_account);
	n = spoold_rcpts(mc, rcpts);
	spoold_make_msg(mc, 0, n, m);
	rc = spool_done_put(mc->mc_txn, m->sm_qid, mc->mc_now);
	for (i = 0; rc == 0 && i < n; i++) {
		if ((rc = spoold_bounce_event(mc, m, rcpts[i],
			 SPOOLD_T_NOACCOUNT)) == 0)
			spoold_item_log(it, "%s: to=<%s>, status=bounced (%s)",
			    m->sm_qid, rcpts[i], SPOOLD_T_NOACCOUNT);
	}
	if (rc == 0)
		spoold_set_quarantine(it, "unknown account",
		    mc->mc_env.pe_account);
	free(rcpts);
	free(m);
	return rc;
}

/* Already finished: a file of a quarantined message stays in quarantine/. */
static int
spoold_finished(struct spoold_msgctx *mc)
{
	struct spoold_item *it = mc->mc_it;
	int		    rc;

	rc = spool_account_get(mc->mc_txn, mc->mc_env.pe_account, &mc->mc_acct);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		return rc;
	/*
	 * Refused whole, or delivered after a filing whose rename a power
	 * loss undid: filing it again would send it twice.
	 */
	spoold_item_log(it, "%s: already finished, not filed again",
	    it->it_name);
	it->it_action = spoold_hdr_broken(&mc->mc_h) || rc == SPOOL_ENOTFOUND
	    ? SA_QUARANTINE
	    : SA_DELETE;
	mc->mc_sd->sd_moved_again++;
	return 0;
}

/* A feedback-loop report (issue 16): parsed and counted, never queued. */
static int
spoold_file_complaint(struct spoold_msgctx *mc)
{
	int rc;

	rc = spoold_complaint_file(mc->mc_txn, mc->mc_sd->sd_cf, &mc->mc_env,
	    mc->mc_now, &mc->mc_it->it_log);
	if (rc == 0)
		mc->mc_it->it_action = SA_DELETE;
	return rc;
}

/*
 * A new campaign's issue once the account has max_issues_per_day issues
 * on that day: the message goes to the day's issue without a campaign
 * (*campaign_r NULL) and is delivered as usual; one log line. Issue
 * records live for issue_retention, so an X-Campaign-Id made unique per
 * message would otherwise keep one record per message for a year.
 */
static int
spoold_issue_room(struct spoold_msgctx *mc, const char *date,
    const char **campaign_r)
{
	struct spool_issue is;
	uint64_t	   n;
	int		   rc;

	if (*campaign_r == NULL)
		return 0;
	rc = spool_issue_find(mc->mc_txn, mc->mc_acct.ac_login, date,
	    *campaign_r, &is);
	if (rc != SPOOL_ENOTFOUND)
		return rc;
	if ((rc = spool_issue_day_count(mc->mc_txn, mc->mc_acct.ac_login, date,
		 &n)) != 0)
		return rc;
	if (n < (uint64_t)mc->mc_sd->sd_cf->cf_max_issues_per_day)
		return 0;
	spoold_item_log(mc->mc_it,
	    "%s: account=%s has %llu issues on %s (max_issues_per_day): "
	    "filed in the day's issue without a campaign",
	    mc->mc_it->it_name, mc->mc_acct.ac_login, (unsigned long long)n,
	    date);
	*campaign_r = NULL;
	return 0;
}

/* A message read from its file: account, policy, issue, records. */
static int
spoold_file_parsed(struct spoold_msgctx *mc, struct spool_msg *old)
{
	struct spoold_lookup   lk = { mc, spoold_lk_sender, spoold_lk_stop,
		  spoold_lk_permfail };
	struct spoold_item    *it = mc->mc_it;
	struct spoold_hdrinfo *h = &mc->mc_h;
	struct spool_issue     is;
	const char	      *text, *campaign;
	char		       date[11], **rcpts;
	uint32_t	       nrcpt;
	int		       rc;

	if (spoold_complaint_envelope(mc->mc_sd->sd_cf, &mc->mc_env))
		return spoold_file_complaint(mc);
	if (mc->mc_legacy && mc->mc_env.pe_tag[0] == '\0')
		spoold_item_log(it,
		    "%s: untagged, from before the envelope key: "
		    "account=%s taken as written",
		    it->it_name, mc->mc_env.pe_account);
	else if (!spool_tag_ok(mc->mc_sd->sd_key, mc->mc_env.pe_account,
		     mc->mc_env.pe_tag)) {
		/* not an account the lookup process (or spoold) vouched for */
		spoold_set_quarantine(it, "account not authenticated",
		    mc->mc_env.pe_account);
		return 0;
	}
	if ((rc = spool_msg_get(mc->mc_txn, it->it_name, old)) == 0) {
		if (strcmp(old->sm_login, mc->mc_env.pe_account) != 0) {
			/* another account's queue id: never replace its file */
			spoold_set_quarantine(it,
			    "queue id of another account's "
			    "message",
			    mc->mc_env.pe_account);
			return 0;
		}
		/* committed before a crash, not yet moved: only move it */
		spoold_item_log(it, "%s: already filed, moving", it->it_name);
		it->it_action = spoold_hdr_broken(h) ? SA_QUARANTINE
		    : old->sm_npending == 0	     ? SA_DELETE
						     : SA_QUEUE;
		mc->mc_sd->sd_moved_again++;
		return 0;
	}
	if (rc != SPOOL_ENOTFOUND ||
	    (rc = spool_done_get(mc->mc_txn, it->it_name, NULL)) !=
		SPOOL_ENOTFOUND)
		return rc != 0 ? rc : spoold_finished(mc);
	if ((rc = spool_account_get(mc->mc_txn, mc->mc_env.pe_account,
		 &mc->mc_acct)) != 0)
		return rc != SPOOL_ENOTFOUND ? rc
					     : spoold_refuse_no_account(mc);
	if (mc->mc_env.pe_nrcpt == 0) {
		spoold_set_quarantine(it, "no recipients", NULL);
		return 0;
	}
	rcpts = xcalloc(mc->mc_env.pe_nrcpt, sizeof(*rcpts));
	if ((nrcpt = spoold_rcpts(mc, rcpts)) == 0) {
		spoold_item_log(it,
		    "%s: discarded, reason=blackholed recipients only",
		    it->it_name);
		it->it_action = SA_DELETE;
		free(rcpts);
		return 0;
	}
	if ((rc = spoold_policy_message(h, mc->mc_acct.ac_senders, &lk,
		 &text)) != 0)
		goto done;
	if (text == NULL)
		text = spoold_policy_hops(h,
		    mc->mc_sd->sd_cf->cf_hopcount_limit);
	spool_date(mc->mc_env.pe_time, date);
	campaign = h->sh_has_campaign && h->sh_campaign_ok ? h->sh_campaign
							   : NULL;
	if ((rc = spoold_issue_room(mc, date, &campaign)) != 0 ||
	    (rc = spool_issue_find_or_create(mc->mc_txn, mc->mc_acct.ac_login,
		 date, campaign, &is)) != 0)
		goto done;
	if (text == NULL && is.su_blocked)
		text = SPOOLD_T_BLOCKED;
	if ((rc = spoold_file_duplicate(mc, &is, rcpts, nrcpt)) ==
	    SPOOL_ENOTFOUND)
		rc = spoold_put_message(mc, &is, text, rcpts, nrcpt);
done:
	free(rcpts);
	return rc;
}

static int
spoold_file_one(struct spoold *sd, struct spool_txn *txn,
    struct spoold_item *it, int64_t now)
{
	struct spoold_msgctx *mc;
	struct spool_msg     *old;
	int		      rc;

	mc = xcalloc(1, sizeof(*mc));
	old = xmalloc(sizeof(*old));
	mc->mc_sd = sd;
	mc->mc_txn = txn;
	mc->mc_it = it;
	mc->mc_now = now;
	mc->mc_fd = -1;
	spool_env_init(&mc->mc_env);
	rc = spoold_read_file(mc);
	if (rc == 0 && it->it_action == SA_SKIP && mc->mc_env.pe_qid[0] != '\0')
		rc = spoold_file_parsed(mc, old);
	if (mc->mc_fd != -1)
		(void)close(mc->mc_fd); /* read-only */
	spool_env_free(&mc->mc_env);
	free(old);
	free(mc);
	return rc;
}

static void
spoold_flush_log(const struct spoold_item *it)
{
	const char *s = it->it_log.data, *nl;
	char	    vis[LOG_VIS_MAX];

	while (s != NULL && *s != '\0' && (nl = strchr(s, '\n')) != NULL) {
		metrics_spoold_log(s, (size_t)(nl - s));
		log_info("%s", log_vis(vis, sizeof(vis), s, (size_t)(nl - s)));
		s = nl + 1;
	}
}

/*
 * Every copy of the batch durable before any original is removed: one
 * syncfs(2) of the spool's file system instead of an fsync per copy.
 */

/* One item after the commit; 0 or an errno (it stays in incoming/new). */
/* Whether the batch made copies to make durable. */
static bool
spoold_any_copy(const struct spoold_item *items, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (items[i].it_copy)
			return true;
	return false;
}

static int
spoold_move_one(struct spoold *sd, struct spoold_item *it)
{
	const char *dir = sd->sd_cf->cf_spool_dir;
	int	    rc;

	switch (it->it_action) {
	case SA_SKIP:
		return it->it_copy ? spoold_copy_done(sd, it->it_name, false)
				   : 0;
	default:
	case SA_QUEUE:
		/* the copy (spoold's own) is what deliverd sends */
		if ((rc = spoold_copy_done(sd, it->it_name, true)) != 0)
			return rc;
		sd->sd_dirty_queue = true;
		return spool_unlink(dir, SPOOL_NEW, it->it_name);
	case SA_DELETE:
		(void)spoold_copy_done(sd, it->it_name,
		    false); /* garbage if left */
		return spool_unlink(dir, SPOOL_NEW, it->it_name);
	case SA_QUARANTINE:
		if (it->it_copy)
			(void)spoold_copy_done(sd, it->it_name,
			    false); /* garbage */
		if ((rc = spool_move(dir, it->it_name, SPOOL_NEW,
			 SPOOL_QUARANTINE)) == 0) {
			sd->sd_dirty_quar = true;
			spoold_quarantine_note(sd, it->it_name, it->it_why, 0);
		}
		sd->sd_quarantined++;
		return rc;
	}
}

/* After the commit: the files follow the database. */
static void
spoold_move_files(struct spoold *sd, struct spoold_item *items, size_t n)
{
	size_t i;
	int    rc;

	sd->sd_dirty_queue = sd->sd_dirty_quar = sd->sd_dirty_new = false;
	for (i = 0; i < n; i++) {
		if (items[i].it_action == SA_SKIP && !items[i].it_copy)
			continue;
		rc = spoold_move_one(sd, &items[i]);
		sd->sd_dirty_new |= items[i].it_action != SA_SKIP;
		if (rc != 0) /* stays in incoming/new: the next pass moves it */
			log_warnx("%s: cannot move out of incoming/new: %s",
			    items[i].it_name, spool_strerror(rc));
	}
}

/* One fsync per directory per batch, then wake deliverd. */
static void
spoold_sync_dirs(struct spoold *sd)
{
	const char *dir = sd->sd_cf->cf_spool_dir;
	int	    rc;
	bool	    failed = false;

	if (sd->sd_dirty_queue && (rc = spool_sync(dir, SPOOL_QUEUE)) != 0) {
		log_warnx("fsync queue/: %s", spool_strerror(rc));
		failed = true;
	}
	if (sd->sd_dirty_quar && (rc = spool_sync(dir, SPOOL_QUARANTINE)) != 0)
		log_warnx("fsync quarantine/: %s", spool_strerror(rc));
	if (sd->sd_dirty_new && (rc = spool_sync(dir, SPOOL_NEW)) != 0) {
		log_warnx("fsync incoming/new: %s", spool_strerror(rc));
		failed = true;
	}
	if (sd->sd_dirty_queue || sd->sd_dirty_new)
		sd->sd_sync_failed = failed;
	if (sd->sd_dirty_queue)
		trigger_pull(sd->sd_trigger);
	sd->sd_dirty_queue = sd->sd_dirty_quar = sd->sd_dirty_new = false;
}

int
spoold_file_batch(struct spoold *sd, char (*names)[SPOOLD_NAME_MAX], size_t n,
    size_t *bad_r)
{
	struct spoold_item *items;
	struct spool_txn   *txn = NULL;
	size_t		    i, nexp;
	int64_t		    now = (int64_t)time(NULL);
	int		    rc;

	items = xcalloc(n, sizeof(*items));
	for (i = 0; i < n; i++) {
		items[i].it_name = names[i];
		items[i].it_action = SA_SKIP;
		buf_init(&items[i].it_log, 1 << 20);
	}
	*bad_r = n;
	spoold_poison_mark(sd, names, n); /* a crash from here is on them */
	if ((rc = spool_begin(sd->sd_sp, true, &txn)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((rc = spoold_file_one(sd, txn, &items[i], now)) != 0) {
			*bad_r = i;
			spool_abort(&txn);
			goto fail;
		}
	}
	if ((rc = spool_commit(&txn)) != 0)
		goto fail;
	if (spoold_any_copy(items, n) && spoold_sync_copies(sd) != 0) {
		/* filed; the originals stay and the next pass moves them */
		sd->sd_export_pending = true;
		rc = 0;
		goto fail;
	}
	/*
	 * The renames come first: deliverd may already see the committed
	 * schedule entries, and looks for queue/QID (then incoming/new/QID).
	 */
	spoold_move_files(sd, items, n);
	for (i = 0; i < n; i++) {
		spoold_flush_log(&items[i]);
		if (items[i].it_action != SA_SKIP &&
		    items[i].it_action != SA_QUARANTINE)
			sd->sd_filed++;
	}
	rc = spool_events_export(sd->sd_sp, sd->sd_cf->cf_event_log, &nexp);
	if (rc != 0)
		log_warnx(
		    "events export to %s: %s (retried at the next rescan)",
		    sd->sd_cf->cf_event_log, spool_strerror(rc));
	sd->sd_export_pending = rc != 0;
	rc = 0;
	spoold_sync_dirs(sd);
	goto out;
fail:
	for (i = 0; i < n; i++) /* nothing filed: the copies go */
		if (items[i].it_copy)
			(void)spoold_copy_done(sd, items[i].it_name, false);
out:
	spoold_poison_clear(sd);
	for (i = 0; i < n; i++) {
		buf_release(&items[i].it_log);
		free(items[i].it_why);
	}
	free(items);
	return rc;
}

/* The note beside a quarantined file (spool_qnote.h): without it the
 * file is still listed, only without its reason. */
static void
spoold_quarantine_note(const struct spoold *sd, const char *name,
    const char *why, unsigned count)
{
	struct spool_qnote qn = { .qn_time = (int64_t)time(NULL),
		.qn_count = count };
	int		   rc;

	(void)str_copy(qn.qn_reason, sizeof(qn.qn_reason),
	    why != NULL ? why : "?"); /* cut */
	if ((rc = spool_qnote_write(sd->sd_cf->cf_spool_dir, name, &qn)) != 0)
		log_warnx("%s: quarantine note: %s", name, spool_strerror(rc));
}

void
spoold_quarantine(struct spoold *sd, const char *name, const char *why)
{
	spoold_quarantine_n(sd, name, why, 0);
}

void
spoold_quarantine_n(struct spoold *sd, const char *name, const char *why,
    unsigned count)
{
	const char *dir = sd->sd_cf->cf_spool_dir;
	int	    rc;

	if ((rc = spool_move(dir, name, SPOOL_NEW, SPOOL_QUARANTINE)) != 0) {
		log_warnx("%s: cannot quarantine: %s", name,
		    spool_strerror(rc));
		return;
	}
	spoold_quarantine_note(sd, name, why, count);
	(void)spool_sync(dir,
	    SPOOL_QUARANTINE); /* best effort: the file is kept either way */
	(void)spool_sync(dir, SPOOL_NEW);
	sd->sd_quarantined++;
	metrics_inc(mb_spoold_quarantined);
	log_warnx("%s: quarantined, reason=%s", name, why);
}

void
spoold_prune_done(struct spoold *sd)
{
	struct spool_txn *txn = NULL;
	size_t		  n, total = 0, k;
	int64_t		  before = (int64_t)time(NULL) - SPOOLD_DONE_KEEP;
	int		  rc = 0;

	if (!sd->sd_pass_done || sd->sd_sync_failed)
		return;
	for (k = 0; k < SPOOLD_DONE_TXNS; k++) {
		if ((rc = spool_begin(sd->sd_sp, true, &txn)) != 0 ||
		    (rc = spool_done_prune(txn, before, SPOOLD_DONE_CHUNK,
			 &n)) != 0 ||
		    (rc = spool_commit(&txn)) != 0)
			break;
		total += n;
		if (n < SPOOLD_DONE_CHUNK)
			break;
	}
	spool_abort(&txn);
	if (rc != 0)
		log_warnx("prune finished markers: %s", spool_strerror(rc));
	else if (total > 0)
		log_debug("pruned %zu finished marker(s)", total);
}
