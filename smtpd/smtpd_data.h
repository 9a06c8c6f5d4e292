/*
 * smtpd_data: the DATA/BDAT content decoder, a pure push state machine
 * (STYLE R1, R2): no I/O, no allocation. The session pushes raw bytes as
 * they arrive; the decoder emits message bytes into a caller buffer,
 * removes dot-stuffing (DATA), finds the end of data, and records what is
 * wrong with the message so the session can answer after the end.
 *
 * End of data is CR LF . CR LF only, where the CR LF before the dot ended
 * a line (the DATA command's own CRLF counts: ".\r\n" at once is an empty
 * message). A bare LF or a bare CR anywhere never ends the data and sets
 * SMTPD_DATA_BARE: the session rejects the message (550 5.5.2), so no
 * second message can be smuggled (CVE-2023-51764 class).
 * BDAT content is not unstuffed and has no end marker, but gets the same
 * line checks, so nothing accepted ever holds a bare CR or LF.
 */
#ifndef SG_SMTPD_DATA_H
#define SG_SMTPD_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* error flags (accumulate) */
#define SMTPD_DATA_BARE	    0x01 /* bare CR or LF seen */
#define SMTPD_DATA_LONGLINE 0x02 /* a line over max_line octets (with CRLF) */
#define SMTPD_DATA_TOOBIG   0x04 /* more than max_size message octets */

enum smtpd_data_mode { SMTPD_DATA_DOT, SMTPD_DATA_BDAT };

struct smtpd_data {
	enum smtpd_data_mode da_mode;
	int		     da_state;
	unsigned	     da_flags;
	size_t	 da_linelen;  /* octets of the current line as sent */
	size_t	 da_max_line; /* including CRLF */
	uint64_t da_max_size;
	uint64_t
	    da_size; /* message octets produced (counted even when discarded) */
	uint64_t da_lines; /* CRLF-ended lines seen (progress, for timeouts) */
	bool	 da_done;  /* end of data seen (DOT mode) */
};

void smtpd_data_init(struct smtpd_data *, enum smtpd_data_mode, size_t max_line,
    uint64_t max_size);
/*
 * Consumes up to n bytes of in and writes the decoded message bytes to
 * out (which must have room for at least n + 2 bytes), *outlen_r = count.
 * Returns the number of input bytes consumed: fewer than n only when the
 * end of data was reached (da_done; the rest is the next command). Once
 * the size limit is passed, output stops (bytes are still counted).
 */
size_t smtpd_data_push(struct smtpd_data *, const char *in, size_t n, char *out,
    size_t *outlen_r);
/*
 * BDAT LAST: closes the message. A final line without CRLF gets one
 * (written to out, room for 2 bytes); a dangling CR is a bare CR.
 */
void smtpd_data_finish(struct smtpd_data *, char *out, size_t *outlen_r);

#endif
