/*
 * spoolctl_query: `query < REQUEST.json`, the seed's stat.uni request
 * (statq) over the delivery log. When the order is by dt alone (or none),
 * the log is scanned in that order and the scan stops after skip + first
 * matches; any other order collects the matching rows and sorts them.
 * An equality on issue.id or delivstream.status reads only those events
 * through the log's indexes (statq_plan); other filters scan the log.
 * --cluster [--account A] (issue 19) answers the same request from every
 * node's events in PostgreSQL (spoolctl_cluster.c, common/statq_sql).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "spoolctl.h"
#include "statq.h"
#include "xmem.h"

struct ctl_qrow {
	struct statq_row row;
	char		*mem; /* owns the row's strings */
	size_t		 idx; /* log order, for a stable sort */
};

struct ctl_query {
	const struct statq *q;
	bool		    sorted;	/* rows come in the wanted order */
	int64_t		    skip, left; /* left -1 = unlimited */
	struct json_gen	   *jg;
	struct ctl_qrow	   *rows;
	size_t		    nrows;
};

static void
ctl_query_row(const struct ctl_event *ev, struct statq_row *r)
{
	r->qr_to = ev->ce_to;
	r->qr_dt = ev->ce_dt;
	r->qr_msg = ev->ce_msg;
	r->qr_status = ev->ce_event;
	r->qr_issue_id = ev->ce_issue_id;
	r->qr_issue_name = ev->ce_issue_name;
	r->qr_uniq = ev->ce_uniq;
	r->qr_category = ev->ce_category;
	r->qr_url = ev->ce_url;
}

/* Copies a row's strings into one allocation. */
#define CTL_QROW_STRS 8
static void
ctl_query_keep(struct ctl_query *cq, const struct statq_row *r)
{
	const char	*src[CTL_QROW_STRS] = { r->qr_to, r->qr_dt, r->qr_msg,
		     r->qr_status, r->qr_issue_name, r->qr_uniq, r->qr_category,
		     r->qr_url };
	const char	*dst[CTL_QROW_STRS];
	struct ctl_qrow *k;
	size_t		 len = 0, i, off = 0;
	char		*mem;

	for (i = 0; i < CTL_QROW_STRS; i++)
		len += src[i] ? strlen(src[i]) + 1 : 0;
	mem = xmalloc(len + 1);
	for (i = 0; i < CTL_QROW_STRS; i++) {
		dst[i] = NULL;
		if (src[i] != NULL) {
			memcpy(mem + off, src[i], strlen(src[i]) + 1);
			dst[i] = mem + off;
			off += strlen(src[i]) + 1;
		}
	}
	cq->rows = xreallocarray(cq->rows, cq->nrows + 1, sizeof(*cq->rows));
	k = &cq->rows[cq->nrows++];
	k->mem = mem;
	k->idx = cq->nrows - 1;
	k->row = *r;
	k->row.qr_to = dst[0];
	k->row.qr_dt = dst[1];
	k->row.qr_msg = dst[2];
	k->row.qr_status = dst[3];
	k->row.qr_issue_name = dst[4];
	k->row.qr_uniq = dst[5];
	k->row.qr_category = dst[6];
	k->row.qr_url = dst[7];
}

static int
ctl_query_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct ctl_query *cq = arg;
	struct ctl_event  ev;
	struct statq_row  r;
	int		  stop = 0;

	(void)seq;
	if (ctl_event_parse(json, len, &ev) == -1)
		return 0;
	ctl_query_row(&ev, &r);
	if (statq_match(cq->q, &r)) {
		if (!cq->sorted)
			ctl_query_keep(cq, &r);
		else if (cq->skip > 0)
			cq->skip--;
		else {
			statq_select(cq->q, &r, cq->jg);
			if (cq->left > 0 && --cq->left == 0)
				stop = 1;
		}
	}
	ctl_event_free(&ev);
	return stop;
}

/* The rows the plan's index gives (the whole log without one). */
static int
ctl_query_run(struct spool_txn *txn, const struct statq *q, bool reverse,
    struct ctl_query *cq)
{
	struct statq_plan  p;
	enum spool_ev_type type;

	statq_plan(q, &p);
	switch (p.qp_kind) {
	case STATQ_PLAN_ISSUE:
		return spool_log_iter_issue(txn, p.qp_issue, reverse,
		    ctl_query_cb, cq);
	case STATQ_PLAN_STATUS:
		if (spool_ev_type_parse(p.qp_status, &type) != 0)
			return spool_log_iter(txn, reverse, 0, ctl_query_cb,
			    cq);
		return spool_log_iter_type(txn, type, reverse, ctl_query_cb,
		    cq);
	default:
		return spool_log_iter(txn, reverse, 0, ctl_query_cb, cq);
	}
}

static const struct statq *ctl_sort_q;

static int
ctl_query_cmp(const void *a, const void *b)
{
	const struct ctl_qrow *ra = a, *rb = b;
	int		       c = statq_cmp(ctl_sort_q, &ra->row, &rb->row);

	/* stable: equal rows keep log order */
	return c != 0 ? c : (ra->idx < rb->idx ? -1 : ra->idx > rb->idx);
}

static void
ctl_query_read(struct buf *in)
{
	char	chunk[65536];
	ssize_t n;

	buf_init(in, STATQ_REQUEST_MAX);
	while ((n = read(STDIN_FILENO, chunk, sizeof(chunk))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			ctl_die("query: read the request: %s", strerror(errno));
		if (buf_append(in, chunk, (size_t)n) == -1)
			ctl_usage("query: request larger than %d bytes",
			    STATQ_REQUEST_MAX);
	}
}

/* --json (accepted: the output is JSON anyway), --cluster, --account A
 * (with --cluster: that account's events only). */
static bool
ctl_query_opts(int argc, char **argv, const char **account_r)
{
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
		{ "cluster", no_argument, NULL, 'C' },
		{ "account", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 } };
	bool			   cluster = false;
	int			   ch;

	*account_r = NULL;
	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (ch == 'C')
			cluster = true;
		else if (ch == 'a')
			*account_r = optarg;
	}
	ctl_operands(argc, argv, 0, 0, NULL);
	if (*account_r != NULL && !cluster)
		ctl_usage("query: --account needs --cluster (a gateway's own "
			  "log: filter on the request)");
	return cluster;
}

int
ctl_cmd_query(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_query  cq;
	struct statq	 *q = NULL;
	struct spool_txn *txn;
	struct buf	  in;
	const char	 *account;
	char		  err[512];
	bool		  reverse = false, cluster;
	size_t		  i, end;
	int		  rc;

	cluster = ctl_query_opts(argc, argv, &account);
	if (isatty(STDIN_FILENO))
		ctl_usage("query: give the stat.uni request on standard input");
	ctl_query_read(&in);
	if (statq_parse(in.data, in.len, &q, err, sizeof(err)) != STATQ_OK)
		ctl_usage("query: %s", err);
	buf_release(&in);
	memset(&cq, 0, sizeof(cq));
	cq.q = q;
	cq.skip = q->q_skip;
	cq.left = q->q_first;
	cq.jg = json_gen_new(false);
	if (statq_order_is_newest_first(q))
		cq.sorted = reverse = true;
	else
		cq.sorted = statq_order_is_oldest_first(q);
	json_obj_begin(cq.jg);
	json_key(cq.jg, "list");
	json_arr_begin(cq.jg);
	if (cluster) {
		if (cq.left != 0)
			ctl_cluster_query(ctl, q, account, cq.jg);
		cq.sorted = true; /* ordered and cut by PostgreSQL */
	} else if (cq.left != 0) {
		txn = ctl_begin(ctl, false);
		if ((rc = ctl_query_run(txn, q, reverse, &cq)) != 0 &&
		    rc != 1 && rc != SPOOL_ENOTFOUND)
			ctl_die_rc(rc, "delivery log");
		spool_abort(&txn);
	}
	if (!cq.sorted) {
		ctl_sort_q = q;
		qsort(cq.rows, cq.nrows, sizeof(*cq.rows), ctl_query_cmp);
		end = cq.nrows;
		if (q->q_first >= 0 &&
		    (uint64_t)q->q_skip + (uint64_t)q->q_first < end)
			end = (size_t)(q->q_skip + q->q_first);
		for (i = (size_t)q->q_skip; i < end; i++)
			statq_select(q, &cq.rows[i].row, cq.jg);
		for (i = 0; i < cq.nrows; i++)
			free(cq.rows[i].mem);
		free(cq.rows);
	}
	json_arr_end(cq.jg);
	json_obj_end(cq.jg);
	ctl_json_print(cq.jg);
	json_gen_free(&cq.jg);
	statq_free(&q);
	return CTL_OK;
}
