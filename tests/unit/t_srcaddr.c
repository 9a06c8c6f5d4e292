/* Unit tests for common/srcaddr: source specs, pool lines, picking. */
#include "config.h"

#include <string.h>

#include "srcaddr.h"
#include "tap.h"

static void
t_parse(void)
{
	static const struct {
		const char *in, *addr, *helo;
	} v[] = {
		{ "192.0.2.7", "192.0.2.7", "" },
		{ "  192.0.2.7\tmta7.example.com ", "192.0.2.7",
		    "mta7.example.com" },
		{ "2001:db8::0:1", "2001:db8::1", "" },
		{ "2001:db8::1 mx_6.example", "2001:db8::1", "mx_6.example" },
		/* bad: NULL addr */
		{ "", NULL, NULL },
		{ "192.0.2.300", NULL, NULL },
		{ "192.0.2.7 a b", NULL, NULL },
		{ "192.0.2.7 bad/helo", NULL, NULL },
		{ "192.0.2.7 -dash.example", NULL, NULL },
		{ "mta.example", NULL, NULL },
		{ "[192.0.2.7]", NULL, NULL },
	};
	struct srcaddr r;
	char	       why[256];
	size_t	       i;
	int	       rc;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		rc = srcaddr_parse(v[i].in, &r, why, sizeof(why));
		if (v[i].addr == NULL) {
			t_ok(rc == -1 && why[0] != '\0', "refused \"%s\" (%s)",
			    v[i].in, why);
			continue;
		}
		if (!t_ok(rc == 0, "parses \"%s\"", v[i].in))
			continue;
		t_str_eq(r.so_addr, v[i].addr, v[i].in);
		t_str_eq(r.so_helo, v[i].helo, "its HELO name");
		t_ok(r.so_ss.ss_family ==
			(strchr(v[i].addr, ':') ? AF_INET6 : AF_INET),
		    "family of %s", v[i].in);
	}
}

static void
t_names(void)
{
	static const struct {
		const char *s;
		bool	    ok;
	} v[] = {
		{ "bulk", true },
		{ "b-2_x.y", true },
		{ "999.1.1.1", false },
		{ "1bulk", false },
		{ "", false },
		{ "a b", false },
		{ "::1", false },
		{ "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
		  "123",
		    true },
		{ "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
		  "1234",
		    false },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		t_ok(srcaddr_is_name(v[i].s) == v[i].ok, "name \"%s\": %s",
		    v[i].s, v[i].ok ? "yes" : "no");
}

static char *t_pool[] = {
	"bulk 192.0.2.1 one.example",
	"tx 192.0.2.9",
	"bulk 192.0.2.2",
	"bulk 2001:db8::3 three.example",
};

static void
t_pools(void)
{
	char  *bad[] = { "bulk 192.0.2.1", "bulk" };
	char   why[256];
	size_t at = 99;

	t_ok(srcaddr_check_pools(t_pool, 4, &at, why, sizeof(why)) == 0,
	    "pool lines ok");
	t_ok(srcaddr_check_pools(bad, 2, &at, why, sizeof(why)) == -1 &&
		at == 1,
	    "second line refused (%s)", why);
	t_int_eq((long long)srcaddr_pool_size(t_pool, 4, "bulk"), 3,
	    "bulk has 3");
	t_int_eq((long long)srcaddr_pool_size(t_pool, 4, "none"), 0,
	    "none has 0");
}

static void
t_pick(void)
{
	struct srcaddr r;
	char	       why[256];
	unsigned       i;
	const char    *want[] = { "192.0.2.1", "192.0.2.2", "2001:db8::3",
		   "192.0.2.1" };

	for (i = 0; i < 4; i++) {
		t_ok(srcaddr_pick("bulk", t_pool, 4, NULL, i, &r, why,
			 sizeof(why)) == 0,
		    "pick %u", i);
		t_str_eq(r.so_addr, want[i], "round robin");
	}
	t_str_eq(r.so_helo, "one.example", "the entry's HELO name");
	t_ok(srcaddr_pick("bulk", t_pool, 4, "192.0.2.2", 0, &r, why,
		 sizeof(why)) == 0 &&
		strcmp(r.so_addr, "192.0.2.2") == 0,
	    "the connection in hand is preferred");
	t_ok(srcaddr_pick("bulk", t_pool, 4, "192.0.2.9", 0, &r, why,
		 sizeof(why)) == 0 &&
		strcmp(r.so_addr, "192.0.2.1") == 0,
	    "not if the pool lacks it");
	t_ok(srcaddr_pick("nopool", t_pool, 4, NULL, 0, &r, why, sizeof(why)) ==
		    -1 &&
		strstr(why, "nopool") != NULL,
	    "unknown pool: %s", why);
	t_ok(srcaddr_pick("192.0.2.5 h.example", t_pool, 4, NULL, 0, &r, why,
		 sizeof(why)) == 0 &&
		strcmp(r.so_helo, "h.example") == 0,
	    "an address spec");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "parse", t_parse },
		{ "names", t_names },
		{ "pools", t_pools },
		{ "pick", t_pick },
	};

	return T_RUN(cases);
}
