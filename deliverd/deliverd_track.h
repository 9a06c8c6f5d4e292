/*
 * Engagement tracking in the delivery worker (issue 16; deliverd_track.c):
 * the per-recipient copies of a tracked message. A tracked message goes
 * one recipient per SMTP transaction, each copy signed on its own (its
 * signature is never stored for another copy).
 */
#ifndef SG_DELIVERD_TRACK_H
#define SG_DELIVERD_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "spool.h"

struct deliverd_track;

/* Once per worker process (GMime). */
void deliverd_track_init(void);
/* m's tracking state (msg: the message, for its own List-Unsubscribe), or
 * NULL: not tracked (no record, a sandbox message, tracking off) or it
 * cannot be (a bad record: logged), then sent as it is. */
struct deliverd_track *deliverd_track_load(struct spool_txn *,
    const struct spool_msg *m, const char *msg, size_t len);
void		       deliverd_track_free(struct deliverd_track **);
/* Recipient idx's copy of msg into out: 0; -1: send msg as it is (a
 * message that cannot be parsed is logged once per job);
 * DELIVERD_TRACK_DEFER: no tokens from the key process (logged): the copy
 * must not be sent (451). */
#define DELIVERD_TRACK_DEFER (-2)
int deliverd_track_copy(struct deliverd_track *, uint32_t idx, const char *msg,
    size_t len, struct buf *out);

#endif
