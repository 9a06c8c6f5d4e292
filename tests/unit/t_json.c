/* Unit tests for common/json: generator escaping and UTF-8 repair, tree
 * parser accessors. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "tap.h"

static void
t_gen(void)
{
	struct json_gen *g = json_gen_new(false);
	const char	*out;
	size_t		 len;

	json_obj_begin(g);
	json_kv_str(g, "a", "q\"\n\\");
	json_kv_str(g, "bad", "\xff\xfe");
	json_kv_int(g, "n", -7);
	json_kv_bool(g, "t", true);
	json_kv_str(g, "z", NULL);
	json_key(g, "arr");
	json_arr_begin(g);
	json_strn(g, "a\0b", 3);
	json_strn(g, "\xe2\x82", 2);		 /* truncated sequence */
	json_str(g, "\xc3\xa9\xf0\x9f\x98\x80"); /* valid 2- and 4-byte */
	json_str(g, "\xed\xa0\x80");		 /* surrogate: invalid */
	json_null(g);
	json_arr_end(g);
	json_obj_end(g);
	out = json_gen_result(g, &len);
	t_str_eq(out,
	    "{\"a\":\"q\\\"\\n\\\\\",\"bad\":\"\xEF\xBF\xBD\xEF\xBF\xBD\","
	    "\"n\":-7,\"t\":true,\"z\":null,\"arr\":[\"a\\u0000b\","
	    "\"\xEF\xBF\xBD\xEF\xBF\xBD\","
	    "\"\xc3\xa9\xf0\x9f\x98\x80\","
	    "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\",null]}",
	    "escaping and UTF-8 repair");
	t_int_eq((long long)len, (long long)strlen(out), "length");
	json_gen_clear(g);
	json_arr_begin(g);
	json_int(g, 1);
	json_arr_end(g);
	t_str_eq(json_gen_result(g, NULL), "[1]",
	    "clear starts a new document");
	json_gen_free(&g);
	t_ok(g == NULL, "free clears the pointer");
	json_gen_free(&g);
}

static void
t_parse(void)
{
	struct json_val	      *v;
	const struct json_val *a;
	char		       err[128];
	int64_t		       i;
	bool		       b;

	v = json_parse(
	    "{\"action\":\"stat.uni\",\"first\":10,\"f\":1.5,\"ok\":false,"
	    "\"list\":[1,\"x\",null,{\"k\":true}]}",
	    err, sizeof(err));
	if (!t_ok(v != NULL, "parses (%s)", v ? "" : err))
		return;
	t_ok(json_type(v) == JSON_OBJECT && json_len(v) == 5, "object of 5");
	t_str_eq(json_string(json_get(v, "action")), "stat.uni",
	    "string member");
	t_ok(json_integer(json_get(v, "first"), &i) && i == 10,
	    "integer member");
	t_ok(!json_integer(json_get(v, "f"), &i), "1.5 is not an integer");
	t_str_eq(json_number_text(json_get(v, "f")), "1.5", "number text");
	t_ok(json_boolean(json_get(v, "ok"), &b) && !b, "boolean");
	t_ok(json_get(v, "missing") == NULL, "missing key");
	t_str_eq(json_key_at(v, 1), "first", "key_at");
	t_ok(json_key_at(v, 99) == NULL && json_at(v, 99) == NULL,
	    "out of range");
	a = json_get(v, "list");
	t_ok(json_type(a) == JSON_ARRAY && json_len(a) == 4, "array of 4");
	t_ok(json_type(json_at(a, 2)) == JSON_NULL, "null element");
	t_ok(json_string(json_at(a, 0)) == NULL, "number is not a string");
	t_ok(json_get(a, "k") == NULL, "get on an array is NULL");
	t_ok(json_boolean(json_get(json_at(a, 3), "k"), &b) && b, "nested");
	t_ok(json_len(json_get(v, "action")) == 0, "len of a string is 0");
	json_val_free(&v);
	t_ok(v == NULL, "val_free clears");
	json_val_free(&v);
}

static void
t_errors(void)
{
	char		   err[128];
	size_t		   i;
	static const char *bad[] = { "", "{\"a\":", "[1,]", "{'a':1}", "nul",
		"{\"a\" 1}" };

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_val *v = json_parse(bad[i], err, sizeof(err));

		t_ok(v == NULL && err[0] != '\0' && strchr(err, '\n') == NULL,
		    "refuses \"%s\": %s", bad[i], err);
		json_val_free(&v);
	}
}

/* json_parse_n: only the len bytes count (a log record has no NUL). */
static void
t_parse_n(void)
{
	static const char text[] = "{\"a\":1}{\"b\":2}";
	struct json_val	 *v;
	char		  err[128];
	int64_t		  n = 0;

	v = json_parse_n(text, 7, err, sizeof(err));
	t_ok(v != NULL && json_integer(json_get(v, "a"), &n) && n == 1,
	    "the first 7 bytes: {\"a\":1}");
	json_val_free(&v);
	v = json_parse_n(text, 6, err, sizeof(err));
	t_ok(v == NULL && err[0] != '\0', "cut short: refused (%s)", err);
	json_val_free(&v);
	v = json_parse_n(text, sizeof(text) - 1, err, sizeof(err));
	t_ok(v == NULL, "two documents: refused");
	json_val_free(&v);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "gen", t_gen },
		{ "parse", t_parse },
		{ "errors", t_errors },
		{ "parse_n", t_parse_n },
	};

	log_init("t_json", LOG_DEST_STDERR);
	return T_RUN(cases);
}
