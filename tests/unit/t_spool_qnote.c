/*
 * t_spool_qnote: the note beside a quarantined file (spool_qnote.h):
 * written and read back, a reason cut and made printable, a damaged or
 * oversized note refused, a link never followed, removal.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "spool.h"
#include "spool_qnote.h"
#include "tap.h"

static char t_dir[64];

static void
t_setup(void)
{
	char q[128];

	(void)str_copy(t_dir, sizeof(t_dir), "/tmp/t_qnote.XXXXXX");
	if (mkdtemp(t_dir) == NULL)
		t_diag("mkdtemp: %s", strerror(errno));
	(void)snprintf(q, sizeof(q), "%s/quarantine", t_dir);
	(void)mkdir(q, 0700);
}

static void
t_put(const char *name, const char *text)
{
	char  p[256];
	FILE *f;

	(void)snprintf(p, sizeof(p), "%s/quarantine/%s", t_dir, name);
	if ((f = fopen(p, "w")) != NULL) {
		(void)fputs(text, f);
		(void)fclose(f);
	}
}

static void
t_roundtrip(void)
{
	struct spool_qnote w = { .qn_time = 1796670000, .qn_count = 2 }, r;

	(void)str_copy(w.qn_reason, sizeof(w.qn_reason),
	    "spoold died while filing it (2 times)");
	t_int_eq(spool_qnote_write(t_dir, "Q1", &w), 0, "write");
	memset(&r, 0, sizeof(r));
	t_int_eq(spool_qnote_read(t_dir, "Q1", &r), 0, "read");
	t_int_eq(r.qn_time, 1796670000, "time");
	t_int_eq(r.qn_count, 2, "count");
	t_str_eq(r.qn_reason, w.qn_reason, "reason");
	t_int_eq(spool_qnote_remove(t_dir, "Q1"), 0, "remove");
	t_int_eq(spool_qnote_read(t_dir, "Q1", &r), ENOENT, "gone");
	t_int_eq(spool_qnote_remove(t_dir, "Q1"), 0, "remove none");
}

static void
t_reason_printable_and_cut(void)
{
	struct spool_qnote w = { .qn_time = 1, .qn_count = 0 }, r;

	memset(w.qn_reason, 'x', SPOOL_QNOTE_REASON_MAX);
	w.qn_reason[SPOOL_QNOTE_REASON_MAX] = '\0';
	w.qn_reason[3] = '\n';
	w.qn_reason[5] = '\t';
	t_int_eq(spool_qnote_write(t_dir, "Q2", &w), 0, "write");
	t_int_eq(spool_qnote_read(t_dir, "Q2", &r), 0, "read");
	t_int_eq((long long)strlen(r.qn_reason), SPOOL_QNOTE_REASON_MAX, "len");
	t_ok(r.qn_reason[3] == '?' && r.qn_reason[5] == '?', "made printable");
}

static void
t_damaged(void)
{
	struct spool_qnote r;
	char		   big[SPOOL_QNOTE_MAX + 100];
	char		   p[256], l[256];

	t_put(".Q3.why", "smtpgate-quarantine 2\ntime 1\ncount 0\nreason x\n");
	t_int_eq(spool_qnote_read(t_dir, "Q3", &r), SPOOL_EFORMAT, "version");
	t_put(".Q4.why", "smtpgate-quarantine 1\ntime x\ncount 0\nreason x\n");
	t_int_eq(spool_qnote_read(t_dir, "Q4", &r), SPOOL_EFORMAT, "time");
	t_put(".Q5.why", "smtpgate-quarantine 1\ntime 1\ncount 0\nreason x");
	t_int_eq(spool_qnote_read(t_dir, "Q5", &r), SPOOL_EFORMAT, "cut");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "smtpgate-quarantine 1\ntime 1\ncount 0\nreason ", 44);
	t_put(".Q6.why", big);
	t_int_eq(spool_qnote_read(t_dir, "Q6", &r), SPOOL_EFORMAT, "too big");
	(void)snprintf(p, sizeof(p), "%s/quarantine/.Q7.why", t_dir);
	(void)snprintf(l, sizeof(l), "%s/quarantine/.Q3.why", t_dir);
	t_ok(symlink(l, p) == 0, "symlink");
	t_int_eq(spool_qnote_read(t_dir, "Q7", &r), ELOOP, "link not followed");
	t_int_eq(spool_qnote_read(t_dir, "../x", &r), EINVAL, "a path");
}

static void
t_cleanup(void)
{
	static const char *const names[] = { ".Q2.why", ".Q3.why", ".Q4.why",
		".Q5.why", ".Q6.why", ".Q7.why" };
	char			 p[256];
	size_t			 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		(void)snprintf(p, sizeof(p), "%s/quarantine/%s", t_dir,
		    names[i]);
		(void)unlink(p);
	}
	(void)snprintf(p, sizeof(p), "%s/quarantine", t_dir);
	t_ok(rmdir(p) == 0 && rmdir(t_dir) == 0, "nothing else left");
}

static const struct t_case cases[] = {
	{ "setup", t_setup },
	{ "roundtrip", t_roundtrip },
	{ "reason", t_reason_printable_and_cut },
	{ "damaged", t_damaged },
	{ "cleanup", t_cleanup },
};

int
main(void)
{
	return T_RUN(cases);
}
