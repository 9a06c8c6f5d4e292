/*
 * spoolctl: main() and command dispatch only (STYLE L1). The commands
 * live in spoolctl_*.c; see spoolctl(8).
 */
#include "config.h"

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "spoolctl.h"

static const struct ctl_cmd ctl_cmds[] = {
	{ .name = "account", .fn = ctl_cmd_account },
	{ .name = "sender", .fn = ctl_cmd_sender },
	{ .name = "dkim", .fn = ctl_cmd_dkim },
	{ .name = "stoplist", .fn = ctl_cmd_stoplist },
	{ .name = "issue", .fn = ctl_cmd_issue },
	{ .name = "queue", .fn = ctl_cmd_queue },
	{ .name = "show", .fn = ctl_cmd_show },
	{ .name = "retry", .fn = ctl_cmd_retry },
	{ .name = "hold", .fn = ctl_cmd_hold },
	{ .name = "release", .fn = ctl_cmd_release },
	{ .name = "delete", .fn = ctl_cmd_delete },
	{ .name = "issues", .fn = ctl_cmd_issues },
	{ .name = "bounces", .fn = ctl_cmd_bounces },
	{ .name = "query", .fn = ctl_cmd_query },
	{ .name = "pause", .fn = ctl_cmd_pause },
	{ .name = "resume", .fn = ctl_cmd_resume },
	{ .name = "suppression", .fn = ctl_cmd_suppression },
	{ .name = "events", .fn = ctl_cmd_events },
	{ .name = "callbacks", .fn = ctl_cmd_callbacks },
	{ .name = "status", .fn = ctl_cmd_status },
	{ .name = "tls-report", .fn = ctl_cmd_tls_report },
	{ .name = "cluster", .fn = ctl_cmd_cluster },
	{ .name = "quarantine", .fn = ctl_cmd_quarantine },
	{ .name = "help", .fn = NULL }, /* main() answers it */
	{ .name = NULL, .fn = NULL },
};

static struct ctl spoolctl_ctl;
static jmp_buf	  spoolctl_restart;
/* what a rerun needs, kept out of main()'s frame (setjmp clobbers locals) */
static int    spoolctl_argc;
static char **spoolctl_argv;
static size_t spoolctl_cmd;
static int    spoolctl_rc;

/*
 * The map was full in a write txn deep inside a command. Closing the spool
 * aborts the txn; the command then runs again from main() and its first
 * write txn grows the map (ctl_begin). Commands print after their commit,
 * and their writes are idempotent (a stoplist file committed in parts is
 * added again), so the new run repeats nothing visible. Each run doubles
 * the map: a big txn may need a few, bounded by lmdb_map_max.
 */
void
ctl_retry_full(void)
{
	static int retries;

	if (spoolctl_ctl.sp == NULL || !spoolctl_ctl.sp_write ||
	    spoolctl_ctl.grow_stuck || ++retries > CTL_GROW_RETRIES)
		return;
	spool_close(&spoolctl_ctl.sp);
	spoolctl_ctl.sp_write =
	    false; /* the rerun opens as it did the first time */
	spoolctl_ctl.grow = true;
	longjmp(spoolctl_restart, 1);
}

/* Runs on every exit, also after ctl_die(): close LMDB, free the config. */
static void
spoolctl_cleanup(void)
{
	spool_close(&spoolctl_ctl.sp);
	conf_free(&spoolctl_ctl.cf);
}

/* The entry of ctl_cmds named word, or an unknown-command usage error. */
static size_t
spoolctl_find(const char *word)
{
	size_t i;

	for (i = 0; ctl_cmds[i].name != NULL; i++)
		if (strcmp(word, ctl_cmds[i].name) == 0)
			return i;
	ctl_unknown("unknown command", word, ctl_cmds, "");
}

/*
 * "help [CMD [SUB]]", or "CMD [SUB] ... --help|-h" (before any "--"):
 * prints the overview or CMD's help and exits 0. Returns if neither.
 */
static void
spoolctl_help(int argc, char **argv)
{
	char cmd[64];
	int  i;
	bool help = strcmp(argv[0], "help") == 0;

	for (i = 1; !help && i < argc && strcmp(argv[i], "--") != 0; i++)
		help = strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0;
	if (!help)
		return;
	if (strcmp(argv[0], "help") == 0) {
		if (argc == 1 || strcmp(argv[1], "help") == 0) {
			ctl_help_overview(stdout);
			exit(ctl_out_status(CTL_OK));
		}
		argc--;
		argv++;
	}
	(void)spoolctl_find(argv[0]);
	if (argc > 1 && argv[1][0] != '-')
		ctl_help_check_sub(argc, argv);
	(void)snprintf(cmd, sizeof(cmd), "%s %s", argv[0],
	    argc > 1 ? argv[1] : "");
	if (argc < 2 || argv[1][0] == '-' || !ctl_help_known(cmd))
		cmd[strlen(argv[0])] = '\0';
	ctl_help_print(stdout, cmd);
	exit(ctl_out_status(CTL_OK));
}

int
main(int argc, char **argv)
{
	struct ctl *ctl = &spoolctl_ctl;
	const char *conf_path = NULL;
	size_t	    i;
	int	    ch;

	log_init("spoolctl", LOG_DEST_STDERR);
	/* "+": global options stop at the command word */
	opterr = 0;
	while ((ch = getopt(argc, argv, "+c:vh")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'v':
			log_set_verbose(true);
			break;
		case 'h':
			ctl_help_overview(stdout);
			return ctl_out_status(CTL_OK);
		default:
			ctl_usage("unknown option -%c (spoolctl help)", optopt);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		ctl_help_overview(stderr);
		return CTL_USAGE;
	}
	spoolctl_help(argc, argv);
	i = spoolctl_find(argv[0]);
	ctl_help_set(argv[0], NULL);
	ctl_help_check_sub(argc, argv);
	ctl->cf = conf_load_or_exit(conf_path);
	ctl->now = (int64_t)time(NULL);
	if (atexit(spoolctl_cleanup) != 0)
		ctl_die("atexit");
	tzset();
	/* a closed stdout is a write error, never a death inside a txn */
	(void)signal(SIGPIPE, SIG_IGN);
	spoolctl_argc = argc;
	spoolctl_argv = argv;
	spoolctl_cmd = i;
	(void)setjmp(spoolctl_restart);
	optind = 0; /* glibc: restart getopt for the command's options */
	spoolctl_rc = ctl_cmds[spoolctl_cmd].fn(&spoolctl_ctl, spoolctl_argc,
	    spoolctl_argv);
	ctl_cluster_publish(ctl); /* cluster mode: its policy changes */
	return ctl_out_status(spoolctl_rc);
}
