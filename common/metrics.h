/*
 * metrics: the counters behind the Prometheus endpoint (issue 18 item 5).
 * spool_dir/metrics.shm holds a header page and one block of uint64
 * counters per daemon (page-aligned). Each daemon maps, in phase 1
 * (daemon_main, before the privilege drop and before any fork), its own
 * block writable and the whole file read-only, the latter through a
 * read-only descriptor (mprotect cannot make it writable). A forked child
 * loses the writable mapping (pthread_atfork): smtpd's workers count in
 * private memory and send the deltas to their master over the notice pipe
 * (metrics_private, metrics_delta_*); deliverd's workers, the lookup
 * process and the metrics child count nothing. So a process that is taken
 * over can change only its own daemon's counters. The file is created
 * 0600 by the first daemon and owned by whoever starts the daemons (root,
 * or the test user): no unprivileged process can open it. An increment is
 * one relaxed atomic add; with no mapping (a failure is a warning) it does
 * nothing.
 *
 * Each counter belongs to one daemon (the field's prefix; restarts by
 * index): metrics_snapshot takes it from that daemon's block only. Label
 * sets are fixed: SMTP reply codes (a list, others by class), refusal
 * reasons (an enum), bounce categories (common/bounce.h), METRICS_DESTS
 * destinations (the first ones seen claim the slots; the rest are "other").
 */
#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounce.h"

struct buf;
struct conf;

#define METRICS_MAGIC	 0x534d54504d455452ULL /* "SMTPMETR" */
#define METRICS_VERSION	 3
#define METRICS_FILE	 "metrics.shm"
#define METRICS_DESTS	 32
#define METRICS_DEST_MAX 64 /* a longer domain counts as "other" */

enum metrics_daemon {
	METRICS_D_SMTPD,
	METRICS_D_SPOOLD,
	METRICS_D_DELIVERD,
	METRICS_D_TRACKD,
	METRICS_D_OTHER,
	METRICS_NDAEMONS
};

/* SMTP replies: the common codes, then "other" per class (2, 3, 4, 5). */
#define METRICS_NCODES 24
#define METRICS_NREPLY (METRICS_NCODES + 4)

enum metrics_reason {
	METRICS_R_ISSUE_BLOCKED,
	METRICS_R_SENDER_UNKNOWN,
	METRICS_R_SENDER_ONMODERATION,
	METRICS_R_SENDER_PROHIBITED,
	METRICS_R_NO_TO,
	METRICS_R_NO_FROM,
	METRICS_R_NO_SUBJECT,
	METRICS_R_NO_EMAIL_IN_FROM,
	METRICS_R_NO_MESSAGE_ID,
	METRICS_R_NO_DATE,
	METRICS_R_NO_MIME_VERSION,
	METRICS_R_NO_CONTENT_TYPE,
	METRICS_R_BAD_CAMPAIGN_ID,
	METRICS_R_BAD_LETTER_ID,
	METRICS_R_PERMANENT_ERRORS,
	METRICS_R_STOPLIST,
	METRICS_R_OTHER,
	METRICS_NREASONS
};

enum metrics_outcome {
	METRICS_O_DELIVERED,
	METRICS_O_DEFERRED,
	METRICS_O_BOUNCED,
	METRICS_NOUTCOMES
};

struct metrics_dest {
	uint64_t md_state; /* 0 free, 1 being claimed, 2 in use */
	char	 md_name[METRICS_DEST_MAX];
	uint64_t md_n[METRICS_NOUTCOMES];
};

struct metrics_block {
	uint64_t mb_magic, mb_version, mb_size;
	/* smtpd */
	uint64_t mb_smtpd_sessions[2]; /* accepted, refused at connect */
	uint64_t mb_smtpd_sessions_tls;
	uint64_t mb_smtpd_replies[METRICS_NREPLY];
	uint64_t mb_smtpd_messages[2]; /* accepted (250), refused */
	/* spoold */
	uint64_t mb_spoold_filed;
	uint64_t mb_spoold_quarantined;
	uint64_t mb_spoold_refused[METRICS_NREASONS];
	/* deliverd (after each commit) */
	uint64_t mb_deliverd_outcomes[METRICS_NOUTCOMES][BOUNCE_CAT_COUNT];
	uint64_t mb_deliverd_tls[2]; /* delivered with TLS, delivered */
	struct metrics_dest mb_dest[METRICS_DESTS];
	uint64_t	    mb_dest_other[METRICS_NOUTCOMES];
	/* deliverd's scheduler state (gauges, set when it changes) */
	uint64_t mb_deliverd_resolver_down; /* 1: the resolver-down hold */
	uint64_t mb_deliverd_suspended;	    /* destinations suspended */
	/* common/kids: a supervised child exited and is restarted */
	uint64_t mb_restarts[METRICS_NDAEMONS][2]; /* crash, clean exit */
};

/* The values read from LMDB at scrape time (spoold's metrics child). */
#define METRICS_NAGES 7
struct metrics_gauges {
	uint64_t mg_queue_age[METRICS_NAGES]; /* messages by age bucket */
	int64_t	 mg_queue_oldest;	      /* seconds; 0 when empty */
	bool	 mg_queue_truncated;	      /* the scan stopped at its cap */
	uint64_t mg_messages, mg_rcpts_pending;
	uint64_t mg_outbox; /* callback events pending */
	uint64_t mg_outbox_accounts;
	int64_t	 mg_outbox_lag; /* age of the oldest, seconds */
	int64_t	 mg_map_used, mg_map_size, mg_map_max;
};

extern const char *const metrics_age_names[METRICS_NAGES];
extern const int64_t metrics_age_limits[METRICS_NAGES]; /* upper bound, seconds */

/*
 * Maps spool_dir/metrics.shm (created if missing or of another layout),
 * once per process; daemon names the process for restart counting.
 * 0, or -1 with errno (then every increment is a no-op).
 */
int metrics_attach(const char *spool_dir, const char *daemon);
/* This process's own block (NULL: none). Read-only use: metrics_snapshot. */
struct metrics_block *metrics_block(void);
/* Unmaps both mappings (a process that must not even read them). */
void metrics_detach(void);
/* A consistent-enough copy of every daemon's counters (each read
 * atomically, from the owner's block), from the read-only view. */
void metrics_snapshot(struct metrics_block *dst);

/*
 * A forked child that counts (smtpd's workers): from now on increments go
 * to private memory; metrics_delta_take returns what was counted since the
 * last take (false: nothing), metrics_delta_untake gives back a take that
 * could not be sent, and the master adds a received delta to its own block
 * with metrics_delta_add (smtpd's counters only, saturating: a delta never
 * lowers a counter; a no-op elsewhere).
 */
#define METRICS_DELTA_WORDS (2 + 1 + METRICS_NREPLY + 2)
struct metrics_delta {
	uint64_t mdl_n[METRICS_DELTA_WORDS];
};
void metrics_private(void);
bool metrics_delta_take(struct metrics_delta *);
void metrics_delta_untake(const struct metrics_delta *);
void metrics_delta_add(const struct metrics_delta *);

static inline void
metrics_add(uint64_t *c, uint64_t n)
{
	if (c != NULL)
		(void)__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

/* The block's field for the current process, or NULL: metrics_inc(M(x)). */
extern struct metrics_block *metrics_shm;
#define METRICS_PTR(field) (metrics_shm != NULL ? &metrics_shm->field : NULL)
#define metrics_inc(field) metrics_add(METRICS_PTR(field), 1)

/* smtpd: one reply line as sent ("250 2.0.0 Ok"; continuation lines are
 * not counted). */
void metrics_smtp_reply(const char *line);
/* spoold: one post-commit log line of spoold's filing ("QID: filed, ...",
 * "QID: to=<x>, status=bounced (TEXT)", "NAME: quarantined, ..."). */
void metrics_spoold_log(const char *line, size_t len);
/* The reason for a refusal text (the CONTRACT texts), for tests too. */
enum metrics_reason metrics_reason_of(const char *text, size_t len);
/* deliverd: one committed outcome for address `to`. */
void metrics_delivery(enum metrics_outcome, enum bounce_cat, const char *to,
    bool tls);
/* deliverd's scheduler: the resolver-down hold and the number of
 * suspended destinations, now. */
void metrics_deliverd_state(bool resolver_down, uint64_t suspended);
/* common/kids: a slot's child exited and will be restarted. */
void metrics_restart(bool crash);

/* Names for the renderer. */
const char *metrics_reply_code(size_t i);  /* "250", ..., "other" */
const char *metrics_reply_class(size_t i); /* "2xx", ... */
const char *metrics_reason_name(enum metrics_reason);
const char *metrics_daemon_name(enum metrics_daemon);

/* Prometheus text format 0.0.4 of a snapshot and the gauges (g NULL: no
 * gauges). 0, or -1 (buf full). */
int metrics_render(struct buf *, const struct metrics_block *,
    const struct metrics_gauges *);

#endif
