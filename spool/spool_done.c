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

#define SPOOL_DONE_VERSION 1
#define SPOOL_DONE_STOP	   (-30989) /* internal: the walk stops here */

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
	struct spool_key k;
	uint8_t		 v[9];
	int		 rc;

	if ((rc = spool_done_key(&k, qid)) != 0)
		return rc;
	v[0] = SPOOL_DONE_VERSION;
	spool_be64_put(v + 1, (uint64_t)when);
	return spool_db_put(t, SPOOL_DB_DONE, &k, v, sizeof(v));
}

int
spool_done_get(struct spool_txn *t, const char *qid, int64_t *when_r)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	if ((rc = spool_done_key(&k, qid)) != 0 ||
	    (rc = spool_db_get(t, SPOOL_DB_DONE, &k, &v, &len)) != 0)
		return rc;
	if (len < 9 || ((const uint8_t *)v)[0] != SPOOL_DONE_VERSION)
		return SPOOL_ECORRUPT;
	if (when_r != NULL)
		*when_r = (int64_t)spool_be64_get((const uint8_t *)v + 1);
	return 0;
}

struct spool_qid_prune {
	struct spool_txn *t;
	enum spool_dbi	  dbi;
	size_t		  klen;
	uint64_t	  before_us;
	size_t		  max, n;
};

static int
spool_qid_prune_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_qid_prune *p = arg;
	struct spool_key	k;
	char			qid[QID_SIZE];
	int			rc;

	(void)v;
	(void)len;
	if (klen != p->klen)
		return SPOOL_ECORRUPT;
	memcpy(qid, key, QID_LEN);
	qid[QID_LEN] = '\0';
	if (p->n == p->max || qid_time_us(qid) >= p->before_us)
		return SPOOL_DONE_STOP; /* the rest arrived later */
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	if ((rc = spool_db_del(p->t, p->dbi, &k)) != 0)
		return rc;
	p->n++;
	return 0;
}

int
spool_db_prune_qid(struct spool_txn *t, enum spool_dbi dbi, size_t klen,
    int64_t before, size_t max, size_t *n_r)
{
	struct spool_qid_prune p = { .t = t,
		.dbi = dbi,
		.klen = klen,
		.max = max };
	int		       rc;

	p.before_us = before > 0 ? (uint64_t)before * 1000000u : 0;
	rc = spool_db_iter(t, dbi, NULL, 0, false, spool_qid_prune_cb, &p);
	*n_r = p.n;
	return rc == SPOOL_DONE_STOP ? 0 : rc;
}

int
spool_done_prune(struct spool_txn *t, int64_t before, size_t max, size_t *n_r)
{
	return spool_db_prune_qid(t, SPOOL_DB_DONE, QID_LEN, before, max, n_r);
}
