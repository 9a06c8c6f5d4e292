/*
 * Unit tests for common/idn (h-asupp): internationalized domains in ASCII
 * form, address literals in one spelling, and the suppression/stop-list
 * key of an address; then through libspool, an entry written under one
 * spelling of an address is found and deleted under the others.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idn.h"
#include "spool.h"
#include "tap.h"
#include "tfix.h"

static char dir[256];

static const struct {
	const char *in, *want; /* want NULL: -1 */
} domains[] = {
	{ "example.net", "example.net" },
	{ "Example.NET", "example.net" },
	{ "bücher.example", "xn--bcher-kva.example" },
	{ "BÜCHER.Example", "xn--bcher-kva.example" },
	{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
	{ "пример.рф", "xn--e1afmkfd.xn--p1ai" },
	{ "ПРИМЕР.РФ", "xn--e1afmkfd.xn--p1ai" },
	{ "faß.de", "xn--fa-hia.de" },
	{ "[192.0.2.1]", "[192.0.2.1]" },
	{ "[IPv6:2001:DB8:0:0::1]", "[ipv6:2001:db8::1]" },
	{ "[ipv6:2001:db8::1]", "[ipv6:2001:db8::1]" },
	{ "[IPv6:bogus]", "[ipv6:bogus]" },
	{ "a\xff\xfe.example", NULL },
};

static void
t_domains(void)
{
	char   out[300];
	size_t i;

	for (i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		int rc = idn_domain_ascii(domains[i].in, out, sizeof(out));

		if (domains[i].want == NULL)
			t_ok(rc == -1 && out[0] == '\0', "%s: invalid",
			    domains[i].in);
		else if (t_int_eq(rc, 0, domains[i].in))
			t_str_eq(out, domains[i].want, domains[i].in);
	}
	t_int_eq(idn_domain_ascii("bücher.example", out, 8), -1, "too small");
}

static void
t_keys(void)
{
	char out[300];

	t_int_eq(idn_addr_key("Bob@Bücher.Example", out, sizeof(out)), 0, "ok");
	t_str_eq(out, "bob@xn--bcher-kva.example", "U-label");
	(void)idn_addr_key("BOB@XN--BCHER-KVA.example", out, sizeof(out));
	t_str_eq(out, "bob@xn--bcher-kva.example", "A-label");
	(void)idn_addr_key("Jürgen@Example.COM", out, sizeof(out));
	t_str_eq(out, "j\xc3\xbcrgen@example.com", "UTF-8 local part as is");
	(void)idn_addr_key("x@[IPv6:2001:DB8:0::1]", out, sizeof(out));
	t_str_eq(out, "x@[ipv6:2001:db8::1]", "literal");
	(void)idn_addr_key("X@a\xff.Example", out, sizeof(out));
	t_str_eq(out, "x@a\xff.example", "invalid domain: lower-cased");
	(void)idn_addr_key("noat", out, sizeof(out));
	t_str_eq(out, "noat", "no @");
	t_int_eq(idn_addr_key("bob@bücher.example", out, 5), -1, "too small");
}

/* Each spelling of one mailbox finds the entry the first wrote. */
static void
t_spool_keys(void)
{
	static const char *const forms[] = {
		"Gone@Bücher.Example",
		"gone@xn--bcher-kva.example",
		"GONE@BÜCHER.EXAMPLE",
	};
	struct spool	     *sp = t_spool_fresh(dir, sizeof(dir), "t_idn", 0);
	struct spool_txn     *t;
	struct spool_permfail pf;
	size_t		      i, j;

	for (i = 0; i < 3; i++) {
		t = t_wtxn(sp);
		memset(&pf, 0, sizeof(pf));
		(void)snprintf(pf.pf_login, sizeof(pf.pf_login), "acc");
		(void)snprintf(pf.pf_addr, sizeof(pf.pf_addr), "%s", forms[i]);
		pf.pf_when = 1;
		t_int_eq(spool_permfail_set(t, &pf), 0, "permfail set");
		t_int_eq(spool_stop_put(t, "acc", forms[i]), 0, "stop put");
		for (j = 0; j < 3; j++) {
			t_ok(spool_permfail_has(t, "acc", forms[j]),
			    "permfail %s finds %s", forms[j], forms[i]);
			t_ok(spool_stop_has(t, "acc", forms[j]),
			    "stop %s finds %s", forms[j], forms[i]);
		}
		t_int_eq(spool_permfail_get(t, "acc", forms[2], &pf), 0, "get");
		t_str_eq(pf.pf_addr, "gone@xn--bcher-kva.example", "key form");
		t_int_eq(spool_permfail_del(t, "acc", forms[(i + 1) % 3]), 0,
		    "permfail del");
		t_int_eq(spool_stop_del(t, "acc", forms[(i + 2) % 3]), 0,
		    "stop del");
		t_ok(!spool_permfail_has(t, "acc", forms[i]), "deleted");
		t_ok(!spool_stop_has(t, "acc", forms[i]), "deleted");
		t_commit(&t);
	}
	spool_close(&sp);
}

/* A stop-list entry's why: recorded, kept on a second add, and an entry
 * of the old form (a bare version byte) reads as "none recorded". */
static void
t_stop_why(void)
{
	struct spool	    *sp = t_spool_fresh(dir, sizeof(dir), "t_idn", 0);
	struct spool_txn    *t = t_wtxn(sp);
	struct spool_stopent se, got;

	memset(&se, 0, sizeof(se));
	(void)snprintf(se.se_reason, sizeof(se.se_reason), "unsubscribed");
	se.se_when = 1765000000;
	(void)snprintf(se.se_qid, sizeof(se.se_qid), "66210840022AC7177044");
	t_int_eq(spool_stop_put_why(t, "acc", "Ann@Example.net", &se), 0,
	    "put");
	(void)snprintf(se.se_reason, sizeof(se.se_reason), "complained");
	t_int_eq(spool_stop_put_why(t, "acc", "ann@example.net", &se), 0,
	    "again");
	t_int_eq(spool_stop_get(t, "acc", "ANN@example.net", &got), 0, "get");
	t_str_eq(got.se_reason, "unsubscribed", "the first why stays");
	t_ok(got.se_when == 1765000000, "when");
	t_str_eq(got.se_qid, "66210840022AC7177044", "queue id");
	t_int_eq(spool_stop_put(t, "acc", "old@example.net"), 0, "no why");
	t_int_eq(spool_stop_get(t, "acc", "old@example.net", &got), 0, "get");
	t_ok(got.se_reason[0] == '\0' && got.se_when == 0, "none recorded");
	t_int_eq(spool_stop_get(t, "acc", "nobody@example.net", &got),
	    SPOOL_ENOTFOUND, "not listed");
	t_commit(&t);
	spool_close(&sp);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "domains", t_domains },
		{ "keys", t_keys },
		{ "spool_keys", t_spool_keys },
		{ "stop_why", t_stop_why },
	};

	return T_RUN_RMTREE(cases, dir);
}
