/* Unit tests for common/xmem: overflow-checked sizes, allocation helpers. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"
#include "xmem.h"

static void
t_sizes(void)
{
	size_t r;

	t_ok(size_add(1, 2, &r) && r == 3, "add");
	t_ok(!size_add(SIZE_MAX, 1, &r), "add overflow");
	t_ok(size_mul(1 << 20, 1 << 10, &r) && r == (size_t)1 << 30, "mul");
	t_ok(!size_mul(SIZE_MAX / 2 + 1, 2, &r), "mul overflow");
	t_ok(size_mul(0, SIZE_MAX, &r) && r == 0, "mul by zero");
}

static int
freezero_null(void *arg)
{
	(void)arg;
	freezero(NULL, 10);
	return 0;
}

static void
t_alloc(void)
{
	char *p, *q;
	int  *v, st;

	p = xmalloc(0);
	t_ok(p != NULL, "xmalloc(0) gives a pointer");
	free(p);
	v = xcalloc(4, sizeof(int));
	t_ok(v[0] == 0 && v[3] == 0, "xcalloc zeroes");
	v = xreallocarray(v, 1000, sizeof(int));
	v[999] = 7;
	t_ok(v[999] == 7 && v[0] == 0, "xreallocarray grows, keeps content");
	free(v);
	p = xstrdup("hello");
	q = xstrndup("hello", 3);
	t_str_eq(p, "hello", "xstrdup");
	t_str_eq(q, "hel", "xstrndup");
	free(p);
	freezero(q, 4);
	st = t_child(freezero_null, NULL);
	t_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "freezero(NULL) is fine");
}

static int
overflow(void *arg)
{
	(void)arg;
	(void)xreallocarray(NULL, SIZE_MAX / 2, 4);
	return 0;
}

static void
t_overflow_exits(void)
{
	int st;

	st = t_child(overflow, NULL);
	t_ok(WIFEXITED(st) && WEXITSTATUS(st) == 1,
	    "size overflow is fatal (exit 1)");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "sizes", t_sizes },
		{ "alloc", t_alloc },
		{ "overflow", t_overflow_exits },
	};

	log_init("t_xmem", LOG_DEST_STDERR);
	return T_RUN(cases);
}
