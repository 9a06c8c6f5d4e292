/*
 * spool_done: markers of finished messages (spool.h). Key: the QID (20
 * bytes, so the database is in arrival order); value: a version byte and
 * the time it finished (BE64 unix seconds).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_DONE_VERSION	1

static int
spool_done_key(struct spool_key *k, const char *qid)
{
	if (!qid_ok(qid))
		return EINVAL;
	spool_key_init(k);
	spool_key_raw(k, qid, QID_LEN);
	return 0;
}

int
spool_done_put(struct spool_txn *t, const char *qid, int64_t when)
{
	struct spool_key	k;
	uint8_t			v[9];
	int			rc;

	if ((rc = spool_done_key(&k, qid)) != 0)
		return rc;
	v[0] = SPOOL_DONE_VERSION;
	spool_be64_put(v + 1, (uint64_t)when);
	return spool_db_put(t, SPOOL_DB_DONE, &k, v, sizeof(v));
}

int
spool_done_get(struct spool_txn *t, const char *qid, int64_t *when_r)
{
	struct spool_key	 k;
	const void		*v;
	size_t			 len;
	int			 rc;

	if ((rc = spool_done_key(&k, qid)) != 0 ||
	    (rc = spool_db_get(t, SPOOL_DB_DONE, &k, &v, &len)) != 0)
		return rc;
	if (len < 9 || ((const uint8_t *)v)[0] != SPOOL_DONE_VERSION)
		return SPOOL_ECORRUPT;
	if (when_r != NULL)
		*when_r = (int64_t)spool_be64_get((const uint8_t *)v + 1);
	return 0;
}

struct spool_done_prune {
	struct spool_txn	*t;
	uint64_t		 before_us;
	size_t			 max, n;
};

static int
spool_done_prune_cb(const uint8_t *key, size_t klen, const void *v, size_t len, void *arg)
{
	struct spool_done_prune	*p = arg;
	struct spool_key	 k;
	char			 qid[QID_SIZE];
	int			 rc;

	(void)v;
	(void)len;
	if (klen != QID_LEN)
		return SPOOL_ECORRUPT;
	memcpy(qid, key, QID_LEN);
	qid[QID_LEN] = '\0';
	if (p->n == p->max || qid_time_us(qid) >= p->before_us)
		return 1;	/* the rest arrived later */
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	if ((rc = spool_db_del(p->t, SPOOL_DB_DONE, &k)) != 0)
		return rc;
	p->n++;
	return 0;
}

int
spool_done_prune(struct spool_txn *t, int64_t before, size_t max, size_t *n_r)
{
	struct spool_done_prune	 p = { .t = t, .max = max };
	int			 rc;

	p.before_us = before > 0 ? (uint64_t)before * 1000000u : 0;
	*n_r = 0;
	rc = spool_db_iter(t, SPOOL_DB_DONE, NULL, 0, false, spool_done_prune_cb, &p);
	if (rc != 0 && rc != 1)
		return rc;
	*n_r = p.n;
	return 0;
}
