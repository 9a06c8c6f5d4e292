/*
 * spoold_dedupe: idempotent submission (issue 18 item 3). A message whose
 * valid X-Letter-Id its account already used for a message queued within
 * dedupe_window (spool_dedupe.c's index, by filing time) is accepted
 * (smtpd has already said 250) but not queued: in the filing transaction
 * it gets one `duplicate` event carrying `original_queue_id` (one per
 * message: `to` is its first recipient), a finished marker, and its file
 * is removed. A message queued for delivery records its X-Letter-Id. A
 * message without X-Letter-Id, or with dedupe_window = 0, is never
 * deduplicated; a sandbox account behaves the same.
 */
#ifndef SG_SPOOLD_DEDUPE_H
#define SG_SPOOLD_DEDUPE_H

#include <stdint.h>

#include "buf.h"
#include "spool.h"

struct conf;

/* 0 and orig_r: m (not yet stored) repeats the message orig_r; else
 * SPOOL_ENOTFOUND (a line goes to log when the id cannot be looked up),
 * or an error worth retrying. */
int spoold_dedupe_find(struct spool_txn *, const struct conf *,
    const struct spool_msg *m, int64_t now, char orig_r[QID_SIZE],
    struct buf *log);
/* Records the X-Letter-Id of m, queued for delivery now. */
int spoold_dedupe_note(struct spool_txn *, const struct conf *,
    const struct spool_msg *m, int64_t now);
/* Finishes the duplicate m of orig: marker, event (to: its first
 * recipient), log line. */
int spoold_dedupe_file(struct spool_txn *, const struct spool_msg *m,
    const char *orig, const char *to, int64_t now, struct buf *log);

#endif
