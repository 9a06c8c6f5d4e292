/*
 * Unit tests of the events export (spool_export.c): events.jsonl written
 * in batches, appended once whatever crashes between the file and the
 * mark, never through a link. Each case works in a fresh temporary spool
 * under /tmp.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bounce.h"
#include "buf.h"
#include "json.h"
#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h" /* meta access, fake schema changes, old records */
#include "tap.h"
#include "tfix.h"

#define Q1  "0000000000001AAAAAAA"
#define Q2  "0000000000002AAAAAAA"
#define MAP (INT64_C(64) << 20)

static char tdir[64];

static struct spool *
db_fresh(void)
{
	return t_spool_fresh(tdir, sizeof(tdir), "t_spool_export", MAP);
}

static size_t
file_lines(const char *path)
{
	FILE  *f;
	size_t n = 0;
	int    c;

	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		if (c == '\n')
			n++;
	(void)fclose(f);
	return n;
}

static void
add_events(struct spool *sp, int n)
{
	struct spool_txn  *t = t_wtxn(sp);
	struct spool_event ev;

	t_ev_init(&ev, SPOOL_EV_DELIVERED, SPOOL_CL_NONE, "L", Q1, 0);
	while (n-- > 0)
		(void)spool_event_add(t, &ev, NULL);
	if (spool_commit(&t) != 0)
		t_diag("commit failed");
}

/* A daemon user may plant links in the spool; root's export (spoolctl)
 * must write through neither a symbolic nor a hard link (issue 14). */
static void
t_export_links(struct spool *sp)
{
	char	    canary[4096], lnk[4096];
	struct stat st;
	size_t	    n = 9;
	FILE	   *f;

	(void)snprintf(canary, sizeof(canary), "%s/canary", tdir);
	(void)snprintf(lnk, sizeof(lnk), "%s/events-link.jsonl", tdir);
	if ((f = fopen(canary, "w")) != NULL)
		(void)fclose(f);
	add_events(sp, 1);
	t_ok(symlink(canary, lnk) == 0, "symbolic link planted");
	t_int_eq(spool_events_export(sp, lnk, &n), ELOOP,
	    "export refuses a symbolic link");
	t_ok(stat(canary, &st) == 0 && st.st_size == 0,
	    "its target is untouched");
	(void)unlink(lnk);
	t_ok(link(canary, lnk) == 0, "hard link planted");
	t_int_eq(spool_events_export(sp, lnk, &n), EPERM,
	    "export refuses a second name");
	t_ok(stat(canary, &st) == 0 && st.st_size == 0,
	    "the file is untouched");
	(void)unlink(lnk);
	(void)unlink(canary);
}

static void
t_export(void)
{
	struct spool *sp = db_fresh();
	char	      path[128], bad[128];
	struct stat   st;
	size_t	      n = 99;

	(void)snprintf(path, sizeof(path), "%s/events.jsonl", tdir);
	(void)snprintf(bad, sizeof(bad), "%s/nodir/events.jsonl", tdir);
	t_int_eq(spool_events_export(sp, path, &n), 0, "nothing to export");
	t_int_eq((long long)n, 0, "n = 0");
	add_events(sp, 3);
	t_int_eq(spool_events_export(sp, path, &n), 0, "export");
	t_int_eq((long long)n, 3, "three exported");
	t_int_eq((long long)file_lines(path), 3, "three lines");
	t_ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640,
	    "file mode 0640");
	t_int_eq(spool_events_export(sp, path, &n), 0, "again");
	t_int_eq((long long)n, 0, "cursor: nothing twice");
	add_events(sp, 2);
	t_int_eq(spool_events_export(sp, bad, &n), ENOENT, "failing export");
	t_int_eq(spool_events_export(sp, path, &n), 0, "export after failure");
	t_int_eq((long long)n, 2, "cursor not advanced by the failure");
	t_int_eq((long long)file_lines(path), 5, "appended");
	t_export_links(sp);
	spool_close(&sp);
}

static void
append_text(const char *path, const char *text)
{
	FILE *f;

	if ((f = fopen(path, "a")) == NULL)
		return;
	(void)fputs(text, f);
	(void)fclose(f);
}

/* A crash between writing lines and committing the cursor leaves lines
 * that the next export writes again: they must be cut first. */
static void
t_export_crash(void)
{
	struct spool *sp = db_fresh();
	char	      path[128], old[160];
	size_t	      n;

	(void)snprintf(path, sizeof(path), "%s/events.jsonl", tdir);
	add_events(sp, 2);
	(void)spool_events_export(sp, path, &n);
	append_text(path, "{\"uncommitted\":1}\n{\"uncommitted\":2}\n{\"half");
	add_events(sp, 1);
	t_int_eq(spool_events_export(sp, path, &n), 0,
	    "export after a crashed one");
	t_int_eq((long long)n, 1, "one new event");
	t_int_eq((long long)file_lines(path), 3, "crashed lines cut: 2 + 1");
	(void)snprintf(old, sizeof(old), "%s.1", path);
	(void)rename(path, old); /* rotation by rename */
	add_events(sp, 2);
	t_int_eq(spool_events_export(sp, path, &n), 0, "export after rotation");
	t_int_eq((long long)file_lines(path), 2, "new file: only new events");
	t_int_eq((long long)file_lines(old), 3, "rotated file untouched");
	if (truncate(path, 0) == -1) /* rotation by copytruncate */
		t_diag("truncate failed");
	append_text(path, "{\"someone\":1}\n");
	add_events(sp, 1);
	t_int_eq(spool_events_export(sp, path, &n), 0,
	    "export after copytruncate");
	t_int_eq((long long)file_lines(path), 2, "shorter file: nothing cut");
	spool_close(&sp);
}

/* Opens its own environment (never one carried across fork) and exports
 * everything; exit 0 on success. */
static void
child_export(const char *path)
{
	struct spool *csp;
	size_t	      n;
	int	      rc;

	(void)alarm(30);
	if (spool_open(tdir, MAP, MAP, 0, &csp) != 0)
		_exit(2);
	rc = spool_events_export(csp, path, &n);
	spool_close(&csp);
	_exit(rc == 0 ? 0 : 1);
}

/* Commits one event in its own environment; exit 0 once committed. */
static void
child_commit(void)
{
	struct spool *csp;

	(void)alarm(10); /* blocked on the write lock: killed */
	if (spool_open(tdir, MAP, MAP, 0, &csp) != 0)
		_exit(2);
	add_events(csp, 1);
	spool_close(&csp); /* nothing left for valgrind's leak check */
	_exit(0);
}

static size_t
fifo_lines(const char *path)
{
	char	buf[65536];
	ssize_t k;
	size_t	n = 0;
	int	fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return 0;
	while ((k = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < k; i++)
			n += buf[i] == '\n';
	(void)close(fd);
	return n;
}

/*
 * The export writes and syncs its file with no transaction open (issue 13
 * item 9): while an exporter is stuck writing (a FIFO nobody reads yet)
 * another writer commits; a backlog goes out in bounded batches.
 */
static void
t_export_batches(void)
{
	struct spool *sp = db_fresh();
	char	      path[128];
	pid_t	      exporter, writer;
	int	      status = -1;
	size_t	      n, lines;

	add_events(sp, 2 * SPOOL_EXPORT_BATCH + 123);
	spool_close(&sp);
	(void)snprintf(path, sizeof(path), "%s/events.jsonl", tdir);
	t_ok(mkfifo(path, 0600) == 0, "event_log is a FIFO with no reader");
	if ((exporter = fork()) == 0)
		child_export(path);
	(void)usleep(300000); /* the exporter blocks in open(2) */
	if ((writer = fork()) == 0)
		child_commit();
	(void)waitpid(writer, &status, 0);
	t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "a writer commits while the exporter writes the file");
	lines = fifo_lines(path); /* lets the exporter go on */
	(void)waitpid(exporter, &status, 0);
	t_int_eq((long long)lines, SPOOL_EXPORT_BATCH,
	    "the exporter wrote one batch");
	t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 1,
	    "fdatasync of a FIFO fails");
	(void)unlink(path);
	if (spool_open(tdir, MAP, MAP, 0, &sp) != 0)
		return;
	t_int_eq(spool_events_export_some(sp, path, SPOOL_EXPORT_BATCH, &n), 0,
	    "batch 1");
	t_int_eq((long long)n, SPOOL_EXPORT_BATCH, "a full batch");
	t_int_eq(spool_events_export_some(sp, path, SPOOL_EXPORT_BATCH, &n), 0,
	    "batch 2");
	t_int_eq((long long)n, SPOOL_EXPORT_BATCH, "a full batch again");
	t_int_eq(spool_events_export_some(sp, path, SPOOL_EXPORT_BATCH, &n), 0,
	    "batch 3");
	t_int_eq((long long)n, 124, "the rest and the writer's event");
	t_int_eq(spool_events_export(sp, path, &n), 0, "nothing left");
	t_int_eq((long long)n, 0, "n = 0");
	t_int_eq((long long)file_lines(path), 2 * SPOOL_EXPORT_BATCH + 124,
	    "every event once, the failed batch not repeated");
	spool_close(&sp);
}

/* ---- environment: version, map full, read-only, modes */

static const struct t_case cases[] = {
	{ "export", t_export },
	{ "export_crash", t_export_crash },
	{ "export_batches", t_export_batches },
};

int
main(void)
{
	(void)umask(077); /* modes must not depend on it */
	return T_RUN_RMTREE(cases, tdir);
}
