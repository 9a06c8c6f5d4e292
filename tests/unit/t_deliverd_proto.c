/* Unit tests for deliverd_proto.c's result line: a round trip with the
 * recipient's address (issue 13: a delivery after spoolctl delete is still
 * reported), the line of an older worker without it, and bad lines. */
#include "config.h"

#include "spool.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "deliverd.h"
#include "tap.h"

static void
t_result_roundtrip(void)
{
	struct deliverd_result	 r, got;
	struct buf		 b;

	memset(&r, 0, sizeof(r));
	(void)str_copy(r.dr_qid, sizeof(r.dr_qid), "662026CA33B3BB2505E4");
	r.dr_idx = 7;
	(void)str_copy(r.dr_reply, sizeof(r.dr_reply), "250 2.0.0 Ok:\tqueued");
	(void)str_copy(r.dr_relay, sizeof(r.dr_relay), "mx[192.0.2.1]:25");
	(void)str_copy(r.dr_to, sizeof(r.dr_to), "a\\b\tc@dest.test");
	buf_init(&b, DELIVERD_LINE_MAX);
	t_int_eq(deliverd_result_format(&r, &b), 0, "format");
	t_int_eq(deliverd_result_parse(b.data, b.len - 1, &got), 0, "parse");
	t_str_eq(got.dr_qid, r.dr_qid, "qid");
	t_int_eq(got.dr_idx, 7, "idx");
	t_str_eq(got.dr_reply, r.dr_reply, "reply (escaped TAB)");
	t_str_eq(got.dr_relay, r.dr_relay, "relay");
	t_str_eq(got.dr_tls, "", "tls");
	t_str_eq(got.dr_to, r.dr_to, "address (escaped)");
	t_ok(!got.dr_skip, "not a skip");
	buf_release(&b);
}

static void
t_result_lines(void)
{
	static const char	 old[] = "R\t662026CA33B3BB2505E4\t0\t250 ok\t\t";
	static const char	 many[] = "R\t662026CA33B3BB2505E4\t0\t250 ok\t\t\ta@b\tx";
	static const char	 skip[] = "S\t662026CA33B3BB2505E4\t3";
	struct deliverd_result	 got;

	t_int_eq(deliverd_result_parse(old, sizeof(old) - 1, &got), 0,
	    "a worker's line without the address");
	t_str_eq(got.dr_to, "", "no address");
	t_int_eq(deliverd_result_parse(many, sizeof(many) - 1, &got), -1, "one field too many");
	t_int_eq(deliverd_result_parse(skip, sizeof(skip) - 1, &got), 0, "skip");
	t_ok(got.dr_skip && got.dr_idx == 3, "skip of recipient 3");
}

static const struct t_case cases[] = {
	{ "result_roundtrip", t_result_roundtrip },
	{ "result_lines", t_result_lines },
};

int
main(void)
{
	return T_RUN(cases);
}
