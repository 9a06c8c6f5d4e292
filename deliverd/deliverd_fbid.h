/*
 * Feedback-ID (Gmail's Feedback Loop): the header field deliverd adds to
 * a message before it signs it, so that Postmaster Tools reports
 * complaint rates per issue and per account. The field is
 *   Feedback-ID: ISSUE-ID:LOGIN:SENDER
 * ISSUE-ID the number (events' issue.id), LOGIN the account,
 * SENDER feedback_id_sender. Only when that key is set, and never when the
 * message has a Feedback-ID of its own (the sending application knows its
 * campaigns better). Pure: no I/O, no logging; the caller owns the buffers.
 */
#ifndef SG_DELIVERD_FBID_H
#define SG_DELIVERD_FBID_H

#include <stdbool.h>
#include <stddef.h>

struct spool_msg;

#define DELIVERD_FBID_FIELD_MAX 64 /* bytes of one identifier */
/* "Feedback-ID: " + a 20-digit issue + 2 x (":" + field) + CRLF + NUL */
#define DELIVERD_FBID_LINE_MAX	256

/*
 * One identifier as the field may carry it into dst (dstsz >
 * DELIVERD_FBID_FIELD_MAX): every byte outside [A-Za-z0-9._-] (a colon,
 * whitespace, CR, LF, anything not ASCII) becomes '_', cut after
 * DELIVERD_FBID_FIELD_MAX bytes; "" becomes "_".
 */
void deliverd_fbid_field(const char *src, char *dst, size_t dstsz);

/* True if the header block of msg (at most maxhdr bytes are read) has a
 * Feedback-ID field, or cannot be read to its end (then adding one might
 * make a second). */
bool deliverd_fbid_present(const char *msg, size_t len, size_t maxhdr);

/*
 * The CRLF-ended field for m into line (linesz >= DELIVERD_FBID_LINE_MAX),
 * or "" when sender is "" or msg has a Feedback-ID already.
 */
void deliverd_fbid_line(const char *sender, const struct spool_msg *m,
    const char *msg, size_t len, size_t maxhdr, char *line, size_t linesz);

#endif
