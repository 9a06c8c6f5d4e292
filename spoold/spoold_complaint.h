/*
 * spoold_complaint: feedback-loop reports (issue 16 item 5). A message
 * whose every recipient is a complaints_address is not queued: spoold
 * parses it (common/arf.h), finds the delivered event of the reported
 * Message-ID, recipient and one of the queue ids our Received lines in the
 * original name (spool_engage_find_delivered_qid: kept as long as
 * the delivery log, delivery_log_retention), checks that the report
 * proves its recipient got that copy (the copy went to that recipient
 * alone, or the original carries a tracking token of that recipient:
 * a co-recipient knows the same queue id), and in the filing
 * transaction adds a `complained` event for the original message and the
 * recipient to the account's stop list, and marks the report finished
 * (spool_done_put) so a crash before its file is removed does not count
 * it twice. A report that does not parse, matches nothing or does not
 * prove its recipient is logged with the reason and removed.
 */
#ifndef SG_SPOOLD_COMPLAINT_H
#define SG_SPOOLD_COMPLAINT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "spool.h"

struct conf;

/* Every recipient of env is one of complaints_address (and there is one). */
bool spoold_complaint_envelope(const struct conf *,
    const struct spool_env *env);
/*
 * Handles the report filed as env (its copy queue/.QID.in, the message
 * from env->pe_hdrlen on) in txn; its file is then removed. Log lines
 * (each ending in '\n') go to log. 0, or an error worth retrying (the
 * batch is retried).
 */
int spoold_complaint_file(struct spool_txn *, const struct conf *,
    const struct spool_env *env, int64_t now, struct buf *log);

#endif
