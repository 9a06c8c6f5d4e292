/*
 * libFuzzer target for common/rfc5322addr: iterates every mailbox of the
 * input; results must be NUL-terminated, bounded, and the iteration must
 * always advance. Built with -DSG_FUZZ_STANDALONE it replays
 * tests/fuzz/corpus/rfc5322addr/ as a TAP test in `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rfc5322addr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
	struct rfc5322addr	 r;
	enum rfc5322addr_status	 st;
	size_t			 pos = 0, last = 0, n = 0;

	while ((st = rfc5322addr_next((const char *)d, len, &pos, &r)) ==
	    RFC5322ADDR_OK || st == RFC5322ADDR_NOADDR) {
		if (strlen(r.ra_addr) >= sizeof(r.ra_addr) ||
		    strlen(r.ra_name) >= sizeof(r.ra_name) || pos > len ||
		    (pos <= last && n > 0) || ++n > len + 1)
			abort();
		if (st == RFC5322ADDR_OK && strchr(r.ra_addr, '@') == NULL)
			abort();
		last = pos;
	}
	(void)rfc5322addr_first((const char *)d, len, &r);
	return 0;
}

#ifdef SG_FUZZ_STANDALONE
/* Replays the seed corpus (or the files named on the command line) as TAP. */
#include <dirent.h>

static int
fuzz_file(const char *path)
{
	FILE	*fp;
	uint8_t	*data;
	size_t	 n;

	if ((fp = fopen(path, "rb")) == NULL)
		return -1;
	data = malloc(1 << 20);
	n = data == NULL ? 0 : fread(data, 1, 1 << 20, fp);
	fclose(fp);
	if (data == NULL)
		return -1;
	LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 0;
}

int
main(int argc, char **argv)
{
	const char	*src = getenv("SMTPGATE_SRCDIR");
	char		 dir[4096], path[8192];
	DIR		*dp;
	struct dirent	*de;
	int		 i, n = 0;

	for (i = 1; i < argc; i++)
		printf("%s %d - %s\n", fuzz_file(argv[i]) == 0 ? "ok" : "not ok", ++n, argv[i]);
	if (argc > 1) {
		printf("1..%d\n", n);
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", src ? src : ".", "rfc5322addr");
	if ((dp = opendir(dir)) == NULL) {
		printf("not ok 1 - corpus %s\n1..1\n", dir);
		return 1;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		printf("%s %d - %s\n", fuzz_file(path) == 0 ? "ok" : "not ok", ++n, de->d_name);
	}
	closedir(dp);
	printf("1..%d\n", n);
	return n > 0 ? 0 : 1;
}
#endif
