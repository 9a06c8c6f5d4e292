/*
 * spoolctl quarantine list|requeue: the files spoold set aside in
 * quarantine/ (a bad envelope, a file not written by smtpd, an unknown
 * account, a message that crashed spoold twice...). The reason, the
 * count of deaths and the time are in the note beside the file
 * (spool_qnote.h) as on spoold's log line "QID: quarantined, reason=...";
 * the file keeps its envelope and message as received.
 *
 * requeue (Postfix's postsuper -r) renames the file back into
 * incoming/new, never over a file of that name, and spoold files it again
 * as if it had just arrived: what it already recorded for that queue id
 * (a finished or filed message) still stops it from being filed twice.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "json.h"
#include "qid.h"
#include "spool.h"
#include "spool_qnote.h"
#include "spoolctl.h"
#include "xmem.h"

#define CTL_Q_ENV_MAX (1 << 20) /* envelope bytes read to describe a file */
#define CTL_Q_MAX     1000000	/* files listed */

struct ctl_qfile {
	char		   name[256];
	int64_t		   size;
	int64_t		   when;  /* the note's time, else ctime (the rename) */
	bool		   noted; /* qn holds its note */
	struct spool_qnote qn;
};

static int
ctl_q_cmp(const void *a, const void *b)
{
	const struct ctl_qfile *x = a, *y = b;

	if (x->when != y->when)
		return x->when < y->when ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The files of quarantine/ (no dot files), oldest first; -1 if unreadable. */
static int
ctl_q_scan(const struct ctl *ctl, struct ctl_qfile **v_r, size_t *n_r)
{
	char		  dir[4200];
	struct dirent	 *de;
	struct stat	  st;
	struct ctl_qfile *v = NULL;
	size_t		  n = 0, max = 0;
	DIR		 *d;

	if (spool_path(dir, sizeof(dir), ctl->cf->cf_spool_dir,
		SPOOL_QUARANTINE, NULL) == -1 ||
	    (d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL && n < CTL_Q_MAX) {
		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			-1 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == max) {
			max = max ? max * 2 : 64;
			v = xreallocarray(v, max, sizeof(*v));
		}
		if (str_copy(v[n].name, sizeof(v[n].name), de->d_name) == -1)
			continue;
		v[n].size = (int64_t)st.st_size;
		v[n].when = (int64_t)st.st_ctime;
		v[n].noted = spool_qnote_read(ctl->cf->cf_spool_dir, v[n].name,
				 &v[n].qn) == 0;
		if (v[n].noted)
			v[n].when = v[n].qn.qn_time;
		n++;
	}
	(void)closedir(d);
	if (n > 0)
		qsort(v, n, sizeof(*v), ctl_q_cmp);
	*v_r = v;
	*n_r = n;
	return 0;
}

/* Its envelope, if it has one that parses (0), without following links. */
static int
ctl_q_env(const struct ctl *ctl, const char *name, struct spool_env *e)
{
	char path[4200];
	int  fd, rc;

	if (spool_path(path, sizeof(path), ctl->cf->cf_spool_dir,
		SPOOL_QUARANTINE, name) == -1 ||
	    (fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) ==
		-1)
		return errno;
	rc = spool_env_read(fd, CTL_Q_ENV_MAX, e);
	(void)close(fd); /* read-only */
	return rc;
}

static void
ctl_q_json_one(struct json_gen *g, const struct ctl_qfile *f,
    const struct spool_env *e, bool env_ok)
{
	char   dt[32];
	size_t i;

	json_obj_begin(g);
	json_kv_str(g, "queue_id", f->name);
	json_kv_int(g, "size", f->size);
	spool_dt(f->when, dt);
	json_kv_str(g, "quarantined", dt);
	json_kv_str(g, "reason", f->noted ? f->qn.qn_reason : NULL);
	json_key(g, "count");
	if (f->noted)
		json_int(g, (int64_t)f->qn.qn_count);
	else
		json_null(g);
	json_kv_str(g, "account", env_ok ? e->pe_account : NULL);
	json_kv_str(g, "from", env_ok ? e->pe_from : NULL);
	json_key(g, "recipients");
	json_arr_begin(g);
	for (i = 0; env_ok && i < e->pe_nrcpt; i++)
		json_str(g, e->pe_rcpt[i]);
	json_arr_end(g);
	json_obj_end(g);
}

static void
ctl_q_text_one(const struct ctl_qfile *f, const struct spool_env *e,
    bool env_ok)
{
	char when[20];

	ctl_time(f->when, when);
	if (!env_ok)
		printf("%-20s %10lld  %s  (no readable envelope)\n", f->name,
		    (long long)f->size, when);
	else
		printf(
		    "%-20s %10lld  %s  account=%s, from=<%s>, nrcpt=%zu%s%s\n",
		    f->name, (long long)f->size, when, e->pe_account,
		    e->pe_from, e->pe_nrcpt, e->pe_nrcpt > 0 ? ", to=" : "",
		    e->pe_nrcpt > 0 ? e->pe_rcpt[0] : "");
	if (f->noted)
		printf("%-20s reason=%s, count=%u\n", "", f->qn.qn_reason,
		    f->qn.qn_count);
}

static int
ctl_q_list(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_qfile *v = NULL;
	struct json_gen	 *g = NULL;
	struct spool_env  e;
	size_t		  i, n = 0;
	bool		  json, ok;

	json = ctl_want_json(argc, argv, NULL, 0, 0);
	ctl_prepare(ctl);
	if (ctl_q_scan(ctl, &v, &n) == -1)
		ctl_die("quarantine/: %s", strerror(errno));
	if (json) {
		g = json_gen_new(false);
		json_arr_begin(g);
	}
	for (i = 0; i < n; i++) {
		spool_env_init(&e);
		ok = ctl_q_env(ctl, v[i].name, &e) == 0;
		if (json)
			ctl_q_json_one(g, &v[i], &e, ok);
		else
			ctl_q_text_one(&v[i], &e, ok);
		spool_env_free(&e);
	}
	if (json) {
		json_arr_end(g);
		ctl_json_print(g);
		json_gen_free(&g);
	} else if (n == 0)
		printf("quarantine/ is empty\n");
	free(v);
	return ctl_out_status(CTL_OK);
}

/* quarantine/name -> incoming/new/name, never replacing one; 0 or errno. */
static int
ctl_q_requeue_one(const struct ctl *ctl, const char *name)
{
	char src[4200], dst[4200];

	if (name[0] == '.' || name[0] == '\0' || strchr(name, '/') != NULL)
		return ENOENT;
	if (spool_path(src, sizeof(src), ctl->cf->cf_spool_dir,
		SPOOL_QUARANTINE, name) == -1 ||
	    spool_path(dst, sizeof(dst), ctl->cf->cf_spool_dir, SPOOL_NEW,
		name) == -1)
		return errno;
	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == -1)
		return errno;
	/* the note goes with it; one left behind is only never listed */
	if (spool_qnote_remove(ctl->cf->cf_spool_dir, name) != 0)
		ctl_warn("%s: removing its quarantine note failed", name);
	return 0;
}

static int
ctl_q_requeue(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { { "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 } };
	struct ctl_qfile	  *v = NULL;
	size_t			   i, n = 0, moved = 0;
	bool			   all = false;
	int			   rc, status = CTL_OK;

	while (ctl_getopt(argc, argv, lo) != -1)
		all = true;
	ctl_operands(argc, argv, all ? 0 : 1, all ? 0 : INT32_MAX, NULL);
	ctl_prepare(ctl);
	if (all && ctl_q_scan(ctl, &v, &n) == -1)
		ctl_die("quarantine/: %s", strerror(errno));
	for (i = 0; i < (all ? n : (size_t)(argc - optind)); i++) {
		const char *name = all ? v[i].name : argv[optind + (int)i];

		if ((rc = ctl_q_requeue_one(ctl, name)) != 0) {
			ctl_warn("%s: %s", name,
			    rc == ENOENT       ? "not in quarantine/ (spoolctl "
						 "quarantine list shows them)"
				: rc == EEXIST ? "already in incoming/new"
					       : strerror(rc));
			status = CTL_FAIL;
			continue;
		}
		printf("%s: requeued (spoold files it again)\n", name);
		moved++;
	}
	if (moved > 0 &&
	    (spool_sync(ctl->cf->cf_spool_dir, SPOOL_NEW) != 0 ||
		spool_sync(ctl->cf->cf_spool_dir, SPOOL_QUARANTINE) != 0))
		ctl_warn("fsync of incoming/new or quarantine/ failed");
	free(v);
	return ctl_out_status(status);
}

int
ctl_cmd_quarantine(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_cmd subs[] = {
		{ .name = "list", .fn = ctl_q_list },
		{ .name = "requeue", .fn = ctl_q_requeue },
		{ .name = NULL, .fn = NULL },
	};

	return ctl_dispatch(ctl, subs, argc, argv, NULL);
}
