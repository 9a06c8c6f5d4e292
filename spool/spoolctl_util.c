/*
 * spoolctl_util: what every spoolctl command shares: messages and exit
 * codes, option parsing, opening the spool (after dropping root), small
 * validators, and decoding events from the delivery log.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "buf.h"
#include "conf.h"
#include "idn.h"
#include "json.h"
#include "log.h"
#include "priv.h"
#include "spool_cluster.h"
#include "spoolctl.h"
#include "trigger.h"

static void
ctl_vmsg(const char *fmt, va_list ap)
{
	(void)fflush(stdout);
	(void)fputs("spoolctl: ", stderr);
	(void)vfprintf(stderr, fmt, ap);
	(void)fputc('\n', stderr);
}

/* Every usage error ends with where to read the usage. */
void
ctl_usage(const char *fmt, ...)
{
	va_list	    ap;
	char	    msg[1024];
	const char *cur = ctl_help_cur();

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strstr(msg, "(spoolctl help") != NULL)
		ctl_warn("%s", msg);
	else
		ctl_warn("%s (spoolctl help%s%s)", msg, *cur ? " " : "", cur);
	exit(CTL_USAGE);
}

void
ctl_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_vmsg(fmt, ap);
	va_end(ap);
	exit(CTL_FAIL);
}

static const char *ctl_group = "smtpgate"; /* the spool's, once known */

/* What to do about rc, as " (next step)", or "". */
static const char *
ctl_rc_hint(int rc, char *buf, size_t size)
{
	switch (rc) {
	case EACCES:
	case EPERM:
	case EROFS:
		(void)snprintf(buf, size,
		    " (run as root or as a member of group %s)", ctl_group);
		return buf;
	case ENOSPC:
	case EDQUOT:
		return " (free disk space on the spool's file system)";
	case SPOOL_EVERSION:
		return " (start spoold once to migrate it, or run the spoolctl "
		       "installed with the daemons)";
	case SPOOL_ECORRUPT:
	case SPOOL_EDB:
		return " (see the daemons' log; spoolctl -v shows more)";
	default:
		return "";
	}
}

const char *
ctl_file_hint(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return " (check the path)";
	case EACCES:
	case EPERM:
		return " (run as root, or make the file readable by you)";
	case EMSGSIZE:
	case EFBIG:
		return " (is it the right file?)";
	default:
		return "";
	}
}

void
ctl_die_rc(int rc, const char *fmt, ...)
{
	va_list ap;
	char	what[1024], hint[128];

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (rc == SPOOL_EFULL)
		ctl_retry_full();
	ctl_die("%s: %s%s", what, spool_strerror(rc),
	    ctl_rc_hint(rc, hint, sizeof(hint)));
}

bool
ctl_out_broken(void)
{
	return ferror(stdout) != 0;
}

int
ctl_out_status(int rc)
{
	if (fflush(stdout) != EOF && !ferror(stdout))
		return rc;
	/* errno of the first failure is gone: a fresh write shows the cause */
	clearerr(stdout);
	if (fputc('\n', stdout) != EOF && fflush(stdout) != EOF)
		return rc;
	if (errno == EPIPE)
		return rc; /* the reader has all it wanted */
	ctl_warn("write to standard output: %s", strerror(errno));
	return CTL_FAIL;
}

void
ctl_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_vmsg(fmt, ap);
	va_end(ap);
}

int
ctl_getopt(int argc, char **argv, const struct option *lo)
{
	int ch, idx = 0;

	opterr = 0;
	ch = getopt_long(argc, argv, ":", lo, &idx);
	if (ch == '?')
		ctl_usage("%s: unknown option %s", ctl_help_cur(),
		    argv[optind - 1]);
	if (ch == ':')
		ctl_usage("%s: option %s needs a value", ctl_help_cur(),
		    argv[optind - 1]);
	return ch;
}

void
ctl_operands(int argc, char **argv, int min, int max, const char *synopsis)
{
	int n = argc - optind;

	if (n < min || n > max)
		ctl_usage_syn(synopsis);
}

void
ctl_usage_syn(const char *synopsis)
{
	const char *cur = ctl_help_cur(), *u = ctl_help_usage(cur);

	if (synopsis == NULL && u != NULL)
		ctl_usage("usage: spoolctl %s %s", cur, u);
	ctl_usage("usage: spoolctl %s", synopsis ? synopsis : cur);
}

bool
ctl_want_json(int argc, char **argv, const char *syn, int min, int max)
{
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 } };
	bool			   json = false;

	while (ctl_getopt(argc, argv, lo) != -1)
		json = true;
	ctl_operands(argc, argv, min, max, syn);
	return json;
}

void
ctl_no_options(int argc, char **argv, int min, int max, const char *syn)
{
	static const struct option lo[] = { { NULL, 0, NULL, 0 } };

	while (ctl_getopt(argc, argv, lo) != -1)
		;
	ctl_operands(argc, argv, min, max, syn);
}

int
ctl_dispatch(struct ctl *ctl, const struct ctl_cmd *cmds, int argc, char **argv,
    const char *synopsis)
{
	char   what[96];
	size_t i, n = 0;

	if (argc < 2 && synopsis == NULL) {
		for (i = 0; cmds[i].name != NULL; i++)
			n += (size_t)snprintf(what + n,
			    n < sizeof(what) ? sizeof(what) - n : 0, "%s%s",
			    i ? "|" : "", cmds[i].name);
		synopsis = what;
	}
	if (argc < 2)
		ctl_usage("usage: spoolctl %s %s ...", argv[0], synopsis);
	for (i = 0; cmds[i].name != NULL; i++)
		if (strcmp(argv[1], cmds[i].name) == 0) {
			optind = 0; /* glibc: restart getopt on the new vector */
			ctl_help_set(argv[0], argv[1]);
			return cmds[i].fn(ctl, argc - 1, argv + 1);
		}
	(void)snprintf(what, sizeof(what), "%s: unknown subcommand", argv[0]);
	ctl_unknown(what, argv[1], cmds, argv[0]);
}

void
ctl_tree_create(struct ctl *ctl)
{
	char why[4400], hint[128];
	int  rc;

	if ((rc = spool_tree_create_err(ctl->cf, why, sizeof(why))) != 0)
		ctl_die("spool tree: %s%s", why,
		    ctl_rc_hint(rc, hint, sizeof(hint)));
}

void
ctl_prepare(struct ctl *ctl)
{
	if (ctl->prepared)
		return;
	ctl->prepared = true;
	ctl_group = ctl->cf->cf_group;
	ctl_cluster_seal_open(ctl); /* may be root's alone: before the drop */
	if (!priv_is_root())
		return;
	/* As root: make sure the tree exists with the daemons' owners, then
	 * become spoold_user so that whatever LMDB or the event log creates
	 * belongs to the daemons, never to root. */
	ctl_tree_create(ctl);
	priv_drop(ctl->cf->cf_spoold_user, ctl->cf->cf_group, NULL);
}

/* The retry of a command whose write txn found the map full. */
static void
ctl_grow(struct ctl *ctl)
{
	struct spool_map m;

	ctl->grow = false;
	if (spool_map_grow(ctl->sp, &m))
		log_info(
		    "lmdb map grown: from=%lld, to=%lld, max=%lld; retrying",
		    (long long)m.mp_grew_from, (long long)m.mp_size,
		    (long long)m.mp_max);
	else
		ctl->grow_stuck = true;
}

struct spool_txn *
ctl_begin(struct ctl *ctl, bool write)
{
	struct spool_txn *txn;
	int		  rc;

	ctl_prepare(ctl);
	if (ctl->sp != NULL && write && !ctl->sp_write)
		spool_close(&ctl->sp);
	if (ctl->sp == NULL) {
		rc = write
		    ? -1
		    : spool_open(ctl->cf->cf_spool_dir,
			  ctl->cf->cf_lmdb_map_size, ctl->cf->cf_lmdb_map_max,
			  SPOOL_RDONLY, &ctl->sp);
		if (rc != 0) {
			/* writing, or a spool nobody has opened yet: create it */
			ctl_tree_create(ctl);
			rc = spool_open(ctl->cf->cf_spool_dir,
			    ctl->cf->cf_lmdb_map_size, ctl->cf->cf_lmdb_map_max,
			    SPOOL_CLUSTER_IF(ctl->cf->cf_cluster_dsn),
			    &ctl->sp);
			ctl->sp_write = true;
		}
		if (rc != 0)
			ctl_die_rc(rc, "open spool %s", ctl->cf->cf_spool_dir);
	}
	if (write && ctl->grow)
		ctl_grow(ctl);
	if ((rc = spool_begin(ctl->sp, write, &txn)) != 0)
		ctl_die_rc(rc, "begin %s transaction",
		    write ? "write" : "read");
	return txn;
}

void
ctl_commit(struct spool_txn **txn)
{
	int rc;

	if ((rc = spool_commit(txn)) != 0)
		ctl_die_rc(rc, "commit");
}

void
ctl_export_events(struct ctl *ctl)
{
	size_t n = 0;
	int    rc;

	if (ctl->sp == NULL)
		return;
	if ((rc = spool_events_export(ctl->sp, ctl->cf->cf_event_log, &n)) != 0)
		ctl_warn("export events to %s: %s", ctl->cf->cf_event_log,
		    spool_strerror(rc));
}

void
ctl_wake_deliverd(struct ctl *ctl)
{
	char path[4096];

	if (spool_trigger_path(path, sizeof(path), ctl->cf->cf_spool_dir) == 0)
		trigger_pull(path);
}

void
ctl_json_print(struct json_gen *jg)
{
	const char *s;
	size_t	    n;

	s = json_gen_result(jg, &n);
	(void)fwrite(s, 1, n, stdout);
	(void)fputc('\n', stdout);
}

void
ctl_time(int64_t t, char dst[20])
{
	struct tm tm;
	time_t	  tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(dst, 20, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		(void)str_copy(dst, 20, "?");
}

bool
ctl_login_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) >= SPOOL_LOGIN_MAX)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f || s[i] == '/' || s[i] == ':')
			return false;
	return true;
}

size_t
ctl_addr_lines(char *data, size_t len, struct buf *out, const char *where,
    const char *toobig)
{
	char  *line, *next, *end;
	size_t lineno = 0, n = 0;

	for (line = data; line != NULL && line < data + len; line = next) {
		lineno++;
		if ((end = memchr(line, '\n', (size_t)(data + len - line))) ==
		    NULL)
			end = data + len;
		next = end + 1;
		while (end > line && isspace((unsigned char)end[-1]))
			end--;
		while (line < end && isspace((unsigned char)*line))
			line++;
		if (line == end || *line == '#')
			continue;
		*end = '\0';
		if (!ctl_addr_ok(line))
			ctl_usage("%s%zu: \"%s\" is not an address", where,
			    lineno, line);
		if (buf_append(out, line, (size_t)(end - line) + 1) == -1)
			ctl_die("%s", toobig);
		n++;
	}
	return n;
}

void
ctl_addrs_add(struct ctl *ctl, const char *login, const struct buf *addrs,
    size_t n,
    int (*put)(struct spool_txn *, const char *login, const char *addr,
	void *arg),
    void *arg, const char *what)
{
	struct spool_txn *txn = NULL;
	const char	 *a;
	size_t		  i, off;
	int		  rc;

	for (i = 0, off = 0; i < n; i++, off += strlen(a) + 1) {
		a = addrs->data + off;
		if (txn == NULL) {
			txn = ctl_begin(ctl, true);
			ctl_need_account(txn, login);
		}
		if ((rc = put(txn, login, a, arg)) != 0)
			ctl_die_rc(rc, "%s %s", what, a);
		if (i % CTL_ADD_TXN == CTL_ADD_TXN - 1)
			ctl_commit(&txn);
	}
	if (txn != NULL)
		ctl_commit(&txn);
}

bool
ctl_domain_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= SPOOL_DOMAIN_MAX || s[0] == '.' || s[0] == '-' ||
	    s[n - 1] == '.' || strstr(s, "..") != NULL)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '.' && s[i] != '_')
			return false;
	return true;
}

/* An address's domain: a name, an address literal or (h-asupp) an
 * internationalized name (a stop list or suppression of bob@bücher.de). */
static bool
ctl_addr_domain_ok(const char *d)
{
	char   a[SPOOL_DOMAIN_MAX + 8];
	size_t n = strlen(d);

	if (d[0] == '[') /* [192.0.2.1], [IPv6:2001:db8::1] */
		return n > 2 && n < SPOOL_DOMAIN_MAX && d[n - 1] == ']' &&
		    strspn(d + 1, "0123456789abcdefABCDEF:.IPVv") == n - 2;
	if (idn_is_ascii(d))
		return ctl_domain_ok(d);
	return idn_domain_ascii(d, a, sizeof(a)) == 0 && ctl_domain_ok(a);
}

bool
ctl_addr_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	size_t	    i;

	if (at == NULL || at == s || strlen(s) >= SPOOL_ADDR_MAX ||
	    !ctl_addr_domain_ok(at + 1))
		return false;
	for (i = 0; s + i < at; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f ||
		    s[i] == '<' || s[i] == '>')
			return false;
	return true;
}

bool
ctl_qid_known(const char *qid)
{
	if (qid_ok(qid))
		return true;
	ctl_warn("no message %s (not a queue id; spoolctl queue lists them)",
	    qid);
	return false;
}

void
ctl_need_account(struct spool_txn *txn, const char *login)
{
	struct spool_account *sa;
	int		      rc;

	sa = calloc(1, sizeof(*sa));
	if (sa == NULL)
		ctl_die("out of memory");
	rc = spool_account_get(txn, login, sa);
	free(sa);
	if (rc == SPOOL_ENOTFOUND)
		ctl_die(CTL_NO_ACCOUNT, login);
	if (rc != 0)
		ctl_die_rc(rc, "account %s", login);
}

/* ---- events */

static const char *
ctl_ev_str(const struct json_val *obj, const char *key)
{
	return json_string(json_get(obj, key));
}

int
ctl_event_parse(const char *json, size_t len, struct ctl_event *ev)
{
	const struct json_val *issue, *gate;
	char		      *copy, err[128];
	int64_t		       id;

	memset(ev, 0, sizeof(*ev));
	if ((copy = malloc(len + 1)) == NULL)
		return -1;
	memcpy(copy, json, len);
	copy[len] = '\0';
	ev->ce_tree = json_parse(copy, err, sizeof(err));
	free(copy);
	if (ev->ce_tree == NULL || json_type(ev->ce_tree) != JSON_OBJECT) {
		json_val_free(&ev->ce_tree);
		return -1;
	}
	ev->ce_event = ctl_ev_str(ev->ce_tree, "event");
	ev->ce_class = ctl_ev_str(ev->ce_tree, "class");
	ev->ce_category = ctl_ev_str(ev->ce_tree, "category");
	ev->ce_url = ctl_ev_str(ev->ce_tree, "url");
	ev->ce_dt = ctl_ev_str(ev->ce_tree, "dt");
	ev->ce_account = ctl_ev_str(ev->ce_tree, "account");
	ev->ce_qid = ctl_ev_str(ev->ce_tree, "queue_id");
	ev->ce_to = ctl_ev_str(ev->ce_tree, "to");
	ev->ce_from = ctl_ev_str(ev->ce_tree, "from");
	ev->ce_msg = ctl_ev_str(ev->ce_tree, "msg");
	ev->ce_hop = ctl_ev_str(ev->ce_tree, "hop");
	ev->ce_tls = ctl_ev_str(ev->ce_tree, "tls");
	(void)json_integer(json_get(ev->ce_tree, "attempt"), &ev->ce_attempt);
	(void)json_boolean(json_get(ev->ce_tree, "sandbox"), &ev->ce_sandbox);
	if ((issue = json_get(ev->ce_tree, "issue")) != NULL) {
		if (json_integer(json_get(issue, "id"), &id) && id > 0)
			ev->ce_issue_id = (uint64_t)id;
		ev->ce_issue_name = ctl_ev_str(issue, "name");
		ev->ce_issue_date = ctl_ev_str(issue, "date");
	}
	if ((gate = json_get(ev->ce_tree, "gate")) != NULL)
		ev->ce_uniq = ctl_ev_str(gate, "uniq");
	return 0;
}

void
ctl_event_free(struct ctl_event *ev)
{
	json_val_free(&ev->ce_tree);
}

int
ctl_category(const char *name, const char *cmd)
{
	enum bounce_cat c = bounce_cat_parse(name);

	if (c == BOUNCE_NONE)
		ctl_usage("%s: --category %s: not a category (bad-mailbox, "
			  "bad-domain, "
			  "inactive-mailbox, quota, policy, spam, virus, "
			  "routing, protocol, "
			  "no-answer, relaying-denied, expired, other)",
		    cmd, name);
	return (int)c;
}
