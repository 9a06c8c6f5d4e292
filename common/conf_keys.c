#include "config.h"

#include <stddef.h>

#include "conf.h"
#include "conf_keys.h"

/*
 * offsetof(struct conf, m), and a compile-time error unless the member m
 * has the C type T that conf_set() writes for the key's CONF_T_* (Postfix's
 * CONFIG_INT_TABLE binds &var instead; an offset needs this check).
 */
/* clang-format off */
#define CONF_OFF(m, T)	(offsetof(struct conf, m) + 0 * sizeof(struct {	\
	_Static_assert(_Generic(((struct conf *)0)->m, T: 1, default: 0),	\
	    "struct conf member " #m " is not " #T);			\
	int	ok;							\
}))

/* One macro per value type: name, default[, min, max | choices], member,
 * owner (the programs that read the value, CONF_SMTPD | ...). */
#define CF_STR(n, d, m, own)	\
	{ n, CONF_T_STR, d, 0, 0, CONF_OFF(m, char *), NULL, own }
#define CF_ENUM(n, d, ch, m, own)	\
	{ n, CONF_T_ENUM, d, 0, 0, CONF_OFF(m, char *), ch, own }
#define CF_INT(n, d, lo, hi, m, own)	\
	{ n, CONF_T_INT, d, lo, hi, CONF_OFF(m, int64_t), NULL, own }
#define CF_SIZE(n, d, lo, hi, m, own)	\
	{ n, CONF_T_SIZE, d, lo, hi, CONF_OFF(m, int64_t), NULL, own }
#define CF_DUR(n, d, lo, hi, m, own)	\
	{ n, CONF_T_DURATION, d, lo, hi, CONF_OFF(m, time_t), NULL, own }
#define CF_BOOL(n, d, m, own)	\
	{ n, CONF_T_BOOL, d, 0, 0, CONF_OFF(m, bool), NULL, own }
#define CF_LIST(n, d, m, own)	\
	{ n, CONF_T_LIST, d, 0, 0, CONF_OFF(m, struct conf_list), NULL, own }
#define CF_LINES(n, d, m, own)	\
	{ n, CONF_T_LINES, d, 0, 0, CONF_OFF(m, struct conf_list), NULL, own }
/* listen lines go to cf_listen/cf_nlisten, not to one member */
#define CF_LISTEN(n, d, own)	\
	{ n, CONF_T_LISTEN, d, 0, 0, 0, NULL, own }
/* clang-format on */

#define DAY (24 * 3600)

/*
 * Every key every program knows. "@HOSTNAME@" and "@SPOOL@" in a default
 * are replaced at load time by the system host name and spool_dir.
 */
const struct conf_key conf_keys[] = {
	CF_STR("hostname", "@HOSTNAME@", cf_hostname,
	    CONF_SMTPD | CONF_SENDMAIL | CONF_DELIVERD | CONF_SPOOLCTL),
	CF_STR("spool_dir", LOCALSTATEDIR "/spool/smtpgate", cf_spool_dir,
	    CONF_SPOOL),
	CF_LISTEN("listen",
	    "0.0.0.0:25 tls=starttls\n0.0.0.0:587 tls=required\n0.0.0.0:465 "
	    "tls=implicit",
	    CONF_SMTPD),
	CF_STR("tls_cert", "", cf_tls_cert, CONF_SMTPD | CONF_TRACKD),
	CF_STR("tls_key", "", cf_tls_key, CONF_SMTPD | CONF_TRACKD),
	CF_STR("smtpd_user", "smtpgate-smtpd", cf_smtpd_user,
	    CONF_SMTPD | CONF_SENDMAIL | CONF_SPOOLD),
	CF_STR("spoold_user", "smtpgate", cf_spoold_user, CONF_SPOOL),
	CF_STR("deliverd_user", "smtpgate", cf_deliverd_user, CONF_SPOOL),
	CF_STR("smtpgate_group", "smtpgate", cf_group, CONF_SPOOL),
	CF_INT("smtpd_workers", "0", 0, 512, cf_smtpd_workers, CONF_SMTPD),
	CF_INT("deliverd_workers", "8", 1, 512, cf_deliverd_workers,
	    CONF_DELIVERD),
	CF_SIZE("max_message_size", "52428800", 1024, INT64_C(4) << 30,
	    cf_max_message_size, CONF_SPOOL),
	CF_INT("max_recipients", "1000", 1, 100000, cf_max_recipients,
	    CONF_SMTPD | CONF_SENDMAIL | CONF_SPOOLD),
	CF_STR("relayhost", "", cf_relayhost, CONF_DELIVERD),
	CF_INT("remote_port", "25", 1, 65535, cf_remote_port, CONF_DELIVERD),
	CF_STR("dns_server", "", cf_dns_server, CONF_DELIVERD | CONF_SPOOLCTL),
	CF_LIST("retry_schedule", "1m 5m 15m 30m 1h 2h 4h", cf_retry_schedule,
	    CONF_DELIVERD),
	CF_DUR("max_queue_lifetime", "5d", 0, 365 * DAY, cf_max_queue_lifetime,
	    CONF_DELIVERD),
	CF_LIST("blackhole_recipients", "test@test.ru", cf_blackhole_recipients,
	    CONF_SMTPD | CONF_SPOOLD),
	CF_STR("event_log", "@SPOOL@/events.jsonl", cf_event_log, CONF_SPOOL),
	CF_BOOL("auth_plaintext", "no", cf_auth_plaintext, CONF_SMTPD),
	CF_STR("sendmail_account", "", cf_sendmail_account,
	    CONF_SENDMAIL | CONF_SPOOLD | CONF_SPOOLCTL),
	CF_ENUM("log", "stderr", "stderr|syslog", cf_log,
	    CONF_SMTPD | CONF_SPOOLD | CONF_DELIVERD | CONF_SPOOLCTL),
	CF_SIZE("lmdb_map_size", "1g", INT64_C(1) << 20, INT64_C(1) << 40,
	    cf_lmdb_map_size,
	    CONF_SMTPD | CONF_SENDMAIL | CONF_SPOOLD | CONF_DELIVERD |
		CONF_SPOOLCTL),

	CF_INT("smtpd_max_use", "10000", 1, INT64_C(1) << 40, cf_smtpd_max_use,
	    CONF_SMTPD),
	CF_INT("smtpd_max_sessions", "100", 1, 100000, cf_smtpd_max_sessions,
	    CONF_SMTPD),
	CF_INT("smtpd_max_sessions_per_ip", "0", 0, 100000,
	    cf_smtpd_max_sessions_per_ip, CONF_SMTPD),
	CF_DUR("smtpd_timeout", "300s", 1, DAY, cf_smtpd_timeout, CONF_SMTPD),
	CF_DUR("smtpd_data_timeout", "300s", 1, DAY, cf_smtpd_data_timeout,
	    CONF_SMTPD),
	CF_INT("smtpd_max_errors", "10", 1, 1000, cf_smtpd_max_errors,
	    CONF_SMTPD),
	CF_INT("smtpd_max_line", "1000", 80, 65536, cf_smtpd_max_line,
	    CONF_SMTPD),
	CF_INT("smtpd_auth_max_failures", "3", 1, 100,
	    cf_smtpd_auth_max_failures, CONF_SMTPD),
	/* smtpd limits across workers (issue 14); the first is the Postfix-like
	 * name of smtpd_max_sessions_per_ip (same value; a later line wins) */
	CF_INT("smtpd_client_connection_limit", "0", 0, 100000,
	    cf_smtpd_max_sessions_per_ip, CONF_SMTPD),
	CF_DUR("smtpd_session_timeout", "10m", 1, DAY, cf_smtpd_session_timeout,
	    CONF_SMTPD),
	CF_INT("smtpd_junk_command_limit", "100", 1, 1000000,
	    cf_smtpd_junk_command_limit, CONF_SMTPD),
	CF_INT("smtpd_stress_threshold", "80", 1, 100,
	    cf_smtpd_stress_threshold, CONF_SMTPD),
	CF_DUR("smtpd_stress_timeout", "10s", 1, DAY, cf_smtpd_stress_timeout,
	    CONF_SMTPD),
	CF_INT("smtpd_client_ipv6_prefix_length", "84", 16, 128,
	    cf_smtpd_client_ipv6_prefix_length, CONF_SMTPD),

	CF_DUR("spoold_rescan_interval", "10s", 1, 3600,
	    cf_spoold_rescan_interval, CONF_SPOOLD),
	CF_INT("spoold_batch", "256", 1, 100000, cf_spoold_batch, CONF_SPOOLD),
	CF_SIZE("max_header_size", "1m", 1024, INT64_C(64) << 20,
	    cf_max_header_size, CONF_SENDMAIL | CONF_SPOOLD | CONF_DELIVERD),
	CF_DUR("stale_tmp_age", "1h", 1, 30 * DAY, cf_stale_tmp_age,
	    CONF_SPOOLD),

	CF_DUR("connect_timeout", "30s", 1, 3600, cf_connect_timeout,
	    CONF_DELIVERD),
	CF_DUR("command_timeout", "300s", 1, 3600, cf_command_timeout,
	    CONF_DELIVERD),
	CF_DUR("data_timeout", "600s", 1, 3600, cf_data_timeout, CONF_DELIVERD),
	CF_INT("dest_concurrency", "20", 1, 10000, cf_dest_concurrency,
	    CONF_DELIVERD),
	CF_INT("max_msgs_per_connection", "100", 1, 100000,
	    cf_max_msgs_per_connection, CONF_DELIVERD),
	/* h-resolv: the resolver-down rule (bound: DEST_DNS_DOWN_MAX) and
	 * the MX limits of one delivery (bound: WORKER_CAND_MAX) */
	CF_INT("dns_down_domains", "8", 0, 64, cf_dns_down_domains,
	    CONF_DELIVERD),
	CF_DUR("dns_down_window", "60s", 1, 3600, cf_dns_down_window,
	    CONF_DELIVERD),
	CF_INT("mx_address_limit", "5", 1, 32, cf_mx_address_limit,
	    CONF_DELIVERD),
	CF_INT("mx_session_limit", "2", 1, 32, cf_mx_session_limit,
	    CONF_DELIVERD),
	/* per-destination traffic shaping (issue 15 items 3, 4); "" = the
	 * built-in defaults (deliverd(8) "TRAFFIC SHAPING") */
	CF_STR("shaping_file", "", cf_shaping_file,
	    CONF_DELIVERD | CONF_SPOOLCTL),
	CF_INT("callback_batch_max", "100", 1, 100000, cf_callback_batch_max,
	    CONF_DELIVERD),
	CF_DUR("callback_batch_wait", "1s", 0, 3600, cf_callback_batch_wait,
	    CONF_DELIVERD),
	CF_DUR("callback_timeout", "10s", 1, 3600, cf_callback_timeout,
	    CONF_DELIVERD),
	CF_DUR("callback_retry_min", "5s", 1, 3600, cf_callback_retry_min,
	    CONF_DELIVERD),
	CF_DUR("callback_retry_max", "10m", 1, DAY, cf_callback_retry_max,
	    CONF_DELIVERD),

	/* mail loops and the relayhost's TLS (issue 14) */
	CF_INT("hopcount_limit", "50", 1, 1000, cf_hopcount_limit, CONF_SPOOLD),
	CF_LIST("allow_next_hop", "", cf_allow_next_hop, CONF_DELIVERD),
	CF_ENUM("relayhost_tls", "may", "none|may|encrypt|verify|dane",
	    cf_relayhost_tls, CONF_DELIVERD),
	CF_STR("relayhost_tls_ca_file", "", cf_relayhost_tls_ca_file,
	    CONF_DELIVERD),
	/* outbound TLS levels (issue 17): MX delivery's CA file */
	CF_STR("tls_ca_file", "", cf_tls_ca_file, CONF_DELIVERD),
	/* DANE (issue 17 item 3): "validate" needs a libunbound build */
	CF_ENUM("dnssec", "off", "off|trust-ad|validate", cf_dnssec,
	    CONF_DELIVERD),
	CF_STR("dnssec_trust_anchor", "/usr/share/dns/root.key",
	    cf_dnssec_trust_anchor, CONF_DELIVERD),
	/* storage (issue 13): lmdb_map_size above is the initial map */
	CF_SIZE("lmdb_map_max", "16g", INT64_C(1) << 20, INT64_C(1) << 40,
	    cf_lmdb_map_max,
	    CONF_SMTPD | CONF_SENDMAIL | CONF_SPOOLD | CONF_DELIVERD |
		CONF_SPOOLCTL),
	CF_SIZE("min_free_space", "0", 0, INT64_C(1) << 50, cf_min_free_space,
	    CONF_SPOOL),
	/* callback outbox retention (issue 13) */
	CF_DUR("callback_max_age", "7d", 1, 365 * DAY, cf_callback_max_age,
	    CONF_DELIVERD),
	/* retention (spoold prunes; spool_prune) */
	CF_DUR("delivery_log_retention", "30d", 3600, 3650 * DAY,
	    cf_delivery_log_retention, CONF_SPOOLD),
	CF_DUR("issue_retention", "400d", DAY, 3650 * DAY, cf_issue_retention,
	    CONF_SPOOLD | CONF_CLUSTERD),
	CF_DUR("suppression_ttl", "365d", DAY, 3650 * DAY, cf_suppression_ttl,
	    CONF_SPOOLD),
	CF_DUR("prune_interval", "1h", 1, DAY, cf_prune_interval, CONF_SPOOLD),
	/* issue 14 finding 5 */
	CF_STR("smtpd_group", "smtpgate-smtpd", cf_smtpd_group, CONF_SPOOL),
	CF_STR("maildrop_group", "smtpgate-maildrop", cf_maildrop_group,
	    CONF_SPOOL),
	/* source addresses (issue 15 item 6): "ADDR [HELO-NAME]" or a pool
	 * name; pools are "NAME ADDR [HELO-NAME]" lines (common/srcaddr.h) */
	CF_STR("source_address", "", cf_source_address,
	    CONF_DELIVERD | CONF_SPOOLCTL),
	CF_LINES("source_pool", "", cf_source_pool,
	    CONF_DELIVERD | CONF_SPOOLCTL),
	/* bounce classification (issue 15) */
	CF_STR("bounce_rules_file", SYSCONFDIR "/smtpgate/bounce-rules",
	    cf_bounce_rules_file, CONF_DELIVERD),
	/* suppression on NXDOMAIN needs it for this long (deliverd_nxdom.c) */
	CF_DUR("nxdomain_confirm", "24h", 0, 30 * DAY, cf_nxdomain_confirm,
	    CONF_DELIVERD),
	/* the tracking server (issue 16, trackd/) */
	CF_STR("track_listen", "127.0.0.1:8080 tls=none", cf_track_listen,
	    CONF_TRACKD),
	CF_STR("trackd_user", "smtpgate", cf_trackd_user, CONF_TRACKD),
	CF_LIST("track_trusted_proxy", "", cf_track_trusted_proxy, CONF_TRACKD),
	/* feedback-loop (ARF) reports (issue 16 item 5) */
	CF_LIST("complaints_address", "", cf_complaints_address,
	    CONF_SMTPD | CONF_SPOOLD),
	/* idempotent submission (issue 18 item 3): 0 disables */
	CF_DUR("dedupe_window", "24h", 0, 365 * DAY, cf_dedupe_window,
	    CONF_SPOOLD),
	/* simulator addresses (issue 18 item 4; deliverd/deliverd_sim.c);
	 * "" turns the simulator off */
	CF_STR("simulator_domain", "simulator.smtpgate.invalid",
	    cf_simulator_domain, CONF_DELIVERD),
	/* the Prometheus endpoint (issue 18 item 5): spoold's metrics child */
	CF_STR("metrics_listen", "", cf_metrics_listen, CONF_SPOOLD),
	/* MTA-STS (issue 17 item 2): deliverd/deliverd_mtasts.c */
	CF_BOOL("mta_sts", "off", cf_mta_sts, CONF_DELIVERD),
	CF_STR("mta_sts_ca_file", "", cf_mta_sts_ca_file, CONF_DELIVERD),
	CF_DUR("mta_sts_timeout", "10s", 1, 60, cf_mta_sts_timeout,
	    CONF_DELIVERD),
	/* cluster mode (issue 19; clusterd/): "" = a single node. Every
	 * program that writes policy journals it when cluster_dsn is set */
	CF_STR("cluster_dsn", "", cf_cluster_dsn, CONF_SPOOL),
	CF_STR("cluster_node", "@HOSTNAME@", cf_cluster_node,
	    CONF_CLUSTERD | CONF_SPOOLCTL | CONF_SPOOLD),
	CF_DUR("cluster_event_retention", "90d", DAY, 3650 * DAY,
	    cf_cluster_event_retention, CONF_CLUSTERD),
	CF_DUR("cluster_resync_interval", "1h", 60, 30 * DAY,
	    cf_cluster_resync_interval, CONF_CLUSTERD),
	/* policy rows sealed in PostgreSQL (clusterd/cluster_seal.c) */
	CF_STR("cluster_secret_file", "", cf_cluster_secret_file,
	    CONF_CLUSTERD | CONF_SPOOLCTL),
	CF_STR("cluster_secret_file_accept", "", cf_cluster_secret_file_accept,
	    CONF_CLUSTERD | CONF_SPOOLCTL),
	/* rows of removed nodes (clusterd/cluster_node.c) */
	CF_DUR("cluster_node_retention", "7d", DAY, 3650 * DAY,
	    cf_cluster_node_retention, CONF_CLUSTERD),
	/* TLS reports sent (spoolctl tls-report --send, RFC 8460 5) */
	CF_STR("tls_report_org", "", cf_tls_report_org, CONF_SPOOLCTL),
	CF_STR("tls_report_contact", "", cf_tls_report_contact, CONF_SPOOLCTL),
	CF_STR("tls_report_from", "", cf_tls_report_from, CONF_SPOOLCTL),
	CF_STR("tls_report_ca_file", "", cf_tls_report_ca_file, CONF_SPOOLCTL),
	/* trackd's HTTP process: no database, no key (issue 16, issue 14's
	 * split for trackd) */
	CF_STR("trackd_http_user", "smtpgate-trackd", cf_trackd_http_user,
	    CONF_TRACKD),
	/* h-astate: distinct X-Campaign-Id issues per account and day; more
	 * go to the day's issue without a campaign (spoold_file.c) */
	CF_INT("max_issues_per_day", "1000", 1, 10000000, cf_max_issues_per_day,
	    CONF_SPOOLD),
	/* fetches that outside data drives (MTA-STS, TLS-RPT rua): ranges
	 * they may reach although private or loopback (common/fetchguard.h) */
	CF_LIST("allow_fetch_to", "", cf_allow_fetch_to,
	    CONF_DELIVERD | CONF_SPOOLCTL),
	/* Gmail's Feedback Loop: the SenderId of the Feedback-ID field that
	 * deliverd adds before signing; "" adds none (deliverd_fbid.h) */
	CF_STR("feedback_id_sender", "", cf_feedback_id_sender, CONF_DELIVERD),
};

const size_t conf_nkeys = sizeof(conf_keys) / sizeof(conf_keys[0]);
