/* Unit tests for common/statq: the stat.uni request parser and evaluator. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "statq.h"
#include "tap.h"

static const struct statq_row rows[] = {
	{ .qr_to = "a@example.net",
	    .qr_dt = "2026-11-28T10:00:00Z",
	    .qr_msg = "250 ok",
	    .qr_status = "delivered",
	    .qr_issue_id = 1,
	    .qr_issue_name = NULL,
	    .qr_uniq = NULL },
	{ .qr_to = "B@example.net",
	    .qr_dt = "2026-11-29T09:30:00Z",
	    .qr_msg = "550 5.1.1 no such user",
	    .qr_status = "bounced",
	    .qr_issue_id = 2,
	    .qr_issue_name = "spring",
	    .qr_uniq = "L1",
	    .qr_category = "bad-mailbox" },
	{ .qr_to = "c@example.org",
	    .qr_dt = "2026-11-29T16:04:05Z",
	    .qr_msg = "451 4.3.0 try later",
	    .qr_status = "deferred",
	    .qr_issue_id = 2,
	    .qr_issue_name = "spring",
	    .qr_uniq = "L2",
	    .qr_category = "other" },
	{ .qr_to = "d@example.org",
	    .qr_dt = "2026-11-29T17:00:00Z",
	    .qr_msg = "635 6.7.8 no From:",
	    .qr_status = "bounced",
	    .qr_issue_id = 0,
	    .qr_issue_name = NULL,
	    .qr_uniq = NULL },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* Runs a request over rows[]; returns the matching row numbers as "0,2". */
static const char *
run(const char *req)
{
	static char   out[512];
	struct statq *q = NULL;
	char	      err[256];
	size_t	      i, o = 0;

	if (statq_parse(req, strlen(req), &q, err, sizeof(err)) != STATQ_OK) {
		(void)snprintf(out, sizeof(out), "ERR %s", err);
		return out;
	}
	out[0] = '\0';
	for (i = 0; i < NROWS; i++)
		if (statq_match(q, &rows[i]))
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%zu",
			    o ? "," : "", i);
	statq_free(&q);
	return out;
}

#define F(a, op, v) \
	"{\"filter\":[{\"a\":\"" a "\",\"op\":\"" op "\",\"v\":" v "}]}"

static const struct {
	const char *req;
	const char *want;
} match_cases[] = {
	{ .req = "{}", .want = "0,1,2,3" },
	{ .req = F("delivstream.status", "==", "\"bounced\""), .want = "1,3" },
	{ .req = F("delivstream.status", "!=", "\"bounced\""), .want = "0,2" },
	{ .req = F("delivstream.source", "==", "\"1\""), .want = "0,1,2,3" },
	{ .req = F("delivstream.source", "==", "1"), .want = "0,1,2,3" },
	{ .req = F("delivstream.source", "==", "\"2\""), .want = "" },
	{ .req = F("delivstream.to", "==", "\"b@EXAMPLE.net\""), .want = "1" },
	{ .req = F("delivstream.dt", "==", "\"2026-11-29\""), .want = "1,2,3" },
	{ .req = F("delivstream.dt", "<", "\"2026-11-29\""), .want = "0" },
	{ .req = F("delivstream.dt", ">=", "\"2026-11-29 16:00\""),
	    .want = "2,3" },
	{ .req = F("delivstream.dt", ">", "\"2026-11-29 16:04:05\""),
	    .want = "3" },
	{ .req = F("delivstream.dt", "<=", "\"2026-11-29T16:04:05Z\""),
	    .want = "0,1,2" },
	{ .req = F("issue.id", "==", "2"), .want = "1,2" },
	{ .req = F("issue.id", ">", "\"1\""), .want = "1,2" },
	{ .req = F("issue.id", "==", "null"), .want = "3" },
	{ .req = F("issue.name", "==", "null"), .want = "0,3" },
	{ .req = F("issue.name", "!=", "null"), .want = "1,2" },
	{ .req = F("issue.name", "<", "null"), .want = "" },
	{ .req = F("gate.uniq", "==", "\"L2\""), .want = "2" },
	/* issue 15: the failure's category */
	{ .req = F("delivstream.category", "==", "\"bad-mailbox\""),
	    .want = "1" },
	{ .req = F("delivstream.category", "==", "null"), .want = "0,3" },
	{ .req = F("delivstream.category", "!=", "\"other\""),
	    .want = "0,1,3" },
	{ .req = F("delivstream.category", "==", "\"nosuch\""),
	    .want = "ERR filter on delivstream.category: not a category "
		    "(bad-mailbox, "
		    "bad-domain, inactive-mailbox, quota, policy, spam, virus, "
		    "routing, "
		    "protocol, no-answer, relaying-denied, expired, other)" },
	{ .req = F("delivstream.msg", ">=", "\"5\""), .want = "1,3" },
	{ .req = "{\"action\":\"stat.uni\",\"filter\":["
		 "{\"a\":\"delivstream.status\",\"op\":\"==\",\"v\":"
		 "\"bounced\"},"
		 "{\"a\":\"issue.id\",\"op\":\"==\",\"v\":2}]}",
	    .want = "1" },
	/* errors name what they do not know */
	{ .req = F("delivstream.foo", "==", "1"),
	    .want = "ERR unknown field \"delivstream.foo\"" },
	{ .req = F("delivstream.to", "=~", "\"x\""),
	    .want = "ERR unknown operator \"=~\" (known: == != < <= > >=)" },
	{ .req = "{\"select\":[\"delivstream.bar\"]}",
	    .want = "ERR unknown field \"delivstream.bar\" in \"select\"" },
	{ .req = "{\"order\":[\"-nope\"]}",
	    .want = "ERR unknown field \"nope\" in \"order\"" },
	{ .req = "{\"action\":\"stat.other\"}",
	    .want = "ERR unknown action \"stat.other\" (only \"stat.uni\")" },
	{ .req = "[1]", .want = "ERR request must be a JSON object" },
	{ .req = "{\"first\":-1}",
	    .want = "ERR \"first\" must be a non-negative integer" },
	{ .req = "{\"filter\":{}}", .want = "ERR \"filter\" must be an array" },
	{ .req = F("delivstream.dt", "==", "\"yesterday\""),
	    .want = "ERR filter on delivstream.dt: bad date-time (use "
		    "YYYY-MM-DD[ HH:MM:SS])" },
	{ .req = F("issue.id", "==", "\"x\""),
	    .want = "ERR filter on issue.id: value must be a number" },
	{ .req = "{\"filter\":[{\"a\":1,\"op\":\"==\"}]}",
	    .want = "ERR filter 1: needs \"a\" and \"op\" strings" },
};

static void
t_match(void)
{
	size_t i;

	for (i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++)
		t_str_eq(run(match_cases[i].req), match_cases[i].want,
		    match_cases[i].req);
}

/* issue 16: engagement events (no msg), a click's url, selected and filtered */
static void
t_engage(void)
{
	static const struct statq_row er[] = {
		{ .qr_to = "a@example.net",
		    .qr_dt = "2026-11-29T18:00:00Z",
		    .qr_status = "opened",
		    .qr_issue_id = 1 },
		{ .qr_to = "a@example.net",
		    .qr_dt = "2026-11-29T18:00:05Z",
		    .qr_status = "clicked",
		    .qr_issue_id = 1,
		    .qr_url = "https://shop.example/x?a=1" },
	};
	static const char req[] =
	    "{\"filter\":[{\"a\":\"delivstream.url\","
	    "\"op\":\"!=\",\"v\":null}],\"select\":[\"delivstream.status\","
	    "\"delivstream.url\",\"delivstream.msg\"]}";
	struct statq	*q = NULL;
	struct json_gen *jg;
	const char	*out;
	char		 err[256];
	size_t		 len;

	if (statq_parse(req, strlen(req), &q, err, sizeof(err)) != STATQ_OK) {
		t_ok(false, "parse: %s", err);
		return;
	}
	t_ok(!statq_match(q, &er[0]), "an open has no url");
	t_ok(statq_match(q, &er[1]), "a click has one");
	jg = json_gen_new(false);
	statq_select(q, &er[1], jg);
	out = json_gen_result(jg, &len);
	t_str_eq(out, "[\"clicked\",\"https://shop.example/x?a=1\",null]",
	    "status, url, no msg");
	json_gen_free(&jg);
	statq_free(&q);
}

static void
t_bad_json(void)
{
	struct statq *q = NULL;
	char	      err[256];

	t_ok(statq_parse("{\"filter\":[", 11, &q, err, sizeof(err)) ==
		    STATQ_EJSON &&
		strncmp(err, "bad JSON: ", 10) == 0 && q == NULL,
	    "truncated: %s", err);
	t_ok(statq_parse("{}\0x", 4, &q, err, sizeof(err)) == STATQ_EJSON,
	    "embedded NUL refused");
	t_ok(statq_parse("", 0, &q, err, sizeof(err)) == STATQ_EJSON,
	    "empty refused");
	t_ok(statq_field_lookup("gate.uniq") == STATQ_UNIQ &&
		statq_field_lookup("gate") == -1,
	    "field lookup");
	t_ok(statq_op_lookup(">=") == STATQ_GE && statq_op_lookup("=") == -1,
	    "op lookup");
}

static int
cmp_rows(const struct statq *q, size_t a, size_t b)
{
	return statq_cmp(q, &rows[a], &rows[b]);
}

static void
t_order_select(void)
{
	static const char req[] =
	    "{\"filter\":[{\"a\":\"delivstream.status\","
	    "\"v\":\"bounced\",\"op\":\"==\"},{\"a\":\"delivstream.source\","
	    "\"op\":\"==\",\"v\":\"1\"}],\"action\":\"stat.uni\",\"select\":["
	    "\"delivstream.to\",\"delivstream.dt\",\"delivstream.msg\",\"issue."
	    "id\","
	    "\"issue.name\",\"delivstream.source\"],\"first\":100,\"skip\":"
	    "\"2\","
	    "\"order\":[\"-delivstream.dt\"]}";
	static const char req2[] =
	    "{\"order\":[\"issue.name\",\"-delivstream.to\"]}";
	struct statq	*q = NULL;
	struct json_gen *jg;
	char		 err[256];
	const char	*out;

	t_ok(statq_parse(req, strlen(req), &q, err, sizeof(err)) == STATQ_OK,
	    "seed request parses: %s", err);
	if (q == NULL)
		return;
	t_int_eq(q->q_first, 100, "first");
	t_int_eq(q->q_skip, 2, "skip as string");
	t_ok(statq_order_is_newest_first(q) && !statq_order_is_oldest_first(q),
	    "-dt is newest first");
	t_ok(cmp_rows(q, 1, 3) > 0 && cmp_rows(q, 3, 1) < 0 &&
		cmp_rows(q, 2, 2) == 0,
	    "descending dt");
	jg = json_gen_new(false);
	statq_select(q, &rows[3], jg);
	out = json_gen_result(jg, NULL);
	t_str_eq(out,
	    "[\"d@example.org\",\"2026-11-29T17:00:00Z\","
	    "\"635 6.7.8 no From:\",null,null,\"1\"]",
	    "select values");
	json_gen_free(&jg);
	statq_free(&q);
	t_ok(q == NULL, "free clears");

	t_ok(statq_parse(req2, strlen(req2), &q, err, sizeof(err)) == STATQ_OK,
	    "two order keys");
	if (q == NULL)
		return;
	t_ok(cmp_rows(q, 0, 1) < 0, "null name sorts first");
	t_ok(cmp_rows(q, 2, 1) < 0,
	    "then by to, descending (case-insensitive)");
	t_ok(!statq_order_is_newest_first(q) && !statq_order_is_oldest_first(q),
	    "mixed order needs a sort");
	statq_free(&q);
	t_ok(statq_parse("{}", 2, &q, err, sizeof(err)) == STATQ_OK &&
		q->q_first == -1 && q->q_nselect == STATQ_NFIELDS - 2 &&
		statq_order_is_oldest_first(q),
	    "defaults");
	statq_free(&q);
}

/* The parser is pure: feeding every prefix of a request must never crash
 * and must only succeed on the complete text (or a complete object). */
static void
t_prefixes(void)
{
	static const char req[] =
	    "{\"filter\":[{\"a\":\"issue.id\",\"op\":\"<=\","
	    "\"v\":3}],\"select\":[\"issue.id\"],\"first\":1}";
	struct statq *q;
	char	      err[256];
	size_t	      n, ok = 0;

	for (n = 0; n <= strlen(req); n++) {
		q = NULL;
		if (statq_parse(req, n, &q, err, sizeof(err)) == STATQ_OK)
			ok++;
		statq_free(&q);
	}
	t_int_eq((long long)ok, 1, "only the whole request parses");
}

/* Which index a request can use: "scan", "status:NAME" or "issue:N". */
static const char *
plan(const char *req)
{
	static char	  out[64];
	struct statq	 *q = NULL;
	struct statq_plan p;
	char		  err[256];

	if (statq_parse(req, strlen(req), &q, err, sizeof(err)) != STATQ_OK)
		return "ERR";
	statq_plan(q, &p);
	if (p.qp_kind == STATQ_PLAN_ISSUE)
		(void)snprintf(out, sizeof(out), "issue:%llu",
		    (unsigned long long)p.qp_issue);
	else if (p.qp_kind == STATQ_PLAN_STATUS)
		(void)snprintf(out, sizeof(out), "status:%s", p.qp_status);
	else
		(void)snprintf(out, sizeof(out), "scan");
	statq_free(&q);
	return out;
}

static void
t_plan(void)
{
	static const struct {
		const char *req;
		const char *want;
	} c[] = {
		{ "{\"filter\":[{\"a\":\"delivstream.status\",\"v\":"
		  "\"bounced\",\"op\":\"==\"},"
		  "{\"a\":\"delivstream.source\",\"op\":\"==\",\"v\":\"1\"}],"
		  "\"action\":\"stat.uni\",\"first\":100,\"order\":[\"-"
		  "delivstream.dt\"]}",
		    "status:bounced" },
		{ F("delivstream.status", "==", "\"delivered\""),
		    "status:delivered" },
		{ F("delivstream.status", "!=", "\"bounced\""), "scan" },
		{ F("delivstream.status", "==", "\"opened\""),
		    "status:opened" },
		{ F("delivstream.status", "==", "\"complained\""),
		    "status:complained" },
		{ F("delivstream.status", "==", "\"read\""), "scan" },
		{ F("delivstream.status", "==", "null"), "scan" },
		{ F("issue.id", "==", "17"), "issue:17" },
		{ F("issue.id", "==", "\"17\""), "issue:17" },
		{ F("issue.id", ">=", "17"), "scan" },
		{ F("issue.id", "==", "null"), "scan" },
		{ "{\"filter\":[{\"a\":\"delivstream.status\",\"op\":\"==\","
		  "\"v\":\"bounced\"},"
		  "{\"a\":\"issue.id\",\"op\":\"==\",\"v\":3}]}",
		    "issue:3" },
		{ F("delivstream.to", "==", "\"a@b.c\""), "scan" },
		{ "{}", "scan" },
	};
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		t_str_eq(plan(c[i].req), c[i].want, c[i].req);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ .name = "match", .fn = t_match },
		{ .name = "bad_json", .fn = t_bad_json },
		{ .name = "order_select", .fn = t_order_select },
		{ .name = "prefixes", .fn = t_prefixes },
		{ .name = "plan", .fn = t_plan },
		{ .name = "engage", .fn = t_engage },
	};

	return T_RUN(cases);
}
