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
#define SPOOL_NXDOM_STOP    (-30996) /* internal: the walk stops here */

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

struct spool_nxdom_prune {
	struct spool_txn	   *txn;
	struct spool_dedupe_cursor *cur;
	int64_t			    before;
	size_t			    left, looks, n;
};

static int
spool_nxdom_prune_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_nxdom_prune   *p = arg;
	struct spool_dedupe_cursor *cur = p->cur;
	struct spool_key	    k;
	int64_t			    first, last;
	int			    rc;

	if (klen == cur->dc_len && memcmp(key, cur->dc_key, klen) == 0)
		return 0; /* where the last call stopped */
	if (p->left == 0 || p->looks == 0)
		return SPOOL_NXDOM_STOP;
	p->looks--;
	if (klen > sizeof(cur->dc_key))
		return SPOOL_ECORRUPT;
	memcpy(cur->dc_key, key, klen);
	cur->dc_len = klen;
	/* an undecodable entry would never expire: it goes too */
	if (spool_nxdom_dec(v, len, &first, &last) == 0 && last >= p->before)
		return 0;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	if ((rc = spool_db_del(p->txn, SPOOL_DB_NXDOM, &k)) != 0)
		return rc;
	p->left--;
	p->n++;
	return 0;
}

int
spool_nxdom_prune(struct spool_txn *t, int64_t before,
    struct spool_dedupe_cursor *cur, size_t max, size_t *n_r, bool *done_r)
{
	struct spool_nxdom_prune p = { .txn = t,
		.cur = cur,
		.before = before,
		.left = max,
		.looks = max * 4 };
	struct spool_key	 k;
	int			 rc;

	*n_r = 0;
	*done_r = false;
	spool_key_init(&k);
	spool_key_raw(&k, cur->dc_key, cur->dc_len);
	rc = spool_db_iter(t, SPOOL_DB_NXDOM, &k, 0, false,
	    spool_nxdom_prune_cb, &p);
	*n_r = p.n;
	if (rc == SPOOL_NXDOM_STOP)
		return 0;
	if (rc == 0)
		*done_r = true;
	return rc;
}
