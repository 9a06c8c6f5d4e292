/*
 * spoolctl_account: account add|list|show|del (CONTRACT "Accounts and
 * policy"). Passwords are hashed with yescrypt (crypt_gensalt_ra "$y$")
 * and wiped from memory; the clear text is never stored or printed.
 */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "buf.h"
#include "cidr.h"
#include "conf.h"
#include "fsx.h"
#include "json.h"
#include "spoolctl.h"
#include "spool_track.h"
#include "srcaddr.h"
#include "xmem.h"

#define CTL_PW_MAX 1024

/* static: ctl_die() may exit at any point without leaking it */
static struct spool_account ctl_sa_store;

struct ctl_acct_opts {
	const char *password;
	const char *password_file;
	const char *ips[SPOOL_MAX_IPS];
	size_t	    nips;
	int	    sandbox; /* -1 unset */
	const char *callback_url;
	const char *callback_format;
	const char *senders;
	bool	    no_password;
	bool	    update;
	const char *source;	 /* --source-address */
	const char *source_helo; /* --source-helo */
	const char *track;	 /* --track (issue 16) */
	const char *track_host;	 /* --track-host */
};

/* Reads a password without echo from the terminal on stdin. */
static void
ctl_pw_prompt(const char *prompt, char *pw, size_t pwsz)
{
	struct termios old, noecho;
	size_t	       n;

	/* echo goes off before the prompt appears, as getpass(3) does */
	if (tcgetattr(STDIN_FILENO, &old) == -1)
		ctl_die("cannot read a password from the terminal: %s",
		    strerror(errno));
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	(void)fputs(prompt, stderr);
	(void)fflush(stderr);
	if (fgets(pw, (int)pwsz, stdin) == NULL)
		pw[0] = '\0';
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	(void)fputc('\n', stderr);
	n = strcspn(pw, "\r\n");
	pw[n] = '\0';
}

/* The password the options ask for into pw; false when none is wanted. */
static bool
ctl_pw_get(const struct ctl_acct_opts *o, char *pw, size_t pwsz)
{
	char  *data, again[CTL_PW_MAX];
	size_t len, n;

	if (o->password != NULL) {
		if (str_copy(pw, pwsz, o->password) == -1)
			ctl_usage("account add: password too long");
	} else if (o->password_file != NULL) {
		if (fsx_read_file(o->password_file, CTL_PW_MAX - 1, &data,
			&len) == -1)
			ctl_die("cannot read password file %s: %s%s",
			    o->password_file, strerror(errno),
			    ctl_file_hint(errno));
		n = strcspn(data, "\r\n");
		data[n] = '\0';
		(void)str_copy(pw, pwsz, data);
		freezero(data, len);
	} else if (o->no_password || o->nips > 0 || o->update ||
	    !isatty(STDIN_FILENO))
		return false;
	else {
		ctl_pw_prompt("Password: ", pw, pwsz);
		ctl_pw_prompt("Again: ", again, sizeof(again));
		n = strcmp(pw, again) != 0;
		explicit_bzero(again, sizeof(again));
		if (n)
			ctl_die("account add: the passwords do not match");
	}
	if (pw[0] == '\0')
		ctl_usage("account add: empty password");
	return true;
}

static void
ctl_pw_hash(const char *pw, char *out, size_t outsz)
{
	void *data = NULL;
	int   size = 0;
	char *setting, *hash;

	if ((setting = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL)
		ctl_die("crypt_gensalt: %s", strerror(errno));
	hash = crypt_ra(pw, setting, &data, &size);
	free(setting);
	if (hash == NULL || hash[0] == '*' ||
	    str_copy(out, outsz, hash) == -1) {
		freezero(data, (size_t)size);
		ctl_die("crypt: cannot hash the password");
	}
	freezero(data, (size_t)size);
}

/*
 * --source-address ADDR|POOL|none [--source-helo NAME] (issue 15 item 6):
 * stored as srcaddr.h writes it, "ADDR[ HELO-NAME]" or the pool's name.
 */
static void
ctl_acct_source(const struct ctl_acct_opts *o, struct spool_account *sa)
{
	struct srcaddr r;
	char	       spec[SRCADDR_TEXT_MAX + 8], why[256];

	if (o->source[0] == '\0' || strcmp(o->source, "none") == 0) {
		if (o->source_helo != NULL)
			ctl_usage(
			    "account: --source-helo needs a --source-address");
		sa->ac_source[0] = '\0';
		return;
	}
	if (srcaddr_is_name(o->source)) {
		if (o->source_helo != NULL)
			ctl_usage("account: --source-address %s is a pool: its "
				  "HELO names "
				  "are in its source_pool lines",
			    o->source);
		(void)str_copy(sa->ac_source, sizeof(sa->ac_source), o->source);
		return;
	}
	(void)snprintf(spec, sizeof(spec), "%s%s%s", o->source,
	    o->source_helo != NULL ? " " : "",
	    o->source_helo != NULL ? o->source_helo : "");
	if (strpbrk(o->source, " \t") != NULL ||
	    srcaddr_parse(spec, &r, why, sizeof(why)) == -1)
		ctl_usage(
		    "account: --source-address %s%s%s: %s (want an IPv4/IPv6 "
		    "address or a source_pool name)",
		    o->source, o->source_helo != NULL ? " --source-helo " : "",
		    o->source_helo != NULL ? o->source_helo : "", why);
	(void)snprintf(sa->ac_source, sizeof(sa->ac_source), "%s%s%s",
	    r.so_addr, r.so_helo[0] != '\0' ? " " : "", r.so_helo);
}

/* A DNS name, "{node}" standing for a label (issue 19: one tracking host
 * per node, cluster_node in place of it). */
static bool
ctl_host_ok(const char *h)
{
	char buf[SPOOL_DOMAIN_MAX];

	return conf_node_host(h, "node", buf, sizeof(buf)) == 0;
}

/*
 * --track opens,clicks,unsubscribe|none and --track-host HOST (issue 16):
 * tracking needs a host its links can point at.
 */
static void
ctl_acct_track(const struct ctl_acct_opts *o, struct spool_account *sa)
{
	static const struct {
		const char *name;
		unsigned    flag;
	} kinds[] = {
		{ "opens", SPOOL_TRACK_F_OPENS },
		{ "clicks", SPOOL_TRACK_F_CLICKS },
		{ "unsubscribe", SPOOL_TRACK_F_UNSUB },
	};
	char	 list[256], *p, *tok;
	unsigned f = 0;
	size_t	 i;

	if (o->track_host != NULL &&
	    (str_copy(sa->ac_track_host, sizeof(sa->ac_track_host),
		 o->track_host) == -1 ||
		(o->track_host[0] != '\0' && !ctl_host_ok(o->track_host))))
		ctl_usage("account: --track-host %s: not a host name "
			  "(or HOST:PORT)",
		    o->track_host);
	if (o->track != NULL && strcmp(o->track, "none") != 0) {
		if (str_copy(list, sizeof(list), o->track) == -1)
			ctl_usage("account: --track: too long");
		for (p = list; (tok = strsep(&p, ",")) != NULL;
		     f |= kinds[i].flag) {
			for (i = 0; i < 3 && strcmp(tok, kinds[i].name) != 0;
			     i++)
				;
			if (i == 3)
				ctl_usage("account: --track is a list of "
					  "opens, clicks and "
					  "unsubscribe, or none");
		}
	}
	if (o->track != NULL)
		sa->ac_track = f;
}

/* "opens,clicks,unsubscribe" or "none". */
static const char *
ctl_acct_track_text(unsigned f, char *buf, size_t sz)
{
	(void)snprintf(buf, sz, "%s%s%s%s%s",
	    f & SPOOL_TRACK_F_OPENS ? "opens" : "",
	    (f & SPOOL_TRACK_F_OPENS) && (f & ~SPOOL_TRACK_F_OPENS & 7) ? ","
									: "",
	    f & SPOOL_TRACK_F_CLICKS ? "clicks" : "",
	    (f & SPOOL_TRACK_F_CLICKS) && (f & SPOOL_TRACK_F_UNSUB) ? "," : "",
	    f & SPOOL_TRACK_F_UNSUB ? "unsubscribe" : "");
	return buf[0] != '\0' ? buf : "none";
}

/* Applies the options to sa (a new or an existing account). */
static void
ctl_acct_apply(const struct ctl_acct_opts *o, struct spool_account *sa)
{
	size_t i;

	if (o->nips > 0) {
		sa->ac_nips = 0;
		for (i = 0; i < o->nips; i++) {
			if (cidr_parse(o->ips[i], &sa->ac_ips[i]) == -1)
				ctl_usage("account add: --ip %s: not an "
					  "IPv4/IPv6 address or "
					  "CIDR range",
				    o->ips[i]);
			sa->ac_nips++;
		}
	}
	if (o->sandbox != -1)
		sa->ac_sandbox = o->sandbox == 1;
	if (o->callback_url != NULL) {
		if (o->callback_url[0] != '\0' &&
		    strncmp(o->callback_url, "http://", 7) != 0 &&
		    strncmp(o->callback_url, "https://", 8) != 0)
			ctl_usage(
			    "account add: --callback-url must be an http:// or "
			    "https:// URL");
		if (str_copy(sa->ac_callback_url, sizeof(sa->ac_callback_url),
			o->callback_url) == -1)
			ctl_usage("account add: --callback-url too long");
	}
	if (o->callback_format != NULL) {
		if (strcmp(o->callback_format, "json") == 0)
			sa->ac_callback_format = SPOOL_CB_JSON;
		else if (strcmp(o->callback_format, "stream") == 0)
			sa->ac_callback_format = SPOOL_CB_STREAM;
		else
			ctl_usage(
			    "account add: --callback-format is json or stream");
	}
	if (o->source != NULL)
		ctl_acct_source(o, sa);
	ctl_acct_track(o, sa);
	ctl_cbsecret_apply(sa);
	if (o->senders != NULL) {
		if (strcmp(o->senders, "any") == 0)
			sa->ac_senders = SPOOL_SENDERS_ANY;
		else if (strcmp(o->senders, "registered") == 0)
			sa->ac_senders = SPOOL_SENDERS_REGISTERED;
		else
			ctl_usage(
			    "account add: --senders is any or registered");
	}
}

static void
ctl_acct_describe(const struct spool_account *sa, bool pw_changed, FILE *fp)
{
	char   c[64], tr[64];
	size_t i;

	(void)fprintf(fp, "password %s, ips",
	    sa->ac_pwhash[0] == '\0' ? "none"
		: pw_changed	     ? "set"
				     : "unchanged");
	for (i = 0; i < sa->ac_nips; i++) {
		cidr_format(&sa->ac_ips[i], c, sizeof(c));
		(void)fprintf(fp, "%s%s", i ? "," : " ", c);
	}
	if (sa->ac_nips == 0)
		(void)fputs(" none", fp);
	(void)fprintf(fp, ", sandbox %s, callback %s (%s), senders %s",
	    sa->ac_sandbox ? "yes" : "no",
	    sa->ac_callback_url[0] ? sa->ac_callback_url : "none",
	    sa->ac_callback_format == SPOOL_CB_STREAM ? "stream" : "json",
	    sa->ac_senders == SPOOL_SENDERS_REGISTERED ? "registered" : "any");
	if (sa->ac_source[0] != '\0')
		(void)fprintf(fp, ", source %s", sa->ac_source);
	(void)fprintf(fp, ", track %s",
	    ctl_acct_track_text(sa->ac_track, tr, sizeof(tr)));
	if (sa->ac_track_host[0] != '\0')
		(void)fprintf(fp, " (host %s)", sa->ac_track_host);
	ctl_cbsecret_describe(sa, fp);
	(void)fputc('\n', fp);
}

/* Options and the login operand of `account add`. */
static const char *
ctl_account_add_opts(int argc, char **argv, struct ctl_acct_opts *op)
{
	static const struct option lo[] = { { "password", required_argument,
						NULL, 'p' },
		{ "password-file", required_argument, NULL, 'P' },
		{ "ip", required_argument, NULL, 'i' },
		{ "sandbox", no_argument, NULL, 's' },
		{ "no-sandbox", no_argument, NULL, 'S' },
		{ "callback-url", required_argument, NULL, 'u' },
		{ "callback-format", required_argument, NULL, 'f' },
		{ "senders", required_argument, NULL, 'r' },
		{ "no-password", no_argument, NULL, 'n' },
		{ "update", no_argument, NULL, 'U' },
		{ "source-address", required_argument, NULL, 'A' },
		{ "source-helo", required_argument, NULL, 'H' },
		{ "track", required_argument, NULL, 'T' },
		{ "track-host", required_argument, NULL, 'O' },
		{ "callback-secret", required_argument, NULL, 'k' },
		{ "callback-secret-file", required_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 } };
	struct ctl_acct_opts	   o = { .sandbox = -1 };
	int			   ch;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		switch (ch) {
		case 'p':
			o.password = optarg;
			break;
		case 'P':
			o.password_file = optarg;
			break;
		case 'i':
			if (o.nips == SPOOL_MAX_IPS)
				ctl_usage("account add: at most %d --ip ranges",
				    SPOOL_MAX_IPS);
			o.ips[o.nips++] = optarg;
			break;
		case 's':
			o.sandbox = 1;
			break;
		case 'S':
			o.sandbox = 0;
			break;
		case 'u':
			o.callback_url = optarg;
			break;
		case 'f':
			o.callback_format = optarg;
			break;
		case 'r':
			o.senders = optarg;
			break;
		case 'n':
			o.no_password = true;
			break;
		case 'U':
			o.update = true;
			break;
		case 'A':
			o.source = optarg;
			break;
		case 'H':
			o.source_helo = optarg;
			break;
		case 'T':
			o.track = optarg;
			break;
		case 'O':
			o.track_host = optarg;
			break;
		case 'k':
			ctl_cbsecret_opt(optarg, false);
			break;
		case 'K':
			ctl_cbsecret_opt(optarg, true);
			break;
		}
	}
	ctl_operands(argc, argv, 1, 1, NULL);
	if (!ctl_login_ok(argv[optind]))
		ctl_usage("account add: bad login \"%s\"", argv[optind]);
	if (o.password != NULL && o.password_file != NULL)
		ctl_usage("account add: give --password or --password-file, "
			  "not both");
	if (o.source_helo != NULL && o.source == NULL)
		ctl_usage("account: --source-helo needs a --source-address");
	*op = o;
	return argv[optind];
}

/* A pool the configuration does not define defers the account's mail. */
static void
ctl_acct_source_warn(const struct ctl *ctl, const struct spool_account *sa)
{
	if (srcaddr_is_name(sa->ac_source) &&
	    srcaddr_pool_size(ctl->cf->cf_source_pool.v,
		ctl->cf->cf_source_pool.n, sa->ac_source) == 0)
		ctl_warn(
		    "warning: no source_pool line of %s names the pool %s: the "
		    "account's mail is deferred until one does",
		    ctl->cf->cf_path, sa->ac_source);
}

static int
ctl_account_write(struct ctl *ctl, int argc, char **argv, bool set)
{
	struct ctl_acct_opts  o;
	struct spool_account *sa;
	struct spool_txn     *txn;
	const char	     *login;
	char		      pw[CTL_PW_MAX], hash[256];
	bool		      has_pw;
	int		      rc;

	login = ctl_account_add_opts(argc, argv, &o);
	o.update = o.update || set;
	sa = &ctl_sa_store;
	ctl_acct_apply(&o, sa); /* validates before any prompt */
	/* yescrypt takes a while: hash before the write transaction */
	if ((has_pw = ctl_pw_get(&o, pw, sizeof(pw))))
		ctl_pw_hash(pw, hash, sizeof(hash));
	explicit_bzero(pw, sizeof(pw));
	txn = ctl_begin(ctl, true);
	rc = spool_account_get(txn, login, sa);
	if (rc == 0 && !o.update)
		ctl_die("account %s already exists (use --update to change it)",
		    login);
	if (rc == SPOOL_ENOTFOUND && o.update)
		ctl_die(CTL_NO_ACCOUNT, login);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		ctl_die_rc(rc, "account %s", login);
	if (rc == SPOOL_ENOTFOUND) {
		memset(sa, 0, sizeof(*sa));
		(void)str_copy(sa->ac_login, sizeof(sa->ac_login), login);
		sa->ac_created = ctl->now;
	}
	ctl_acct_apply(&o, sa);
	if (sa->ac_track != 0 && sa->ac_track_host[0] == '\0')
		ctl_usage("account: --track needs a --track-host (the tracking "
			  "server's "
			  "name in its links)");
	if (has_pw)
		(void)str_copy(sa->ac_pwhash, sizeof(sa->ac_pwhash), hash);
	if ((rc = spool_account_put(txn, sa)) != 0)
		ctl_die_rc(rc, "account %s", login);
	ctl_commit(&txn);
	ctl_cbsecret_wipe();
	if (!has_pw && sa->ac_pwhash[0] == '\0' && sa->ac_nips == 0)
		ctl_warn("warning: account %s has neither a password nor --ip "
			 "ranges: "
			 "it cannot send",
		    login);
	ctl_acct_source_warn(ctl, sa);
	printf("account %s %s: ", login, o.update ? "updated" : "added");
	ctl_acct_describe(sa, has_pw, stdout);
	return CTL_OK;
}

static int
ctl_account_add(struct ctl *ctl, int argc, char **argv)
{
	return ctl_account_write(ctl, argc, argv, false);
}

/* account set LOGIN ...: account add --update under the name CONTRACT pins. */
static int
ctl_account_set(struct ctl *ctl, int argc, char **argv)
{
	return ctl_account_write(ctl, argc, argv, true);
}

static void
ctl_acct_json(struct json_gen *jg, const struct spool_account *sa)
{
	char   c[64], tr[64];
	size_t i;

	json_obj_begin(jg);
	json_kv_str(jg, "login", sa->ac_login);
	json_kv_bool(jg, "password", sa->ac_pwhash[0] != '\0');
	json_key(jg, "ips");
	json_arr_begin(jg);
	for (i = 0; i < sa->ac_nips; i++) {
		cidr_format(&sa->ac_ips[i], c, sizeof(c));
		json_str(jg, c);
	}
	json_arr_end(jg);
	json_kv_bool(jg, "sandbox", sa->ac_sandbox);
	json_kv_str(jg, "callback_url",
	    sa->ac_callback_url[0] ? sa->ac_callback_url : NULL);
	json_kv_str(jg, "callback_format",
	    sa->ac_callback_format == SPOOL_CB_STREAM ? "stream" : "json");
	json_kv_str(jg, "senders",
	    sa->ac_senders == SPOOL_SENDERS_REGISTERED ? "registered" : "any");
	json_kv_int(jg, "created", sa->ac_created);
	json_kv_str(jg, "source_address",
	    sa->ac_source[0] ? sa->ac_source : NULL);
	json_kv_str(jg, "track",
	    ctl_acct_track_text(sa->ac_track, tr, sizeof(tr)));
	json_kv_str(jg, "track_host",
	    sa->ac_track_host[0] ? sa->ac_track_host : NULL);
	ctl_cbsecret_json(jg, sa);
	json_obj_end(jg);
}

struct ctl_list_arg {
	struct json_gen *jg;
	size_t		 n;
};

static int
ctl_account_list_cb(const struct spool_account *sa, void *arg)
{
	struct ctl_list_arg *la = arg;
	char		     t[20];

	la->n++;
	if (la->jg != NULL) {
		ctl_acct_json(la->jg, sa);
		return 0;
	}
	ctl_time(sa->ac_created, t);
	printf("%-32s %-8s %-4s %-10s %s\n", sa->ac_login,
	    sa->ac_sandbox ? "sandbox" : "live", sa->ac_pwhash[0] ? "pw" : "-",
	    sa->ac_nips ? "ip" : "-", t);
	return 0;
}

static int
ctl_account_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_list_arg la = { .jg = NULL };
	struct spool_txn   *txn;
	int		    rc;

	if (ctl_want_json(argc, argv, NULL, 0, 0)) {
		la.jg = json_gen_new(false);
		json_arr_begin(la.jg);
	}
	txn = ctl_begin(ctl, false);
	if ((rc = spool_account_iter(txn, ctl_account_list_cb, &la)) != 0)
		ctl_die_rc(rc, "accounts");
	spool_abort(&txn);
	if (la.jg != NULL) {
		json_arr_end(la.jg);
		ctl_json_print(la.jg);
		json_gen_free(&la.jg);
	} else if (la.n == 0)
		printf("no accounts\n");
	return CTL_OK;
}

static int
ctl_show_sender_cb(const char *key, enum spool_sender_status st, void *arg)
{
	(void)arg;
	printf("  sender %s %s\n", key, spool_sender_status_name(st));
	return 0;
}

static int
ctl_show_dkim_cb(const struct spool_dkim *sd, void *arg)
{
	(void)arg;
	printf("  dkim %s selector %s %s%s\n", sd->dk_domain, sd->dk_selector,
	    sd->dk_alg == SPOOL_DKIM_ED25519 ? "ed25519" : "rsa",
	    sd->dk_default ? " (default)" : "");
	return 0;
}

static int
ctl_count_cb(const char *addr, void *arg)
{
	(void)addr;
	(*(size_t *)arg)++;
	return 0;
}

static int
ctl_account_show(struct ctl *ctl, int argc, char **argv)
{
	struct spool_account *sa;
	struct spool_txn     *txn;
	struct json_gen	     *jg;
	const char	     *login;
	char		      t[20];
	size_t		      nstop = 0;
	bool		      json;
	int		      rc;

	json = ctl_want_json(argc, argv, NULL, 1, 1);
	login = argv[optind];
	sa = &ctl_sa_store;
	txn = ctl_begin(ctl, false);
	if ((rc = spool_account_get(txn, login, sa)) == SPOOL_ENOTFOUND)
		ctl_die(CTL_NO_ACCOUNT, login);
	if (rc != 0)
		ctl_die_rc(rc, "account %s", login);
	if (json) {
		jg = json_gen_new(false);
		ctl_acct_json(jg, sa);
		ctl_json_print(jg);
		json_gen_free(&jg);
	} else {
		ctl_time(sa->ac_created, t);
		printf("account %s (created %s)\n  ", login, t);
		ctl_acct_describe(sa, true, stdout);
		(void)spool_sender_iter(txn, login, ctl_show_sender_cb, NULL);
		(void)spool_dkim_iter(txn, login, NULL, ctl_show_dkim_cb, NULL);
		(void)spool_stop_iter(txn, login, ctl_count_cb, &nstop);
		printf("  stoplist: %zu address%s\n", nstop,
		    nstop == 1 ? "" : "es");
	}
	spool_abort(&txn);
	return CTL_OK;
}

static int
ctl_collect_keyfile_cb(const struct spool_dkim *sd, void *arg)
{
	struct buf *files = arg;

	(void)buf_append(files, sd->dk_keyfile, strlen(sd->dk_keyfile) + 1);
	return 0;
}

static int
ctl_account_del(struct ctl *ctl, int argc, char **argv)
{
	struct spool_txn *txn;
	struct buf	  files;
	const char	 *login;
	size_t		  off;
	int		  rc;

	ctl_no_options(argc, argv, 1, 1, NULL);
	login = argv[optind];
	buf_init(&files, 1 << 20);
	txn = ctl_begin(ctl, true);
	(void)spool_dkim_iter(txn, login, NULL, ctl_collect_keyfile_cb, &files);
	if ((rc = spool_account_del(txn, login)) == SPOOL_ENOTFOUND)
		ctl_die(CTL_NO_ACCOUNT, login);
	if (rc != 0)
		ctl_die_rc(rc, "delete account %s", login);
	ctl_commit(&txn);
	/* its DKIM keys go with it: nothing can use them any more */
	for (off = 0; off < files.len; off += strlen(files.data + off) + 1)
		(void)spool_unlink(ctl->cf->cf_spool_dir, SPOOL_KEYS,
		    files.data + off);
	buf_release(&files);
	printf("account %s deleted\n", login);
	return CTL_OK;
}

int
ctl_cmd_account(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_cmd cmds[] = { { .name = "add",
						   .fn = ctl_account_add },
		{ .name = "set", .fn = ctl_account_set },
		{ .name = "list", .fn = ctl_account_list },
		{ .name = "show", .fn = ctl_account_show },
		{ .name = "del", .fn = ctl_account_del },
		{ .name = NULL, .fn = NULL } };

	return ctl_dispatch(ctl, cmds, argc, argv, NULL);
}
