/*
 * spoolctl_stopshow: `stoplist show LOGIN EMAIL [--json]` (h-asupp): why
 * an address is on an account's stop list: the reason (unsubscribed,
 * complained, manual), the date, the queue id of the message it came from
 * and a note (the complaint report's queue id and Feedback-Type). Entries
 * written before these were recorded show none of them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "spool.h"
#include "spoolctl.h"

static void
ctl_stop_show_json(const char *login, const char *addr,
    const struct spool_stopent *se)
{
	struct json_gen *jg = json_gen_new(false);
	char		 dt[21];

	json_obj_begin(jg);
	json_kv_str(jg, "account", login);
	json_kv_str(jg, "address", addr);
	json_kv_str(jg, "reason", se->se_reason[0] ? se->se_reason : NULL);
	if (se->se_when > 0)
		spool_dt(se->se_when, dt);
	json_kv_str(jg, "date", se->se_when > 0 ? dt : NULL);
	json_kv_str(jg, "queue_id", se->se_qid[0] ? se->se_qid : NULL);
	json_kv_str(jg, "note", se->se_note[0] ? se->se_note : NULL);
	json_obj_end(jg);
	ctl_json_print(jg);
	json_gen_free(&jg);
}

static void
ctl_stop_show_text(const char *login, const char *addr,
    const struct spool_stopent *se)
{
	char dt[21] = "-";

	if (se->se_when > 0)
		spool_dt(se->se_when, dt);
	printf("account:  %s\naddress:  %s\n", login, addr);
	printf("reason:   %s\ndate:     %s\nqueue_id: %s\nnote:     %s\n",
	    se->se_reason[0] ? se->se_reason : "- (not recorded)", dt,
	    se->se_qid[0] ? se->se_qid : "-",
	    se->se_note[0] ? se->se_note : "-");
}

int
ctl_stop_show(struct ctl *ctl, int argc, char **argv)
{
	struct spool_stopent se;
	struct spool_txn    *txn;
	bool		     json = ctl_want_json(argc, argv, NULL, 2, 2);
	const char	    *login = argv[optind], *addr = argv[optind + 1];
	int		     rc;

	txn = ctl_begin(ctl, false);
	ctl_need_account(txn, login);
	rc = spool_stop_get(txn, login, addr, &se);
	spool_abort(&txn);
	if (rc == SPOOL_ENOTFOUND)
		ctl_die("%s is not in the stoplist of %s (spoolctl stoplist "
			"list %s)",
		    addr, login, login);
	if (rc != 0)
		ctl_die_rc(rc, "stoplist show");
	if (json)
		ctl_stop_show_json(login, addr, &se);
	else
		ctl_stop_show_text(login, addr, &se);
	return CTL_OK;
}
