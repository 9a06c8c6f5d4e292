/*
 * smtpgate-sendmail: main(): flags, configuration and privileges. See
 * smtpgate-sendmail(8). Installed setgid maildrop_group (smtpgate-maildrop:
 * it may only create files in maildrop/, which spoold copies under
 * sendmail_account); it then refuses -c unless the real uid is 0 (as
 * Postfix does for alternate configurations), keeps the caller's uid, drops the group
 * before running anything else (-bp), and never lets the caller choose
 * the account or the spool. Started as root (cron), it drops to smtpd_user
 * like the network side does (CONTRACT: nothing reads message content as
 * root). Errors go to stderr (and syslog); success is silent.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "priv.h"
#include "sendmail.h"
#include "spool.h"

enum sm_mode { SM_DELIVER, SM_SMTP, SM_QUEUE, SM_RETRY, SM_NEWALIASES };

struct sm_args {
	enum sm_mode mode;
	const char  *conf;	 /* -c / -C, NULL = default */
	const char  *from;	 /* -f / -r */
	const char  *fullname;	 /* -F */
	bool	     ignore_dot; /* -i, -oi */
	bool	     extract;	 /* -t */
	bool	     verbose;	 /* -v */
};

static bool sm_verbose;

static void sm_die(int, const char *, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void
sm_die(int code, const char *fmt, ...)
{
	char	msg[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!sm_verbose) /* with -v the log already goes to stderr */
		(void)fprintf(stderr, "%s: %s\n", SM_PROGNAME, msg);
	log_warnx("NOQUEUE: uid=%lu: %s", (unsigned long)getuid(), msg);
	exit(code);
}

static void
sm_usage(const char *why, int c)
{
	sm_die(EX_USAGE,
	    "%s -%c; usage: smtpgate-sendmail [-i] [-t] "
	    "[-f sender] [-F name] [-bm|-bs|-bp] [-c file] [--] [recipient "
	    "...]",
	    why, c);
}

/* Set-id programs may be started with fds 0-2 closed: never reuse them. */
static void
sm_fds(void)
{
	int fd;

	for (fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
		    open("/dev/null", O_RDWR) != fd)
			_exit(EX_OSERR);
}

static bool
sm_privileged(void)
{
	return getauxval(AT_SECURE) != 0 || getuid() != geteuid() ||
	    getgid() != getegid();
}

/*
 * -c/-C: a set-id copy takes another configuration (another spool and
 * account) only from root, as Postfix's sendmail does; anyone else is
 * refused, never silently ignored. Not set-id, -c is the caller's own.
 */
static void
sm_check_conf_arg(const struct sm_args *a, bool priv)
{
	if (a->conf == NULL || !priv || getuid() == 0)
		return;
	sm_die(2,
	    "-c: only root may choose the configuration file of this "
	    "set-group-ID program (uid %lu); leave -c out to use %s",
	    (unsigned long)getuid(), conf_default_path());
}

static void
sm_opt_b(struct sm_args *a, const char *m)
{
	if (strcmp(m, "m") == 0)
		a->mode = SM_DELIVER;
	else if (strcmp(m, "s") == 0)
		a->mode = SM_SMTP;
	else if (strcmp(m, "p") == 0)
		a->mode = SM_QUEUE;
	else if (strcmp(m, "i") == 0)
		a->mode = SM_NEWALIASES;
	else
		sm_die(EX_USAGE,
		    "-b%s: mode not supported (smtpgate-sendmail "
		    "knows -bm, -bs, -bp and -bi)",
		    m);
}

/* Returns the index of the first recipient argument. */
static int
sm_parse(int argc, char **argv, struct sm_args *a)
{
	const char *base = strrchr(argv[0], '/');
	int	    c;

	base = base ? base + 1 : argv[0];
	memset(a, 0, sizeof(*a));
	if (strcmp(base, "mailq") == 0)
		a->mode = SM_QUEUE;
	else if (strcmp(base, "newaliases") == 0)
		a->mode = SM_NEWALIASES;
	opterr = 0;
	while (
	    (c = getopt(argc, argv,
		 "+:A:B:b:C:c:d:F:f:Gh:IiL:mN:nO:o:p:q::R:r:tUV:vX:")) != -1) {
		switch (c) {
		case 'b':
			sm_opt_b(a, optarg);
			break;
		case 'C':
		case 'c':
			a->conf = optarg;
			break;
		case 'F':
			a->fullname = optarg;
			break;
		case 'f':
		case 'r':
			a->from = optarg;
			break;
		case 'I':
			a->mode = SM_NEWALIASES;
			break;
		case 'i':
			a->ignore_dot = true;
			break;
		case 'o': /* -oi matters; -oem -odb -odi -oQ... are harmless */
			if (strcmp(optarg, "i") == 0)
				a->ignore_dot = true;
			break;
		case 'q':
			if (optarg != NULL)
				sm_die(EX_USAGE,
				    "-q%s: not supported: deliverd "
				    "retries on its own (spoolctl retry)",
				    optarg);
			a->mode = SM_RETRY;
			break;
		case 't':
			a->extract = true;
			break;
		case 'v':
			a->verbose = true;
			break;
		case ':':
			sm_usage("missing argument to option", optopt);
			break;
		case '?':
			sm_usage("unknown option", optopt);
			break;
		default: /* -A -B -d -G -h -L -m -N -n -O -p -R -U -V -X */
			break;
		}
	}
	return optind;
}

/* The invoking user, for the default sender and Received:. */
static void
sm_whoami(struct sm_ctx *ctx)
{
	struct passwd *pw;
	const char    *p;
	bool	       ok;

	ctx->uid = getuid();
	pw = getpwuid(ctx->uid);
	ok = pw != NULL && pw->pw_name[0] != '\0';
	for (p = ok ? pw->pw_name : ""; *p != '\0'; p++)
		ok &= isalnum((unsigned char)*p) || strchr("._-", *p) != NULL;
	if (!ok || str_copy(ctx->user, sizeof(ctx->user), pw->pw_name) == -1)
		(void)str_printf(ctx->user, sizeof(ctx->user), "uid%lu",
		    (unsigned long)ctx->uid);
	if (pw != NULL && pw->pw_gecos != NULL) {
		(void)str_copy(ctx->gecos, sizeof(ctx->gecos), pw->pw_gecos);
		ctx->gecos[strcspn(ctx->gecos, ",")] = '\0';
	}
}

/*
 * -bp and -q: hand over to spoolctl with the caller's own ids, so they
 * work exactly for the users who may run spoolctl (README "Spool
 * permissions"). The build tree's spoolctl is found when not set-id.
 */
static void
sm_exec_spoolctl(const struct sm_args *a, bool priv, const char *cmd,
    const char *arg)
{
	char	    self[PATH_MAX], dir[PATH_MAX], path[3][PATH_MAX + 32];
	const char *conf = a->conf == NULL ? conf_default_path() : a->conf;
	/* execv wants writable strings: copy instead of casting const away */
	char	a0[] = "spoolctl", a1[] = "-c";
	char	a2[PATH_MAX], a3[64], a4[PATH_MAX];
	char   *av[] = { a0, a1, a2, a3, arg ? a4 : NULL, NULL };
	ssize_t n;
	size_t	i, np = 0;

	if (str_copy(a2, sizeof(a2), conf) == -1 ||
	    str_copy(a3, sizeof(a3), cmd) == -1 ||
	    (arg != NULL && str_copy(a4, sizeof(a4), arg) == -1))
		sm_die(EX_USAGE, "argument too long");
	if (setresgid(getgid(), getgid(), getgid()) == -1 ||
	    setresuid(getuid(), getuid(), getuid()) == -1)
		sm_die(EX_OSERR, "cannot drop privileges: %s", strerror(errno));
	if (!priv &&
	    (n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		(void)str_copy(dir, sizeof(dir), dirname(self));
		(void)str_printf(path[np++], sizeof(path[0]), "%s/spoolctl",
		    dir);
		(void)str_printf(path[np++], sizeof(path[0]),
		    "%s/../spool/spoolctl", dir);
	}
	(void)str_printf(path[np++], sizeof(path[0]), "%s/spoolctl", SBINDIR);
	for (i = 0; i < np; i++)
		if (access(path[i], X_OK) == 0)
			(void)execv(path[i], av);
	sm_die(EX_UNAVAILABLE,
	    "cannot run %s/spoolctl: %s (the queue is listed "
	    "by \"spoolctl queue\")",
	    SBINDIR, strerror(errno));
}

/* Root (cron, scripts) injects as smtpd_user, in the spool's group. */
static void
sm_drop_root(const struct conf *cf)
{
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		return;
	if (priv_lookup(cf->cf_smtpd_user, &uid, &gid) == -1)
		sm_die(EX_CONFIG,
		    "user %s (smtpd_user) does not exist: create "
		    "the smtpgate users (see contrib/sysusers.d)",
		    cf->cf_smtpd_user);
	/* maildrop/ only: the injector's group, never smtpgate_group */
	priv_drop_only(cf->cf_smtpd_user, cf->cf_maildrop_group, NULL);
}

/* Refuses early when sendmail_account names no account. */
static void
sm_check_account(const struct conf *cf)
{
	struct spool	    *sp = NULL;
	struct spool_txn    *tx = NULL;
	struct spool_account acc;
	int		     rc;

	if ((rc = spool_open(cf->cf_spool_dir, cf->cf_lmdb_map_size,
		 cf->cf_lmdb_map_max, SPOOL_RDONLY, &sp)) != 0) {
		log_debug("not checking sendmail_account: spool_open %s: %s",
		    cf->cf_spool_dir, spool_strerror(rc));
		return; /* the spool write will tell */
	}
	if ((rc = spool_begin(sp, false, &tx)) == 0) {
		rc = spool_account_get(tx, cf->cf_sendmail_account, &acc);
		spool_abort(&tx);
	}
	spool_close(&sp);
	if (rc == SPOOL_ENOTFOUND)
		sm_die(EX_CONFIG,
		    "sendmail_account %s: no such account (create "
		    "it with: spoolctl account add %s ...)",
		    cf->cf_sendmail_account, cf->cf_sendmail_account);
}

void
sm_log_queued(const struct sm_ctx *ctx, const struct spool_env *env,
    const char *qid)
{
	log_info("%s: uid=%lu, from=<%s>, nrcpt=%zu, account=%s%s (queued)",
	    qid, (unsigned long)ctx->uid, env->pe_from, env->pe_nrcpt,
	    env->pe_account, ctx->smtp ? ", proto=SMTP" : "");
}

/* Recipients from the command line; each argument may be a comma list. */
static void
sm_args_rcpts(const struct sm_ctx *ctx, int argc, char **argv,
    struct spool_env *env)
{
	char err[512], *copy, *p, *tok;
	int  i, rc;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			continue; /* "a@b -- c@d": not an address */
		copy = strdup(argv[i]);
		if (copy == NULL)
			sm_die(EX_OSERR, "out of memory");
		for (p = copy; (tok = strsep(&p, ",")) != NULL;) {
			if (strspn(tok, " \t") == strlen(tok))
				continue;
			if ((rc = sm_rcpt_add(ctx, env, tok, err,
				 sizeof(err))) != 0)
				sm_die(rc, "%s", err);
		}
		free(copy);
	}
}

static void
sm_setup_ctx(struct sm_ctx *ctx, const struct sm_args *a)
{
	char err[512];

	(void)str_copy(ctx->helo, sizeof(ctx->helo), "localhost");
	ctx->extract = a->extract;
	ctx->verbose = a->verbose;
	(void)str_copy(ctx->fullname, sizeof(ctx->fullname),
	    a->fullname ? a->fullname : ctx->gecos);
	if (a->from == NULL)
		(void)str_printf(ctx->from, sizeof(ctx->from), "%s@%s",
		    ctx->user, ctx->cf->cf_hostname);
	else if (a->from[0] == '\0' || strcmp(a->from, "<>") == 0)
		ctx->from[0] = '\0';
	else if (sm_addr_fix(ctx, a->from, ctx->from, sizeof(ctx->from), err,
		     sizeof(err)) == -1)
		sm_die(EX_NOUSER, "-f: %s", err);
}

int
main(int argc, char **argv)
{
	struct sm_args	 a;
	struct sm_ctx	 ctx;
	struct spool_env env;
	struct sm_rd	 rd;
	char		 qid[QID_SIZE], err[1024];
	bool		 priv = sm_privileged();
	int		 first, rc;

	sm_fds();
	if (priv)
		(void)clearenv(); /* nothing of the caller's environment */
	(void)umask(027);	  /* spoold (group) must read the file */
	log_init(SM_PROGNAME, LOG_DEST_SYSLOG);
	first = sm_parse(argc, argv, &a);
	if ((sm_verbose = a.verbose)) {
		log_set_dest(LOG_DEST_STDERR);
		log_set_verbose(true);
	}
	sm_check_conf_arg(&a, priv);
	memset(&ctx, 0, sizeof(ctx));
	sm_whoami(&ctx);
	if (priv && geteuid() != getuid() &&
	    setresuid(getuid(), getuid(), getuid()) == -1)
		sm_die(EX_OSERR, "cannot drop the set-uid: %s",
		    strerror(errno));
	if (a.mode == SM_QUEUE)
		sm_exec_spoolctl(&a, priv, "queue", NULL);
	if (a.mode == SM_RETRY)
		sm_exec_spoolctl(&a, priv, "retry", "--all");
	ctx.cf = conf_load_or_exit(a.conf);
	if (a.mode == SM_NEWALIASES) {
		log_debug("smtpgate has no alias database: nothing to do");
		conf_free(&ctx.cf);
		return EX_OK;
	}
	if (ctx.cf->cf_sendmail_account[0] == '\0')
		sm_die(EX_CONFIG,
		    "%s: sendmail_account is not set: local mail "
		    "is refused (set it to an account made with spoolctl "
		    "account "
		    "add)",
		    ctx.cf->cf_path);
	sm_drop_root(ctx.cf);
	sm_check_account(ctx.cf);
	sm_setup_ctx(&ctx, &a);
	sm_rd_init(&rd, STDIN_FILENO, a.mode == SM_SMTP);
	if (a.mode == SM_SMTP) {
		ctx.extract = false; /* recipients come from RCPT TO only */
		(void)signal(SIGPIPE,
		    SIG_IGN); /* a gone client is an EX_IOERR */
		rc = sm_smtp_session(&ctx, &rd);
		conf_free(&ctx.cf);
		return rc;
	}
	spool_env_init(&env);
	sm_args_rcpts(&ctx, argc - first, argv + first, &env);
	if (!a.extract && env.pe_nrcpt == 0)
		sm_die(EX_USAGE,
		    "no recipients given (name them as arguments, "
		    "or use -t to read them from the message)");
	rc = sm_inject(&ctx, &rd, a.ignore_dot ? SM_TERM_EOF : SM_TERM_DOT,
	    &env, qid, err, sizeof(err));
	if (rc != 0)
		sm_die(rc, "%s", err);
	sm_log_queued(&ctx, &env, qid);
	spool_env_free(&env);
	conf_free(&ctx.cf);
	return EX_OK;
}
