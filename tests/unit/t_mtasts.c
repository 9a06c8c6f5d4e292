/* Unit tests for common/mtasts (RFC 8461 TXT record, policy, mx match). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mtasts.h"
#include "tap.h"

static int
txt(const char *s, char *id)
{
	return mtasts_txt_parse(s, strlen(s), id);
}

static void
t_txt(void)
{
	char id[MTASTS_ID_MAX];

	t_int_eq(txt("v=STSv1; id=20160831085700Z;", id), 0, "rfc example");
	t_str_eq(id, "20160831085700Z", "rfc example id");
	t_int_eq(txt("v=STSv1;id=abc", id), 0, "no spaces");
	t_str_eq(id, "abc", "id abc");
	t_int_eq(txt("v=STSv1; ext=1; id=X9 ;", id), 0, "extension");
	t_str_eq(id, "X9", "id after extension");
	t_int_eq(txt("v=spf1 -all", id), 1, "other record");
	t_int_eq(txt("v=STSv1", id), -1, "no id");
	t_int_eq(txt("v=STSv1; id=", id), -1, "empty id");
	t_int_eq(txt("v=STSv1; id=a-b", id), -1, "id not alnum");
	t_int_eq(txt("v=STSv1; id=123456789012345678901234567890123", id), -1,
	    "id of 33");
	t_int_eq(txt("v=STSv1; id=a; id=b", id), -1, "two ids");
	t_int_eq(txt("v=STSv1 id=a", id), -1, "no semicolon");
}

static const char rfc_policy[] = "version: STSv1\r\n"
				 "mode: enforce\r\n"
				 "mx: mail.example.com\r\n"
				 "mx: *.example.net\r\n"
				 "mx: backupmx.example.com\r\n"
				 "max_age: 604800\r\n";

static int
pol(const char *s, struct mtasts_policy *p)
{
	char err[128];

	return mtasts_policy_parse(s, strlen(s), p, err, sizeof(err));
}

static void
t_policy(void)
{
	struct mtasts_policy p;

	t_int_eq(pol(rfc_policy, &p), 0, "rfc policy");
	t_int_eq(p.mode, MTASTS_MODE_ENFORCE, "mode");
	t_int_eq((long long)p.max_age, 604800, "max_age");
	t_int_eq((long long)p.n_mx, 3, "n_mx");
	t_str_eq(p.mx[1], "*.example.net", "wildcard kept");
	t_int_eq(pol("version: STSv1\nmode: testing\nmx: A.Example\n"
		     "max_age: 99999999999\n",
		     &p),
	    -1, "max_age of 11 digits");
	t_int_eq(pol("version: STSv1\nmode: testing\nmx: A.Example\n"
		     "max_age: 9999999999\nfoo: bar\n",
		     &p),
	    0, "LF lines, unknown key");
	t_int_eq((long long)p.max_age, MTASTS_MAX_AGE_MAX, "max_age clamped");
	t_str_eq(p.mx[0], "a.example", "mx lower case");
	t_int_eq(pol("version: STSv1\nmode: none\nmax_age: 1\n", &p), 0,
	    "none needs no mx");
	t_int_eq(pol("version: STSv1\nmode: enforce\nmax_age: 1\n", &p), -1,
	    "enforce needs mx");
	t_int_eq(pol("version: STSv2\nmode: none\nmax_age: 1\n", &p), -1,
	    "bad version");
	t_int_eq(pol("mode: none\nmax_age: 1\n", &p), -1, "no version");
	t_int_eq(pol("version: STSv1\nmode: strict\nmax_age: 1\n", &p), -1,
	    "bad mode");
	t_int_eq(pol("version: STSv1\nmode: none\nmax_age: -1\n", &p), -1,
	    "negative max_age");
	t_int_eq(pol("version: STSv1\nmode: testing\nmax_age: 1\nmx: a..b\n",
		     &p),
	    -1, "empty label");
	t_int_eq(pol("version: STSv1\nmode: testing\nmax_age: 1\nmx: *\n", &p),
	    -1, "bare star");
	t_int_eq(pol("version: STSv1\nmode: testing\nmax_age: 1\nmx a\n", &p),
	    -1, "no colon");
	t_int_eq(pol("version: STSv1\nmode: none\nmode: none\nmax_age: 1\n",
		     &p),
	    -1, "mode twice");
}

static void
t_match(void)
{
	struct mtasts_policy p;

	pol(rfc_policy, &p);
	t_ok(mtasts_mx_match(&p, "mail.example.com"), "exact");
	t_ok(mtasts_mx_match(&p, "MAIL.example.COM."), "case, trailing dot");
	t_ok(mtasts_mx_match(&p, "mx1.example.net"), "wildcard");
	t_ok(!mtasts_mx_match(&p, "example.net"), "wildcard needs a label");
	t_ok(!mtasts_mx_match(&p, "a.mx1.example.net"), "one label only");
	t_ok(!mtasts_mx_match(&p, "evil.example.com"), "not listed");
	t_ok(!mtasts_mx_match(&p, "mail.example.com.evil"), "suffix");
	t_ok(!mtasts_mx_match(&p, ""), "empty");
}

static void
t_format(void)
{
	struct mtasts_policy p, q;
	char		     buf[512], err[128];

	pol(rfc_policy, &p);
	t_int_eq(mtasts_policy_format(&p, '\n', buf, sizeof(buf)), 0, "format");
	t_str_eq(buf,
	    "version: STSv1\nmode: enforce\nmx: mail.example.com\n"
	    "mx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800",
	    "canonical text");
	t_ok(mtasts_policy_parse(buf, strlen(buf), &q, err, sizeof(err)) == 0 &&
		memcmp(&p, &q, sizeof(p)) == 0,
	    "parses back to the same policy");
	t_int_eq(mtasts_policy_format(&p, '\n', buf, 40), -1, "too small");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "txt", t_txt },
		{ "policy", t_policy },
		{ "match", t_match },
		{ "format", t_format },
	};

	return T_RUN(cases);
}
