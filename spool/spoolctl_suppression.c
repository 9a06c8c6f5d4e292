/*
 * spoolctl_suppression: suppression list|show|add|del|export (issue 15,
 * CONTRACT "Second wave"). An entry (account, address) makes spoold refuse
 * the address for that account at filing with "550 5.0.0 Email has
 * permanent delivery errors"; deliverd adds recipient-level permanent
 * failures, the operator adds and deletes by hand, spoold prunes entries
 * older than suppression_ttl. Listings read one snapshot; changes are
 * short write transactions.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "buf.h"
#include "conf.h"
#include "json.h"
#include "spoolctl.h"
#include "xmem.h"

#define CTL_SUPP_LIMIT	   1000 /* list's default page */
#define CTL_SUPP_STDIN_MAX ((size_t)256 << 20)

/* ---- one entry, as text or JSON */

static void
ctl_supp_json(struct json_gen *jg, const struct spool_permfail *pf, int64_t ttl)
{
	char dt[21];

	json_obj_begin(jg);
	json_kv_str(jg, "account", pf->pf_login);
	json_kv_str(jg, "address", pf->pf_addr);
	spool_dt(pf->pf_when, dt);
	json_kv_str(jg, "date", dt);
	json_kv_str(jg, "reason", pf->pf_reason[0] ? pf->pf_reason : NULL);
	json_kv_str(jg, "reply", pf->pf_reply[0] ? pf->pf_reply : NULL);
	json_kv_str(jg, "queue_id", pf->pf_qid[0] ? pf->pf_qid : NULL);
	json_key(jg, "issue");
	if (pf->pf_issue != 0)
		json_int(jg, (int64_t)pf->pf_issue);
	else
		json_null(jg);
	spool_dt(pf->pf_when + ttl, dt);
	json_kv_str(jg, "expires", dt);
	json_obj_end(jg);
}

/* "ACCOUNT ADDRESS DATE REASON QID" ("-" for what an entry lacks). */
static void
ctl_supp_line(const struct spool_permfail *pf)
{
	char dt[21];

	spool_dt(pf->pf_when, dt);
	printf("%s %s %s %s %s\n", pf->pf_login, pf->pf_addr, dt,
	    pf->pf_reason[0] ? pf->pf_reason : "-",
	    pf->pf_qid[0] ? pf->pf_qid : "-");
}

static void
ctl_supp_show_text(const struct spool_permfail *pf, int64_t ttl)
{
	char dt[21], ex[21];

	spool_dt(pf->pf_when, dt);
	spool_dt(pf->pf_when + ttl, ex);
	printf("account: %s\naddress: %s\ndate: %s\nexpires: %s\nreason: %s\n"
	       "reply: %s\nqueue_id: %s\n",
	    pf->pf_login, pf->pf_addr, dt, ex,
	    pf->pf_reason[0] ? pf->pf_reason : "-",
	    pf->pf_reply[0] ? pf->pf_reply : "-",
	    pf->pf_qid[0] ? pf->pf_qid : "-");
	if (pf->pf_issue != 0)
		printf("issue: %llu\n", (unsigned long long)pf->pf_issue);
}

static void
ctl_supp_need_addr(const char *cmd, const char *addr)
{
	if (!ctl_addr_ok(addr))
		ctl_usage("suppression %s: \"%s\" is not an address", cmd,
		    addr);
}

/* ---- list and export */

struct ctl_supp_list {
	struct json_gen *jg;
	int64_t		 ttl;
	size_t		 n, limit; /* limit 0: all */
	bool		 more;	   /* stopped at the limit */
	bool		 jsonl;	   /* export: one object a line */
};

static int
ctl_supp_list_cb(const struct spool_permfail *pf, void *arg)
{
	struct ctl_supp_list *l = arg;
	const char	     *s;
	size_t		      len;

	if (ctl_out_broken())
		return EPIPE;
	if (l->limit != 0 && l->n == l->limit) {
		l->more = true;
		return 1;
	}
	l->n++;
	if (l->jg == NULL) {
		ctl_supp_line(pf);
		return 0;
	}
	/* one object at a time: memory stays flat however long the list */
	json_gen_clear(l->jg);
	ctl_supp_json(l->jg, pf, l->ttl);
	if (l->jsonl)
		ctl_json_print(l->jg);
	else {
		s = json_gen_result(l->jg, &len);
		(void)fputs(l->n == 1 ? "[" : ",", stdout);
		(void)fwrite(s, 1, len, stdout);
	}
	return 0;
}

static size_t
ctl_supp_limit(const char *s)
{
	char	 *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end != '\0' || errno != 0 || v < 0)
		ctl_usage(
		    "suppression list: --limit %s: not a number (0: no limit)",
		    s);
	return (size_t)v;
}

/* Walks the entries (of login, or all) after `after` into l. */
static void
ctl_supp_walk(struct ctl *ctl, const char *login, const char *after,
    struct ctl_supp_list *l)
{
	struct spool_txn *txn;
	int		  rc;

	txn = ctl_begin(ctl, false);
	if (login != NULL)
		ctl_need_account(txn, login);
	rc = spool_permfail_iter(txn, login, after, ctl_supp_list_cb, l);
	spool_abort(&txn);
	if (rc == EPIPE)
		exit(ctl_out_status(CTL_OK));
	if (rc != 0 && rc != 1)
		ctl_die_rc(rc, "suppression list");
}

static int
ctl_supp_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "account", required_argument,
						NULL, 'a' },
		{ "limit", required_argument, NULL, 'n' },
		{ "after", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	struct ctl_supp_list	   l = { .limit = CTL_SUPP_LIMIT };
	const char		  *login = NULL, *after = NULL;
	bool			   json = false;
	int			   ch;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (ch == 'a')
			login = optarg;
		else if (ch == 'n')
			l.limit = ctl_supp_limit(optarg);
		else if (ch == 'f')
			after = optarg;
		else
			json = true;
	}
	ctl_operands(argc, argv, 0, 0, NULL);
	if (after != NULL && login == NULL)
		ctl_usage("suppression list: --after needs --account");
	l.ttl = (int64_t)ctl->cf->cf_suppression_ttl;
	if (json)
		l.jg = json_gen_new(false);
	ctl_supp_walk(ctl, login, after, &l);
	if (l.jg != NULL) {
		(void)fputs(l.n == 0 ? "[]\n" : "]\n", stdout);
		json_gen_free(&l.jg);
	} else if (l.n == 0)
		printf("no suppressed addresses\n");
	if (l.more)
		ctl_warn(
		    "suppression list: only the first %zu shown (--limit 0 "
		    "lists all; "
		    "--account A --after ADDRESS pages; export writes all)",
		    l.n);
	return CTL_OK;
}

static int
ctl_supp_export(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "account", required_argument,
						NULL, 'a' },
		{ "json", no_argument, NULL,
		    'j' }, /* accepted: always JSON lines */
		{ NULL, 0, NULL, 0 } };
	struct ctl_supp_list	   l = { .limit = 0, .jsonl = true };
	const char		  *login = NULL;
	int			   ch;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1)
		if (ch == 'a')
			login = optarg;
	ctl_operands(argc, argv, 0, 0, NULL);
	l.ttl = (int64_t)ctl->cf->cf_suppression_ttl;
	l.jg = json_gen_new(false);
	ctl_supp_walk(ctl, login, NULL, &l);
	json_gen_free(&l.jg);
	return CTL_OK;
}

/* ---- show and del: one account, or every account (by account) */

struct ctl_supp_acct {
	char (*login)[SPOOL_LOGIN_MAX];
	size_t n;
};

static int
ctl_supp_acct_cb(const struct spool_account *sa, void *arg)
{
	struct ctl_supp_acct *a = arg;

	a->login = xreallocarray(a->login, a->n + 1, sizeof(*a->login));
	(void)str_copy(a->login[a->n++], SPOOL_LOGIN_MAX, sa->ac_login);
	return 0;
}

/* The accounts to look in: login, or all of them. */
static void
ctl_supp_accounts(struct spool_txn *txn, const char *login,
    struct ctl_supp_acct *a)
{
	int rc;

	memset(a, 0, sizeof(*a));
	if (login != NULL) {
		ctl_need_account(txn, login);
		a->login = xcalloc(1, sizeof(*a->login));
		(void)str_copy(a->login[a->n++], SPOOL_LOGIN_MAX, login);
	} else if ((rc = spool_account_iter(txn, ctl_supp_acct_cb, a)) != 0)
		ctl_die_rc(rc, "accounts");
}

/* `suppression add` takes --reason too (the table from its first entry). */
static const struct option ctl_supp_lo[] = { { "reason", required_argument,
						 NULL, 'r' },
	{ "account", required_argument, NULL, 'a' },
	{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };

/* --account, --json and (reason_r not NULL) --reason; one operand. */
static const char *
ctl_supp_opts(int argc, char **argv, const char **reason_r, bool *json_r)
{
	const struct option *lo = reason_r != NULL ? ctl_supp_lo
						   : ctl_supp_lo + 1;
	const char	    *login = NULL;
	int		     ch;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (ch == 'a')
			login = optarg;
		else if (ch == 'r')
			*reason_r = optarg;
		else
			*json_r = true;
	}
	ctl_operands(argc, argv, 1, 1, NULL);
	return login;
}

static const char *
ctl_supp_addr_opts(int argc, char **argv, const char *cmd, bool *json_r)
{
	const char *login = ctl_supp_opts(argc, argv, NULL, json_r);

	ctl_supp_need_addr(cmd, argv[optind]);
	return login;
}

static int
ctl_supp_show(struct ctl *ctl, int argc, char **argv)
{
	struct spool_txn      *txn;
	struct spool_permfail *pf;
	struct ctl_supp_acct   a;
	struct json_gen	      *jg = NULL;
	const char	      *login, *addr;
	bool		       json = false;
	size_t		       i, n = 0;
	int		       rc;

	login = ctl_supp_addr_opts(argc, argv, "show", &json);
	addr = argv[optind];
	pf = xmalloc(sizeof(*pf));
	if (json) {
		jg = json_gen_new(false);
		json_arr_begin(jg);
	}
	txn = ctl_begin(ctl, false);
	ctl_supp_accounts(txn, login, &a);
	for (i = 0; i < a.n; i++) {
		if ((rc = spool_permfail_get(txn, a.login[i], addr, pf)) ==
		    SPOOL_ENOTFOUND)
			continue;
		if (rc != 0)
			ctl_die_rc(rc, "suppression %s of %s", addr,
			    a.login[i]);
		if (jg != NULL)
			ctl_supp_json(jg, pf,
			    (int64_t)ctl->cf->cf_suppression_ttl);
		else
			ctl_supp_show_text(pf,
			    (int64_t)ctl->cf->cf_suppression_ttl);
		n++;
	}
	spool_abort(&txn);
	free(a.login);
	free(pf);
	if (n == 0) {
		json_gen_free(&jg);
		ctl_die("%s is not suppressed%s%s (spoolctl suppression list "
			"shows what is)",
		    addr, login ? " for " : "", login ? login : "");
	}
	if (jg != NULL) {
		json_arr_end(jg);
		ctl_json_print(jg);
		json_gen_free(&jg);
	}
	return CTL_OK;
}

static void
ctl_supp_del_print(const char *addr, const struct ctl_supp_acct *a,
    const bool *gone, size_t n, bool json)
{
	struct json_gen *jg;
	size_t		 i;

	if (!json) {
		printf("suppression: deleted %s from %zu account%s\n", addr, n,
		    n == 1 ? "" : "s");
		return;
	}
	jg = json_gen_new(false);
	json_obj_begin(jg);
	json_kv_str(jg, "address", addr);
	json_key(jg, "accounts");
	json_arr_begin(jg);
	for (i = 0; i < a->n; i++)
		if (gone[i])
			json_str(jg, a->login[i]);
	json_arr_end(jg);
	json_obj_end(jg);
	ctl_json_print(jg);
	json_gen_free(&jg);
}

static int
ctl_supp_del(struct ctl *ctl, int argc, char **argv)
{
	struct spool_txn    *txn;
	struct ctl_supp_acct a;
	const char	    *login, *addr;
	bool		    *gone, json = false;
	size_t		     i, n = 0;
	int		     rc;

	login = ctl_supp_addr_opts(argc, argv, "del", &json);
	addr = argv[optind];
	txn = ctl_begin(ctl, true);
	ctl_supp_accounts(txn, login, &a);
	gone = xcalloc(a.n + 1, sizeof(*gone));
	for (i = 0; i < a.n; i++) {
		if ((rc = spool_permfail_del(txn, a.login[i], addr)) ==
		    SPOOL_ENOTFOUND)
			continue;
		if (rc != 0)
			ctl_die_rc(rc, "suppression %s of %s", addr,
			    a.login[i]);
		gone[i] = true;
		n++;
	}
	if (n == 0)
		ctl_die("%s is not suppressed%s%s (spoolctl suppression list "
			"shows what is)",
		    addr, login ? " for " : "", login ? login : "");
	ctl_commit(&txn);
	ctl_supp_del_print(addr, &a, gone, n, json);
	free(gone);
	free(a.login);
	return CTL_OK;
}

/* ---- add */

/* Reads addresses from stdin, one a line (blank lines and #comments
 * skipped); all are checked before anything changes. NUL-separated. */
static size_t
ctl_supp_read_stdin(struct buf *out)
{
	struct buf in;
	char	   chunk[65536];
	size_t	   n, got;

	buf_init(&in, CTL_SUPP_STDIN_MAX);
	while ((got = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (buf_append(&in, chunk, got) == -1)
			ctl_die("suppression add: standard input is too large");
	if (ferror(stdin))
		ctl_die("suppression add: reading standard input: %s",
		    strerror(errno));
	n = ctl_addr_lines(in.data, in.len, out, "suppression add: line ",
	    "suppression add: standard input is too large");
	buf_release(&in);
	return n;
}

static const char *
ctl_supp_add_opts(int argc, char **argv, const char **reason_r, bool *json_r)
{
	const char *login;

	*reason_r = "manual";
	login = ctl_supp_opts(argc, argv, reason_r, json_r);
	if (login == NULL)
		ctl_usage("suppression add: --account is required");
	if (strcmp(*reason_r, "manual") != 0 &&
	    bounce_cat_parse(*reason_r) == BOUNCE_NONE)
		ctl_usage(
		    "suppression add: --reason %s: \"manual\" or a category "
		    "(bad-mailbox, bad-domain, inactive-mailbox, ...; see "
		    "spoolctl(8))",
		    *reason_r);
	if (strcmp(argv[optind], "-") != 0)
		ctl_supp_need_addr("add", argv[optind]);
	return login;
}

static void
ctl_supp_add_print(const char *login, const char *reason, const char *one,
    size_t n, bool json)
{
	struct json_gen *jg;

	if (json) {
		jg = json_gen_new(false);
		json_obj_begin(jg);
		json_kv_str(jg, "account", login);
		json_kv_str(jg, "reason", reason);
		json_kv_int(jg, "added", (int64_t)n);
		json_obj_end(jg);
		ctl_json_print(jg);
		json_gen_free(&jg);
	} else if (one != NULL)
		printf("suppression %s: added %s (%s)\n", login, one, reason);
	else
		printf("suppression %s: added %zu address%s (%s)\n", login, n,
		    n == 1 ? "" : "es", reason);
}

static int
ctl_supp_put(struct spool_txn *txn, const char *login, const char *addr,
    void *arg)
{
	struct spool_permfail *pf = arg;

	(void)login; /* pf_login */
	(void)str_copy(pf->pf_addr, sizeof(pf->pf_addr), addr);
	str_lower(pf->pf_addr);
	return spool_permfail_set(txn, pf);
}

static int
ctl_supp_add(struct ctl *ctl, int argc, char **argv)
{
	struct spool_permfail *pf;
	struct buf	       addrs;
	const char	      *login, *reason;
	bool		       json = false, in = false;
	size_t		       n;

	login = ctl_supp_add_opts(argc, argv, &reason, &json);
	buf_init(&addrs, CTL_SUPP_STDIN_MAX);
	if ((in = strcmp(argv[optind], "-") == 0))
		n = ctl_supp_read_stdin(&addrs);
	else {
		(void)buf_append(&addrs, argv[optind],
		    strlen(argv[optind]) + 1);
		n = 1;
	}
	pf = xcalloc(1, sizeof(*pf));
	(void)str_copy(pf->pf_login, sizeof(pf->pf_login), login);
	(void)str_copy(pf->pf_reason, sizeof(pf->pf_reason), reason);
	pf->pf_when = ctl->now;
	/* short write transactions; adding again refreshes date and reason */
	ctl_addrs_add(ctl, login, &addrs, n, ctl_supp_put, pf, "suppression");
	ctl_supp_add_print(login, reason, in ? NULL : argv[optind], n, json);
	free(pf);
	buf_release(&addrs);
	return CTL_OK;
}

int
ctl_cmd_suppression(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_cmd cmds[] = { { .name = "list",
						   .fn = ctl_supp_list },
		{ .name = "show", .fn = ctl_supp_show },
		{ .name = "add", .fn = ctl_supp_add },
		{ .name = "del", .fn = ctl_supp_del },
		{ .name = "export", .fn = ctl_supp_export },
		{ .name = NULL, .fn = NULL } };

	return ctl_dispatch(ctl, cmds, argc, argv, NULL);
}
