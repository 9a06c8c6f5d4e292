/*
 * Source addresses and pools (srcaddr.h): "ADDR [HELO]" and
 * "NAME ADDR [HELO]" lines, and picking a pool's entry.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "srcaddr.h"

#define SRCADDR_WORDS	4 /* one more than any valid line has */
#define SRCADDR_LETTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

/* Splits s at blanks into at most max words (each shorter than
 * SRCADDR_HELO_MAX); the count, or max + 1 when there are more words or
 * one is too long. */
static size_t
srcaddr_words(const char *s, char w[][SRCADDR_HELO_MAX], size_t max)
{
	size_t n = 0, len;

	for (;;) {
		s += strspn(s, " \t");
		if (*s == '\0')
			return n;
		len = strcspn(s, " \t");
		if (n == max || len >= SRCADDR_HELO_MAX)
			return max + 1;
		memcpy(w[n], s, len);
		w[n++][len] = '\0';
		s += len;
	}
}

static int
srcaddr_addr(const char *s, struct srcaddr *r)
{
	struct sockaddr_in  *sin = (struct sockaddr_in *)&r->so_ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->so_ss;

	memset(&r->so_ss, 0, sizeof(r->so_ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		(void)inet_ntop(AF_INET, &sin->sin_addr, r->so_addr,
		    sizeof(r->so_addr));
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		(void)inet_ntop(AF_INET6, &sin6->sin6_addr, r->so_addr,
		    sizeof(r->so_addr));
		return 0;
	}
	return -1;
}

/* A host name for HELO: letters, digits, '.', '-', '_'. */
static bool
srcaddr_helo_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < SRCADDR_HELO_MAX && s[0] != '.' && s[0] != '-' &&
	    strspn(s, SRCADDR_LETTERS "0123456789.-_") == n;
}

bool
srcaddr_is_name(const char *s)
{
	struct srcaddr tmp;
	size_t	       n = strlen(s);

	/* a letter first: "999.1.1.1" is a bad address, not a pool */
	return n > 0 && n < SRCADDR_NAME_MAX &&
	    strchr(SRCADDR_LETTERS, s[0]) != NULL &&
	    strspn(s, SRCADDR_LETTERS "0123456789_.-") == n &&
	    srcaddr_addr(s, &tmp) == -1;
}

/* words[0] an address, words[1] (if any) a HELO name. */
static int
srcaddr_fill(char w[][SRCADDR_HELO_MAX], size_t n, struct srcaddr *r, char *why,
    size_t whysz)
{
	memset(r, 0, sizeof(*r));
	if (n == 0 || n > 2) {
		(void)snprintf(why, whysz, "want ADDR [HELO-NAME]");
		return -1;
	}
	if (srcaddr_addr(w[0], r) == -1) {
		(void)snprintf(why, whysz,
		    "not an IPv4 or IPv6 address: \"%s\"", w[0]);
		return -1;
	}
	if (n == 2 && !srcaddr_helo_ok(w[1])) {
		(void)snprintf(why, whysz, "not a host name for HELO: \"%s\"",
		    w[1]);
		return -1;
	}
	if (n == 2)
		(void)str_copy(r->so_helo, sizeof(r->so_helo), w[1]);
	return 0;
}

int
srcaddr_parse(const char *s, struct srcaddr *r, char *why, size_t whysz)
{
	char w[SRCADDR_WORDS][SRCADDR_HELO_MAX];

	return srcaddr_fill(w, srcaddr_words(s, w, SRCADDR_WORDS - 1), r, why,
	    whysz);
}

int
srcaddr_parse_pool(const char *line, char name[SRCADDR_NAME_MAX],
    struct srcaddr *r, char *why, size_t whysz)
{
	char   w[SRCADDR_WORDS][SRCADDR_HELO_MAX];
	size_t n = srcaddr_words(line, w, SRCADDR_WORDS - 1);

	if (n < 2 || n > 3) {
		(void)snprintf(why, whysz, "want NAME ADDR [HELO-NAME]");
		return -1;
	}
	if (!srcaddr_is_name(w[0])) {
		(void)snprintf(why, whysz,
		    "not a pool name (a letter, then "
		    "[A-Za-z0-9_.-], at most %d): \"%s\"",
		    SRCADDR_NAME_MAX - 1, w[0]);
		return -1;
	}
	(void)str_copy(name, SRCADDR_NAME_MAX, w[0]);
	return srcaddr_fill(w + 1, n - 1, r, why, whysz);
}

int
srcaddr_check_pools(char *const *lines, size_t n, size_t *bad_r, char *why,
    size_t whysz)
{
	struct srcaddr r;
	char	       name[SRCADDR_NAME_MAX];
	size_t	       i;

	for (i = 0; i < n; i++) {
		*bad_r = i;
		if (i == SRCADDR_POOL_LINES) {
			(void)snprintf(why, whysz, "more than %d lines",
			    SRCADDR_POOL_LINES);
			return -1;
		}
		if (srcaddr_parse_pool(lines[i], name, &r, why, whysz) == -1)
			return -1;
	}
	return 0;
}

/* Line i's entry if it belongs to pool name. */
static bool
srcaddr_pool_entry(const char *line, const char *name, struct srcaddr *r)
{
	char nm[SRCADDR_NAME_MAX], why[128];

	return srcaddr_parse_pool(line, nm, r, why, sizeof(why)) == 0 &&
	    strcmp(nm, name) == 0;
}

size_t
srcaddr_pool_size(char *const *lines, size_t n, const char *name)
{
	struct srcaddr r;
	size_t	       i, k = 0;

	for (i = 0; i < n; i++)
		k += srcaddr_pool_entry(lines[i], name, &r);
	return k;
}

int
srcaddr_pick(const char *spec, char *const *lines, size_t n, const char *prefer,
    unsigned pick, struct srcaddr *r, char *why, size_t whysz)
{
	size_t i, k = 0, size;

	if (!srcaddr_is_name(spec))
		return srcaddr_parse(spec, r, why, whysz);
	if ((size = srcaddr_pool_size(lines, n, spec)) == 0) {
		(void)snprintf(why, whysz,
		    "no source_pool line names the pool \"%s\"", spec);
		return -1;
	}
	for (i = 0; prefer != NULL && i < n; i++)
		if (srcaddr_pool_entry(lines[i], spec, r) &&
		    strcmp(r->so_addr, prefer) == 0)
			return 0;
	pick %= (unsigned)size;
	for (i = 0; i < n; i++)
		if (srcaddr_pool_entry(lines[i], spec, r) && k++ == pick)
			return 0;
	return -1; /* not reached: size counted them */
}
