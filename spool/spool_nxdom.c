/*
 * NXDOMAIN sightings per recipient domain (spool.h "NXDOMAIN
 * confirmation"):
 *
 *   nxdomain: lower-cased domain -> version(1) first(BE64) last(BE64)
 *
 * Written by deliverd's scheduler in its commit transaction: a sighting
 * when a recipient bounced because DNS says its domain does not exist, a
 * deletion when a delivery to the domain got as far as an MX host. Pruned
 * in key order by spool_prune's last phase once not seen for
 * SPOOL_NXDOM_KEEP. The database starts empty on an older spool.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_NXDOM_VERSION 1
#define SPOOL_NXDOM_VLEN    (1 + 8 + 8)

static int
spool_nxdom_key(struct spool_key *k, const char *domain)
{
	if (domain == NULL || domain[0] == '\0' || strlen(domain) > 255)
		return EINVAL;
	spool_key_init(k);
	spool_key_lstr(k, domain);
	return 0;
}

static int
spool_nxdom_dec(const void *v, size_t len, int64_t *first_r, int64_t *last_r)
{
	const uint8_t *p = v;

	if (len != SPOOL_NXDOM_VLEN || p[0] != SPOOL_NXDOM_VERSION)
		return SPOOL_ECORRUPT;
	*first_r = (int64_t)spool_be64_get(p + 1);
	*last_r = (int64_t)spool_be64_get(p + 9);
	return 0;
}

int
spool_nxdom_seen(struct spool_txn *t, const char *domain, int64_t now,
    int64_t *first_r)
{
	struct spool_key k;
	const void	*v;
	size_t		 len, n;
	int64_t		 first, last;
	uint8_t		 val[SPOOL_NXDOM_VLEN];
	int		 rc;

	*first_r = now;
	if ((rc = spool_nxdom_key(&k, domain)) != 0)
		return rc;
	rc = spool_db_get(t, SPOOL_DB_NXDOM, &k, &v, &len);
	if (rc == 0 && spool_nxdom_dec(v, len, &first, &last) == 0 &&
	    last >= now - SPOOL_NXDOM_KEEP && first <= now)
		*first_r = first; /* the run goes on */
	else if (rc == SPOOL_ENOTFOUND) {
		if ((rc = spool_db_count(t, SPOOL_DB_NXDOM, &n)) != 0)
			return rc;
		if (n >= SPOOL_NXDOM_MAX)
			return ENOSPC;
	} else if (rc != 0)
		return rc;
	/* else a stale or undecodable entry: a new run */
	val[0] = SPOOL_NXDOM_VERSION;
	spool_be64_put(val + 1, (uint64_t)*first_r);
	spool_be64_put(val + 9, (uint64_t)now);
	return spool_db_put(t, SPOOL_DB_NXDOM, &k, val, sizeof(val));
}

int
spool_nxdom_forget(struct spool_txn *t, const char *domain)
{
	struct spool_key k;
	int		 rc;

	if ((rc = spool_nxdom_key(&k, domain)) != 0)
		return rc;
	return spool_db_del(t, SPOOL_DB_NXDOM, &k);
}

/* The time an entry goes by: its last sighting. */
static int
spool_nxdom_when(const void *v, size_t len, int64_t *last_r)
{
	int64_t first;

	return spool_nxdom_dec(v, len, &first, last_r);
}

int
spool_nxdom_prune(struct spool_txn *t, int64_t before,
    struct spool_dedupe_cursor *cur, size_t max, size_t *n_r, bool *done_r)
{
	return spool_db_prune_by_time(t, SPOOL_DB_NXDOM, spool_nxdom_when,
	    before, cur, max, n_r, done_r);
}
