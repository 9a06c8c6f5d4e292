/*
 * Destinations (issue 15 items 3, 4): the scheduler's per-destination
 * limits and back-off. A destination is a shaping rule (its domains, e.g.
 * gmail.com + googlemail.com, and the domains learned through its `mx`) or
 * else the MX host set of the recipient domain ("mx{a,b}", learned from
 * the worker's results: deliverd_dest_via.c), or the domain itself until
 * that is known, or the relayhost. Each has connections, messages per
 * connection, a message rate (token bucket), recipients per transaction,
 * and a state: normal, slowed (after a throttling reply: fewer
 * connections, lower rate) or suspended (after consecutive connection
 * failures: nothing is attempted, its recipients are rescheduled to the
 * end of the suspension). States end by themselves; each change is one log line and
 * is written to SPOOL/shaping.state for `spoolctl queue --summary`.
 * Memory: the table belongs to struct sched (s->dests), at most
 * DEST_MAX entries; idle normal entries are evicted first.
 */
#ifndef SG_DELIVERD_DEST_H
#define SG_DELIVERD_DEST_H

#include <stdbool.h>
#include <stdint.h>

#include "qid.h"
#include "shaping.h"

struct conf;
struct sched;
struct deliverd_sched_job;
struct deliverd_sched_worker;
struct deliverd_result;

#define DEST_MAX	   8192
#define DEST_HASH	   4096
/* a worker that finished a job for a destination may keep its connection
 * open this long (the worker closes after 5 s idle, checked each second) */
#define DEST_IDLE_HOLD_MS  7000
#define DEST_STATE_FILE	   "shaping.state"
#define DEST_STATE_VERSION "SMTPGATE-SHAPING 1"
/* recipients rescheduled per pass for a suspended destination */
#define DEST_RESCHED_MAX   1000

/* the worker's copy (inherited over fork): messages per connection */
extern const struct shaping *deliverd_dest_shaping;

/* In a worker: the messages_per_connection of hop's destination (at most
 * max_msgs_per_connection, which deliverd_smtp_reuse also applies). */
int64_t deliverd_dest_msgs_per_conn(const struct conf *, const char *hop);
/* In a worker: the TLS level of hop's destination (shaping_file `tls`:
 * the section of the domain, else of its first MX host mx (may be NULL),
 * else [default], else may), as enum tls_level. */
int deliverd_dest_tls_level(const char *hop, const char *mx);
/* deliverd_smtp.c: transactions on the open connection (0: none open) */
struct deliverd_smtp;
int64_t deliverd_smtp_nmsgs(const struct deliverd_smtp *);

/* Start: loads shaping_file (exits 2 if bad) and the saved states. */
void deliverd_dest_init(struct sched *);
/* SIGHUP: a new shaping_file; a bad one keeps the old, logged. */
void deliverd_dest_reload(struct sched *);
void deliverd_dest_free(struct sched *);

/* Checks shaping_file at start-up (before the privilege drop): exits 2
 * with "file:line: reason". */
void deliverd_dest_check_conf(const struct conf *);

/* The destination name of a next hop (domain or relayhost). */
void deliverd_dest_name(const struct sched *, const char *hop, char *dst,
    size_t dstsz);

/* ---- claim path */
/*
 * What a recipient may pass ("pass" bits): mail that never leaves the
 * host (a sandbox account's, the simulator's: DEST_PASS_LOCAL) needs no
 * DNS and no network, so the resolver-down hold and every suspension let
 * it through, and its outcomes count for nothing (no failure, no success,
 * no probe); a message with "TLS-Required: No" (RFC 8689 5:
 * DEST_PASS_TLSPOL) passes a suspension for a failed MTA-STS or DANE
 * policy, the policies it asks to be ignored, and is attempted like any
 * other job (one at a time while the destination is failing).
 */
#define DEST_PASS_LOCAL	 0x1u
#define DEST_PASS_TLSPOL 0x2u
/* Recipients per job for this hop. */
uint32_t deliverd_dest_rcpt_max(struct sched *, const char *hop);
/* May the scan take one more recipient for hop? false when the
 * destination holds its share of the claims or is suspended (then
 * *suspended_until_r is set: the recipient is to be rescheduled). */
bool deliverd_dest_may_claim(struct sched *, const char *hop, unsigned pass,
    int64_t *suspended_until_r);
/* The pass bits that would let a held recipient of hop through now: 0
 * when nothing holds it but its destination's share of the claims. */
unsigned deliverd_dest_passable(struct sched *, const char *hop);
void	 deliverd_dest_claimed(struct sched *, const char *hop, unsigned pass,
	size_t n);
/* Counts the claims of every destination again from the jobs. */
void deliverd_dest_recount(struct sched *);
void deliverd_dest_released(struct sched *, const char *hop, unsigned pass,
    size_t n);
/* Recipients of a suspended destination: their due time moves to the
 * end of the suspension (not attempted). */
struct deliverd_dest_resched {
	char	 qid[QID_SIZE];
	uint32_t idx;
	int64_t	 until;
};
void deliverd_dest_reschedule(struct sched *,
    const struct deliverd_dest_resched *, size_t n);

/* ---- dispatch */
/* True if some worker can take a job at all. */
bool deliverd_dest_room(const struct sched *);
/* The worker to give job to now, or NULL (limits, rate, state). */
struct deliverd_sched_worker *deliverd_dest_pick_worker(struct sched *,
    const struct deliverd_sched_job *);
/* job went to worker wi: takes a token. */
void deliverd_dest_dispatched(struct sched *, size_t wi,
    const struct deliverd_sched_job *);
/* One result of the worker's current job; the job is done. */
void deliverd_dest_result(struct sched *, size_t wi,
    const struct deliverd_sched_job *, const struct deliverd_result *);
void deliverd_dest_job_done(struct sched *, size_t wi,
    const struct deliverd_sched_job *);

/* ---- timers */
/* States that ended, queued jobs of suspended destinations, the state
 * file. Call once per loop. */
void deliverd_dest_tick(struct sched *);
/* ms until a token or a state change is due (INT32_MAX: none). */
int64_t deliverd_dest_wait_ms(struct sched *);

#endif
