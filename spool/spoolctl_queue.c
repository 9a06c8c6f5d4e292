/*
 * spoolctl_queue: queue (mailq-like listing, --json), retry, hold,
 * release and delete (postsuper -h/-H/-d). The listing reads one snapshot:
 * spool_msg_iter to pick messages, then spool_rcpt_iter for each, with
 * buffered stdout (100,000 messages in well under a second). Changes use
 * short write transactions (at most CTL_BATCH messages each).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "json.h"
#include "log.h"
#include "spoolctl.h"
#include "xmem.h"

#define CTL_BATCH 1000

enum ctl_qstate {
	CTL_QS_ACTIVE,
	CTL_QS_QUEUED,
	CTL_QS_DEFERRED,
	CTL_QS_HELD,
	CTL_QS_DONE,
	CTL_QS_ALL
};

struct ctl_qfilter {
	const char     *account;
	uint64_t	issue;
	bool		has_issue;
	enum ctl_qstate state;
	const char     *domain;
	int64_t		before;	   /* arrival < before; 0 = any */
	bool		skip_held; /* retry */
	bool		summary;   /* queue --summary (spoolctl_summary.c) */
};

/* The message-level filters (account, issue, age, held, state). */
static bool
ctl_msg_pass(const struct ctl_qfilter *f, const struct spool_msg *sm)
{
	if (f->account != NULL && strcmp(f->account, sm->sm_login) != 0)
		return false;
	if (f->has_issue && f->issue != sm->sm_issue)
		return false;
	if (f->before != 0 && sm->sm_arrival >= f->before)
		return false;
	if (f->skip_held && sm->sm_held)
		return false;
	switch (f->state) {
	case CTL_QS_DONE:
		return sm->sm_npending == 0;
	case CTL_QS_HELD:
		return sm->sm_held;
	case CTL_QS_ALL:
		return true;
	case CTL_QS_QUEUED:
	case CTL_QS_DEFERRED:
		if (sm->sm_held)
			return false;
		/* FALLTHROUGH */
	case CTL_QS_ACTIVE:
		return sm->sm_npending != 0;
	}
	return false;
}

/* ---- recipients of one message */

struct ctl_rcpts {
	struct spool_rcpt *v;
	size_t		   n, cap;
};

static int
ctl_rcpts_cb(const struct spool_rcpt *sr, void *arg)
{
	struct ctl_rcpts *rs = arg;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 8;
		rs->v = xreallocarray(rs->v, rs->cap, sizeof(*rs->v));
	}
	rs->v[rs->n++] = *sr;
	return 0;
}

static void
ctl_rcpts_load(struct spool_txn *txn, const char *qid, struct ctl_rcpts *rs)
{
	int rc;

	rs->n = 0;
	if ((rc = spool_rcpt_iter(txn, qid, ctl_rcpts_cb, rs)) != 0 &&
	    rc != SPOOL_ENOTFOUND)
		ctl_die_rc(rc, "%s: recipients", qid);
}

static bool
ctl_rcpt_pending(const struct spool_rcpt *sr)
{
	return sr->sr_state == SPOOL_RS_QUEUED ||
	    sr->sr_state == SPOOL_RS_DEFERRED;
}

static bool
ctl_rcpt_in_domain(const struct spool_rcpt *sr, const char *domain)
{
	const char *at = strrchr(sr->sr_addr, '@');

	return at != NULL && strcasecmp(at + 1, domain) == 0;
}

/* The message's state word from its flags and recipients. */
static const char *
ctl_msg_state(const struct spool_msg *m, const struct ctl_rcpts *rs)
{
	size_t i;

	if (m->sm_held)
		return "held";
	if (m->sm_npending == 0)
		return "done";
	for (i = 0; i < rs->n; i++)
		if (rs->v[i].sr_state == SPOOL_RS_DEFERRED)
			return "deferred";
	return "queued";
}

/* Recipient-level filters: --domain, and --state queued|deferred. */
static bool
ctl_rcpts_pass(const struct ctl_qfilter *f, const struct spool_msg *m,
    const struct ctl_rcpts *rs)
{
	const char *st;
	size_t	    i;
	bool	    any = false;

	if (f->domain != NULL) {
		for (i = 0; i < rs->n && !any; i++)
			any = ctl_rcpt_in_domain(&rs->v[i], f->domain) &&
			    (ctl_rcpt_pending(&rs->v[i]) ||
				f->state == CTL_QS_DONE ||
				f->state == CTL_QS_ALL);
		if (!any)
			return false;
	}
	if (f->state == CTL_QS_QUEUED || f->state == CTL_QS_DEFERRED) {
		st = ctl_msg_state(m, rs);
		return strcmp(st,
			   f->state == CTL_QS_QUEUED ? "queued" : "deferred") ==
		    0;
	}
	return true;
}

/* ---- queue */

struct ctl_qtotals {
	size_t	msgs, rcpts, held;
	size_t	by_state[4];
	int64_t bytes;
};

static void
ctl_queue_text(const struct spool_msg *m, const struct ctl_rcpts *rs)
{
	const struct spool_rcpt *sr;
	char			 t[20];
	size_t			 i;

	ctl_time(m->sm_arrival, t);
	printf("%-20s %9lld %s %-8s %s\n", m->sm_qid, (long long)m->sm_size, t,
	    ctl_msg_state(m, rs), m->sm_from[0] ? m->sm_from : "<>");
	for (i = 0; i < rs->n; i++) {
		sr = &rs->v[i];
		printf("%52s%s (%s", "", sr->sr_addr,
		    spool_rcpt_state_name(sr->sr_state));
		if (sr->sr_attempts > 0)
			printf(", %u attempt%s", sr->sr_attempts,
			    sr->sr_attempts == 1 ? "" : "s");
		if (sr->sr_reply[0] != '\0')
			printf(": %s", sr->sr_reply);
		printf(")\n");
	}
}

static void
ctl_dt_or_null(struct json_gen *jg, const char *key, int64_t t)
{
	char dt[21];

	json_key(jg, key);
	if (t <= 0) {
		json_null(jg);
		return;
	}
	spool_dt(t, dt);
	json_str(jg, dt);
}

static void
ctl_rcpt_json(struct json_gen *jg, const struct spool_rcpt *sr)
{
	json_obj_begin(jg);
	json_kv_str(jg, "to", sr->sr_addr);
	json_kv_str(jg, "state", spool_rcpt_state_name(sr->sr_state));
	json_kv_int(jg, "attempts", sr->sr_attempts);
	ctl_dt_or_null(jg, "next", ctl_rcpt_pending(sr) ? sr->sr_next : 0);
	ctl_dt_or_null(jg, "last", sr->sr_last);
	json_kv_str(jg, "reply", sr->sr_reply[0] ? sr->sr_reply : NULL);
	json_kv_str(jg, "hop", sr->sr_hop[0] ? sr->sr_hop : NULL);
	json_kv_str(jg, "tls", sr->sr_tls[0] ? sr->sr_tls : NULL);
	json_obj_end(jg);
}

static void
ctl_queue_json(struct json_gen *jg, const struct spool_msg *m,
    const struct ctl_rcpts *rs)
{
	size_t i;

	json_obj_begin(jg);
	json_kv_str(jg, "qid", m->sm_qid);
	json_kv_int(jg, "size", m->sm_size);
	ctl_dt_or_null(jg, "arrival", m->sm_arrival);
	json_kv_str(jg, "account", m->sm_login);
	json_kv_int(jg, "issue", (int64_t)m->sm_issue);
	json_kv_str(jg, "sender", m->sm_from);
	json_kv_str(jg, "state", ctl_msg_state(m, rs));
	json_kv_bool(jg, "held", m->sm_held);
	json_key(jg, "recipients");
	json_arr_begin(jg);
	for (i = 0; i < rs->n; i++)
		ctl_rcpt_json(jg, &rs->v[i]);
	json_arr_end(jg);
	json_obj_end(jg);
}

static void
ctl_queue_total(struct ctl_qtotals *t, const struct spool_msg *m,
    const struct ctl_rcpts *rs)
{
	size_t i;

	t->msgs++;
	t->bytes += m->sm_size;
	t->held += m->sm_held;
	for (i = 0; i < rs->n; i++) {
		t->rcpts++;
		if ((unsigned)rs->v[i].sr_state < 4)
			t->by_state[rs->v[i].sr_state]++;
	}
}

static void
ctl_queue_parse(int argc, char **argv, struct ctl_qfilter *f, bool *json,
    int64_t now)
{
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
		{ "account", required_argument, NULL, 'a' },
		{ "issue", required_argument, NULL, 'i' },
		{ "state", required_argument, NULL, 's' },
		{ "domain", required_argument, NULL, 'd' },
		{ "older-than", required_argument, NULL, 'o' },
		{ "summary", no_argument, NULL, 'S' }, { NULL, 0, NULL, 0 } };
	static const char *const   states[] = { "active", "queued", "deferred",
		  "held", "done", "all" };
	char			  *end;
	time_t			   age;
	size_t			   i;
	int			   ch;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		switch (ch) {
		case 'j':
			*json = true;
			break;
		case 'a':
			f->account = optarg;
			break;
		case 'S':
			f->summary = true;
			break;
		case 'd':
			f->domain = optarg;
			break;
		case 'i':
			f->issue = strtoull(optarg, &end, 10);
			if (!isdigit((unsigned char)*optarg) || *end != '\0')
				ctl_usage("queue: --issue %s: not an issue id",
				    optarg);
			f->has_issue = true;
			break;
		case 's':
			for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
				if (strcmp(optarg, states[i]) == 0)
					break;
			if (i == sizeof(states) / sizeof(states[0]))
				ctl_usage("queue: --state is active, queued, "
					  "deferred, held, "
					  "done or all");
			f->state = (enum ctl_qstate)i;
			break;
		case 'o':
			if (conf_parse_duration(optarg, &age) == -1)
				ctl_usage("queue: --older-than %s: not a "
					  "duration (30s 5m 4h 2d)",
				    optarg);
			f->before = now - (int64_t)age;
			break;
		}
	}
	ctl_operands(argc, argv, 0, 0, NULL);
}

struct ctl_queue {
	const struct ctl_qfilter *f;
	struct spool_txn	 *txn;
	struct ctl_rcpts	  rs;
	struct ctl_qtotals	  t;
	struct json_gen		 *jg;
};

/* Recipients are read with a second cursor inside the message scan (the
 * spool opens one cursor per iteration, so nesting in a read txn is safe). */
static int
ctl_queue_cb(const struct spool_msg *sm, void *arg)
{
	struct ctl_queue *cq = arg;
	const char	 *s;
	size_t		  n;

	if (ctl_out_broken())
		return 1; /* nobody reads on: stop, the txn is aborted */
	if (!ctl_msg_pass(cq->f, sm))
		return 0;
	ctl_rcpts_load(cq->txn, sm->sm_qid, &cq->rs);
	if (!ctl_rcpts_pass(cq->f, sm, &cq->rs))
		return 0;
	ctl_queue_total(&cq->t, sm, &cq->rs);
	if (cq->jg == NULL) {
		if (cq->t.msgs == 1)
			printf("%-20s %9s %-19s %-8s %s\n", "-Queue ID-",
			    "-Size-", "---Arrival (UTC)---", "-State-",
			    "-Sender/Recipient-");
		ctl_queue_text(sm, &cq->rs);
		return 0;
	}
	/* one document per message, so the generator never holds the queue */
	(void)fputc(cq->t.msgs == 1 ? '[' : ',', stdout);
	json_gen_clear(cq->jg);
	ctl_queue_json(cq->jg, sm, &cq->rs);
	s = json_gen_result(cq->jg, &n);
	(void)fwrite(s, 1, n, stdout);
	return 0;
}

int
ctl_cmd_queue(struct ctl *ctl, int argc, char **argv)
{
	static char	   obuf[1 << 16];
	struct ctl_qfilter f = { .state = CTL_QS_ACTIVE };
	struct ctl_queue   cq;
	bool		   json = false;
	int		   rc;

	ctl_queue_parse(argc, argv, &f, &json, ctl->now);
	(void)setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	if (f.summary) {
		if (f.account != NULL || f.has_issue || f.domain != NULL ||
		    f.before != 0 || f.state != CTL_QS_ACTIVE)
			ctl_usage("queue: --summary takes --json only");
		return ctl_queue_summary(ctl, json);
	}
	memset(&cq, 0, sizeof(cq));
	cq.f = &f;
	if (json)
		cq.jg = json_gen_new(false);
	cq.txn = ctl_begin(ctl, false);
	if ((rc = spool_msg_iter(cq.txn, ctl_queue_cb, &cq)) != 0 &&
	    !ctl_out_broken())
		ctl_die_rc(rc, "messages");
	spool_abort(&cq.txn);
	if (cq.jg != NULL) {
		printf("%s\n", cq.t.msgs == 0 ? "[]" : "]");
		json_gen_free(&cq.jg);
	} else if (cq.t.msgs == 0)
		printf("queue is empty\n");
	else
		printf("-- %zu message%s, %lld KB, %zu recipient%s (%zu "
		       "queued, %zu deferred, "
		       "%zu delivered, %zu bounced), %zu held\n",
		    cq.t.msgs, cq.t.msgs == 1 ? "" : "s",
		    (long long)(cq.t.bytes + 1023) / 1024, cq.t.rcpts,
		    cq.t.rcpts == 1 ? "" : "s", cq.t.by_state[0],
		    cq.t.by_state[1], cq.t.by_state[2], cq.t.by_state[3],
		    cq.t.held);
	free(cq.rs.v);
	return CTL_OK; /* main() flushes and checks stdout */
}

/* ---- actions on messages */

static void
ctl_oplog(struct ctl *ctl, const char *qid, const char *what)
{
	/* the log line for the mail log; on a terminal stdout already says it */
	if (strcmp(ctl->cf->cf_log, "syslog") == 0) {
		log_set_dest(LOG_DEST_SYSLOG);
		log_info("%s: %s, by=spoolctl, uid=%ld", qid, what,
		    (long)getuid());
	}
}

/*
 * Results of retry/hold/release/delete: a line per message, or with --json
 * one array [{"qid":…,"result":…,"recipients":N},…] printed at the end.
 */
static struct json_gen *ctl_act_jg;

static void
ctl_act_begin(bool json)
{
	if (!json)
		return;
	ctl_act_jg = json_gen_new(false);
	json_arr_begin(ctl_act_jg);
}

static void __attribute__((format(printf, 4, 5)))
ctl_act(const char *qid, const char *result, int64_t n, const char *fmt, ...)
{
	va_list ap;

	if (ctl_act_jg != NULL) {
		json_obj_begin(ctl_act_jg);
		json_kv_str(ctl_act_jg, "qid", qid);
		json_kv_str(ctl_act_jg, "result", result);
		if (n >= 0)
			json_kv_int(ctl_act_jg, "recipients", n);
		json_obj_end(ctl_act_jg);
		return;
	}
	va_start(ap, fmt);
	(void)vprintf(fmt, ap);
	va_end(ap);
}

static void
ctl_act_end(void)
{
	if (ctl_act_jg == NULL)
		return;
	json_arr_end(ctl_act_jg);
	ctl_json_print(ctl_act_jg);
	json_gen_free(&ctl_act_jg);
}

/* Makes the pending recipients of one message due now; returns how many. */
static size_t
ctl_retry_one(struct spool_txn *txn, const char *qid, int64_t now,
    struct ctl_rcpts *rs)
{
	size_t i, n = 0;
	int    rc;

	ctl_rcpts_load(txn, qid, rs);
	for (i = 0; i < rs->n; i++) {
		if (!ctl_rcpt_pending(&rs->v[i]))
			continue;
		rs->v[i].sr_next = now;
		if ((rc = spool_rcpt_put(txn, &rs->v[i])) != 0)
			ctl_die_rc(rc, "%s: recipient %s", qid,
			    rs->v[i].sr_addr);
		n++;
	}
	return n;
}

static int
ctl_retry_qids(struct ctl *ctl, char **qids, size_t nq, bool explicit)
{
	static struct spool_msg
			  sm_store; /* 13 KB; static so ctl_die leaks nothing */
	struct spool_msg *sm = &sm_store;
	struct ctl_rcpts  rs = { .v = NULL };
	struct spool_txn *txn = NULL;
	size_t		  i, n, total = 0, nmsg = 0;
	int		  rc, status = CTL_OK;

	for (i = 0; i < nq; i++) {
		if (!ctl_qid_known(qids[i])) {
			status = CTL_FAIL;
			continue;
		}
		if (txn == NULL)
			txn = ctl_begin(ctl, true);
		if ((rc = spool_msg_get(txn, qids[i], sm)) == SPOOL_ENOTFOUND) {
			ctl_warn(CTL_NO_MESSAGE, qids[i]);
			status = CTL_FAIL;
			continue;
		} else if (rc != 0)
			ctl_die_rc(rc, "%s", qids[i]);
		if (sm->sm_held) {
			if (explicit)
				ctl_act(qids[i], "held", -1,
				    "%s: held, not retried (release it)\n",
				    qids[i]);
			continue;
		}
		n = ctl_retry_one(txn, qids[i], ctl->now, &rs);
		total += n;
		nmsg += n > 0;
		if (explicit || n > 0)
			ctl_act(qids[i], "retried", (int64_t)n,
			    "%s: %zu recipient%s due now\n", qids[i], n,
			    n == 1 ? "" : "s");
		if (n > 0)
			ctl_oplog(ctl, qids[i], "retry");
		if (i % CTL_BATCH == CTL_BATCH - 1)
			ctl_commit(&txn);
	}
	if (txn != NULL)
		ctl_commit(&txn);
	if (total > 0)
		ctl_wake_deliverd(ctl);
	if (!explicit && ctl_act_jg == NULL)
		printf("retry: %zu recipient%s of %zu message%s due now\n",
		    total, total == 1 ? "" : "s", nmsg, nmsg == 1 ? "" : "s");
	ctl_act_end();
	free(rs.v);
	return status;
}

struct ctl_retry_sel {
	const struct ctl_qfilter *f;
	struct spool_txn	 *txn;
	struct ctl_rcpts	  rs;
	char (*qids)[QID_SIZE];
	size_t n, cap;
};

static int
ctl_retry_sel_cb(const struct spool_msg *sm, void *arg)
{
	struct ctl_retry_sel *rs = arg;

	if (!ctl_msg_pass(rs->f, sm))
		return 0;
	if (rs->f->domain != NULL) {
		ctl_rcpts_load(rs->txn, sm->sm_qid, &rs->rs);
		if (!ctl_rcpts_pass(rs->f, sm, &rs->rs))
			return 0;
	}
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 1024;
		rs->qids = xreallocarray(rs->qids, rs->cap, sizeof(*rs->qids));
	}
	memcpy(rs->qids[rs->n++], sm->sm_qid, QID_SIZE);
	return 0;
}

int
ctl_cmd_retry(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "all", no_argument, NULL, 'a' },
		{ "domain", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	struct ctl_qfilter   f = { .state = CTL_QS_ACTIVE, .skip_held = true };
	struct ctl_retry_sel sel;
	char		   **qids;
	bool		     all = false, json = false;
	size_t		     i;
	int		     ch, rc;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (ch == 'a')
			all = true;
		else if (ch == 'j')
			json = true;
		else
			f.domain = optarg;
	}
	ctl_act_begin(json);
	if (!all && f.domain == NULL) {
		ctl_operands(argc, argv, 1, INT32_MAX, NULL);
		return ctl_retry_qids(ctl, argv + optind,
		    (size_t)(argc - optind), true);
	}
	ctl_operands(argc, argv, 0, 0, NULL);
	memset(&sel, 0, sizeof(sel));
	sel.f = &f;
	sel.txn = ctl_begin(ctl, false);
	if ((rc = spool_msg_iter(sel.txn, ctl_retry_sel_cb, &sel)) != 0)
		ctl_die_rc(rc, "messages");
	spool_abort(&sel.txn);
	qids = xreallocarray(NULL, sel.n + 1, sizeof(*qids));
	for (i = 0; i < sel.n; i++)
		qids[i] = sel.qids[i];
	rc = ctl_retry_qids(ctl, qids, sel.n, false);
	free(qids);
	free(sel.qids);
	free(sel.rs.v);
	return rc;
}

/*
 * A write transaction in *txn_r with qid's message in sm: 0; SPOOL_ENOTFOUND
 * when there is no such message, -1 when qid is not a queue id (warned):
 * no transaction is left open then.
 */
static int
ctl_msg_begin(struct ctl *ctl, const char *qid, struct spool_msg *sm,
    struct spool_txn **txn_r)
{
	int rc;

	if (!ctl_qid_known(qid))
		return -1;
	*txn_r = ctl_begin(ctl, true);
	if ((rc = spool_msg_get(*txn_r, qid, sm)) == SPOOL_ENOTFOUND) {
		spool_abort(txn_r);
		return rc;
	}
	if (rc != 0)
		ctl_die_rc(rc, "%s", qid);
	return 0;
}

static int
ctl_hold_release(struct ctl *ctl, int argc, char **argv, bool hold)
{
	static struct spool_msg
			  sm_store; /* 13 KB; static so ctl_die leaks nothing */
	struct spool_msg *sm = &sm_store;
	struct spool_txn *txn;
	int		  i, rc, status = CTL_OK;
	bool		  woke = false;

	ctl_act_begin(ctl_want_json(argc, argv, NULL, 1, INT32_MAX));
	for (i = optind; i < argc; i++) {
		if ((rc = ctl_msg_begin(ctl, argv[i], sm, &txn)) ==
		    SPOOL_ENOTFOUND)
			ctl_warn(CTL_NO_MESSAGE, argv[i]);
		if (rc != 0) {
			status = CTL_FAIL;
			continue;
		}
		if (sm->sm_held == hold || (hold && sm->sm_npending == 0)) {
			spool_abort(&txn);
			ctl_act(argv[i],
			    sm->sm_npending == 0 ? "no pending recipients"
				: hold		 ? "already held"
						 : "not held",
			    -1, "%s: %s\n", argv[i],
			    sm->sm_npending == 0 ? "no pending recipients"
				: hold		 ? "already held"
						 : "not held");
			continue;
		}
		if ((rc = spool_msg_hold(txn, argv[i], hold, ctl->now)) != 0)
			ctl_die_rc(rc, "%s: %s", argv[i],
			    hold ? "hold" : "release");
		ctl_commit(&txn);
		ctl_act(argv[i], hold ? "held" : "released", sm->sm_npending,
		    "%s: %s (%u pending recipient%s%s)\n", argv[i],
		    hold ? "held" : "released", sm->sm_npending,
		    sm->sm_npending == 1 ? "" : "s", hold ? "" : ", due now");
		ctl_oplog(ctl, argv[i], hold ? "hold" : "release");
		woke |= !hold;
	}
	if (woke)
		ctl_wake_deliverd(ctl);
	ctl_act_end();
	return status;
}

int
ctl_cmd_hold(struct ctl *ctl, int argc, char **argv)
{
	return ctl_hold_release(ctl, argc, argv, true);
}

int
ctl_cmd_release(struct ctl *ctl, int argc, char **argv)
{
	return ctl_hold_release(ctl, argc, argv, false);
}

/* One bounced/admin event per pending recipient, then the records go. */
static size_t
ctl_delete_one(struct spool_txn *txn, const struct spool_msg *sm, int64_t now,
    struct ctl_rcpts *rs)
{
	struct spool_event ev;
	size_t		   i, n = 0;
	int		   rc;

	ctl_rcpts_load(txn, sm->sm_qid, rs);
	for (i = 0; i < rs->n; i++) {
		if (!ctl_rcpt_pending(&rs->v[i]))
			continue;
		spool_event_init(&ev, sm, rs->v[i].sr_addr, now);
		ev.ev_type = SPOOL_EV_BOUNCED;
		ev.ev_class = SPOOL_CL_ADMIN;
		ev.ev_msg = "554 5.0.0 deleted by the operator";
		ev.ev_attempt = rs->v[i].sr_attempts;
		if ((rc = spool_event_add(txn, &ev, NULL)) != 0)
			ctl_die_rc(rc, "%s: event", sm->sm_qid);
		n++;
	}
	if ((rc = spool_msg_del(txn, sm->sm_qid)) != 0)
		ctl_die_rc(rc, "%s: delete", sm->sm_qid);
	return n;
}

/* A file spoold has not filed yet: there are no records, only the file. */
static bool
ctl_delete_incoming(struct ctl *ctl, const char *qid)
{
	if (!qid_ok(qid) ||
	    spool_unlink(ctl->cf->cf_spool_dir, SPOOL_NEW, qid) != 0)
		return false;
	ctl_act(qid, "deleted", 0,
	    "%s: deleted from incoming/new (not filed yet, no events)\n", qid);
	ctl_oplog(ctl, qid, "delete (incoming)");
	return true;
}

int
ctl_cmd_delete(struct ctl *ctl, int argc, char **argv)
{
	static struct spool_msg
			  sm_store; /* 13 KB; static so ctl_die leaks nothing */
	struct spool_msg *sm = &sm_store;
	struct ctl_rcpts  rs = { .v = NULL };
	struct spool_txn *txn;
	size_t		  n;
	int		  i, rc, status = CTL_OK;

	ctl_act_begin(ctl_want_json(argc, argv, NULL, 1, INT32_MAX));
	for (i = optind; i < argc; i++) {
		if ((rc = ctl_msg_begin(ctl, argv[i], sm, &txn)) ==
		    SPOOL_ENOTFOUND) {
			if (ctl_delete_incoming(ctl, argv[i]))
				continue;
			ctl_warn(CTL_NO_MESSAGE, argv[i]);
		}
		if (rc != 0) {
			status = CTL_FAIL;
			continue;
		}
		n = ctl_delete_one(txn, sm, ctl->now, &rs);
		ctl_commit(&txn);
		(void)spool_unlink(ctl->cf->cf_spool_dir, SPOOL_QUEUE, argv[i]);
		(void)spool_unlink(ctl->cf->cf_spool_dir, SPOOL_NEW, argv[i]);
		ctl_act(argv[i], "deleted", (int64_t)n,
		    "%s: deleted, %zu pending recipient%s bounced (admin)\n",
		    argv[i], n, n == 1 ? "" : "s");
		ctl_oplog(ctl, argv[i], "delete");
	}
	ctl_export_events(ctl);
	ctl_act_end();
	free(rs.v);
	return status;
}
