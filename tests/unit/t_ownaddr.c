/* Unit tests for common/ownaddr (mail loops, issue 14). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "ownaddr.h"
#include "tap.h"

static const struct {
	const char	 *addr;
	enum ownaddr_kind kind;
	bool		  pin_ok;
} cases[] = {
	{ "127.0.0.1", OWNADDR_LOOPBACK, true },
	{ "127.255.3.4", OWNADDR_LOOPBACK, true },
	{ "::1", OWNADDR_LOOPBACK, true },
	{ "::ffff:127.0.0.1", OWNADDR_LOOPBACK, true },
	{ "0.0.0.0", OWNADDR_UNSPEC, false },
	{ "0.1.2.3", OWNADDR_UNSPEC, false },
	{ "::", OWNADDR_UNSPEC, false },
	{ "192.0.2.2", OWNADDR_SELF, false },
	{ "::ffff:192.0.2.2", OWNADDR_SELF, false },
	{ "2001:db8::2", OWNADDR_SELF, false },
	{ "192.0.2.3", OWNADDR_REMOTE, true },
	{ "2001:db8::3", OWNADDR_REMOTE, true },
	{ "::2", OWNADDR_REMOTE, true },
	{ "128.0.0.1", OWNADDR_REMOTE, true },
	{ "not an address", OWNADDR_REMOTE, true },
};

static void
t_classify(void)
{
	struct ownaddr oa;
	size_t	       i;

	memset(&oa, 0, sizeof(oa));
	t_ok(ownaddr_add(&oa, "192.0.2.2") == 0, "add an IPv4 address");
	t_ok(ownaddr_add(&oa, "2001:db8::2") == 0, "add an IPv6 address");
	t_ok(ownaddr_add(&oa, "192.0.2.2") == 0 && oa.oa_n == 2,
	    "a duplicate is kept once");
	t_ok(ownaddr_add(&oa, "192.0.2.0/24") == -1, "a range is no address");
	t_ok(ownaddr_add(&oa, "gate.test") == -1, "a name is no address");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t_int_eq(ownaddr_classify_str(&oa, cases[i].addr),
		    cases[i].kind, cases[i].addr);
		t_ok(ownaddr_pin_ok(&oa, cases[i].addr) == cases[i].pin_ok,
		    "pinning %s: %s", cases[i].addr,
		    cases[i].pin_ok ? "yes" : "no");
	}
	ownaddr_free(&oa);
	t_ok(oa.oa_v == NULL && oa.oa_n == 0, "free empties the set");
	ownaddr_free(NULL);
}

/* Specific listen addresses are the set; the wildcard adds the interfaces
 * (at least loopback's 127.0.0.1, which getifaddrs always reports). */
static void
t_load(void)
{
	struct conf_listen l[2];
	struct ownaddr	   oa;
	char		   err[256] = "";

	memset(l, 0, sizeof(l));
	(void)snprintf(l[0].cl_addr, sizeof(l[0].cl_addr), "198.51.100.7");
	(void)snprintf(l[1].cl_addr, sizeof(l[1].cl_addr), "2001:db8::7");
	t_ok(ownaddr_load(&oa, l, 2, err, sizeof(err)) == 0, "load: %s", err);
	t_int_eq((long long)oa.oa_n, 2, "two listen addresses");
	t_int_eq(ownaddr_classify_str(&oa, "198.51.100.7"), OWNADDR_SELF,
	    "listen v4");
	t_int_eq(ownaddr_classify_str(&oa, "2001:db8::7"), OWNADDR_SELF,
	    "listen v6");
	ownaddr_free(&oa);
	(void)snprintf(l[1].cl_addr, sizeof(l[1].cl_addr), "0.0.0.0");
	if (ownaddr_load(&oa, l, 2, err, sizeof(err)) == -1) {
		t_diag("getifaddrs unavailable: %s", err);
		t_ok(oa.oa_n == 1, "the listen address is kept");
	} else
		t_ok(oa.oa_n >= 2, "wildcard: interface addresses added (%zu)",
		    oa.oa_n);
	ownaddr_free(&oa);
}

int
main(void)
{
	static const struct t_case tc[] = {
		{ "classify", t_classify },
		{ "load", t_load },
	};

	return T_RUN(tc);
}
