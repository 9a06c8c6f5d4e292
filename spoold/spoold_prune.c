/*
 * spoold's share of the retention: see spoold_prune.h.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "conf.h"
#include "log.h"
#include "spool.h"
#include "spoold_file.h"
#include "spoold_prune.h"

#define SPOOLD_PRUNE_RETRY 60 /* seconds after a failed pass */

static double
spoold_prune_since(const struct timespec *t0)
{
	struct timespec t1;

	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
spoold_prune_logpass(struct spoold_prune *pr)
{
	const struct spool_prune_stats *st = &pr->pr_st;

	log_info(
	    "prune: events=%zu, issues=%zu, suppressions=%zu, kept_queued=%zu, "
	    "unexported=%zu, first_opens_clicks=%zu, letter_ids=%zu, "
	    "nxdomains=%zu, txns=%zu, seconds=%.3f",
	    st->ps_dlog, st->ps_issues, st->ps_permfail, st->ps_kept,
	    st->ps_unexported, st->ps_engage, st->ps_dedupe, st->ps_nxdom,
	    st->ps_txns, spoold_prune_since(&pr->pr_t0));
	pr->pr_active = false;
}

bool
spoold_prune_run(struct spoold *sd, struct spoold_prune *pr, time_t now)
{
	const struct conf     *cf = sd->sd_cf;
	struct spool_retention rt = { .rt_dlog = cf->cf_delivery_log_retention,
		.rt_issues = cf->cf_issue_retention,
		.rt_permfail = cf->cf_suppression_ttl,
		.rt_dedupe = cf->cf_dedupe_window };
	struct timespec	       t0;
	int		       rc;

	if (!pr->pr_active) {
		if (now < pr->pr_next)
			return false;
		memset(&pr->pr_st, 0, sizeof(pr->pr_st));
		(void)clock_gettime(CLOCK_MONOTONIC, &pr->pr_t0);
		pr->pr_active = true;
		pr->pr_next = now + cf->cf_prune_interval;
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		rc = spool_prune(sd->sd_sp, (int64_t)now, &rt,
		    SPOOLD_PRUNE_BUDGET, &pr->pr_st);
		if (rc != 0) {
			log_warnx(
			    "prune: %s (after events=%zu); next pass in %lds",
			    spool_strerror(rc), pr->pr_st.ps_dlog,
			    (long)SPOOLD_PRUNE_RETRY);
			pr->pr_active = false;
			if (pr->pr_next > now + SPOOLD_PRUNE_RETRY)
				pr->pr_next = now + SPOOLD_PRUNE_RETRY;
			return false;
		}
	} while (pr->pr_st.ps_more &&
	    spoold_prune_since(&t0) * 1000 < SPOOLD_PRUNE_SLICE_MS);
	if (!pr->pr_st.ps_more)
		spoold_prune_logpass(pr);
	return pr->pr_active;
}
