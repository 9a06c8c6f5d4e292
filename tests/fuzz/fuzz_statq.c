/*
 * Fuzz target for common/statq (STYLE R5, T5). With libFuzzer it is
 * LLVMFuzzerTestOneInput; built with FUZZ_STANDALONE it runs every file of
 * the seed corpus ($SMTPGATE_SRCDIR/tests/fuzz/corpus/statq, or the
 * directories given as arguments) once and prints TAP.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsx.h"
#include "json.h"
#include "statq.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const struct statq_row row = {
		.qr_to = "a@example.net", .qr_dt = "2026-11-29T16:04:05Z",
		.qr_msg = "550 5.1.1 no", .qr_status = "bounced", .qr_issue_id = 3,
		.qr_issue_name = "x", .qr_uniq = NULL,
	};
	struct statq	*q = NULL;
	struct json_gen	*jg;
	char		 err[256];

	if (statq_parse((const char *)data, len, &q, err, sizeof(err)) != STATQ_OK)
		return 0;
	(void)statq_match(q, &row);
	(void)statq_cmp(q, &row, &row);
	jg = json_gen_new(false);
	statq_select(q, &row, jg);
	json_gen_free(&jg);
	statq_free(&q);
	return 0;
}

#ifdef FUZZ_STANDALONE
static int	fuzz_n;

static void
fuzz_dir(const char *dir)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[4096], *data;
	size_t		 len;

	if ((d = opendir(dir)) == NULL) {
		printf("not ok %d - open %s\n", ++fuzz_n, dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (fsx_read_file(path, 1 << 20, &data, &len) == -1) {
			printf("not ok %d - read %s\n", ++fuzz_n, de->d_name);
			continue;
		}
		(void)LLVMFuzzerTestOneInput((const uint8_t *)data, len);
		free(data);
		printf("ok %d - %s\n", ++fuzz_n, de->d_name);
	}
	(void)closedir(d);
}

int
main(int argc, char **argv)
{
	const char	*src = getenv("SMTPGATE_SRCDIR");
	char		 dir[4096];
	int		 i;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			fuzz_dir(argv[i]);
	} else {
		(void)snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/statq",
		    src != NULL ? src : ".");
		fuzz_dir(dir);
	}
	printf("1..%d\n", fuzz_n);
	return 0;
}
#endif
