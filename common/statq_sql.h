/*
 * statq_sql: the seed's stat.uni request (statq) as one parameterised
 * SELECT over PostgreSQL's smtpgate.events (issue 19, `spoolctl query
 * --cluster`). Pure: statq_sql_build() writes the statement text with $1..
 * placeholders and points qs_param at the values, which are the request's
 * own text (borrowed: q and account must outlive the struct) or derived
 * values held in the struct; no client value is ever part of the text.
 * The semantics are statq_match()'s and statq_cmp()'s: nulls equal only
 * nulls and sort first, "!=" holds for a null row, strings compare byte by
 * byte (COLLATE "C"), delivstream.to without case, and a dt value is the
 * day/hour/minute/second it names (a range, so the (type, dt) and
 * (account, type, dt) indexes of clusterd/schema.sql serve it).
 * The rows come in the STATQ_SQL_COL_* column order, all as text.
 */
#ifndef SG_STATQ_SQL_H
#define SG_STATQ_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "statq.h"

enum statq_sql_col {
	STATQ_SQL_COL_TO = 0,
	STATQ_SQL_COL_DT,
	STATQ_SQL_COL_MSG,
	STATQ_SQL_COL_STATUS,
	STATQ_SQL_COL_ISSUE_ID, /* NULL = none */
	STATQ_SQL_COL_ISSUE_NAME,
	STATQ_SQL_COL_UNIQ,
	STATQ_SQL_COL_CATEGORY,
	STATQ_SQL_COL_URL,
	STATQ_SQL_NCOLS
};

/* account, two per dt filter, limit, offset, a window's two bounds */
#define STATQ_SQL_MAX_PARAMS (1 + 2 * STATQ_MAX_FILTERS + 2 + 2)
#define STATQ_SQL_TEXT_MAX   (64 * 1024)

struct statq_sql {
	struct buf  qs_text; /* the statement, NUL-terminated */
	const char *qs_param[STATQ_SQL_MAX_PARAMS];
	size_t	    qs_nparam;
	char	    qs_store[STATQ_SQL_MAX_PARAMS][32]; /* derived values */
};

/*
 * Builds the SELECT for q, restricted to account when it is not NULL.
 * Returns 0, or -1 with a one-line message in err (a dt filter naming a
 * day or time that does not exist). statq_sql_free releases the text.
 */
int statq_sql_build(const struct statq *q, const char *account,
    struct statq_sql *, char *err, size_t errsz);
/*
 * The same, over the time window [lo, hi) only (unix seconds; 0: that
 * side open) and with LIMIT limit and no OFFSET (the caller skips): a
 * newest-first request read window by window, newest first, plans only
 * the day partitions of each window (with 90 of them, planning the whole
 * table costs more than running the seed's request: bench/README.md).
 */
int  statq_sql_build_window(const struct statq *q, const char *account,
     int64_t lo, int64_t hi, int64_t limit, struct statq_sql *, char *err,
     size_t errsz);
void statq_sql_free(struct statq_sql *);

#endif
