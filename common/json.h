/*
 * json: the only file that includes the yajl headers (STYLE L2). A generator for
 * events and --json output, and a tree parser for requests (spoolctl query).
 * Generator calls never fail visibly: yajl escapes strings; invalid UTF-8
 * in a string is replaced byte-wise with U+FFFD so output is always valid.
 * json_parse() returns NULL with a message in err. Trees are freed with
 * json_val_free(); pointers into a tree live as long as its root.
 */
#ifndef SG_JSON_H
#define SG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_gen;

struct json_gen *json_gen_new(bool pretty);
void		 json_gen_free(struct json_gen **);
void	    json_gen_clear(struct json_gen *); /* reuse for a new document */
const char *json_gen_result(struct json_gen *, size_t *len_r);

void json_obj_begin(struct json_gen *);
void json_obj_end(struct json_gen *);
void json_arr_begin(struct json_gen *);
void json_arr_end(struct json_gen *);
void json_key(struct json_gen *, const char *);
void json_str(struct json_gen *, const char *); /* NULL gives null */
void json_strn(struct json_gen *, const char *, size_t);
void json_int(struct json_gen *, int64_t);
void json_bool(struct json_gen *, bool);
void json_null(struct json_gen *);
/* key + value shorthands */
void json_kv_str(struct json_gen *, const char *key, const char *val);
void json_kv_int(struct json_gen *, const char *key, int64_t val);
void json_kv_bool(struct json_gen *, const char *key, bool val);

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
};
struct json_val;

struct json_val *json_parse(const char *text, char *err, size_t errsz);
/* The same over text[0..len) (a log record: no NUL of its own; parsing
 * stops at an embedded NUL). */
struct json_val *json_parse_n(const char *text, size_t len, char *err,
    size_t errsz);
void		 json_val_free(struct json_val **);
enum json_type	 json_type(const struct json_val *);
/* Object member by key, or NULL. */
const struct json_val *json_get(const struct json_val *obj, const char *key);
/* Array or object length; element i (for objects: value i, key via json_key_at). */
size_t		       json_len(const struct json_val *);
const struct json_val *json_at(const struct json_val *, size_t i);
const char	      *json_key_at(const struct json_val *obj, size_t i);
const char *json_string(const struct json_val *); /* NULL if not a string */
bool	    json_integer(const struct json_val *, int64_t *r);
bool	    json_boolean(const struct json_val *, bool *r);
/* The number's original text (e.g. "1" or "1.5"), or NULL if not a number. */
const char *json_number_text(const struct json_val *);

#endif
