/*
 * spoolctl tls-report --send [--date D] [--domain X] (RFC 8460 section
 * 5): for each recipient domain with TLS sessions on UTC day D (default:
 * yesterday), the "_smtp._tls.DOMAIN" TXT record (common/tlsrpt) names
 * where its report goes; the report (ctl_tlsrpt_report) is gzipped and
 * POSTed to each https: URI, or mailed to each mailto: address through
 * maildrop/ (the path smtpgate-sendmail takes: spoold files it under
 * sendmail_account, DKIM-signs it, deliverd delivers it). Each URI that
 * got the report is recorded (spool_tlsrpt_sent_*): a second run sends
 * nothing twice; a URI that failed is tried again by the next run, and
 * the exit status is 1 while any failed. One line per domain and URI.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "dns.h"
#include "json.h"
#include "landlock.h"
#include "spoolctl.h"
#include "spoolctl_tlsrpt.h"
#include "tlsrpt.h"
#include "xmem.h"

#define TLSRPT_TXT_N	8	    /* TXT records read per domain */
#define TLSRPT_DNS_WAIT 5	    /* seconds per DNS query */
#define TLSRPT_BODY_MAX (64u << 20) /* a report, gzipped or mailed */

struct tlsrpt_run {
	struct ctl *ctl;
	struct dns *dns;
	const char *date;
	int64_t	    day;
	unsigned    failed;
};

struct tlsrpt_doms {
	char (*d)[256];
	size_t n, cap;
};

/* The day's recipient domains, once each (rows come sorted by domain). */
static int
tlsrpt_doms_cb(const struct spool_tlsrpt_row *r, void *arg)
{
	struct tlsrpt_doms *l = arg;

	if (l->n > 0 && strcmp(l->d[l->n - 1], r->tr_domain) == 0)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16; /* <= SPOOL_TLSRPT_DAY_MAX */
		l->d = xreallocarray(l->d, l->cap, sizeof(*l->d));
	}
	(void)str_copy(l->d[l->n++], sizeof(*l->d), r->tr_domain);
	return 0;
}

static void
tlsrpt_fail(struct tlsrpt_run *r, const char *domain, const char *uri,
    const char *why)
{
	r->failed++;
	fprintf(stderr,
	    "spoolctl: tls-report: %s: %s: failed: %s (tried again by the "
	    "next run)\n",
	    domain, uri, why);
}

/* rua_r from the domain's one TLSRPT record: 0; 1 (skipped, said why);
 * -1 on a DNS failure (counted, tried again by the next run). */
static int
tlsrpt_lookup(struct tlsrpt_run *r, const char *domain,
    struct tlsrpt_rua *rua_r)
{
	char(*txt)[DNS_TXT_MAX] = xcalloc(TLSRPT_TXT_N, DNS_TXT_MAX);
	char		  name[300], err[256], why[700] = "";
	struct tlsrpt_rua one;
	enum dns_status	  st;
	size_t		  n, i, nrec = 0;
	int		  prc = 1;

	(void)snprintf(name, sizeof(name), "_smtp._tls.%s", domain);
	st = dns_txt(r->dns, name, txt, TLSRPT_TXT_N, &n, err, sizeof(err));
	for (i = 0; st == DNS_OK && i < n; i++) {
		if ((prc = tlsrpt_txt_parse(txt[i], strlen(txt[i]), &one, err,
			 sizeof(err))) == 1)
			continue;
		if (nrec++ == 0)
			*rua_r = one;
		if (prc == -1)
			(void)snprintf(why, sizeof(why),
			    "bad TLSRPT record at %s: %s", name, err);
	}
	free(txt);
	if (st == DNS_TEMPFAIL) {
		tlsrpt_fail(r, domain, name, err);
		return -1;
	}
	if (nrec == 0)
		(void)snprintf(why, sizeof(why), "no TLSRPT record at %s",
		    name);
	else if (nrec > 1) /* RFC 8460 3: as if there were none */
		(void)snprintf(why, sizeof(why),
		    "%zu TLSRPT records at %s (RFC 8460 3: none is used)", nrec,
		    name);
	else if (why[0] == '\0' && rua_r->n == 0)
		(void)snprintf(why, sizeof(why),
		    "no mailto: or https: URI in the TLSRPT record at %s",
		    name);
	if (why[0] == '\0') {
		if (rua_r->ignored > 0)
			printf("%s: %zu report URI(s) at %s ignored (not "
			       "mailto: or https:, malformed, or past %d)\n",
			    domain, rua_r->ignored, name, TLSRPT_RUA_MAX);
		return 0;
	}
	printf("%s: skipped: %s\n", domain, why);
	return 1;
}

static bool
tlsrpt_is_sent(struct tlsrpt_run *r, const char *domain, const char *uri)
{
	struct spool_txn *t = ctl_begin(r->ctl, false);
	int rc = spool_tlsrpt_sent_get(t, r->day, domain, uri, NULL);

	spool_abort(&t);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		ctl_die_rc(rc, "tls-report: %s", domain);
	return rc == 0;
}

static void
tlsrpt_mark_sent(struct tlsrpt_run *r, const char *domain, const char *uri)
{
	struct spool_txn *t = ctl_begin(r->ctl, true);
	int		  rc;

	if ((rc = spool_tlsrpt_sent_put(t, r->ctl->now, r->day, domain, uri)) !=
	    0) {
		spool_abort(&t);
		ctl_die_rc(rc, "tls-report: %s: recording %s", domain, uri);
	}
	ctl_commit(&t);
}

/* The message into maildrop/ for sendmail_account, as smtpgate-sendmail
 * writes it: envelope, then the message; durable before 0. */
static int
tlsrpt_drop(struct ctl *ctl, const char *to, const struct buf *msg,
    char qid_r[QID_SIZE], char *err, size_t errsz)
{
	const struct conf *cf = ctl->cf;
	struct spool_in	   si;
	struct spool_env   env;
	struct buf	   eb;
	int		   rc;

	memset(&si, 0, sizeof(si));
	si.sn_fd = -1;
	if ((rc = spool_drop_create(cf->cf_spool_dir, &si)) != 0) {
		(void)snprintf(err, errsz, "%s/maildrop: %s", cf->cf_spool_dir,
		    spool_strerror(rc));
		return -1;
	}
	spool_env_init(&env);
	(void)str_copy(env.pe_qid, sizeof(env.pe_qid), si.sn_qid);
	(void)str_copy(env.pe_account, sizeof(env.pe_account),
	    cf->cf_sendmail_account);
	(void)str_copy(env.pe_client, sizeof(env.pe_client), "local");
	(void)str_copy(env.pe_helo, sizeof(env.pe_helo), "localhost");
	(void)str_copy(env.pe_from, sizeof(env.pe_from),
	    cf->cf_tls_report_from);
	env.pe_time = ctl->now;
	buf_init(&eb, 1 << 20);
	if ((rc = spool_env_add_rcpt(&env, to)) == 0 &&
	    (rc = spool_env_format(&env, &eb)) == 0 &&
	    (rc = spool_in_write(&si, eb.data, eb.len)) == 0 &&
	    (rc = spool_in_write(&si, msg->data, msg->len)) == 0)
		rc = spool_in_commit(&si);
	buf_release(&eb);
	spool_env_free(&env);
	if (rc != 0) {
		spool_in_abort(&si);
		(void)snprintf(err, errsz, "maildrop: %s", spool_strerror(rc));
		return -1;
	}
	(void)str_copy(qid_r, QID_SIZE, si.sn_qid);
	return 0;
}

struct tlsrpt_doc {
	const char	 *domain;
	char		  report_id[600];
	const struct buf *gz;
};

/* One mailto: URI: 0 queued (qid_r), 1 skipped (said why), -1 failed. */
static int
tlsrpt_mailto(struct tlsrpt_run *r, const struct tlsrpt_doc *d, const char *to,
    char qid_r[QID_SIZE], char *err, size_t errsz)
{
	const struct conf *cf = r->ctl->cf;
	struct tlsrpt_mail m = { .from = cf->cf_tls_report_from,
		.to = to,
		.domain = d->domain,
		.submitter = cf->cf_hostname,
		.report_id = d->report_id,
		.date = r->date,
		.day_start = r->day,
		.gz = d->gz->data,
		.gzlen = d->gz->len };
	struct buf	   msg;
	int		   rc;

	if (cf->cf_tls_report_from[0] == '\0' ||
	    cf->cf_sendmail_account[0] == '\0') {
		printf("%s: mailto:%s: skipped: %s is not set\n", d->domain, to,
		    cf->cf_tls_report_from[0] == '\0' ? "tls_report_from"
						      : "sendmail_account");
		return 1;
	}
	buf_init(&msg, TLSRPT_BODY_MAX);
	rc = tlsrpt_mail_build(&m, &msg, err, errsz);
	if (rc == 0)
		rc = tlsrpt_drop(r->ctl, to, &msg, qid_r, err, errsz);
	buf_release(&msg);
	return rc;
}

static void
tlsrpt_send_uri(struct tlsrpt_run *r, const struct tlsrpt_doc *d,
    const struct tlsrpt_rua *rua, size_t i)
{
	char qid[QID_SIZE] = "", err[512];
	int  rc;

	if (tlsrpt_is_sent(r, d->domain, rua->uri[i])) {
		printf("%s: %s: already sent\n", d->domain, rua->uri[i]);
		return;
	}
	if (rua->kind[i] == TLSRPT_HTTPS)
		rc = tlsrpt_post(r->ctl->cf, rua->uri[i], d->gz->data,
		    d->gz->len, err, sizeof(err));
	else
		rc = tlsrpt_mailto(r, d, rua->addr[i], qid, err, sizeof(err));
	if (rc == 1)
		return;
	if (rc != 0) {
		tlsrpt_fail(r, d->domain, rua->uri[i], err);
		return;
	}
	tlsrpt_mark_sent(r, d->domain, rua->uri[i]);
	printf("%s: report of %s sent to %s%s%s\n", d->domain, r->date,
	    rua->uri[i], qid[0] ? ", queued as " : "", qid);
}

static void
tlsrpt_send_domain(struct tlsrpt_run *r, const char *domain)
{
	struct tlsrpt_rua rua;
	struct tlsrpt_doc d = { .domain = domain };
	struct json_gen	 *jg;
	struct buf	  gz;
	const char	 *js;
	size_t		  i, len, npol;
	char		  err[256];

	if (tlsrpt_lookup(r, domain, &rua) != 0)
		return;
	jg = ctl_tlsrpt_report(r->ctl, r->date, domain, &npol);
	js = json_gen_result(jg, &len);
	buf_init(&gz, TLSRPT_BODY_MAX);
	if (tlsrpt_gzip(js, len, &gz, err, sizeof(err)) != 0)
		tlsrpt_fail(r, domain, "(all)", err);
	else {
		ctl_tlsrpt_report_id(r->ctl, r->date, domain, d.report_id,
		    sizeof(d.report_id));
		d.gz = &gz;
		for (i = 0; i < rua.n; i++)
			tlsrpt_send_uri(r, &d, &rua, i);
	}
	buf_release(&gz);
	json_gen_free(&jg);
}

/* Privileges dropped, the database open: from here on the run, which
 * reads DNS answers and talks HTTPS to servers the recipient domains name,
 * may open only the system's trees (resolver, CA certificates), the
 * database read-write, tls_report_ca_file, and create its reports in
 * maildrop/ (landlock.c): not keys/, not db/'s key files, not queue/. */
static void
tlsrpt_confine(const struct conf *cf)
{
	char drop[PATH_MAX], data[PATH_MAX], lock[PATH_MAX], why[512];
	int  rc;
	const struct landlock_path paths[] = {
		{ drop, LANDLOCK_READ | LANDLOCK_WRITE | LANDLOCK_MAKE },
		{ data, LANDLOCK_READ | LANDLOCK_WRITE },
		{ lock, LANDLOCK_READ | LANDLOCK_WRITE },
		{ cf->cf_tls_report_ca_file, LANDLOCK_READ },
	};

	if (spool_path(drop, sizeof(drop), cf->cf_spool_dir, SPOOL_MAILDROP,
		NULL) == -1 ||
	    snprintf(data, sizeof(data), "%s/db/data.mdb", cf->cf_spool_dir) >=
		(int)sizeof(data) ||
	    snprintf(lock, sizeof(lock), "%s/db/lock.mdb", cf->cf_spool_dir) >=
		(int)sizeof(lock))
		ctl_die("tls-report: spool_dir too long");
	if ((rc = landlock_confine(cf->cf_spool_dir, paths,
		 sizeof(paths) / sizeof(paths[0]), "spoolctl tls-report", why,
		 sizeof(why))) == -1)
		ctl_die("tls-report: confining: %s", why);
	if (rc == 0)
		ctl_warn("tls-report: not confined: %s", why);
}

int
ctl_tlsrpt_send(struct ctl *ctl, const char *date, const char *domain)
{
	struct tlsrpt_run  r = { .ctl = ctl };
	struct tlsrpt_doms l = { 0 };
	struct spool_txn  *t;
	char		   yday[11], err[256];
	size_t		   i;
	int		   rc;

	spool_date(ctl->now - 86400, yday);
	r.date = date != NULL ? date : yday;
	r.day = ctl_tlsrpt_day(r.date);
	t = ctl_begin(ctl, true); /* drops privileges; prunes old records */
	if ((rc = spool_tlsrpt_sent_prune(t, ctl->now)) != 0) {
		spool_abort(&t);
		ctl_die_rc(rc, "tls-report");
	}
	ctl_commit(&t);
	tlsrpt_confine(ctl->cf);
	t = ctl_begin(ctl, false);
	rc = spool_tlsrpt_iter(t, r.day, domain, tlsrpt_doms_cb, &l);
	spool_abort(&t);
	if (rc != 0)
		ctl_die_rc(rc, "tls-report");
	if (l.n == 0)
		printf("no TLS sessions recorded on %s: nothing to send\n",
		    r.date);
	else if ((r.dns = dns_new(ctl->cf->cf_dns_server, TLSRPT_DNS_WAIT, err,
		      sizeof(err))) == NULL)
		ctl_die("tls-report: dns_server: %s", err);
	for (i = 0; i < l.n; i++)
		tlsrpt_send_domain(&r, l.d[i]);
	dns_free(&r.dns);
	free(l.d);
	return r.failed > 0 ? CTL_FAIL : CTL_OK;
}
