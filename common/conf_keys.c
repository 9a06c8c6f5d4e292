#include "config.h"

#include <stddef.h>

#include "conf.h"
#include "conf_keys.h"

#define O(m)	offsetof(struct conf, m)
#define DAY	(24 * 3600)

/*
 * Every key every program knows. "@HOSTNAME@" and "@SPOOL@" in a default
 * are replaced at load time by the system host name and spool_dir.
 */
const struct conf_key conf_keys[] = {
	{ "hostname", CONF_T_STR, "@HOSTNAME@", 0, 0, O(cf_hostname), NULL },
	{ "spool_dir", CONF_T_STR, LOCALSTATEDIR "/spool/smtpgate", 0, 0, O(cf_spool_dir), NULL },
	{ "listen", CONF_T_LISTEN,
	    "0.0.0.0:25 tls=starttls\n0.0.0.0:587 tls=required\n0.0.0.0:465 tls=implicit",
	    0, 0, 0, NULL },
	{ "tls_cert", CONF_T_STR, "", 0, 0, O(cf_tls_cert), NULL },
	{ "tls_key", CONF_T_STR, "", 0, 0, O(cf_tls_key), NULL },
	{ "smtpd_user", CONF_T_STR, "smtpgate-smtpd", 0, 0, O(cf_smtpd_user), NULL },
	{ "spoold_user", CONF_T_STR, "smtpgate", 0, 0, O(cf_spoold_user), NULL },
	{ "deliverd_user", CONF_T_STR, "smtpgate", 0, 0, O(cf_deliverd_user), NULL },
	{ "smtpgate_group", CONF_T_STR, "smtpgate", 0, 0, O(cf_group), NULL },
	{ "smtpd_workers", CONF_T_INT, "8", 1, 512, O(cf_smtpd_workers), NULL },
	{ "deliverd_workers", CONF_T_INT, "8", 1, 512, O(cf_deliverd_workers), NULL },
	{ "max_message_size", CONF_T_SIZE, "52428800", 1024, INT64_C(4) << 30, O(cf_max_message_size), NULL },
	{ "max_recipients", CONF_T_INT, "1000", 1, 100000, O(cf_max_recipients), NULL },
	{ "relayhost", CONF_T_STR, "", 0, 0, O(cf_relayhost), NULL },
	{ "remote_port", CONF_T_INT, "25", 1, 65535, O(cf_remote_port), NULL },
	{ "dns_server", CONF_T_STR, "", 0, 0, O(cf_dns_server), NULL },
	{ "retry_schedule", CONF_T_LIST, "1m 5m 15m 30m 1h 2h 4h", 0, 0, O(cf_retry_schedule), NULL },
	{ "max_queue_lifetime", CONF_T_DURATION, "5d", 0, 365 * DAY, O(cf_max_queue_lifetime), NULL },
	{ "blackhole_recipients", CONF_T_LIST, "test@test.ru", 0, 0, O(cf_blackhole_recipients), NULL },
	{ "event_log", CONF_T_STR, "@SPOOL@/events.jsonl", 0, 0, O(cf_event_log), NULL },
	{ "auth_plaintext", CONF_T_BOOL, "no", 0, 0, O(cf_auth_plaintext), NULL },
	{ "sendmail_account", CONF_T_STR, "", 0, 0, O(cf_sendmail_account), NULL },
	{ "log", CONF_T_ENUM, "stderr", 0, 0, O(cf_log), "stderr|syslog" },
	{ "lmdb_map_size", CONF_T_SIZE, "1g", INT64_C(1) << 20, INT64_C(1) << 40, O(cf_lmdb_map_size), NULL },

	{ "smtpd_max_use", CONF_T_INT, "10000", 1, INT64_C(1) << 40, O(cf_smtpd_max_use), NULL },
	{ "smtpd_max_sessions", CONF_T_INT, "100", 1, 100000, O(cf_smtpd_max_sessions), NULL },
	{ "smtpd_max_sessions_per_ip", CONF_T_INT, "0", 0, 100000, O(cf_smtpd_max_sessions_per_ip), NULL },
	{ "smtpd_timeout", CONF_T_DURATION, "300s", 1, DAY, O(cf_smtpd_timeout), NULL },
	{ "smtpd_data_timeout", CONF_T_DURATION, "300s", 1, DAY, O(cf_smtpd_data_timeout), NULL },
	{ "smtpd_max_errors", CONF_T_INT, "10", 1, 1000, O(cf_smtpd_max_errors), NULL },
	{ "smtpd_max_line", CONF_T_INT, "1000", 80, 65536, O(cf_smtpd_max_line), NULL },
	{ "smtpd_auth_max_failures", CONF_T_INT, "3", 1, 100, O(cf_smtpd_auth_max_failures), NULL },
	/* smtpd limits across workers (issue 14); the first is the Postfix-like
	 * name of smtpd_max_sessions_per_ip (same value; a later line wins) */
	{ "smtpd_client_connection_limit", CONF_T_INT, "0", 0, 100000, O(cf_smtpd_max_sessions_per_ip), NULL },
	{ "smtpd_session_timeout", CONF_T_DURATION, "10m", 1, DAY, O(cf_smtpd_session_timeout), NULL },
	{ "smtpd_junk_command_limit", CONF_T_INT, "100", 1, 1000000, O(cf_smtpd_junk_command_limit), NULL },
	{ "smtpd_stress_threshold", CONF_T_INT, "80", 1, 100, O(cf_smtpd_stress_threshold), NULL },
	{ "smtpd_stress_timeout", CONF_T_DURATION, "10s", 1, DAY, O(cf_smtpd_stress_timeout), NULL },
	{ "smtpd_client_ipv6_prefix_length", CONF_T_INT, "84", 16, 128, O(cf_smtpd_client_ipv6_prefix_length), NULL },

	{ "spoold_rescan_interval", CONF_T_DURATION, "10s", 1, 3600, O(cf_spoold_rescan_interval), NULL },
	{ "spoold_batch", CONF_T_INT, "256", 1, 100000, O(cf_spoold_batch), NULL },
	{ "max_header_size", CONF_T_SIZE, "1m", 1024, INT64_C(64) << 20, O(cf_max_header_size), NULL },
	{ "stale_tmp_age", CONF_T_DURATION, "1h", 1, 30 * DAY, O(cf_stale_tmp_age), NULL },

	{ "connect_timeout", CONF_T_DURATION, "30s", 1, 3600, O(cf_connect_timeout), NULL },
	{ "command_timeout", CONF_T_DURATION, "300s", 1, 3600, O(cf_command_timeout), NULL },
	{ "data_timeout", CONF_T_DURATION, "600s", 1, 3600, O(cf_data_timeout), NULL },
	{ "dest_concurrency", CONF_T_INT, "20", 1, 10000, O(cf_dest_concurrency), NULL },
	{ "max_msgs_per_connection", CONF_T_INT, "100", 1, 100000, O(cf_max_msgs_per_connection), NULL },
	{ "callback_batch_max", CONF_T_INT, "100", 1, 100000, O(cf_callback_batch_max), NULL },
	{ "callback_batch_wait", CONF_T_DURATION, "1s", 0, 3600, O(cf_callback_batch_wait), NULL },
	{ "callback_timeout", CONF_T_DURATION, "10s", 1, 3600, O(cf_callback_timeout), NULL },
	{ "callback_retry_min", CONF_T_DURATION, "5s", 1, 3600, O(cf_callback_retry_min), NULL },
	{ "callback_retry_max", CONF_T_DURATION, "10m", 1, DAY, O(cf_callback_retry_max), NULL },

	/* mail loops and the relayhost's TLS (issue 14) */
	{ "hopcount_limit", CONF_T_INT, "50", 1, 1000, O(cf_hopcount_limit), NULL },
	{ "allow_next_hop", CONF_T_LIST, "", 0, 0, O(cf_allow_next_hop), NULL },
	{ "relayhost_tls", CONF_T_ENUM, "may", 0, 0, O(cf_relayhost_tls), "none|may|encrypt|verify" },
	{ "relayhost_tls_ca_file", CONF_T_STR, "", 0, 0, O(cf_relayhost_tls_ca_file), NULL },
	/* storage (issue 13): lmdb_map_size above is the initial map */
	{ "lmdb_map_max", CONF_T_SIZE, "16g", INT64_C(1) << 20, INT64_C(1) << 40, O(cf_lmdb_map_max), NULL },
	{ "min_free_space", CONF_T_SIZE, "0", 0, INT64_C(1) << 50, O(cf_min_free_space), NULL },
	/* callback outbox retention (issue 13) */
	{ "callback_max_age", CONF_T_DURATION, "7d", 1, 365 * DAY, O(cf_callback_max_age), NULL },
	/* retention (spoold prunes; spool_prune) */
	{ "delivery_log_retention", CONF_T_DURATION, "30d", 3600, 3650 * DAY, O(cf_delivery_log_retention), NULL },
	{ "issue_retention", CONF_T_DURATION, "400d", DAY, 3650 * DAY, O(cf_issue_retention), NULL },
	{ "suppression_ttl", CONF_T_DURATION, "365d", DAY, 3650 * DAY, O(cf_suppression_ttl), NULL },
	{ "prune_interval", CONF_T_DURATION, "1h", 1, DAY, O(cf_prune_interval), NULL },
	/* issue 14 finding 5 */
	{ "smtpd_group", CONF_T_STR, "smtpgate-smtpd", 0, 0, O(cf_smtpd_group), NULL },
	{ "maildrop_group", CONF_T_STR, "smtpgate-maildrop", 0, 0, O(cf_maildrop_group), NULL },
};

const size_t conf_nkeys = sizeof(conf_keys) / sizeof(conf_keys[0]);
