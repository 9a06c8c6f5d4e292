/*
 * dkim-sign-bench: CPU per DKIM signature through deliverd's own signing
 * path (never installed; bench/README.md "DKIM signing: key decoding").
 *
 *   dkim-sign-bench KEYFILE rsa|ed25519 N MSGFILE [nocache]
 *
 * Makes a spool in a fresh /tmp/dkim-sign-bench.XXXXXX (removed at the
 * end), copies KEYFILE byte for byte into its keys/ and registers it as
 * account "bench"'s
 * default key for bench.example, so deliverd_dkim_sign() hands
 * libopendkim exactly those bytes (PEM text, or base64 DER "MII...").
 * Then, as a delivery worker does for each message, N times: a read
 * transaction, deliverd_dkim_sign() over MSGFILE (LF turned into CRLF,
 * as smtpd stores it), the transaction ended. One signature before the
 * clock starts (the first decodes the key in any case). "nocache" turns
 * deliverd's decoded-key cache off (deliverd_dkim_cache_enable), so
 * libopendkim decodes the key for every message, as without the cache.
 *
 * Prints one line: user+sys CPU and wall time per message in
 * microseconds (getrusage of this process), the signature's size and the
 * cache's hit and miss counts.
 * Exit 0, 1 when a signature fails, 2 on usage.
 */
#include "config.h"

#include "spool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "fsx.h"
#include "tfix.h"
#include "xmem.h"

#define BENCH_KEY_MAX (64 * 1024)
#define BENCH_MSG_MAX (16 * 1024 * 1024)

struct bench {
	struct conf	*cf;
	struct spool	*sp;
	struct spool_msg m;
	char		 dir[4096];
	char		*msg;
	size_t		 msglen;
};

static __attribute__((noreturn)) void
bench_die(const char *what, const char *why)
{
	(void)fprintf(stderr, "dkim-sign-bench: %s: %s\n", what, why);
	exit(1);
}

static __attribute__((noreturn)) void
bench_usage(void)
{
	(void)fprintf(stderr,
	    "usage: dkim-sign-bench KEYFILE rsa|ed25519 N MSGFILE [nocache]\n");
	exit(2);
}

/* A fresh spool with the key in keys/ and its record. */
static void
bench_spool(struct bench *b, const char *keyfile, bool ed25519)
{
	char  *key;
	size_t keylen;
	int    rc;

	b->cf = t_spool_conf(b->dir, sizeof(b->dir), "dkim-sign-bench");
	if ((rc = spool_open(b->dir, b->cf->cf_lmdb_map_size,
		 b->cf->cf_lmdb_map_max, 0, &b->sp)) != 0)
		bench_die("spool_open", spool_strerror(rc));
	if (fsx_read_file(keyfile, BENCH_KEY_MAX, &key, &keylen) == -1)
		bench_die(keyfile, strerror(errno));
	t_dkim_key(b->cf, b->sp, "bench", "bench.example", "bench.key", ed25519,
	    key, keylen);
	freezero(key, keylen);
}

/* The message with CRLF line ends, and its envelope fields. */
static void
bench_message(struct bench *b, const char *file)
{
	struct buf crlf;
	char	  *raw;
	size_t	   len, i;

	if (fsx_read_file(file, BENCH_MSG_MAX, &raw, &len) == -1)
		bench_die(file, strerror(errno));
	buf_init(&crlf, 2 * BENCH_MSG_MAX);
	for (i = 0; i < len; i++)
		if ((raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r') &&
			buf_append(&crlf, "\r", 1) == -1) ||
		    buf_append(&crlf, raw + i, 1) == -1)
			bench_die(file, "too large");
	free(raw);
	b->msg = crlf.data;
	b->msglen = crlf.len;
	(void)str_copy(b->m.sm_qid, sizeof(b->m.sm_qid), "0123456789ABCDEF");
	(void)str_copy(b->m.sm_login, sizeof(b->m.sm_login), "bench");
	(void)str_copy(b->m.sm_from_hdr, sizeof(b->m.sm_from_hdr),
	    "from@bench.example");
}

/* One message as deliverd_worker_sign() does it; returns the signature size. */
static size_t
bench_sign_one(struct bench *b)
{
	struct spool_txn *txn;
	struct buf	  sig;
	char		  why[512];
	size_t		  n;
	int		  rc;

	buf_init(&sig, SPOOL_DKIMSIG_MAX);
	if ((rc = spool_begin(b->sp, false, &txn)) != 0)
		bench_die("spool_begin", spool_strerror(rc));
	if (deliverd_dkim_sign(txn, b->cf, &b->m, b->msg, b->msglen, &sig, why,
		sizeof(why)) != DELIVERD_DKIM_SIGNED)
		bench_die("deliverd_dkim_sign", why);
	spool_abort(&txn);
	n = sig.len;
	buf_release(&sig);
	return n;
}

static double
bench_cpu_us(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		bench_die("getrusage", strerror(errno));
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double
bench_wall_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int
main(int argc, char **argv)
{
	struct bench			 b;
	struct deliverd_dkim_cache_stats cs;
	bool				 ed25519;
	double				 cpu0, wall0, cpu, wall;
	char				*end;
	unsigned long			 n, i;
	size_t				 siglen;

	if (argc == 6 && strcmp(argv[5], "nocache") == 0)
		deliverd_dkim_cache_enable(false);
	else if (argc != 5)
		bench_usage();
	if (strcmp(argv[2], "rsa") != 0 && strcmp(argv[2], "ed25519") != 0)
		bench_usage();
	ed25519 = strcmp(argv[2], "ed25519") == 0;
	errno = 0;
	n = strtoul(argv[3], &end, 10);
	if (*end != '\0' || errno != 0 || n == 0 || n > 10000000)
		bench_usage();
	memset(&b, 0, sizeof(b));
	bench_spool(&b, argv[1], ed25519);
	bench_message(&b, argv[4]);
	siglen = bench_sign_one(&b);
	cpu0 = bench_cpu_us();
	wall0 = bench_wall_us();
	for (i = 0; i < n; i++)
		(void)bench_sign_one(&b);
	cpu = (bench_cpu_us() - cpu0) / (double)n;
	wall = (bench_wall_us() - wall0) / (double)n;
	deliverd_dkim_cache_stats(&cs);
	(void)printf("alg=%s n=%lu cpu_us_per_msg=%.1f wall_us_per_msg=%.1f "
		     "sig_bytes=%zu cache_hits=%" PRIu64
		     " cache_misses=%" PRIu64 "\n",
	    argv[2], n, cpu, wall, siglen, cs.dcs_hits, cs.dcs_misses);
	spool_close(&b.sp);
	conf_free(&b.cf);
	t_rmtree(b.dir);
	free(b.msg);
	return 0;
}
