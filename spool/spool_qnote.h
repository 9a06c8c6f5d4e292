/*
 * spool_qnote: why a file is in quarantine/. spoold writes, next to the
 * file it set aside, a small note ".QID.why" (a dot file: never listed,
 * never requeued) with the time, the count (the deaths that made it a
 * poison file; 0 for any other reason) and the reason; spoolctl
 * quarantine list reads it and requeue removes it. Text, versioned:
 *
 *	smtpgate-quarantine 1
 *	time UNIXTIME
 *	count N
 *	reason TEXT		printable, at most SPOOL_QNOTE_REASON_MAX bytes
 *
 * At most SPOOL_QNOTE_MAX bytes. Functions return 0, or an errno
 * (SPOOL_EFORMAT for a note that does not parse); they never log.
 */
#ifndef SG_SPOOL_QNOTE_H
#define SG_SPOOL_QNOTE_H

#include <stdint.h>

#define SPOOL_QNOTE_REASON_MAX 400
#define SPOOL_QNOTE_MAX	       512

struct spool_qnote {
	int64_t	 qn_time;
	unsigned qn_count;
	char	 qn_reason[SPOOL_QNOTE_REASON_MAX + 1];
};

/* Writes qid's note (durably, replacing an older one); non-printable
 * bytes of reason become '?', a longer reason is cut. */
int spool_qnote_write(const char *spool_dir, const char *qid,
    const struct spool_qnote *);
/* Reads it (ENOENT: there is none). */
int spool_qnote_read(const char *spool_dir, const char *qid,
    struct spool_qnote *qn_r);
/* Removes it; none is fine. */
int spool_qnote_remove(const char *spool_dir, const char *qid);

#endif
