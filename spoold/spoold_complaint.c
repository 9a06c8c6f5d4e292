/*
 * spoold_complaint: feedback-loop reports -> `complained` event and a
 * stop-list entry (spoold_complaint.h).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arf.h"
#include "buf.h"
#include "conf.h"
#include "json.h"
#include "spool.h"
#include "spool_track.h"
#include "spoold_complaint.h"
#include "xmem.h"

_Static_assert(ARF_TOKEN_LEN == SPOOL_TRACK_TOKEN_LEN, "arf.h's tokens");

/* The walk over the copy's events that counts its recipients (h-arfauth):
 * it looks at so many events at most and stops at so many recipients
 * (not proven; logged "N or more"), in the filing transaction: a report
 * about a 1000-recipient copy costs what one about a single-recipient
 * copy does (walking all 1000 took twice as long end to end). */
#define SPOOLD_COMPLAINT_SCAN_MAX  20000
#define SPOOLD_COMPLAINT_RCPTS_MAX 100	    /* distinct recipients counted */
#define SPOOLD_COMPLAINT_STOP	   (-30990) /* internal: the walk stops */

/* What a complaint needs of the original's delivered event. */
struct spoold_orig {
	char	 so_login[SPOOL_LOGIN_MAX];
	char	 so_qid[QID_SIZE];
	uint64_t so_issue;
	char	 so_uniq[SPOOL_NAME_MAX];
	bool	 so_has_uniq;
	char	 so_from[SPOOL_ADDR_MAX];
	char	 so_to[SPOOL_ADDR_MAX];
	char	 so_message_id[SPOOL_MSGID_MAX];
	uint64_t so_seq; /* the delivered event's log sequence */
};

bool
spoold_complaint_envelope(const struct conf *cf, const struct spool_env *env)
{
	const struct conf_list *l = &cf->cf_complaints_address;
	size_t			i, j;

	if (l->n == 0 || env->pe_nrcpt == 0)
		return false;
	for (i = 0; i < env->pe_nrcpt; i++) {
		for (j = 0; j < l->n && !str_ieq(l->v[j], env->pe_rcpt[i]); j++)
			;
		if (j == l->n)
			return false;
	}
	return true;
}

static void
spoold_orig_str(char *dst, size_t dstsz, const struct json_val *v)
{
	(void)str_copy(dst, dstsz,
	    json_string(v) != NULL ? json_string(v) : "");
}

static int
spoold_orig_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct spoold_orig *o = arg;
	struct json_val	   *j;
	const char	   *qid;
	char		    err[64];
	int64_t		    id;

	o->so_seq = seq;
	j = json_parse_n(json, len, err, sizeof(err));
	if (j == NULL)
		return SPOOL_ECORRUPT;
	spoold_orig_str(o->so_login, sizeof(o->so_login),
	    json_get(j, "account"));
	qid = json_string(json_get(j, "queue_id"));
	(void)str_copy(o->so_qid, sizeof(o->so_qid),
	    qid != NULL && qid_ok(qid) ? qid : "");
	if (json_integer(json_get(json_get(j, "issue"), "id"), &id) && id > 0)
		o->so_issue = (uint64_t)id;
	o->so_has_uniq = json_string(json_get(json_get(j, "gate"), "uniq")) !=
	    NULL;
	spoold_orig_str(o->so_uniq, sizeof(o->so_uniq),
	    json_get(json_get(j, "gate"), "uniq"));
	spoold_orig_str(o->so_from, sizeof(o->so_from), json_get(j, "from"));
	spoold_orig_str(o->so_to, sizeof(o->so_to), json_get(j, "to"));
	spoold_orig_str(o->so_message_id, sizeof(o->so_message_id),
	    json_get(j, "message_id"));
	json_val_free(&j);
	return 0;
}

/*
 * The report's bytes (the message after the envelope) into b; a report
 * larger than ARF_MAX is not read (b->len stays ARF_MAX + 1: too big).
 */
static int
spoold_complaint_read(const struct conf *cf, const struct spool_env *env,
    struct buf *b)
{
	struct stat st;
	char	    path[4096], name[QID_SIZE + 8];
	size_t	    want, got = 0;
	ssize_t	    n;
	int	    fd, rc = 0;

	if (str_printf(name, sizeof(name), ".%s.in", env->pe_qid) == -1 ||
	    spool_path(path, sizeof(path), cf->cf_spool_dir, SPOOL_QUEUE,
		name) == -1)
		return ENAMETOOLONG;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno;
	if (fstat(fd, &st) == -1 || st.st_size < (off_t)env->pe_hdrlen) {
		rc = errno != 0 ? errno : EIO;
		goto out;
	}
	want = (size_t)(st.st_size - (off_t)env->pe_hdrlen);
	if (want > ARF_MAX) {
		b->len = (size_t)ARF_MAX + 1; /* arf_parse: too big */
		goto out;
	}
	b->data = xmalloc(want + 1);
	while (got < want) {
		n = pread(fd, b->data + got, want - got,
		    (off_t)env->pe_hdrlen + (off_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n == 0 ? EIO : errno;
			break;
		}
		got += (size_t)n;
	}
	b->len = got;
	b->data[got] = '\0';
out:
	(void)close(fd); /* read-only */
	return rc;
}

/* The complained event and the stop-list entry, in txn. */
static int
spoold_complaint_apply(struct spool_txn *txn, const struct spoold_orig *o,
    const struct arf_report *r, const char *rqid, int64_t now)
{
	struct spool_event   ev;
	struct spool_issue   is;
	struct spool_stopent se;
	char		     addr[SPOOL_ADDR_MAX];
	size_t		     i;
	int		     rc;

	memset(&ev, 0, sizeof(ev));
	ev.ev_type = SPOOL_EV_COMPLAINED;
	ev.ev_dt = now;
	ev.ev_login = o->so_login;
	ev.ev_qid = o->so_qid;
	ev.ev_issue = o->so_issue;
	/* an issue pruned before its delivery events (issue_retention shorter) */
	if (ev.ev_issue != 0 &&
	    (rc = spool_issue_get(txn, ev.ev_issue, &is)) != 0) {
		if (rc != SPOOL_ENOTFOUND)
			return rc;
		ev.ev_issue = 0;
	}
	ev.ev_uniq = o->so_has_uniq ? o->so_uniq : NULL;
	ev.ev_from = o->so_from;
	ev.ev_to = o->so_to;
	ev.ev_message_id = o->so_message_id;
	ev.ev_user_agent = r->ar_user_agent[0] != '\0' ? r->ar_user_agent
						       : NULL;
	if ((rc = spool_event_add(txn, &ev, NULL)) != 0)
		return rc;
	(void)str_copy(addr, sizeof(addr), o->so_to);
	for (i = 0; addr[i] != '\0'; i++)
		addr[i] = (char)tolower((unsigned char)addr[i]);
	memset(&se, 0, sizeof(se));
	(void)str_copy(se.se_reason, sizeof(se.se_reason), "complained");
	se.se_when = now;
	(void)str_copy(se.se_qid, sizeof(se.se_qid), o->so_qid);
	(void)snprintf(se.se_note, sizeof(se.se_note),
	    "feedback report %s (%.64s)", rqid, r->ar_type);
	rc = spool_stop_put_why(txn, o->so_login, addr, &se);
	return rc == SPOOL_EEXIST ? 0 : rc;
}

/*
 * The first report of this recipient of this message? Providers repeat
 * reports; one complaint is counted per delivery. The first-event set is
 * keyed by recipient index, which the log does not hold: the delivered
 * event's sequence number stands for it (unique per message and
 * recipient, pruned with the message's other first events).
 */
static int
spoold_complaint_first(struct spool_txn *txn, const struct spoold_orig *o,
    bool *first_r)
{
	return spool_engage_first(txn, o->so_qid, (uint32_t)o->so_seq,
	    SPOOL_EV_COMPLAINED, first_r);
}

/*
 * The delivered event of the report's Message-ID, recipient and one of
 * the queue ids its original names: a complaint counts only for a copy we
 * delivered, and for the account that sent it, never for another
 * account's message with the same Message-ID (h-asupp).
 */
static int
spoold_complaint_find(struct spool_txn *txn, const struct arf_report *r,
    struct spoold_orig *o)
{
	size_t i;
	int    rc = SPOOL_ENOTFOUND;

	for (i = 0; i < r->ar_nqid && rc == SPOOL_ENOTFOUND; i++)
		rc = spool_engage_find_delivered_qid(txn, r->ar_message_id,
		    r->ar_rcpt, r->ar_qid[i], spoold_orig_cb, o);
	return rc;
}

/* The recipients the copy's message was delivered to, from its events. */
struct spoold_rcount {
	char **rc_to; /* heap, distinct without case */
	size_t rc_n;
	size_t rc_looked;
	bool   rc_capped; /* a bound reached: rc_n is a lower bound */
};

static int
spoold_rcount_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct spoold_rcount *c = arg;
	struct json_val	     *j;
	const char	     *ev, *to;
	char		      err[64];
	size_t		      i;
	int		      rc = 0;

	(void)seq;
	if (++c->rc_looked > SPOOLD_COMPLAINT_SCAN_MAX) {
		c->rc_capped = true;
		return SPOOLD_COMPLAINT_STOP;
	}
	if ((j = json_parse_n(json, len, err, sizeof(err))) == NULL)
		return 0;
	ev = json_string(json_get(j, "event"));
	to = json_string(json_get(j, "to"));
	if (ev != NULL && strcmp(ev, "delivered") == 0 && to != NULL &&
	    to[0] != '\0') {
		for (i = 0; i < c->rc_n && !str_ieq(c->rc_to[i], to); i++)
			;
		if (i == c->rc_n && c->rc_n == SPOOLD_COMPLAINT_RCPTS_MAX) {
			c->rc_capped = true;
			rc = SPOOLD_COMPLAINT_STOP;
		} else if (i == c->rc_n) {
			c->rc_to = xreallocarray(c->rc_to, c->rc_n + 1,
			    sizeof(char *));
			c->rc_to[c->rc_n++] = xstrdup(to);
		}
	}
	json_val_free(&j);
	return rc;
}

/*
 * Does a tracking token of the report's original verify, under the
 * tracking key, as one made for this recipient of this copy (the
 * recipient index of the copy's tracking record)? *other_r: one verifies
 * for another recipient of it (a co-recipient's copy).
 */
static int
spoold_complaint_token(struct spool_txn *txn, const struct conf *cf,
    const struct arf_report *r, const struct spoold_orig *o, bool *ok_r,
    bool *other_r)
{
	unsigned char	       key[SPOOL_TRACK_KEYLEN];
	struct spool_track_msg km;
	struct spool_track_ref ref;
	size_t		       i;
	int		       rc;

	*ok_r = *other_r = false;
	if (r->ar_ntoken == 0 ||
	    spool_track_key_load(cf->cf_spool_dir, false, key) != 0)
		return 0; /* no key: no token of ours exists */
	rc = spool_track_get(txn, o->so_qid, &km);
	if (rc == SPOOL_ENOTFOUND || rc == SPOOL_ECORRUPT)
		rc = 0; /* untracked (or pruned): proves nothing */
	else if (rc == 0) {
		for (i = 0; i < r->ar_ntoken && !*ok_r; i++) {
			if (spool_track_parse(key, r->ar_token[i],
				strlen(r->ar_token[i]), &ref) != 0 ||
			    (char)ref.tk_kind != r->ar_token_kind[i] ||
			    strcmp(ref.tk_qid, o->so_qid) != 0 ||
			    ref.tk_idx >= km.km_nrcpts)
				continue;
			if (str_ieq(km.km_rcpts[ref.tk_idx], o->so_to))
				*ok_r = true;
			else
				*other_r = true;
		}
		spool_track_msg_free(&km);
	}
	explicit_bzero(key, sizeof(key));
	return rc;
}

/*
 * Does the report prove that its recipient got the copy (h-arfauth)? Any
 * co-recipient of a copy holds its queue id and Message-ID and could name
 * another recipient of it. Proven: a tracking token of this recipient in
 * the original, or the copy went to this recipient alone (every
 * delivered event of its queue id still in the log: the message still
 * queued, or younger than delivery_log_retention). Else *ok_r is false
 * and why says what is missing.
 */
static int
spoold_complaint_proven(struct spool_txn *txn, const struct conf *cf,
    const struct arf_report *r, const struct spoold_orig *o, int64_t now,
    bool *ok_r, char *why, size_t whysz)
{
	struct spoold_rcount c;
	struct spool_msg    *m;
	bool		     other, complete;
	size_t		     i;
	int		     rc;

	why[0] = '\0';
	if ((rc = spoold_complaint_token(txn, cf, r, o, ok_r, &other)) != 0 ||
	    *ok_r)
		return rc;
	m = xcalloc(1, sizeof(*m));
	complete = (spool_msg_get(txn, o->so_qid, m) == 0 &&
		       m->sm_npending > 0) ||
	    (int64_t)(qid_time_us(o->so_qid) / 1000000) >=
		now - (int64_t)cf->cf_delivery_log_retention;
	free(m);
	memset(&c, 0, sizeof(c));
	rc = spool_log_iter_qid(txn, o->so_qid, spoold_rcount_cb, &c);
	if (rc == SPOOLD_COMPLAINT_STOP)
		rc = 0;
	*ok_r = rc == 0 && complete && !c.rc_capped && c.rc_n == 1 &&
	    str_ieq(c.rc_to[0], o->so_to);
	if (!complete)
		(void)snprintf(why, whysz,
		    "the delivery log of the copy is partly pruned (older "
		    "than delivery_log_retention)");
	else
		(void)snprintf(why, whysz,
		    "the copy went to %zu%s recipients and the report "
		    "carries %s",
		    c.rc_n, c.rc_capped ? " or more" : "",
		    other ? "another recipient's tracking token"
			  : "no tracking token of this recipient");
	for (i = 0; i < c.rc_n; i++)
		free(c.rc_to[i]);
	free(c.rc_to);
	return rc;
}

/* Parses and matches the report; 0 (counted, or dropped with a log
 * line), or an error. */
static int
spoold_complaint_match(struct spool_txn *txn, const struct conf *cf,
    const struct spool_env *env, const struct buf *b, int64_t now,
    struct buf *log)
{
	struct arf_report  *r = xcalloc(1, sizeof(*r));
	struct spoold_orig *o = xcalloc(1, sizeof(*o));
	enum arf_status	    st;
	bool		    first = false, proven = false;
	char		    why[200];
	int		    rc = 0;

	if ((st = arf_parse(b->data, b->len, r)) != ARF_OK) {
		(void)buf_printf(log,
		    "%s: complaint report from %s not usable: %s; "
		    "dropped\n",
		    env->pe_qid, env->pe_client, arf_strerror(st));
		goto done;
	}
	if (r->ar_nqid == 0) {
		(void)buf_printf(log,
		    "%s: complaint report (%s) from %s for "
		    "message_id=%.200s to=<%.200s> names no queue id of "
		    "ours (no smtpgate Received line in the original); "
		    "dropped\n",
		    env->pe_qid, r->ar_type, env->pe_client, r->ar_message_id,
		    r->ar_rcpt);
		goto done;
	}
	rc = spoold_complaint_find(txn, r, o);
	if (rc == SPOOL_ENOTFOUND ||
	    (rc == 0 && (o->so_login[0] == '\0' || o->so_qid[0] == '\0'))) {
		(void)buf_printf(log,
		    "%s: complaint report (%s) from %s for "
		    "message_id=%.200s to=<%.200s> queue_id=%s matches no "
		    "delivered message; "
		    "dropped\n",
		    env->pe_qid, r->ar_type, env->pe_client, r->ar_message_id,
		    r->ar_rcpt, r->ar_qid[0]);
		rc = 0;
		goto done;
	}
	if (rc != 0 ||
	    (rc = spoold_complaint_proven(txn, cf, r, o, now, &proven, why,
		 sizeof(why))) != 0)
		goto done;
	if (!proven) {
		(void)buf_printf(log,
		    "%s: complaint (%s) from report %s: to=<%s>, "
		    "account=%s: recipient not proven: %s; dropped\n",
		    o->so_qid, r->ar_type, env->pe_qid, o->so_to, o->so_login,
		    why);
		goto done;
	}
	if ((rc = spoold_complaint_first(txn, o, &first)) != 0 ||
	    (first &&
		(rc = spoold_complaint_apply(txn, o, r, env->pe_qid, now)) !=
		    0) ||
	    (rc = spool_done_put(txn, env->pe_qid, now)) != 0)
		goto done;
	if (!first) {
		(void)buf_printf(log,
		    "%s: complaint (%s) from report %s: to=<%s>, "
		    "account=%s: already counted, dropped\n",
		    o->so_qid, r->ar_type, env->pe_qid, o->so_to, o->so_login);
		goto done;
	}
	(void)buf_printf(log,
	    "%s: complaint (%s) from report %s: to=<%s>, account=%s, "
	    "status=complained, stop-listed\n",
	    o->so_qid, r->ar_type, env->pe_qid, o->so_to, o->so_login);
done:
	free(o);
	free(r);
	return rc;
}

int
spoold_complaint_file(struct spool_txn *txn, const struct conf *cf,
    const struct spool_env *env, int64_t now, struct buf *log)
{
	struct buf b = { .data = NULL, .len = 0 };
	int	   rc;

	if ((rc = spool_done_get(txn, env->pe_qid, NULL)) == 0) {
		/* counted before a crash that left the file: only remove it */
		(void)buf_printf(log,
		    "%s: complaint report already handled, removed\n",
		    env->pe_qid);
		return 0;
	}
	if (rc != SPOOL_ENOTFOUND)
		return rc;
	if ((rc = spoold_complaint_read(cf, env, &b)) == 0)
		rc = spoold_complaint_match(txn, cf, env, &b, now, log);
	free(b.data);
	return rc;
}
