/*
 * trackd_machine: is an open or a click likely not a person's? (issue 16
 * item 6). No rule does this well; these are the documented ones
 * (trackd.8, MACHINE DETECTION):
 *
 *  1. the user agent: none at all, a mail provider's image proxy (Google's
 *     GoogleImageProxy, Yahoo's YahooMailProxy), Apple Mail Privacy
 *     Protection's bare "Mozilla/5.0", or a known bot, scanner or HTTP
 *     library (trackd_machine_ua's table);
 *  2. an open within TRACKD_EARLY_S seconds of the delivery (proxies and
 *     security gateways fetch at delivery time; nobody reads that fast);
 *  3. a link scanner: a click on a different link of the same recipient's
 *     copy within TRACKD_BURST_MS of the previous click marks that click
 *     and every click of that recipient for TRACKD_SCAN_HOLD_MS after;
 *     and, among the clicks committed together (trackd_machine_bursts),
 *     the earlier clicks of such a burst too.
 *
 * Rule 3 needs memory: a bounded LRU of recipients (QID + index) seen
 * recently, TRACKD_SEEN_MAX entries by default; the least recently used
 * is forgotten first. Pure: the caller passes the clock and serialises
 * calls (one mutex); nothing is logged.
 */
#ifndef SG_TRACKD_MACHINE_H
#define SG_TRACKD_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACKD_EARLY_S		10	/* rule 2 */
#define TRACKD_BURST_MS		1000	/* rule 3 */
#define TRACKD_SCAN_HOLD_MS	30000
#define TRACKD_SEEN_MAX		65536

/* Rule 1. ua may be NULL (no User-Agent header). */
bool	trackd_machine_ua(const char *ua);
/* Rule 2: now and delivered in unix seconds (delivered 0: unknown). */
bool	trackd_machine_early(int64_t now, int64_t delivered);

struct trackd_seen;
/* max >= 1; NULL with errno ENOMEM. */
struct trackd_seen	*trackd_seen_new(size_t max);
void			 trackd_seen_free(struct trackd_seen **);
/* Rule 3 for a click on link `link` of recipient (qid, idx) at now_ms
 * (any monotonic millisecond clock); records it. True: machine. */
bool	trackd_seen_click(struct trackd_seen *, const char *qid, uint32_t idx,
	    uint16_t link, int64_t now_ms);
size_t	trackd_seen_count(const struct trackd_seen *);

/* Rule 3 over one group of clicks (any order; v is sorted in place):
 * each click with another of the same recipient on a different link
 * within TRACKD_BURST_MS gets *tc_machine = true. */
struct trackd_click {
	const char	*tc_qid;
	uint32_t	 tc_idx;
	uint16_t	 tc_link;
	int64_t		 tc_ms;
	bool		*tc_machine;
};
void	trackd_machine_bursts(struct trackd_click *v, size_t n);

#endif
