/*
 * Fuzz common/statq, the stat.uni request parser and evaluator behind
 * `spoolctl query`: parse, then match, compare and select on a fixed row,
 * and build the SQL of `query --cluster` (common/statq_sql).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "json.h"
#include "statq.h"
#include "statq_sql.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const struct statq_row row = {
		.qr_to = "a@example.net",
		.qr_dt = "2026-11-29T16:04:05Z",
		.qr_msg = "550 5.1.1 no",
		.qr_status = "bounced",
		.qr_issue_id = 3,
		.qr_issue_name = "x",
		.qr_uniq = NULL,
	};
	struct statq	*q = NULL;
	struct json_gen *jg;
	struct statq_sql sql;
	char		 err[256];

	if (len > 65536)
		return 0;
	if (statq_parse((const char *)data, len, &q, err, sizeof(err)) !=
	    STATQ_OK)
		return 0;
	(void)statq_match(q, &row);
	(void)statq_cmp(q, &row, &row);
	jg = json_gen_new(false);
	statq_select(q, &row, jg);
	json_gen_free(&jg);
	if (statq_sql_build(q, "acct", &sql, err, sizeof(err)) == 0)
		statq_sql_free(&sql);
	if (statq_sql_build_window(q, NULL, 86400, 2 * 86400, 10, &sql, err,
		sizeof(err)) == 0)
		statq_sql_free(&sql);
	statq_free(&q);
	return 0;
}
