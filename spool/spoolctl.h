/*
 * spoolctl: the operator's tool (CONTRACT "Accounts and policy", "Queue and
 * statistics"). spoolctl.c parses the global options and dispatches to the
 * ctl_cmd_* functions of the spoolctl_*.c modules; each returns the exit
 * status (CTL_OK, CTL_FAIL: the thing does not exist or failed, CTL_USAGE).
 * Helpers that cannot continue print one line to stderr and exit.
 * Listings use read-only snapshots; changes use short write transactions.
 */
#ifndef SG_SPOOLCTL_H
#define SG_SPOOLCTL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "spool.h"

#define CTL_OK	  0
#define CTL_FAIL  1
#define CTL_USAGE 2

struct conf;
struct json_gen;

struct ctl {
	struct conf  *cf;
	struct spool *sp;
	bool	      sp_write; /* sp was opened read-write */
	bool	      prepared; /* tree created, privileges dropped */
	int64_t	      now;
	bool	      grow;	  /* a write txn found the map full: grow */
	bool	      grow_stuck; /* ... and it could not grow */
};

#define CTL_GROW_RETRIES 8 /* map x 256 at most in one run */

struct ctl_cmd {
	const char *name;
	int (*fn)(struct ctl *, int argc, char **argv);
};

/* One line "spoolctl: ..." on stderr, then exit 2 (usage) or 1 (failure). */
void ctl_usage(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* A --category value (common/bounce.h); a usage error (exit 2) naming the
 * categories otherwise. cmd names the command in the message. */
int  ctl_category(const char *name, const char *cmd);
void ctl_die(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Like ctl_die for a spool_* error code: "what: spool_strerror(rc)". */
void ctl_die_rc(int rc, const char *, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void ctl_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
/* " (what to do)" about errno err on an operator's file, or "". */
const char *ctl_file_hint(int err);
/*
 * A write txn failed with SPOOL_EFULL (ctl_die_rc calls it): close the
 * spool (aborting the txn) and run the command again from the start on a
 * grown map (spoolctl.c); returns only if it cannot grow any more.
 */
void ctl_retry_full(void);
/*
 * stdout: SIGPIPE is ignored, so a closed pipe ("spoolctl queue | head")
 * is a write error rather than a death inside a read txn. ctl_out_broken()
 * tells a listing to stop; ctl_out_status(rc) is the exit status: rc if
 * the reader just went away (EPIPE), else CTL_FAIL after a message.
 */
bool ctl_out_broken(void);
int  ctl_out_status(int rc);

/* getopt_long over argv[0..argc) (argv[0] is the command word); options
 * may follow the operands. Unknown options are usage errors. Returns the
 * option's val or -1; operands are argv[optind..argc). */
int ctl_getopt(int argc, char **argv, const struct option *);
/* Exactly n operands remain, else a usage error naming the synopsis. */
void ctl_operands(int argc, char **argv, int min, int max,
    const char *synopsis);
/* The usage error "usage: spoolctl SYNOPSIS (spoolctl help CMD)". */
void ctl_usage_syn(const char *synopsis) __attribute__((noreturn));
/* Only --json may be given; then min..max operands. Returns --json. */
bool ctl_want_json(int argc, char **argv, const char *synopsis, int min,
    int max);
/* No options at all; then min..max operands. */
void ctl_no_options(int argc, char **argv, int min, int max,
    const char *synopsis);
/* Dispatches argv[1] among subcommands (argv[0] is the command word). */
int ctl_dispatch(struct ctl *, const struct ctl_cmd *, int argc, char **argv,
    const char *synopsis);
/*
 * The synopsis of ctl_operands, ctl_want_json, ctl_no_options and
 * ctl_dispatch may be NULL: the usage then comes from the help table
 * (spoolctl_help.c) for the command being run, ctl_help_cur().
 */

/* spoolctl_help.c: the one table of usages, options and examples. */
/* Sets the command being run: "account", or "account" "add" (idempotent:
 * a command run again after the map grew sets the same). */
void	    ctl_help_set(const char *cmd, const char *sub);
const char *ctl_help_cur(void);
/* The table has cmd or a sub-command of it. */
bool ctl_help_known(const char *cmd);
/* What follows "spoolctl CMD" in cmd's usage, or NULL. */
const char *ctl_help_usage(const char *cmd);
void	    ctl_help_overview(FILE *);
/* Usage, options and an example of cmd and each of its sub-commands. */
void ctl_help_print(FILE *, const char *cmd);
/* Usage error "WHAT "WORD"; did you mean "NEAR"? (spoolctl help HELP)",
 * NEAR the nearest name of cmds (NULL-terminated), if near enough. */
void ctl_unknown(const char *what, const char *word, const struct ctl_cmd *cmds,
    const char *help) __attribute__((noreturn));
/* argv[1] is a sub-command of argv[0] in the table, or a usage error with
 * the nearest one (before the config is read). */
void ctl_help_check_sub(int argc, char **argv);

/* As root: creates the spool tree with its owners, then drops to
 * spoold_user (so every file spoolctl creates belongs to the daemons).
 * Runs once; commands do their root-only work (reading operator files,
 * installing DKIM keys) before the first ctl_begin. */
void ctl_prepare(struct ctl *);
/* spool_tree_create, or dies with the line naming the refused path. */
void ctl_tree_create(struct ctl *);
/* Opens the spool (read-only when !write, unless already read-write) and
 * begins a transaction; exits on error. */
struct spool_txn *ctl_begin(struct ctl *, bool write);
/* Commits; exits 1 with a message on failure. */
void ctl_commit(struct spool_txn **);
/* spool_events_export to the configured event log; warns on failure. */
void ctl_export_events(struct ctl *);
/* Pokes deliverd through spool_dir/trigger. */
void ctl_wake_deliverd(struct ctl *);

/* Prints a finished JSON document and a newline to stdout. */
void ctl_json_print(struct json_gen *);
/* "2026-11-29 16:04:05" (UTC) */
void ctl_time(int64_t t, char dst[20]);
bool ctl_login_ok(const char *);
bool ctl_addr_ok(const char *);
bool ctl_domain_ok(const char *);
/* False (with a "no message" line) when qid is not a queue id at all. */
bool ctl_qid_known(const char *qid);
/* Not-found messages, each with the command that lists what exists. */
#define CTL_NO_ACCOUNT "no account %s (spoolctl account list shows them)"
#define CTL_NO_MESSAGE "no message %s (spoolctl queue --state all lists them)"
/* An account must exist (exit 1 otherwise). */
void ctl_need_account(struct spool_txn *, const char *login);
/*
 * An address list to add (`stoplist add --file`, `suppression add -`):
 * one address a line in data[0..len), blank lines and #comments skipped,
 * every line checked before anything changes (a bad one: usage error
 * "<where><line number>: "<line>" is not an address"). Appends them to
 * out NUL-separated (full: exit with toobig) and returns their number.
 * Writes into data.
 */
size_t ctl_addr_lines(char *data, size_t len, struct buf *out,
    const char *where, const char *toobig);
/*
 * Adds the n NUL-separated addresses of addrs to login's list through
 * put, in write transactions of CTL_ADD_TXN addresses (login must exist);
 * a failure of put exits with "<what> <address>".
 */
#define CTL_ADD_TXN 10000
void ctl_addrs_add(struct ctl *, const char *login, const struct buf *addrs,
    size_t n,
    int (*put)(struct spool_txn *, const char *login, const char *addr,
	void *arg),
    void *arg, const char *what);

/* Event JSON from the delivery log (spool_log_iter), decoded. The
 * strings point into ce_tree, freed by ctl_event_free. */
struct ctl_event {
	struct json_val *ce_tree;
	const char	*ce_event;
	const char	*ce_class;
	const char	*ce_dt;
	const char	*ce_account;
	const char	*ce_qid;
	const char	*ce_to;
	const char	*ce_from;
	const char	*ce_msg;
	const char	*ce_hop;
	const char	*ce_tls;
	const char	*ce_issue_name;
	const char	*ce_issue_date;
	const char	*ce_uniq;
	const char *ce_category; /* deferred/bounced (issue 15), else NULL */
	const char *ce_url;	 /* clicked (issue 16), else NULL */
	uint64_t    ce_issue_id;
	int64_t	    ce_attempt;
	bool	    ce_sandbox;
};
/* 0, or -1 if the text does not decode as an event object. */
int  ctl_event_parse(const char *json, size_t len, struct ctl_event *);
void ctl_event_free(struct ctl_event *);

/* The commands (spoolctl_account.c, _policy.c, _queue.c, _show.c,
 * _stats.c, _query.c). */
int ctl_cmd_account(struct ctl *, int, char **);
int ctl_cmd_sender(struct ctl *, int, char **);
int ctl_cmd_dkim(struct ctl *, int, char **);
int ctl_cmd_stoplist(struct ctl *, int, char **);
/* spoolctl_stopshow.c: `stoplist show LOGIN EMAIL [--json]` (h-asupp) */
int ctl_stop_show(struct ctl *, int, char **);
int ctl_cmd_issue(struct ctl *, int, char **);
int ctl_cmd_queue(struct ctl *, int, char **);
/* spoolctl_summary.c: queue --summary [--json] */
int ctl_queue_summary(struct ctl *, bool json);
int ctl_cmd_show(struct ctl *, int, char **);
int ctl_cmd_retry(struct ctl *, int, char **);
int ctl_cmd_hold(struct ctl *, int, char **);
int ctl_cmd_release(struct ctl *, int, char **);
int ctl_cmd_delete(struct ctl *, int, char **);
int ctl_cmd_issues(struct ctl *, int, char **);
int ctl_cmd_bounces(struct ctl *, int, char **);
int ctl_cmd_query(struct ctl *, int, char **);
/* spoolctl_tlsrpt.c (issue 17 item 4); ctl_date_ok (spoolctl_stats.c): a
 * real calendar day YYYY-MM-DD */
int  ctl_cmd_tls_report(struct ctl *, int, char **);
bool ctl_date_ok(const char *);
/* spoolctl_pause.c (issue 15 item 7) */
int ctl_cmd_pause(struct ctl *, int, char **);
int ctl_cmd_resume(struct ctl *, int, char **);
/* spoolctl_suppression.c */
int ctl_cmd_suppression(struct ctl *, int, char **);
/* spoolctl_events.c, spoolctl_status.c (issue 18 items 2, 7) */
int ctl_cmd_events(struct ctl *, int, char **);
int ctl_cmd_callbacks(struct ctl *, int, char **);
int ctl_cmd_status(struct ctl *, int, char **);
/* spoolctl_quarantine.c: quarantine list|requeue */
int ctl_cmd_quarantine(struct ctl *, int, char **);
/* spoolctl_cbsecret.c (issue 18 item 1): account --callback-secret S|none
 * and --callback-secret-file F, repeatable; checked as they are parsed
 * (a usage error exits), applied to an account (replacing its secrets)
 * only when given, wiped after the write; shown as count and fingerprints. */
void ctl_cbsecret_opt(const char *arg, bool from_file);
void ctl_cbsecret_apply(struct spool_account *);
void ctl_cbsecret_wipe(void);
void ctl_cbsecret_describe(const struct spool_account *, FILE *);
void ctl_cbsecret_json(struct json_gen *, const struct spool_account *);
/* spoolctl_cluster.c (issue 19): cluster export; after a command, the
 * publish of what it journaled (cluster mode only; one line on stderr) */
int  ctl_cmd_cluster(struct ctl *, int, char **);
void ctl_cluster_publish(struct ctl *);
/* cluster_secret_file (cluster mode): opened before the privilege drop
 * (ctl_prepare), read only when values are written to PostgreSQL:
 * ctl_cluster_seal_ready is true when the key is loaded or none is set,
 * false with why in err (then nothing may be written there). */
void ctl_cluster_seal_open(struct ctl *);
bool ctl_cluster_seal_ready(struct ctl *, char *err, size_t errsz);

/* spoolctl_cstatus.c (issue 19): status's cluster section, from
 * spool_dir/cluster.state (clusterd) and the LMDB shipping cursor. */
struct ctl_cluster {
	bool	 on;   /* cluster_dsn is set */
	bool	 have; /* cluster.state was read */
	bool	 connected;
	char	 node[256];
	int64_t	 since, live_nodes, updated;
	uint64_t policy_version, journal, shipped, last;
	char	 error[512];
	char	 conflict[128]; /* "CLAIM LAST_SEEN" of the other holder of
				 * the node name ("": none; cluster_node.c) */
};
bool ctl_cluster_wanted(const struct conf *);
void ctl_cluster_gather(struct ctl *, struct spool_txn *, struct ctl_cluster *);
/* true and dst filled when the node is cut off from PostgreSQL. */
bool ctl_cluster_problem(const struct ctl_cluster *, char *dst, size_t);
void ctl_cluster_json(struct json_gen *, const struct ctl_cluster *);
void ctl_cluster_text(const struct ctl_cluster *);

/* spoolctl_cquery.c (issue 19): --cluster reads PostgreSQL (cluster_dsn)
 * or exits (2: no cluster_dsn; 1: unreachable or the statement failed). */
struct statq;
/* Appends the rows of q (account's only, unless NULL) to jg's open list. */
void ctl_cluster_query(struct ctl *, const struct statq *q, const char *account,
    struct json_gen *jg);
/* The newest `last` bounced events of every node (of category cat unless
 * NULL), newest first, as event JSON through fn until it returns 1. */
void ctl_cluster_bounces(struct ctl *, int64_t last, const char *cat,
    int (*fn)(uint64_t, const char *json, size_t, void *), void *);
/* Every issue's counters summed over the nodes that have it, through fn
 * with the number of those nodes, by day, account, id. */
void ctl_cluster_issues(struct ctl *, const char *account, const char *date,
    int (*fn)(const struct spool_issue *, int64_t nodes, void *), void *);

/* spoolctl_tlsrpt.c: the RFC 8460 report of UTC day date (YYYY-MM-DD)
 * of domain (NULL: every domain) as a finished JSON document (the caller
 * frees it); *npol_r = its policies. ctl_tlsrpt_day: date's midnight. */
struct json_gen *ctl_tlsrpt_report(struct ctl *, const char *date,
    const char *domain, size_t *npol_r);
int64_t		 ctl_tlsrpt_day(const char *date);
/* report-id (RFC 8460 4.4): unique and stable for the day, this gateway
 * (hostname) and, for one domain's report (--domain, --send), the domain. */
void ctl_tlsrpt_report_id(struct ctl *, const char *date, const char *domain,
    char *dst, size_t dstsz);
/* spoolctl_tlsrpt_send.c: tls-report --send [--date D] [--domain X]. */
int ctl_tlsrpt_send(struct ctl *, const char *date, const char *domain);

#endif
