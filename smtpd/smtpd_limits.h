/*
 * smtpd_limits: what the workers must count together (issue 14): sessions
 * per client address across every worker, the sessions in use for stress
 * mode, and a worker's notice to the master that it is retiring.
 *
 * The master creates one shared anonymous mapping before any fork: a
 * process-shared robust mutex, an open-addressing table of per-address
 * counts (bounded: twice the session capacity at start, rounded up to a
 * power of two) and the session total. Each worker also gets, per spawn, a
 * small shared ledger of the addresses it holds; the ledgers are the truth
 * and the table their sum, so when a worker dies (even holding the mutex)
 * the master rebuilds the table from the ledgers of the live workers.
 * Nothing in shared memory is trusted by the master beyond its bounds.
 *
 * Memory: smtpd_limits_new() returns an object the master keeps for its
 * lifetime; the mappings are inherited by the workers. Errors: 0 or -1
 * with errno, except where noted.
 */
#ifndef SG_SMTPD_LIMITS_H
#define SG_SMTPD_LIMITS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct smtpd_limits;

enum smtpd_limits_rc {
	SMTPD_LIMITS_OK,       /* counted; *idx_r names the ledger entry */
	SMTPD_LIMITS_OVER,     /* the address holds its limit already */
	SMTPD_LIMITS_UNTRACKED /* table full or lock lost: admitted, not counted */
};

/* Master, before any fork: nslots worker slots, capacity sessions in all. */
struct smtpd_limits *smtpd_limits_new(size_t nslots, uint64_t capacity);
/* Unmaps and frees it (tests; the master keeps it until it exits). */
void smtpd_limits_free(struct smtpd_limits **);

/*
 * Each process's policy (a worker's from its own configuration): at most
 * per_ip sessions per address (IPv6: per prefix of v6bits bits), stress
 * mode from threshold percent of capacity sessions in use.
 */
void smtpd_limits_configure(struct smtpd_limits *, uint64_t per_ip,
    unsigned v6bits, uint64_t capacity, unsigned threshold);

/*
 * The same from the configuration: smtpd_client_connection_limit (0: half
 * of smtpd_workers x smtpd_max_sessions), smtpd_client_ipv6_prefix_length,
 * smtpd_stress_threshold.
 */
struct conf;
void smtpd_limits_conf(struct smtpd_limits *, const struct conf *);

/* Master: the ledger and the retirement pipe of slot, before fork(). */
int smtpd_limits_spawn(struct smtpd_limits *, size_t slot, size_t nsessions);
/* Master, after fork(): keeps the reading end only. */
void smtpd_limits_spawned(struct smtpd_limits *, size_t slot);
/* Master: slot's worker is gone (or never started): forget what it held. */
void smtpd_limits_reaped(struct smtpd_limits *, size_t slot);
/* Master: the read end of slot's retirement pipe to watch; -1: none. */
int smtpd_limits_notice_fd(const struct smtpd_limits *, size_t slot);
/*
 * Master, when that descriptor is readable: reads the worker's records,
 * adds its counters (metrics_delta_add), and sets *retire_r if it said it
 * is retiring. 0: the pipe stays open; 1: it ended (the worker exited, or
 * wrote junk) and is closed.
 */
int smtpd_limits_notice(struct smtpd_limits *, size_t slot, bool *retire_r);

/* Worker, first thing after fork(): keeps its own ledger and pipe only,
 * and counts metrics privately (metrics_private). */
void smtpd_limits_child(struct smtpd_limits *, size_t slot);
/* Worker: tells the master it retires (once; a replacement starts). */
void smtpd_limits_retire(struct smtpd_limits *);
/*
 * Worker: sends what it counted (common/metrics.h) since the last record,
 * at most once a second unless force (before it exits). A full pipe keeps
 * the counts for the next call.
 */
void smtpd_limits_flush(struct smtpd_limits *, int64_t now_ms, bool force);
/* Worker: counts a new session from sa unless its address is over the limit. */
enum smtpd_limits_rc smtpd_limits_admit(struct smtpd_limits *,
    const struct sockaddr *sa, int *idx_r);
/* Worker: the session counted as idx ended (idx -1: nothing to do). */
void smtpd_limits_release(struct smtpd_limits *, int idx);

/* Stress mode: most sessions of all workers are in use. */
bool smtpd_limits_stress(const struct smtpd_limits *);
/* Sessions counted across all workers, and those of one address (tests). */
uint64_t smtpd_limits_sessions(const struct smtpd_limits *);
uint32_t smtpd_limits_count(struct smtpd_limits *, const struct sockaddr *);

#endif
