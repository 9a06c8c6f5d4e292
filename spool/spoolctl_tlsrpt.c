/*
 * spoolctl_tlsrpt: tls-report --date D [--domain X] [--json] (issue 17
 * item 4): the TLS sessions deliverd recorded on UTC day D (spool.h
 * "tlsrpt") as the RFC 8460 section 4 report (--json), or one line per
 * domain, policy, result and MX host. Policies are grouped per recipient
 * domain and policy type; "success" rows make the successful count, every
 * other row a failure-details entry (per result type, sending-mta-ip,
 * receiving-mx-hostname, receiving-mx-helo and receiving-ip, each named
 * when known; the domain's overflow rows: per result type only, with a
 * failure-reason-code saying so).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "json.h"
#include "spoolctl.h"
#include "xmem.h"

struct ctl_tlsrpt {
	struct json_gen		*jg;   /* NULL: text */
	struct spool_tlsrpt_row *rows; /* the current policy's rows */
	size_t			 n, cap;
	size_t			 npol;
};

/* s split at sep into a JSON array under key (nothing when s is ""). */
static void
ctl_tlsrpt_list(struct json_gen *jg, const char *key, const char *s, char sep)
{
	const char *e;

	if (s[0] == '\0')
		return;
	json_key(jg, key);
	json_arr_begin(jg);
	for (; (e = strchr(s, sep)) != NULL; s = e + 1)
		if (e > s)
			json_strn(jg, s, (size_t)(e - s));
	if (s[0] != '\0')
		json_str(jg, s);
	json_arr_end(jg);
}

/* key: s unless s is "". */
static void
ctl_tlsrpt_opt(struct json_gen *jg, const char *key, const char *s)
{
	if (s[0] != '\0')
		json_kv_str(jg, key, s);
}

/* One failure-details entry (RFC 8460 4.4) from a failure row. */
static void
ctl_tlsrpt_detail(struct json_gen *jg, const struct spool_tlsrpt_row *r)
{
	char why[128];

	json_obj_begin(jg);
	json_kv_str(jg, "result-type", r->tr_result);
	ctl_tlsrpt_opt(jg, "sending-mta-ip", r->tr_sip);
	ctl_tlsrpt_opt(jg, "receiving-mx-hostname", r->tr_mx);
	ctl_tlsrpt_opt(jg, "receiving-mx-helo", r->tr_helo);
	ctl_tlsrpt_opt(jg, "receiving-ip", r->tr_rip);
	json_kv_int(jg, "failed-session-count", (int64_t)r->tr_count);
	if (r->tr_overflow) {
		(void)snprintf(why, sizeof(why),
		    "more than %d failure details for this domain on this "
		    "day: not itemized",
		    SPOOL_TLSRPT_DETAIL_MAX);
		json_kv_str(jg, "failure-reason-code", why);
	}
	json_obj_end(jg);
}

/* One policies[] entry from the rows of one domain and policy type. */
static void
ctl_tlsrpt_flush(struct ctl_tlsrpt *t)
{
	const struct spool_tlsrpt_row *r = t->rows;
	uint64_t		       ok = 0, bad = 0;
	size_t			       i;

	if (t->n == 0)
		return;
	t->npol++;
	for (i = 0; i < t->n; i++)
		*(strcmp(t->rows[i].tr_result, "success") == 0
			? &ok
			: &bad) += t->rows[i].tr_count;
	json_obj_begin(t->jg);
	json_key(t->jg, "policy");
	json_obj_begin(t->jg);
	json_kv_str(t->jg, "policy-type", r->tr_policy);
	ctl_tlsrpt_list(t->jg, "policy-string", r->tr_pstr, '\n');
	json_kv_str(t->jg, "policy-domain", r->tr_domain);
	ctl_tlsrpt_list(t->jg, "mx-host", r->tr_mxpat, ' ');
	json_obj_end(t->jg);
	json_key(t->jg, "summary");
	json_obj_begin(t->jg);
	json_kv_int(t->jg, "total-successful-session-count", (int64_t)ok);
	json_kv_int(t->jg, "total-failure-session-count", (int64_t)bad);
	json_obj_end(t->jg);
	if (bad > 0) {
		json_key(t->jg, "failure-details");
		json_arr_begin(t->jg);
		for (i = 0; i < t->n; i++) {
			r = &t->rows[i];
			if (strcmp(r->tr_result, "success") == 0)
				continue;
			ctl_tlsrpt_detail(t->jg, r);
		}
		json_arr_end(t->jg);
	}
	json_obj_end(t->jg);
	t->n = 0;
}

static int
ctl_tlsrpt_cb(const struct spool_tlsrpt_row *r, void *arg)
{
	struct ctl_tlsrpt *t = arg;

	if (t->jg == NULL) {
		printf("%-32s %-16s %-28s %-32s %-15s %-15s %llu\n",
		    r->tr_domain, r->tr_policy, r->tr_result,
		    r->tr_overflow    ? "(overflow)"
			: r->tr_mx[0] ? r->tr_mx
				      : "-",
		    r->tr_sip[0] ? r->tr_sip : "-",
		    r->tr_rip[0] ? r->tr_rip : "-",
		    (unsigned long long)r->tr_count);
		t->npol++;
		return 0;
	}
	if (t->n > 0 &&
	    (strcmp(t->rows[0].tr_domain, r->tr_domain) != 0 ||
		strcmp(t->rows[0].tr_policy, r->tr_policy) != 0))
		ctl_tlsrpt_flush(t);
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16; /* <= SPOOL_TLSRPT_DAY_MAX */
		t->rows = xreallocarray(t->rows, t->cap, sizeof(*t->rows));
	}
	t->rows[t->n++] = *r;
	return 0;
}

void
ctl_tlsrpt_report_id(struct ctl *ctl, const char *date, const char *domain,
    char *dst, size_t dstsz)
{
	if (domain == NULL)
		(void)snprintf(dst, dstsz, "%sT00:00:00Z_%s", date,
		    ctl->cf->cf_hostname);
	else
		(void)snprintf(dst, dstsz, "%sT00:00:00Z_%s_%s", date, domain,
		    ctl->cf->cf_hostname);
}

static void
ctl_tlsrpt_head(struct ctl *ctl, struct json_gen *jg, const char *date,
    const char *domain)
{
	const struct conf *cf = ctl->cf;
	char		   s[64], id[600];

	json_kv_str(jg, "organization-name",
	    cf->cf_tls_report_org[0] ? cf->cf_tls_report_org : cf->cf_hostname);
	json_key(jg, "date-range");
	json_obj_begin(jg);
	(void)snprintf(s, sizeof(s), "%sT00:00:00Z", date);
	json_kv_str(jg, "start-datetime", s);
	(void)snprintf(s, sizeof(s), "%sT23:59:59Z", date);
	json_kv_str(jg, "end-datetime", s);
	json_obj_end(jg);
	(void)snprintf(id, sizeof(id), "postmaster@%s", cf->cf_hostname);
	json_kv_str(jg, "contact-info",
	    cf->cf_tls_report_contact[0] ? cf->cf_tls_report_contact : id);
	ctl_tlsrpt_report_id(ctl, date, domain, id, sizeof(id));
	json_kv_str(jg, "report-id", id);
}

int64_t
ctl_tlsrpt_day(const char *date)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	(void)strptime(date, "%Y-%m-%d", &tm);
	return (int64_t)timegm(&tm);
}

/* The day's rows (of domain, or all) through ctl_tlsrpt_cb into t. */
static void
ctl_tlsrpt_walk(struct ctl *ctl, struct ctl_tlsrpt *t, const char *date,
    const char *domain)
{
	struct spool_txn *txn = ctl_begin(ctl, false);
	int		  rc;

	rc = spool_tlsrpt_iter(txn, ctl_tlsrpt_day(date), domain, ctl_tlsrpt_cb,
	    t);
	spool_abort(&txn);
	if (rc != 0)
		ctl_die_rc(rc, "tls-report");
}

struct json_gen *
ctl_tlsrpt_report(struct ctl *ctl, const char *date, const char *domain,
    size_t *npol_r)
{
	struct ctl_tlsrpt t;

	memset(&t, 0, sizeof(t));
	t.jg = json_gen_new(false);
	json_obj_begin(t.jg);
	ctl_tlsrpt_head(ctl, t.jg, date, domain);
	json_key(t.jg, "policies");
	json_arr_begin(t.jg);
	ctl_tlsrpt_walk(ctl, &t, date, domain);
	ctl_tlsrpt_flush(&t);
	json_arr_end(t.jg);
	json_obj_end(t.jg);
	free(t.rows);
	*npol_r = t.npol;
	return t.jg;
}

int
ctl_cmd_tls_report(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "date", required_argument, NULL,
						'd' },
		{ "domain", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "send", no_argument, NULL, 's' }, { NULL, 0, NULL, 0 } };
	struct ctl_tlsrpt	   t;
	const char		  *date = NULL, *domain = NULL;
	bool			   json = false, send = false;
	size_t			   npol;
	int			   ch;

	memset(&t, 0, sizeof(t));
	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (ch == 'd' && !ctl_date_ok(optarg))
			ctl_usage("tls-report: --date %s: not YYYY-MM-DD",
			    optarg);
		if (ch == 'D' && !ctl_domain_ok(optarg))
			ctl_usage("tls-report: bad domain \"%s\"", optarg);
		if (ch == 'd')
			date = optarg;
		else if (ch == 'D')
			domain = optarg;
		else if (ch == 's')
			send = true;
		else
			json = true;
	}
	ctl_operands(argc, argv, 0, 0, NULL);
	if (send && json)
		ctl_usage("tls-report: --send and --json exclude each other");
	if (send)
		return ctl_tlsrpt_send(ctl, date, domain);
	if (date == NULL)
		ctl_usage("tls-report: --date YYYY-MM-DD is required");
	if (json) {
		t.jg = ctl_tlsrpt_report(ctl, date, domain, &npol);
		ctl_json_print(t.jg);
		json_gen_free(&t.jg);
		return CTL_OK;
	}
	ctl_tlsrpt_walk(ctl, &t, date, domain);
	if (t.npol == 0)
		printf("no TLS sessions recorded on %s\n", date);
	free(t.rows);
	return CTL_OK;
}
