/*
 * spoolctl_policy: sender, dkim, stoplist and issue block|unblock
 * (CONTRACT "Accounts and policy"). DKIM keys are checked with pkey,
 * copied into spool_dir/keys/ (0600, deliverd_user) while still root, and
 * only their file name goes into LMDB.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fsx.h"
#include "json.h"
#include "pkey.h"
#include "priv.h"
#include "spool_cluster.h"
#include "spoolctl.h"
#include "xmem.h"

/* ---- sender */

typedef int ctl_fn(struct ctl *, int, char **);

static int
ctl_sender_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "status", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 }
	};
	enum spool_sender_status st = 0;
	struct spool_txn	*txn;
	const char		*login, *key;
	int			 ch, rc;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		if (strcmp(optarg, "approved") == 0)
			st = SPOOL_SENDER_APPROVED;
		else if (strcmp(optarg, "onmoderation") == 0)
			st = SPOOL_SENDER_ONMODERATION;
		else if (strcmp(optarg, "prohibited") == 0)
			st = SPOOL_SENDER_PROHIBITED;
		else
			ctl_usage("sender add: --status is approved, "
				  "onmoderation or prohibited");
	}
	ctl_operands(argc, argv, 2, 2, NULL);
	if (st == 0)
		ctl_usage_syn(NULL);
	login = argv[optind];
	key = argv[optind + 1];
	if (key[0] == '@' ? !ctl_domain_ok(key + 1) : !ctl_addr_ok(key))
		ctl_usage("sender add: \"%s\" is not an address or @domain",
		    key);
	txn = ctl_begin(ctl, true);
	ctl_need_account(txn, login);
	if ((rc = spool_sender_put(txn, login, key, st)) != 0)
		ctl_die_rc(rc, "sender %s", key);
	ctl_commit(&txn);
	printf("sender %s of %s: %s\n", key, login,
	    spool_sender_status_name(st));
	return CTL_OK;
}

/* add|del|list of an account's list: `sender`, `stoplist`. */
static int
ctl_part_dispatch(struct ctl *ctl, int argc, char **argv, ctl_fn *add,
    ctl_fn *del, ctl_fn *list)
{
	const struct ctl_cmd cmds[] = { { .name = "add", .fn = add },
		{ .name = "del", .fn = del }, { .name = "list", .fn = list },
		{ .name = NULL, .fn = NULL } };

	return ctl_dispatch(ctl, cmds, argc, argv, NULL);
}

/*
 * `sender del` and `stoplist del` LOGIN KEY: del removes KEY from LOGIN's
 * list (the account must exist) and the change is committed. Returns 0, or
 * SPOOL_ENOTFOUND (nothing changed) for the caller to explain.
 */
static int
ctl_part_del(struct ctl *ctl, int argc, char **argv,
    int (*del)(struct spool_txn *, const char *, const char *),
    const char *what)
{
	struct spool_txn *txn;
	int		  rc;

	ctl_no_options(argc, argv, 2, 2, NULL);
	txn = ctl_begin(ctl, true);
	ctl_need_account(txn, argv[optind]);
	if ((rc = del(txn, argv[optind], argv[optind + 1])) ==
	    SPOOL_ENOTFOUND) {
		spool_abort(&txn);
		return rc;
	}
	if (rc != 0)
		ctl_die_rc(rc, "%s %s", what, argv[optind + 1]);
	ctl_commit(&txn);
	return 0;
}

static int
ctl_sender_del(struct ctl *ctl, int argc, char **argv)
{
	if (ctl_part_del(ctl, argc, argv, spool_sender_del, "sender") != 0)
		ctl_die("no sender %s for account %s (spoolctl sender list %s "
			"shows them)",
		    argv[optind + 1], argv[optind], argv[optind]);
	printf("sender %s of %s deleted\n", argv[optind + 1], argv[optind]);
	return CTL_OK;
}

struct ctl_list {
	struct json_gen *jg;
	size_t		 n;
};

static int
ctl_sender_list_cb(const char *key, enum spool_sender_status st, void *arg)
{
	struct ctl_list *l = arg;

	l->n++;
	if (l->jg != NULL) {
		json_obj_begin(l->jg);
		json_kv_str(l->jg, "sender", key);
		json_kv_str(l->jg, "status", spool_sender_status_name(st));
		json_obj_end(l->jg);
	} else
		printf("%s %s\n", key, spool_sender_status_name(st));
	return 0;
}

static int
ctl_sender_iter(struct spool_txn *txn, const char *login, struct ctl_list *l)
{
	return spool_sender_iter(txn, login, ctl_sender_list_cb, l);
}

static void
ctl_list_begin(struct ctl_list *l, bool json)
{
	l->n = 0;
	l->jg = NULL;
	if (json) {
		l->jg = json_gen_new(false);
		json_arr_begin(l->jg);
	}
}

static void
ctl_list_end(struct ctl_list *l, const char *none)
{
	if (l->jg != NULL) {
		json_arr_end(l->jg);
		ctl_json_print(l->jg);
		json_gen_free(&l->jg);
	} else if (l->n == 0)
		printf("%s\n", none);
}

/* Lists an account's entries through iter: `sender list`, `stoplist list`. */
static int
ctl_list_account(struct ctl *ctl, int argc, char **argv,
    int (*iter)(struct spool_txn *, const char *, struct ctl_list *),
    const char *what, const char *none)
{
	struct spool_txn *txn;
	struct ctl_list	  l;
	int		  rc;

	ctl_list_begin(&l, ctl_want_json(argc, argv, NULL, 1, 1));
	txn = ctl_begin(ctl, false);
	ctl_need_account(txn, argv[optind]);
	if ((rc = iter(txn, argv[optind], &l)) != 0)
		ctl_die_rc(rc, "%s", what);
	spool_abort(&txn);
	ctl_list_end(&l, none);
	return CTL_OK;
}

static int
ctl_sender_list(struct ctl *ctl, int argc, char **argv)
{
	return ctl_list_account(ctl, argc, argv, ctl_sender_iter, "senders",
	    "no senders");
}

int
ctl_cmd_sender(struct ctl *ctl, int argc, char **argv)
{
	return ctl_part_dispatch(ctl, argc, argv, ctl_sender_add,
	    ctl_sender_del, ctl_sender_list);
}

/* ---- dkim */

static bool
ctl_selector_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) >= 64)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* keys/<login>_<domain>_<selector>.pem, with anything odd made '_'. */
static void
ctl_keyfile_name(char *dst, size_t dstsz, const char *login, const char *domain,
    const char *sel)
{
	size_t i;

	if (str_printf(dst, dstsz, "%s_%s_%s.pem", login, domain, sel) == -1)
		ctl_usage("dkim add: login, domain and selector too long");
	for (i = 0; dst[i] != '\0'; i++)
		if (!isalnum((unsigned char)dst[i]) &&
		    strchr("@.-_", dst[i]) == NULL)
			dst[i] = '_';
}

/*
 * Copies the key into keys/ as root or as the current user. keys/ belongs
 * to deliverd_user, so root works only through the directory's descriptor
 * (no link followed below spool_dir) and a fresh O_EXCL temporary that gets
 * its owner before the rename: nothing planted there is written or chowned.
 */
static void
ctl_key_install(struct ctl *ctl, const char *name, const char *pem, size_t len)
{
	const char *spool = ctl->cf->cf_spool_dir;
	uid_t	    uid = (uid_t)-1;
	gid_t	    gid = (gid_t)-1;
	int	    dfd;

	ctl_tree_create(ctl);
	if (priv_is_root() &&
	    priv_lookup(ctl->cf->cf_deliverd_user, &uid, &gid) == -1)
		ctl_die("unknown deliverd_user %s", ctl->cf->cf_deliverd_user);
	if ((dfd = spool_area_open(spool, SPOOL_KEYS)) == -1 &&
	    (errno == ELOOP || errno == ENOTDIR))
		ctl_die(
		    "spool tree: refusing %s/keys: it is a symbolic link or "
		    "not a directory",
		    spool);
	if (dfd == -1)
		ctl_die("open %s/keys: %s", spool, strerror(errno));
	if (fsx_write_durable_at(dfd, name, pem, len, 0600, uid, gid) == -1)
		ctl_die("write %s/keys/%s: %s", spool, name, strerror(errno));
	(void)close(dfd); /* fsync'ed by fsx_write_durable_at */
}

struct ctl_dkim_default {
	struct spool_dkim  keep;
	struct spool_dkim *others;
	size_t		   n;
};

static int
ctl_dkim_collect_cb(const struct spool_dkim *sd, void *arg)
{
	struct ctl_dkim_default *dd = arg;

	if (!sd->dk_default ||
	    (strcmp(sd->dk_domain, dd->keep.dk_domain) == 0 &&
		strcmp(sd->dk_selector, dd->keep.dk_selector) == 0))
		return 0;
	dd->others = xreallocarray(dd->others, dd->n + 1, sizeof(*dd->others));
	dd->others[dd->n++] = *sd;
	return 0;
}

/* --default: this key becomes the account's only default. */
static void
ctl_dkim_clear_defaults(struct spool_txn *txn, const struct spool_dkim *sd)
{
	struct ctl_dkim_default dd = { .keep = *sd, .others = NULL, .n = 0 };
	size_t			i;
	int			rc;

	if ((rc = spool_dkim_iter(txn, sd->dk_login, NULL, ctl_dkim_collect_cb,
		 &dd)) != 0)
		ctl_die_rc(rc, "dkim keys of %s", sd->dk_login);
	for (i = 0; i < dd.n; i++) {
		dd.others[i].dk_default = false;
		if ((rc = spool_dkim_put(txn, &dd.others[i])) != 0)
			ctl_die_rc(rc, "dkim %s", dd.others[i].dk_domain);
	}
	free(dd.others);
}

/* Reads and checks the key; the PEM text is returned for copying. */
static char *
ctl_dkim_read_key(const char *file, struct pkey_info *pi, size_t *len_r)
{
	char *pem, err[256];

	if (fsx_read_file(file, PKEY_PEM_MAX, &pem, len_r) == -1)
		ctl_die("dkim add: cannot read key %s: %s%s", file,
		    errno == EMSGSIZE || errno == EFBIG ? "file too large"
							: strerror(errno),
		    ctl_file_hint(errno));
	if (pkey_inspect(pem, *len_r, pi, err, sizeof(err)) == -1) {
		freezero(pem, *len_r);
		ctl_die("dkim add: key %s: %s", file, err);
	}
	return pem;
}

/* Options and operands of `dkim add` into sd; returns the key file. */
static const char *
ctl_dkim_add_opts(int argc, char **argv, struct spool_dkim *sd)
{
	static const struct option lo[] = { { "selector", required_argument,
						NULL, 's' },
		{ "key", required_argument, NULL, 'k' },
		{ "default", no_argument, NULL, 'd' }, { NULL, 0, NULL, 0 } };
	const char		  *sel = NULL, *keyfile = NULL;
	int			   ch;

	memset(sd, 0, sizeof(*sd));
	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		switch (ch) {
		case 's':
			sel = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'd':
			sd->dk_default = true;
			break;
		}
	}
	ctl_operands(argc, argv, 2, 2, NULL);
	if (sel == NULL || keyfile == NULL)
		ctl_usage_syn(NULL);
	if (!ctl_login_ok(argv[optind]))
		ctl_usage("dkim add: bad login \"%s\"", argv[optind]);
	if (!ctl_domain_ok(argv[optind + 1]))
		ctl_usage("dkim add: bad domain \"%s\"", argv[optind + 1]);
	if (!ctl_selector_ok(sel))
		ctl_usage("dkim add: bad selector \"%s\"", sel);
	(void)str_copy(sd->dk_login, sizeof(sd->dk_login), argv[optind]);
	(void)str_copy(sd->dk_domain, sizeof(sd->dk_domain), argv[optind + 1]);
	str_lower(sd->dk_domain);
	(void)str_copy(sd->dk_selector, sizeof(sd->dk_selector), sel);
	return keyfile;
}

static int
ctl_dkim_add(struct ctl *ctl, int argc, char **argv)
{
	struct spool_dkim sd;
	struct spool_txn *txn;
	struct pkey_info  pi;
	struct buf	  zone;
	const char	 *keyfile;
	char		 *pem;
	size_t		  len;
	int		  rc;

	keyfile = ctl_dkim_add_opts(argc, argv, &sd);
	pem = ctl_dkim_read_key(keyfile, &pi, &len);
	sd.dk_alg = pi.pk_alg == PKEY_ED25519 ? SPOOL_DKIM_ED25519
					      : SPOOL_DKIM_RSA;
	sd.dk_created = ctl->now;
	ctl_keyfile_name(sd.dk_keyfile, sizeof(sd.dk_keyfile), sd.dk_login,
	    sd.dk_domain, sd.dk_selector);
	/* copied in while still root (keys/ belongs to deliverd_user) */
	ctl_key_install(ctl, sd.dk_keyfile, pem, len);

	txn = ctl_begin(ctl, true);
	if ((rc = spool_account_get(txn, sd.dk_login,
		 &(struct spool_account){ 0 })) != 0) {
		spool_abort(&txn);
		(void)spool_unlink(ctl->cf->cf_spool_dir, SPOOL_KEYS,
		    sd.dk_keyfile);
		if (rc == SPOOL_ENOTFOUND)
			ctl_die(CTL_NO_ACCOUNT, sd.dk_login);
		ctl_die_rc(rc, "account %s", sd.dk_login);
	}
	if ((rc = spool_dkim_put(txn, &sd)) != 0 ||
	    (rc = spool_dkim_key_journal(txn, sd.dk_keyfile, pem, len)) != 0)
		ctl_die_rc(rc, "dkim %s", sd.dk_domain);
	freezero(pem, len); /* in the cluster journal now, if it has one */
	if (sd.dk_default)
		ctl_dkim_clear_defaults(txn, &sd);
	ctl_commit(&txn);

	buf_init(&zone, 1 << 16);
	if (pkey_txt_zone(&pi, sd.dk_selector, sd.dk_domain, &zone) == -1)
		ctl_die("dkim add: TXT record too long");
	printf("dkim key added for %s: domain %s, selector %s, %s %d bits%s, "
	       "file keys/%s\n"
	       "publish this DNS record:\n%s\n",
	    sd.dk_login, sd.dk_domain, sd.dk_selector, pkey_alg_name(pi.pk_alg),
	    pi.pk_bits, sd.dk_default ? ", default" : "", sd.dk_keyfile,
	    zone.data);
	buf_release(&zone);
	return CTL_OK;
}

static int
ctl_dkim_list_cb(const struct spool_dkim *sd, void *arg)
{
	struct ctl_list *l = arg;
	const char *alg = sd->dk_alg == SPOOL_DKIM_ED25519 ? "ed25519" : "rsa";

	l->n++;
	if (l->jg == NULL) {
		printf("%s selector %s %s%s keys/%s\n", sd->dk_domain,
		    sd->dk_selector, alg, sd->dk_default ? " default" : "",
		    sd->dk_keyfile);
		return 0;
	}
	json_obj_begin(l->jg);
	json_kv_str(l->jg, "domain", sd->dk_domain);
	json_kv_str(l->jg, "selector", sd->dk_selector);
	json_kv_str(l->jg, "alg", alg);
	json_kv_bool(l->jg, "default", sd->dk_default);
	json_kv_str(l->jg, "keyfile", sd->dk_keyfile);
	json_kv_int(l->jg, "created", sd->dk_created);
	json_obj_end(l->jg);
	return 0;
}

static int
ctl_dkim_list(struct ctl *ctl, int argc, char **argv)
{
	struct spool_txn *txn;
	struct ctl_list	  l;
	int		  rc;

	ctl_list_begin(&l, ctl_want_json(argc, argv, NULL, 1, 1));
	txn = ctl_begin(ctl, false);
	ctl_need_account(txn, argv[optind]);
	if ((rc = spool_dkim_iter(txn, argv[optind], NULL, ctl_dkim_list_cb,
		 &l)) != 0)
		ctl_die_rc(rc, "dkim keys");
	spool_abort(&txn);
	ctl_list_end(&l, "no dkim keys");
	return CTL_OK;
}

struct ctl_dkim_del {
	const char *selector;
	struct buf  files;
	size_t	    n;
};

static int
ctl_dkim_del_cb(const struct spool_dkim *sd, void *arg)
{
	struct ctl_dkim_del *dd = arg;

	if (dd->selector != NULL && strcmp(dd->selector, sd->dk_selector) != 0)
		return 0;
	dd->n++;
	(void)buf_append(&dd->files, sd->dk_keyfile,
	    strlen(sd->dk_keyfile) + 1);
	return 0;
}

static int
ctl_dkim_del(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "selector", required_argument,
						NULL, 's' },
		{ NULL, 0, NULL, 0 } };
	struct ctl_dkim_del	   dd = { .selector = NULL };
	struct spool_txn	  *txn;
	char			   domain[SPOOL_DOMAIN_MAX];
	size_t			   off;
	int			   rc;

	while (ctl_getopt(argc, argv, lo) != -1)
		dd.selector = optarg;
	ctl_operands(argc, argv, 2, 2, NULL);
	if (str_copy(domain, sizeof(domain), argv[optind + 1]) == -1)
		ctl_usage("dkim del: domain too long");
	str_lower(domain);
	buf_init(&dd.files, 1 << 20);
	txn = ctl_begin(ctl, true);
	ctl_need_account(txn, argv[optind]);
	(void)spool_dkim_iter(txn, argv[optind], domain, ctl_dkim_del_cb, &dd);
	if (dd.n == 0)
		ctl_die("no dkim key for %s domain %s%s%s (spoolctl dkim list "
			"%s shows them)",
		    argv[optind], domain, dd.selector ? " selector " : "",
		    dd.selector ? dd.selector : "", argv[optind]);
	if ((rc = spool_dkim_del(txn, argv[optind], domain, dd.selector)) != 0)
		ctl_die_rc(rc, "dkim del %s", domain);
	for (off = 0; off < dd.files.len;
	     off += strlen(dd.files.data + off) + 1)
		if ((rc = spool_dkim_key_journal(txn, dd.files.data + off, NULL,
			 0)) != 0)
			ctl_die_rc(rc, "dkim del %s", domain);
	ctl_commit(&txn);
	for (off = 0; off < dd.files.len;
	     off += strlen(dd.files.data + off) + 1)
		(void)spool_unlink(ctl->cf->cf_spool_dir, SPOOL_KEYS,
		    dd.files.data + off);
	buf_release(&dd.files);
	printf("dkim: deleted %zu key%s of %s domain %s\n", dd.n,
	    dd.n == 1 ? "" : "s", argv[optind], domain);
	return CTL_OK;
}

int
ctl_cmd_dkim(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_cmd cmds[] = { { .name = "add",
						   .fn = ctl_dkim_add },
		{ .name = "list", .fn = ctl_dkim_list },
		{ .name = "del", .fn = ctl_dkim_del },
		{ .name = NULL, .fn = NULL } };

	return ctl_dispatch(ctl, cmds, argc, argv, NULL);
}

/* ---- stoplist */

/* Reads F: one address a line, blank lines and #comments skipped. All
 * lines are checked before anything changes. Returns NUL-separated. */
static size_t
ctl_stop_read_file(const char *file, struct buf *out)
{
	char  *data, where[4200], toobig[4200];
	size_t len, n;

	if (fsx_read_file(file, 256 << 20, &data, &len) == -1)
		ctl_die("stoplist add: cannot read %s: %s%s", file,
		    strerror(errno), ctl_file_hint(errno));
	(void)snprintf(where, sizeof(where), "stoplist add: %s:", file);
	(void)snprintf(toobig, sizeof(toobig), "stoplist add: %s: too large",
	    file);
	n = ctl_addr_lines(data, len, out, where, toobig);
	free(data);
	return n;
}

/* Already listed is fine. */
static int
ctl_stop_put(struct spool_txn *txn, const char *login, const char *addr,
    void *arg)
{
	struct spool_stopent se;
	int		     rc;

	(void)arg;
	memset(&se, 0, sizeof(se));
	(void)str_copy(se.se_reason, sizeof(se.se_reason), "manual");
	se.se_when = (int64_t)time(NULL);
	rc = spool_stop_put_why(txn, login, addr, &se);
	return rc == SPOOL_EEXIST ? 0 : rc;
}

static int
ctl_stop_add(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "file", required_argument, NULL, 'f' }, { NULL, 0, NULL, 0 }
	};
	struct buf  addrs;
	const char *file = NULL, *login;
	size_t	    n;

	while (ctl_getopt(argc, argv, lo) != -1)
		file = optarg;
	ctl_operands(argc, argv, file ? 1 : 2, file ? 1 : 2, NULL);
	login = argv[optind];
	buf_init(&addrs, (size_t)300 << 20);
	if (file != NULL)
		n = ctl_stop_read_file(file, &addrs);
	else {
		if (!ctl_addr_ok(argv[optind + 1]))
			ctl_usage("stoplist add: \"%s\" is not an address",
			    argv[optind + 1]);
		(void)buf_append(&addrs, argv[optind + 1],
		    strlen(argv[optind + 1]) + 1);
		n = 1;
	}
	/* short write transactions: commit every 10,000 addresses */
	ctl_addrs_add(ctl, login, &addrs, n, ctl_stop_put, NULL, "stoplist");
	buf_release(&addrs);
	if (file == NULL)
		printf("stoplist %s: added %s\n", login, argv[optind + 1]);
	else
		printf("stoplist %s: added %zu address%s from %s\n", login, n,
		    n == 1 ? "" : "es", file);
	return CTL_OK;
}

static int
ctl_stop_del(struct ctl *ctl, int argc, char **argv)
{
	if (ctl_part_del(ctl, argc, argv, spool_stop_del, "stoplist") != 0)
		ctl_die("%s is not in the stoplist of %s (spoolctl stoplist "
			"list %s shows it)",
		    argv[optind + 1], argv[optind], argv[optind]);
	printf("stoplist %s: deleted %s\n", argv[optind], argv[optind + 1]);
	return CTL_OK;
}

static int
ctl_stop_list_cb(const char *addr, void *arg)
{
	struct ctl_list *l = arg;

	l->n++;
	if (l->jg != NULL)
		json_str(l->jg, addr);
	else
		printf("%s\n", addr);
	return 0;
}

static int
ctl_stop_iter(struct spool_txn *txn, const char *login, struct ctl_list *l)
{
	return spool_stop_iter(txn, login, ctl_stop_list_cb, l);
}

static int
ctl_stop_list(struct ctl *ctl, int argc, char **argv)
{
	return ctl_list_account(ctl, argc, argv, ctl_stop_iter, "stoplist",
	    "stoplist is empty");
}

int
ctl_cmd_stoplist(struct ctl *ctl, int argc, char **argv)
{
	const struct ctl_cmd cmds[] = { { .name = "add", .fn = ctl_stop_add },
		{ .name = "del", .fn = ctl_stop_del },
		{ .name = "list", .fn = ctl_stop_list },
		{ .name = "show", .fn = ctl_stop_show },
		{ .name = NULL, .fn = NULL } };

	return ctl_dispatch(ctl, cmds, argc, argv, NULL);
}

/* ---- issue block|unblock */

static int
ctl_issue_set(struct ctl *ctl, int argc, char **argv, bool block)
{
	struct spool_issue si;
	struct spool_txn  *txn;
	char		  *end;
	unsigned long long id;
	int		   rc;

	ctl_no_options(argc, argv, 1, 1, NULL);
	errno = 0;
	id = strtoull(argv[optind], &end, 10);
	if (!isdigit((unsigned char)argv[optind][0]) || *end != '\0' ||
	    errno != 0 || id == 0)
		ctl_usage("issue: \"%s\" is not an issue id", argv[optind]);
	txn = ctl_begin(ctl, true);
	if ((rc = spool_issue_get(txn, (uint64_t)id, &si)) == SPOOL_ENOTFOUND)
		ctl_die("no issue %llu (spoolctl issues lists them)", id);
	if (rc != 0)
		ctl_die_rc(rc, "issue %llu", id);
	if ((rc = spool_issue_set_blocked(txn, &si, block)) != 0)
		ctl_die_rc(rc, "issue %llu", id);
	ctl_commit(&txn);
	printf("issue %llu (%s, %s, %s) %s\n", id, si.su_login, si.su_date,
	    si.su_has_name ? si.su_name : "no name",
	    block ? "blocked" : "unblocked");
	return CTL_OK;
}

static int
ctl_issue_block(struct ctl *ctl, int argc, char **argv)
{
	return ctl_issue_set(ctl, argc, argv, true);
}

static int
ctl_issue_unblock(struct ctl *ctl, int argc, char **argv)
{
	return ctl_issue_set(ctl, argc, argv, false);
}

int
ctl_cmd_issue(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_cmd cmds[] = { { .name = "block",
						   .fn = ctl_issue_block },
		{ .name = "unblock", .fn = ctl_issue_unblock },
		{ .name = NULL, .fn = NULL } };

	return ctl_dispatch(ctl, cmds, argc, argv, NULL);
}
