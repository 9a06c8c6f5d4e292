/*
 * spoold: files accepted messages (incoming/new) into LMDB and queue/
 * (DESIGN step 2). main() holds options, setup and the loop (STYLE L1);
 * the filing itself is spoold_file.c, the rules spoold_policy.c.
 *
 * Wake-ups: inotify on incoming/new (IN_MOVED_TO, IN_CLOSE_WRITE), a
 * rescan every spoold_rescan_interval (and at start), signals through
 * the self-pipe. A pass files everything in incoming/new, spoold_batch
 * files per transaction; SIGTERM is honoured between batches.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "priv.h"
#include "sig.h"
#include "spool.h"
#include "spoold_file.h"
#include "spoold_prune.h"
#include "xmem.h"

#define SPOOLD_BACKOFF_MAX	60	/* seconds between retries after a disk/map error */
#define SPOOLD_SCAN_MAX		16384	/* names filed per chunk of a pass */

/* One pass: a single directory scan, filed in chunks as it goes. */
struct spoold_names {
	char	(*v)[SPOOLD_NAME_MAX];
	size_t	 n, max;
	struct spoold	*sd;
	size_t	 total;		/* filed in this pass */
	size_t	 seen;		/* names the scan reported */
	int	 rc;		/* a transient error stopped the pass */
};

static __attribute__((noreturn)) void
spoold_usage(void)
{
	(void)fprintf(stderr, "usage: spoold [-v] [-c FILE]\n");
	exit(2);
}

static int spoold_file_names(struct spoold *, struct spoold_names *, size_t *);

static int
spoold_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Files the names collected so far (in QID, i.e. arrival, order); 1 stops the scan. */
static int
spoold_flush(struct spoold_names *nm)
{
	size_t	 done;

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
	if (str_copy(nm->v[nm->n], SPOOLD_NAME_MAX, name) == -1)
		return 0;	/* not ours: no QID is that long; left alone */
	nm->seen++;
	return ++nm->n == nm->max ? spoold_flush(nm) : 0;
}

/* After SPOOL_EFULL: true (and one log line) if the map grew, so the
 * batch is worth one more try now rather than after the back-off. */
static bool
spoold_map_grown(struct spoold *sd)
{
	struct spool_map	m;

	if (!spool_map_grown(sd->sd_sp, &m))
		return false;
	log_info("lmdb map grown: from=%lld, to=%lld, max=%lld", (long long)m.mp_grew_from,
	    (long long)m.mp_size, (long long)m.mp_max);
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
	size_t	 i = 0, n, bad, batch = (size_t)sd->sd_cf->cf_spoold_batch;
	int	 rc;

	*done_r = 0;
	while (i < nm->n) {
		n = nm->n - i < batch ? nm->n - i : batch;
		rc = spoold_file_batch(sd, nm->v + i, n, &bad);
		if (rc == SPOOL_EFULL && spoold_map_grown(sd))
			rc = spoold_file_batch(sd, nm->v + i, n, &bad);
		if (rc != 0 && spoold_error_transient(rc)) {
			log_warnx("filing stopped: %s; files stay in incoming/new, retrying",
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
	struct spoold_names	 nm = { .sd = sd, .max = SPOOLD_SCAN_MAX };
	struct timespec		 t0, t1;
	double			 secs;
	int			 rc;

	if ((rc = spoold_maildrop_pass(sd)) != 0)
		log_warnx("maildrop: %s (retried)", spool_strerror(rc));
	nm.v = xcalloc(nm.max, sizeof(*nm.v));
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = spool_scan_stream(sd->sd_cf->cf_spool_dir, SPOOL_NEW, spoold_collect, &nm);
	if (rc != 0 && rc != 1)
		log_warnx("scan incoming/new: %s", spool_strerror(rc));
	else if (nm.rc == 0 && nm.n > 0)
		(void)spoold_flush(&nm);
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (nm.total > 0)
		log_info("pass: files=%zu, scanned=%zu, seconds=%.3f, rate=%.0f/s, batch=%lld",
		    nm.total, nm.seen, secs, secs > 0 ? (double)nm.total / secs : 0.0,
		    (long long)sd->sd_cf->cf_spoold_batch);
	free(nm.v);
	return nm.rc != 0 ? nm.rc : rc == 1 ? 0 : rc;
}

static void
spoold_reload(struct spoold *sd)
{
	struct conf	*ncf;
	char		 err[1024];

	if ((ncf = conf_load(sd->sd_cf->cf_path, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s (keeping the old configuration)", err);
		return;
	}
	if (strcmp(ncf->cf_spool_dir, sd->sd_cf->cf_spool_dir) != 0)
		log_warnx("reload: spool_dir change needs a restart; keeping %s",
		    sd->sd_cf->cf_spool_dir);
	/* the open spool and the trigger path stay; the rest comes from ncf */
	free(ncf->cf_spool_dir);
	ncf->cf_spool_dir = xstrdup(sd->sd_cf->cf_spool_dir);
	conf_free(&sd->sd_cf);
	sd->sd_cf = ncf;
	log_set_dest(str_ieq(ncf->cf_log, "syslog") ? LOG_DEST_SYSLOG : LOG_DEST_STDERR);
	log_info("reloaded %s", ncf->cf_path);
}

/* inotify on incoming/new and maildrop/; -1 (rescans only) if it cannot be had. */
static int
spoold_watch(const char *spool_dir)
{
	char	 dir[4096], md[4096];
	int	 fd;

	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_NEW, NULL) == -1 ||
	    spool_path(md, sizeof(md), spool_dir, SPOOL_MAILDROP, NULL) == -1)
		return -1;
	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		log_warn("inotify_init1 (falling back to rescans)");
		return -1;
	}
	if (inotify_add_watch(fd, dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) == -1) {
		log_warn("inotify_add_watch %s (falling back to rescans)", dir);
		(void)close(fd);
		return -1;
	}
	if (inotify_add_watch(fd, md, IN_MOVED_TO | IN_ONLYDIR) == -1)
		log_warn("inotify_add_watch %s (local mail waits for rescans)", md);
	return fd;
}

static void
spoold_drain(int fd)
{
	char	 b[16384];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

/* Only one spoold per spool: an exclusive lock on incoming/new itself. */
static void
spoold_lock(const char *spool_dir)
{
	char	 dir[4096];
	int	 fd;

	if (spool_path(dir, sizeof(dir), spool_dir, SPOOL_NEW, NULL) == -1 ||
	    (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		log_fatal("open %s", spool_dir);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		log_fatalx("another spoold is filing %s (lock on incoming/new)", dir);
	/* fd stays open: the lock lives as long as the process */
}

static void
spoold_cleanup_tmp(const struct spoold *sd)
{
	size_t	 n = 0;
	int	 rc;

	rc = spool_tmp_cleanup(sd->sd_cf->cf_spool_dir, sd->sd_cf->cf_stale_tmp_age, &n);
	if (rc != 0)
		log_warnx("clean incoming/tmp: %s", spool_strerror(rc));
	else if (n > 0)
		log_info("removed %zu stale file(s) from incoming/tmp", n);
	if ((n = spoold_clean_copies(sd)) > 0)
		log_info("removed %zu stale copies from queue/", n);
}

/*
 * At each rescan: dead readers' slots cleared (spool_map_info runs the
 * check once a minute), and the free-space watermark, logged once each
 * way. spoold keeps filing below it: filing frees incoming/.
 */
static void
spoold_storage_check(struct spoold *sd)
{
	static bool		 low;
	struct spool_map	 m;
	int64_t			 min = spool_space_min(sd->sd_cf), avail;
	int			 rc;

	spool_map_info(sd->sd_sp, &m);
	if (m.mp_grew_from != 0)	/* by a write other than filing */
		log_info("lmdb map grown: from=%lld, to=%lld, max=%lld",
		    (long long)m.mp_grew_from, (long long)m.mp_size, (long long)m.mp_max);
	if (m.mp_readers > 0)
		log_info("cleared %u stale lmdb reader slot(s)", m.mp_readers);
	rc = spool_space_check(sd->sd_cf->cf_spool_dir, min, &avail);
	if (rc == ENOSPC && !low)
		log_warnx("spool file system below min_free_space: free=%lld, "
		    "min_free_space=%lld; smtpd answers 452, filing goes on",
		    (long long)avail, (long long)min);
	else if (rc == 0 && low)
		log_info("spool file system above min_free_space again: free=%lld",
		    (long long)avail);
	if (rc == 0 || rc == ENOSPC)
		low = rc == ENOSPC;
}

/* Events a failed export left behind are appended at the next rescan. */
static void
spoold_export_retry(struct spoold *sd)
{
	size_t	 n = 0;
	int	 rc;

	if (!sd->sd_export_pending)
		return;
	if ((rc = spool_events_export(sd->sd_sp, sd->sd_cf->cf_event_log, &n)) != 0) {
		log_warnx("events export to %s: %s", sd->sd_cf->cf_event_log,
		    spool_strerror(rc));
		return;
	}
	sd->sd_export_pending = false;
	log_info("events export resumed: %zu event(s)", n);
}

static void
spoold_loop(struct spoold *sd, int ifd)
{
	struct spoold_prune	 pr = { .pr_next = 0 };
	struct pollfd	 pfd[2];
	time_t		 now, next_scan = 0, retry_at = 0, backoff = 1;
	bool		 dirty = true, pruning;
	unsigned	 sigs;
	int		 timeout;

	while (!sig_stopping()) {
		now = time(NULL);
		if (now >= next_scan) {
			spoold_cleanup_tmp(sd);
			spoold_export_retry(sd);
			spoold_storage_check(sd);
			spoold_prune_done(sd);
			dirty = true;
			next_scan = now + sd->sd_cf->cf_spoold_rescan_interval;
		}
		if (dirty && now >= retry_at) {
			dirty = false;
			if (spoold_pass(sd) != 0) {
				dirty = true;
				retry_at = now + backoff;
				backoff = backoff * 2 > SPOOLD_BACKOFF_MAX ? SPOOLD_BACKOFF_MAX : backoff * 2;
			} else {
				backoff = 1;
				if (!sig_stopping())
					sd->sd_pass_done = true;
			}
		}
		if (sig_stopping())
			break;
		/* retention, a slice at a time between filing passes */
		pruning = spoold_prune_run(sd, &pr, time(NULL));
		now = time(NULL);
		timeout = (int)((dirty && retry_at < next_scan ? retry_at : next_scan) - now);
		timeout = timeout < 0 || pruning ? 0 : timeout > 3600 ? 3600000 : timeout * 1000;
		pfd[0] = (struct pollfd){ .fd = sig_fd(), .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = ifd, .events = POLLIN };
		if (poll(pfd, ifd == -1 ? 1 : 2, timeout) == -1 && errno != EINTR)
			log_fatal("poll");
		if (ifd != -1 && (pfd[1].revents & POLLIN)) {
			spoold_drain(ifd);
			dirty = true;
		}
		sigs = sig_take();
		if (sigs & SIG_HUP)
			spoold_reload(sd);
	}
}

/* Before the drop: whose files incoming/new may hold (besides spoold's). */
static void
spoold_ids(struct spoold *sd)
{
	gid_t	g;

	sd->sd_smtpd_uid = (uid_t)-1;
	if (priv_is_root() &&
	    priv_lookup(sd->sd_cf->cf_smtpd_user, &sd->sd_smtpd_uid, &g) == -1)
		log_fatalx_status(2, "%s: unknown smtpd_user %s", sd->sd_cf->cf_path,
		    sd->sd_cf->cf_smtpd_user);
}

int
main(int argc, char **argv)
{
	struct spoold	 sd;
	const char	*path = NULL;
	char		 why[4400];
	int		 ch, rc, ifd;

	log_init("spoold", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:v")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'v':
			log_set_verbose(true);
			break;
		default:
			spoold_usage();
		}
	}
	if (optind != argc)
		spoold_usage();
	memset(&sd, 0, sizeof(sd));
	sd.sd_cf = conf_load_or_exit(path);
	log_set_dest(str_ieq(sd.sd_cf->cf_log, "syslog") ? LOG_DEST_SYSLOG : LOG_DEST_STDERR);
	sig_init();

	/* Phase 1, privileged: the tree (owners and modes as root), the watch. */
	if ((rc = spool_tree_create_err(sd.sd_cf, why, sizeof(why))) != 0)
		log_fatalx("spool tree: %s", why);
	if (spool_trigger_path(sd.sd_trigger, sizeof(sd.sd_trigger), sd.sd_cf->cf_spool_dir) == -1)
		log_fatalx("spool_dir too long: %s", sd.sd_cf->cf_spool_dir);
	tzset();
	spoold_ids(&sd);
	priv_drop(sd.sd_cf->cf_spoold_user, sd.sd_cf->cf_group, NULL);
	sd.sd_self_uid = geteuid();
	if (!priv_is_root() && sd.sd_smtpd_uid == (uid_t)-1)
		sd.sd_smtpd_uid = sd.sd_self_uid;	/* test mode: one user */

	/* Phase 2, unprivileged: the lock, LMDB, the loop. */
	spoold_lock(sd.sd_cf->cf_spool_dir);
	ifd = spoold_watch(sd.sd_cf->cf_spool_dir);
	if ((rc = spool_open(sd.sd_cf->cf_spool_dir, sd.sd_cf->cf_lmdb_map_size,
	    sd.sd_cf->cf_lmdb_map_max, 0, &sd.sd_sp)) != 0)
		log_fatalx("spool_open %s: %s", sd.sd_cf->cf_spool_dir, spool_strerror(rc));
	if ((rc = spool_tag_load(sd.sd_cf->cf_spool_dir, sd.sd_key)) != 0 ||
	    (rc = spool_tag_made(sd.sd_cf->cf_spool_dir, &sd.sd_key_made)) != 0)
		log_fatalx("envelope key in %s/db: %s", sd.sd_cf->cf_spool_dir,
		    spool_strerror(rc));
	spoold_track_init(sd.sd_cf->cf_spool_dir);
	log_info("started: spool=%s, batch=%lld, rescan=%llds", sd.sd_cf->cf_spool_dir,
	    (long long)sd.sd_cf->cf_spoold_batch, (long long)sd.sd_cf->cf_spoold_rescan_interval);
	spoold_loop(&sd, ifd);
	log_info("stopping: filed=%zu, quarantined=%zu", sd.sd_filed, sd.sd_quarantined);
	spool_close(&sd.sd_sp);
	if (ifd != -1)
		(void)close(ifd);
	conf_free(&sd.sd_cf);
	return 0;
}
