/*
 * t_metrics: common/metrics (the per-daemon blocks, the increments and
 * their label sets, a child's private counters) and metrics_render
 * (Prometheus text format 0.0.4).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"
#include "tap.h"

static char t_dir[] = "/tmp/t_metrics.XXXXXX";

/* The value of the exact series line "series VALUE" in text, or -1. */
static long long
t_value(const char *text, const char *series)
{
	const char *p = text;
	size_t	    n = strlen(series);

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
		p += n;
	}
	return -1;
}

static char *
t_render(const struct metrics_gauges *g)
{
	static struct metrics_block snap;
	struct buf		    b;

	metrics_snapshot(&snap);
	buf_init(&b, 1 << 20);
	t_ok(metrics_render(&b, &snap, g) == 0, "render fits");
	return b.data;
}

static size_t
t_file_size(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	pg = pg < 4096 ? 4096 : pg;
	return (sizeof(struct metrics_block) + pg - 1) / pg * pg *
	    (1 + METRICS_NDAEMONS);
}

/* The writable mappings of metrics.shm in this process (/proc/self/maps). */
static int
t_rw_maps(void)
{
	char  line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int   n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, METRICS_FILE) != NULL &&
		    strchr(line, ' ')[2] == 'w')
			n++;
	(void)fclose(f);
	return n;
}

static void
t_attach(void)
{
	char	    path[256];
	struct stat st;

	t_ok(mkdtemp(t_dir) != NULL, "temp dir");
	t_ok(metrics_attach(t_dir, "deliverd") == 0,
	    "attach creates the block");
	(void)snprintf(path, sizeof(path), "%s/%s", t_dir, METRICS_FILE);
	t_ok(stat(path, &st) == 0 && st.st_size == (off_t)t_file_size() &&
		(st.st_mode & 0777) == 0600,
	    "metrics.shm: a header and a block per daemon, mode 0600");
	t_ok(metrics_block() != NULL &&
		metrics_block()->mb_magic == METRICS_MAGIC,
	    "header written");
}

/* Increments in a child (another process, as smtpd's workers) are seen here. */
static int
t_child_incs(void *arg)
{
	int i;

	(void)arg;
	if (metrics_block() != NULL || metrics_attach(t_dir, "smtpd") != 0)
		return 1;
	for (i = 0; i < 1000; i++)
		metrics_smtp_reply("250 2.0.0 Ok");
	metrics_smtp_reply("250-PIPELINING"); /* continuation: not counted */
	metrics_smtp_reply("421 4.7.0 Error");
	metrics_smtp_reply("499 odd"); /* other 4xx */
	metrics_smtp_reply("hello");   /* not a reply */
	return 0;
}

static void
t_replies(void)
{
	char *text;
	int   st = t_child(t_child_incs, NULL);

	t_ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child ran");
	text = t_render(NULL);
	t_int_eq(
	    t_value(text,
		"smtpgate_smtpd_replies_total{code=\"250\",class=\"2xx\"}"),
	    1000, "250 x1000 from another process");
	t_int_eq(
	    t_value(text,
		"smtpgate_smtpd_replies_total{code=\"421\",class=\"4xx\"}"),
	    1, "421");
	t_int_eq(
	    t_value(text,
		"smtpgate_smtpd_replies_total{code=\"other\",class=\"4xx\"}"),
	    1, "499 counts as other 4xx");
	t_int_eq(
	    t_value(text,
		"smtpgate_smtpd_replies_total{code=\"other\",class=\"2xx\"}"),
	    0, "a continuation line is not a reply");
	free(text);
}

static const char *const *t_spoold_lines;

static int
t_child_spoold(void *arg)
{
	const char *const *lines = t_spoold_lines;
	size_t		   i;

	(void)arg;
	if (metrics_attach(t_dir, "spoold") != 0)
		return 1;
	for (i = 0; i < 5; i++)
		metrics_spoold_log(lines[i], strlen(lines[i]));
	return 0;
}

static void
t_spoold(void)
{
	static const struct {
		const char	   *text;
		enum metrics_reason r;
	} cases[] = {
		{ "635 6.7.8 issue is blocked", METRICS_R_ISSUE_BLOCKED },
		{ "635 6.7.8 error/sender/onmoderation",
		    METRICS_R_SENDER_ONMODERATION },
		{ "635 6.7.8 no From:", METRICS_R_NO_FROM },
		{ "635 6.7.8 no email in From:", METRICS_R_NO_EMAIL_IN_FROM },
		{ "635 6.7.8 bad X-Letter-Id", METRICS_R_BAD_LETTER_ID },
		{ "550 5.0.0 Email has permanent delivery errors",
		    METRICS_R_PERMANENT_ERRORS },
		{ "550 5.0.0 Email is in the account stoplist",
		    METRICS_R_STOPLIST },
		{ "451 something new", METRICS_R_OTHER },
	};
	static const char *const lines[] = {
		"4F2A: filed, account=acc, issue=1, nrcpt=2, status=queued",
		"4F2A: to=<a@x>, status=bounced (635 6.7.8 no Subject:)",
		"4F2A: to=<b@x>, status=bounced (550 5.0.0 Email is in the "
		"account stoplist)",
		"x.tmp: quarantined, reason=unreadable",
		"4F2A: already filed, moving",
	};
	char  *text;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		t_ok(metrics_reason_of(cases[i].text, strlen(cases[i].text)) ==
			cases[i].r,
		    "reason of %s", cases[i].text);
	t_spoold_lines = lines;
	t_ok(t_child(t_child_spoold, NULL) == 0, "spoold child");
	text = t_render(NULL);
	t_int_eq(t_value(text, "smtpgate_spoold_filed_total"), 1, "filed");
	t_int_eq(t_value(text, "smtpgate_spoold_quarantined_total"), 1,
	    "quarantined");
	t_int_eq(
	    t_value(text,
		"smtpgate_spoold_policy_refused_total{reason=\"no-subject\"}"),
	    1, "no-subject");
	t_int_eq(
	    t_value(text,
		"smtpgate_spoold_policy_refused_total{reason=\"stoplist\"}"),
	    1, "stoplist");
	free(text);
}

/* 40 destinations: 32 slots, the rest "other"; a label is escaped. */
static void
t_destinations(void)
{
	char to[128], *text;
	int  i;

	for (i = 0; i < 40; i++) {
		(void)snprintf(to, sizeof(to), "u@D%d.example", i);
		metrics_delivery(METRICS_O_DELIVERED, BOUNCE_NONE, to,
		    i % 2 == 0);
	}
	metrics_delivery(METRICS_O_BOUNCED, BOUNCE_BAD_MAILBOX, "v@d0.example",
	    false);
	metrics_delivery(METRICS_O_DEFERRED, BOUNCE_QUOTA, "v@d1.example",
	    false);
	metrics_delivery(METRICS_O_DEFERRED, (enum bounce_cat)99, "no-at-sign",
	    false);
	text = t_render(NULL);
	t_int_eq(t_value(text,
		     "smtpgate_deliverd_destination_outcomes_total{"
		     "destination=\"d0.example\",outcome=\"delivered\"}"),
	    1, "d0 (lower-cased)");
	t_int_eq(t_value(text,
		     "smtpgate_deliverd_destination_outcomes_total{"
		     "destination=\"d0.example\",outcome=\"bounced\"}"),
	    1, "d0 bounced");
	t_int_eq(t_value(text,
		     "smtpgate_deliverd_destination_outcomes_total{"
		     "destination=\"d31.example\",outcome=\"delivered\"}"),
	    1, "the 32nd has a slot");
	t_int_eq(t_value(text,
		     "smtpgate_deliverd_destination_outcomes_total{"
		     "destination=\"d32.example\",outcome=\"delivered\"}"),
	    -1, "the 33rd has none");
	t_int_eq(t_value(text,
		     "smtpgate_deliverd_destination_outcomes_total{"
		     "destination=\"other\",outcome=\"delivered\"}"),
	    8, "8 others");
	t_int_eq(t_value(text,
		     "smtpgate_deliverd_destination_outcomes_total{"
		     "destination=\"other\",outcome=\"deferred\"}"),
	    1, "no domain: other");
	t_int_eq(t_value(text,
		     "smtpgate_deliverd_outcomes_total{outcome=\"deferred\","
		     "category=\"other\"}"),
	    1, "a category out of range counts as other");
	t_int_eq(t_value(text,
		     "smtpgate_deliverd_outcomes_total{outcome=\"deferred\","
		     "category=\"quota\"}"),
	    1, "quota");
	t_int_eq(t_value(text, "smtpgate_deliverd_delivered_total"), 40,
	    "delivered");
	t_int_eq(t_value(text, "smtpgate_deliverd_delivered_tls_total"), 20,
	    "with TLS");
	t_ok(strstr(text, "outcome=\"deferred\",category=\"none\"") == NULL,
	    "category none only for delivered");
	free(text);
}

static void
t_restarts_and_gauges(void)
{
	struct metrics_gauges g = { .mg_queue_age = { 3, 0, 0, 0, 0, 0, 1 },
		.mg_queue_oldest = 99999,
		.mg_outbox = 7,
		.mg_outbox_lag = 42,
		.mg_map_used = 4096 };
	char		     *text;

	metrics_restart(true);
	metrics_restart(false);
	metrics_restart(false);
	text = t_render(&g);
	t_int_eq(t_value(text,
		     "smtpgate_process_restarts_total{daemon=\"deliverd\","
		     "reason=\"crash\"}"),
	    1, "a crash, counted for the attaching daemon");
	t_int_eq(t_value(text,
		     "smtpgate_process_restarts_total{daemon=\"deliverd\","
		     "reason=\"exit\"}"),
	    2, "two exits");
	t_int_eq(t_value(text, "smtpgate_queue_messages{age=\"5m\"}"), 3,
	    "age bucket 5m");
	t_int_eq(t_value(text, "smtpgate_queue_messages{age=\"+Inf\"}"), 1,
	    "age bucket +Inf");
	t_int_eq(t_value(text, "smtpgate_queue_oldest_age_seconds"), 99999,
	    "oldest");
	t_int_eq(t_value(text, "smtpgate_callback_lag_seconds"), 42,
	    "callback lag");
	t_int_eq(t_value(text, "smtpgate_callback_backlog_events"), 7,
	    "backlog");
	t_ok(strstr(text, "# TYPE smtpgate_queue_messages gauge\n") != NULL &&
		strstr(text, "# TYPE smtpgate_spoold_filed_total counter\n") !=
		    NULL,
	    "TYPE lines");
	t_ok(text[strlen(text) - 1] == '\n', "ends with a newline");
	free(text);
	text = t_render(NULL);
	t_ok(strstr(text, "smtpgate_queue_messages") == NULL,
	    "no gauges: none rendered");
	free(text);
}

/* A buffer too small: -1, never a cut page passed as whole. */
static void
t_too_small(void)
{
	static struct metrics_block snap;
	struct buf		    b;

	metrics_snapshot(&snap);
	buf_init(&b, 2048);
	t_ok(metrics_render(&b, &snap, NULL) == -1,
	    "a full buffer fails the render");
	buf_release(&b);
}

/* A file of another size (an older layout) is replaced; values persist
 * across a second attach of the same layout (another process). */
static int
t_child_reattach(void *arg)
{
	(void)arg;
	if (metrics_attach(t_dir, "deliverd") != 0)
		return 1;
	return metrics_block()->mb_deliverd_tls[1] == 40 ? 0 : 2;
}

static void
t_reattach(void)
{
	char  path[256];
	FILE *f;
	int   st = t_child(t_child_reattach, NULL);

	t_ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "a second attach maps the same counters");
	(void)snprintf(path, sizeof(path), "%s/%s", t_dir, METRICS_FILE);
	t_ok(unlink(path) == 0 && (f = fopen(path, "w")) != NULL &&
		fputs("old layout", f) >= 0 && fclose(f) == 0,
	    "an odd file");
	metrics_detach();
	t_ok(metrics_attach(t_dir, "deliverd") == 0 &&
		metrics_block()->mb_deliverd_tls[1] == 0,
	    "replaced by a fresh block");
	(void)unlink(path);
	(void)rmdir(t_dir);
}

/*
 * A child keeps no writable mapping after fork; attached as smtpd, what it
 * writes into deliverd's fields of its own block is never rendered.
 */
static int
t_child_foreign(void *arg)
{
	(void)arg;
	if (metrics_block() != NULL || t_rw_maps() != 0)
		return 1;
	if (metrics_attach(t_dir, "smtpd") != 0 || t_rw_maps() != 1)
		return 2;
	metrics_add(&metrics_block()->mb_deliverd_tls[1], 1000);
	metrics_add(&metrics_block()->mb_spoold_filed, 1000);
	metrics_add(&metrics_block()->mb_restarts[METRICS_D_DELIVERD][0], 7);
	metrics_add(&metrics_block()->mb_smtpd_messages[0], 5);
	return 0;
}

static void
t_ownership(void)
{
	char *before = t_render(NULL), *after;

	t_int_eq(t_rw_maps(), 1, "the parent: its own block only");
	t_int_eq(t_child(t_child_foreign, NULL), 0, "the child");
	after = t_render(NULL);
	t_int_eq(t_value(after, "smtpgate_deliverd_delivered_total"),
	    t_value(before, "smtpgate_deliverd_delivered_total"),
	    "deliverd's counter: not smtpd's to change");
	t_int_eq(t_value(after, "smtpgate_spoold_filed_total"),
	    t_value(before, "smtpgate_spoold_filed_total"),
	    "spoold's counter: not smtpd's to change");
	t_int_eq(t_value(after,
		     "smtpgate_process_restarts_total{daemon=\"deliverd\","
		     "reason=\"crash\"}"),
	    t_value(before,
		"smtpgate_process_restarts_total{daemon=\"deliverd\","
		"reason=\"crash\"}"),
	    "deliverd's restarts: not smtpd's to change");
	t_int_eq(t_value(after,
		     "smtpgate_smtpd_messages_total{result=\"accepted\"}"),
	    t_value(before,
		"smtpgate_smtpd_messages_total{result=\"accepted\"}") +
		5,
	    "smtpd's own counter changes");
	free(before);
	free(after);
}

/* A worker counts privately; its master adds the deltas it sends. */
static int
t_child_delta(void *arg)
{
	struct metrics_delta md, none;
	int		     i;

	(void)arg;
	if (metrics_attach(t_dir, "smtpd") != 0)
		return 1;
	if (fork() == 0) { /* the worker */
		metrics_private();
		for (i = 0; i < 3; i++)
			metrics_smtp_reply("354 go ahead");
		_exit(!metrics_delta_take(&md) || metrics_delta_take(&none) ||
		    t_rw_maps() != 0 ||
		    write(STDOUT_FILENO, &md, sizeof(md)) != sizeof(md));
	}
	(void)wait(NULL);
	return 0;
}

static int
t_child_add(void *arg)
{
	if (metrics_attach(t_dir, "smtpd") != 0)
		return 1;
	metrics_delta_add(arg);
	return 0;
}

/* A delta that would wrap a counter (lower it) saturates instead. */
static int
t_child_wrap(void *arg)
{
	struct metrics_delta md;

	(void)arg;
	memset(&md, 0, sizeof(md));
	md.mdl_n[0] = UINT64_MAX - 1; /* sessions accepted */
	if (metrics_attach(t_dir, "smtpd") != 0)
		return 1;
	metrics_delta_add(&md);
	metrics_delta_add(&md);
	return metrics_block()->mb_smtpd_sessions[0] == UINT64_MAX ? 0 : 2;
}

static void
t_delta(void)
{
	struct metrics_delta md;
	int		     fds[2], out, st;
	char		    *text;

	memset(&md, 0, sizeof(md));
	t_ok(pipe(fds) == 0, "pipe");
	out = dup(STDOUT_FILENO);
	(void)dup2(fds[1], STDOUT_FILENO);
	st = t_child(t_child_delta, NULL);
	(void)dup2(out, STDOUT_FILENO);
	(void)close(fds[1]);
	t_ok(st == 0 && read(fds[0], &md, sizeof(md)) == sizeof(md),
	    "the worker's delta");
	text = t_render(NULL);
	t_int_eq(
	    t_value(text,
		"smtpgate_smtpd_replies_total{code=\"354\",class=\"3xx\"}"),
	    0, "not in the block before the master adds it");
	free(text);
	t_int_eq(t_child(t_child_add, &md), 0, "the master adds it");
	text = t_render(NULL);
	t_int_eq(
	    t_value(text,
		"smtpgate_smtpd_replies_total{code=\"354\",class=\"3xx\"}"),
	    3, "counted once the master added it");
	free(text);
	(void)close(fds[0]);
	(void)close(out);
	t_int_eq(t_child(t_child_wrap, NULL), 0,
	    "a delta cannot wrap a counter below its value");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "attach", t_attach },
		{ "replies", t_replies },
		{ "spoold", t_spoold },
		{ "destinations", t_destinations },
		{ "restarts_and_gauges", t_restarts_and_gauges },
		{ "too_small", t_too_small },
		{ "ownership", t_ownership },
		{ "delta", t_delta },
		{ "reattach", t_reattach },
	};

	return T_RUN(cases);
}
