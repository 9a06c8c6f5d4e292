/*
 * statq: the seed's "stat.uni" request over the delivery log (CONTRACT,
 * `spoolctl query`). Pure: statq_parse() turns a request text into a
 * struct statq (heap, freed by statq_free), or returns a status and a
 * one-line message in err naming the unknown field or operator.
 * statq_match() tests a row, statq_cmp() orders two rows by the request's
 * "order", statq_select() writes the selected values as a JSON array.
 * Rows are borrowed: statq never keeps or frees the row strings.
 */
#ifndef SG_STATQ_H
#define SG_STATQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_gen;

enum statq_field {
	STATQ_TO = 0,	  /* delivstream.to */
	STATQ_DT,	  /* delivstream.dt */
	STATQ_MSG,	  /* delivstream.msg */
	STATQ_STATUS,	  /* delivstream.status */
	STATQ_SOURCE,	  /* delivstream.source: always "1" */
	STATQ_ISSUE_ID,	  /* issue.id */
	STATQ_ISSUE_NAME, /* issue.name */
	STATQ_UNIQ,	  /* gate.uniq */
	STATQ_CATEGORY,	  /* delivstream.category (issue 15); not in
				 * the default select, which keeps the seed's
				 * eight columns */
	STATQ_URL,	  /* delivstream.url: clicked events' link
				 * (issue 16); not in the default select */
	STATQ_NFIELDS
};

enum statq_op { STATQ_EQ, STATQ_NE, STATQ_LT, STATQ_LE, STATQ_GT, STATQ_GE };

enum statq_status {
	STATQ_OK = 0,
	STATQ_EJSON,   /* not JSON, or not an object */
	STATQ_EACTION, /* "action" is not "stat.uni" */
	STATQ_EFIELD,  /* unknown field name */
	STATQ_EOP,     /* unknown operator */
	STATQ_ESHAPE   /* a member has the wrong type or value */
};

#define STATQ_MAX_FILTERS 64
#define STATQ_MAX_SELECT  32
#define STATQ_MAX_ORDER	  8
#define STATQ_VALUE_MAX	  1024
#define STATQ_REQUEST_MAX (1024 * 1024)

/* One delivery-log row. NULL strings are JSON null. */
struct statq_row {
	const char *qr_to;
	const char *qr_dt; /* "2026-11-29T16:04:05Z" */
	const char *qr_msg;
	const char *qr_status;	 /* delivered | deferred | bounced */
	uint64_t    qr_issue_id; /* 0 = none (null) */
	const char *qr_issue_name;
	const char *qr_uniq;
	const char *qr_category; /* deferred/bounced: "bad-mailbox", ... */
	const char *qr_url;	 /* clicked: the link (issue 16) */
};

struct statq_filter {
	enum statq_field qf_field;
	enum statq_op	 qf_op;
	bool		 qf_null;   /* v is null */
	bool		 qf_num_ok; /* qf_num holds v as a number */
	int64_t		 qf_num;
	char qf_str[STATQ_VALUE_MAX]; /* v as text (dt normalised) */
};

struct statq_order {
	enum statq_field qo_field;
	bool		 qo_desc;
};

struct statq {
	struct statq_filter q_filter[STATQ_MAX_FILTERS];
	size_t		    q_nfilter;
	enum statq_field    q_select[STATQ_MAX_SELECT];
	size_t		    q_nselect;
	struct statq_order  q_order[STATQ_MAX_ORDER];
	size_t		    q_norder;
	int64_t		    q_first; /* -1 = no limit */
	int64_t		    q_skip;
	bool		    q_never; /* a filter can match no row */
};

/* Field name ("delivstream.to") to enum; -1 if unknown. */
int	    statq_field_lookup(const char *name);
const char *statq_field_name(enum statq_field);
/* Operator text ("==") to enum; -1 if unknown. */
int statq_op_lookup(const char *op);

/* Parses len bytes of request text. *q_r is set only on STATQ_OK. */
enum statq_status statq_parse(const char *text, size_t len, struct statq **q_r,
    char *err, size_t errsz);
void		  statq_free(struct statq **);

bool statq_match(const struct statq *, const struct statq_row *);
/* <0, 0, >0 by the request's order keys (0 when there are none). */
int statq_cmp(const struct statq *, const struct statq_row *,
    const struct statq_row *);
/* True when rows in log order newest-first already satisfy "order" (no
 * order, or only -delivstream.dt), so a reverse scan may stop early. */
bool statq_order_is_newest_first(const struct statq *);
bool statq_order_is_oldest_first(const struct statq *);
/*
 * Which delivery-log index can feed the request (spoolctl query): an
 * equality on issue.id (STATQ_PLAN_ISSUE), else an equality on
 * delivstream.status with one of the event names (STATQ_PLAN_STATUS,
 * qp_status is that name); any other request scans the whole log
 * (STATQ_PLAN_SCAN). Either way every row still goes through statq_match.
 */
enum statq_plan_kind { STATQ_PLAN_SCAN, STATQ_PLAN_STATUS, STATQ_PLAN_ISSUE };
struct statq_plan {
	enum statq_plan_kind qp_kind;
	const char	    *qp_status; /* static text */
	uint64_t	     qp_issue;
};
void statq_plan(const struct statq *, struct statq_plan *);
/* Appends [v1, v2, ...] for the selected fields. */
void statq_select(const struct statq *, const struct statq_row *,
    struct json_gen *);

#endif
