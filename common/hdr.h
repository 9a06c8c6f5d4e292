/*
 * hdr: RFC 5322 header-block tokenizer (STYLE R1, R2). Pure: no I/O, no
 * globals, no logging; memory is two bounded struct bufs owned by the
 * struct hdr (hdr_release frees them).
 *
 * Push bytes with hdr_push() (any chunking: one byte at a time gives the
 * same events), say end of input with hdr_push_eof(), and call hdr_next()
 * until it returns something other than HDR_FIELD:
 *   HDR_MORE   needs more input (push, or push_eof, then call again);
 *   HDR_FIELD  *f holds one unfolded field; its pointers stay valid until
 *              the next hdr_next/hdr_push/hdr_release;
 *   HDR_END    end of the header block: an empty line, a line that is not
 *              a header field (it belongs to the body), or end of input;
 *              hdr_body_offset() is then where the body starts;
 *   HDR_ELINE  a header line is longer than hl_max_line bytes (CRLF excluded);
 *   HDR_ESIZE  the header block is longer than hl_max_size bytes;
 *   HDR_ENOMEM allocation failed.
 * END and the errors are sticky. Line ends are CRLF or bare LF.
 *
 * Unfolding: the line break before a continuation line (one starting with
 * SP or HT) is removed, the whitespace kept; leading and trailing
 * whitespace of the value is trimmed. The name is the text before the
 * colon (printable US-ASCII, whitespace before the colon tolerated).
 */
#ifndef SG_HDR_H
#define SG_HDR_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define HDR_LINE_MAX 998 /* RFC 5322 2.1.1 */

enum hdr_status {
	HDR_MORE,
	HDR_FIELD,
	HDR_END,
	HDR_ELINE,
	HDR_ESIZE,
	HDR_ENOMEM
};

struct hdr_limits {
	size_t hl_max_line; /* 0 = HDR_LINE_MAX */
	size_t hl_max_size; /* whole header block incl. the empty line */
};

struct hdr_field {
	const char *hf_name; /* NUL-terminated too */
	size_t	    hf_namelen;
	const char *hf_value; /* unfolded, NUL-terminated (may hold NULs) */
	size_t	    hf_valuelen;
	size_t	    hf_offset; /* stream offset of the field's first byte */
	size_t	    hf_rawlen; /* bytes of the field incl. line ends */
};

struct hdr {
	struct hdr_limits hp_lim;
	struct buf	  hp_in; /* unconsumed input */
	struct buf	  hp_name;
	struct buf	  hp_val;
	size_t		  hp_base;  /* stream offset of hp_in.data[0] */
	size_t		  hp_total; /* bytes accepted */
	size_t hp_consumed; /* bytes of hp_in to drop before the next field */
	size_t hp_scan;	    /* field bytes already scanned (at a line start) */
	size_t hp_colon; /* offset of the colon in the first line, 0 = not yet */
	size_t		hp_body; /* body offset once ended */
	bool		hp_eof;
	bool		hp_dropped; /* input offered beyond hl_max_size */
	bool		hp_blank;   /* ended by an empty line */
	enum hdr_status hp_final;   /* HDR_MORE while running */
};

void hdr_init(struct hdr *, const struct hdr_limits *);
void hdr_release(struct hdr *);
/* Copies input; bytes beyond hl_max_size in total are dropped (they can
 * never belong to a valid header block) and make a later HDR_MORE an HDR_ESIZE. */
void		hdr_push(struct hdr *, const void *, size_t);
void		hdr_push_eof(struct hdr *);
enum hdr_status hdr_next(struct hdr *, struct hdr_field *f_r);
/* After HDR_END: stream offset where the body starts (after the empty line). */
size_t hdr_body_offset(const struct hdr *);
/* After HDR_END: true if an empty line ended the block. */
bool	    hdr_ended_by_blank(const struct hdr *);
const char *hdr_status_name(enum hdr_status);

#endif
