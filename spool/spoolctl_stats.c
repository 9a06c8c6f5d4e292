/*
 * spoolctl_stats: `issues` (per-issue counters, by account or date through
 * the issue indexes) and `bounces` (the last N bounced events, newest
 * first, from the log's index of bounced events).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "buf.h"
#include "json.h"
#include "spoolctl.h"
#include "xmem.h"

struct ctl_issues {
	const char	*date;
	const char	*account;
	enum bounce_cat	 cat; /* --category, BOUNCE_NONE = all */
	struct json_gen *jg;
	size_t		 n;
	bool		 cluster; /* --cluster (issue 19): nodes column */
	int64_t		 nodes;
};

/* " [bad-mailbox=2 spam=1]" for the categories with bounces, or "". */
static void
ctl_issue_cats_text(const struct spool_issue *si, char *dst, size_t dstsz)
{
	size_t off = 0;
	int    c;

	dst[0] = '\0';
	for (c = BOUNCE_NONE + 1; c < BOUNCE_CAT_COUNT && off < dstsz; c++)
		if (si->su_bounced_cat[c] > 0)
			off += (size_t)snprintf(dst + off, dstsz - off,
			    "%s%s=%llu", off == 0 ? " [" : " ",
			    bounce_cat_name(c),
			    (unsigned long long)si->su_bounced_cat[c]);
	if (off > 0 && off < dstsz)
		(void)snprintf(dst + off, dstsz - off, "]");
}

/* "U/T" of a unique and a total count. */
static const char *
ctl_issue_ut(char *dst, size_t dstsz, uint64_t unique, uint64_t total)
{
	(void)snprintf(dst, dstsz, "%llu/%llu", (unsigned long long)unique,
	    (unsigned long long)total);
	return dst;
}

static int
ctl_issues_cb(const struct spool_issue *si, void *arg)
{
	struct ctl_issues *is = arg;
	char		   cats[1024], brk[112], opens[48], clicks[48];
	char		   nodes[24] = "";

	if ((is->date != NULL && strcmp(is->date, si->su_date) != 0) ||
	    (is->account != NULL && strcmp(is->account, si->su_login) != 0) ||
	    (is->cat != BOUNCE_NONE && si->su_bounced_cat[is->cat] == 0))
		return 0;
	if (is->jg != NULL) {
		spool_issue_json(is->jg, si);
		if (is->cluster)
			json_kv_int(is->jg, "nodes", is->nodes);
		json_obj_end(is->jg);
		is->n++;
		return 0;
	}
	if (is->n++ == 0)
		printf("%-6s %-10s %-24s %-24s %6s %6s %9s %8s %7s %-29s %11s "
		       "%11s %6s %6s%s\n",
		    "ID", "DATE", "NAME", "ACCOUNT", "MSGS", "RCPTS",
		    "DELIVERED", "DEFERRED", "BOUNCED",
		    "(policy/remote/expired/admin)", "OPENS(u/t)",
		    "CLICKS(u/t)", "UNSUB", "COMPL",
		    is->cluster ? "  NODES" : "");

	ctl_issue_cats_text(si, cats, sizeof(cats));
	(void)snprintf(brk, sizeof(brk), "(%llu/%llu/%llu/%llu)",
	    (unsigned long long)si->su_bounced_policy,
	    (unsigned long long)si->su_bounced_remote,
	    (unsigned long long)si->su_bounced_expired,
	    (unsigned long long)si->su_bounced_admin);
	if (is->cluster)
		(void)str_printf(nodes, sizeof(nodes), " %6lld",
		    (long long)is->nodes);
	printf("%-6llu %-10s %-24s %-24s %6llu %6llu %9llu %8llu %7llu %-29s "
	       "%11s %11s %6llu %6llu%s%s%s\n",
	    (unsigned long long)si->su_id, si->su_date,
	    si->su_has_name ? si->su_name : "-", si->su_login,
	    (unsigned long long)si->su_msgs, (unsigned long long)si->su_rcpts,
	    (unsigned long long)si->su_delivered,
	    (unsigned long long)si->su_deferred,
	    (unsigned long long)(si->su_bounced_policy + si->su_bounced_remote +
		si->su_bounced_expired + si->su_bounced_admin),
	    brk,
	    ctl_issue_ut(opens, sizeof(opens), si->su_opens_unique,
		si->su_opens),
	    ctl_issue_ut(clicks, sizeof(clicks), si->su_clicks_unique,
		si->su_clicks),
	    (unsigned long long)si->su_unsubscribed,
	    (unsigned long long)si->su_complained, nodes,
	    si->su_blocked ? " BLOCKED" : "", cats);
	return 0;
}

/* issues --cluster: one issue summed over its nodes */
static int
ctl_issues_ccb(const struct spool_issue *si, int64_t nodes, void *arg)
{
	struct ctl_issues *is = arg;

	is->nodes = nodes;
	return ctl_issues_cb(si, arg);
}

bool
ctl_date_ok(const char *s)
{
	static const char pat[] = "dddd-dd-dd";
	static const int  mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
		 30, 31 };
	size_t		  i;
	int		  y, m, d;

	if (strlen(s) != 10)
		return false;
	for (i = 0; i < 10; i++)
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != '-')
			return false;
	/* a real calendar day (2026-13-45 is a typo, not "no issues") */
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	return m != 2 || d < 29 ||
	    (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
}

int
ctl_cmd_issues(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "date", required_argument, NULL,
						'd' },
		{ "account", required_argument, NULL, 'a' },
		{ "category", required_argument, NULL, 'c' },
		{ "cluster", no_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	struct ctl_issues	   is = { .date = NULL };
	struct spool_txn	  *txn;
	int			   ch, rc;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		switch (ch) {
		case 'd':
			if (!ctl_date_ok(optarg))
				ctl_usage("issues: --date %s: not YYYY-MM-DD",
				    optarg);
			is.date = optarg;
			break;
		case 'a':
			is.account = optarg;
			break;
		case 'c':
			is.cat = (enum bounce_cat)ctl_category(optarg,
			    "issues");
			break;
		case 'C':
			is.cluster = true;
			break;
		case 'j':
			if (is.jg == NULL)
				is.jg = json_gen_new(false);
			break;
		}
	}
	ctl_operands(argc, argv, 0, 0, NULL);
	if (is.jg != NULL)
		json_arr_begin(is.jg);
	if (is.cluster)
		ctl_cluster_issues(ctl, is.account, is.date, ctl_issues_ccb,
		    &is);
	else {
		txn = ctl_begin(ctl, false);
		if ((rc = spool_issue_iter_sel(txn, is.account, is.date,
			 ctl_issues_cb, &is)) != 0)
			ctl_die_rc(rc, "issues");
		spool_abort(&txn);
	}
	if (is.jg != NULL) {
		json_arr_end(is.jg);
		ctl_json_print(is.jg);
		json_gen_free(&is.jg);
	} else if (is.n == 0)
		printf("no issues\n");
	return CTL_OK;
}

/* ---- bounces */

struct ctl_bounces {
	int64_t		 left;
	struct json_gen *jg;
	size_t		 n;
	const char	*cat; /* --category, NULL = all */
	size_t		 bycat[BOUNCE_CAT_COUNT];
};

static int
ctl_bounces_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct ctl_bounces *b = arg;
	struct ctl_event    ev;

	(void)seq;
	if (memmem(json, len, "\"bounced\"", 9) == NULL) /* cheap pre-filter */
		return 0;
	if (ctl_event_parse(json, len, &ev) == -1)
		return 0;
	if (ev.ce_event == NULL || strcmp(ev.ce_event, "bounced") != 0 ||
	    (b->cat != NULL &&
		(ev.ce_category == NULL ||
		    strcmp(ev.ce_category, b->cat) != 0))) {
		ctl_event_free(&ev);
		return 0;
	}
	b->n++;
	/* events logged before issue 15 have no category */
	b->bycat[ev.ce_category != NULL ? bounce_cat_parse(ev.ce_category)
					: 0]++;
	if (b->jg != NULL) {
		json_obj_begin(b->jg);
		json_kv_str(b->jg, "to", ev.ce_to);
		json_kv_str(b->jg, "dt", ev.ce_dt);
		json_kv_str(b->jg, "msg", ev.ce_msg);
		json_kv_str(b->jg, "class", ev.ce_class);
		json_kv_str(b->jg, "account", ev.ce_account);
		json_kv_str(b->jg, "queue_id", ev.ce_qid);
		json_kv_str(b->jg, "category", ev.ce_category);
		json_obj_end(b->jg);
	} else
		printf("%s  %s  %s  (%s, %s)  %s\n", ev.ce_dt ? ev.ce_dt : "?",
		    ev.ce_to ? ev.ce_to : "?", ev.ce_msg ? ev.ce_msg : "",
		    ev.ce_class ? ev.ce_class : "?",
		    ev.ce_qid ? ev.ce_qid : "?",
		    ev.ce_category ? ev.ce_category : "-");
	ctl_event_free(&ev);
	return --b->left <= 0 ? 1 : 0;
}

/* The last line of the text listing: how many of the listed per category. */
static void
ctl_bounces_summary(const struct ctl_bounces *b)
{
	int c;

	printf("by category:");
	for (c = BOUNCE_NONE + 1; c < BOUNCE_CAT_COUNT; c++)
		if (b->bycat[c] > 0)
			printf(" %s=%zu", bounce_cat_name(c), b->bycat[c]);
	if (b->bycat[BOUNCE_NONE] > 0)
		printf(" none=%zu", b->bycat[BOUNCE_NONE]);
	printf("\n");
}

int
ctl_cmd_bounces(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "last", required_argument, NULL,
						'n' },
		{ "category", required_argument, NULL, 'c' },
		{ "cluster", no_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	struct ctl_bounces	   b = { .left = 100 };
	struct spool_txn	  *txn;
	char			  *end;
	bool			   cluster = false;
	int			   ch, rc;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (ch == 'n') {
			errno = 0;
			b.left = strtoll(optarg, &end, 10);
			if (!isdigit((unsigned char)*optarg) || *end != '\0' ||
			    errno != 0 || b.left <= 0)
				ctl_usage(
				    "bounces: --last %s: not a positive number",
				    optarg);
		} else if (ch == 'c') {
			b.cat = bounce_cat_name(
			    (enum bounce_cat)ctl_category(optarg, "bounces"));
		} else if (ch == 'C')
			cluster = true;
		else if (b.jg == NULL)
			b.jg = json_gen_new(false);
	}
	ctl_operands(argc, argv, 0, 0, NULL);
	if (b.jg != NULL)
		json_arr_begin(b.jg);
	if (cluster) /* issue 19: every node's, from PostgreSQL */
		ctl_cluster_bounces(ctl, b.left, b.cat, ctl_bounces_cb, &b);
	else {
		txn = ctl_begin(ctl, false);
		if ((rc = spool_log_iter_type(txn, SPOOL_EV_BOUNCED, true,
			 ctl_bounces_cb, &b)) != 0 &&
		    rc != 1 && rc != SPOOL_ENOTFOUND)
			ctl_die_rc(rc, "delivery log");
		spool_abort(&txn);
	}
	if (b.jg != NULL) {
		json_arr_end(b.jg);
		ctl_json_print(b.jg);
		json_gen_free(&b.jg);
	} else if (b.n == 0)
		printf("no bounces%s%s\n", b.cat != NULL ? " of category " : "",
		    b.cat != NULL ? b.cat : "");
	else
		ctl_bounces_summary(&b);
	return CTL_OK;
}
