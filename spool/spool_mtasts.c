/*
 * The MTA-STS policy cache (spool.h): key the lower-cased domain; value
 * version byte, BE64 expires, BE64 fetched, id NUL, policy text.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_MTASTS_VERSION 1
#define SPOOL_MTASTS_HDR     17

static int
spool_mtasts_key(struct spool_key *k, const char *domain)
{
	if (domain[0] == '\0' || strlen(domain) > 255)
		return EINVAL;
	spool_key_init(k);
	spool_key_lstr(k, domain);
	return 0;
}

static int
spool_mtasts_dec(const void *v, size_t len, struct spool_mtasts_rec *r)
{
	const uint8_t *p = v;
	const void    *nul;
	size_t	       idlen, plen;

	if (len < SPOOL_MTASTS_HDR + 1 || p[0] != SPOOL_MTASTS_VERSION)
		return SPOOL_ECORRUPT;
	r->mr_expires = (int64_t)spool_be64_get(p + 1);
	r->mr_fetched = (int64_t)spool_be64_get(p + 9);
	p += SPOOL_MTASTS_HDR;
	len -= SPOOL_MTASTS_HDR;
	if ((nul = memchr(p, '\0', len)) == NULL)
		return SPOOL_ECORRUPT;
	idlen = (size_t)((const uint8_t *)nul - p);
	plen = len - idlen - 1;
	if (idlen >= sizeof(r->mr_id) || plen >= sizeof(r->mr_policy))
		return SPOOL_ECORRUPT;
	memcpy(r->mr_id, p, idlen + 1);
	memcpy(r->mr_policy, p + idlen + 1, plen);
	r->mr_policy[plen] = '\0';
	return 0;
}

int
spool_mtasts_get(struct spool_txn *t, const char *domain,
    struct spool_mtasts_rec *r)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	if ((rc = spool_mtasts_key(&k, domain)) != 0 ||
	    (rc = spool_db_get(t, SPOOL_DB_MTASTS, &k, &v, &len)) != 0)
		return rc;
	return spool_mtasts_dec(v, len, r);
}

struct spool_mtasts_prune {
	struct spool_txn *txn;
	int64_t		  now;
	size_t		  n;
};

static int
spool_mtasts_prune_cb(const uint8_t *key, size_t klen, const void *v,
    size_t len, void *arg)
{
	struct spool_mtasts_prune *p = arg;
	struct spool_mtasts_rec	   r;
	struct spool_key	   k;
	int			   rc;

	/* an undecodable record would never expire: it goes too */
	if (spool_mtasts_dec(v, len, &r) == 0 && r.mr_expires > p->now)
		return 0;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	if ((rc = spool_db_del(p->txn, SPOOL_DB_MTASTS, &k)) != 0)
		return rc;
	p->n++;
	return 0;
}

int
spool_mtasts_prune(struct spool_txn *t, int64_t now, size_t *n_r)
{
	struct spool_mtasts_prune p = { .txn = t, .now = now, .n = 0 };
	int			  rc;

	rc = spool_db_iter(t, SPOOL_DB_MTASTS, NULL, 0, false,
	    spool_mtasts_prune_cb, &p);
	*n_r = p.n;
	return rc;
}

int
spool_mtasts_put(struct spool_txn *t, const char *domain,
    const struct spool_mtasts_rec *r, int64_t now)
{
	struct spool_key	k;
	struct spool_mtasts_rec old;
	uint8_t v[SPOOL_MTASTS_HDR + sizeof(r->mr_id) + sizeof(r->mr_policy)];
	size_t	idlen = strnlen(r->mr_id, sizeof(r->mr_id));
	size_t	plen = strnlen(r->mr_policy, sizeof(r->mr_policy));
	size_t	n, pruned;
	int	rc;

	if (idlen == sizeof(r->mr_id) || plen == sizeof(r->mr_policy))
		return EINVAL;
	if ((rc = spool_mtasts_key(&k, domain)) != 0)
		return rc;
	if (spool_mtasts_get(t, domain, &old) != 0 &&
	    (rc = spool_db_count(t, SPOOL_DB_MTASTS, &n)) == 0 &&
	    n >= SPOOL_MTASTS_MAX) {
		if ((rc = spool_mtasts_prune(t, now, &pruned)) != 0)
			return rc;
		if (pruned == 0)
			return ENOSPC;
	}
	if (rc != 0)
		return rc;
	v[0] = SPOOL_MTASTS_VERSION;
	spool_be64_put(v + 1, (uint64_t)r->mr_expires);
	spool_be64_put(v + 9, (uint64_t)r->mr_fetched);
	memcpy(v + SPOOL_MTASTS_HDR, r->mr_id, idlen + 1);
	memcpy(v + SPOOL_MTASTS_HDR + idlen + 1, r->mr_policy, plen);
	n = SPOOL_MTASTS_HDR + idlen + 1 + plen;
	return spool_db_put(t, SPOOL_DB_MTASTS, &k, v, n);
}

/* h-astate: the record that expires first, for spool_mtasts_evict. */
struct spool_mtasts_first {
	uint8_t key[SPOOL_KEY_MAX];
	size_t	klen;
	int64_t expires;
};

static int
spool_mtasts_first_cb(const uint8_t *key, size_t klen, const void *v,
    size_t len, void *arg)
{
	struct spool_mtasts_first *f = arg;
	struct spool_mtasts_rec	   r;

	if (klen > sizeof(f->key))
		return 0;
	/* an undecodable record goes first */
	if (spool_mtasts_dec(v, len, &r) != 0)
		r.mr_expires = INT64_MIN;
	if (f->klen == 0 || r.mr_expires < f->expires) {
		memcpy(f->key, key, klen);
		f->klen = klen;
		f->expires = r.mr_expires;
	}
	return 0;
}

int
spool_mtasts_evict(struct spool_txn *t, char *domain_r, size_t dsz)
{
	struct spool_mtasts_first f;
	struct spool_key	  k;
	int			  rc;

	memset(&f, 0, sizeof(f));
	if ((rc = spool_db_iter(t, SPOOL_DB_MTASTS, NULL, 0, false,
		 spool_mtasts_first_cb, &f)) != 0)
		return rc;
	if (f.klen == 0)
		return SPOOL_ENOTFOUND;
	if (domain_r != NULL && dsz > 0) {
		size_t n = f.klen < dsz - 1 ? f.klen : dsz - 1;

		memcpy(domain_r, f.key, n);
		domain_r[n] = '\0';
	}
	spool_key_init(&k);
	spool_key_raw(&k, f.key, f.klen);
	return spool_db_del(t, SPOOL_DB_MTASTS, &k);
}
