#include "config.h"

#include <string.h>

#include "smtpd_data.h"

enum {
	SD_BOL,	  /* at the start of a line (after CRLF) */
	SD_TEXT,  /* inside a line, or after a bare LF */
	SD_CR,	  /* CR seen inside a line */
	SD_DOT,	  /* "." at the start of a line (DOT mode) */
	SD_DOTCR, /* ".\r" at the start of a line (DOT mode) */
	SD_END	  /* CRLF.CRLF seen */
};

void
smtpd_data_init(struct smtpd_data *d, enum smtpd_data_mode mode,
    size_t max_line, uint64_t max_size)
{
	memset(d, 0, sizeof(*d));
	d->da_mode = mode;
	d->da_state = SD_BOL;
	d->da_max_line = max_line < 3 ? 3 : max_line;
	d->da_max_size = max_size;
}

/* Appends c to out unless the size limit has been passed. */
static void
sd_emit(struct smtpd_data *d, char c, char *out, size_t *o)
{
	d->da_size++;
	if (d->da_size > d->da_max_size) {
		d->da_flags |= SMTPD_DATA_TOOBIG;
		return;
	}
	out[(*o)++] = c;
}

static void
sd_count(struct smtpd_data *d)
{
	/* The limit counts the line as sent, CRLF excluded: max_line - 2 octets. */
	if (++d->da_linelen > d->da_max_line - 2)
		d->da_flags |= SMTPD_DATA_LONGLINE;
}

/* One octet in SD_TEXT (also used to re-dispatch after a bare CR). */
static void
sd_text(struct smtpd_data *d, char c, char *out, size_t *o)
{
	if (c == '\r') {
		d->da_state = SD_CR;
		return;
	}
	if (c == '\n') {
		/* Bare LF: never a line end for us, never an end of data. */
		d->da_flags |= SMTPD_DATA_BARE;
		d->da_linelen = 0;
		sd_emit(d, c, out, o);
		d->da_state = SD_TEXT;
		return;
	}
	sd_count(d);
	sd_emit(d, c, out, o);
	d->da_state = SD_TEXT;
}

/* A CR not followed by LF: kept as text, then c as in SD_TEXT. */
static void
sd_bare_cr(struct smtpd_data *d, char c, char *out, size_t *o)
{
	d->da_flags |= SMTPD_DATA_BARE;
	sd_count(d);
	sd_emit(d, '\r', out, o);
	sd_text(d, c, out, o);
}

static void
sd_step(struct smtpd_data *d, char c, char *out, size_t *o)
{
	switch (d->da_state) {
	case SD_BOL:
		if (c == '.' && d->da_mode == SMTPD_DATA_DOT) {
			sd_count(d);
			d->da_state = SD_DOT;
			return;
		}
		sd_text(d, c, out, o);
		return;
	case SD_DOT:
		if (c == '\r') {
			d->da_state = SD_DOTCR;
			return;
		}
		/* Dot-stuffing: the first dot of the line is dropped. */
		sd_text(d, c, out, o);
		return;
	case SD_DOTCR:
		if (c == '\n') {
			d->da_state = SD_END;
			d->da_done = true;
			d->da_lines++;
			return;
		}
		/* ".\r" + other: the CR was bare; the line goes on. */
		sd_bare_cr(d, c, out, o);
		return;
	case SD_CR:
		if (c == '\n') {
			sd_emit(d, '\r', out, o);
			sd_emit(d, '\n', out, o);
			d->da_linelen = 0;
			d->da_lines++;
			d->da_state = SD_BOL;
			return;
		}
		sd_bare_cr(d, c, out, o);
		return;
	case SD_TEXT:
	default:
		sd_text(d, c, out, o);
		return;
	}
}

size_t
smtpd_data_push(struct smtpd_data *d, const char *in, size_t n, char *out,
    size_t *outlen_r)
{
	size_t i, o = 0;

	for (i = 0; i < n && !d->da_done; i++) {
		/* Fast path: plain text bytes in the middle of a line. */
		if (d->da_state == SD_TEXT || d->da_state == SD_BOL) {
			char c = in[i];
			if (c != '\r' && c != '\n' && c != '.' &&
			    d->da_linelen + 1 <= d->da_max_line - 2 &&
			    d->da_size < d->da_max_size) {
				d->da_linelen++;
				d->da_size++;
				out[o++] = c;
				d->da_state = SD_TEXT;
				continue;
			}
		}
		sd_step(d, in[i], out, &o);
	}
	*outlen_r = o;
	return i;
}

void
smtpd_data_finish(struct smtpd_data *d, char *out, size_t *outlen_r)
{
	size_t o = 0;

	switch (d->da_state) {
	case SD_CR:
		d->da_flags |= SMTPD_DATA_BARE;
		break;
	case SD_TEXT:
		if (d->da_linelen > 0) {
			sd_emit(d, '\r', out, &o);
			sd_emit(d, '\n', out, &o);
		}
		break;
	default:
		break;
	}
	d->da_state = SD_BOL;
	d->da_linelen = 0;
	*outlen_r = o;
}
