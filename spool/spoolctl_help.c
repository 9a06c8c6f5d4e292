/*
 * spoolctl_help: the one table of every command's usage, options and
 * example. The overview (spoolctl help), each command's help (spoolctl
 * help CMD, spoolctl CMD --help) and the usage errors all print from it,
 * so there is no second copy to drift. Unknown words get the nearest
 * command as a suggestion (editdist).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "editdist.h"
#include "spoolctl.h"

struct ctl_help {
	const char *cmd;     /* "account add" */
	const char *usage;   /* what follows "spoolctl CMD" */
	const char *opts;    /* one "  --opt  what" line each */
	const char *example; /* a command line, after "spoolctl " */
};

#define H_JSON "  --json                  print one JSON document\n"
#define H_SOURCE \
	"  --source-address A      send from address A, or from the " \
	"source_pool named A;\n" \
	"                          none: source_address of the " \
	"configuration\n" \
	"  --source-helo NAME      the HELO name for that address (default: " \
	"hostname)\n"
#define H_TRACK \
	"  --track LIST            opens,clicks,unsubscribe (any of them) or " \
	"none:\n" \
	"                          engagement tracking of the mail filed " \
	"from now on\n" \
	"  --track-host HOST       the tracking server's name in the links " \
	"(needed)\n"
#define H_CBSECRET \
	"  --callback-secret S     sign callbacks with S (16-256 printable " \
	"ASCII bytes;\n" \
	"                          repeat for a second one during a " \
	"rotation; seen by\n" \
	"                          ps: prefer a file); none: unsigned from " \
	"now on\n" \
	"  --callback-secret-file F  the same, S is F's one line (-: " \
	"standard input)\n"

static const struct ctl_help ctl_help_tab[] = {
	{ "account add",
	    "LOGIN [--password PW | --password-file F | --no-password] "
	    "[--ip CIDR]... [--sandbox | --no-sandbox] [--callback-url URL] "
	    "[--callback-format json|stream] [--senders any|registered] "
	    "[--update] "
	    "[--source-address ADDR|POOL|none [--source-helo NAME]] "
	    "[--track opens,clicks,unsubscribe|none] [--track-host HOST] "
	    "[--callback-secret S|none | --callback-secret-file F]...",
	    "  --password PW           the SMTP AUTH password (seen by ps: "
	    "prefer a file)\n"
	    "  --password-file F       the password is F's first line\n"
	    "  --no-password           no password and no prompt (--ip only)\n"
	    "  --ip CIDR               may submit from this range (repeat; "
	    "AUTH optional)\n"
	    "  --sandbox               accept and record, never deliver\n"
	    "  --no-sandbox            deliver again (with --update)\n"
	    "  --callback-url URL      POST every event to this http(s) URL\n"
	    "  --callback-format F     json or stream (see spoolctl(8))\n"
	    "  --senders any|registered  which envelope senders may be used\n"
	    "  --update                change an existing account\n" H_SOURCE
		H_TRACK H_CBSECRET,
	    "account add shop --password-file /root/shop.pw --ip "
	    "192.0.2.0/24" },
	{ "account list", "[--json]", H_JSON, "account list" },
	{ "account show", "LOGIN [--json]", H_JSON,
	    "account show shop --json" },
	{ "account del", "LOGIN", "", "account del shop" },
	{ "account set",
	    "LOGIN [--source-address ADDR|POOL|none [--source-helo NAME]] "
	    "[--track opens,clicks,unsubscribe|none] [--track-host HOST] "
	    "[--callback-secret S|none | --callback-secret-file F]... "
	    "[the options of account add]",
	    "  (any option of account add; the account must exist)\n" H_SOURCE
		H_TRACK H_CBSECRET,
	    "account set shop --source-address 192.0.2.25 --source-helo "
	    "mta25.example.com" },
	{ "sender add",
	    "LOGIN ADDRESS|@DOMAIN --status approved|onmoderation|prohibited",
	    "  --status S              approved, onmoderation or prohibited\n",
	    "sender add shop @example.com --status approved" },
	{ "sender del", "LOGIN ADDRESS|@DOMAIN", "",
	    "sender del shop news@example.com" },
	{ "sender list", "LOGIN [--json]", H_JSON, "sender list shop" },
	{ "dkim add", "LOGIN DOMAIN --selector SEL --key PEMFILE [--default]",
	    "  --selector SEL          the DNS selector "
	    "(SEL._domainkey.DOMAIN)\n"
	    "  --key PEMFILE           RSA or Ed25519 private key, copied into "
	    "the spool\n"
	    "  --default               also sign mail of domains without a key "
	    "of their own\n",
	    "dkim add shop example.com --selector s1 --key /root/dkim-s1.pem "
	    "--default" },
	{ "dkim list", "LOGIN [--json]", H_JSON, "dkim list shop" },
	{ "dkim del", "LOGIN DOMAIN [--selector SEL]",
	    "  --selector SEL          only this selector (default: all of "
	    "DOMAIN)\n",
	    "dkim del shop example.com --selector s1" },
	{ "stoplist add", "LOGIN EMAIL | LOGIN --file F",
	    "  --file F                one address a line\n",
	    "stoplist add shop --file /root/unsubscribed.txt" },
	{ "stoplist del", "LOGIN EMAIL", "",
	    "stoplist del shop bob@example.net" },
	{ "stoplist list", "LOGIN [--json]", H_JSON, "stoplist list shop" },
	{ "stoplist show", "LOGIN EMAIL [--json]", H_JSON,
	    "stoplist show shop bob@example.net" },
	{ "issue block", "ISSUE_ID", "", "issue block 42" },
	{ "issue unblock", "ISSUE_ID", "", "issue unblock 42" },
	{ "queue",
	    "[--json] [--account L] [--issue ID] [--state S] [--domain D] "
	    "[--older-than DURATION] | --summary [--json]",
	    H_JSON
	    "  --summary               pending recipients by domain x age "
	    "(0-5m ... 160m+)\n"
	    "                          with each destination's shaping state "
	    "and limits\n"
	    "  --account L             only this account's messages\n"
	    "  --issue ID              only this issue's messages\n"
	    "  --state S               active (default), queued, deferred, "
	    "held, done or all\n"
	    "  --domain D              with a pending recipient in domain D\n"
	    "  --older-than DURATION   arrived longer ago (30s 5m 4h 2d)\n",
	    "queue --state deferred --domain example.net" },
	{ "show", "QID [--json] [--body]",
	    H_JSON "  --body                  add the message as sent "
		   "(DKIM-Signature first)\n",
	    "show 6616DBE4F527A47A30BF --body" },
	{ "retry", "QID... | --all | --domain D  [--json]",
	    "  --all                   every message with a pending recipient\n"
	    "  --domain D              messages with a pending recipient in "
	    "D\n" H_JSON,
	    "retry --domain example.net" },
	{ "hold", "QID... [--json]", H_JSON, "hold 6616DBE4F527A47A30BF" },
	{ "release", "QID... [--json]", H_JSON,
	    "release 6616DBE4F527A47A30BF" },
	{ "delete", "QID... [--json]", H_JSON, "delete 6616DBE4F527A47A30BF" },
	{ "issues",
	    "[--date YYYY-MM-DD] [--account LOGIN] [--category C] [--cluster] "
	    "[--json]",
	    "  --date YYYY-MM-DD       issues of this UTC day\n"
	    "  --account LOGIN         issues of this account\n"
	    "  --category C            issues with bounces of this "
	    "category\n"
	    "  --cluster               every node's counters summed "
	    "(PostgreSQL)\n" H_JSON,
	    "issues --date 2026-11-29 --account shop" },
	{ "bounces", "[--last N] [--category C] [--cluster] [--json]",
	    "  --last N                the last N bounced events (default "
	    "100)\n"
	    "  --category C            only bounces of this category "
	    "(bad-mailbox, ...)\n"
	    "  --cluster               every node's bounces "
	    "(PostgreSQL)\n" H_JSON,
	    "bounces --last 20" },
	{ "suppression list",
	    "[--account A] [--limit N] [--after ADDRESS] [--json]",
	    "  --account A             only this account's entries\n"
	    "  --limit N               at most N entries (default 1000; 0: "
	    "all)\n"
	    "  --after ADDRESS         the page after ADDRESS (with "
	    "--account)\n" H_JSON,
	    "suppression list --account shop" },
	{ "suppression show", "ADDRESS [--account A] [--json]",
	    "  --account A             only this account (default: every "
	    "account)\n" H_JSON,
	    "suppression show bob@example.net" },
	{ "suppression add", "ADDRESS|- --account A [--reason R] [--json]",
	    "  --account A             the account whose mail to it is "
	    "refused\n"
	    "  --reason R              manual (default) or a category "
	    "(bad-mailbox, ...)\n"
	    "  -                       read the addresses from standard input, "
	    "one a line\n" H_JSON,
	    "suppression add bob@example.net --account shop" },
	{ "suppression del", "ADDRESS [--account A] [--json]",
	    "  --account A             only this account (default: every "
	    "account)\n" H_JSON,
	    "suppression del bob@example.net --account shop" },
	{ "suppression export", "[--account A] [--json]",
	    "  --account A             only this account's entries\n"
	    "  --json                  accepted; the output is always JSON "
	    "lines\n",
	    "suppression export > suppressions.jsonl" },
	{ "events",
	    "--account A --since ID|DATETIME [--until ID|DATETIME] "
	    "[--type T,...] [--json]",
	    "  --account A             the account whose events are listed "
	    "(oldest first)\n"
	    "  --since ID|DATETIME     from this event id, or this UTC time\n"
	    "                          (2026-12-07T10:00:00Z or 2026-12-07)\n"
	    "  --until ID|DATETIME     up to this event id or time (a date: "
	    "its end)\n"
	    "  --type T,...            only delivered, deferred, bounced, "
	    "opened, ...\n"
	    "  --json                  the stored event objects, one a line\n",
	    "events --account shop --since 2026-12-07 --type bounced --json" },
	{ "callbacks replay",
	    "--account A --since ID|DATETIME [--until ID|DATETIME] "
	    "[--type T,...] [--force]",
	    "  --account A             queue A's events for its callback URL "
	    "again\n"
	    "  --since, --until, --type  the events, as for spoolctl events\n"
	    "  --force                 more than 10000 events at once\n",
	    "callbacks replay --account shop --since 2026-12-07T10:00:00Z" },
	{ "callbacks status", "[--json]", H_JSON, "callbacks status" },
	{ "status", "[--json]", H_JSON,
	    "status || echo 'smtpgate needs attention'" },
	{ "query", "[--cluster [--account LOGIN]] [--json] < REQUEST.json",
	    "  --cluster               every node's events (PostgreSQL)\n"
	    "  --account LOGIN         with --cluster: this account's "
	    "events\n"
	    "  --json                  accepted; the answer is always JSON\n",
	    "query < stat-uni.json" },
	{ "pause", "[--domain D [--account LOGIN]] [--json]",
	    "  --domain D              hold the deliveries to domain D (no "
	    "attempts)\n"
	    "  --account LOGIN         only this account's mail to D\n"
	    "  --json                  with no --domain: list the pauses as "
	    "JSON\n",
	    "pause --domain example.net" },
	{ "tls-report",
	    "--date D [--domain X] [--json] | --send [--date D] "
	    "[--domain X]",
	    "  --date D                the UTC day YYYY-MM-DD (--send: "
	    "yesterday)\n"
	    "  --domain X              only recipient domain X\n"
	    "  --json                  the RFC 8460 report (JSON)\n"
	    "  --send                  send each domain its report, to the "
	    "URIs of its\n"
	    "                          _smtp._tls TXT record; once per URI "
	    "and day\n",
	    "tls-report --date 2026-12-07 --json" },
	{ "cluster export", "",
	    "  (no options)            every local policy row into "
	    "PostgreSQL (cluster_dsn);\n"
	    "                          rows it has already are kept: safe "
	    "to run again\n",
	    "cluster export" },
	{ "cluster seal", "",
	    "  (no options)            every row of smtpgate.policy still in "
	    "clear sealed\n"
	    "                          with cluster_secret_file, and those "
	    "that open only\n"
	    "                          with cluster_secret_file_accept sealed "
	    "again; safe\n"
	    "                          to run again\n",
	    "cluster seal" },
	{ "resume", "--domain D [--account LOGIN]",
	    "  --domain D              end the pause of domain D; its mail is "
	    "due now\n"
	    "  --account LOGIN         the pause of this account's mail to D\n",
	    "resume --domain example.net" },
	/* the files spoold set aside (spoolctl_quarantine.c) */
	{ "quarantine list", "[--json]",
	    "  --json                  one JSON array: queue_id, size, "
	    "quarantined, account,\n"
	    "                          from, recipients (the reason is on "
	    "spoold's log line)\n",
	    "quarantine list" },
	{ "quarantine requeue", "QID... | --all",
	    "  --all                   every file in quarantine/\n"
	    "                          (back to incoming/new: spoold files it "
	    "again, as postsuper -r)\n",
	    "quarantine requeue 6620E38CA759C37CCE8E" },
};
#define CTL_NHELP (sizeof(ctl_help_tab) / sizeof(ctl_help_tab[0]))

static char ctl_cur[64]; /* the command being run: "account add" */

void
ctl_help_set(const char *cmd, const char *sub)
{
	(void)snprintf(ctl_cur, sizeof(ctl_cur), "%s%s%s", cmd, sub ? " " : "",
	    sub ? sub : "");
}

const char *
ctl_help_cur(void)
{
	return ctl_cur;
}

/* Does the table have cmd, or a sub-command of cmd ("account")? */
bool
ctl_help_known(const char *cmd)
{
	size_t i, n = strlen(cmd);

	for (i = 0; i < CTL_NHELP; i++)
		if (strncmp(ctl_help_tab[i].cmd, cmd, n) == 0 &&
		    (ctl_help_tab[i].cmd[n] == '\0' ||
			ctl_help_tab[i].cmd[n] == ' '))
			return true;
	return false;
}

const char *
ctl_help_usage(const char *cmd)
{
	size_t i;

	for (i = 0; i < CTL_NHELP; i++)
		if (strcmp(ctl_help_tab[i].cmd, cmd) == 0)
			return ctl_help_tab[i].usage;
	return NULL;
}

void
ctl_help_overview(FILE *fp)
{
	size_t i;

	(void)fputs("usage: spoolctl [-v] [-c FILE] COMMAND [ARGS]\n", fp);
	for (i = 0; i < CTL_NHELP; i++)
		(void)fprintf(fp, "  %s %s\n", ctl_help_tab[i].cmd,
		    ctl_help_tab[i].usage);
	(void)fputs("spoolctl help COMMAND shows its options and an example; "
		    "see spoolctl(8).\n",
	    fp);
}

/* Every entry of cmd or under it: usage, options, example. */
void
ctl_help_print(FILE *fp, const char *cmd)
{
	const struct ctl_help *h;
	size_t		       i, n = strlen(cmd);

	for (i = 0; i < CTL_NHELP; i++) {
		h = &ctl_help_tab[i];
		if (strncmp(h->cmd, cmd, n) != 0 ||
		    (h->cmd[n] != '\0' && h->cmd[n] != ' '))
			continue;
		(void)fprintf(fp,
		    "usage: spoolctl %s %s\n%sexample: spoolctl %s\n", h->cmd,
		    h->usage, h->opts, h->example);
	}
}

static void __attribute__((noreturn)) ctl_unknown_words(const char *what,
    const char *word, const char *const *words, size_t n, const char *help)
{
	const char *near = editdist_nearest(word, words, n, 2);

	if (near != NULL)
		ctl_usage("%s \"%s\"; did you mean \"%s\"? (spoolctl help%s%s)",
		    what, word, near, *help ? " " : "", help);
	ctl_usage("%s \"%s\" (spoolctl help%s%s lists them)", what, word,
	    *help ? " " : "", help);
}

void
ctl_unknown(const char *what, const char *word, const struct ctl_cmd *cmds,
    const char *help)
{
	const char *words[32];
	size_t	    n;

	for (n = 0; n < 32 && cmds[n].name != NULL; n++)
		words[n] = cmds[n].name;
	ctl_unknown_words(what, word, words, n, help);
}

void
ctl_help_check_sub(int argc, char **argv)
{
	const char *words[CTL_NHELP];
	char	    what[96];
	size_t	    i, n = 0, len = strlen(argv[0]);

	size_t w = 0;

	if (ctl_help_usage(argv[0]) != NULL)
		return; /* a command without sub-commands */
	for (i = 0; i < CTL_NHELP; i++) {
		if (strncmp(ctl_help_tab[i].cmd, argv[0], len) != 0 ||
		    ctl_help_tab[i].cmd[len] != ' ')
			continue;
		if (argc > 1 &&
		    strcmp(ctl_help_tab[i].cmd + len + 1, argv[1]) == 0)
			return;
		words[n++] = ctl_help_tab[i].cmd + len + 1;
		w += (size_t)snprintf(what + w,
		    w < sizeof(what) ? sizeof(what) - w : 0, "%s%s",
		    n > 1 ? "|" : "", words[n - 1]);
	}
	if (n == 0)
		return;
	if (argc < 2)
		ctl_usage("usage: spoolctl %s %s ...", argv[0], what);
	(void)snprintf(what, sizeof(what), "%s: unknown subcommand", argv[0]);
	ctl_unknown_words(what, argv[1], words, n, argv[0]);
}
