/*
 * spoolctl_pause: pause and resume (issue 15 item 7). A pause holds the
 * deliveries to one recipient domain, of one account or of all: deliverd
 * makes no attempt (none is counted, no event is written) until resume,
 * and sets the recipients aside so they hold nothing else up. The queue
 * lifetime still runs (expired recipients bounce as usual). resume drops
 * the pause and makes the domain's pending recipients due at once.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "conf.h"
#include "json.h"
#include "spoolctl.h"
#include "xmem.h"

#define CTL_PAUSE_BATCH 1000 /* messages per write transaction in resume */

struct ctl_pause_opts {
	const char *domain;
	const char *account;
	bool	    json;
};

static void
ctl_pause_opts(int argc, char **argv, struct ctl_pause_opts *o, bool listing)
{
	static const struct option lo[] = { { "domain", required_argument, NULL,
						'd' },
		{ "account", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	int			   ch;

	memset(o, 0, sizeof(*o));
	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (ch == 'd')
			o->domain = optarg;
		else if (ch == 'a')
			o->account = optarg;
		else
			o->json = true;
	}
	ctl_operands(argc, argv, 0, 0, NULL);
	if (o->domain == NULL && (o->account != NULL || !listing))
		ctl_usage("%s: --domain D is required%s", argv[0],
		    listing ? " with --account (no options: list the pauses)"
			    : "");
	if (o->domain != NULL && !ctl_domain_ok(o->domain))
		ctl_usage("%s: bad domain \"%s\"", argv[0], o->domain);
	if (o->account != NULL && !ctl_login_ok(o->account))
		ctl_usage("%s: bad login \"%s\"", argv[0], o->account);
	if (o->json && o->domain != NULL)
		ctl_usage("%s: --json lists the pauses: give it alone",
		    argv[0]);
}

/* "example.net" or "example.net (account shop)" */
static const char *
ctl_pause_what(const char *domain, const char *login, char *dst, size_t dstsz)
{
	(void)snprintf(dst, dstsz, "%s%s%s%s", domain,
	    login[0] ? " (account " : "", login, login[0] ? ")" : "");
	return dst;
}

static int
ctl_pause_list_cb(const struct spool_pause *pz, void *arg)
{
	struct json_gen *jg = arg;
	char		 t[20];

	if (jg != NULL) {
		json_obj_begin(jg);
		json_kv_str(jg, "domain", pz->pz_domain);
		json_kv_str(jg, "account",
		    pz->pz_login[0] ? pz->pz_login : NULL);
		json_kv_int(jg, "since", pz->pz_since);
		json_obj_end(jg);
		return 0;
	}
	ctl_time(pz->pz_since, t);
	printf("%-40s %-24s %s\n", pz->pz_domain,
	    pz->pz_login[0] ? pz->pz_login : "*", t);
	return ctl_out_broken() ? 1 : 0;
}

static int
ctl_pause_list(struct ctl *ctl, bool json)
{
	struct spool_txn *txn;
	struct json_gen	 *jg = NULL;
	size_t		  n = 0;
	int		  rc;

	txn = ctl_begin(ctl, false);
	if ((rc = spool_pause_count(txn, &n)) != 0)
		ctl_die_rc(rc, "pauses");
	if (json) {
		jg = json_gen_new(false);
		json_arr_begin(jg);
	} else if (n > 0)
		printf("%-40s %-24s %s\n", "DOMAIN", "ACCOUNT",
		    "PAUSED SINCE (UTC)");
	rc = spool_pause_iter(txn, ctl_pause_list_cb, jg);
	if (rc != 0 && rc != 1)
		ctl_die_rc(rc, "pauses");
	spool_abort(&txn);
	if (jg != NULL) {
		json_arr_end(jg);
		ctl_json_print(jg);
		json_gen_free(&jg);
	} else if (n == 0)
		printf("no pauses\n");
	return CTL_OK;
}

int
ctl_cmd_pause(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_pause_opts o;
	struct spool_pause    pz;
	struct spool_txn     *txn;
	char what[SPOOL_DOMAIN_MAX + SPOOL_LOGIN_MAX + 16], t[20];
	int  rc;

	ctl_pause_opts(argc, argv, &o, true);
	if (o.domain == NULL)
		return ctl_pause_list(ctl, o.json);
	memset(&pz, 0, sizeof(pz));
	(void)str_copy(pz.pz_domain, sizeof(pz.pz_domain), o.domain);
	str_lower(pz.pz_domain);
	(void)str_copy(pz.pz_login, sizeof(pz.pz_login),
	    o.account ? o.account : "");
	pz.pz_since = ctl->now;
	ctl_pause_what(pz.pz_domain, pz.pz_login, what, sizeof(what));
	txn = ctl_begin(ctl, true);
	if (o.account != NULL)
		ctl_need_account(txn, o.account);
	if ((rc = spool_pause_put(txn, &pz)) == SPOOL_EEXIST) {
		(void)spool_pause_find(txn, pz.pz_domain, pz.pz_login, &pz);
		spool_abort(&txn);
		ctl_time(pz.pz_since, t);
		printf("%s: already paused since %s UTC\n", what, t);
		return CTL_OK;
	}
	if (rc == EDQUOT)
		ctl_die("pause %s: there are %d pauses already, the most there "
			"can be "
			"(spoolctl pause lists them; resume some first)",
		    what, SPOOL_PAUSE_MAX);
	if (rc != 0)
		ctl_die_rc(rc, "pause %s", what);
	ctl_commit(&txn);
	printf(
	    "%s: paused; its mail waits without attempts until spoolctl resume "
	    "--domain %s%s%s\n",
	    what, pz.pz_domain, o.account ? " --account " : "",
	    o.account ? o.account : "");
	return CTL_OK;
}

/* ---- resume: the pending recipients of the domain become due now */

struct ctl_resume {
	const char *domain;
	const char *login; /* NULL: every account */
	char (*qids)[QID_SIZE];
	size_t		  n, cap;
	int64_t		  now;
	size_t		  nrcpt;
	struct spool_txn *txn;
};

static bool
ctl_resume_rcpt_match(const struct ctl_resume *cr, const struct spool_rcpt *r)
{
	const char *at = strrchr(r->sr_addr, '@');

	return (r->sr_state == SPOOL_RS_QUEUED ||
		   r->sr_state == SPOOL_RS_DEFERRED) &&
	    at != NULL && strcasecmp(at + 1, cr->domain) == 0;
}

static int
ctl_resume_msg_cb(const struct spool_msg *sm, void *arg)
{
	struct ctl_resume *cr = arg;

	if (sm->sm_held || sm->sm_npending == 0 ||
	    (cr->login != NULL && strcmp(sm->sm_login, cr->login) != 0))
		return 0;
	if (cr->n == cr->cap) {
		cr->cap = cr->cap ? cr->cap * 2 : 1024;
		cr->qids = xreallocarray(cr->qids, cr->cap, sizeof(*cr->qids));
	}
	memcpy(cr->qids[cr->n++], sm->sm_qid, QID_SIZE);
	return 0;
}

static int
ctl_resume_rcpt_cb(const struct spool_rcpt *r, void *arg)
{
	struct ctl_resume *cr = arg;
	struct spool_rcpt  due;
	int		   rc;

	if (!ctl_resume_rcpt_match(cr, r) || r->sr_next <= cr->now)
		return 0;
	due = *r;
	due.sr_next = cr->now;
	if ((rc = spool_rcpt_put(cr->txn, &due)) != 0)
		return rc;
	cr->nrcpt++;
	return 0;
}

/* Makes the domain's pending recipients due now, CTL_PAUSE_BATCH messages
 * per transaction (the pause is already gone: nothing sets them aside). */
static void
ctl_resume_due(struct ctl *ctl, struct ctl_resume *cr)
{
	size_t i;
	int    rc;

	cr->txn = ctl_begin(ctl, false);
	if ((rc = spool_msg_iter(cr->txn, ctl_resume_msg_cb, cr)) != 0)
		ctl_die_rc(rc, "messages");
	spool_abort(&cr->txn);
	for (i = 0; i < cr->n; i++) {
		if (cr->txn == NULL)
			cr->txn = ctl_begin(ctl, true);
		rc = spool_rcpt_iter(cr->txn, cr->qids[i], ctl_resume_rcpt_cb,
		    cr);
		if (rc != 0 && rc != SPOOL_ENOTFOUND)
			ctl_die_rc(rc, "%s", cr->qids[i]);
		if (i % CTL_PAUSE_BATCH == CTL_PAUSE_BATCH - 1)
			ctl_commit(&cr->txn);
	}
	if (cr->txn != NULL)
		ctl_commit(&cr->txn);
}

int
ctl_cmd_resume(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_pause_opts o;
	struct ctl_resume     cr;
	struct spool_txn     *txn;
	char		      domain[SPOOL_DOMAIN_MAX],
	    what[SPOOL_DOMAIN_MAX + SPOOL_LOGIN_MAX + 16];
	int rc;

	ctl_pause_opts(argc, argv, &o, false);
	(void)str_copy(domain, sizeof(domain), o.domain);
	str_lower(domain);
	ctl_pause_what(domain, o.account ? o.account : "", what, sizeof(what));
	txn = ctl_begin(ctl, true);
	if ((rc = spool_pause_del(txn, domain, o.account ? o.account : "")) ==
	    SPOOL_ENOTFOUND)
		ctl_die("%s is not paused (spoolctl pause lists the pauses)",
		    what);
	if (rc != 0)
		ctl_die_rc(rc, "resume %s", what);
	ctl_commit(&txn);
	memset(&cr, 0, sizeof(cr));
	cr.domain = domain;
	cr.login = o.account;
	cr.now = ctl->now;
	ctl_resume_due(ctl, &cr);
	free(cr.qids);
	ctl_wake_deliverd(ctl);
	printf("%s: resumed; %zu recipient%s due now\n", what, cr.nrcpt,
	    cr.nrcpt == 1 ? "" : "s");
	return CTL_OK;
}
