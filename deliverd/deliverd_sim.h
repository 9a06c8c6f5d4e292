/*
 * The simulator (issue 18 item 4): recipients in simulator_domain never
 * leave the host. The worker asks deliverd_sim_reply for each one instead
 * of routing it, and reports the reply under the relay name
 * DELIVERD_SIM_RELAY; the commit path then treats it like any next hop's
 * reply (events, categories, suppression, retries, expiry) and adds what
 * follows a delivery: the complained event of complaint@, the auto-reply
 * note of ooto@. The local part before a '+' picks the behaviour
 * (bounce+x@ is bounce@); an unknown local part bounces as a user unknown.
 * No function here logs; the strings returned are static.
 */
#ifndef SG_DELIVERD_SIM_H
#define SG_DELIVERD_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounce.h"

struct conf;
struct deliverd_result;
struct spool_msg;
struct spool_txn;
struct buf;

#define DELIVERD_SIM_RELAY "simulator"

/* True if addr is in simulator_domain (never when that key is ""). */
bool deliverd_sim_match(const struct conf *, const char *addr);
/*
 * The simulated next hop's reply to addr on its attempt attempts + 1
 * (attempts: those made before), and where in the dialogue it came from.
 */
void deliverd_sim_reply(const struct conf *, const char *addr,
    uint32_t attempts, char *reply, size_t replysz, enum bounce_stage *stage_r);
/* True if res is a simulated outcome (relay DELIVERD_SIM_RELAY, address
 * in simulator_domain). */
bool deliverd_sim_result(const struct conf *, const struct deliverd_result *);
/* The delivered event's "auto_reply" note of ooto@, else NULL. */
const char *deliverd_sim_auto_reply(const struct conf *,
    const struct deliverd_result *);
/*
 * After the delivered event of a simulated complaint@ recipient of m: the
 * complained event and the account's stop-list entry, as a feedback-loop
 * report would add them, in txn; one line for the log goes to log.
 * 0 (also for every other result) or a spool error.
 */
int deliverd_sim_after(const struct conf *, struct spool_txn *,
    const struct spool_msg *m, const struct deliverd_result *, int64_t now,
    struct buf *log);

#endif
