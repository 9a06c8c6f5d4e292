/*
 * spoolctl status (issue 18 item 7): a monitoring check. Each daemon is
 * up when spool_dir/NAME.pid (daemon_pidfile_write) names a live process
 * whose /proc/PID/comm is NAME; its uptime comes from /proc/PID/stat.
 * Then the queue, the callback backlog, the LMDB map, free space and the
 * quarantine. Exit 1, with one "problem:" line each, when an expected
 * daemon is down, the spool is below min_free_space or the map is
 * nearly at lmdb_map_max.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "fsx.h"
#include "json.h"
#include "spoolctl.h"

#define CTL_MAP_WARN_PCT 90 /* of lmdb_map_max */
#define CTL_PROBLEMS_MAX 8

/* One line per daemon; wanted NULL: always expected. */
static const struct ctl_daemon {
	const char *name;
	bool (*wanted)(const struct conf *);
} ctl_daemons[] = {
	{ "smtpd", NULL }, { "spoold", NULL }, { "deliverd", NULL },
	/* h-trackd: { "trackd", <track_listen is set> }, */
	{ "clusterd", ctl_cluster_wanted }, /* issue 19 */
};
#define CTL_NDAEMONS (sizeof(ctl_daemons) / sizeof(ctl_daemons[0]))

struct ctl_dstate {
	bool	wanted, up;
	long	pid;
	int64_t uptime; /* seconds, -1 unknown */
};

struct ctl_status {
	struct ctl_dstate     d[CTL_NDAEMONS];
	struct spool_counts   cnt;
	int64_t		      map_used, map_size, map_max;
	int64_t		      disk_free, disk_min;
	size_t		      quarantined;
	int64_t		      quarantine_last;
	struct spool_cb_state cb; /* the latest callback error */
	char		      cb_login[SPOOL_LOGIN_MAX];
	struct ctl_cluster    cluster; /* issue 19 */
	char		      problem[CTL_PROBLEMS_MAX][160];
	size_t		      nproblem;
};

static void ctl_st_problem(struct ctl_status *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ctl_st_problem(struct ctl_status *s, const char *fmt, ...)
{
	va_list ap;

	if (s->nproblem == CTL_PROBLEMS_MAX)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(s->problem[s->nproblem++], sizeof(s->problem[0]), fmt,
	    ap);
	va_end(ap);
}

/* A small /proc or pid file into buf; -1 if it cannot be read. */
static int
ctl_st_read(const char *path, char *buf, size_t sz)
{
	ssize_t n;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = fsx_read_full(fd, buf, sz - 1);
	(void)close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* Seconds since the process started: /proc/PID/stat field 22 (ticks
 * after boot) against /proc/uptime. -1 if unknown. */
static int64_t
ctl_st_uptime(long pid)
{
	char		   path[64], buf[1024], *p;
	double		   up;
	unsigned long long start;
	long		   hz = sysconf(_SC_CLK_TCK);
	int		   i;

	(void)snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (hz <= 0 || ctl_st_read(path, buf, sizeof(buf)) == -1 ||
	    (p = strrchr(buf, ')')) == NULL)
		return -1;
	for (i = 2; i < 22 && p != NULL; i++) /* p is at field 2's end */
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &start) != 1 ||
	    ctl_st_read("/proc/uptime", buf, sizeof(buf)) == -1 ||
	    sscanf(buf, "%lf", &up) != 1)
		return -1;
	return (int64_t)up - (int64_t)(start / (unsigned long long)hz);
}

static void
ctl_st_daemon(const struct conf *cf, const char *name, struct ctl_dstate *d)
{
	char path[4200], buf[64], *end;

	d->pid = 0;
	d->uptime = -1;
	(void)snprintf(path, sizeof(path), "%s/%s.pid", cf->cf_spool_dir, name);
	if (ctl_st_read(path, buf, sizeof(buf)) == -1)
		return;
	errno = 0;
	d->pid = strtol(buf, &end, 10);
	if (errno != 0 || d->pid <= 0 || (*end != '\n' && *end != '\0')) {
		d->pid = 0;
		return;
	}
	/* the pid file outlives its daemon: the id may be another process's */
	(void)snprintf(path, sizeof(path), "/proc/%ld/comm", d->pid);
	if (ctl_st_read(path, buf, sizeof(buf)) == -1)
		return;
	buf[strcspn(buf, "\n")] = '\0';
	d->up = strcmp(buf, name) == 0;
	if (d->up)
		d->uptime = ctl_st_uptime(d->pid);
}

static void
ctl_st_quarantine(const struct conf *cf, struct ctl_status *s)
{
	char	       dir[4200];
	struct dirent *de;
	struct stat    st;
	DIR	      *d;

	if (spool_path(dir, sizeof(dir), cf->cf_spool_dir, SPOOL_QUARANTINE,
		NULL) == -1 ||
	    (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
			-1)
			continue;
		s->quarantined++;
		/* ctime: the rename into quarantine/ (mtime: the arrival) */
		if (st.st_ctime > s->quarantine_last)
			s->quarantine_last = (int64_t)st.st_ctime;
	}
	(void)closedir(d);
}

/* The latest callback error of any account that is failing now. */
static void
ctl_st_callbacks(struct spool_txn *t, struct ctl_status *s)
{
	char		      login[SPOOL_LOGIN_MAX] = "";
	struct spool_cb_state st;

	while (spool_outbox_next_account(t, login, login, NULL) == 0) {
		if (spool_cb_state_get(t, login, &st) == 0 &&
		    st.cs_last_err > st.cs_last_ok &&
		    st.cs_last_err > s->cb.cs_last_err) {
			s->cb = st;
			(void)str_copy(s->cb_login, sizeof(s->cb_login), login);
		}
	}
}

static void
ctl_st_gather(struct ctl *ctl, struct ctl_status *s)
{
	const struct conf *cf = ctl->cf;
	struct spool_txn  *txn;
	size_t		   i;
	int		   rc;
	char		   cpb[sizeof(s->problem[0])];

	for (i = 0; i < CTL_NDAEMONS; i++) {
		s->d[i].wanted = ctl_daemons[i].wanted == NULL ||
		    ctl_daemons[i].wanted(cf);
		ctl_st_daemon(cf, ctl_daemons[i].name, &s->d[i]);
		if (s->d[i].wanted && !s->d[i].up)
			ctl_st_problem(s, "%s is down", ctl_daemons[i].name);
	}
	s->disk_min = spool_space_min(cf);
	rc = spool_space_check(cf->cf_spool_dir, s->disk_min, &s->disk_free);
	if (rc == ENOSPC)
		ctl_st_problem(s,
		    "free space %lld bytes is below min_free_space %lld",
		    (long long)s->disk_free, (long long)s->disk_min);
	else if (rc != 0)
		ctl_st_problem(s, "free space of %s: %s", cf->cf_spool_dir,
		    strerror(rc));
	ctl_st_quarantine(cf, s);
	txn = ctl_begin(ctl, false);
	if ((rc = spool_counts(txn, &s->cnt)) != 0)
		ctl_die_rc(rc, "status");
	ctl_st_callbacks(txn, s);
	ctl_cluster_gather(ctl, txn, &s->cluster);
	spool_abort(&txn);
	if (ctl_cluster_problem(&s->cluster, cpb, sizeof(cpb)))
		ctl_st_problem(s, "%s", cpb);
	spool_map_used(ctl->sp, &s->map_used, &s->map_size);
	s->map_max = cf->cf_lmdb_map_max;
	if (s->map_max > 0 && s->map_used > s->map_max / 100 * CTL_MAP_WARN_PCT)
		ctl_st_problem(s,
		    "lmdb map %lld of lmdb_map_max %lld bytes in use",
		    (long long)s->map_used, (long long)s->map_max);
}

static void
ctl_st_json(const struct ctl_status *s)
{
	struct json_gen *g = json_gen_new(false);
	char		 dt[21];
	size_t		 i;

	json_obj_begin(g);
	json_kv_bool(g, "ok", s->nproblem == 0);
	json_key(g, "daemons");
	json_arr_begin(g);
	for (i = 0; i < CTL_NDAEMONS; i++) {
		if (!s->d[i].wanted && !s->d[i].up)
			continue;
		json_obj_begin(g);
		json_kv_str(g, "name", ctl_daemons[i].name);
		json_kv_bool(g, "up", s->d[i].up);
		json_key(g, "pid");
		if (s->d[i].up)
			json_int(g, s->d[i].pid);
		else
			json_null(g);
		json_key(g, "uptime");
		if (s->d[i].uptime >= 0)
			json_int(g, s->d[i].uptime);
		else
			json_null(g);
		json_obj_end(g);
	}
	json_arr_end(g);
	json_kv_int(g, "messages", (int64_t)s->cnt.sc_messages);
	json_kv_int(g, "recipients_pending", (int64_t)s->cnt.sc_rcpts_pending);
	json_kv_int(g, "callback_backlog", (int64_t)s->cnt.sc_outbox);
	json_kv_int(g, "lmdb_used", s->map_used);
	json_kv_int(g, "lmdb_map_size", s->map_size);
	json_kv_int(g, "lmdb_map_max", s->map_max);
	json_kv_int(g, "free_space", s->disk_free);
	json_kv_int(g, "min_free_space", s->disk_min);
	json_kv_int(g, "quarantined", (int64_t)s->quarantined);
	json_key(g, "last_quarantined");
	if (s->quarantine_last > 0) {
		spool_dt(s->quarantine_last, dt);
		json_str(g, dt);
	} else
		json_null(g);
	json_key(g, "last_callback_error");
	if (s->cb.cs_last_err > 0) {
		spool_dt(s->cb.cs_last_err, dt);
		json_obj_begin(g);
		json_kv_str(g, "account", s->cb_login);
		json_kv_str(g, "dt", dt);
		json_kv_str(g, "error", s->cb.cs_err);
		json_obj_end(g);
	} else
		json_null(g);
	ctl_cluster_json(g, &s->cluster);
	json_key(g, "problems");
	json_arr_begin(g);
	for (i = 0; i < s->nproblem; i++)
		json_str(g, s->problem[i]);
	json_arr_end(g);
	json_obj_end(g);
	ctl_json_print(g);
	json_gen_free(&g);
}

static void
ctl_st_text(const struct ctl_status *s)
{
	char   dt[21];
	size_t i;

	for (i = 0; i < CTL_NDAEMONS; i++) {
		if (!s->d[i].wanted && !s->d[i].up)
			continue;
		if (s->d[i].up)
			printf("%-9s up    pid %ld, uptime %llds\n",
			    ctl_daemons[i].name, s->d[i].pid,
			    (long long)s->d[i].uptime);
		else
			printf("%-9s DOWN\n", ctl_daemons[i].name);
	}
	printf("queue     %llu message(s), %llu recipient(s) pending\n",
	    (unsigned long long)s->cnt.sc_messages,
	    (unsigned long long)s->cnt.sc_rcpts_pending);
	printf("callbacks %llu event(s) waiting\n",
	    (unsigned long long)s->cnt.sc_outbox);
	printf(
	    "lmdb      %lld of %lld bytes mapped in use (lmdb_map_max %lld)\n",
	    (long long)s->map_used, (long long)s->map_size,
	    (long long)s->map_max);
	printf("disk      %lld bytes free (min_free_space %lld)\n",
	    (long long)s->disk_free, (long long)s->disk_min);
	printf("quarantine %zu file(s)", s->quarantined);
	if (s->quarantine_last > 0) {
		spool_dt(s->quarantine_last, dt);
		printf(", the last at %s", dt);
	}
	printf("%s\n", s->quarantined > 0 ? " (spoolctl quarantine list)" : "");
	if (s->cb.cs_last_err > 0) {
		spool_dt(s->cb.cs_last_err, dt);
		printf("last callback error: %s %s: %s\n", s->cb_login, dt,
		    s->cb.cs_err);
	}
	ctl_cluster_text(&s->cluster);
	for (i = 0; i < s->nproblem; i++)
		printf("problem: %s\n", s->problem[i]);
}

int
ctl_cmd_status(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_status *s;
	bool		   json = ctl_want_json(argc, argv, NULL, 0, 0);
	int		   rc;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		ctl_die("out of memory");
	ctl_st_gather(ctl, s);
	if (json)
		ctl_st_json(s);
	else
		ctl_st_text(s);
	rc = s->nproblem == 0 ? CTL_OK : CTL_FAIL;
	free(s);
	return rc;
}
