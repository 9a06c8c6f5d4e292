/*
 * CPU of the tracking steps for one message (bench/README.md "Tracking:
 * rewriting"): what spoold does at filing (track_links_extract: GMime,
 * gumbo, the plan), what deliverd does per recipient (track_plan_apply:
 * decode, splice, encode), and the parsing rewrite it no longer needs
 * (track_rewrite), each N times; prints CPU per message in µs. The
 * plan is applied twice: with stand-in tokens, and with deliverd's
 * HMAC tokens (spool_track_signer, one keyed context).
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
#include "spool.h"
#include "spool_track.h"
#include "track_html.h"

static int
bench_token(void *arg, int kind, unsigned link, char *out, size_t outsz)
{
	(void)arg;
	/* a token's length (39 characters) */
	return snprintf(out, outsz, "%c%038u", kind, link) > 0 ? 0 : -1;
}

/* deliverd's token: HMAC-SHA256 with a keyed context (spool_track.h). */
static int
bench_hmac_token(void *arg, int kind, unsigned link, char *out, size_t outsz)
{
	struct spool_track_ref r;

	memset(&r, 0, sizeof(r));
	r.tk_kind = (enum spool_track_kind)kind;
	(void)str_copy(r.tk_qid, sizeof(r.tk_qid), "0000000000001AAAAAAA");
	r.tk_idx = 1;
	r.tk_link = (uint16_t)link;
	return spool_track_token_with(arg, &r, out, outsz);
}

/* n applications of the plan; -1 if one fails. */
static int
bench_apply(const char *msg, size_t len, const struct track_links *tl,
    const struct track_opts *o, long n)
{
	struct buf b;
	long	   i;

	for (i = 0; i < n; i++) {
		buf_init(&b, SIZE_MAX / 2);
		if (track_plan_apply(msg, len, tl->tl_plan, tl->tl_planlen, o,
			&b) != 1)
			return -1;
		buf_release(&b);
	}
	return 0;
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
		 bench_token, NULL, false };
	struct track_links tl;
	struct buf	   b;
	static char	   msg[8 << 20];
	static const unsigned char key[SPOOL_TRACK_KEYLEN] = "bench";
	struct track_opts	   oh = o;
	double			   t0, t1, t2, t3, t4;
	size_t			   len;
	FILE			  *f;
	char			  *end;
	long			   n;
	int			   i;

	if (argc != 3 || (n = strtol(argv[2], &end, 10)) <= 0 || *end != '\0' ||
	    n > 10000000 || (f = fopen(argv[1], "rb")) == NULL) {
		fprintf(stderr, "usage: track-rewrite-bench MSGFILE N\n");
		return 2;
	}
	len = fread(msg, 1, sizeof(msg), f);
	(void)fclose(f);
	track_html_init();
	if ((oh.to_arg = spool_track_signer_new(key)) == NULL)
		return 1;
	oh.to_token = bench_hmac_token;
	(void)track_links_extract(msg, len, &tl);
	t0 = bench_cpu();
	for (i = 0; i < n; i++) {
		struct track_links x;

		(void)track_links_extract(msg, len, &x);
		track_links_free(&x);
	}
	t1 = bench_cpu();
	if (bench_apply(msg, len, &tl, &o, n) == -1)
		return 1;
	t2 = bench_cpu();
	if (bench_apply(msg, len, &tl, &oh, n) == -1)
		return 1;
	t4 = bench_cpu();
	for (i = 0; i < n; i++) {
		buf_init(&b, SIZE_MAX / 2);
		if (track_rewrite(msg, len, &o, &b) != 1)
			return 1;
		buf_release(&b);
	}
	t3 = bench_cpu();
	printf("%zu bytes, %zu links: extract+plan %.0f us, plan apply %.0f "
	       "us (with HMAC tokens %.0f), parsing rewrite %.0f us\n",
	    len, tl.tl_n, (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6,
	    (t4 - t2) / n * 1e6, (t3 - t4) / n * 1e6);
	track_links_free(&tl);
	spool_track_signer_free(oh.to_arg);
	return 0;
}
