/*
 * The free-space watermark (min_free_space, like Postfix's queue_minfree):
 * smtpd and smtpgate-sendmail refuse new mail with a temporary error while
 * the spool's file system is below it, so mail is refused before the disk
 * is full rather than lost after a 250.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <time.h>

#include "conf.h"
#include "spool.h"

int64_t
spool_space_min(const struct conf *cf)
{
	if (cf->cf_min_free_space > 0)
		return cf->cf_min_free_space;
	return cf->cf_max_message_size + cf->cf_max_message_size / 2;
}

int
spool_space_check(const char *spool_dir, int64_t min_free, int64_t *avail_r)
{
	static struct timespec at;
	static int64_t	       avail;
	static int	       err;
	struct timespec	       now;
	struct statvfs	       vfs;

	/* one statvfs a second at most while there is room (a busy worker
	 * asks per message); below the mark every call looks again, so mail
	 * is taken again as soon as space returns */
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	if (at.tv_sec == 0 || now.tv_sec != at.tv_sec || err != 0 ||
	    avail < min_free) {
		at = now;
		err = statvfs(spool_dir, &vfs) == -1 ? errno : 0;
		avail = err != 0
		    ? 0
		    : (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
	}
	*avail_r = avail;
	if (err != 0)
		return err;
	return avail < min_free ? ENOSPC : 0;
}
