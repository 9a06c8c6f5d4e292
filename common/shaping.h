/*
 * shaping: the traffic-shaping file (`shaping_file`, contrib/shaping) and
 * the reply patterns that mean "slow down". Pure (STYLE R1): shaping_parse()
 * reads a whole file's text into a caller-owned struct shaping (fixed
 * arrays, no allocation), or returns a status with the line number and a
 * one-line reason. shaping_match() finds the rule of a domain,
 * shaping_effective() resolves a rule's limits against the defaults,
 * shaping_classify() sorts one reply line for the back-off.
 *
 * Syntax (INI style; '#' starts a comment anywhere outside a value):
 *   [default]                      limits for every destination
 *   throttle_text = rate limited   extra "slow down" texts (repeatable;
 *                                  [default] only; case-insensitive)
 *   [NAME]                         a destination: the domains listed in
 *   domains = a.com .b.com         `domains` ("." = that domain and its
 *                                  subdomains), or NAME itself without one
 *   mx = .google.com               MX hosts (same syntax): any other domain
 *                                  whose MX matches joins this destination
 *   connections = 10               concurrent connections
 *   messages_per_connection = 100
 *   rate = 20/s | 600/m | 3600/h   messages (transactions) started; 0 = none
 *   recipients_per_transaction = 100
 *   slowed_connections = 1         while slowed by a throttling reply
 *   slowed_rate = 30/m
 *   slow_for = 5m                  how long a throttling reply slows it
 *   suspend_after = 5              consecutive connection failures (0 = never)
 *   suspend_for = 5m
 *   tls = may                      outbound TLS level (issue 17): none, may,
 *                                  encrypt, verify, secure (Postfix's names)
 */
#ifndef SG_SHAPING_H
#define SG_SHAPING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHAPING_RULES_MAX    256
#define SHAPING_DOMAINS_MAX  1024 /* all rules together */
#define SHAPING_PATTERNS_MAX 64
#define SHAPING_MX_MAX	     256 /* all rules together */
#define SHAPING_NAME_MAX     64
#define SHAPING_DOMAIN_MAX   256
#define SHAPING_PATTERN_MAX  128
#define SHAPING_LINE_MAX     1024
#define SHAPING_FILE_MAX     (1024 * 1024)

/* A rate: n messages per per_s seconds; n == 0: unlimited. */
struct shaping_rate {
	uint32_t n;
	uint32_t per_s;
};

/* One set of limits; a field of 0 (rates: n == 0) is "not set" in a rule
 * and "unlimited"/"automatic" after shaping_effective(). */
struct shaping_limits {
	uint32_t	    sl_conns;
	uint32_t	    sl_msgs_per_conn;
	struct shaping_rate sl_rate;
	uint32_t	    sl_rcpt_per_tx;
	uint32_t	    sl_slow_conns;
	struct shaping_rate sl_slow_rate;
	uint32_t	    sl_slow_for; /* seconds */
	uint32_t	    sl_suspend_after;
	uint32_t	    sl_suspend_for; /* seconds */
	uint32_t	    sl_set;	    /* SHAPING_SET_* bits given */
	uint32_t	    sl_tls; /* SHAPING_TLS_*; 0: not set (may) */
};
/* `tls` levels in common/tls.h's order (enum tls_level + 1). */
#define SHAPING_TLS_NONE	  1u
#define SHAPING_TLS_MAY		  2u
#define SHAPING_TLS_ENCRYPT	  3u
#define SHAPING_TLS_VERIFY	  4u
#define SHAPING_TLS_SECURE	  5u
#define SHAPING_SET_SUSPEND_AFTER 0x1u /* 0 is a value there ("never") */

struct shaping_rule {
	char		      sr_name[SHAPING_NAME_MAX];
	struct shaping_limits sr_lim;
};

struct shaping_domain {
	char	 sd_name[SHAPING_DOMAIN_MAX]; /* lower case; ".x" = suffix */
	uint16_t sd_rule;
};

struct shaping {
	struct shaping_limits sh_def;
	struct shaping_rule   sh_rules[SHAPING_RULES_MAX];
	size_t		      sh_nrules;
	struct shaping_domain sh_doms[SHAPING_DOMAINS_MAX];
	size_t		      sh_ndoms;
	struct shaping_domain sh_mx[SHAPING_MX_MAX];
	size_t		      sh_nmx;
	char		      sh_pat[SHAPING_PATTERNS_MAX][SHAPING_PATTERN_MAX];
	size_t		      sh_npat;
};

enum shaping_status {
	SHAPING_OK = 0,
	SHAPING_ESYNTAX, /* not "[name]", "key = value", comment or blank */
	SHAPING_EKEY,	 /* unknown key, or a key not allowed here */
	SHAPING_EVALUE,	 /* bad or out-of-range value */
	SHAPING_ELIMIT,	 /* too many rules, domains, patterns; line too long */
	SHAPING_EDUP	 /* a section or domain given twice */
};

/* Parses text[0..len) into *sh_r (cleared first). On failure *line_r is
 * the 1-based line and why says what is wrong. */
enum shaping_status shaping_parse(const char *text, size_t len,
    struct shaping *sh_r, size_t *line_r, char *why, size_t whysz);

/* The rule for a domain (exact name first, then the longest ".suffix"),
 * or -1 when none matches. */
int shaping_match(const struct shaping *, const char *domain);

/* The rule whose `mx` matches an MX host name, or -1. */
int shaping_match_mx(const struct shaping *, const char *mxhost);

/* The destination a domain belongs to: its rule's name, else the domain
 * itself (lower case). Truncates to dstsz. */
void shaping_dest_name(const struct shaping *, const char *domain, char *dst,
    size_t dstsz);

/*
 * The limits that apply: rule (or the defaults for rule -1), then
 * [default], then the built-in defaults: connections = max(1, workers/2),
 * messages_per_connection = msgs_default, recipients_per_transaction =
 * rcpt_max, slowed_connections = max(1, connections/4), slowed_rate =
 * 60/m, slow_for = 5m, suspend_after = 5, suspend_for = 5m. Connections
 * and the slowed values never exceed the workers or the normal values.
 */
void shaping_effective(const struct shaping *, int rule, uint32_t workers,
    uint32_t msgs_default, uint32_t rcpt_max, struct shaping_limits *r);

enum shaping_reply {
	SHAPING_REPLY_OK,	/* the destination answered (any other reply) */
	SHAPING_REPLY_THROTTLE, /* 421/451/4.7.x "slow down" */
	SHAPING_REPLY_CONNFAIL /* no answer: X.4.1, X.4.2 (connect, timeout, lost) */
};
/* Sorts one reply ("451 4.7.1 text") with the built-in throttle texts
 * and sh's (sh may be NULL). */
enum shaping_reply shaping_classify(const struct shaping *, const char *reply);

/*
 * MX host sets (destinations of the domains no section names): the hosts
 * a domain's MX records name, lower case without a trailing dot, sorted
 * and each once. Two domains whose MX records name the same hosts share
 * one destination named by shaping_mxset_key(): "mx{a.example,b.example}"
 * (no domain, section name or `domains` suffix can look like it).
 */
#define SHAPING_MXSET_MAX    16 /* hosts (dns.h's DNS_MX_MAX) */
#define SHAPING_MXSET_PREFIX "mx{"
struct shaping_mxset {
	char   ms_host[SHAPING_MXSET_MAX][SHAPING_DOMAIN_MAX];
	size_t ms_n;
	bool   ms_bad; /* a host that is no host name, or too many */
};
/* Adds one MX host (duplicates are ignored). */
void shaping_mxset_add(struct shaping_mxset *, const char *host);
/* The set's destination name into dst. When the whole list does not fit,
 * the hosts that fit, then "+N#HASH" (how many more and a 64-bit FNV-1a of
 * the whole list), so different sets keep different names. 0, or -1 with
 * dst "" for an empty or bad set. */
int shaping_mxset_key(const struct shaping_mxset *, char *dst, size_t dstsz);
/* Is name an MX set's destination name? */
bool shaping_mxset_name(const char *name);

/* shaping_load.c: reads and parses a file into *sh. 0, or -1 with
 * "path:line: reason" (or "path: strerror") in why. */
int shaping_load(const char *path, struct shaping *sh, char *why, size_t whysz);

/* "20/s", "600/m", "0" into *r; -1 if not a rate. */
int shaping_rate_parse(const char *, struct shaping_rate *r);
/* Formats a rate for people ("20/s", "-" for none; a share "30/m" or
 * "1/3s"). */
void shaping_rate_format(const struct shaping_rate *, char *dst, size_t dstsz);
/* One node's share of l among n live nodes (cluster mode): connections
 * divided (rounded up, at least 1; 0 = unlimited stays) and rates per
 * n times the time. n <= 1: unchanged. */
void shaping_share(struct shaping_limits *l, uint32_t n);

#endif
