/*
 * buf: the one growable byte string (STYLE 4.3). Binary-safe, always
 * NUL-terminated at data[len], never grows past `max`. The buffer owns its
 * memory; buf_release() frees it (wiping it first when buf_secret was set).
 * Functions return 0, or -1 with errno EMSGSIZE (would pass max) or ENOMEM.
 */
#ifndef SG_BUF_H
#define SG_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char  *data;
	size_t len;    /* bytes used, excluding the NUL */
	size_t cap;    /* bytes allocated */
	size_t max;    /* never grow past this */
	bool   secret; /* wipe on release */
};

void buf_init(struct buf *, size_t max);
void buf_release(struct buf *);
void buf_reset(struct buf *); /* len = 0, keeps memory */
int  buf_reserve(struct buf *, size_t extra);
int  buf_append(struct buf *, const void *, size_t);
int  buf_puts(struct buf *, const char *);
int  buf_putc(struct buf *, int);
int  buf_printf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *, size_t n);

/* Copies src into dst[dstsz]; returns -1 (dst holds a truncated copy) if it did not fit. */
int str_copy(char *dst, size_t dstsz, const char *src);
/* Copies exactly n bytes of src plus a NUL; -1 if n >= dstsz. */
int str_ncopy(char *dst, size_t dstsz, const char *src, size_t n);
/* snprintf that returns -1 on truncation or error, else the length. */
int str_printf(char *dst, size_t dstsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ASCII case-insensitive comparisons. */
bool str_ieq(const char *, const char *);
bool str_iprefix(const char *s, const char *prefix);
void str_lower(char *);

#endif
