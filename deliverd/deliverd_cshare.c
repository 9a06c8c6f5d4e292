/*
 * Limit sharing in cluster mode (issue 19 item 7; deliverd.8 "Cluster"):
 * each node takes 1/N of every destination's connections (rounded up, at
 * least 1) and rates, N the live nodes that clusterd writes to
 * spool_dir/cluster.state. Re-read at most every DELIVERD_CSHARE_EVERY
 * seconds; a missing file means 1, one that does not parse (or a stale
 * one) keeps the last value. Without cluster_dsn nothing here runs.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_cshare.h"
#include "deliverd_dest.h"
#include "deliverd_dest_int.h"
#include "deliverd_sched.h"
#include "fsx.h"
#include "log.h"

static uint32_t deliverd_cshare_n = 1; /* live nodes */
static int64_t	deliverd_cshare_at;    /* last read, unix s */

uint32_t
deliverd_cshare_parse(const char *text, size_t len)
{
	const char *p = text, *end = text + len, *nl;
	char	    num[16];
	size_t	    n;
	char	   *e;
	long	    v;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((size_t)(nl - p) <= 11 || memcmp(p, "live_nodes ", 11) != 0)
			continue;
		if ((n = (size_t)(nl - p) - 11) >= sizeof(num))
			return 0;
		memcpy(num, p + 11, n);
		num[n] = '\0';
		errno = 0;
		v = strtol(num, &e, 10);
		if (e == num || *e != '\0' || errno != 0 || v < 1 ||
		    v > DELIVERD_CSHARE_MAX)
			return 0;
		return (uint32_t)v;
	}
	return 0;
}

void
deliverd_cshare_apply(struct shaping_limits *l, uint32_t n)
{
	shaping_share(l, n);
}

uint32_t
deliverd_cshare_nodes(void)
{
	return deliverd_cshare_n;
}

/* The live nodes the file says now, or the last value. */
static uint32_t
deliverd_cshare_read(const char *spool_dir)
{
	char	 path[4096], *data = NULL;
	size_t	 len = 0;
	uint32_t n;

	if (snprintf(path, sizeof(path), "%s/cluster.state", spool_dir) >=
	    (int)sizeof(path))
		return deliverd_cshare_n;
	if (fsx_read_file(path, DELIVERD_CSHARE_FILE_MAX, &data, &len) != 0)
		return errno == ENOENT ? 1 : deliverd_cshare_n;
	n = deliverd_cshare_parse(data, len);
	free(data);
	return n > 0 ? n : deliverd_cshare_n;
}

void
deliverd_cshare_tick(struct sched *s)
{
	struct deliverd_dests *t = s->dests;
	int64_t		       now = deliverd_now();
	uint32_t	       n, was = deliverd_cshare_n;
	size_t		       i;

	if (s->cf->cf_cluster_dsn[0] == '\0' ||
	    (deliverd_cshare_at != 0 &&
		now - deliverd_cshare_at < DELIVERD_CSHARE_EVERY &&
		now >= deliverd_cshare_at))
		return;
	deliverd_cshare_at = now;
	if ((n = deliverd_cshare_read(s->cf->cf_spool_dir)) == was)
		return;
	deliverd_cshare_n = n;
	log_info("cluster: %u live node%s: this node takes 1/%u of each "
		 "destination's connections and rate (was 1/%u)",
	    n, n == 1 ? "" : "s", n, was);
	for (i = 0; i < t->n; i++)
		deliverd_dest_limits(s, &t->d[i]);
	deliverd_dest_limits(s, &t->overflow);
}
