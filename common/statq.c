#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bounce.h"
#include "buf.h"
#include "json.h"
#include "statq.h"
#include "xmem.h"

static const char *const statq_field_names[STATQ_NFIELDS] = {
	[STATQ_TO] = "delivstream.to",
	[STATQ_DT] = "delivstream.dt",
	[STATQ_MSG] = "delivstream.msg",
	[STATQ_STATUS] = "delivstream.status",
	[STATQ_SOURCE] = "delivstream.source",
	[STATQ_ISSUE_ID] = "issue.id",
	[STATQ_ISSUE_NAME] = "issue.name",
	[STATQ_UNIQ] = "gate.uniq",
	[STATQ_CATEGORY] = "delivstream.category",
	[STATQ_URL] = "delivstream.url",
};

static const struct {
	const char   *name;
	enum statq_op op;
} statq_ops[] = {
	{ .name = "==", .op = STATQ_EQ },
	{ .name = "!=", .op = STATQ_NE },
	{ .name = "<", .op = STATQ_LT },
	{ .name = "<=", .op = STATQ_LE },
	{ .name = ">", .op = STATQ_GT },
	{ .name = ">=", .op = STATQ_GE },
};

int
statq_field_lookup(const char *name)
{
	int i;

	for (i = 0; i < STATQ_NFIELDS; i++)
		if (strcmp(name, statq_field_names[i]) == 0)
			return i;
	return -1;
}

const char *
statq_field_name(enum statq_field f)
{
	return (unsigned)f < STATQ_NFIELDS ? statq_field_names[f] : "?";
}

int
statq_op_lookup(const char *op)
{
	size_t i;

	for (i = 0; i < sizeof(statq_ops) / sizeof(statq_ops[0]); i++)
		if (strcmp(op, statq_ops[i].name) == 0)
			return (int)statq_ops[i].op;
	return -1;
}

/* ---- parsing */

static enum statq_status statq_fail(enum statq_status st, char *err,
    size_t errsz, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum statq_status
statq_fail(enum statq_status st, char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (errsz > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return st;
}

/* Quotes client text for an error message: printable ASCII only, cut. */
static const char *
statq_vis(char *dst, size_t dstsz, const char *s)
{
	size_t i, o = 0;

	for (i = 0; s[i] != '\0' && o + 5 < dstsz; i++)
		dst[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] != '\0' && o + 4 <= dstsz) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/*
 * A dt value: "YYYY-MM-DD[( |T)HH[:MM[:SS]]][Z]" becomes the matching
 * prefix of the log's "YYYY-MM-DDTHH:MM:SSZ", so comparing that many
 * bytes of a row's dt gives day/hour/minute/second granularity.
 */
static int
statq_norm_dt(const char *v, char *out, size_t outsz)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	size_t		  n = strlen(v), i;

	if (n > 0 && v[n - 1] == 'Z')
		n--;
	if (n != 10 && n != 13 && n != 16 && n != 19)
		return -1;
	if (outsz < n + 1)
		return -1;
	for (i = 0; i < n; i++) {
		if (pat[i] == 'd') {
			if (!isdigit((unsigned char)v[i]))
				return -1;
		} else if (pat[i] == 'T') {
			if (v[i] != 'T' && v[i] != ' ')
				return -1;
		} else if (v[i] != pat[i])
			return -1;
		out[i] = pat[i] == 'T' ? 'T' : v[i];
	}
	out[n] = '\0';
	return 0;
}

static enum statq_status
statq_parse_value(struct statq_filter *qf, const struct json_val *v, char *err,
    size_t errsz)
{
	const char *fname = statq_field_name(qf->qf_field);
	const char *s;
	char	   *end;

	switch (json_type(v)) {
	case JSON_NULL:
		qf->qf_null = true;
		return STATQ_OK;
	case JSON_STRING:
		s = json_string(v);
		break;
	case JSON_NUMBER:
		s = json_number_text(v);
		break;
	default:
		return statq_fail(STATQ_ESHAPE, err, errsz,
		    "filter on %s: \"v\" must be a string, a number or null",
		    fname);
	}
	if (str_copy(qf->qf_str, sizeof(qf->qf_str), s) == -1)
		return statq_fail(STATQ_ESHAPE, err, errsz,
		    "filter on %s: value too long", fname);
	if (qf->qf_field == STATQ_DT &&
	    statq_norm_dt(s, qf->qf_str, sizeof(qf->qf_str)) == -1)
		return statq_fail(STATQ_ESHAPE, err, errsz,
		    "filter on %s: bad date-time (use YYYY-MM-DD[ HH:MM:SS])",
		    fname);
	if (qf->qf_field == STATQ_CATEGORY &&
	    (qf->qf_op == STATQ_EQ || qf->qf_op == STATQ_NE) &&
	    bounce_cat_parse(s) == BOUNCE_NONE)
		return statq_fail(STATQ_ESHAPE, err, errsz,
		    "filter on %s: not a category (bad-mailbox, bad-domain, "
		    "inactive-mailbox, quota, policy, spam, virus, routing, "
		    "protocol, "
		    "no-answer, relaying-denied, expired, other)",
		    fname);
	if (qf->qf_field == STATQ_ISSUE_ID) {
		if (!isdigit((unsigned char)s[0]))
			return statq_fail(STATQ_ESHAPE, err, errsz,
			    "filter on %s: value must be a number", fname);
		qf->qf_num = (int64_t)strtoll(s, &end, 10);
		if (*end != '\0')
			return statq_fail(STATQ_ESHAPE, err, errsz,
			    "filter on %s: value must be a number", fname);
		qf->qf_num_ok = true;
	}
	return STATQ_OK;
}

static enum statq_status
statq_parse_filter(struct statq *q, const struct json_val *arr, char *err,
    size_t errsz)
{
	const struct json_val *it;
	const char	      *a, *op;
	struct statq_filter   *qf;
	enum statq_status      st;
	char		       vis[64];
	size_t		       i;
	int		       f, o;

	if (json_type(arr) != JSON_ARRAY)
		return statq_fail(STATQ_ESHAPE, err, errsz,
		    "\"filter\" must be an array");
	if (json_len(arr) > STATQ_MAX_FILTERS)
		return statq_fail(STATQ_ESHAPE, err, errsz,
		    "too many filters (at most %d)", STATQ_MAX_FILTERS);
	for (i = 0; i < json_len(arr); i++) {
		it = json_at(arr, i);
		if (json_type(it) != JSON_OBJECT ||
		    (a = json_string(json_get(it, "a"))) == NULL ||
		    (op = json_string(json_get(it, "op"))) == NULL)
			return statq_fail(STATQ_ESHAPE, err, errsz,
			    "filter %zu: needs \"a\" and \"op\" strings",
			    i + 1);
		if ((f = statq_field_lookup(a)) == -1)
			return statq_fail(STATQ_EFIELD, err, errsz,
			    "unknown field \"%s\"",
			    statq_vis(vis, sizeof(vis), a));
		if ((o = statq_op_lookup(op)) == -1)
			return statq_fail(STATQ_EOP, err, errsz,
			    "unknown operator \"%s\" (known: == != < <= > >=)",
			    statq_vis(vis, sizeof(vis), op));
		qf = &q->q_filter[q->q_nfilter++];
		qf->qf_field = (enum statq_field)f;
		qf->qf_op = (enum statq_op)o;
		if ((st = statq_parse_value(qf, json_get(it, "v"), err,
			 errsz)) != STATQ_OK)
			return st;
	}
	return STATQ_OK;
}

static enum statq_status
statq_parse_fields(const struct json_val *arr, const char *what, bool signs,
    enum statq_field *fields, bool *desc, size_t max, size_t *n_r, char *err,
    size_t errsz)
{
	const char *s;
	char	    vis[64];
	size_t	    i;
	int	    f;

	if (json_type(arr) != JSON_ARRAY)
		return statq_fail(STATQ_ESHAPE, err, errsz,
		    "\"%s\" must be an array", what);
	if (json_len(arr) > max)
		return statq_fail(STATQ_ESHAPE, err, errsz,
		    "\"%s\": at most %zu fields", what, max);
	for (i = 0; i < json_len(arr); i++) {
		if ((s = json_string(json_at(arr, i))) == NULL)
			return statq_fail(STATQ_ESHAPE, err, errsz,
			    "\"%s\" must list field names", what);
		if (signs) {
			desc[i] = *s == '-';
			if (*s == '-' || *s == '+')
				s++;
		}
		if ((f = statq_field_lookup(s)) == -1)
			return statq_fail(STATQ_EFIELD, err, errsz,
			    "unknown field \"%s\" in \"%s\"",
			    statq_vis(vis, sizeof(vis), s), what);
		fields[i] = (enum statq_field)f;
	}
	*n_r = json_len(arr);
	return STATQ_OK;
}

static enum statq_status
statq_parse_count(const struct json_val *v, const char *what, int64_t *r,
    char *err, size_t errsz)
{
	const char *s;
	char	   *end;

	if (v == NULL)
		return STATQ_OK;
	if (json_type(v) == JSON_STRING && (s = json_string(v)) != NULL &&
	    isdigit((unsigned char)*s)) {
		*r = (int64_t)strtoll(s, &end, 10);
		if (*end == '\0' && *r >= 0)
			return STATQ_OK;
	} else if (json_integer(v, r) && *r >= 0)
		return STATQ_OK;
	return statq_fail(STATQ_ESHAPE, err, errsz,
	    "\"%s\" must be a non-negative integer", what);
}

static enum statq_status
statq_parse_tree(struct statq *q, const struct json_val *root, char *err,
    size_t errsz)
{
	const struct json_val *v;
	const char	      *action;
	enum statq_field       ofields[STATQ_MAX_ORDER];
	bool		       odesc[STATQ_MAX_ORDER];
	enum statq_status      st;
	char		       vis[64];
	size_t		       i;

	if (json_type(root) != JSON_OBJECT)
		return statq_fail(STATQ_EJSON, err, errsz,
		    "request must be a JSON object");
	if ((v = json_get(root, "action")) != NULL &&
	    ((action = json_string(v)) == NULL ||
		strcmp(action, "stat.uni") != 0))
		return statq_fail(STATQ_EACTION, err, errsz,
		    "unknown action \"%s\" (only \"stat.uni\")",
		    action != NULL ? statq_vis(vis, sizeof(vis), action) : "?");
	if ((v = json_get(root, "filter")) != NULL &&
	    (st = statq_parse_filter(q, v, err, errsz)) != STATQ_OK)
		return st;
	if ((v = json_get(root, "select")) != NULL) {
		if ((st = statq_parse_fields(v, "select", false, q->q_select,
			 NULL, STATQ_MAX_SELECT, &q->q_nselect, err, errsz)) !=
		    STATQ_OK)
			return st;
	} else {
		for (i = 0; i < STATQ_NFIELDS; i++)
			if (i != STATQ_CATEGORY && i != STATQ_URL)
				q->q_select[q->q_nselect++] = (enum statq_field)
				    i;
	}
	if ((v = json_get(root, "order")) != NULL) {
		if (json_type(v) == JSON_STRING)
			return statq_fail(STATQ_ESHAPE, err, errsz,
			    "\"order\" must be an array");
		if ((st = statq_parse_fields(v, "order", true, ofields, odesc,
			 STATQ_MAX_ORDER, &q->q_norder, err, errsz)) !=
		    STATQ_OK)
			return st;
		for (i = 0; i < q->q_norder; i++) {
			q->q_order[i].qo_field = ofields[i];
			q->q_order[i].qo_desc = odesc[i];
		}
	}
	if ((st = statq_parse_count(json_get(root, "first"), "first",
		 &q->q_first, err, errsz)) != STATQ_OK)
		return st;
	return statq_parse_count(json_get(root, "skip"), "skip", &q->q_skip,
	    err, errsz);
}

enum statq_status
statq_parse(const char *text, size_t len, struct statq **q_r, char *err,
    size_t errsz)
{
	struct json_val	 *root;
	struct statq	 *q;
	enum statq_status st;

	if (errsz > 0)
		err[0] = '\0';
	if (len > STATQ_REQUEST_MAX)
		return statq_fail(STATQ_EJSON, err, errsz, "request too large");
	if (len == 0)
		return statq_fail(STATQ_EJSON, err, errsz,
		    "bad JSON: empty request");
	if (memchr(text, '\0', len) != NULL)
		return statq_fail(STATQ_EJSON, err, errsz,
		    "bad JSON: NUL byte");
	root = json_parse_n(text, len, err, errsz);
	if (root == NULL) {
		/* json_parse's message is yajl's; give it a stable prefix */
		char tmp[256];

		(void)str_copy(tmp, sizeof(tmp), errsz > 0 ? err : "");
		return statq_fail(STATQ_EJSON, err, errsz, "bad JSON: %s", tmp);
	}
	q = xcalloc(1, sizeof(*q));
	q->q_first = -1;
	st = statq_parse_tree(q, root, err, errsz);
	json_val_free(&root);
	if (st != STATQ_OK) {
		free(q);
		return st;
	}
	*q_r = q;
	return STATQ_OK;
}

void
statq_free(struct statq **qp)
{
	free(*qp);
	*qp = NULL;
}

/* ---- evaluation */

static const char *
statq_row_str(const struct statq_row *r, enum statq_field f)
{
	switch (f) {
	case STATQ_TO:
		return r->qr_to;
	case STATQ_DT:
		return r->qr_dt;
	case STATQ_MSG:
		return r->qr_msg;
	case STATQ_STATUS:
		return r->qr_status;
	case STATQ_SOURCE:
		return "1";
	case STATQ_ISSUE_NAME:
		return r->qr_issue_name;
	case STATQ_UNIQ:
		return r->qr_uniq;
	case STATQ_CATEGORY:
		return r->qr_category;
	case STATQ_URL:
		return r->qr_url;
	default:
		return NULL;
	}
}

static int
statq_cmp_num(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static bool
statq_op_holds(enum statq_op op, int c)
{
	switch (op) {
	case STATQ_EQ:
		return c == 0;
	case STATQ_NE:
		return c != 0;
	case STATQ_LT:
		return c < 0;
	case STATQ_LE:
		return c <= 0;
	case STATQ_GT:
		return c > 0;
	case STATQ_GE:
		return c >= 0;
	}
	return false;
}

static bool
statq_filter_match(const struct statq_filter *qf, const struct statq_row *r)
{
	const char *s;
	bool	    rnull;
	int	    c;

	if (qf->qf_field == STATQ_ISSUE_ID)
		rnull = r->qr_issue_id == 0;
	else
		rnull = (s = statq_row_str(r, qf->qf_field)) == NULL;
	if (rnull || qf->qf_null) {
		/* null equals only null; it is neither smaller nor larger */
		if (qf->qf_op == STATQ_EQ)
			return rnull && qf->qf_null;
		if (qf->qf_op == STATQ_NE)
			return rnull != qf->qf_null;
		return false;
	}
	switch (qf->qf_field) {
	case STATQ_ISSUE_ID:
		c = statq_cmp_num(r->qr_issue_id, (uint64_t)qf->qf_num);
		break;
	case STATQ_TO:
		c = strcasecmp(s, qf->qf_str);
		break;
	case STATQ_DT:
		c = strncmp(s, qf->qf_str, strlen(qf->qf_str));
		break;
	default:
		c = strcmp(s, qf->qf_str);
		break;
	}
	return statq_op_holds(qf->qf_op, c);
}

bool
statq_match(const struct statq *q, const struct statq_row *r)
{
	size_t i;

	for (i = 0; i < q->q_nfilter; i++)
		if (!statq_filter_match(&q->q_filter[i], r))
			return false;
	return true;
}

static int
statq_cmp_field(enum statq_field f, const struct statq_row *a,
    const struct statq_row *b)
{
	const char *sa, *sb;

	if (f == STATQ_ISSUE_ID)
		return statq_cmp_num(a->qr_issue_id, b->qr_issue_id);
	sa = statq_row_str(a, f);
	sb = statq_row_str(b, f);
	if (sa == NULL || sb == NULL) /* nulls sort first */
		return (sa != NULL) - (sb != NULL);
	return f == STATQ_TO ? strcasecmp(sa, sb) : strcmp(sa, sb);
}

int
statq_cmp(const struct statq *q, const struct statq_row *a,
    const struct statq_row *b)
{
	size_t i;
	int    c;

	for (i = 0; i < q->q_norder; i++) {
		c = statq_cmp_field(q->q_order[i].qo_field, a, b);
		if (c != 0)
			return q->q_order[i].qo_desc ? -c : c;
	}
	return 0;
}

bool
statq_order_is_newest_first(const struct statq *q)
{
	return q->q_norder == 1 && q->q_order[0].qo_field == STATQ_DT &&
	    q->q_order[0].qo_desc;
}

bool
statq_order_is_oldest_first(const struct statq *q)
{
	return q->q_norder == 0 ||
	    (q->q_norder == 1 && q->q_order[0].qo_field == STATQ_DT &&
		!q->q_order[0].qo_desc);
}

void
statq_select(const struct statq *q, const struct statq_row *r,
    struct json_gen *jg)
{
	size_t i;

	json_arr_begin(jg);
	for (i = 0; i < q->q_nselect; i++) {
		if (q->q_select[i] == STATQ_ISSUE_ID) {
			if (r->qr_issue_id == 0)
				json_null(jg);
			else
				json_int(jg, (int64_t)r->qr_issue_id);
		} else
			json_str(jg, statq_row_str(r, q->q_select[i]));
	}
	json_arr_end(jg);
}

void
statq_plan(const struct statq *q, struct statq_plan *p)
{
	static const char *const names[] = { "delivered", "deferred", "bounced",
		"opened", "clicked", "unsubscribed", "complained" };
	const struct statq_filter *qf;
	size_t			   i, j;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < q->q_nfilter; i++) {
		qf = &q->q_filter[i];
		if (qf->qf_op != STATQ_EQ || qf->qf_null)
			continue;
		if (qf->qf_field == STATQ_ISSUE_ID && qf->qf_num_ok) {
			p->qp_kind = STATQ_PLAN_ISSUE;
			p->qp_issue = (uint64_t)qf->qf_num;
			return;
		}
		for (j = 0; qf->qf_field == STATQ_STATUS &&
		     p->qp_kind == STATQ_PLAN_SCAN &&
		     j < sizeof(names) / sizeof(names[0]);
		     j++)
			if (strcmp(qf->qf_str, names[j]) == 0) {
				p->qp_kind = STATQ_PLAN_STATUS;
				p->qp_status = names[j];
			}
	}
}
