/* Unit tests for common/tlsrpt (RFC 8460 section 3: the _smtp._tls TXT
 * record), valid records and hostile ones. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "tlsrpt.h"

static int
txt(const char *s, struct tlsrpt_rua *r)
{
	char err[128];

	return tlsrpt_txt_parse(s, strlen(s), r, err, sizeof(err));
}

static void
t_valid(void)
{
	struct tlsrpt_rua r;

	t_int_eq(txt("v=TLSRPTv1; rua=mailto:reports@example.com", &r), 0,
	    "rfc mailto");
	t_int_eq((long long)r.n, 1, "one uri");
	t_int_eq(r.kind[0], TLSRPT_MAILTO, "mailto kind");
	t_str_eq(r.addr[0], "reports@example.com", "address");
	t_int_eq(txt("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
		     &r),
	    0, "rfc https");
	t_int_eq(r.kind[0], TLSRPT_HTTPS, "https kind");
	t_str_eq(r.uri[0], "https://reporting.example.com/v1/tlsrpt", "uri");
	t_int_eq(txt("v=TLSRPTv1;rua=mailto:a@b.example , https://h:8443/p?x=1;"
		     " ext_1=v;",
		     &r),
	    0, "two uris, WSP around the comma, extension, trailing ;");
	t_int_eq((long long)r.n, 2, "two kept");
	t_str_eq(r.uri[1], "https://h:8443/p?x=1", "query kept");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:x%40y@d.example", &r), 0, "pct");
	t_int_eq((long long)r.n, 0, "decoded second @: ignored");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:r%2Bt@d.example?subject=x", &r), 0,
	    "percent and query");
	t_str_eq(r.addr[0], "r+t@d.example", "decoded, query dropped");
	t_int_eq(txt("v=TLSRPTv1; rua=http://a.example/,ftp://b,mailto:c@d",
		     &r),
	    0, "other schemes");
	t_int_eq((long long)r.n, 1, "only mailto kept");
	t_int_eq((long long)r.ignored, 2, "two ignored");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:a@b,mailto:c@d,mailto:e@f,"
		     "mailto:g@h,mailto:i@j,https://k",
		     &r),
	    0, "six uris");
	t_int_eq((long long)r.n, TLSRPT_RUA_MAX, "at most TLSRPT_RUA_MAX");
	t_int_eq((long long)r.ignored, 2, "the rest ignored");
}

static void
t_hostile(void)
{
	struct tlsrpt_rua r;
	char		  big[2048], nul[] = "v=TLSRPTv1; rua=mailto:a@b\0x";
	char		  err[128];

	t_int_eq(txt("v=spf1 -all", &r), 1, "other record");
	t_int_eq(txt("v=TLSRPTv10; rua=mailto:a@b", &r), 1, "other version");
	t_int_eq(txt("V=TLSRPTv1; rua=mailto:a@b", &r), 1, "case matters");
	t_int_eq(txt(" v=TLSRPTv1; rua=mailto:a@b", &r), 1, "leading space");
	t_int_eq(txt("v=TLSRPTv1", &r), -1, "no rua");
	t_int_eq(txt("v=TLSRPTv1;", &r), -1, "no rua, delimiter");
	t_int_eq(txt("v=TLSRPTv1; rua=", &r), -1, "empty rua");
	t_int_eq(txt("v=TLSRPTv1; rua=,mailto:a@b", &r), -1, "empty uri");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:a@b,", &r), -1, "trailing comma");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:a@b; rua=https://c", &r), -1,
	    "two rua");
	t_int_eq(txt("v=TLSRPTv1 rua=mailto:a@b", &r), -1, "no delimiter");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:a@b mailto:c@d", &r), -1,
	    "space, no comma");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:a@b\r\nBcc: x@y", &r), -1,
	    "CRLF injection");
	t_int_eq(tlsrpt_txt_parse(nul, sizeof(nul) - 1, &r, err, sizeof(err)),
	    -1, "NUL inside");
	t_int_eq(txt("v=TLSRPTv1; =x; rua=mailto:a@b", &r), -1, "empty name");
	t_int_eq(txt("v=TLSRPTv1; e=a=b; rua=mailto:a@b", &r), -1,
	    "= in an extension value");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:a@b%0d%0aBcc:c@d", &r), 0,
	    "encoded CRLF");
	t_int_eq((long long)r.n, 0, "encoded CRLF ignored");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:<a@b>,mailto:@b,mailto:a@,"
		     "mailto:a%4,https://,https://u@h/,https://:1/",
		     &r),
	    0, "bad uris");
	t_int_eq((long long)r.n, 0, "none kept");
	t_int_eq((long long)r.ignored, 7, "all ignored");
	memset(big, 'a', sizeof(big));
	memcpy(big, "v=TLSRPTv1; rua=https://", 24);
	big[sizeof(big) - 1] = '\0';
	t_int_eq(txt(big, &r), 0, "an overlong uri");
	t_int_eq((long long)r.n, 0, "not kept");
	t_int_eq(txt("v=TLSRPTv1; rua=mailto:a@b;;", &r), -1, "double ;");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "valid", t_valid },
		{ "hostile", t_hostile },
	};

	return T_RUN(cases);
}
