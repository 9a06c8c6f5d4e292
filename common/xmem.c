#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmem.h"

void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		log_fatalx("out of memory (%zu bytes)", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p;

	if ((p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size)) == NULL)
		log_fatalx("out of memory (%zu x %zu bytes)", nmemb, size);
	return p;
}

void *
xreallocarray(void *old, size_t nmemb, size_t size)
{
	void  *p;
	size_t n;

	if (!size_mul(nmemb, size, &n))
		log_fatalx("allocation size overflow (%zu x %zu)", nmemb, size);
	if ((p = realloc(old, n == 0 ? 1 : n)) == NULL)
		log_fatalx("out of memory (%zu bytes)", n);
	return p;
}

char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		log_fatalx("out of memory (strdup)");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;

	if ((p = strndup(s, n)) == NULL)
		log_fatalx("out of memory (strndup)");
	return p;
}

void
freezero(void *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}
