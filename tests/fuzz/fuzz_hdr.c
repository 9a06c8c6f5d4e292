/*
 * libFuzzer target for common/hdr: the input is parsed whole and again in
 * chunks whose sizes come from the first byte; both runs must give the same
 * events, every field must lie inside the input, and nothing may crash.
 * Built with -DSG_FUZZ_STANDALONE it replays tests/fuzz/corpus/hdr/ as a
 * TAP test in `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hdr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_run(const uint8_t *d, size_t len, size_t chunk, size_t max, struct buf *out)
{
	struct hdr_limits	 lim = { 0, max };
	struct hdr		 p;
	struct hdr_field	 f;
	enum hdr_status		 st;
	size_t			 off = 0, n;

	hdr_init(&p, &lim);
	buf_reset(out);
	while ((st = hdr_next(&p, &f)) == HDR_MORE || st == HDR_FIELD) {
		if (st == HDR_FIELD) {
			if (f.hf_offset + f.hf_rawlen > len || f.hf_namelen == 0 ||
			    f.hf_valuelen > f.hf_rawlen)
				abort();
			(void)buf_printf(out, "%zu:%zu:%zu:%zu;", f.hf_offset,
			    f.hf_rawlen, f.hf_namelen, f.hf_valuelen);
			(void)buf_append(out, f.hf_value, f.hf_valuelen);
			continue;
		}
		if (off == len) {
			hdr_push_eof(&p);
			continue;
		}
		n = len - off < chunk ? len - off : chunk;
		hdr_push(&p, d + off, n);
		off += n;
	}
	if (st == HDR_END && hdr_body_offset(&p) > len)
		abort();
	(void)buf_printf(out, "=%d", (int)st);
	hdr_release(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
	struct buf	 a, b;
	size_t		 chunk = len > 0 ? (size_t)d[0] % 17 + 1 : 1;
	size_t		 max = 512 + (len > 1 ? (size_t)d[1] * 8 : 0);

	buf_init(&a, 1 << 24);
	buf_init(&b, 1 << 24);
	fuzz_run(d, len, len == 0 ? 1 : len, max, &a);
	fuzz_run(d, len, chunk, max, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	buf_release(&a);
	buf_release(&b);
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
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", src ? src : ".", "hdr");
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
