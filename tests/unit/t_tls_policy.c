/*
 * Unit tests for the client TLS policy of common/tls (relayhost_tls,
 * issue 14): level names, and the verdict on a session in clear. Verdicts
 * on real sessions (certificates, names) are covered black-box by
 * tests/blackbox/test_relay_tls.py.
 */
#include "config.h"

#include <string.h>

#include "tap.h"
#include "tls.h"

static void
t_levels(void)
{
	static const char *const names[] = { "none", "may", "encrypt", "verify",
		"secure" };
	static const char *const bad[] = { "", "Verify", "dane", "may ",
		"Secure" };
	enum tls_level		 l;
	size_t			 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		t_ok(tls_level_parse(names[i], &l) == 0 &&
			l == (enum tls_level)i,
		    "parse %s", names[i]);
		t_str_eq(tls_level_name(l), names[i], "name round trip");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		t_ok(tls_level_parse(bad[i], &l) == -1, "refuses \"%s\"",
		    bad[i]);
	t_ok(TLS_LEVEL_NONE < TLS_LEVEL_MAY &&
		TLS_LEVEL_MAY < TLS_LEVEL_ENCRYPT &&
		TLS_LEVEL_ENCRYPT < TLS_LEVEL_VERIFY &&
		TLS_LEVEL_VERIFY < TLS_LEVEL_SECURE,
	    "levels are ordered");
}

static void
t_clear(void)
{
	struct tls_policy p = { TLS_LEVEL_NONE, "relay.example", NULL, NULL,
		0 };
	char		  why[256];

	t_ok(tls_policy_check(&p, NULL, why, sizeof(why)) == 0,
	    "none: clear is fine");
	p.tp_level = TLS_LEVEL_MAY;
	t_ok(tls_policy_check(&p, NULL, why, sizeof(why)) == 0,
	    "may: clear is fine");
	p.tp_level = TLS_LEVEL_ENCRYPT;
	t_ok(tls_policy_check(&p, NULL, why, sizeof(why)) == -1,
	    "encrypt: clear refused");
	t_str_eq(why, "TLS is required (encrypt)", "encrypt: the reason");
	p.tp_level = TLS_LEVEL_VERIFY;
	t_ok(tls_policy_check(&p, NULL, why, sizeof(why)) == -1,
	    "verify: clear refused");
	t_str_eq(why, "TLS is required (verify)", "verify: the reason");
}

static void
t_ca_file(void)
{
	struct tls_ctx *t;
	char		err[256] = "";

	tls_init();
	t = tls_client_ctx_new(NULL, err, sizeof(err));
	t_ok(t != NULL, "system store: %s", err);
	tls_ctx_free(&t);
	t = tls_client_ctx_new("/nonexistent/ca.pem", err, sizeof(err));
	t_ok(t == NULL && strstr(err, "/nonexistent/ca.pem") != NULL,
	    "a missing CA file is an error naming it: %s", err);
}

int
main(void)
{
	static const struct t_case tc[] = {
		{ "levels", t_levels },
		{ "in clear", t_clear },
		{ "CA file", t_ca_file },
	};

	return T_RUN(tc);
}
