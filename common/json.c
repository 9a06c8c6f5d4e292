#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "xmem.h"

struct json_gen {
	yajl_gen   g;
	struct buf fix; /* scratch for UTF-8 repair */
};

struct json_gen *
json_gen_new(bool pretty)
{
	struct json_gen *jg;

	jg = xcalloc(1, sizeof(*jg));
	if ((jg->g = yajl_gen_alloc(NULL)) == NULL)
		log_fatalx("yajl_gen_alloc: out of memory");
	(void)yajl_gen_config(jg->g, yajl_gen_beautify, pretty ? 1 : 0);
	(void)yajl_gen_config(jg->g, yajl_gen_validate_utf8, 1);
	buf_init(&jg->fix, SIZE_MAX / 2);
	return jg;
}

void
json_gen_free(struct json_gen **jgp)
{
	if (*jgp == NULL)
		return;
	yajl_gen_free((*jgp)->g);
	buf_release(&(*jgp)->fix);
	free(*jgp);
	*jgp = NULL;
}

void
json_gen_clear(struct json_gen *jg)
{
	yajl_gen_clear(jg->g);
	yajl_gen_reset(jg->g, NULL);
}

const char *
json_gen_result(struct json_gen *jg, size_t *len_r)
{
	const unsigned char *p;
	size_t		     n;

	if (yajl_gen_get_buf(jg->g, &p, &n) != yajl_gen_status_ok)
		log_panic("yajl_gen_get_buf");
	if (len_r != NULL)
		*len_r = n;
	return (const char *)p;
}

static void
json_check(yajl_gen_status st, const char *what)
{
	if (st != yajl_gen_status_ok)
		log_panic("json: %s: yajl status %d", what, (int)st);
}

void
json_obj_begin(struct json_gen *jg)
{
	json_check(yajl_gen_map_open(jg->g), "map_open");
}

void
json_obj_end(struct json_gen *jg)
{
	json_check(yajl_gen_map_close(jg->g), "map_close");
}

void
json_arr_begin(struct json_gen *jg)
{
	json_check(yajl_gen_array_open(jg->g), "array_open");
}

void
json_arr_end(struct json_gen *jg)
{
	json_check(yajl_gen_array_close(jg->g), "array_close");
}

/* Length of a valid UTF-8 sequence at p (max n bytes), or 0. */
static size_t
json_utf8_len(const unsigned char *p, size_t n)
{
	size_t	 need, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		need = 2, cp = p[0] & 0x1F;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		need = 3, cp = p[0] & 0x0F;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		need = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (need > n)
		return 0;
	for (i = 1; i < need; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return need;
}

void
json_strn(struct json_gen *jg, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		     i, l;
	bool		     clean = true;

	for (i = 0; i < n; i += l)
		if ((l = json_utf8_len(p + i, n - i)) == 0) {
			clean = false;
			break;
		}
	if (clean) {
		json_check(yajl_gen_string(jg->g, p, n), "string");
		return;
	}
	buf_reset(&jg->fix);
	for (i = 0; i < n; i += l) {
		if ((l = json_utf8_len(p + i, n - i)) == 0) {
			(void)buf_append(&jg->fix, "\xEF\xBF\xBD", 3);
			l = 1;
		} else
			(void)buf_append(&jg->fix, p + i, l);
	}
	json_check(yajl_gen_string(jg->g, (const unsigned char *)jg->fix.data,
		       jg->fix.len),
	    "string");
}

void
json_str(struct json_gen *jg, const char *s)
{
	if (s == NULL)
		json_null(jg);
	else
		json_strn(jg, s, strlen(s));
}

void
json_key(struct json_gen *jg, const char *k)
{
	json_strn(jg, k, strlen(k));
}

void
json_int(struct json_gen *jg, int64_t v)
{
	json_check(yajl_gen_integer(jg->g, (long long)v), "integer");
}

void
json_bool(struct json_gen *jg, bool v)
{
	json_check(yajl_gen_bool(jg->g, v ? 1 : 0), "bool");
}

void
json_null(struct json_gen *jg)
{
	json_check(yajl_gen_null(jg->g), "null");
}

void
json_kv_str(struct json_gen *jg, const char *k, const char *v)
{
	json_key(jg, k);
	json_str(jg, v);
}

void
json_kv_int(struct json_gen *jg, const char *k, int64_t v)
{
	json_key(jg, k);
	json_int(jg, v);
}

void
json_kv_bool(struct json_gen *jg, const char *k, bool v)
{
	json_key(jg, k);
	json_bool(jg, v);
}

/* ---- parsing: struct json_val is yajl's node */

struct json_val *
json_parse(const char *text, char *err, size_t errsz)
{
	yajl_val v;

	if (errsz > 0)
		err[0] = '\0';
	v = yajl_tree_parse(text, err, errsz);
	if (v == NULL && errsz > 0 && err[0] == '\0')
		(void)snprintf(err, errsz, "invalid JSON");
	if (v == NULL && errsz > 0) {
		/* yajl's message spans lines; keep the first */
		char *nl = strchr(err, '\n');
		if (nl != NULL)
			*nl = '\0';
	}
	return (struct json_val *)v;
}

struct json_val *
json_parse_n(const char *text, size_t len, char *err, size_t errsz)
{
	struct json_val *v;
	char		*copy;

	copy = xstrndup(text, len);
	v = json_parse(copy, err, errsz);
	free(copy);
	return v;
}

void
json_val_free(struct json_val **vp)
{
	if (*vp != NULL)
		yajl_tree_free((yajl_val)*vp);
	*vp = NULL;
}

enum json_type
json_type(const struct json_val *jv)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;

	if (v == NULL)
		return JSON_NULL;
	switch (v->type) {
	case yajl_t_string:
		return JSON_STRING;
	case yajl_t_number:
		return JSON_NUMBER;
	case yajl_t_object:
		return JSON_OBJECT;
	case yajl_t_array:
		return JSON_ARRAY;
	case yajl_t_true:
	case yajl_t_false:
		return JSON_BOOL;
	default:
		return JSON_NULL;
	}
}

const struct json_val *
json_get(const struct json_val *jv, const char *key)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;
	size_t			 i;

	if (v == NULL || v->type != yajl_t_object)
		return NULL;
	for (i = 0; i < v->u.object.len; i++)
		if (strcmp(v->u.object.keys[i], key) == 0)
			return (const struct json_val *)v->u.object.values[i];
	return NULL;
}

size_t
json_len(const struct json_val *jv)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;

	if (v == NULL)
		return 0;
	if (v->type == yajl_t_array)
		return v->u.array.len;
	if (v->type == yajl_t_object)
		return v->u.object.len;
	return 0;
}

const struct json_val *
json_at(const struct json_val *jv, size_t i)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;

	if (i >= json_len(jv))
		return NULL;
	if (v->type == yajl_t_array)
		return (const struct json_val *)v->u.array.values[i];
	return (const struct json_val *)v->u.object.values[i];
}

const char *
json_key_at(const struct json_val *jv, size_t i)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;

	if (v == NULL || v->type != yajl_t_object || i >= v->u.object.len)
		return NULL;
	return v->u.object.keys[i];
}

const char *
json_string(const struct json_val *jv)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;

	return (v != NULL && v->type == yajl_t_string) ? v->u.string : NULL;
}

bool
json_integer(const struct json_val *jv, int64_t *r)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;

	if (v == NULL || v->type != yajl_t_number ||
	    !(v->u.number.flags & YAJL_NUMBER_INT_VALID))
		return false;
	*r = v->u.number.i;
	return true;
}

bool
json_boolean(const struct json_val *jv, bool *r)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;

	if (v == NULL || (v->type != yajl_t_true && v->type != yajl_t_false))
		return false;
	*r = v->type == yajl_t_true;
	return true;
}

const char *
json_number_text(const struct json_val *jv)
{
	const struct yajl_val_s *v = (const struct yajl_val_s *)jv;

	return (v != NULL && v->type == yajl_t_number) ? v->u.number.r : NULL;
}
