/* Unit tests for deliverd_sim.c (issue 18 item 4): which addresses are the
 * simulator's, and the reply and stage each local part gets per attempt
 * (subaddresses, case, unknown local parts, an empty simulator_domain). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_sim.h"
#include "tap.h"

static struct conf *cf;

static void
t_sim_match(void)
{
	static const struct {
		const char *addr;
		bool	    match;
	} c[] = {
		{ .addr = "delivered@simulator.smtpgate.invalid",
		    .match = true },
		{ .addr = "x@SIMULATOR.smtpgate.Invalid", .match = true },
		{ .addr = "a@b@simulator.smtpgate.invalid", .match = true },
		{ .addr = "delivered@simulator.smtpgate.invalid.example",
		    .match = false },
		{ .addr = "delivered@sub.simulator.smtpgate.invalid",
		    .match = false },
		{ .addr = "simulator.smtpgate.invalid@example.com",
		    .match = false },
		{ .addr = "delivered", .match = false },
		{ .addr = "", .match = false },
	};
	char  *saved = cf->cf_simulator_domain;
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		t_ok(deliverd_sim_match(cf, c[i].addr) == c[i].match,
		    "match %s", c[i].addr);
	cf->cf_simulator_domain = (char *)(uintptr_t) "";
	t_ok(!deliverd_sim_match(cf, "delivered@simulator.smtpgate.invalid"),
	    "simulator_domain empty: off");
	cf->cf_simulator_domain = saved;
}

static void
t_sim_reply(void)
{
	static const struct {
		const char	 *local;
		uint32_t	  attempts;
		const char	 *prefix;
		enum bounce_stage stage;
	} c[] = {
		{ "delivered", 0, "250 2.0.0 ", BOUNCE_ST_DATA },
		{ "DELIVERED", 5, "250 2.0.0 ", BOUNCE_ST_DATA },
		{ "bounce", 0, "550 5.1.1 <bounce@", BOUNCE_ST_RCPT },
		{ "bounce+any-thing", 0, "550 5.1.1 <bounce+any-thing@",
		    BOUNCE_ST_RCPT },
		{ "bounce-policy", 0, "550 5.7.1 ", BOUNCE_ST_DATA },
		{ "bounce-policy+x", 3, "550 5.7.1 ", BOUNCE_ST_DATA },
		{ "defer", 0, "451 4.7.1 ", BOUNCE_ST_RCPT },
		{ "defer", 1, "451 4.7.1 ", BOUNCE_ST_RCPT },
		{ "defer", 2, "250 2.0.0 ", BOUNCE_ST_DATA },
		{ "defer+t", 7, "250 2.0.0 ", BOUNCE_ST_DATA },
		{ "expire", 0, "450 4.2.1 ", BOUNCE_ST_RCPT },
		{ "expire", 1000, "450 4.2.1 ", BOUNCE_ST_RCPT },
		{ "complaint", 0, "250 2.0.0 ", BOUNCE_ST_DATA },
		{ "ooto", 0, "250 2.0.0 ", BOUNCE_ST_DATA },
		{ "nosuchbox", 0, "550 5.1.1 <nosuchbox@", BOUNCE_ST_RCPT },
		{ "bounc", 0, "550 5.1.1 ", BOUNCE_ST_RCPT },
		{ "bouncex", 0, "550 5.1.1 ", BOUNCE_ST_RCPT },
		{ "+bounce", 0, "550 5.1.1 ", BOUNCE_ST_RCPT },
		{ "", 0, "550 5.1.1 ", BOUNCE_ST_RCPT },
	};
	char		  addr[256], reply[SPOOL_REPLY_MAX];
	enum bounce_stage st;
	size_t		  i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		(void)snprintf(addr, sizeof(addr),
		    "%s@simulator.smtpgate.invalid", c[i].local);
		deliverd_sim_reply(cf, addr, c[i].attempts, reply,
		    sizeof(reply), &st);
		t_ok(strncmp(reply, c[i].prefix, strlen(c[i].prefix)) == 0,
		    "%s attempt %u: \"%s\" starts with \"%s\"", c[i].local,
		    (unsigned)c[i].attempts + 1, reply, c[i].prefix);
		t_int_eq(st, c[i].stage, "stage");
	}
}

static void
t_sim_after_a_delivery(void)
{
	struct deliverd_result r;

	memset(&r, 0, sizeof(r));
	(void)str_copy(r.dr_to, sizeof(r.dr_to),
	    "ooto+1@simulator.smtpgate.invalid");
	(void)str_copy(r.dr_reply, sizeof(r.dr_reply), "250 2.0.0 Ok");
	t_ok(deliverd_sim_auto_reply(cf, &r) == NULL,
	    "no auto-reply without the relay");
	(void)str_copy(r.dr_relay, sizeof(r.dr_relay), DELIVERD_SIM_RELAY);
	t_ok(deliverd_sim_result(cf, &r), "a simulated result");
	t_ok(deliverd_sim_auto_reply(cf, &r) != NULL, "ooto+1: auto-reply");
	(void)str_copy(r.dr_to, sizeof(r.dr_to), "ooto@example.com");
	t_ok(!deliverd_sim_result(cf, &r) &&
		deliverd_sim_auto_reply(cf, &r) == NULL,
	    "a relay named simulator is not enough");
	(void)str_copy(r.dr_to, sizeof(r.dr_to),
	    "delivered@simulator.smtpgate.invalid");
	t_ok(deliverd_sim_auto_reply(cf, &r) == NULL,
	    "delivered@: no auto-reply");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "match", t_sim_match },
		{ "reply", t_sim_reply },
		{ "after a delivery", t_sim_after_a_delivery },
	};
	char err[256];
	int  rc;

	if ((cf = conf_defaults(err, sizeof(err))) == NULL) {
		fprintf(stderr, "conf_defaults: %s\n", err);
		return 99;
	}
	rc = T_RUN(cases);
	conf_free(&cf);
	return rc;
}
