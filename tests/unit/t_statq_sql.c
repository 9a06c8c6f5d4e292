/*
 * Unit tests for common/statq_sql: the stat.uni request as one
 * parameterised SELECT over smtpgate.events (`spoolctl query --cluster`).
 * Golden statements: what each filter, order and limit becomes, that
 * client text only ever travels as a parameter, and the dt ranges.
 * (test_cluster.py runs the statements on a real PostgreSQL.)
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "statq.h"
#include "statq_sql.h"
#include "tap.h"

#define SEL \
	"SELECT rcpt, body->>'dt', body->>'msg', type, issue, " \
	"body#>>'{issue,name}', body#>>'{gate,uniq}', category, " \
	"body->>'url' FROM smtpgate.events"
#define LOGORDER " ORDER BY dt, node, id"

/* Every parameter $1..$n appears in the text (PostgreSQL must type each:
 * one it never sees is an error at bind time). */
static bool
all_used(const struct statq_sql *s)
{
	const char *p;
	char	    tag[16];
	size_t	    i;

	for (i = 1; i <= s->qs_nparam; i++) {
		(void)snprintf(tag, sizeof(tag), "$%zu", i);
		for (p = s->qs_text.data; (p = strstr(p, tag)) != NULL; p++)
			if (p[strlen(tag)] < '0' || p[strlen(tag)] > '9')
				break;
		if (p == NULL)
			return false;
	}
	return true;
}

/* The statement and its parameters as "SQL | p1 | p2", or "ERR msg". */
static const char *
build(const char *req, const char *account)
{
	static char	 out[4096];
	struct statq	*q = NULL;
	struct statq_sql s;
	char		 err[256];
	size_t		 i, o;

	if (statq_parse(req, strlen(req), &q, err, sizeof(err)) != STATQ_OK) {
		(void)snprintf(out, sizeof(out), "PARSE %s", err);
		return out;
	}
	if (statq_sql_build(q, account, &s, err, sizeof(err)) == -1) {
		(void)snprintf(out, sizeof(out), "ERR %s", err);
		statq_free(&q);
		return out;
	}
	o = (size_t)snprintf(out, sizeof(out), "%s%s",
	    all_used(&s) ? "" : "UNUSED PARAMETER ", s.qs_text.data);
	for (i = 0; i < s.qs_nparam && o < sizeof(out); i++)
		o += (size_t)snprintf(out + o, sizeof(out) - o, " | %s",
		    s.qs_param[i]);
	statq_sql_free(&s);
	statq_free(&q);
	return out;
}

#define F(a, op, v) \
	"{\"filter\":[{\"a\":\"" a "\",\"op\":\"" op "\",\"v\":" v "}]}"

static const struct {
	const char *req;
	const char *account;
	const char *want;
} cases[] = {
	{ .req = "{}", .want = SEL LOGORDER },
	/* the seed's request: the (type, dt) index read backwards */
	{ .req = "{\"filter\":[{\"a\":\"delivstream.status\",\"v\":"
		 "\"bounced\",\"op\":\"==\"},{\"a\":\"delivstream.source\","
		 "\"op\":\"==\",\"v\":\"1\"}],\"action\":\"stat.uni\","
		 "\"select\":[\"delivstream.to\",\"delivstream.dt\","
		 "\"delivstream.msg\"],\"first\":100,"
		 "\"order\":[\"-delivstream.dt\"]}",
	    .want = SEL " WHERE type = $1::text AND '1'::text = $2::text"
			" ORDER BY dt DESC, node DESC, id DESC"
			" LIMIT $3::bigint | bounced | 1 | 100" },
	{ .req = F("delivstream.status", "==", "\"bounced\""),
	    .account = "acme",
	    .want = SEL " WHERE account = $1 AND type = $2::text" LOGORDER
			" | acme | bounced" },
	/* a value is never part of the text, however it is quoted */
	{ .req = F("delivstream.msg", "==", "\"x'; DROP TABLE t; --\""),
	    .want = SEL " WHERE (body->>'msg') = $1::text" LOGORDER
			" | x'; DROP TABLE t; --" },
	{ .req = F("delivstream.to", "==", "\"B@Example.NET\""),
	    .want = SEL " WHERE lower(rcpt) = lower($1::text)" LOGORDER
			" | B@Example.NET" },
	{ .req = F("delivstream.msg", ">=", "\"5\""),
	    .want = SEL
	    " WHERE (body->>'msg') COLLATE \"C\" >= $1::text" LOGORDER " | 5" },
	/* "!=" holds for a null row (statq_match) */
	{ .req = F("delivstream.category", "!=", "\"other\""),
	    .want = SEL " WHERE category IS DISTINCT FROM $1::text" LOGORDER
			" | other" },
	{ .req = F("issue.name", "==", "null"),
	    .want = SEL " WHERE (body#>>'{issue,name}') IS NULL" LOGORDER },
	{ .req = F("issue.name", "!=", "null"),
	    .want = SEL " WHERE (body#>>'{issue,name}') IS NOT NULL" LOGORDER },
	{ .req = F("issue.name", "<", "null"),
	    .want = SEL " WHERE false" LOGORDER },
	{ .req = F("issue.id", ">", "\"41\""),
	    .want = SEL " WHERE issue > $1::bigint" LOGORDER " | 41" },
	{ .req = F("gate.uniq", "==", "\"L2\""),
	    .want = SEL " WHERE (body#>>'{gate,uniq}') = $1::text" LOGORDER
			" | L2" },
	/* a dt value is the day, hour, minute or second it names */
	{ .req = F("delivstream.dt", "==", "\"2026-11-29\""),
	    .want = SEL " WHERE (dt >= $1::timestamptz AND dt < "
			"$2::timestamptz)" LOGORDER
			" | 2026-11-29 00:00:00+00 | 2026-11-30 00:00:00+00" },
	{ .req = F("delivstream.dt", "!=", "\"2026-12-31 23\""),
	    .want = SEL " WHERE (dt < $1::timestamptz OR dt >= "
			"$2::timestamptz)" LOGORDER
			" | 2026-12-31 23:00:00+00 | 2027-01-01 00:00:00+00" },
	{ .req = F("delivstream.dt", "<=", "\"2026-11-29T16:04\""),
	    .want = SEL " WHERE dt < $1::timestamptz" LOGORDER
			" | 2026-11-29 16:05:00+00" },
	{ .req = F("delivstream.dt", ">", "\"2026-11-29 16:04:05Z\""),
	    .want = SEL " WHERE dt >= $1::timestamptz" LOGORDER
			" | 2026-11-29 16:04:06+00" },
	{ .req = F("delivstream.dt", "<", "\"2028-02-29\""),
	    .want = SEL " WHERE dt < $1::timestamptz" LOGORDER
			" | 2028-02-29 00:00:00+00" },
	{ .req = F("delivstream.dt", ">=", "\"2026-11-29 16\""),
	    .want = SEL " WHERE dt >= $1::timestamptz" LOGORDER
			" | 2026-11-29 16:00:00+00" },
	{ .req = F("delivstream.dt", ">=", "\"2026-02-29\""),
	    .want = "ERR filter on delivstream.dt: 2026-02-29 is not a real "
		    "date and time" },
	{ .req = F("delivstream.dt", "==", "\"2026-11-29 24:00\""),
	    .want = "ERR filter on delivstream.dt: 2026-11-29T24:00 is not "
		    "a real date and time" },
	{ .req = F("delivstream.dt", "==", "\"0000-01-01\""),
	    .want = "ERR filter on delivstream.dt: 0000-01-01 is not a real "
		    "date and time" },
	/* statq_cmp's order: nulls first ascending, bytes, then log order */
	{ .req = "{\"order\":[\"issue.name\",\"-issue.id\","
		 "\"delivstream.dt\"]}",
	    .want = SEL
	    " ORDER BY (body#>>'{issue,name}') COLLATE \"C\" "
	    "NULLS FIRST, issue DESC NULLS LAST, dt, dt, node, id" },
	{ .req = "{\"order\":[\"-delivstream.to\"],\"first\":\"5\","
		 "\"skip\":10}",
	    .want = SEL " ORDER BY lower(rcpt) COLLATE \"C\" DESC NULLS LAST,"
			" dt, node, id LIMIT $1::bigint OFFSET $2::bigint"
			" | 5 | 10" },
	{ .req = "{\"first\":0}",
	    .want = SEL LOGORDER " LIMIT $1::bigint | 0" },
};

static void
t_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!t_str_eq(build(cases[i].req, cases[i].account),
			cases[i].want, cases[i].req))
			t_diag("case %zu", i);
}

/* The most filters a request may have, each a dt range: every parameter
 * slot in use, the text within its bound. */
static void
t_full(void)
{
	char		 req[16384];
	struct statq	*q = NULL;
	struct statq_sql s;
	char		 err[256];
	size_t		 o, i;

	o = (size_t)snprintf(req, sizeof(req), "{\"filter\":[");
	for (i = 0; i < STATQ_MAX_FILTERS; i++)
		o += (size_t)snprintf(req + o, sizeof(req) - o,
		    "%s{\"a\":\"delivstream.dt\",\"op\":\"!=\","
		    "\"v\":\"2026-11-29\"}",
		    i ? "," : "");
	(void)snprintf(req + o, sizeof(req) - o, "],\"first\":1,\"skip\":1}");
	t_ok(statq_parse(req, strlen(req), &q, err, sizeof(err)) == STATQ_OK,
	    "parses %d filters", STATQ_MAX_FILTERS);
	if (q == NULL)
		return;
	t_ok(statq_sql_build(q, "a", &s, err, sizeof(err)) == 0, "builds: %s",
	    err);
	t_int_eq((long long)s.qs_nparam, STATQ_SQL_MAX_PARAMS - 2, "params");
	t_ok(strstr(s.qs_text.data, "OFFSET $131::bigint") != NULL,
	    "last parameter numbered");
	statq_sql_free(&s);
	/* and a window's two bounds on top (its LIMIT replaces LIMIT and
	 * OFFSET) */
	t_ok(statq_sql_build_window(q, "a", 1, 2, 3, &s, err, sizeof(err)) == 0,
	    "builds with a window: %s", err);
	t_int_eq((long long)s.qs_nparam, STATQ_SQL_MAX_PARAMS - 1, "params");
	t_ok(all_used(&s), "every parameter in the text");
	statq_sql_free(&s);
	statq_free(&q);
}

/* The windows of a newest-first request (spoolctl query --cluster). */
static void
t_window(void)
{
	static const char req[] =
	    "{\"filter\":[{\"a\":\"delivstream.status\",\"op\":\"==\","
	    "\"v\":\"bounced\"}],\"first\":100,\"skip\":5,"
	    "\"order\":[\"-delivstream.dt\"]}";
	static const struct {
		int64_t	    lo, hi, limit;
		const char *want;
	} w[] = {
		{ 1796601600, 0, 105,
		    SEL " WHERE account = $1 AND type = $2::text AND dt >= "
			"$3::timestamptz ORDER BY dt DESC, node DESC, id DESC "
			"LIMIT $4::bigint | acme | bounced | 2026-12-07 "
			"00:00:00+00 | 105" },
		{ 1796601600 - 86400, 1796601600, 7,
		    SEL " WHERE account = $1 AND type = $2::text AND dt >= "
			"$3::timestamptz AND dt < $4::timestamptz ORDER BY dt "
			"DESC, node DESC, id DESC LIMIT $5::bigint | acme | "
			"bounced | 2026-12-06 00:00:00+00 | 2026-12-07 "
			"00:00:00+00 | 7" },
		{ 0, 1796601600, 1,
		    SEL " WHERE account = $1 AND type = $2::text AND dt < "
			"$3::timestamptz ORDER BY dt DESC, node DESC, id DESC "
			"LIMIT $4::bigint | acme | bounced | 2026-12-07 "
			"00:00:00+00 | 1" },
	};
	struct statq	*q = NULL;
	struct statq_sql s;
	char		 err[256], out[4096];
	size_t		 i, j, o;

	if (statq_parse(req, strlen(req), &q, err, sizeof(err)) != STATQ_OK)
		return;
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		if (statq_sql_build_window(q, "acme", w[i].lo, w[i].hi,
			w[i].limit, &s, err, sizeof(err)) == -1) {
			t_ok(false, "window %zu: %s", i, err);
			continue;
		}
		o = (size_t)snprintf(out, sizeof(out), "%s", s.qs_text.data);
		for (j = 0; j < s.qs_nparam && o < sizeof(out); j++)
			o += (size_t)snprintf(out + o, sizeof(out) - o, " | %s",
			    s.qs_param[j]);
		t_str_eq(out, w[i].want, "window");
		statq_sql_free(&s);
	}
	/* no filter at all: the window opens the WHERE */
	if (statq_sql_build_window(q, NULL, 5, 0, 1, &s, err, sizeof(err)) ==
	    0) {
		t_ok(strstr(s.qs_text.data,
			 " WHERE type = $1::text AND dt >= "
			 "$2::timestamptz") != NULL,
		    "%s", s.qs_text.data);
		statq_sql_free(&s);
	}
	statq_free(&q);
}

int
main(void)
{
	static const struct t_case tcases[] = {
		{ "cases", t_cases },
		{ "full", t_full },
		{ "window", t_window },
	};

	return T_RUN(tcases);
}
