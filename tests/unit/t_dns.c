/* Unit tests for common/dns: the MX answer parser (normal, compressed,
 * null MX, null MX among others, malformed) and the preference sort. The
 * lookups themselves run against dnsmasq in tests/blackbox/test_deliverd.py. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dns.h"
#include "tap.h"

/* Builds a response packet for one MX question with the given records
 * (pref, exchange; "" is the root). Names are not compressed except the
 * owner (a pointer to the question). */
static size_t
t_pkt(unsigned char *p, const char *qname, const unsigned *pref,
    const char **mx, size_t n)
{
	size_t	      o = 12, i, rdl, s;
	const char   *q;
	unsigned char name[300];
	size_t	      nl;

	memset(p, 0, 12);
	p[0] = 0x12;
	p[1] = 0x34;
	p[2] = 0x81;
	p[3] = 0x80;
	p[5] = 1;
	p[7] = (unsigned char)n;
	for (q = qname; *q != '\0';) {
		s = strcspn(q, ".");
		p[o++] = (unsigned char)s;
		memcpy(p + o, q, s);
		o += s;
		q += s + (q[s] == '.');
	}
	p[o++] = 0;
	p[o++] = 0;
	p[o++] = 15;
	p[o++] = 0;
	p[o++] = 1;
	for (i = 0; i < n; i++) {
		nl = 0;
		for (q = mx[i]; *q != '\0';) {
			s = strcspn(q, ".");
			name[nl++] = (unsigned char)s;
			memcpy(name + nl, q, s);
			nl += s;
			q += s + (q[s] == '.');
		}
		name[nl++] = 0;
		rdl = 2 + nl;
		p[o++] = 0xc0;
		p[o++] = 12;
		p[o++] = 0;
		p[o++] = 15;
		p[o++] = 0;
		p[o++] = 1;
		p[o++] = 0;
		p[o++] = 0;
		p[o++] = 0x0e;
		p[o++] = 0x10;
		p[o++] = (unsigned char)(rdl >> 8);
		p[o++] = (unsigned char)rdl;
		p[o++] = (unsigned char)(pref[i] >> 8);
		p[o++] = (unsigned char)pref[i];
		memcpy(p + o, name, nl);
		o += nl;
	}
	return o;
}

static void
t_parse(void)
{
	unsigned char  pkt[2048];
	struct dns_mx  mx[DNS_MX_MAX];
	size_t	       len, n;
	bool	       nullmx;
	const unsigned pref[] = { 20, 10, 30 };
	const char    *hosts[] = { "mx2.example.com", "mx1.example.com",
		   "mx3.example.com" };

	len = t_pkt(pkt, "example.com", pref, hosts, 3);
	t_ok(dns_parse_mx(pkt, len, mx, DNS_MX_MAX, &n, &nullmx) == 0,
	    "parses");
	t_int_eq((long long)n, 3, "three records");
	t_ok(!nullmx, "not a null MX");
	dns_sort_mx(mx, n);
	t_str_eq(mx[0].mx_host, "mx1.example.com", "lowest preference first");
	t_str_eq(mx[2].mx_host, "mx3.example.com", "highest last");
	t_ok(dns_parse_mx(pkt, len, mx, 2, &n, &nullmx) == 0 && n == 2,
	    "bounded by max");
	t_ok(dns_parse_mx(pkt, len - 3, mx, DNS_MX_MAX, &n, &nullmx) == -1,
	    "truncated");
	t_ok(dns_parse_mx(pkt, 5, mx, DNS_MX_MAX, &n, &nullmx) == -1,
	    "no header");
}

static void
t_nullmx(void)
{
	unsigned char  pkt[2048];
	struct dns_mx  mx[DNS_MX_MAX];
	size_t	       len, n;
	bool	       nullmx;
	const unsigned pref0[] = { 0 }, pref2[] = { 0, 10 };
	const char    *root[] = { "" }, *both[] = { "", "mx.example.org" };

	len = t_pkt(pkt, "example.org", pref0, root, 1);
	t_ok(dns_parse_mx(pkt, len, mx, DNS_MX_MAX, &n, &nullmx) == 0,
	    "null MX parses");
	t_ok(nullmx && n == 0, "null MX detected (RFC 7505)");
	len = t_pkt(pkt, "example.org", pref2, both, 2);
	t_ok(dns_parse_mx(pkt, len, mx, DNS_MX_MAX, &n, &nullmx) == 0,
	    "mixed parses");
	t_ok(!nullmx && n == 1, "a null MX among others is ignored");
}

static void
t_sort_equal(void)
{
	struct dns_mx mx[4];
	size_t	      i, k;
	int	      seen_b_first = 0;

	for (k = 0; k < 200; k++) {
		memset(mx, 0, sizeof(mx));
		(void)snprintf(mx[0].mx_host, sizeof(mx[0].mx_host), "a");
		(void)snprintf(mx[1].mx_host, sizeof(mx[1].mx_host), "b");
		(void)snprintf(mx[2].mx_host, sizeof(mx[2].mx_host), "c");
		mx[0].mx_pref = mx[1].mx_pref = 10;
		mx[2].mx_pref = 5;
		dns_sort_mx(mx, 3);
		for (i = 1; i < 3; i++)
			if (mx[i - 1].mx_pref > mx[i].mx_pref)
				t_ok(0, "sorted");
		seen_b_first += strcmp(mx[1].mx_host, "b") == 0;
	}
	t_str_eq(mx[0].mx_host, "c", "preference 5 first");
	t_ok(seen_b_first > 0 && seen_b_first < 200,
	    "equal preferences are shuffled");
}

static const struct t_case t_cases[] = {
	{ "parse", t_parse },
	{ "nullmx", t_nullmx },
	{ "sort_equal", t_sort_equal },
};

int
main(void)
{
	return T_RUN(t_cases);
}
