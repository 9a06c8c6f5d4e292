/*
 * track_enc (track_enc.h): transfer encodings with GMime's coders. The
 * message's lines end in CRLF, GMime's coders read and write LF.
 *
 * Quoted-printable is line-local: GMime's decoder holds no state past a
 * LF (a soft break "=LF" and every "=XY" end before it), so a body's lines
 * decoded one by one give the body decoded whole. track_qp_runs still
 * checks that they do before it offers runs of lines for edit-local
 * re-encoding.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "track_enc.h"
#include "xmem.h"

bool
track_enc_ok(GMimeContentEncoding e)
{
	return e == GMIME_CONTENT_ENCODING_DEFAULT ||
	    e == GMIME_CONTENT_ENCODING_7BIT ||
	    e == GMIME_CONTENT_ENCODING_8BIT ||
	    e == GMIME_CONTENT_ENCODING_BINARY ||
	    e == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    e == GMIME_CONTENT_ENCODING_BASE64;
}

/* ---- transfer encodings */

/* GMime's encoders write LF: the message's lines end in CRLF. */
static int
track_lf_to_crlf(const char *s, size_t n, struct buf *out)
{
	const char *nl, *end = s + n;

	if (buf_reserve(out, n + n / 32 + 16) == -1)
		return -1; /* room for the usual lines: fewer reallocations */
	while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		if (buf_append(out, s, (size_t)(nl - s)) == -1 ||
		    buf_append(out, "\r\n", 2) == -1)
			return -1;
		s = nl + 1;
	}
	return buf_append(out, s, (size_t)(end - s));
}

static int
track_code(bool encode, GMimeContentEncoding enc, const char *in, size_t n,
    struct buf *out)
{
	GMimeEncoding e;
	size_t	      cap, got;
	char	     *o;
	int	      rc;

	if (encode)
		g_mime_encoding_init_encode(&e, enc);
	else
		g_mime_encoding_init_decode(&e, enc);
	cap = g_mime_encoding_outlen(&e, n) + 16;
	if (!encode) { /* straight into out */
		if (buf_reserve(out, cap) == -1)
			return -1;
		got = g_mime_encoding_flush(&e, in, n, out->data + out->len);
		if (got > cap)
			abort(); /* GMime's bound was wrong */
		out->len += got;
		out->data[out->len] = '\0';
		return 0;
	}
	o = xmalloc(cap);
	got = g_mime_encoding_flush(&e, in, n, o);
	if (got > cap)
		abort(); /* GMime's bound was wrong: memory is already gone */
	rc = track_lf_to_crlf(o, got, out);
	free(o);
	return rc;
}

bool
track_identity(GMimeContentEncoding e)
{
	return e != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
	    e != GMIME_CONTENT_ENCODING_BASE64;
}

/* The decoded body of a part; quoted-printable lines as LF. */
int
track_decode(const struct track_part *tp, const char *raw, struct buf *out)
{
	size_t n = tp->tp_end - tp->tp_start;

	if (track_identity(tp->tp_enc))
		return buf_append(out, raw, n);
	if (tp->tp_enc == GMIME_CONTENT_ENCODING_BASE64)
		return track_code(false, tp->tp_enc, raw, n, out);
	return track_qp_decode_lines(raw, n, out);
}

/* The new body in the part's encoding, ending as the old one did. */
int
track_encode(const struct track_part *tp, const char *raw, const char *s,
    size_t n, struct buf *out)
{
	size_t rawlen = tp->tp_end - tp->tp_start, eol = 0, line = 0, i, mark;

	if (track_identity(tp->tp_enc)) {
		for (i = 0; i < n; i++) {
			line = s[i] == '\n' ? 0 : line + 1;
			if (line > TRACK_LINE_MAX + 1) /* a CR may end it */
				return -1;
		}
		return buf_append(out, s, n);
	}
	while (eol < rawlen &&
	    (raw[rawlen - 1 - eol] == '\n' || raw[rawlen - 1 - eol] == '\r'))
		eol++;
	mark = out->len;
	if (track_code(true, tp->tp_enc, s, n, out) == -1)
		return -1;
	while (out->len > mark &&
	    (out->data[out->len - 1] == '\n' ||
		out->data[out->len - 1] == '\r'))
		out->len--;
	out->data[out->len] = '\0';
	return buf_append(out, raw + rawlen - eol, eol);
}

/* ---- quoted-printable: lines decoded one by one, runs of lines */

/* One line (its LF included, if any) decoded afresh, its CRLF as LF:
 * the line without it, then a LF, through one decoder. */
static int
track_qp_line(const char *l, size_t len, struct buf *out)
{
	GMimeEncoding e;
	size_t	      body = len, cap, got;

	if (len >= 2 && l[len - 2] == '\r' && l[len - 1] == '\n')
		body = len - 2;
	g_mime_encoding_init_decode(&e, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	cap = g_mime_encoding_outlen(&e, len) + 16;
	if (buf_reserve(out, cap) == -1)
		return -1;
	got = g_mime_encoding_step(&e, l, body, out->data + out->len);
	if (body < len)
		got += g_mime_encoding_step(&e, "\n", 1,
		    out->data + out->len + got);
	got += g_mime_encoding_flush(&e, "", 0, out->data + out->len + got);
	if (got > cap)
		abort(); /* GMime's bound was wrong */
	out->len += got;
	out->data[out->len] = '\0';
	return 0;
}

/* Calls track_qp_line for each line; the lines' places into *lines
 * (heap) when lines is not NULL. */
static int
track_qp_each(const char *raw, size_t n, struct buf *out,
    struct track_lines **lines, size_t *nlines)
{
	const char *lf;
	size_t	    at = 0, e, ds, cap = 0;
	int	    rc = 0;

	while (at < n && rc == 0) {
		lf = memchr(raw + at, '\n', n - at);
		e = lf != NULL ? (size_t)(lf - raw) + 1 : n;
		ds = out->len;
		rc = track_qp_line(raw + at, e - at, out);
		if (rc == 0 && lines != NULL) {
			if (*nlines == cap) {
				cap = cap ? cap * 2 : 64;
				*lines = xreallocarray(*lines, cap,
				    sizeof(**lines));
			}
			(*lines)[(*nlines)++] = (struct track_lines){ at, e, ds,
				out->len };
		}
		at = e;
	}
	return rc;
}

int
track_qp_decode_lines(const char *raw, size_t n, struct buf *out)
{
	return track_qp_each(raw, n, out, NULL, NULL);
}

int
track_qp_decode_map(const char *raw, size_t n, struct buf *out,
    struct track_lines **lines, size_t *nlines)
{
	*lines = NULL;
	*nlines = 0;
	if (track_qp_each(raw, n, out, lines, nlines) == 0)
		return 0;
	free(*lines);
	*lines = NULL;
	*nlines = 0;
	return -1;
}

/* The first line whose decoded bytes end past at (the last line if
 * none). */
static size_t
track_qp_line_of(const struct track_lines *l, size_t nl, size_t at)
{
	size_t lo = 0, hi = nl - 1, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (l[mid].tl_de > at)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The marked lines' runs into *runs. */
static void
track_qp_collect(const struct track_lines *l, size_t nl, const uint8_t *mark,
    struct track_lines **runs, size_t *nruns)
{
	size_t i, j;

	*runs = NULL;
	*nruns = 0;
	for (i = 0; i < nl; i = j) {
		if (!mark[i]) {
			j = i + 1;
			continue;
		}
		for (j = i; j < nl && mark[j]; j++)
			;
		*runs = xreallocarray(*runs, *nruns + 1, sizeof(**runs));
		(*runs)[(*nruns)++] = (struct track_lines){ l[i].tl_es,
			l[j - 1].tl_ee, l[i].tl_ds, l[j - 1].tl_de };
	}
}

/* Whether raw[a, b) is only CRs and LFs. */
static bool
track_only_eol(const char *raw, size_t a, size_t b)
{
	for (; a < b; a++)
		if (raw[a] != '\r' && raw[a] != '\n')
			return false;
	return true;
}

int
track_qp_runs(const char *raw, const struct track_lines *l, size_t nl,
    size_t hlen, const size_t *want, size_t nwant, struct track_lines **runs,
    size_t *nruns)
{
	uint8_t *mark;
	size_t	 i, a, b, k;

	*runs = NULL;
	*nruns = 0;
	if (nl == 0 || l[nl - 1].tl_de != hlen)
		return -1;
	mark = xcalloc(nl, 1);
	for (i = 0; i < nwant; i++) {
		a = want[2 * i];
		b = want[2 * i + 1];
		if (b < a || b > hlen) {
			free(mark);
			return -1;
		}
		for (k = track_qp_line_of(l, nl, a); k < nl; k++) {
			mark[k] = 1;
			if (l[k].tl_de >= b)
				break;
		}
	}
	/* the body's last run ends as the body did (track_encode): it must
	 * hold all of the body's trailing CRs and LFs, and a byte before */
	for (k = nl - 1; mark[nl - 1] && k > 0 && mark[k]; k--)
		if (!mark[k - 1] &&
		    track_only_eol(raw, l[k].tl_es, l[nl - 1].tl_ee))
			mark[k - 1] = 1;
	track_qp_collect(l, nl, mark, runs, nruns);
	free(mark);
	return 0;
}

int
track_qp_encode_run(const char *raw, size_t n, bool last, const char *s,
    size_t sn, struct buf *out)
{
	struct track_part tp = { 0, n, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE,
		0 };
	size_t		  mark = out->len;

	if (last)
		return track_encode(&tp, raw, s, sn, out);
	if (track_code(true, tp.tp_enc, s, sn, out) == -1)
		return -1;
	if ((sn > 0 && s[sn - 1] == '\n') ||
	    (out->len - mark >= 3 &&
		memcmp(out->data + out->len - 3, "=\r\n", 3) == 0))
		return 0;		    /* ends at a line's end already */
	return buf_append(out, "=\r\n", 3); /* a soft break to the next line */
}
