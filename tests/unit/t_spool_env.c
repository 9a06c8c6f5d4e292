/*
 * Unit tests for the envelope format (spool_env_*): round trip, a table of
 * malformed inputs, every truncation of a valid envelope (byte at a time),
 * spool_env_read on a file, and the golden files data/spool_env.{in,ref}.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "spool.h"
#include "tap.h"

#define QID "0123456789ABCDEF0123"

static void
env_sample(struct spool_env *e)
{
	spool_env_init(e);
	(void)str_copy(e->pe_qid, sizeof(e->pe_qid), QID);
	e->pe_time = 1764432245;
	(void)str_copy(e->pe_account, sizeof(e->pe_account),
	    "demo.demo@smtpgate");
	(void)str_copy(e->pe_client, sizeof(e->pe_client), "[192.0.2.1]:4567");
	(void)str_copy(e->pe_helo, sizeof(e->pe_helo),
	    "client.example  with spaces");
	(void)str_copy(e->pe_tls, sizeof(e->pe_tls),
	    "TLSv1.3 TLS_AES_256_GCM_SHA384");
	(void)str_copy(e->pe_auth, sizeof(e->pe_auth), "demo.demo@smtpgate");
	(void)str_copy(e->pe_from, sizeof(e->pe_from), "Sender@Example.COM");
	(void)str_copy(e->pe_from_params, sizeof(e->pe_from_params),
	    "SIZE=100 BODY=8BITMIME");
	(void)spool_env_add_rcpt(e, "a@example.org");
	(void)spool_env_add_rcpt(e, "\"quoted local\"@example.org");
	(void)spool_env_add_rcpt(e, "b@example.net");
}

static bool
env_eq(const struct spool_env *a, const struct spool_env *b)
{
	size_t i;

	if (strcmp(a->pe_qid, b->pe_qid) != 0 || a->pe_time != b->pe_time ||
	    strcmp(a->pe_account, b->pe_account) != 0 ||
	    strcmp(a->pe_client, b->pe_client) != 0 ||
	    strcmp(a->pe_helo, b->pe_helo) != 0 ||
	    strcmp(a->pe_tls, b->pe_tls) != 0 ||
	    strcmp(a->pe_auth, b->pe_auth) != 0 ||
	    strcmp(a->pe_from, b->pe_from) != 0 ||
	    strcmp(a->pe_from_params, b->pe_from_params) != 0 ||
	    a->pe_nrcpt != b->pe_nrcpt)
		return false;
	for (i = 0; i < a->pe_nrcpt; i++)
		if (strcmp(a->pe_rcpt[i], b->pe_rcpt[i]) != 0)
			return false;
	return true;
}

static void
t_roundtrip(void)
{
	struct spool_env e, p;
	struct buf	 b;
	size_t		 envlen;

	env_sample(&e);
	buf_init(&b, 1 << 20);
	t_int_eq(spool_env_format(&e, &b), 0, "format");
	envlen = b.len;
	(void)buf_puts(&b, "Received: x\r\n\r\nbody\r\n");
	t_int_eq(spool_env_parse(b.data, b.len, &p), 0, "parse");
	t_ok(env_eq(&e, &p), "round trip keeps every field");
	t_int_eq((long long)p.pe_hdrlen, (long long)envlen,
	    "pe_hdrlen at the message");
	spool_env_free(&p);

	/* the null sender and empty fields survive too */
	e.pe_from[0] = '\0';
	e.pe_tls[0] = '\0';
	buf_reset(&b);
	t_int_eq(spool_env_format(&e, &b), 0, "format null sender");
	t_int_eq(spool_env_parse(b.data, b.len, &p), 0, "parse null sender");
	t_ok(env_eq(&e, &p), "null sender round trip");
	spool_env_free(&p);
	spool_env_free(&e);
	buf_release(&b);
}

static void
t_format_rejects(void)
{
	struct spool_env e;
	struct buf	 b;

	buf_init(&b, 1 << 20);
	env_sample(&e);
	(void)str_copy(e.pe_helo, sizeof(e.pe_helo), "evil\r\nrcpt x@y");
	t_int_eq(spool_env_format(&e, &b), SPOOL_EFORMAT, "CR LF in a value");
	spool_env_free(&e);
	env_sample(&e);
	(void)spool_env_add_rcpt(&e, "x@y\nqid 1");
	t_int_eq(spool_env_format(&e, &b), SPOOL_EFORMAT, "LF in a recipient");
	spool_env_free(&e);
	env_sample(&e);
	e.pe_qid[0] = 'x';
	t_int_eq(spool_env_format(&e, &b), SPOOL_EFORMAT, "bad qid");
	e.pe_qid[0] = '0';
	e.pe_time = -1;
	t_int_eq(spool_env_format(&e, &b), SPOOL_EFORMAT, "negative time");
	spool_env_free(&e);
	spool_env_init(&e);
	t_int_eq(spool_env_add_rcpt(&e, ""), SPOOL_ETOOBIG,
	    "empty recipient refused");
	spool_env_free(&e);
	buf_release(&b);
}

static const struct bad_case {
	const char *name;
	const char *text;
	size_t	    len; /* 0: strlen */
	int	    want;
} bad_cases[] = {
	{ .name = "empty", .text = "", .want = SPOOL_EFORMAT },
	{ .name = "no magic",
	    .text = "qid " QID "\ntime 1\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "version 2",
	    .text = "SMTPGATE 2\nqid " QID "\ntime 1\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "no terminator",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 1\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "no qid",
	    .text = "SMTPGATE 1\ntime 1\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "bad qid",
	    .text = "SMTPGATE 1\nqid ../../etc\ntime 1\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "no time",
	    .text = "SMTPGATE 1\nqid " QID "\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "time not digits",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 12a\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "time negative",
	    .text = "SMTPGATE 1\nqid " QID "\ntime -5\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "time huge",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 99999999999999999999\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "duplicate qid",
	    .text = "SMTPGATE 1\nqid " QID "\nqid " QID "\ntime 1\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "duplicate time",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 1\ntime 2\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "CR in line",
	    .text = "SMTPGATE 1\nqid " QID "\r\ntime 1\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "NUL in line",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 1\nhelo a\0b\n\n",
	    .len = 45,
	    .want = SPOOL_EFORMAT },
	{ .name = "empty key",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 1\n value\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "empty rcpt",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 1\nrcpt \n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "rcpt without value",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 1\nrcpt\n\n",
	    .want = SPOOL_EFORMAT },
	{ .name = "unknown keys ignored",
	    .text =
		"SMTPGATE 1\nqid " QID
		"\ntime 1\nfuture x y\nrcpt_params NOTIFY=NEVER\nrcpt a@b\n\n",
	    .want = 0 },
	{ .name = "minimal",
	    .text = "SMTPGATE 1\nqid " QID "\ntime 0\n\n",
	    .want = 0 },
};

static void
t_malformed(void)
{
	struct spool_env e;
	size_t		 i, len;
	int		 rc;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		len = bad_cases[i].len != 0 ? bad_cases[i].len
					    : strlen(bad_cases[i].text);
		rc = spool_env_parse(bad_cases[i].text, len, &e);
		t_int_eq(rc, bad_cases[i].want, bad_cases[i].name);
		t_ok(rc == 0 || (e.pe_nrcpt == 0 && e.pe_rcpt == NULL),
		    "%s: nothing left to free", bad_cases[i].name);
		spool_env_free(&e);
	}
}

static void
t_too_long(void)
{
	struct spool_env e;
	struct buf	 b;
	int		 i;

	buf_init(&b, 1 << 20);
	(void)buf_puts(&b, "SMTPGATE 1\nqid " QID "\ntime 1\nhelo ");
	for (i = 0; i < 256; i++)
		(void)buf_putc(&b, 'h');
	(void)buf_puts(&b, "\n\n");
	t_int_eq(spool_env_parse(b.data, b.len, &e), SPOOL_EFORMAT,
	    "helo of 256 bytes");
	buf_reset(&b);
	(void)buf_puts(&b, "SMTPGATE 1\nqid " QID "\ntime 1\nrcpt ");
	for (i = 0; i < SPOOL_ADDR_MAX; i++)
		(void)buf_putc(&b, 'r');
	(void)buf_puts(&b, "\n\n");
	t_int_eq(spool_env_parse(b.data, b.len, &e), SPOOL_EFORMAT,
	    "rcpt too long");
	buf_release(&b);
}

/* Every proper prefix fails; the whole text parses; parse never reads past len. */
static void
t_truncation(void)
{
	struct spool_env e, p;
	struct buf	 b;
	char		*copy;
	size_t		 n;
	int		 bad = 0;

	env_sample(&e);
	buf_init(&b, 1 << 20);
	(void)spool_env_format(&e, &b);
	for (n = 0; n < b.len; n++) {
		copy = malloc(n + 1); /* exact size: ASan catches overreads */
		memcpy(copy, b.data, n);
		if (spool_env_parse(copy, n, &p) != SPOOL_EFORMAT)
			bad++;
		spool_env_free(&p);
		free(copy);
	}
	t_int_eq(bad, 0, "every truncation is EFORMAT");
	t_int_eq(spool_env_parse(b.data, b.len, &p), 0, "the whole parses");
	t_ok(env_eq(&e, &p), "and matches");
	spool_env_free(&p);
	spool_env_free(&e);
	buf_release(&b);
}

static int
env_file(const char *text, size_t len)
{
	char path[] = "/tmp/t_spool_env.XXXXXX";
	int  fd;

	if ((fd = mkstemp(path)) == -1)
		return -1;
	(void)unlink(path);
	if (write(fd, text, len) != (ssize_t)len)
		return -1;
	return fd;
}

static void
t_read(void)
{
	struct spool_env e, p;
	struct buf	 b;
	char		 body[8];
	size_t		 envlen;
	int		 fd;

	env_sample(&e);
	buf_init(&b, 1 << 20);
	(void)spool_env_format(&e, &b);
	envlen = b.len;
	(void)buf_puts(&b, "BODY\r\n");
	fd = env_file(b.data, b.len);
	t_int_eq(spool_env_read(fd, 65536, &p), 0, "read");
	t_ok(env_eq(&e, &p), "read matches");
	t_int_eq((long long)lseek(fd, 0, SEEK_CUR), (long long)envlen,
	    "offset at message");
	t_ok(read(fd, body, 6) == 6 && memcmp(body, "BODY\r\n", 6) == 0,
	    "message follows");
	spool_env_free(&p);
	t_int_eq(spool_env_read(fd, envlen - 1, &p), SPOOL_ETOOBIG,
	    "max too small");
	t_int_eq(spool_env_read(fd, envlen, &p), 0, "max exactly the envelope");
	spool_env_free(&p);
	(void)close(fd);
	fd = env_file(b.data, envlen - 1);
	t_int_eq(spool_env_read(fd, 65536, &p), SPOOL_EFORMAT,
	    "truncated file");
	(void)close(fd);
	spool_env_free(&e);
	buf_release(&b);
}

/* data/spool_env.in: cases separated by "%%\n"; each prints one line. */
static void
golden_one(const char *text, size_t len, size_t n, struct buf *out)
{
	struct spool_env e;
	size_t		 i;
	int		 rc;

	if ((rc = spool_env_parse(text, len, &e)) != 0) {
		(void)buf_printf(out, "%zu: error: %s\n", n,
		    spool_strerror(rc));
		return;
	}
	(void)buf_printf(out,
	    "%zu: qid=%s time=%lld account=<%s> client=<%s> helo=<%s> "
	    "tls=<%s> auth=<%s> from=<%s> from_params=<%s> hdrlen=%zu",
	    n, e.pe_qid, (long long)e.pe_time, e.pe_account, e.pe_client,
	    e.pe_helo, e.pe_tls, e.pe_auth, e.pe_from, e.pe_from_params,
	    e.pe_hdrlen);
	for (i = 0; i < e.pe_nrcpt; i++)
		(void)buf_printf(out, " rcpt=<%s>", e.pe_rcpt[i]);
	(void)buf_putc(out, '\n');
	spool_env_free(&e);
}

static void
t_golden(void)
{
	struct buf out;
	char	  *in, *ref, *c, *sep;
	size_t	   inlen, reflen, n = 1;

	in = t_read_src("tests/unit/data/spool_env.in", &inlen);
	ref = t_read_src("tests/unit/data/spool_env.ref", &reflen);
	if (!t_ok(in != NULL && ref != NULL, "golden files found")) {
		free(in);
		free(ref);
		return;
	}
	buf_init(&out, 1 << 20);
	for (c = in; c < in + inlen; c = sep + 3, n++) {
		if ((sep = strstr(c, "%%\n")) == NULL)
			sep = in + inlen;
		golden_one(c, (size_t)(sep - c), n, &out);
		if (sep == in + inlen)
			break;
	}
	if (!t_str_eq(out.data, ref, "output matches spool_env.ref"))
		t_diag("output:\n%s", out.data);
	buf_release(&out);
	free(in);
	free(ref);
}

static const struct t_case cases[] = {
	{ "roundtrip", t_roundtrip },
	{ "format_rejects", t_format_rejects },
	{ "malformed", t_malformed },
	{ "too_long", t_too_long },
	{ "truncation", t_truncation },
	{ "read", t_read },
	{ "golden", t_golden },
};

int
main(void)
{
	return T_RUN(cases);
}
