/*
 * Unit tests for the hop count of spoold/spoold_policy (hopcount_limit,
 * issue 14): Received: fields counted case-insensitively, folded ones
 * once, look-alikes not at all; more than the limit bounces.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "spoold_policy.h"
#include "tap.h"

static unsigned
t_count(const char *hdrs)
{
	struct spoold_hdrinfo h;

	spoold_hdrinfo_parse(&h, hdrs, strlen(hdrs), 1 << 20);
	return h.sh_received;
}

static void
t_counting(void)
{
	t_int_eq(t_count("Subject: x\r\n\r\n"), 0, "no Received:");
	t_int_eq(t_count("Received: a\r\nRECEIVED: b\r\nreceived:c\r\n\r\n"), 3,
	    "any case, with or without a space");
	t_int_eq(t_count("Received: from a\r\n\tby b\r\n (folded)\r\n\r\n"), 1,
	    "a folded field counts once");
	t_int_eq(
	    t_count(
		"X-Received: a\r\nReceived-SPF: pass\r\nReceivedX: c\r\n\r\n"),
	    0, "look-alike names do not count");
	t_int_eq(t_count("Subject: x\r\n\r\nReceived: in the body\r\n"), 0,
	    "the body does not count");
}

static void
t_limit(void)
{
	struct spoold_hdrinfo h;
	struct buf	      b;
	int		      i;

	buf_init(&b, 1 << 20);
	for (i = 0; i < 51; i++) {
		(void)buf_printf(&b,
		    "Received: from hop%d by relay.example\r\n", i);
		if (i == 49) {
			spoold_hdrinfo_parse(&h, b.data, b.len, 1 << 20);
			t_ok(spoold_policy_hops(&h, 50) == NULL,
			    "50 Received: lines pass");
		}
	}
	spoold_hdrinfo_parse(&h, b.data, b.len, 1 << 20);
	t_int_eq(h.sh_received, 51, "51 counted");
	t_str_eq(spoold_policy_hops(&h, 50), SPOOLD_T_HOPS,
	    "51 bounce with limit 50");
	t_str_eq(SPOOLD_T_HOPS, "554 5.4.6 too many hops", "the text");
	t_ok(spoold_policy_hops(&h, 51) == NULL, "limit 51: passes");
	buf_release(&b);
}

int
main(void)
{
	static const struct t_case tc[] = {
		{ "counting", t_counting },
		{ "limit", t_limit },
	};

	return T_RUN(tc);
}
