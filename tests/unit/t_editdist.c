/* Unit tests for common/editdist: distances and the nearest word. */
#include "config.h"

#include <string.h>

#include "editdist.h"
#include "log.h"
#include "tap.h"

static void
t_distance(void)
{
	static const struct {
		const char *a, *b;
		size_t	    d;
	} v[] = {
		{ "", "", 0 },
		{ "queue", "queue", 0 },
		{ "", "abc", 3 },
		{ "abc", "", 3 },
		{ "queu", "queue", 1 },
		{ "qeueu", "queue", 2 },
		{ "kitten", "sitting", 3 },
		{ "flaw", "lawn", 2 },
		{ "bounce", "bounces", 1 },
		{ "reelase", "release", 2 },
		{ "issue", "issues", 1 },
		{ "acount", "account", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		t_int_eq((long long)editdist(v[i].a, v[i].b), (long long)v[i].d,
		    v[i].a);
		t_int_eq((long long)editdist(v[i].b, v[i].a), (long long)v[i].d,
		    "symmetric");
	}
}

static void
t_bounds(void)
{
	char a[EDITDIST_MAX + 2], b[EDITDIST_MAX + 2];

	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	t_int_eq((long long)editdist(a, b), 0, "long equal words: 0");
	b[0] = 'b';
	t_int_eq((long long)editdist(a, b), EDITDIST_MAX + 1, "too long: far");
	a[EDITDIST_MAX] = '\0';
	b[EDITDIST_MAX] = '\0';
	t_int_eq((long long)editdist(a, b), 1, "EDITDIST_MAX bytes: computed");
}

static void
t_nearest(void)
{
	static const char *const w[] = { "queue", "query", "show", "issue",
		"issues" };
	const char		*n;

	n = editdist_nearest("queu", w, 5, 2);
	t_str_eq(n ? n : "(none)", "queue", "queu -> queue");
	n = editdist_nearest("isue", w, 5, 2);
	t_str_eq(n ? n : "(none)", "issue", "first of the nearest wins");
	t_ok(editdist_nearest("frobnicate", w, 5, 2) == NULL, "far: none");
	t_ok(editdist_nearest("x", w, 5, 2) == NULL,
	    "as far as its length: none");
	t_ok(editdist_nearest("", w, 5, 2) == NULL, "empty: none");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "distance", t_distance },
		{ "bounds", t_bounds },
		{ "nearest", t_nearest },
	};

	log_init("t_editdist", LOG_DEST_STDERR);
	return T_RUN(cases);
}
