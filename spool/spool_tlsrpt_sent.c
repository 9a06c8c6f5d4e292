/*
 * TLS report delivery state (spoolctl tls-report --send; spool.h
 * "tlsrpt_sent"): which report URIs got the report of a UTC day and
 * recipient domain, so that a second run sends nothing twice and a
 * failed URI is tried again by the next run.
 *
 *   tlsrpt_sent: day(BE32) domain NUL uri NUL -> version(1) sent(BE64)
 *
 * Kept as long as the report rows (SPOOL_TLSRPT_DAYS days): each put
 * deletes the records of older days (at most SPOOL_TLSRPT_SENT_PRUNE per
 * call, the rest at the next). An older database gets the empty database
 * from the writer's open (spool_db_open_dbis creates missing databases),
 * so spool_db_migrate_tlsrpt() has nothing to build.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_TLSRPT_SENT_VERSION 1
#define SPOOL_TLSRPT_SENT_PRUNE	  1000

static uint32_t
spool_tlsrpt_sent_day(int64_t t)
{
	return t < 0 ? 0 : (uint32_t)(t / 86400);
}

static int
spool_tlsrpt_sent_key(struct spool_key *k, int64_t day_start,
    const char *domain, const char *uri)
{
	if (domain[0] == '\0' || uri[0] == '\0')
		return EINVAL;
	spool_key_init(k);
	spool_key_be32(k, spool_tlsrpt_sent_day(day_start));
	spool_key_lstr(k, domain);
	spool_key_str(k, uri);
	return spool_key_ok(k) ? 0 : SPOOL_ETOOBIG;
}

int
spool_tlsrpt_sent_get(struct spool_txn *t, int64_t day_start,
    const char *domain, const char *uri, int64_t *when_r)
{
	struct spool_key k;
	const uint8_t	*v;
	const void	*p;
	size_t		 len;
	int		 rc;

	if ((rc = spool_tlsrpt_sent_key(&k, day_start, domain, uri)) != 0 ||
	    (rc = spool_db_get(t, SPOOL_DB_TLSRPT_SENT, &k, &p, &len)) != 0)
		return rc;
	v = p;
	if (len != 9 || v[0] != SPOOL_TLSRPT_SENT_VERSION)
		return SPOOL_ECORRUPT;
	if (when_r != NULL)
		*when_r = (int64_t)spool_be64_get(v + 1);
	return 0;
}

int
spool_tlsrpt_sent_prune(struct spool_txn *t, int64_t now)
{
	uint32_t day = spool_tlsrpt_sent_day(now);

	if (day < SPOOL_TLSRPT_DAYS)
		return 0;
	return spool_db_prune_days(t, SPOOL_DB_TLSRPT_SENT,
	    day - SPOOL_TLSRPT_DAYS + 1, SPOOL_TLSRPT_SENT_PRUNE);
}

int
spool_tlsrpt_sent_put(struct spool_txn *t, int64_t now, int64_t day_start,
    const char *domain, const char *uri)
{
	struct spool_key k;
	uint8_t		 v[9];
	int		 rc;

	if ((rc = spool_tlsrpt_sent_key(&k, day_start, domain, uri)) != 0 ||
	    (rc = spool_tlsrpt_sent_prune(t, now)) != 0)
		return rc;
	v[0] = SPOOL_TLSRPT_SENT_VERSION;
	spool_be64_put(v + 1, (uint64_t)now);
	return spool_db_put(t, SPOOL_DB_TLSRPT_SENT, &k, v, sizeof(v));
}
