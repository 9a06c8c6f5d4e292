/*
 * replay: the main() that a fuzz target links in a build without
 * --enable-fuzzing (STYLE T5). It feeds every regular file of each
 * directory argument (sorted by name; dot files skipped) and every file
 * argument to LLVMFuzzerTestOneInput() once, each in a buffer of exactly its
 * size so ASan and valgrind see overreads. Arguments starting with '-' are
 * libFuzzer options and are ignored. Without arguments it replays
 * $SMTPGATE_SRCDIR/tests/fuzz/corpus/<p>/ for a program named fuzz_<p>.
 * Exit 0 when every input ran, 77 (SKIP) when the default corpus is
 * missing; a crash is the failure.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_MAX (16u << 20) /* larger seeds are a mistake */

__attribute__((weak)) int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int
replay_file(const char *path, size_t *n_r)
{
	FILE	   *fp;
	struct stat st;
	uint8_t	   *data;
	size_t	    len;

	if ((fp = fopen(path, "rb")) == NULL || fstat(fileno(fp), &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (fp != NULL)
			fclose(fp);
		return -1;
	}
	if (st.st_size > (off_t)REPLAY_MAX) {
		fprintf(stderr, "replay: %s: larger than %u bytes\n", path,
		    REPLAY_MAX);
		fclose(fp);
		return -1;
	}
	len = (size_t)st.st_size;
	/* exactly len bytes (malloc(0) may return NULL: use 1 then) */
	if ((data = malloc(len == 0 ? 1 : len)) == NULL ||
	    fread(data, 1, len, fp) != len) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		free(data);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	printf("replay: %s (%zu bytes)\n", path, len);
	fflush(stdout);
	(void)LLVMFuzzerTestOneInput(data, len);
	free(data);
	(*n_r)++;
	return 0;
}

static int
replay_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
replay_dir(const char *dir, size_t *n_r)
{
	DIR	      *d;
	struct dirent *de;
	char	     **names = NULL, **nn, path[4096];
	size_t	       n = 0, i;
	int	       rc = 0;
	struct stat    st;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((nn = realloc(names, (n + 1) * sizeof(*names))) == NULL ||
		    (nn[n] = strdup(de->d_name)) == NULL) {
			fprintf(stderr, "replay: out of memory\n");
			free(nn != NULL ? nn : names);
			closedir(d);
			return -1;
		}
		names = nn;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), replay_cmp);
	for (i = 0; i < n; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >=
			(int)sizeof(path) ||
		    stat(path, &st) == -1)
			rc = -1;
		else if (S_ISREG(st.st_mode) && replay_file(path, n_r) == -1)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

static int
replay_path(const char *path, size_t *n_r)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return S_ISDIR(st.st_mode) ? replay_dir(path, n_r)
				   : replay_file(path, n_r);
}

int
main(int argc, char **argv)
{
	const char *src, *base;
	char	    def[4096];
	size_t	    n = 0;
	int	    i, rc = 0, npaths = 0;

	(void)LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		npaths++;
		if (replay_path(argv[i], &n) == -1)
			rc = 1;
	}
	if (npaths == 0) {
		base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (strncmp(base, "fuzz_", 5) == 0)
			base += 5;
		src = getenv("SMTPGATE_SRCDIR");
		if (snprintf(def, sizeof(def), "%s/tests/fuzz/corpus/%s",
			src ? src : ".", base) >= (int)sizeof(def))
			return 2;
		if (access(def, F_OK) == -1) {
			/* a target without seeds yet: SKIP (77), not FAIL */
			printf(
			    "replay: %s: no corpus; running the empty input\n",
			    def);
			(void)LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
			return 77;
		}
		if (replay_path(def, &n) == -1)
			rc = 1;
	}
	if (n == 0) {
		/* no seeds yet: still prove the empty input is handled */
		printf("replay: no seed files; running the empty input\n");
		(void)LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
	}
	printf("replay: %zu input(s), %s\n", n, rc == 0 ? "ok" : "errors");
	return rc;
}
