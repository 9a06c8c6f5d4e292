/* Unit tests for smtpd/smtpd_data: the DATA/BDAT decoder. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "smtpd_data.h"
#include "tap.h"

#define S(x) x, sizeof(x) - 1

static const struct {
	const char *name;
	const char *in;
	size_t	    inlen;
	const char *out; /* expected message bytes (when no error) */
	size_t	    outlen;
	unsigned    flags;
	int	    done;
	size_t	    rest; /* bytes left after the end marker */
} cases[] = {
	{ "empty message", S(".\r\n"), S(""), 0, 1, 0 },
	{ "one line", S("a\r\n.\r\n"), S("a\r\n"), 0, 1, 0 },
	{ "pipelined QUIT stays", S("a\r\n.\r\nQUIT\r\n"), S("a\r\n"), 0, 1,
	    6 },
	{ "dot-stuffing", S("..x\r\n..\r\n.\r\n"), S(".x\r\n.\r\n"), 0, 1, 0 },
	{ "dot inside line", S("a.b\r\n.\r\n"), S("a.b\r\n"), 0, 1, 0 },
	{ "not yet done", S("a\r\n.\r"), S("a\r\n"), 0, 0, 0 },
	{ "bare LF line end", S("a\nb\r\n.\r\n"), NULL, 0, SMTPD_DATA_BARE, 1,
	    0 },
	{ "LF.LF is no end", S("a\n.\n"), NULL, 0, SMTPD_DATA_BARE, 0, 0 },
	{ "LF.CRLF is no end", S("a\n.\r\nMAIL FROM:<x@y>\r\n"), NULL, 0,
	    SMTPD_DATA_BARE, 0, 0 },
	{ "CRLF.LF is no end", S("a\r\n.\nMAIL FROM:<x@y>\r\n"), NULL, 0,
	    SMTPD_DATA_BARE, 0, 0 },
	{ "CR.CR is no end", S("a\r.\rMAIL\r\n"), NULL, 0, SMTPD_DATA_BARE, 0,
	    0 },
	{ "CR.CRLF is no end", S("a\r.\r\nX"), NULL, 0, SMTPD_DATA_BARE, 0, 0 },
	{ "smuggle then real end", S("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n"), NULL,
	    0, SMTPD_DATA_BARE, 1, 0 },
	{ ".CR then text", S(".\rx\r\n.\r\n"), NULL, 0, SMTPD_DATA_BARE, 1, 0 },
	{ "bare CR", S("a\rb\r\n.\r\n"), NULL, 0, SMTPD_DATA_BARE, 1, 0 },
	{ "CRCRLF", S("a\r\r\n.\r\n"), NULL, 0, SMTPD_DATA_BARE, 1, 0 },
	{ "8bit and NUL pass", S("\xff\x00z\r\n.\r\n"), S("\xff\x00z\r\n"), 0,
	    1, 0 },
};

/* Runs input through the decoder in pieces of `step` bytes. */
static size_t
t_feed(struct smtpd_data *d, const char *in, size_t n, size_t step, char *out,
    size_t *outlen)
{
	size_t off = 0, k, o, used;

	*outlen = 0;
	while (off < n && !d->da_done) {
		k = n - off < step ? n - off : step;
		used = smtpd_data_push(d, in + off, k, out + *outlen, &o);
		*outlen += o;
		off += used;
	}
	return n - off;
}

static void
t_table(void)
{
	struct smtpd_data d;
	char		  out[256];
	size_t		  i, step, outlen, rest;
	int		  ok;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ok = 1;
		for (step = 1; step <= cases[i].inlen; step++) {
			smtpd_data_init(&d, SMTPD_DATA_DOT, 1000, 1 << 20);
			rest = t_feed(&d, cases[i].in, cases[i].inlen, step,
			    out, &outlen);
			if ((int)d.da_done != cases[i].done ||
			    d.da_flags != cases[i].flags ||
			    (cases[i].done && rest != cases[i].rest) ||
			    (cases[i].out != NULL &&
				(outlen != cases[i].outlen ||
				    memcmp(out, cases[i].out, outlen) != 0))) {
				t_diag("step %zu: done %d flags %u rest %zu "
				       "outlen %zu",
				    step, d.da_done, d.da_flags, rest, outlen);
				ok = 0;
				break;
			}
		}
		t_ok(ok, "%s (all chunkings)", cases[i].name);
	}
}

static void
t_limits(void)
{
	struct smtpd_data d;
	char		  in[3000], out[3100];
	size_t		  o;

	/* max_line 1000 includes CRLF: 998 octets pass, 999 do not. */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 5);
	smtpd_data_init(&d, SMTPD_DATA_DOT, 1000, 1 << 20);
	(void)smtpd_data_push(&d, in, 1003, out, &o);
	t_ok(d.da_done && d.da_flags == 0 && o == 1000, "998-octet line ok");
	t_int_eq((long long)d.da_lines, 2,
	    "two CRLF-ended lines counted (text, end)");
	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 5);
	smtpd_data_init(&d, SMTPD_DATA_DOT, 1000, 1 << 20);
	(void)smtpd_data_push(&d, in, 1004, out, &o);
	t_ok(d.da_done && d.da_flags == SMTPD_DATA_LONGLINE,
	    "999-octet line too long");
	/* a stuffed dot counts as sent */
	in[0] = '.';
	memset(in + 1, 'x', 998);
	memcpy(in + 999, "\r\n.\r\n", 5);
	smtpd_data_init(&d, SMTPD_DATA_DOT, 1000, 1 << 20);
	(void)smtpd_data_push(&d, in, 1004, out, &o);
	t_ok(d.da_done && d.da_flags == SMTPD_DATA_LONGLINE,
	    "stuffed dot counts");
	/* size: output stops, counting goes on */
	memset(in, 'y', 2000);
	memcpy(in + 2000, "\r\n.\r\n", 5);
	smtpd_data_init(&d, SMTPD_DATA_DOT, 3000, 100);
	(void)smtpd_data_push(&d, in, 2005, out, &o);
	t_ok(d.da_done && (d.da_flags & SMTPD_DATA_TOOBIG) && o == 100 &&
		d.da_size == 2002,
	    "size limit (o=%zu size=%llu)", o, (unsigned long long)d.da_size);
}

static void
t_bdat(void)
{
	struct smtpd_data d;
	char		  out[64];
	size_t		  o, o2, used;

	smtpd_data_init(&d, SMTPD_DATA_BDAT, 1000, 1 << 20);
	used = smtpd_data_push(&d, S(".a\r\n.\r\nb"), out, &o);
	smtpd_data_finish(&d, out + o, &o2);
	t_ok(used == 8 && !d.da_done && d.da_flags == 0 && o + o2 == 10 &&
		memcmp(out, ".a\r\n.\r\nb\r\n", 10) == 0,
	    "BDAT: no unstuffing, no end, CRLF added");
	smtpd_data_init(&d, SMTPD_DATA_BDAT, 1000, 1 << 20);
	(void)smtpd_data_push(&d, S("a\r"), out, &o);
	(void)smtpd_data_push(&d, S("\nb\r\n"), out, &o);
	smtpd_data_finish(&d, out, &o2);
	t_ok(d.da_flags == 0 && o2 == 0, "BDAT: CRLF split across chunks");
	smtpd_data_init(&d, SMTPD_DATA_BDAT, 1000, 1 << 20);
	(void)smtpd_data_push(&d, S("a\nb\r\n"), out, &o);
	t_ok(d.da_flags == SMTPD_DATA_BARE, "BDAT: bare LF flagged");
	smtpd_data_init(&d, SMTPD_DATA_BDAT, 1000, 1 << 20);
	(void)smtpd_data_push(&d, S("a\r"), out, &o);
	smtpd_data_finish(&d, out, &o2);
	t_ok(d.da_flags == SMTPD_DATA_BARE, "BDAT: dangling CR at LAST");
}

static const struct t_case t_cases[] = {
	{ "table", t_table },
	{ "limits", t_limits },
	{ "bdat", t_bdat },
};

int
main(void)
{
	return T_RUN(t_cases);
}
