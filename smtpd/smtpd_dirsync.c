/*
 * smtpd_dirsync: the directory fsync of incoming/new shared by every
 * worker (group commit across processes). Each worker's commit pool
 * already shares one directory fsync among its own sessions
 * (smtpd_commit.c); with several workers, each still synced the same
 * directory on its own, and the fsyncs of one worker could not cover the
 * renames of another.
 *
 * The state is four words in the master's shared board (struct
 * smtpd_dirsync, mapped before any fork). A worker's syncer thread takes
 * a ticket (ds_seq + 1) after every rename of its batch has returned.
 * The ticket is covered once ds_done >= ticket. To get there the thread
 * either becomes the owner (ds_owner: 0 -> its pid), reads ds_seq, fsyncs
 * the directory and, only if that fsync returned 0, raises ds_done to the
 * value it read; or it waits (a futex on ds_gen, bumped after every
 * attempt) for the owner. Every ticket up to the value read was taken
 * after its renames returned, and the fsync began after the read: the
 * fsync covers them, so no 250 is sent before its file's name is on disk
 * (CONTRACT), and one fsync answers for the sessions of every worker.
 *
 * Nothing here can lose a message: a failed fsync raises nothing (the
 * waiters try again themselves, and the owner's own batch fails); an
 * owner that died (SIGKILL mid-fsync) is freed by the master when it
 * reaps the worker (smtpd_dirsync_reaped()), and found by the waiters
 * with kill(pid, 0); an owner that makes no progress for
 * SMTPD_DIRSYNC_STALL_MS (a journal commit under way, preempted on a busy
 * machine, stopped) is not waited for: the worker syncs the directory
 * itself and publishes what that fsync covered. The bound keeps a journal
 * commit or one process's scheduling delay from adding to every worker's
 * reply latency: a quick fsync (ext4 without a journal: well under a
 * millisecond) is shared, a slow one is queued in the kernel at once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ev.h"
#include "fsx.h"
#include "smtpd.h"

#define SMTPD_DIRSYNC_SLICE_MS 2
#define SMTPD_DIRSYNC_STALL_MS 5

static struct smtpd_dirsync  ds_local; /* no board (unit tests) */
static struct smtpd_dirsync *ds = &ds_local;
static int		     ds_me;	    /* this process's pid */
static int		     ds_dirfd = -1; /* incoming/new, kept open */
static struct stat	     ds_dirst;	    /* what ds_dirfd is */

void
smtpd_dirsync_share(struct smtpd_dirsync *shared)
{
	ds = shared != NULL ? shared : &ds_local;
	ds_me = (int)getpid();
}

/*
 * fsync dir; 0 or an errno. One thread of a process at a time (the
 * commit pool's syncer). The descriptor is kept open, but it must still
 * be the directory the renames went to (by name): if dir was replaced, it
 * is opened again.
 */
static int
smtpd_dirsync_fsync(const char *dir)
{
	struct stat st;
	int	    rc;

	if (stat(dir, &st) == -1)
		return errno;
	if (ds_dirfd != -1 &&
	    (st.st_ino != ds_dirst.st_ino || st.st_dev != ds_dirst.st_dev)) {
		(void)close(ds_dirfd); /* read-only fd: nothing to lose */
		ds_dirfd = -1;
	}
	if (ds_dirfd == -1) {
		if ((ds_dirfd = open(dir,
			 O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
			return errno;
		if (fstat(ds_dirfd, &ds_dirst) == -1) {
			rc = errno;
			(void)close(ds_dirfd);
			ds_dirfd = -1;
			return rc;
		}
	}
	if (fsx_fsync_dirfd(ds_dirfd) == -1) {
		rc = errno;
		(void)close(ds_dirfd); /* a fresh descriptor next time */
		ds_dirfd = -1;
		return rc;
	}
	return 0;
}

void
smtpd_dirsync_close(void)
{
	if (ds_dirfd != -1)
		(void)close(ds_dirfd); /* read-only fd */
	ds_dirfd = -1;
}

uint64_t
smtpd_dirsync_ticket(void)
{
	return atomic_fetch_add(&ds->ds_seq, 1) + 1;
}

/* true when the slice ended without a wake-up (ETIMEDOUT) */
static bool
smtpd_dirsync_futex_wait(uint32_t seen)
{
	struct timespec ts = { 0, SMTPD_DIRSYNC_SLICE_MS * 1000000L };

	/* EAGAIN (ds_gen moved), EINTR: the caller looks again */
	return syscall(SYS_futex, &ds->ds_gen, FUTEX_WAIT, seen, &ts, NULL,
		   0) == -1 &&
	    errno == ETIMEDOUT;
}

/*
 * Syncs for every ticket taken so far and publishes what the fsync
 * covered; the owner then frees the owner word. Anyone may call it at any
 * time: two at once each publish only what their own fsync covered.
 */
static int
smtpd_dirsync_sync(const char *dir, bool owner)
{
	uint64_t upto = atomic_load(&ds->ds_seq), done;
	int	 rc;

	rc = smtpd_dirsync_fsync(dir);
	if (rc == 0) {
		done = atomic_load(&ds->ds_done);
		while (done < upto &&
		    !atomic_compare_exchange_weak(&ds->ds_done, &done, upto))
			;
	}
	if (owner)
		atomic_store(&ds->ds_owner, 0);
	(void)atomic_fetch_add(&ds->ds_gen, 1);
	(void)syscall(SYS_futex, &ds->ds_gen, FUTEX_WAKE, INT_MAX, NULL, NULL,
	    0);
	return rc;
}

/* The master reaped worker pid: if it died owning the fsync, free it. */
void
smtpd_dirsync_reaped(struct smtpd_dirsync *shared, int pid)
{
	if (atomic_compare_exchange_strong(&shared->ds_owner, &pid, 0)) {
		(void)atomic_fetch_add(&shared->ds_gen, 1);
		(void)syscall(SYS_futex, &shared->ds_gen, FUTEX_WAKE, INT_MAX,
		    NULL, NULL, 0);
	}
}

/* The owner is gone (SIGKILL while syncing): free the slot. */
static void
smtpd_dirsync_reap(int owner)
{
	if (owner != 0 && kill(owner, 0) == -1 && errno == ESRCH)
		(void)atomic_compare_exchange_strong(&ds->ds_owner, &owner, 0);
}

int
smtpd_dirsync_wait(uint64_t ticket, const char *dir)
{
	int64_t	 start = ev_clock_ms();
	uint32_t gen, seen_gen = atomic_load(&ds->ds_gen);
	int	 owner, rc;

	if (ds_me == 0)
		ds_me = (int)getpid();

	for (;;) {
		gen = atomic_load(&ds->ds_gen);
		if (atomic_load(&ds->ds_done) >= ticket)
			return 0;
		owner = 0;
		if (atomic_compare_exchange_strong(&ds->ds_owner, &owner,
			ds_me)) {
			if ((rc = smtpd_dirsync_sync(dir, true)) != 0)
				return rc; /* this batch fails, as ever */
			continue;	   /* ds_done now covers the ticket */
		}
		if (gen != seen_gen) { /* progress: wait on */
			seen_gen = gen;
			start = ev_clock_ms();
		} else if (ev_clock_ms() - start >= SMTPD_DIRSYNC_STALL_MS)
			return smtpd_dirsync_sync(dir, false); /* not waiting */
		if (smtpd_dirsync_futex_wait(gen))
			smtpd_dirsync_reap(atomic_load(&ds->ds_owner));
	}
}
