/*
 * hdr: RFC 5322 header-block tokenizer, push/next (see hdr.h). The input
 * buffer holds only the bytes of the field being assembled plus what was
 * pushed after it; a field is complete when the first byte of the next line
 * is known not to be SP/HT (or at end of input).
 */
#include "config.h"

#include <string.h>

#include "hdr.h"

#define IS_WSP(c) ((c) == ' ' || (c) == '\t')

void
hdr_init(struct hdr *p, const struct hdr_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->hp_lim = *lim;
	if (p->hp_lim.hl_max_line == 0)
		p->hp_lim.hl_max_line = HDR_LINE_MAX;
	if (p->hp_lim.hl_max_size == 0)
		p->hp_lim.hl_max_size = 64 * 1024;
	buf_init(&p->hp_in, p->hp_lim.hl_max_size);
	buf_init(&p->hp_name, p->hp_lim.hl_max_line + 1);
	buf_init(&p->hp_val, p->hp_lim.hl_max_size);
	p->hp_final = HDR_MORE;
}

void
hdr_release(struct hdr *p)
{
	buf_release(&p->hp_in);
	buf_release(&p->hp_name);
	buf_release(&p->hp_val);
}

static void
hdr_compact(struct hdr *p)
{
	if (p->hp_consumed == 0)
		return;
	buf_consume(&p->hp_in, p->hp_consumed);
	p->hp_base += p->hp_consumed;
	p->hp_consumed = 0;
}

void
hdr_push(struct hdr *p, const void *data, size_t len)
{
	size_t room;

	if (p->hp_final != HDR_MORE || p->hp_eof)
		return;
	room = p->hp_lim.hl_max_size - p->hp_total;
	if (len > room) {
		p->hp_dropped = true;
		len = room;
	}
	if (len == 0)
		return;
	hdr_compact(p);
	if (buf_append(&p->hp_in, data, len) == -1) {
		p->hp_final = HDR_ENOMEM;
		return;
	}
	p->hp_total += len;
}

void
hdr_push_eof(struct hdr *p)
{
	/* input was cut at the cap: its end is not the end of the message */
	if (!p->hp_dropped)
		p->hp_eof = true;
}

/* Needs bytes that may never come: more input, or the cap was hit. */
static enum hdr_status
hdr_starve(const struct hdr *p)
{
	return p->hp_dropped ? HDR_ESIZE : HDR_MORE;
}

/*
 * The line starting at `start`: 1 and *next_r after its LF (or at the end
 * of input), 0 if more input is needed, -1 if it is too long.
 */
static int
hdr_line_end(const struct hdr *p, size_t start, size_t *next_r)
{
	const char *d = p->hp_in.data, *lf;
	size_t	    n = p->hp_in.len, len;

	lf = memchr(d + start, '\n', n - start);
	if (lf == NULL) {
		if (n - start > p->hp_lim.hl_max_line + 1)
			return -1;
		if (!p->hp_eof)
			return 0;
		if (n - start > p->hp_lim.hl_max_line)
			return -1;
		*next_r = n;
		return 1;
	}
	len = (size_t)(lf - (d + start));
	if (len > 0 && lf[-1] == '\r')
		len--;
	if (len > p->hp_lim.hl_max_line)
		return -1;
	*next_r = (size_t)(lf - d) + 1;
	return 1;
}

static enum hdr_status
hdr_end(struct hdr *p, size_t skip, bool blank)
{
	p->hp_body = p->hp_base + skip;
	p->hp_blank = blank;
	return HDR_END;
}

/*
 * First line of a field: an empty line ends the block; otherwise find the
 * colon after a valid name. A line that is not a field ends the block and
 * belongs to the body. Returns HDR_FIELD when the colon is known.
 */
static enum hdr_status
hdr_first_line(struct hdr *p)
{
	const unsigned char *d = (const unsigned char *)p->hp_in.data;
	size_t		     n = p->hp_in.len, i;
	bool		     wsp = false;

	if (n == 0)
		return p->hp_eof ? hdr_end(p, 0, false) : hdr_starve(p);
	if (d[0] == '\n')
		return hdr_end(p, 1, true);
	if (d[0] == '\r') {
		if (n < 2)
			return p->hp_eof ? hdr_end(p, 0, false) : hdr_starve(p);
		return d[1] == '\n' ? hdr_end(p, 2, true)
				    : hdr_end(p, 0, false);
	}
	if (IS_WSP(d[0]))
		return hdr_end(p, 0, false);
	for (i = 0; i < n; i++) {
		if (d[i] == ':')
			break;
		if (IS_WSP(d[i]))
			wsp = true;
		else if (d[i] < 33 || d[i] > 126 || wsp)
			return hdr_end(p, 0, false);
		if (i >= p->hp_lim.hl_max_line)
			return HDR_ELINE;
	}
	if (i == n)
		return p->hp_eof ? hdr_end(p, 0, false) : hdr_starve(p);
	if (i == 0)
		return hdr_end(p, 0, false); /* empty name */
	p->hp_colon = i;
	return HDR_FIELD;
}

/* Finds where the current field ends (*end_r) or says why it cannot yet. */
static enum hdr_status
hdr_scan(struct hdr *p, size_t *end_r)
{
	enum hdr_status st;
	size_t		next;
	int		r;

	if (p->hp_scan == 0) {
		if (p->hp_colon == 0 && (st = hdr_first_line(p)) != HDR_FIELD)
			return st;
		if ((r = hdr_line_end(p, 0, &next)) != 1)
			return r == 0 ? hdr_starve(p) : HDR_ELINE;
		p->hp_scan = next;
	}
	for (;;) {
		if (p->hp_scan >= p->hp_in.len) {
			if (!p->hp_eof)
				return hdr_starve(p);
			break;
		}
		if (!IS_WSP(p->hp_in.data[p->hp_scan]))
			break;
		if ((r = hdr_line_end(p, p->hp_scan, &next)) != 1)
			return r == 0 ? hdr_starve(p) : HDR_ELINE;
		p->hp_scan = next;
	}
	*end_r = p->hp_scan;
	return HDR_FIELD;
}

/* Unfolds bytes [from, end) of the input into hp_val, trimmed. */
static int
hdr_unfold(struct hdr *p, size_t from, size_t end)
{
	const char *d = p->hp_in.data;
	size_t	    s, e, next, a, b;

	buf_reset(&p->hp_val);
	if (buf_reserve(&p->hp_val, 0) ==
	    -1) /* an empty value still needs its NUL */
		return -1;
	for (s = from; s < end; s = next) {
		const char *lf = memchr(d + s, '\n', end - s);

		e = lf == NULL ? end : (size_t)(lf - d);
		next = lf == NULL ? end : e + 1;
		if (lf != NULL && e > s && d[e - 1] == '\r')
			e--;
		if (buf_append(&p->hp_val, d + s, e - s) == -1)
			return -1;
	}
	for (a = 0; a < p->hp_val.len && IS_WSP(p->hp_val.data[a]); a++)
		;
	for (b = p->hp_val.len; b > a && IS_WSP(p->hp_val.data[b - 1]); b--)
		;
	memmove(p->hp_val.data, p->hp_val.data + a, b - a);
	p->hp_val.len = b - a;
	p->hp_val.data[p->hp_val.len] = '\0';
	return 0;
}

static enum hdr_status
hdr_emit(struct hdr *p, size_t end, struct hdr_field *f)
{
	size_t nl = p->hp_colon;

	while (nl > 0 && IS_WSP(p->hp_in.data[nl - 1]))
		nl--;
	buf_reset(&p->hp_name);
	if (buf_append(&p->hp_name, p->hp_in.data, nl) == -1 ||
	    hdr_unfold(p, p->hp_colon + 1, end) == -1)
		return HDR_ENOMEM;
	f->hf_name = p->hp_name.data;
	f->hf_namelen = p->hp_name.len;
	f->hf_value = p->hp_val.data;
	f->hf_valuelen = p->hp_val.len;
	f->hf_offset = p->hp_base;
	f->hf_rawlen = end;
	p->hp_consumed = end;
	p->hp_scan = 0;
	p->hp_colon = 0;
	return HDR_FIELD;
}

enum hdr_status
hdr_next(struct hdr *p, struct hdr_field *f_r)
{
	enum hdr_status st;
	size_t		end;

	if (p->hp_final != HDR_MORE)
		return p->hp_final;
	hdr_compact(p);
	st = hdr_scan(p, &end);
	if (st == HDR_FIELD)
		st = hdr_emit(p, end, f_r);
	if (st != HDR_FIELD && st != HDR_MORE)
		p->hp_final = st;
	return st;
}

size_t
hdr_body_offset(const struct hdr *p)
{
	return p->hp_body;
}

bool
hdr_ended_by_blank(const struct hdr *p)
{
	return p->hp_blank;
}

const char *
hdr_status_name(enum hdr_status st)
{
	switch (st) {
	case HDR_MORE:
		return "more";
	case HDR_FIELD:
		return "field";
	case HDR_END:
		return "end";
	case HDR_ELINE:
		return "line too long";
	case HDR_ESIZE:
		return "header too large";
	case HDR_ENOMEM:
		return "out of memory";
	}
	return "?";
}
