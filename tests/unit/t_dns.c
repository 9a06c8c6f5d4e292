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

/* dnspython: _25._tcp.mx.example CNAME t.example; t.example TLSA
 * 3 1 1 ab*32, 2 0 1 cd*32, 3 0 0 ee*100 (too long: skipped) */
static const unsigned char t_tlsa_pkt[] = { 0x12, 0x34, 0x81, 0x00, 0x00, 0x01,
	0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x5f, 0x32, 0x35, 0x04, 0x5f,
	0x74, 0x63, 0x70, 0x02, 0x6d, 0x78, 0x07, 0x65, 0x78, 0x61, 0x6d, 0x70,
	0x6c, 0x65, 0x00, 0x00, 0x34, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x05, 0x00,
	0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 0x01, 0x74, 0xc0, 0x18, 0xc0,
	0x31, 0x00, 0x34, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x67, 0x03,
	0x00, 0x00, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
	0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
	0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
	0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
	0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
	0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
	0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
	0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
	0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xc0, 0x31, 0x00, 0x34, 0x00, 0x01,
	0x00, 0x00, 0x01, 0x2c, 0x00, 0x23, 0x03, 0x01, 0x01, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xc0, 0x31, 0x00, 0x34, 0x00, 0x01, 0x00,
	0x00, 0x01, 0x2c, 0x00, 0x23, 0x02, 0x00, 0x01, 0xcd, 0xcd, 0xcd, 0xcd,
	0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd,
	0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd,
	0xcd, 0xcd, 0xcd, 0xcd };

/* TLSA answers (DANE): CNAME skipped, records copied, a record longer than
 * DNS_TLSA_DATA_MAX skipped, max honoured, truncated packets refused. */
static void
t_tlsa(void)
{
	struct dns_tlsa t[DNS_TLSA_MAX];
	size_t		n, i;
	int		ab = 1;

	t_ok(dns_parse_tlsa(t_tlsa_pkt, sizeof(t_tlsa_pkt), t, DNS_TLSA_MAX,
		 &n) == 0,
	    "TLSA answer parses");
	t_ok(n == 2, "two usable-size records (the 100-byte one skipped)");
	t_ok(t[0].tl_usage == 3 && t[0].tl_selector == 1 &&
		t[0].tl_mtype == 1 && t[0].tl_len == 32,
	    "3 1 1 with 32 bytes");
	for (i = 0; i < 32; i++)
		ab = ab && t[0].tl_data[i] == 0xab;
	t_ok(ab, "the association data is copied");
	t_ok(t[1].tl_usage == 2 && t[1].tl_selector == 0 &&
		t[1].tl_mtype == 1 && t[1].tl_data[0] == 0xcd,
	    "2 0 1 second");
	t_ok(dns_parse_tlsa(t_tlsa_pkt, sizeof(t_tlsa_pkt), t, 1, &n) == 0 &&
		n == 1,
	    "max honoured");
	t_ok(dns_parse_tlsa(t_tlsa_pkt, sizeof(t_tlsa_pkt) - 40, t,
		 DNS_TLSA_MAX, &n) == -1,
	    "a truncated answer is refused");
}

static const struct t_case t_cases[] = {
	{ "parse", t_parse },
	{ "nullmx", t_nullmx },
	{ "sort_equal", t_sort_equal },
	{ "tlsa", t_tlsa },
};

int
main(void)
{
	return T_RUN(t_cases);
}
