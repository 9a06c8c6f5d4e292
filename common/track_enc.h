/*
 * track_enc: the transfer encodings of track_html's parts (private to
 * common/libtrack): decoding a part's body for the HTML tokenizer,
 * encoding the edited HTML back, and, for quoted-printable, the lines of
 * the body, so that only the lines around an edit are encoded again
 * (track_html.h: "edit-local").
 */
#ifndef SG_TRACK_ENC_H
#define SG_TRACK_ENC_H

#include <stdbool.h>
#include <stddef.h>

#include <gmime/gmime.h>

#include "buf.h"

#define TRACK_LINE_MAX 998 /* RFC 5322: a 7bit/8bit line, CRLF excluded */

/* One tracked HTML part: its encoded body is msg[tp_start, tp_end). */
struct track_part {
	size_t		     tp_start, tp_end;
	GMimeContentEncoding tp_enc;
	size_t		     tp_declen; /* decoded bytes (the plan's check) */
};

/*
 * A line, or a run of whole lines, of a quoted-printable body: raw[tl_es,
 * tl_ee) (offsets in the part's encoded body, tl_ee just past a LF or at
 * the body's end) decodes to html[tl_ds, tl_de).
 */
struct track_lines {
	size_t tl_es, tl_ee;
	size_t tl_ds, tl_de;
};

/* A transfer encoding track_html handles. */
bool track_enc_ok(GMimeContentEncoding);
/* 7bit, 8bit, binary or none: the body is the HTML. */
bool track_identity(GMimeContentEncoding);
/* The decoded body of a part (raw: its encoded body), appended to out. */
int track_decode(const struct track_part *, const char *raw, struct buf *out);
/*
 * s[0, n) in the part's encoding (CRLF lines), ending as raw did (its
 * trailing CRs and LFs), appended to out; -1 when a 7bit/8bit line would
 * pass TRACK_LINE_MAX or out is full.
 */
int track_encode(const struct track_part *, const char *raw, const char *s,
    size_t n, struct buf *out);
/*
 * The quoted-printable body raw[0, n) decoded line by line (each line, its
 * CRLF as LF, through a fresh decoder: what GMime's decoder gives for the
 * whole body, see track_enc.c), appended to out.
 */
int track_qp_decode_lines(const char *raw, size_t n, struct buf *out);
/* The same, and each line's place into *lines (heap; relative to out's
 * length before the call: call it with an empty out). */
int track_qp_decode_map(const char *raw, size_t n, struct buf *out,
    struct track_lines **lines, size_t *nlines);
/*
 * The runs of lines l[0, nl) (of the body raw, decoded to hlen bytes)
 * that cover each decoded range [want[2i], want[2i+1]] (i < nwant; an
 * empty range is an insertion point), overlapping or adjacent runs
 * merged, in order, into *runs (heap); a run at the body's end reaches
 * back past the body's trailing CRs and LFs. -1 (nothing allocated) when
 * a range is outside.
 */
int track_qp_runs(const char *raw, const struct track_lines *l, size_t nl,
    size_t hlen, const size_t *want, size_t nwant, struct track_lines **runs,
    size_t *nruns);
/*
 * A run of lines raw[0, n) of a quoted-printable body, its decoded text
 * edited to s[0, sn), encoded again to out: decoded, the output is s, and
 * it ends at a line's end (a soft break if s does not end in LF) so that
 * the next line follows as it was; the body's last run (last) ends as
 * raw did, like track_encode.
 */
int track_qp_encode_run(const char *raw, size_t n, bool last, const char *s,
    size_t sn, struct buf *out);

#endif
