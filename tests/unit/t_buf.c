/* Unit tests for common/buf, qid, cidr, json and log_vis. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cidr.h"
#include "json.h"
#include "log.h"
#include "qid.h"
#include "tap.h"

static void
t_buf_limits(void)
{
	struct buf	b;
	int		rc;

	buf_init(&b, 10);
	t_ok(buf_puts(&b, "0123456789") == 0 && b.len == 10, "fills to max");
	errno = 0;
	rc = buf_putc(&b, 'x');
	t_ok(rc == -1 && errno == EMSGSIZE && b.len == 10, "refuses past max");
	t_str_eq(b.data, "0123456789", "content intact");
	buf_consume(&b, 4);
	t_str_eq(b.data, "456789", "consume");
	buf_reset(&b);
	t_ok(buf_printf(&b, "%d-%s", 42, "x") == 0, "printf");
	t_str_eq(b.data, "42-x", "printf content");
	t_ok(buf_printf(&b, "%s", "too long for it") == -1, "printf past max");
	buf_release(&b);
}

static void
t_str(void)
{
	char	d[4];

	t_ok(str_copy(d, sizeof(d), "abc") == 0, "fits");
	t_ok(str_copy(d, sizeof(d), "abcd") == -1 && strcmp(d, "abc") == 0, "truncates, reports");
	t_ok(str_printf(d, sizeof(d), "%d", 12345) == -1, "str_printf truncation");
	t_ok(str_ieq("MAIL", "mail") && !str_ieq("MAIL", "mai"), "str_ieq");
}

static void
t_qid(void)
{
	char	a[QID_SIZE], b[QID_SIZE];

	qid_make(a);
	qid_make(b);
	t_ok(qid_ok(a) && qid_ok(b), "well-formed: %s %s", a, b);
	t_ok(strcmp(a, b) < 0, "sorted by creation");
	t_ok(!qid_ok("../etc/passwd") && !qid_ok("") && !qid_ok("0123456789abcdef0123"),
	    "rejects non-ids");
	t_ok(qid_time_us(a) > 1700000000000000ULL, "time encoded");
}

static void
t_cidr(void)
{
	struct cidr	c;
	char		s[64];

	t_ok(cidr_parse("192.0.2.77/24", &c) == 0, "v4 parse");
	cidr_format(&c, s, sizeof(s));
	t_str_eq(s, "192.0.2.0/24", "host bits cleared");
	t_ok(cidr_match_str(&c, "192.0.2.1") && !cidr_match_str(&c, "192.0.3.1"), "v4 match");
	t_ok(cidr_match_str(&c, "::ffff:192.0.2.9"), "v4-mapped v6 matches");
	t_ok(cidr_parse("2001:db8::/32", &c) == 0 && cidr_match_str(&c, "2001:db8:1::5") &&
	    !cidr_match_str(&c, "2001:db9::1"), "v6");
	t_ok(cidr_parse("127.0.0.1", &c) == 0 && c.prefix == 32, "bare address");
	t_ok(cidr_parse("10.0.0.0/33", &c) == -1 && cidr_parse("nonsense", &c) == -1 &&
	    cidr_parse("10.0.0.0/", &c) == -1, "bad ranges");
}

static void
t_json(void)
{
	struct json_gen		*g = json_gen_new(false);
	struct json_val		*v;
	const char		*out;
	char			 err[128];
	int64_t			 i;

	json_obj_begin(g);
	json_kv_str(g, "a", "q\"\n\\");
	json_kv_str(g, "bad", "\xff\xfe");
	json_kv_int(g, "n", 7);
	json_kv_str(g, "z", NULL);
	json_obj_end(g);
	out = json_gen_result(g, NULL);
	t_str_eq(out, "{\"a\":\"q\\\"\\n\\\\\",\"bad\":\"\xEF\xBF\xBD\xEF\xBF\xBD\",\"n\":7,\"z\":null}",
	    "escaping and UTF-8 repair");
	v = json_parse(out, err, sizeof(err));
	t_ok(v != NULL && json_integer(json_get(v, "n"), &i) && i == 7, "round trip");
	t_ok(json_type(json_get(v, "z")) == JSON_NULL, "null");
	json_val_free(&v);
	t_ok(json_parse("{\"a\":", err, sizeof(err)) == NULL && err[0] != '\0', "bad json: %s", err);
	json_gen_free(&g);
}

static void
t_vis(void)
{
	char	d[64];

	t_str_eq(log_vis(d, sizeof(d), "a\r\nb\\", 5), "a\\x0d\\x0ab\\\\", "escapes");
	log_vis(d, 16, "0123456789abcdefghij", 20);
	t_ok(strlen(d) < 16 && strstr(d, "...") != NULL, "cut with ...: %s", d);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "buf", t_buf_limits },
		{ "str", t_str },
		{ "qid", t_qid },
		{ "cidr", t_cidr },
		{ "json", t_json },
		{ "vis", t_vis },
	};

	log_init("t_buf", LOG_DEST_STDERR);
	return T_RUN(cases);
}
