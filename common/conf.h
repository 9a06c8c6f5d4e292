/*
 * conf: the one configuration file shared by every program (CONTRACT).
 * `key = value` lines, `#` comments, keys from the single table in
 * conf_keys.c. conf_load() returns a new struct conf or NULL with a message
 * "FILE:LINE: KEY: reason" in err; conf_free() releases it. Values are
 * typed and range-checked at load; SIGHUP re-runs the same loader.
 */
#ifndef SG_CONF_H
#define SG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum conf_tls {
	CONF_TLS_NONE,
	CONF_TLS_STARTTLS,
	CONF_TLS_REQUIRED,
	CONF_TLS_IMPLICIT
};

struct conf_listen {
	char cl_addr[64]; /* numeric IPv4/IPv6 address, "*" or "0.0.0.0" */
	char cl_port[8];
	enum conf_tls cl_tls;
	unsigned      cl_line; /* line in the file, 0 = default */
};

struct conf_list {
	char **v;
	size_t n;
};

struct conf {
	char		   *cf_path;
	char		   *cf_hostname;
	char		   *cf_spool_dir;
	struct conf_listen *cf_listen;
	size_t		    cf_nlisten;
	char		   *cf_tls_cert;
	char		   *cf_tls_key;
	char		   *cf_smtpd_user;
	char		   *cf_spoold_user;
	char		   *cf_deliverd_user;
	char   *cf_group; /* daemons' group: LMDB, events (not smtpd) */
	int64_t cf_smtpd_workers;
	int64_t cf_deliverd_workers;
	int64_t cf_max_message_size;
	int64_t cf_max_recipients;
	char   *cf_relayhost; /* "" = MX delivery */
	int64_t cf_remote_port;
	char   *cf_dns_server;		    /* "" = system resolver */
	struct conf_list cf_retry_schedule; /* durations as strings, parsed: */
	time_t		*cf_retry_delays;
	size_t		 cf_nretry_delays;
	time_t		 cf_max_queue_lifetime;
	struct conf_list cf_blackhole_recipients;
	char		*cf_event_log;
	bool		 cf_auth_plaintext;
	char		*cf_sendmail_account;
	char		*cf_log; /* "stderr" or "syslog" */
	int64_t		 cf_lmdb_map_size;
	/* smtpd */
	int64_t cf_smtpd_max_use;
	int64_t cf_smtpd_max_sessions;	      /* per worker */
	int64_t cf_smtpd_max_sessions_per_ip; /* all workers; 0: auto */
	time_t	cf_smtpd_timeout;
	time_t	cf_smtpd_data_timeout;
	int64_t cf_smtpd_max_errors;
	int64_t cf_smtpd_max_line;
	int64_t cf_smtpd_auth_max_failures;
	/* smtpd limits across workers (issue 14) */
	time_t	cf_smtpd_session_timeout; /* a session's lifetime */
	int64_t cf_smtpd_junk_command_limit;
	int64_t cf_smtpd_stress_threshold; /* percent of all sessions */
	time_t	cf_smtpd_stress_timeout;   /* smtpd_timeout under stress */
	int64_t cf_smtpd_client_ipv6_prefix_length;
	/* spoold */
	time_t	cf_spoold_rescan_interval;
	int64_t cf_spoold_batch;
	int64_t cf_max_header_size;
	time_t	cf_stale_tmp_age;
	/* deliverd */
	time_t	cf_connect_timeout;
	time_t	cf_command_timeout;
	time_t	cf_data_timeout;
	int64_t cf_dest_concurrency;
	int64_t cf_max_msgs_per_connection;
	/* the resolver down (deliverd_dest_resolver.c): this many distinct
	 * domains failed within the window, none answered; 0: never */
	int64_t cf_dns_down_domains;
	time_t	cf_dns_down_window;
	/* one delivery: next-hop addresses tried, sessions kept (Postfix's
	 * smtp_mx_address_limit, smtp_mx_session_limit) */
	int64_t cf_mx_address_limit;
	int64_t cf_mx_session_limit;
	char   *cf_shaping_file; /* issue 15: traffic shaping */
	int64_t cf_callback_batch_max;
	time_t	cf_callback_batch_wait;
	time_t	cf_callback_timeout;
	time_t	cf_callback_retry_min;
	time_t	cf_callback_retry_max;
	/* mail loops and the relayhost's TLS (issue 14) */
	int64_t		 cf_hopcount_limit; /* Received: lines; more bounce */
	struct conf_list cf_allow_next_hop; /* CIDRs exempt from the loop check */
	char		*cf_relayhost_tls; /* none|may|encrypt|verify|dane */
	char		*cf_relayhost_tls_ca_file; /* "" = the system's store */
	char		*cf_tls_ca_file; /* MX delivery's CAs; "" = system's */
	char *cf_dnssec; /* off|trust-ad|validate (issue 17 item 3: DANE) */
	char *cf_dnssec_trust_anchor; /* validate: libunbound's anchor file */
	/* storage: the map's ceiling, the free-space watermark (issue 13) */
	int64_t cf_lmdb_map_max;
	int64_t cf_min_free_space; /* 0: 1.5 x max_message_size */
	time_t	cf_callback_max_age;
	/* retention (spoold runs the pruning) */
	time_t cf_delivery_log_retention;
	time_t cf_issue_retention;
	time_t cf_suppression_ttl;
	time_t cf_prune_interval;
	/* issue 14 finding 5: the workers' only group (incoming/), the
	 * injector's (maildrop/) */
	char *cf_smtpd_group;
	char *cf_maildrop_group;
	/* source addresses (issue 15 item 6; common/srcaddr.h) */
	char		*cf_source_address; /* "" = the kernel's choice */
	struct conf_list cf_source_pool;    /* "NAME ADDR [HELO-NAME]" lines */
	/* bounce classification rules (issue 15) */
	char *cf_bounce_rules_file;
	/* an NXDOMAIN suppresses once the domain was NXDOMAIN this long
	 * (deliverd_nxdom.c); 0: at the first one */
	time_t cf_nxdomain_confirm;
	/* the tracking server (issue 16): "ADDR:PORT tls=none|implicit" */
	char		*cf_track_listen;
	char		*cf_trackd_user;
	struct conf_list cf_track_trusted_proxy; /* CIDRs: X-Forwarded-For */
	char		*cf_trackd_http_user;	 /* trackd's HTTP process */
	/* feedback-loop reports (issue 16 item 5): smtpd accepts mail to these
	 * from any client, spoold parses it instead of delivering it */
	struct conf_list cf_complaints_address;
	/* idempotent submission (issue 18 item 3): X-Letter-Id window, 0 off */
	time_t cf_dedupe_window;
	/* simulator addresses (issue 18 item 4): "" = off */
	char *cf_simulator_domain;
	/* the Prometheus endpoint (issue 18 item 5): "ADDR:PORT"; "" = off */
	char *cf_metrics_listen;
	/* where each key was last set: conf_keys index -> line, 0 = default */
	unsigned *cf_key_lines;
	/* MTA-STS (issue 17 item 2; deliverd/deliverd_mtasts.c) */
	bool   cf_mta_sts;	   /* look up and apply MX domains' policies */
	char  *cf_mta_sts_ca_file; /* "" = the system's store */
	time_t cf_mta_sts_timeout; /* one policy fetch, all included */
	/* cluster mode (issue 19; clusterd/) */
	char  *cf_cluster_dsn;	/* libpq conninfo; "" = single node */
	char  *cf_cluster_node; /* unique node name */
	time_t cf_cluster_event_retention; /* PostgreSQL event partitions */
	time_t cf_cluster_resync_interval; /* full policy resync */
	char  *cf_cluster_secret_file;	   /* key sealing smtpgate.policy; "" */
	char  *cf_cluster_secret_file_accept; /* a rotation's other key; "" */
	time_t cf_cluster_node_retention;     /* rows of nodes not seen */
	/* TLS reports sent (spoolctl tls-report --send, RFC 8460 5) */
	char *cf_tls_report_org;     /* organization-name; "" = hostname */
	char *cf_tls_report_contact; /* contact-info; "" = postmaster@host */
	char *cf_tls_report_from;    /* mailto: reports' sender; "" = none */
	char *cf_tls_report_ca_file; /* https: CA file; "" = system store */
	/* h-astate: issues (X-Campaign-Id) per account and day */
	int64_t cf_max_issues_per_day;
	/* outside-driven fetches (MTA-STS, TLS-RPT rua) may reach these
	 * private or loopback ranges (common/fetchguard.h) */
	struct conf_list cf_allow_fetch_to;
	/* Feedback-ID SenderId ([A-Za-z0-9._-], 64 bytes); "" = no field */
	char *cf_feedback_id_sender;
};

struct conf *conf_load(const char *path, char *err, size_t errsz);
/* Default values only (no file). */
struct conf *conf_defaults(char *err, size_t errsz);
void	     conf_free(struct conf **);
/* In a process that never connects to PostgreSQL (a network-facing
 * child): cluster_dsn's credentials wiped, the key still set. */
void conf_forget_secrets(struct conf *);
/*
 * The standard front end for every program: parses "-c FILE" out of argv
 * (other options are left to the caller), loads it, and on error prints
 * the message and exits with status 2 (CONTRACT).
 */
struct conf *conf_load_or_exit(const char *path);
const char  *conf_default_path(void);
/*
 * "FILE:LINE: KEY" (or "FILE: KEY" when the key has its default) for error
 * messages about a value found invalid after loading (unreadable key file,
 * port in use); buf is returned.
 */
const char *conf_where(const struct conf *, const char *key, char *buf,
    size_t bufsz);
/* The same for one listen line. */
const char *conf_where_listen(const struct conf *, const struct conf_listen *,
    char *buf, size_t bufsz);

/* Parsers used by the loader, exported for tests and other callers. */
int conf_parse_duration(const char *,
    time_t *r);				       /* "30s" "5m" "4h" "5d" "90" */
int conf_parse_size(const char *, int64_t *r); /* "52428800" "50m" "1g" "64k" */
int conf_parse_bool(const char *, bool *r);
/* Host-name syntax: LDH labels of 1 to 63 characters, 253 in all. */
bool conf_hostname_ok(const char *);
/* A host name, or one with ":PORT" (1-65535, no leading zero). */
bool conf_hostport_ok(const char *);
/* tmpl with every "{node}" replaced by node into dst; -1 if it does not
 * fit or the result is not conf_hostport_ok (a tracking host: issues 16
 * and 19). */
int conf_node_host(const char *tmpl, const char *node, char *dst, size_t dstsz);
int conf_parse_listen(const char *, struct conf_listen *r, char *err,
    size_t errsz);
/* "host:port", "[host]:port", "host" (port = defport). 0 or -1. */
int conf_split_hostport(const char *, char *host, size_t hostsz, char *port,
    size_t portsz, const char *defport);

#endif
