/*
 * Unit tests for common/hdr: a table of cases, the same input trickled one
 * byte at a time and in odd chunks, and the golden files data/hdr.{in,ref}
 * (STYLE R5). SG_REGEN=1 prints the actual output instead of comparing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hdr.h"
#include "tap.h"

/* Runs the parser over in[0..len) pushed in chunks of `chunk` bytes (0 =
 * all at once) and renders every event as text into out. */
static void
run(const char *in, size_t len, size_t chunk, const struct hdr_limits *lim,
    struct buf *out)
{
	struct hdr	 p;
	struct hdr_field f;
	enum hdr_status	 st;
	size_t		 off = 0, n, i;

	hdr_init(&p, lim);
	buf_reset(out);
	for (;;) {
		st = hdr_next(&p, &f);
		if (st == HDR_MORE) {
			if (off == len) {
				hdr_push_eof(&p);
				continue;
			}
			n = chunk == 0 || len - off < chunk ? len - off : chunk;
			hdr_push(&p, in + off, n);
			off += n;
			continue;
		}
		if (st != HDR_FIELD)
			break;
		buf_printf(out, "FIELD off=%zu raw=%zu name=\"", f.hf_offset,
		    f.hf_rawlen);
		buf_append(out, f.hf_name, f.hf_namelen);
		buf_puts(out, "\" value=\"");
		for (i = 0; i < f.hf_valuelen; i++) {
			unsigned char c = (unsigned char)f.hf_value[i];

			if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
				buf_printf(out, "\\x%02x", c);
			else
				buf_putc(out, c);
		}
		buf_puts(out, "\"\n");
	}
	if (st == HDR_END)
		buf_printf(out, "END body=%zu blank=%d\n", hdr_body_offset(&p),
		    hdr_ended_by_blank(&p));
	else
		buf_printf(out, "ERROR %s\n", hdr_status_name(st));
	hdr_release(&p);
}

struct hcase {
	const char *name;
	const char *in;
	size_t	    max_line, max_size;
	const char *want;
};

static const struct hcase cases[] = {
	{ .name = "simple",
	    .in = "From: a@b\r\nTo: c@d\r\n\r\nbody\r\n",
	    .want = "FIELD off=0 raw=11 name=\"From\" value=\"a@b\"\n"
		    "FIELD off=11 raw=9 name=\"To\" value=\"c@d\"\n"
		    "END body=22 blank=1\n" },
	{ .name = "folded",
	    .in = "Subject: a\r\n b\r\n\tc\r\n\r\n",
	    .want = "FIELD off=0 raw=20 name=\"Subject\" value=\"a b\\x09c\"\n"
		    "END body=22 blank=1\n" },
	{ .name = "bare LF",
	    .in = "A: 1\nB:2\n\nx",
	    .want = "FIELD off=0 raw=5 name=\"A\" value=\"1\"\n"
		    "FIELD off=5 raw=4 name=\"B\" value=\"2\"\n"
		    "END body=10 blank=1\n" },
	{ .name = "no body, no blank line",
	    .in = "A: 1\r\nB: 2",
	    .want = "FIELD off=0 raw=6 name=\"A\" value=\"1\"\n"
		    "FIELD off=6 raw=4 name=\"B\" value=\"2\"\n"
		    "END body=10 blank=0\n" },
	{ .name = "non-header line starts the body",
	    .in = "A: 1\r\nnot a header\r\n",
	    .want = "FIELD off=0 raw=6 name=\"A\" value=\"1\"\n"
		    "END body=6 blank=0\n" },
	{ .name = "empty input", .in = "", .want = "END body=0 blank=0\n" },
	{ .name = "WSP before colon, empty value",
	    .in = "Subject  :\r\n\r\n",
	    .want = "FIELD off=0 raw=12 name=\"Subject\" value=\"\"\n"
		    "END body=14 blank=1\n" },
	{ .name = "line limit exact",
	    .in = "A: 1234\r\n\r\n",
	    .max_line = 7,
	    .want = "FIELD off=0 raw=9 name=\"A\" value=\"1234\"\n"
		    "END body=11 blank=1\n" },
	{ .name = "line limit exceeded",
	    .in = "A: 12345\r\n\r\n",
	    .max_line = 7,
	    .want = "ERROR line too long\n" },
	{ .name = "continuation too long",
	    .in = "A: 1\r\n 1234567\r\n\r\n",
	    .max_line = 7,
	    .want = "ERROR line too long\n" },
	{ .name = "size cap",
	    .in = "A: 1\r\nB: 2\r\n\r\n",
	    .max_size = 13,
	    .want = "FIELD off=0 raw=6 name=\"A\" value=\"1\"\n"
		    "FIELD off=6 raw=6 name=\"B\" value=\"2\"\n"
		    "ERROR header too large\n" },
	{ .name = "size cap exact",
	    .in = "A: 1\r\nB: 2\r\n\r\nbody",
	    .max_size = 14,
	    .want = "FIELD off=0 raw=6 name=\"A\" value=\"1\"\n"
		    "FIELD off=6 raw=6 name=\"B\" value=\"2\"\n"
		    "END body=14 blank=1\n" },
	{ .name = "binary garbage",
	    .in = "\x01\x02\xff: x\r\n\r\n",
	    .want = "END body=0 blank=0\n" },
	{ .name = "leading continuation",
	    .in = " A: 1\r\n\r\n",
	    .want = "END body=0 blank=0\n" },
	{ .name = "NUL in value",
	    .in = "A: x\0y\r\n\r\n",
	    .want = "FIELD off=0 raw=8 name=\"A\" value=\"x\\x00y\"\n"
		    "END body=10 blank=1\n" },
};

static size_t
case_len(const struct hcase *c)
{
	/* the NUL case: count through embedded NULs up to the final CRLFCRLF */
	if (strcmp(c->name, "NUL in value") == 0)
		return 10;
	return strlen(c->in);
}

static void
t_table(void)
{
	struct buf   out;
	size_t	     i, k;
	const size_t chunks[] = { 0, 1, 2, 3, 7 };

	buf_init(&out, 1 << 20);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hdr_limits lim = { cases[i].max_line,
			cases[i].max_size ? cases[i].max_size : 4096 };

		for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
			run(cases[i].in, case_len(&cases[i]), chunks[k], &lim,
			    &out);
			if (!t_str_eq(out.data, cases[i].want, cases[i].name))
				t_diag("chunk size %zu", chunks[k]);
		}
	}
	buf_release(&out);
}

static void
t_default_line_limit(void)
{
	struct buf	  in, out;
	struct hdr_limits lim = { 0, 1 << 16 };

	buf_init(&in, 1 << 16);
	buf_init(&out, 1 << 16);
	buf_puts(&in, "X: ");
	while (in.len < HDR_LINE_MAX)
		buf_putc(&in, 'a');
	buf_puts(&in, "\r\n\r\n");
	run(in.data, in.len, 0, &lim, &out);
	t_ok(strncmp(out.data, "FIELD", 5) == 0, "998-byte line accepted");
	in.len -= 4;
	buf_puts(&in, "a\r\n\r\n");
	run(in.data, in.len, 1, &lim, &out);
	t_str_eq(out.data, "ERROR line too long\n",
	    "999-byte line refused (trickled)");
	buf_release(&in);
	buf_release(&out);
}

static void
t_big_folded(void)
{
	struct buf	  in, out;
	struct hdr_limits lim = { 0, 1 << 20 };
	size_t		  i;

	/* 50,000 continuation lines: linear, bounded, one field */
	buf_init(&in, 1 << 20);
	buf_init(&out, 2 << 20);
	buf_puts(&in, "To: a@b");
	for (i = 0; i < 50000; i++)
		buf_puts(&in, ",\r\n c@d");
	buf_puts(&in, "\r\n\r\n");
	t_ok(in.len < (1 << 20), "input fits");
	run(in.data, in.len, 1, &lim, &out);
	t_ok(strstr(out.data, "END body=") != NULL,
	    "huge folded field, trickled");
	lim.hl_max_size = 64 * 1024;
	run(in.data, in.len, 4096, &lim, &out);
	t_str_eq(out.data, "ERROR header too large\n", "capped");
	buf_release(&in);
	buf_release(&out);
}

/* ---- golden files: "== name [max_line=N] [max_size=N]" then lines; each
 * line gets CRLF unless it ends in \c; escapes \r \n \t \\ \xHH. */
static void
golden_unescape(const char *line, struct buf *dst)
{
	size_t n = strlen(line), i;
	bool   crlf = true;

	if (n >= 2 && strcmp(line + n - 2, "\\c") == 0) {
		crlf = false;
		n -= 2;
	}
	for (i = 0; i < n; i++) {
		if (line[i] != '\\' || i + 1 >= n) {
			buf_putc(dst, line[i]);
			continue;
		}
		switch (line[++i]) {
		case 'r':
			buf_putc(dst, '\r');
			break;
		case 'n':
			buf_putc(dst, '\n');
			break;
		case 't':
			buf_putc(dst, '\t');
			break;
		case 'x':
			if (i + 2 < n) {
				char hx[3] = { line[i + 1], line[i + 2], '\0' };

				buf_putc(dst, (int)strtoul(hx, NULL, 16));
				i += 2;
			}
			break;
		default:
			buf_putc(dst, line[i]);
			break;
		}
	}
	if (crlf)
		buf_puts(dst, "\r\n");
}

static void
golden_case(const char *hdrline, struct buf *in, struct buf *actual,
    struct buf *out)
{
	struct hdr_limits lim = { 0, 64 * 1024 };
	const char	 *s;
	struct buf	  again;

	if ((s = strstr(hdrline, "max_line=")) != NULL)
		lim.hl_max_line = strtoul(s + 9, NULL, 10);
	if ((s = strstr(hdrline, "max_size=")) != NULL)
		lim.hl_max_size = strtoul(s + 9, NULL, 10);
	buf_init(&again, 1 << 20);
	run(in->data, in->len, 0, &lim, out);
	run(in->data, in->len, 1, &lim, &again);
	t_ok(strcmp(out->data, again.data) == 0, "%s: trickle == whole",
	    hdrline);
	buf_puts(actual, hdrline);
	buf_putc(actual, '\n');
	buf_append(actual, out->data, out->len);
	buf_release(&again);
}

static void
t_golden(void)
{
	const char *src = getenv("SMTPGATE_SRCDIR");
	char	    path[4096], line[8192], hdrline[512] = "";
	FILE	   *fp;
	struct buf  in, actual, out;
	char	   *ref = NULL;
	size_t	    reflen = 0;

	buf_init(&in, 1 << 20);
	buf_init(&actual, 1 << 22);
	buf_init(&out, 1 << 20);
	snprintf(path, sizeof(path), "%s/tests/unit/data/hdr.in",
	    src ? src : ".");
	if ((fp = fopen(path, "r")) == NULL) {
		t_ok(false, "open %s", path);
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "== ", 3) == 0) {
			if (hdrline[0] != '\0')
				golden_case(hdrline, &in, &actual, &out);
			snprintf(hdrline, sizeof(hdrline), "%s", line);
			buf_reset(&in);
		} else if (hdrline[0] != '\0')
			golden_unescape(line, &in);
	}
	if (hdrline[0] != '\0')
		golden_case(hdrline, &in, &actual, &out);
	fclose(fp);
	if (getenv("SG_REGEN") != NULL) {
		fputs(actual.data, stdout);
		return;
	}
	snprintf(path, sizeof(path), "%s/tests/unit/data/hdr.ref",
	    src ? src : ".");
	if ((fp = fopen(path, "r")) != NULL) {
		ref = calloc(1, 1 << 22);
		reflen = fread(ref, 1, (1 << 22) - 1, fp);
		fclose(fp);
	}
	t_ok(ref != NULL && reflen == actual.len &&
		memcmp(ref, actual.data, reflen) == 0,
	    "golden hdr.ref matches");
	free(ref);
	buf_release(&in);
	buf_release(&actual);
	buf_release(&out);
}

int
main(void)
{
	static const struct t_case tc[] = {
		{ "table, whole and trickled", t_table },
		{ "default 998 line limit", t_default_line_limit },
		{ "big folded field", t_big_folded },
		{ "golden files", t_golden },
	};

	return T_RUN(tc);
}
