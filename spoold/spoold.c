/*
 * spoold: files accepted messages (incoming/new) into LMDB and queue/
 * (DESIGN step 2). main() holds options, setup and the loop (STYLE L1);
 * the filing itself is spoold_file.c, the rules spoold_policy.c.
 *
 * main() is common/daemon.c's skeleton; the loop is common/ev.c:
 * inotify on incoming/new (IN_MOVED_TO, IN_CLOSE_WRITE) and a rescan
 * timer (every spoold_rescan_interval, and at start) make incoming/new
 * "dirty", which arms the pass timer (at once, or after the back-off of
 * a failed pass); signals come through the self-pipe; retention runs a
 * slice before each poll. A pass files everything in incoming/new,
 * spoold_batch files per transaction; SIGTERM is honoured between
 * batches.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "daemon.h"
#include "ev.h"
#include "fsx.h"
#include "log.h"
#include "priv.h"
#include "sig.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spoold_file.h"
#include "spoold_metrics.h"
#include "spoold_poison.h"
#include "spoold_prune.h"
#include "xmem.h"

#define SPOOLD_BACKOFF_MAX \
	60 /* seconds between retries after a disk/map error */
#define SPOOLD_SCAN_MAX 16384 /* names filed per chunk of a pass */
#define SPOOLD_SCAN_MIN 64    /* names room at the start of a pass */

/* One pass: a single directory scan, filed in chunks as it goes. */
struct spoold_names {
	char (*v)[SPOOLD_NAME_MAX];
	size_t	       n, cap, max; /* v grows to max, as names come */
	struct spoold *sd;
	size_t	       total; /* filed in this pass */
	size_t	       seen;  /* names the scan reported */
	int	       rc;    /* a transient error stopped the pass */
};

static int spoold_file_names(struct spoold *, struct spoold_names *, size_t *);

static struct spoold_metrics *spoold_metrics; /* metrics_listen, or NULL */

static int
spoold_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Files the names collected so far (in QID, i.e. arrival, order); 1 stops the scan. */
static int
spoold_flush(struct spoold_names *nm)
{
	size_t done;

	qsort(nm->v, nm->n, sizeof(*nm->v), spoold_name_cmp);
	nm->rc = spoold_file_names(nm->sd, nm, &done);
	nm->total += done;
	nm->n = 0;
	return nm->rc != 0 || sig_stopping() ? 1 : 0;
}

static int
spoold_collect(const char *name, void *arg)
{
	struct spoold_names *nm = arg;

	if (name[0] == '.')
		return 0;
	if (nm->n == nm->cap) {
		/* not max at once: a pass usually finds a few names, and
		 * zeroing 4 MB per pass cost more than filing them */
		nm->cap = nm->cap == 0 ? SPOOLD_SCAN_MIN : nm->cap * 2;
		if (nm->cap > nm->max)
			nm->cap = nm->max;
		nm->v = xreallocarray(nm->v, nm->cap, sizeof(*nm->v));
	}
	if (str_copy(nm->v[nm->n], SPOOLD_NAME_MAX, name) == -1)
		return 0; /* not ours: no QID is that long; left alone */
	nm->seen++;
	return ++nm->n == nm->max ? spoold_flush(nm) : 0;
}

/* After SPOOL_EFULL: true (and one log line) if the map grew, so the
 * batch is worth one more try now rather than after the back-off. */
static bool
spoold_map_grown(struct spoold *sd)
{
	struct spool_map m;

	if (!spool_map_grown(sd->sd_sp, &m))
		return false;
	log_info("lmdb map grown: from=%lld, to=%lld, max=%lld",
	    (long long)m.mp_grew_from, (long long)m.mp_size,
	    (long long)m.mp_max);
	return true;
}

/*
 * Files names[0..n) in batches. A batch that fails on one file for a
 * reason other than the disk or the map is retried file by file, and the
 * file that still fails alone is set aside: one bad file never blocks the
 * rest. Returns 0 or a transient error (filing must pause).
 */
static int
spoold_file_names(struct spoold *sd, struct spoold_names *nm, size_t *done_r)
{
	size_t i = 0, n, bad, batch = (size_t)sd->sd_cf->cf_spoold_batch;
	int    rc;

	*done_r = 0;
	while (i < nm->n) {
		n = nm->n - i < batch ? nm->n - i : batch;
		rc = spoold_file_batch(sd, nm->v + i, n, &bad);
		if (rc == SPOOL_EFULL && spoold_map_grown(sd))
			rc = spoold_file_batch(sd, nm->v + i, n, &bad);
		if (rc != 0 && spoold_error_transient(rc)) {
			log_warnx("filing stopped: %s; files stay in "
				  "incoming/new, retrying",
			    spool_strerror(rc));
			return rc;
		}
		if (rc != 0 && n > 1) {
			/* file the ones before it, then the file alone */
			batch = bad > 0 && bad < n ? bad : 1;
			continue;
		}
		if (rc != 0)
			spoold_quarantine(sd, nm->v[i], spool_strerror(rc));
		i += n;
		*done_r += n;
		if (sig_stopping())
			break;
		batch = (size_t)sd->sd_cf->cf_spoold_batch;
	}
	return 0;
}

/*
 * Files everything in incoming/new: one scan of the directory in its own
 * order, filed in chunks of SPOOLD_SCAN_MAX as it goes, so a backlog of N
 * files costs one listing, not one per chunk (which was quadratic).
 * Files that arrive meanwhile are left to the next pass. 0, or a
 * transient error.
 */
static int
spoold_pass(struct spoold *sd)
{
	struct spoold_names nm = { .sd = sd, .max = SPOOLD_SCAN_MAX };
	int64_t		    t0;
	double		    secs;
	int		    rc;

	if ((rc = spoold_maildrop_pass(sd)) != 0)
		log_warnx("maildrop: %s (retried)", spool_strerror(rc));
	/* what the last run died on, one at a time, before anything else */
	if ((rc = spoold_poison_recover(sd)) != 0 || sig_stopping())
		return rc;
	t0 = ev_clock_ms();
	rc = spool_scan_stream(sd->sd_cf->cf_spool_dir, SPOOL_NEW,
	    spoold_collect, &nm);
	if (rc != 0 && rc != 1)
		log_warnx("scan incoming/new: %s", spool_strerror(rc));
	else if (nm.rc == 0 && nm.n > 0)
		(void)spoold_flush(&nm);
	secs = (double)(ev_clock_ms() - t0) / 1000.0;
	if (nm.total > 0)
		log_info("pass: files=%zu, scanned=%zu, seconds=%.3f, "
			 "rate=%.0f/s, batch=%lld",
		    nm.total, nm.seen, secs,
		    secs > 0 ? (double)nm.total / secs : 0.0,
		    (long long)sd->sd_cf->cf_spoold_batch);
	free(nm.v);
	return nm.rc != 0 ? nm.rc : rc == 1 ? 0 : rc;
}

static void
spoold_reload(struct spoold *sd)
{
	struct conf *ncf;
	char	     err[1024];

	if ((ncf = conf_load(sd->sd_cf->cf_path, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s (keeping the old configuration)", err);
		return;
	}
	if (strcmp(ncf->cf_spool_dir, sd->sd_cf->cf_spool_dir) != 0)
		log_warnx(
		    "reload: spool_dir change needs a restart; keeping %s",
		    sd->sd_cf->cf_spool_dir);
	if (strcmp(ncf->cf_metrics_listen, sd->sd_cf->cf_metrics_listen) != 0)
		log_warnx("reload: metrics_listen change needs a restart");
	/* the open spool and the trigger path stay; the rest comes from ncf */
	free(ncf->cf_spool_dir);
	ncf->cf_spool_dir = xstrdup(sd->sd_cf->cf_spool_dir);
	conf_free(&sd->sd_cf);
	sd->sd_cf = ncf;
	log_set_dest(daemon_log_dest(ncf));
	log_info("reloaded %s", ncf->cf_path);
}

/* inotify on incoming/new and maildrop/; -1 (rescans only) if it cannot be had. */
static int
spoold_watch(const char *spool_dir)
{
	char dir[4096], md[4096];
	int  fd;

	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_NEW, NULL) == -1 ||
	    spool_path(md, sizeof(md), spool_dir, SPOOL_MAILDROP, NULL) == -1)
		return -1;
	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		log_warn("inotify_init1 (falling back to rescans)");
		return -1;
	}
	if (inotify_add_watch(fd, dir,
		IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) == -1) {
		log_warn("inotify_add_watch %s (falling back to rescans)", dir);
		(void)close(fd);
		return -1;
	}
	if (inotify_add_watch(fd, md, IN_MOVED_TO | IN_ONLYDIR) == -1)
		log_warn("inotify_add_watch %s (local mail waits for rescans)",
		    md);
	return fd;
}

static void
spoold_drain(int fd)
{
	char b[16384];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

/* Only one spoold per spool: an exclusive lock on incoming/new itself. */
static void
spoold_lock(const char *spool_dir)
{
	char dir[4096];
	int  fd;

	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_NEW, NULL) == -1 ||
	    (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		log_fatal("open %s", spool_dir);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		log_fatalx("another spoold is filing %s (lock on incoming/new)",
		    dir);
	/* fd stays open: the lock lives as long as the process */
}

/* Temporaries of killed writers (fsx_sweep_tmp) in spool_dir (pid files,
 * deliverd's shaping.state, clusterd's cluster.state) and in db/. */
static void
spoold_sweep_tmp(const struct spoold *sd, const char *sub)
{
	char   dir[4096];
	size_t n;

	if (str_printf(dir, sizeof(dir), "%s%s%s", sd->sd_cf->cf_spool_dir,
		sub != NULL ? "/" : "", sub != NULL ? sub : "") == -1)
		return;
	if (fsx_sweep_tmp(dir, sd->sd_cf->cf_stale_tmp_age, &n) == -1)
		log_warn("sweep %s", dir);
	else if (n > 0)
		log_info("removed %zu stale temporary file(s) from %s", n, dir);
}

static void
spoold_cleanup_tmp(const struct spoold *sd)
{
	size_t n = 0;
	int    rc;

	rc = spool_tmp_cleanup(sd->sd_cf->cf_spool_dir,
	    sd->sd_cf->cf_stale_tmp_age, &n);
	if (rc != 0)
		log_warnx("clean incoming/tmp: %s", spool_strerror(rc));
	else if (n > 0)
		log_info("removed %zu stale file(s) from incoming/tmp", n);
	if ((n = spoold_clean_copies(sd)) > 0)
		log_info("removed %zu stale copies from queue/", n);
	spoold_sweep_tmp(sd, NULL);
	spoold_sweep_tmp(sd, "db");
}

/*
 * At each rescan: dead readers' slots cleared (spool_map_info runs the
 * check once a minute), and the free-space watermark, logged once each
 * way. spoold keeps filing below it: filing frees incoming/.
 */
static void
spoold_storage_check(struct spoold *sd)
{
	static bool	 low;
	struct spool_map m;
	int64_t		 min = spool_space_min(sd->sd_cf), avail;
	int		 rc;

	spool_map_info(sd->sd_sp, &m);
	if (m.mp_grew_from != 0) /* by a write other than filing */
		log_info("lmdb map grown: from=%lld, to=%lld, max=%lld",
		    (long long)m.mp_grew_from, (long long)m.mp_size,
		    (long long)m.mp_max);
	if (m.mp_readers > 0)
		log_info("cleared %u stale lmdb reader slot(s)", m.mp_readers);
	rc = spool_space_check(sd->sd_cf->cf_spool_dir, min, &avail);
	if (rc == ENOSPC && !low)
		log_warnx(
		    "spool file system below min_free_space: free=%lld, "
		    "min_free_space=%lld; smtpd answers 452, filing goes on",
		    (long long)avail, (long long)min);
	else if (rc == 0 && low)
		log_info(
		    "spool file system above min_free_space again: free=%lld",
		    (long long)avail);
	if (rc == 0 || rc == ENOSPC)
		low = rc == ENOSPC;
}

/*
 * At each rescan: events a failed export left behind, and those other
 * writers logged without exporting (engagement events, issue 16), are
 * appended; so every event reaches event_log within
 * spoold_rescan_interval.
 */
static void
spoold_export_retry(struct spoold *sd)
{
	size_t n = 0;
	int    rc;

	if ((rc = spool_events_export(sd->sd_sp, sd->sd_cf->cf_event_log,
		 &n)) != 0) {
		log_warnx("events export to %s: %s", sd->sd_cf->cf_event_log,
		    spool_strerror(rc));
		sd->sd_export_pending = true;
		return;
	}
	if (sd->sd_export_pending)
		log_info("events export resumed: %zu event(s)", n);
	sd->sd_export_pending = false;
}

/* The loop's state: what wakes a pass, and the back-off after a failed one. */
struct spoold_loop {
	struct spoold	   *lp_sd;
	struct ev	   *lp_ev;
	struct ev_timer	    lp_scan; /* rescan: every spoold_rescan_interval */
	struct ev_timer	    lp_pass; /* a pass is due (dirty) */
	struct spoold_prune lp_prune;
	int64_t		    lp_retry_at; /* no pass before (after a failure) */
	int64_t		    lp_backoff;	 /* ms */
	int		    lp_ifd;
};

/* Something may wait in incoming/new: a pass, at once or after the back-off. */
static void
spoold_dirty(struct spoold_loop *lp)
{
	if (!ev_timer_armed(&lp->lp_pass) &&
	    ev_timer_at(lp->lp_ev, &lp->lp_pass, lp->lp_retry_at) == -1)
		log_panic("pass timer: %s", strerror(errno));
}

static void
spoold_on_pass(struct ev *e, struct ev_timer *t, void *arg)
{
	struct spoold_loop *lp = arg;

	(void)e;
	(void)t;
	if (sig_stopping())
		return;
	if (spoold_pass(lp->lp_sd) != 0) {
		lp->lp_retry_at = ev_now_ms() + lp->lp_backoff;
		lp->lp_backoff = lp->lp_backoff * 2 > SPOOLD_BACKOFF_MAX * 1000
		    ? SPOOLD_BACKOFF_MAX * 1000
		    : lp->lp_backoff * 2;
		spoold_dirty(lp);
		return;
	}
	lp->lp_backoff = 1000;
	if (!sig_stopping())
		lp->lp_sd->sd_pass_done = true;
}

static void
spoold_on_scan(struct ev *e, struct ev_timer *t, void *arg)
{
	struct spoold_loop *lp = arg;
	struct spoold	   *sd = lp->lp_sd;

	spoold_cleanup_tmp(sd);
	spoold_export_retry(sd);
	spoold_storage_check(sd);
	spoold_prune_done(sd);
	spoold_dirty(lp);
	/* the interval of the configuration in force (SIGHUP may change it) */
	(void)ev_timer_arm(e, t,
	    (int64_t)sd->sd_cf->cf_spoold_rescan_interval * 1000, 0);
}

static void
spoold_on_inotify(struct ev *e, int fd, unsigned revents, void *arg)
{
	(void)e;
	(void)revents;
	spoold_drain(fd);
	spoold_dirty(arg);
}

static void
spoold_on_signal(struct ev *e, unsigned sigs, void *arg)
{
	struct spoold_loop *lp = arg;

	if (sigs & SIG_HUP)
		spoold_reload(lp->lp_sd);
	if (sigs & SIG_CHLD)
		spoold_metrics_reap(spoold_metrics);
	if (sig_stopping())
		ev_break(e);
}

/* Retention, a slice at a time between filing passes: no sleep while a
 * prune pass is under way. */
static bool
spoold_before_poll(struct ev *e, void *arg)
{
	struct spoold_loop *lp = arg;

	(void)e;
	if (sig_stopping())
		return false;
	return spoold_prune_run(lp->lp_sd, &lp->lp_prune, time(NULL));
}

static void
spoold_loop(struct spoold *sd, int ifd)
{
	struct spoold_loop lp = { .lp_sd = sd,
		.lp_ifd = ifd,
		.lp_backoff = 1000 };

	/* the self-pipe, inotify; two timers and the metrics child's */
	if ((lp.lp_ev = ev_new(2, 3)) == NULL)
		log_fatal("ev_new");
	if (ev_signal(lp.lp_ev, spoold_on_signal, &lp) == -1 ||
	    (ifd != -1 &&
		ev_fd_add(lp.lp_ev, ifd, EV_READ, spoold_on_inotify, &lp) ==
		    -1))
		log_fatal("ev");
	ev_timer_init(&lp.lp_scan, spoold_on_scan, &lp);
	ev_timer_init(&lp.lp_pass, spoold_on_pass, &lp);
	ev_before_poll(lp.lp_ev, spoold_before_poll, &lp);
	(void)ev_timer_arm(lp.lp_ev, &lp.lp_scan, 0, 0); /* at start */
	spoold_metrics_start(spoold_metrics, lp.lp_ev, sd->sd_cf);
	if (!sig_stopping())
		ev_run(lp.lp_ev);
	spoold_metrics_stop(&spoold_metrics);
	ev_free(&lp.lp_ev);
}

/* Before the drop: whose files incoming/new may hold (besides spoold's). */
static void
spoold_ids(struct spoold *sd)
{
	gid_t g;

	sd->sd_smtpd_uid = (uid_t)-1;
	if (priv_is_root() &&
	    priv_lookup(sd->sd_cf->cf_smtpd_user, &sd->sd_smtpd_uid, &g) == -1)
		log_fatalx_status(2, "%s: unknown smtpd_user %s",
		    sd->sd_cf->cf_path, sd->sd_cf->cf_smtpd_user);
}

/* Phase 1, as root: the trigger path and whose files incoming/new may hold. */
static void
spoold_bind(struct daemon *d)
{
	struct spoold *sd = d->d_arg;

	sd->sd_cf = d->d_cf;
	if (spool_trigger_path(sd->sd_trigger, sizeof(sd->sd_trigger),
		sd->sd_cf->cf_spool_dir) == -1)
		log_fatalx("spool_dir too long: %s", sd->sd_cf->cf_spool_dir);
	spoold_ids(sd);
	spoold_metrics = spoold_metrics_bind(sd->sd_cf);
}

static const char *
spoold_user(const struct conf *cf)
{
	return cf->cf_spoold_user;
}

/* Phase 2, unprivileged: the lock, LMDB, the loop. */
static int
spoold_run(struct daemon *d)
{
	struct spoold *sd = d->d_arg;
	int	       rc, ifd;

	sd->sd_self_uid = geteuid();
	if (!priv_is_root() && sd->sd_smtpd_uid == (uid_t)-1)
		sd->sd_smtpd_uid = sd->sd_self_uid; /* test mode: one user */
	spoold_lock(sd->sd_cf->cf_spool_dir);
	ifd = spoold_watch(sd->sd_cf->cf_spool_dir);
	if ((rc = spool_open(sd->sd_cf->cf_spool_dir,
		 sd->sd_cf->cf_lmdb_map_size, sd->sd_cf->cf_lmdb_map_max,
		 SPOOL_CLUSTER_IF(sd->sd_cf->cf_cluster_dsn), &sd->sd_sp)) != 0)
		log_fatalx("spool_open %s: %s", sd->sd_cf->cf_spool_dir,
		    spool_strerror(rc));
	if ((rc = spool_tag_load(sd->sd_cf->cf_spool_dir, sd->sd_key)) != 0 ||
	    (rc = spool_tag_made(sd->sd_cf->cf_spool_dir, &sd->sd_key_made)) !=
		0)
		log_fatalx("envelope key in %s/db: %s", sd->sd_cf->cf_spool_dir,
		    spool_strerror(rc));
	spoold_track_init(sd->sd_cf->cf_spool_dir, sd->sd_cf->cf_cluster_node);
	spoold_poison_open(sd);
	log_info("started: spool=%s, batch=%lld, rescan=%llds",
	    sd->sd_cf->cf_spool_dir, (long long)sd->sd_cf->cf_spoold_batch,
	    (long long)sd->sd_cf->cf_spoold_rescan_interval);
	spoold_loop(sd, ifd);
	log_info("stopping: filed=%zu, quarantined=%zu", sd->sd_filed,
	    sd->sd_quarantined);
	spoold_poison_close(sd);
	spool_close(&sd->sd_sp);
	if (ifd != -1)
		(void)close(ifd);
	conf_free(&sd->sd_cf);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct spoold		sd;
	static const struct daemon_spec spec = {
		.ds_name = "spoold",
		.ds_spool = spool_tree_create_err,
		.ds_bind = spoold_bind,
		.ds_user = spoold_user,
		.ds_run = spoold_run,
		.ds_arg = &sd,
	};

	daemon_main(argc, argv, &spec);
}
