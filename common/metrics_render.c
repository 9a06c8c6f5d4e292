/*
 * metrics_render: the Prometheus text exposition format 0.0.4 of a
 * counter snapshot and the scrape-time gauges (README "Metrics" lists
 * every name). Pure: a snapshot in, text out.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"

#define METRICS_LINE_MAX 4096

static const char *const metrics_outcome_names[METRICS_NOUTCOMES] = {
	"delivered", "deferred", "bounced"
};

static void
metrics_head(struct buf *b, const char *name, const char *type,
    const char *help)
{
	(void)buf_printf(b, "# HELP smtpgate_%s %s\n# TYPE smtpgate_%s %s\n",
	    name, help, name, type);
}

/* A label value: \, " and newline escaped (destinations come from mail). */
static void
metrics_label(struct buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			(void)buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			(void)buf_append(b, "\\n", 2);
		else
			(void)buf_append(b, v, 1);
	}
}

static void
metrics_smtpd(struct buf *b, const struct metrics_block *m)
{
	size_t i;

	metrics_head(b, "smtpd_sessions_total", "counter",
	    "SMTP sessions: accepted (greeted) or refused at connect.");
	(void)buf_printf(b,
	    "smtpgate_smtpd_sessions_total{result=\"accepted\"} %" PRIu64 "\n"
	    "smtpgate_smtpd_sessions_total{result=\"refused\"} %" PRIu64 "\n",
	    m->mb_smtpd_sessions[0], m->mb_smtpd_sessions[1]);
	metrics_head(b, "smtpd_sessions_tls_total", "counter",
	    "SMTP sessions that completed a TLS handshake (STARTTLS or "
	    "implicit).");
	(void)buf_printf(b, "smtpgate_smtpd_sessions_tls_total %" PRIu64 "\n",
	    m->mb_smtpd_sessions_tls);
	metrics_head(b, "smtpd_messages_total", "counter",
	    "Messages at end of data: accepted (250 queued as) or refused.");
	(void)buf_printf(b,
	    "smtpgate_smtpd_messages_total{result=\"accepted\"} %" PRIu64 "\n"
	    "smtpgate_smtpd_messages_total{result=\"refused\"} %" PRIu64 "\n",
	    m->mb_smtpd_messages[0], m->mb_smtpd_messages[1]);
	metrics_head(b, "smtpd_replies_total", "counter",
	    "SMTP replies sent, by code (common codes; others as "
	    "code=\"other\") and class.");
	for (i = 0; i < METRICS_NREPLY; i++)
		(void)buf_printf(b,
		    "smtpgate_smtpd_replies_total{code=\"%s\",class=\"%s\"} "
		    "%" PRIu64 "\n",
		    metrics_reply_code(i), metrics_reply_class(i),
		    m->mb_smtpd_replies[i]);
}

static void
metrics_spoold(struct buf *b, const struct metrics_block *m)
{
	size_t i;

	metrics_head(b, "spoold_filed_total", "counter",
	    "Messages filed into the queue.");
	(void)buf_printf(b, "smtpgate_spoold_filed_total %" PRIu64 "\n",
	    m->mb_spoold_filed);
	metrics_head(b, "spoold_quarantined_total", "counter",
	    "Files moved to quarantine/ (unreadable or not ours).");
	(void)buf_printf(b, "smtpgate_spoold_quarantined_total %" PRIu64 "\n",
	    m->mb_spoold_quarantined);
	metrics_head(b, "spoold_policy_refused_total", "counter",
	    "Recipients refused by policy after acceptance, by reason.");
	for (i = 0; i < METRICS_NREASONS; i++)
		(void)buf_printf(b,
		    "smtpgate_spoold_policy_refused_total{reason=\"%s\"} "
		    "%" PRIu64 "\n",
		    metrics_reason_name((enum metrics_reason)i),
		    m->mb_spoold_refused[i]);
}

static void
metrics_deliverd(struct buf *b, const struct metrics_block *m)
{
	const char *cat;
	size_t	    o, c;

	metrics_head(b, "deliverd_outcomes_total", "counter",
	    "Delivery attempts committed, by outcome and bounce category.");
	for (o = 0; o < METRICS_NOUTCOMES; o++)
		for (c = 0; c < BOUNCE_CAT_COUNT; c++) {
			if (c == BOUNCE_NONE && o != METRICS_O_DELIVERED)
				continue;
			cat = c == BOUNCE_NONE
			    ? "none"
			    : bounce_cat_name((enum bounce_cat)c);
			(void)buf_printf(b,
			    "smtpgate_deliverd_outcomes_total{outcome=\"%s\","
			    "category=\"%s\"} %" PRIu64 "\n",
			    metrics_outcome_names[o], cat,
			    m->mb_deliverd_outcomes[o][c]);
		}
	metrics_head(b, "deliverd_destination_outcomes_total", "counter",
	    "Delivery attempts by recipient domain (the first 32 seen; the "
	    "rest \"other\").");
	for (c = 0; c < METRICS_DESTS; c++) {
		if (m->mb_dest[c].md_state != 2 ||
		    memchr(m->mb_dest[c].md_name, '\0', METRICS_DEST_MAX) ==
			NULL)
			continue;
		for (o = 0; o < METRICS_NOUTCOMES; o++) {
			(void)buf_printf(b,
			    "smtpgate_deliverd_destination_outcomes_total{"
			    "destination=\"");
			metrics_label(b, m->mb_dest[c].md_name);
			(void)buf_printf(b, "\",outcome=\"%s\"} %" PRIu64 "\n",
			    metrics_outcome_names[o], m->mb_dest[c].md_n[o]);
		}
	}
	for (o = 0; o < METRICS_NOUTCOMES; o++)
		(void)buf_printf(b,
		    "smtpgate_deliverd_destination_outcomes_total{"
		    "destination=\"other\",outcome=\"%s\"} %" PRIu64 "\n",
		    metrics_outcome_names[o], m->mb_dest_other[o]);
	metrics_head(b, "deliverd_delivered_tls_total", "counter",
	    "Delivered recipients whose next hop used TLS.");
	(void)buf_printf(b,
	    "smtpgate_deliverd_delivered_tls_total %" PRIu64 "\n",
	    m->mb_deliverd_tls[0]);
	metrics_head(b, "deliverd_delivered_total", "counter",
	    "Delivered recipients.");
	(void)buf_printf(b, "smtpgate_deliverd_delivered_total %" PRIu64 "\n",
	    m->mb_deliverd_tls[1]);
	metrics_head(b, "deliverd_resolver_down", "gauge",
	    "1 while the resolver is taken to be down (delivery that needs "
	    "DNS is held but for one probe).");
	(void)buf_printf(b, "smtpgate_deliverd_resolver_down %" PRIu64 "\n",
	    m->mb_deliverd_resolver_down);
	metrics_head(b, "deliverd_destinations_suspended", "gauge",
	    "Destinations suspended now (spoolctl queue --summary names "
	    "them).");
	(void)buf_printf(b,
	    "smtpgate_deliverd_destinations_suspended %" PRIu64 "\n",
	    m->mb_deliverd_suspended);
}

static void
metrics_restarts(struct buf *b, const struct metrics_block *m)
{
	size_t d;

	metrics_head(b, "process_restarts_total", "counter",
	    "Supervised children restarted after an exit, by supervising "
	    "daemon.");
	for (d = 0; d < METRICS_NDAEMONS; d++)
		(void)buf_printf(b,
		    "smtpgate_process_restarts_total{daemon=\"%s\","
		    "reason=\"crash\"} %" PRIu64 "\n"
		    "smtpgate_process_restarts_total{daemon=\"%s\",reason="
		    "\"exit\"} %" PRIu64 "\n",
		    metrics_daemon_name((enum metrics_daemon)d),
		    m->mb_restarts[d][0],
		    metrics_daemon_name((enum metrics_daemon)d),
		    m->mb_restarts[d][1]);
}

static void
metrics_gauge(struct buf *b, const char *name, const char *help, int64_t v)
{
	metrics_head(b, name, "gauge", help);
	(void)buf_printf(b, "smtpgate_%s %" PRId64 "\n", name, v);
}

static void
metrics_gauges(struct buf *b, const struct metrics_gauges *g)
{
	size_t i;

	metrics_head(b, "queue_messages", "gauge",
	    "Queued messages with pending recipients, by age (upper bound of "
	    "the bucket).");
	for (i = 0; i < METRICS_NAGES; i++)
		(void)buf_printf(b,
		    "smtpgate_queue_messages{age=\"%s\"} %" PRIu64 "\n",
		    metrics_age_names[i], g->mg_queue_age[i]);
	metrics_gauge(b, "queue_oldest_age_seconds",
	    "Age of the oldest queued message.", g->mg_queue_oldest);
	metrics_gauge(b, "queue_scan_truncated",
	    "1 when the age scan stopped at its cap (the buckets are a lower "
	    "bound).",
	    g->mg_queue_truncated ? 1 : 0);
	metrics_gauge(b, "queue_recipients_pending",
	    "Recipients waiting for delivery.", (int64_t)g->mg_rcpts_pending);
	metrics_gauge(b, "callback_backlog_events",
	    "Events waiting for callback delivery.", (int64_t)g->mg_outbox);
	metrics_gauge(b, "callback_backlog_accounts",
	    "Accounts with pending callbacks.", (int64_t)g->mg_outbox_accounts);
	metrics_gauge(b, "callback_lag_seconds",
	    "Age of the oldest event waiting for callback delivery.",
	    g->mg_outbox_lag);
	metrics_gauge(b, "lmdb_map_used_bytes", "Bytes of the LMDB map in use.",
	    g->mg_map_used);
	metrics_gauge(b, "lmdb_map_size_bytes", "The LMDB map's current size.",
	    g->mg_map_size);
	metrics_gauge(b, "lmdb_map_max_bytes",
	    "lmdb_map_max (0: no growth limit).", g->mg_map_max);
}

int
metrics_render(struct buf *b, const struct metrics_block *m,
    const struct metrics_gauges *g)
{
	metrics_smtpd(b, m);
	metrics_spoold(b, m);
	metrics_deliverd(b, m);
	metrics_restarts(b, m);
	if (g != NULL)
		metrics_gauges(b, g);
	/* no line is longer than METRICS_LINE_MAX: a write that failed for
	 * want of room left less than that */
	return b->len + METRICS_LINE_MAX <= b->max ? 0 : -1;
}
