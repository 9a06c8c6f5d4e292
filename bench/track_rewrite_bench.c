/*
 * CPU of the tracking steps for one message (bench/README.md "Tracking:
 * rewriting"): what spoold does at filing (track_links_extract: GMime,
 * gumbo, the plan), what deliverd does per recipient (track_plan_apply:
 * decode, splice, encode), and the parsing rewrite it no longer needs
 * (track_rewrite), each N times; prints CPU per message in µs.
 *
 *	bench/track-rewrite-bench MSGFILE N
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "track_html.h"

static int
bench_token(void *arg, int kind, unsigned link, char *out, size_t outsz)
{
	(void)arg;
	/* a token's length (39 characters) */
	return snprintf(out, outsz, "%c%038u", kind, link) > 0 ? 0 : -1;
}

static double
bench_cpu(void)
{
	struct timespec t;

	(void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct track_opts  o = { "t.bench.example", true, true, TRACK_LINKS_MAX,
		 bench_token, NULL };
	struct track_links tl;
	struct buf	   b;
	static char	   msg[8 << 20];
	double		   t0, t1, t2, t3;
	size_t		   len;
	FILE		  *f;
	char		  *end;
	long		   n;
	int		   i;

	if (argc != 3 || (n = strtol(argv[2], &end, 10)) <= 0 || *end != '\0' ||
	    n > 10000000 || (f = fopen(argv[1], "rb")) == NULL) {
		fprintf(stderr, "usage: track-rewrite-bench MSGFILE N\n");
		return 2;
	}
	len = fread(msg, 1, sizeof(msg), f);
	(void)fclose(f);
	track_html_init();
	(void)track_links_extract(msg, len, &tl);
	t0 = bench_cpu();
	for (i = 0; i < n; i++) {
		struct track_links x;

		(void)track_links_extract(msg, len, &x);
		track_links_free(&x);
	}
	t1 = bench_cpu();
	for (i = 0; i < n; i++) {
		buf_init(&b, SIZE_MAX / 2);
		if (track_plan_apply(msg, len, tl.tl_plan, tl.tl_planlen, &o,
			&b) != 1)
			return 1;
		buf_release(&b);
	}
	t2 = bench_cpu();
	for (i = 0; i < n; i++) {
		buf_init(&b, SIZE_MAX / 2);
		if (track_rewrite(msg, len, &o, &b) != 1)
			return 1;
		buf_release(&b);
	}
	t3 = bench_cpu();
	printf(
	    "%zu bytes, %zu links: extract+plan %.0f us, plan apply %.0f us, "
	    "parsing rewrite %.0f us\n",
	    len, tl.tl_n, (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6,
	    (t3 - t2) / n * 1e6);
	track_links_free(&tl);
	return 0;
}
