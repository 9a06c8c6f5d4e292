/*
 * qid: queue IDs. 20 upper-case hex digits: 13 of microseconds since the
 * epoch (so IDs sort by arrival), then 7 of a per-process random prefix and
 * counter (so two processes, or a clock stepped back, never collide; the
 * spool's O_EXCL create is the final guard). Safe as a file name.
 */
#ifndef SG_QID_H
#define SG_QID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QID_LEN	 20
#define QID_SIZE (QID_LEN + 1)

void qid_make(char qid[QID_SIZE]);
bool qid_ok(const char *);
/* Arrival time encoded in the ID, in microseconds. */
uint64_t qid_time_us(const char *);

#endif
