/*
 * spoold_poison: a message that kills spoold while it is being filed
 * (abort or SIGSEGV in a library, an OOM kill) must not stop filing for
 * everything behind it.
 *
 * Before each batch spoold writes the queue ids it is about to file into
 * db/spoold.filing (one pwrite, no fsync: it must survive a crash of the
 * process, not a power loss) and clears it after the batch. At start, a
 * record that was not cleared names the files the previous spoold died
 * on: each counts one death and is filed alone, before anything else.
 * A file spoold crashed on twice (a fatal signal: SIGSEGV, SIGABRT...,
 * the second time with it alone), or died on three times in any way
 * (SIGKILL, the OOM killer), is moved to quarantine/ ("QID: quarantined,
 * reason=spoold died while filing it (2 times)"), unless its message is already in the database, which filing
 * again only moves (spoold_file.h), as the record never makes spoold
 * file anything twice. The record holds at most one batch (spoold_batch)
 * plus the files of the previous run still to be filed alone.
 */
#ifndef SG_SPOOLD_POISON_H
#define SG_SPOOLD_POISON_H

#include <stddef.h>

#include "spoold_file.h"

#define SPOOLD_POISON_FILE   "spoold.filing" /* in db/ */
#define SPOOLD_POISON_DEATHS 2 /* crashes while filing it: quarantined */
#define SPOOLD_POISON_KILLS  3 /* deaths of any kind (SIGKILL, OOM) */

/* At start, after spool_open: opens the record, reads what the last run
 * left (one log line if it died while filing). Fatal if the record is not
 * spoold's own regular file. */
void spoold_poison_open(struct spoold *);
/* Before a batch: names[0..n) are being filed. */
void spoold_poison_mark(struct spoold *, char (*names)[SPOOLD_NAME_MAX],
    size_t n);
/* After it (whatever happened): nothing is being filed. */
void spoold_poison_clear(struct spoold *);
/* Files the last run's suspects one at a time (or quarantines them):
 * 0 when none is left, or a transient error (the rest waits). */
int  spoold_poison_recover(struct spoold *);
void spoold_poison_close(struct spoold *);

#endif
