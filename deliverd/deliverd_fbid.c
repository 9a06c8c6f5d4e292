/*
 * Feedback-ID for Gmail's Feedback Loop (deliverd_fbid.h). The worker
 * calls deliverd_fbid_line before signing, signs the field with the
 * message and sends it after the DKIM-Signature lines (deliverd_worker.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "deliverd_fbid.h"
#include "hdr.h"
#include "spool.h"

void
deliverd_fbid_field(const char *src, char *dst, size_t dstsz)
{
	size_t i, n = 0;
	char   c;

	if (dstsz == 0)
		return;
	for (i = 0;
	     src[i] != '\0' && n < DELIVERD_FBID_FIELD_MAX && n + 1 < dstsz;
	     i++) {
		c = src[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '_' ||
			c == '-'))
			c = '_';
		dst[n++] = c;
	}
	if (n == 0 && dstsz > 1)
		dst[n++] = '_';
	dst[n] = '\0';
}

bool
deliverd_fbid_present(const char *msg, size_t len, size_t maxhdr)
{
	struct hdr_limits lim = { 0, maxhdr };
	struct hdr	  p;
	struct hdr_field  f;
	enum hdr_status	  st = HDR_MORE;
	size_t		  off = 0, n;
	bool		  found = false;

	hdr_init(&p, &lim);
	while (!found) {
		st = hdr_next(&p, &f);
		if (st == HDR_FIELD) {
			found = str_ieq(f.hf_name, "feedback-id");
			continue;
		}
		if (st != HDR_MORE)
			break;
		if (off >= len || off > maxhdr) {
			hdr_push_eof(&p);
			continue;
		}
		n = len - off < 16384 ? len - off : 16384;
		hdr_push(&p, msg + off, n);
		off += n;
	}
	hdr_release(&p);
	/* a block that does not end cleanly: better no field than a second */
	return found || (st != HDR_END && st != HDR_FIELD);
}

void
deliverd_fbid_line(const char *sender, const struct spool_msg *m,
    const char *msg, size_t len, size_t maxhdr, char *line, size_t linesz)
{
	char login[DELIVERD_FBID_FIELD_MAX + 1];
	char snd[DELIVERD_FBID_FIELD_MAX + 1];

	line[0] = '\0';
	if (sender == NULL || sender[0] == '\0' ||
	    deliverd_fbid_present(msg, len, maxhdr))
		return;
	deliverd_fbid_field(m->sm_login, login, sizeof(login));
	deliverd_fbid_field(sender, snd, sizeof(snd));
	if (str_printf(line, linesz, "Feedback-ID: %llu:%s:%s\r\n",
		(unsigned long long)m->sm_issue, login, snd) == -1)
		line[0] = '\0'; /* cannot happen: linesz is enough */
}
