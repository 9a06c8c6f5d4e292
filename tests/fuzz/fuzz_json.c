/* Fuzz common/json: the tree parser (spoolctl query requests) and the
 * generator's UTF-8 repair, which must always produce JSON that parses. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

static void
fuzz_json_walk(const struct json_val *v, struct json_gen *g, int depth)
{
	size_t	i;
	int64_t n;
	bool	b;

	if (depth > 64)
		return;
	switch (json_type(v)) {
	case JSON_OBJECT:
		json_obj_begin(g);
		for (i = 0; i < json_len(v); i++) {
			json_key(g, json_key_at(v, i));
			fuzz_json_walk(json_at(v, i), g, depth + 1);
		}
		json_obj_end(g);
		break;
	case JSON_ARRAY:
		json_arr_begin(g);
		for (i = 0; i < json_len(v); i++)
			fuzz_json_walk(json_at(v, i), g, depth + 1);
		json_arr_end(g);
		break;
	case JSON_STRING:
		json_str(g, json_string(v));
		break;
	case JSON_NUMBER:
		json_int(g, json_integer(v, &n) ? n : 0);
		(void)json_number_text(v);
		break;
	case JSON_BOOL:
		json_bool(g, json_boolean(v, &b) && b);
		break;
	default:
		json_null(g);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*text, err[256];
	struct json_val *v, *again;
	struct json_gen *g;
	const char	*out;

	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* any bytes as a string value: the output must parse back */
	g = json_gen_new(false);
	json_arr_begin(g);
	json_strn(g, (const char *)data, size);
	json_arr_end(g);
	out = json_gen_result(g, NULL);
	if ((again = json_parse(out, err, sizeof(err))) == NULL)
		log_panic("generated JSON does not parse: %s", err);
	json_val_free(&again);
	json_gen_free(&g);

	if ((v = json_parse(text, err, sizeof(err))) != NULL) {
		g = json_gen_new(false);
		fuzz_json_walk(v, g, 0);
		out = json_gen_result(g, NULL);
		if (json_type(v) != JSON_NULL || strcmp(text, "null") == 0) {
			if ((again = json_parse(out, err, sizeof(err))) == NULL)
				log_panic(
				    "re-generated JSON does not parse: %s",
				    err);
			json_val_free(&again);
		}
		json_gen_free(&g);
		json_val_free(&v);
	}
	free(text);
	return 0;
}
