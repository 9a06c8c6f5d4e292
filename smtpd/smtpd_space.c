/*
 * smtpd_space: refuse mail with 452 while the spool's file system is
 * below min_free_space (spool_space_check), at MAIL FROM and again before
 * the final 250, rather than fail after acknowledging a message.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>

#include "log.h"
#include "smtpd.h"
#include "spool.h"

bool
smtpd_space_ok(struct smtpd_session *s, const char *what)
{
	int64_t min = spool_space_min(s->ss_env->se_cf), avail;
	int	rc;

	if ((rc = spool_space_check(s->ss_env->se_spool, min, &avail)) == 0)
		return true;
	if (rc != ENOSPC) {
		/* cannot tell: the write itself will report a full disk */
		log_warnx("NOQUEUE: statvfs %s: %s", s->ss_env->se_spool,
		    spool_strerror(rc));
		return true;
	}
	log_info("NOQUEUE: reject: %s from %s: 452 4.3.1 Insufficient system "
		 "storage; "
		 "free=%" PRId64 ", min_free_space=%" PRId64,
	    what, s->ss_client, avail, min);
	smtpd_reply(s, "452 4.3.1 Insufficient system storage");
	return false;
}
