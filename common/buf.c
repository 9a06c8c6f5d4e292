#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "xmem.h"

void
buf_init(struct buf *b, size_t max)
{
	if (max == 0)
		log_panic("buf_init: max 0");
	if (max > SIZE_MAX / 2)
		max = SIZE_MAX /
		    2; /* keeps max + 1 and the doubling from wrapping */
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
	b->secret = false;
}

void
buf_release(struct buf *b)
{
	if (b->secret)
		freezero(b->data, b->cap);
	else
		free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

int
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, ncap;
	char  *p;

	if (!size_add(b->len, extra, &need) || !size_add(need, 1, &need) ||
	    need - 1 > b->max) {
		errno = EMSGSIZE;
		return -1;
	}
	if (need <= b->cap)
		return 0;
	ncap = b->cap < 64 ? 64 : b->cap;
	while (ncap < need) {
		if (!size_mul(ncap, 2, &ncap)) {
			ncap = need;
			break;
		}
	}
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	if (b->secret) {
		/* never leave a copy of a secret behind in freed memory */
		if ((p = malloc(ncap)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		if (b->data != NULL)
			memcpy(p, b->data, b->len + 1);
		freezero(b->data, b->cap);
	} else if ((p = realloc(b->data, ncap)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (b->data == NULL)
		p[0] = '\0';
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_putc(struct buf *b, int c)
{
	char ch = (char)c;

	return buf_append(b, &ch, 1);
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int	n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -1;
	if (buf_reserve(b, (size_t)n) == -1)
		return -1;
	(void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int	rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n > b->len)
		log_panic("buf_consume: %zu > %zu", n, b->len);
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

int
str_copy(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(src);

	if (dstsz == 0)
		return -1;
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int
str_ncopy(char *dst, size_t dstsz, const char *src, size_t n)
{
	if (n >= dstsz) {
		if (dstsz > 0)
			dst[0] = '\0';
		return -1;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

int
str_printf(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= dstsz)
		return -1;
	return n;
}

bool
str_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool
str_iprefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

void
str_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}
