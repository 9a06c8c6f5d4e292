/*
 * libFuzzer target for common/srcaddr (issue 15 item 6). The input is
 * lines: the first is a source spec (source_address, an account's
 * --source-address), the others source_pool lines. Every result must keep
 * the module's promises: a parsed address is numeric text of its family,
 * a HELO name is a bounded host name, a pick comes from the pool.
 * Seeds: tests/fuzz/corpus/srcaddr/.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "srcaddr.h"

#define FUZZ_LINES (SRCADDR_POOL_LINES + 1)

static void
fuzz_check(const struct srcaddr *r)
{
	unsigned char a[16];
	int	      fam = r->so_ss.ss_family;

	if ((fam != AF_INET && fam != AF_INET6) ||
	    inet_pton(fam, r->so_addr, a) != 1 ||
	    strlen(r->so_helo) >= SRCADDR_HELO_MAX ||
	    strpbrk(r->so_helo, " \t\r\n") != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *lines[FUZZ_LINES], *p, name[SRCADDR_NAME_MAX], why[256];
	struct srcaddr r;
	size_t	       n = 0, i, bad;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (p = text; n < FUZZ_LINES && p != NULL; n++) {
		lines[n] = p;
		if ((p = strchr(p, '\n')) != NULL)
			*p++ = '\0';
	}
	if (srcaddr_parse(lines[0], &r, why, sizeof(why)) == 0)
		fuzz_check(&r);
	for (i = 1; i < n; i++)
		if (srcaddr_parse_pool(lines[i], name, &r, why, sizeof(why)) ==
		    0) {
			fuzz_check(&r);
			if (!srcaddr_is_name(name))
				abort();
		}
	if (srcaddr_check_pools(lines + 1, n - 1, &bad, why, sizeof(why)) ==
		0 &&
	    srcaddr_pick(lines[0], lines + 1, n - 1, NULL, (unsigned)size, &r,
		why, sizeof(why)) == 0)
		fuzz_check(&r);
	free(text);
	return 0;
}
