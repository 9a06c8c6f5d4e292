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

/* ---- resume: the pending recipients of the domain become due now
 * (spool_pause_release) */

int
ctl_cmd_resume(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_pause_opts o;
	struct spool_txn     *txn;
	size_t		      nrcpt = 0;
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
	/* the pause is gone: nothing sets them aside again */
	if ((rc = spool_pause_release(ctl->sp, domain, o.account, ctl->now,
		 &nrcpt)) != 0)
		ctl_die_rc(rc, "resume %s: making its recipients due", what);
	ctl_wake_deliverd(ctl);
	printf("%s: resumed; %zu recipient%s due now\n", what, nrcpt,
	    nrcpt == 1 ? "" : "s");
	return CTL_OK;
}
