/* Unit tests for common/buf: the bounded buffer and the str_* helpers. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "tap.h"

static void
t_buf_limits(void)
{
	struct buf b;
	int	   rc;

	buf_init(&b, 10);
	t_ok(b.data == NULL && b.len == 0, "init allocates nothing");
	t_ok(buf_puts(&b, "0123456789") == 0 && b.len == 10, "fills to max");
	errno = 0;
	rc = buf_putc(&b, 'x');
	t_ok(rc == -1 && errno == EMSGSIZE && b.len == 10, "refuses past max");
	t_str_eq(b.data, "0123456789", "content intact");
	t_ok(b.cap <= 11, "never allocates past max + 1 (cap %zu)", b.cap);
	buf_consume(&b, 4);
	t_str_eq(b.data, "456789", "consume");
	buf_consume(&b, 0);
	t_int_eq((long long)b.len, 6, "consume 0");
	buf_reset(&b);
	t_ok(b.len == 0 && b.data[0] == '\0', "reset");
	t_ok(buf_printf(&b, "%d-%s", 42, "x") == 0, "printf");
	t_str_eq(b.data, "42-x", "printf content");
	t_ok(buf_printf(&b, "%s", "too long for it") == -1 && errno == EMSGSIZE,
	    "printf past max");
	t_str_eq(b.data, "42-x", "failed printf leaves content");
	buf_release(&b);
	t_ok(b.data == NULL && b.len == 0 && b.cap == 0, "release");
	buf_release(&b);
}

static void
t_buf_binary(void)
{
	struct buf b;
	size_t	   i;
	int	   ok = 1;

	buf_init(&b, 1 << 20);
	t_ok(buf_append(&b, "a\0b", 3) == 0 && b.len == 3 &&
		b.data[1] == '\0' && b.data[3] == '\0',
	    "binary-safe, NUL after len");
	for (i = 0; i < 100000; i++)
		if (buf_putc(&b, (int)(i & 0x7f)) == -1)
			ok = 0;
	t_ok(ok && b.len == 100003 && b.data[b.len] == '\0', "grows");
	t_ok(buf_reserve(&b, SIZE_MAX) == -1 && errno == EMSGSIZE,
	    "reserve overflow");
	t_ok(buf_append(&b, "", 0) == 0, "append nothing");
	buf_release(&b);

	buf_init(&b, SIZE_MAX);
	t_ok(buf_puts(&b, "unbounded") == 0 && b.cap >= 10 && b.max < SIZE_MAX,
	    "max SIZE_MAX is clamped, still works");
	buf_release(&b);

	buf_init(&b, 64);
	b.secret = true;
	t_ok(buf_puts(&b, "password") == 0 && buf_puts(&b, " more") == 0 &&
		strcmp(b.data, "password more") == 0,
	    "secret buffer grows");
	buf_release(&b);
	t_ok(b.data == NULL, "secret release");
}

static void
t_str(void)
{
	char d[4], l[8];

	t_ok(str_copy(d, sizeof(d), "abc") == 0, "fits");
	t_ok(str_copy(d, sizeof(d), "abcd") == -1 && strcmp(d, "abc") == 0,
	    "truncates, reports");
	t_ok(str_copy(d, 0, "a") == -1, "zero-size dst");
	t_ok(str_ncopy(d, sizeof(d), "abcdef", 2) == 0 && strcmp(d, "ab") == 0,
	    "ncopy");
	t_ok(str_ncopy(d, sizeof(d), "abcdef", 4) == -1 && d[0] == '\0',
	    "ncopy too long");
	t_ok(str_printf(d, sizeof(d), "%d", 12345) == -1,
	    "str_printf truncation");
	t_int_eq(str_printf(d, sizeof(d), "%d", 123), 3, "str_printf length");
	t_ok(str_ieq("MAIL", "mail") && !str_ieq("MAIL", "mai"), "str_ieq");
	t_ok(str_iprefix("MAIL FROM:<a>", "mail from:") &&
		!str_iprefix("MAI", "mail"),
	    "str_iprefix");
	(void)str_copy(l, sizeof(l), "AbC-9z");
	str_lower(l);
	t_str_eq(l, "abc-9z", "str_lower");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "limits", t_buf_limits },
		{ "binary", t_buf_binary },
		{ "str", t_str },
	};

	log_init("t_buf", LOG_DEST_STDERR);
	return T_RUN(cases);
}
