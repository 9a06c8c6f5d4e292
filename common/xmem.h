/*
 * xmem: allocation that cannot fail. On exhaustion the process logs and
 * exits (log_fatalx): a daemon out of memory cannot keep its promises, and
 * the master restarts workers. Size arithmetic overflow is treated the same.
 */
#ifndef SG_XMEM_H
#define SG_XMEM_H

#include <stddef.h>
#include <stdbool.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
/* Wipes then frees; accepts NULL. For secrets (STYLE S5). */
void freezero(void *, size_t);

/* Overflow-checked size arithmetic (STYLE S2): false on overflow. */
static inline bool
size_add(size_t a, size_t b, size_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}

static inline bool
size_mul(size_t a, size_t b, size_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

#endif
