#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "statq.h"
#include "statq_sql.h"

/*
 * What each field is in smtpgate.events (clusterd/schema.sql): a column
 * or a path into body, the event exactly as the delivery log holds it.
 * The output column and the filter/order expression are the same, so
 * what is compared is what is printed.
 */
static const char *const statq_sql_expr[STATQ_NFIELDS] = {
	[STATQ_TO] = "rcpt",
	[STATQ_DT] = "dt",
	[STATQ_MSG] = "(body->>'msg')",
	[STATQ_STATUS] = "type",
	[STATQ_SOURCE] = "'1'::text",
	[STATQ_ISSUE_ID] = "issue",
	[STATQ_ISSUE_NAME] = "(body#>>'{issue,name}')",
	[STATQ_UNIQ] = "(body#>>'{gate,uniq}')",
	[STATQ_CATEGORY] = "category",
	[STATQ_URL] = "(body->>'url')",
};

static const char statq_sql_cols[] =
    "rcpt, body->>'dt', body->>'msg', type, issue, "
    "body#>>'{issue,name}', body#>>'{gate,uniq}', category, body->>'url'";

static const char *const statq_sql_ops[] = {
	[STATQ_EQ] = "=",
	[STATQ_NE] = "<>",
	[STATQ_LT] = "<",
	[STATQ_LE] = "<=",
	[STATQ_GT] = ">",
	[STATQ_GE] = ">=",
};

static int statq_sql_fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
statq_sql_fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (errsz > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Adds a borrowed parameter; returns its number ($n). */
static size_t
statq_sql_param(struct statq_sql *s, const char *v)
{
	s->qs_param[s->qs_nparam] = v;
	return ++s->qs_nparam;
}

/* Adds a parameter held in qs_store, formatted from t (UTC). */
static size_t
statq_sql_param_time(struct statq_sql *s, time_t t)
{
	struct tm tm;
	char	 *dst = s->qs_store[s->qs_nparam];

	(void)gmtime_r(&t, &tm);
	(void)str_printf(dst, sizeof(s->qs_store[0]),
	    "%04d-%02d-%02d %02d:%02d:%02d+00", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return statq_sql_param(s, dst);
}

static size_t
statq_sql_param_int(struct statq_sql *s, int64_t v)
{
	char *dst = s->qs_store[s->qs_nparam];

	(void)str_printf(dst, sizeof(s->qs_store[0]), "%lld", (long long)v);
	return statq_sql_param(s, dst);
}

/*
 * The range [*t0_r, *t1_r) a normalised dt value names ("2026-11-29" is
 * that day, "2026-11-29T16" that hour, ...); -1 if it names no real time.
 */
static int
statq_sql_range(const char *v, time_t *t0_r, time_t *t1_r)
{
	static const char fill[] = "0000-01-01T00:00:00";
	struct tm	  tm, back;
	char		  full[sizeof(fill)];
	size_t		  n = strlen(v);
	time_t		  step;

	if (n >= sizeof(fill))
		return -1;
	memcpy(full, v, n);
	memcpy(full + n, fill + n, sizeof(fill) - n);
	memset(&tm, 0, sizeof(tm));
	if (sscanf(full, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
		&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6 ||
	    tm.tm_year < 1)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	back = tm;
	if ((*t0_r = timegm(&tm)) == (time_t)-1)
		return -1;
	/* timegm normalises 2026-02-30 to March: not a day that exists */
	if (tm.tm_year != back.tm_year || tm.tm_mon != back.tm_mon ||
	    tm.tm_mday != back.tm_mday || tm.tm_hour != back.tm_hour ||
	    tm.tm_min != back.tm_min || tm.tm_sec != back.tm_sec)
		return -1;
	step = n <= 10 ? 86400 : n <= 13 ? 3600 : n <= 16 ? 60 : 1;
	*t1_r = *t0_r + step;
	return 0;
}

static int
statq_sql_dt(struct statq_sql *s, const struct statq_filter *qf, char *err,
    size_t errsz)
{
	time_t t0, t1;
	size_t a, b;

	if (statq_sql_range(qf->qf_str, &t0, &t1) == -1)
		return statq_sql_fail(err, errsz,
		    "filter on delivstream.dt: %s is not a real date and time",
		    qf->qf_str);
	/* every parameter must appear in the text (PostgreSQL types each) */
	switch (qf->qf_op) {
	case STATQ_EQ:
	case STATQ_NE:
		a = statq_sql_param_time(s, t0);
		b = statq_sql_param_time(s, t1);
		return buf_printf(&s->qs_text,
		    qf->qf_op == STATQ_EQ
			? "(dt >= $%zu::timestamptz AND dt < $%zu::timestamptz)"
			: "(dt < $%zu::timestamptz OR dt >= $%zu::timestamptz)",
		    a, b);
	case STATQ_LT:
		return buf_printf(&s->qs_text, "dt < $%zu::timestamptz",
		    statq_sql_param_time(s, t0));
	case STATQ_LE:
		return buf_printf(&s->qs_text, "dt < $%zu::timestamptz",
		    statq_sql_param_time(s, t1));
	case STATQ_GT:
		return buf_printf(&s->qs_text, "dt >= $%zu::timestamptz",
		    statq_sql_param_time(s, t1));
	case STATQ_GE:
		return buf_printf(&s->qs_text, "dt >= $%zu::timestamptz",
		    statq_sql_param_time(s, t0));
	}
	return -1;
}

/* A null value: equal only to a null row, never smaller or larger. */
static int
statq_sql_null(struct statq_sql *s, const struct statq_filter *qf)
{
	const char *e = statq_sql_expr[qf->qf_field];

	if (qf->qf_op == STATQ_EQ)
		return buf_printf(&s->qs_text, "%s IS NULL", e);
	if (qf->qf_op == STATQ_NE)
		return buf_printf(&s->qs_text, "%s IS NOT NULL", e);
	return buf_puts(&s->qs_text, "false");
}

static int
statq_sql_filter(struct statq_sql *s, const struct statq_filter *qf, char *err,
    size_t errsz)
{
	const char *e = statq_sql_expr[qf->qf_field];
	const char *coll = "", *cast = "::text";
	char	    rhs[48];
	size_t	    n;

	if (qf->qf_null)
		return statq_sql_null(s, qf);
	if (qf->qf_field == STATQ_DT)
		return statq_sql_dt(s, qf, err, errsz);
	if (qf->qf_field == STATQ_ISSUE_ID) {
		n = statq_sql_param_int(s, qf->qf_num);
		cast = "::bigint";
	} else
		n = statq_sql_param(s, qf->qf_str);
	if (qf->qf_field == STATQ_TO) {
		e = "lower(rcpt)";
		(void)snprintf(rhs, sizeof(rhs), "lower($%zu::text)", n);
	} else
		(void)snprintf(rhs, sizeof(rhs), "$%zu%s", n, cast);
	/* equality keeps the column's collation (its index stays usable);
	 * ordering compares bytes, as strcmp does */
	if (qf->qf_field != STATQ_ISSUE_ID && qf->qf_op != STATQ_EQ &&
	    qf->qf_op != STATQ_NE)
		coll = " COLLATE \"C\"";
	if (qf->qf_op == STATQ_NE) /* a null row differs from any value */
		return buf_printf(&s->qs_text, "%s IS DISTINCT FROM %s", e,
		    rhs);
	return buf_printf(&s->qs_text, "%s%s %s %s", e, coll,
	    statq_sql_ops[qf->qf_op], rhs);
}

static int
statq_sql_where(struct statq_sql *s, const struct statq *q, const char *account,
    char *err, size_t errsz)
{
	const char *sep = " WHERE ";
	size_t	    i;

	if (account != NULL) {
		if (buf_printf(&s->qs_text, " WHERE account = $%zu",
			statq_sql_param(s, account)) == -1)
			return -1;
		sep = " AND ";
	}
	for (i = 0; i < q->q_nfilter; i++) {
		if (buf_puts(&s->qs_text, sep) == -1 ||
		    statq_sql_filter(s, &q->q_filter[i], err, errsz) == -1)
			return -1;
		sep = " AND ";
	}
	return 0;
}

/*
 * statq_cmp's order: nulls first ascending (so last descending), bytes;
 * then the log's order (dt, node, id), reversed for newest-first so that
 * "-delivstream.dt" reads the (type, dt) index backwards to the limit.
 */
static int
statq_sql_order(struct statq_sql *s, const struct statq *q)
{
	const struct statq_order *o;
	const char		 *e, *tie = "dt, node, id";
	size_t			  i;

	if (buf_puts(&s->qs_text, " ORDER BY ") == -1)
		return -1;
	if (statq_order_is_newest_first(q))
		return buf_puts(&s->qs_text, "dt DESC, node DESC, id DESC");
	for (i = 0; i < q->q_norder; i++) {
		o = &q->q_order[i];
		e = o->qo_field == STATQ_TO ? "lower(rcpt)"
					    : statq_sql_expr[o->qo_field];
		if (buf_printf(&s->qs_text, "%s%s%s%s, ", e,
			o->qo_field == STATQ_ISSUE_ID || o->qo_field == STATQ_DT
			    ? ""
			    : " COLLATE \"C\"",
			o->qo_desc ? " DESC" : "",
			o->qo_field == STATQ_DT ? ""
			    : o->qo_desc	? " NULLS LAST"
						: " NULLS FIRST") == -1)
			return -1;
	}
	return buf_puts(&s->qs_text, tie);
}

/* The window's bounds as more conditions (the WHERE is open). */
static int
statq_sql_window(struct statq_sql *s, int64_t lo, int64_t hi)
{
	const char *sep = strstr(s->qs_text.data, " WHERE ") ? " AND "
							     : " WHERE ";

	if (lo != 0 &&
	    buf_printf(&s->qs_text, "%sdt >= $%zu::timestamptz", sep,
		statq_sql_param_time(s, (time_t)lo)) == -1)
		return -1;
	if (lo != 0)
		sep = " AND ";
	if (hi != 0 &&
	    buf_printf(&s->qs_text, "%sdt < $%zu::timestamptz", sep,
		statq_sql_param_time(s, (time_t)hi)) == -1)
		return -1;
	return 0;
}

int
statq_sql_build_window(const struct statq *q, const char *account, int64_t lo,
    int64_t hi, int64_t limit, struct statq_sql *s, char *err, size_t errsz)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->qs_text, STATQ_SQL_TEXT_MAX);
	if (errsz > 0)
		err[0] = '\0';
	if (buf_printf(&s->qs_text, "SELECT %s FROM smtpgate.events",
		statq_sql_cols) == -1 ||
	    statq_sql_where(s, q, account, err, errsz) == -1 ||
	    statq_sql_window(s, lo, hi) == -1 || statq_sql_order(s, q) == -1 ||
	    (limit >= 0 &&
		buf_printf(&s->qs_text, " LIMIT $%zu::bigint",
		    statq_sql_param_int(s, limit)) == -1) ||
	    (limit < 0 && q->q_first >= 0 &&
		buf_printf(&s->qs_text, " LIMIT $%zu::bigint",
		    statq_sql_param_int(s, q->q_first)) == -1) ||
	    (limit < 0 && q->q_skip > 0 &&
		buf_printf(&s->qs_text, " OFFSET $%zu::bigint",
		    statq_sql_param_int(s, q->q_skip)) == -1)) {
		if (errsz > 0 && err[0] == '\0')
			(void)statq_sql_fail(err, errsz, "request too large");
		statq_sql_free(s);
		return -1;
	}
	return 0;
}

int
statq_sql_build(const struct statq *q, const char *account, struct statq_sql *s,
    char *err, size_t errsz)
{
	return statq_sql_build_window(q, account, 0, 0, -1, s, err, errsz);
}

void
statq_sql_free(struct statq_sql *s)
{
	buf_release(&s->qs_text);
	s->qs_nparam = 0;
}
