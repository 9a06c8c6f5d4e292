/*
 * Unit tests for the live nodes' share of the limits (deliverd_cshare.c,
 * issue 19 item 7): the cluster.state parser and the division.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "deliverd_cshare.h"
#include "tap.h"

static void
t_parse(void)
{
	static const struct {
		const char *text;
		uint32_t    want;
	} cases[] = {
		{ "node a\nconnected 1\nlive_nodes 3\nupdated 5\n", 3 },
		{ "live_nodes 1", 1 },
		{ "live_nodes 0\n", 0 },
		{ "live_nodes -2\n", 0 },
		{ "live_nodes 3x\n", 0 },
		{ "live_nodes 1001\n", 0 },
		{ "live_nodes \n", 0 },
		{ "live_nodes99\n", 0 },
		{ "xlive_nodes 2\n", 0 },
		{ "node a\n", 0 },
		{ "", 0 },
		{ "live_nodes 99999999999999999999\n", 0 },
	};
	size_t i;
	char   what[32];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)snprintf(what, sizeof(what), "case %zu", i);
		t_int_eq(deliverd_cshare_parse(cases[i].text,
			     strlen(cases[i].text)),
		    cases[i].want, what);
	}
	/* a length that ends inside the number */
	t_int_eq(deliverd_cshare_parse("live_nodes 25\n", 12), 2,
	    "bounded by len");
}

static void
t_apply(void)
{
	struct shaping_limits l = { .sl_conns = 4,
		.sl_slow_conns = 1,
		.sl_rate = { .n = 20, .per_s = 1 },
		.sl_slow_rate = { .n = 0, .per_s = 1 } };

	deliverd_cshare_apply(&l, 1);
	t_ok(l.sl_conns == 4 && l.sl_rate.per_s == 1, "one node: unchanged");
	deliverd_cshare_apply(&l, 3);
	t_int_eq(l.sl_conns, 2, "4 / 3 rounded up");
	t_int_eq(l.sl_slow_conns, 1, "at least 1");
	t_ok(l.sl_rate.n == 20 && l.sl_rate.per_s == 3, "20/s over 3: 20/3s");
	t_ok(l.sl_slow_rate.n == 0, "unlimited stays unlimited");
	l.sl_conns = 0;
	deliverd_cshare_apply(&l, 2);
	t_int_eq(l.sl_conns, 0, "0 (automatic) stays");
	l.sl_rate = (struct shaping_rate){ .n = 10, .per_s = UINT32_MAX };
	deliverd_cshare_apply(&l, 2);
	t_ok(l.sl_rate.n == 5 && l.sl_rate.per_s == UINT32_MAX,
	    "no overflow of per_s");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "parse", t_parse },
		{ "apply", t_apply },
	};

	return T_RUN(cases);
}
