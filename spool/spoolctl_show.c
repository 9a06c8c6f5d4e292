/*
 * spoolctl_show: `show QID [--json] [--body]`: the envelope, the issue,
 * key headers from queue/QID, each recipient with its attempts (from the
 * delivery log: time, next hop, TLS, reply) and, with --body, the message.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fsx.h"
#include "json.h"
#include "spoolctl.h"
#include "xmem.h"

#define CTL_HDR_MAX  (256 * 1024)
#define CTL_BODY_MAX ((size_t)1 << 30)

static const char *const ctl_key_headers[] = {
	"From",
	"To",
	"Cc",
	"Subject",
	"Date",
	"Message-Id",
	"MIME-Version",
	"Content-Type",
	"X-Campaign-Id",
	"X-Letter-Id",
	"DKIM-Signature",
};

struct ctl_show {
	struct ctl_event  *ev;
	size_t		   nev;
	struct spool_rcpt *rc;
	size_t		   nrc;
	struct buf	   file; /* queue/QID from the message start */
	bool		   have_file;
};

static int
ctl_show_ev_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct ctl_show *s = arg;

	(void)seq;
	s->ev = xreallocarray(s->ev, s->nev + 1, sizeof(*s->ev));
	if (ctl_event_parse(json, len, &s->ev[s->nev]) == 0)
		s->nev++;
	return 0;
}

static int
ctl_show_rc_cb(const struct spool_rcpt *sr, void *arg)
{
	struct ctl_show *s = arg;

	s->rc = xreallocarray(s->rc, s->nrc + 1, sizeof(*s->rc));
	s->rc[s->nrc++] = *sr;
	return 0;
}

/* Reads queue/QID (or incoming/new/QID) from the message start; the header
 * block only, unless body. */
static void
ctl_show_read(struct ctl *ctl, const struct spool_msg *sm, bool body,
    struct ctl_show *s)
{
	char	path[4096], chunk[65536];
	ssize_t n;
	int	fd;

	buf_init(&s->file, body ? CTL_BODY_MAX : CTL_HDR_MAX);
	if (spool_path(path, sizeof(path), ctl->cf->cf_spool_dir, SPOOL_QUEUE,
		sm->sm_qid) != 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if (lseek(fd, (off_t)sm->sm_body_off, SEEK_SET) == -1) {
		(void)close(fd);
		return;
	}
	while ((n = fsx_read_full(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_append(&s->file, chunk, (size_t)n) == -1)
			break;
		if (!body &&
		    memmem(s->file.data, s->file.len, "\r\n\r\n", 4) != NULL)
			break;
	}
	(void)close(fd);
	s->have_file = true;
}

/* Calls fn for each key header (name, unfolded value) of the header block. */
static void
ctl_show_headers(const struct buf *file,
    void (*fn)(const char *name, const char *val, void *), void *arg)
{
	const char *p = file->data, *end = file->data + file->len, *eol, *colon;
	struct buf  val;
	char	    name[64];
	size_t	    i;

	buf_init(&val, 64 * 1024);
	while (p < end && !(p[0] == '\r' || p[0] == '\n')) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		buf_reset(&val);
		if (colon != NULL &&
		    str_ncopy(name, sizeof(name), p, (size_t)(colon - p)) ==
			0) {
			(void)buf_append(&val, colon + 1,
			    (size_t)(eol - colon - 1));
			/* continuation lines */
			while (eol + 1 < end &&
			    (eol[1] == ' ' || eol[1] == '\t')) {
				p = eol + 1;
				if ((eol = memchr(p, '\n',
					 (size_t)(end - p))) == NULL)
					eol = end;
				(void)buf_append(&val, p, (size_t)(eol - p));
			}
			for (i = 0; i < sizeof(ctl_key_headers) /
				 sizeof(ctl_key_headers[0]);
			     i++)
				if (strcasecmp(name, ctl_key_headers[i]) == 0)
					break;
			if (i < sizeof(ctl_key_headers) /
				sizeof(ctl_key_headers[0])) {
				char *v = val.data, *q;

				for (q = v; *q != '\0'; q++) /* unfold */
					if (*q == '\r' || *q == '\n' ||
					    *q == '\t')
						*q = ' ';
				while (*v == ' ')
					v++;
				while (q > v && q[-1] == ' ')
					*--q = '\0';
				fn(ctl_key_headers[i], v, arg);
			}
		}
		p = eol + 1;
	}
	buf_release(&val);
}

static void
ctl_show_hdr_text(const char *name, const char *val, void *arg)
{
	(void)arg;
	printf("  %s: %s\n", name, val);
}

static void
ctl_show_hdr_json(const char *name, const char *val, void *arg)
{
	json_kv_str(arg, name, val);
}

static bool
ctl_ev_for(const struct ctl_event *ev, const char *addr)
{
	return ev->ce_to != NULL && strcasecmp(ev->ce_to, addr) == 0;
}

/*
 * The lines deliverd prepends (sm_dkim): the DKIM-Signature lines, then
 * the Feedback-ID field it added (deliverd_worker.c). Their lengths, and
 * the Feedback-ID value (no CRLF) or fbidlen_r 0.
 */
static void
ctl_show_prepended(const char *pre, size_t *siglen_r, const char **fbid_r,
    size_t *fbidlen_r)
{
	static const char name[] = "Feedback-ID: ";
	const char	 *f = pre;
	size_t		  n;

	/* a field starts a line; a signature's folded lines start with a TAB */
	while (f != NULL && strncmp(f, name, sizeof(name) - 1) != 0)
		if ((f = strchr(f, '\n')) != NULL)
			f++;
	*siglen_r = f != NULL ? (size_t)(f - pre) : strlen(pre);
	*fbid_r = NULL;
	*fbidlen_r = 0;
	if (f == NULL)
		return;
	*fbid_r = f + sizeof(name) - 1;
	n = strcspn(*fbid_r, "\r\n");
	*fbidlen_r = n;
}

static void
ctl_show_text(const struct spool_msg *sm, const struct spool_issue *si,
    struct ctl_show *s, bool body)
{
	const struct spool_rcpt *sr;
	const struct ctl_event	*ev;
	const char		*fbid;
	char			 t[20];
	size_t			 i, j, siglen, fbidlen;

	ctl_time(sm->sm_arrival, t);
	printf("%s  %s\n", sm->sm_qid,
	    sm->sm_held		  ? "HELD"
		: sm->sm_npending ? "pending"
				  : "done");
	printf("  account: %s%s\n  arrival: %s UTC\n  size: %lld\n",
	    sm->sm_login, sm->sm_sandbox ? " (sandbox)" : "", t,
	    (long long)sm->sm_size);
	printf("  from: <%s>%s%s\n", sm->sm_from,
	    sm->sm_from_params[0] ? " " : "", sm->sm_from_params);
	printf("  client: %s%s%s\n", sm->sm_client,
	    sm->sm_auth[0] ? ", auth " : "", sm->sm_auth);
	if (si != NULL)
		printf("  issue: %llu (%s, %s)%s\n",
		    (unsigned long long)si->su_id, si->su_date,
		    si->su_has_name ? si->su_name : "no X-Campaign-Id",
		    si->su_blocked ? " BLOCKED" : "");
	if (sm->sm_has_letter_id)
		printf("  gate.uniq: %s\n", sm->sm_letter_id);
	ctl_show_prepended(sm->sm_dkim, &siglen, &fbid, &fbidlen);
	printf("  dkim: %s\n",
	    siglen > 0		   ? "signed"
		: sm->sm_dkim_done ? "not signed (no key)"
				   : "not yet");
	if (fbidlen > 0)
		printf("  feedback-id: %.*s\n", (int)fbidlen, fbid);
	printf("headers:\n");
	if (s->have_file)
		ctl_show_headers(&s->file, ctl_show_hdr_text, NULL);
	else
		printf("  (queue file gone)\n  Subject: %s\n  Message-Id: %s\n",
		    sm->sm_subject, sm->sm_message_id);
	printf("recipients: %u, %u pending\n", sm->sm_nrcpt, sm->sm_npending);
	for (i = 0; i < s->nrc; i++) {
		sr = &s->rc[i];
		printf("  %s  %s, %u attempt%s", sr->sr_addr,
		    spool_rcpt_state_name(sr->sr_state), sr->sr_attempts,
		    sr->sr_attempts == 1 ? "" : "s");
		if (sr->sr_state <= SPOOL_RS_DEFERRED && !sm->sm_held) {
			ctl_time(sr->sr_next, t);
			printf(", next %s", t);
		}
		printf("\n");
		for (j = 0; j < s->nev; j++) {
			ev = &s->ev[j];
			if (!ctl_ev_for(ev, sr->sr_addr))
				continue;
			printf("    %s %s%s%s hop=%s tls=%s: %s\n",
			    ev->ce_dt ? ev->ce_dt : "?",
			    ev->ce_event ? ev->ce_event : "?",
			    ev->ce_class ? "/" : "",
			    ev->ce_class ? ev->ce_class : "",
			    ev->ce_hop ? ev->ce_hop : "-",
			    ev->ce_tls && ev->ce_tls[0] ? ev->ce_tls : "-",
			    ev->ce_msg	     ? ev->ce_msg
				: ev->ce_url ? ev->ce_url
					     : "");
		}
		if (sr->sr_reply[0] != '\0')
			printf("    last reply: %s%s%s%s\n", sr->sr_reply,
			    sr->sr_category[0] ? " (" : "", sr->sr_category,
			    sr->sr_category[0] ? ")" : "");
	}
	if (body && s->have_file) {
		/* as it goes out: deliverd prepends the stored signature */
		printf("body:\n%s", sm->sm_dkim);
		(void)fwrite(s->file.data, 1, s->file.len, stdout);
		if (s->file.len > 0 && s->file.data[s->file.len - 1] != '\n')
			printf("\n");
	}
}

/* One event of the delivery log as a JSON object; "to" and "tls" optional. */
static void
ctl_show_json_event(struct json_gen *jg, const struct ctl_event *ev,
    bool with_to, bool with_tls)
{
	json_obj_begin(jg);
	json_kv_str(jg, "dt", ev->ce_dt);
	if (with_to)
		json_kv_str(jg, "to", ev->ce_to);
	json_kv_str(jg, "event", ev->ce_event);
	if (ev->ce_class != NULL)
		json_kv_str(jg, "class", ev->ce_class);
	json_kv_str(jg, "hop", ev->ce_hop);
	if (with_tls)
		json_kv_str(jg, "tls", ev->ce_tls);
	json_kv_str(jg, "msg", ev->ce_msg);
	json_kv_int(jg, "attempt", ev->ce_attempt);
	if (ev->ce_url != NULL) /* clicked (issue 16) */
		json_kv_str(jg, "url", ev->ce_url);
	json_obj_end(jg);
}

static void
ctl_show_json_rcpt(struct json_gen *jg, const struct spool_msg *sm,
    const struct spool_rcpt *sr, const struct ctl_show *s)
{
	const struct ctl_event *ev;
	char			dt[21];
	size_t			j;

	json_obj_begin(jg);
	json_kv_str(jg, "to", sr->sr_addr);
	json_kv_str(jg, "state", spool_rcpt_state_name(sr->sr_state));
	json_kv_int(jg, "attempts", sr->sr_attempts);
	json_key(jg, "next");
	if (sr->sr_state <= SPOOL_RS_DEFERRED && !sm->sm_held) {
		spool_dt(sr->sr_next, dt);
		json_str(jg, dt);
	} else
		json_null(jg);
	json_kv_str(jg, "reply", sr->sr_reply[0] ? sr->sr_reply : NULL);
	json_kv_str(jg, "hop", sr->sr_hop[0] ? sr->sr_hop : NULL);
	json_kv_str(jg, "tls", sr->sr_tls[0] ? sr->sr_tls : NULL);
	json_kv_str(jg, "category",
	    sr->sr_category[0] ? sr->sr_category : NULL);
	json_key(jg, "attempts_log");
	json_arr_begin(jg);
	for (j = 0; j < s->nev; j++) {
		ev = &s->ev[j];
		if (ctl_ev_for(ev, sr->sr_addr))
			ctl_show_json_event(jg, ev, false, true);
	}
	json_arr_end(jg);
	json_obj_end(jg);
}

static void
ctl_show_json(const struct spool_msg *sm, const struct spool_issue *si,
    struct ctl_show *s, bool body)
{
	struct json_gen *jg = json_gen_new(false);
	const char	*fbid;
	char		 dt[21];
	size_t		 i, siglen, fbidlen;

	json_obj_begin(jg);
	json_kv_str(jg, "qid", sm->sm_qid);
	json_kv_str(jg, "account", sm->sm_login);
	spool_dt(sm->sm_arrival, dt);
	json_kv_str(jg, "arrival", dt);
	json_kv_int(jg, "size", sm->sm_size);
	json_kv_str(jg, "from", sm->sm_from);
	json_kv_str(jg, "from_params", sm->sm_from_params);
	json_kv_str(jg, "client", sm->sm_client);
	json_kv_str(jg, "auth", sm->sm_auth[0] ? sm->sm_auth : NULL);
	json_kv_bool(jg, "held", sm->sm_held);
	json_kv_bool(jg, "sandbox", sm->sm_sandbox);
	json_kv_str(jg, "state",
	    sm->sm_held		  ? "held"
		: sm->sm_npending ? "pending"
				  : "done");
	json_kv_str(jg, "message_id", sm->sm_message_id);
	json_kv_str(jg, "subject", sm->sm_subject);
	json_key(jg, "issue");
	json_obj_begin(jg);
	json_kv_int(jg, "id", (int64_t)sm->sm_issue);
	json_kv_str(jg, "name", si && si->su_has_name ? si->su_name : NULL);
	json_kv_str(jg, "date", si ? si->su_date : NULL);
	json_kv_bool(jg, "blocked", si && si->su_blocked);
	json_obj_end(jg);
	json_key(jg, "gate");
	json_obj_begin(jg);
	json_kv_str(jg, "uniq", sm->sm_has_letter_id ? sm->sm_letter_id : NULL);
	json_obj_end(jg);
	/* the header lines deliverd prepends (kept beside the message) */
	ctl_show_prepended(sm->sm_dkim, &siglen, &fbid, &fbidlen);
	json_kv_bool(jg, "dkim_signed", siglen > 0);
	json_key(jg, "dkim_signature");
	if (siglen > 0)
		json_strn(jg, sm->sm_dkim, siglen);
	else
		json_null(jg);
	json_key(jg, "feedback_id");
	if (fbidlen > 0)
		json_strn(jg, fbid, fbidlen);
	else
		json_null(jg);
	json_key(jg, "headers");
	json_obj_begin(jg);
	if (s->have_file)
		ctl_show_headers(&s->file, ctl_show_hdr_json, jg);
	json_obj_end(jg);
	json_kv_int(jg, "nrcpt", sm->sm_nrcpt);
	json_kv_int(jg, "npending", sm->sm_npending);
	json_key(jg, "recipients");
	json_arr_begin(jg);
	for (i = 0; i < s->nrc; i++)
		ctl_show_json_rcpt(jg, sm, &s->rc[i], s);
	json_arr_end(jg);
	if (body && s->have_file) {
		json_key(jg, "body");
		json_strn(jg, s->file.data, s->file.len);
	}
	json_obj_end(jg);
	ctl_json_print(jg);
	json_gen_free(&jg);
}

/* A QID that left the queue (all recipients final, or deleted) still has
 * its delivery log: that is what the operator asking about it wants. */
static int
ctl_show_removed(const char *qid, struct ctl_show *s, bool json)
{
	const struct ctl_event *ev;
	struct json_gen	       *jg;
	size_t			i;

	if (!json) {
		printf("%s  removed from the queue (every recipient final)\n",
		    qid);
		if (s->nev > 0 && s->ev[0].ce_account != NULL)
			printf("  account: %s\n", s->ev[0].ce_account);
		printf("delivery log:\n");
		for (i = 0; i < s->nev; i++) {
			ev = &s->ev[i];
			printf("  %s %s %s%s%s hop=%s: %s\n",
			    ev->ce_dt ? ev->ce_dt : "?",
			    ev->ce_to ? ev->ce_to : "?",
			    ev->ce_event ? ev->ce_event : "?",
			    ev->ce_class ? "/" : "",
			    ev->ce_class ? ev->ce_class : "",
			    ev->ce_hop ? ev->ce_hop : "-",
			    ev->ce_msg ? ev->ce_msg : "");
		}
		return CTL_OK;
	}
	jg = json_gen_new(false);
	json_obj_begin(jg);
	json_kv_str(jg, "qid", qid);
	json_kv_str(jg, "state", "removed");
	json_kv_bool(jg, "held", false);
	json_kv_str(jg, "account", s->nev > 0 ? s->ev[0].ce_account : NULL);
	json_key(jg, "events");
	json_arr_begin(jg);
	for (i = 0; i < s->nev; i++)
		ctl_show_json_event(jg, &s->ev[i], true, false);
	json_arr_end(jg);
	json_obj_end(jg);
	ctl_json_print(jg);
	json_gen_free(&jg);
	return CTL_OK;
}

static void
ctl_show_free(struct ctl_show *s)
{
	size_t i;

	for (i = 0; i < s->nev; i++)
		ctl_event_free(&s->ev[i]);
	free(s->ev);
	free(s->rc);
	buf_release(&s->file);
}

int
ctl_cmd_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
		{ "body", no_argument, NULL, 'b' }, { NULL, 0, NULL, 0 } };
	static struct spool_msg
			  sm_store; /* 13 KB; static so ctl_die leaks nothing */
	struct spool_msg *sm = &sm_store;
	struct spool_issue si, *sip = NULL;
	struct spool_txn  *txn;
	struct ctl_show	   s;
	const char	  *qid;
	bool		   json = false, body = false;
	int		   ch, rc;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (ch == 'j')
			json = true;
		else
			body = true;
	}
	ctl_operands(argc, argv, 1, 1, NULL);
	qid = argv[optind];
	if (!ctl_qid_known(qid))
		return CTL_FAIL;
	memset(&s, 0, sizeof(s));
	txn = ctl_begin(ctl, false);
	if ((rc = spool_msg_get(txn, qid, sm)) == SPOOL_ENOTFOUND) {
		(void)spool_log_iter_qid(txn, qid, ctl_show_ev_cb, &s);
		spool_abort(&txn);
		if (s.nev == 0) {
			ctl_show_free(&s);
			ctl_die(CTL_NO_MESSAGE, qid);
		}
		rc = ctl_show_removed(qid, &s, json);
		ctl_show_free(&s);
		return rc;
	}
	if (rc != 0)
		ctl_die_rc(rc, "%s", qid);
	if (sm->sm_issue != 0 && spool_issue_get(txn, sm->sm_issue, &si) == 0)
		sip = &si;
	if ((rc = spool_rcpt_iter(txn, qid, ctl_show_rc_cb, &s)) != 0 &&
	    rc != SPOOL_ENOTFOUND)
		ctl_die_rc(rc, "%s: recipients", qid);
	if ((rc = spool_log_iter_qid(txn, qid, ctl_show_ev_cb, &s)) != 0 &&
	    rc != SPOOL_ENOTFOUND)
		ctl_die_rc(rc, "%s: delivery log", qid);
	spool_abort(&txn);
	ctl_show_read(ctl, sm, body, &s);
	if (json)
		ctl_show_json(sm, sip, &s, body);
	else
		ctl_show_text(sm, sip, &s, body);
	ctl_show_free(&s);
	return CTL_OK;
}
