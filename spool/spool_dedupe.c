/*
 * Idempotent submission (issue 18 item 3; spool.h "dedupe"): the X-Letter-Id
 * values each account used, with the message that first used them.
 *
 *   dedupe: login NUL letter-id NUL -> version(1) filed(BE64) QID
 *
 * Written by spoold in the filing transaction of a message queued for
 * delivery, looked up in the same kind of transaction, and pruned in key
 * order by spool_prune's dedupe phase once older than dedupe_window. The
 * database starts empty on an older spool: there is nothing to build.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_DEDUPE_VERSION 1
#define SPOOL_DEDUPE_VLEN    (1 + 8 + QID_LEN)
#define SPOOL_DEDUPE_STOP    (-30994) /* internal: the walk stops here */

static int
spool_dedupe_key(struct spool_key *k, const char *login, const char *letter)
{
	if (login == NULL || letter == NULL || login[0] == '\0' ||
	    letter[0] == '\0')
		return EINVAL;
	spool_key_init(k);
	spool_key_str(k, login);
	spool_key_str(k, letter);
	return spool_key_ok(k) ? 0 : SPOOL_ETOOBIG;
}

int
spool_dedupe_dec(const void *v, size_t len, int64_t *filed_r,
    char qid_r[QID_SIZE])
{
	const uint8_t *p = v;

	if (len != SPOOL_DEDUPE_VLEN || p[0] != SPOOL_DEDUPE_VERSION)
		return SPOOL_ECORRUPT;
	if (filed_r != NULL)
		*filed_r = (int64_t)spool_be64_get(p + 1);
	if (qid_r != NULL) {
		memcpy(qid_r, p + 9, QID_LEN);
		qid_r[QID_LEN] = '\0';
		if (!qid_ok(qid_r))
			return SPOOL_ECORRUPT;
	}
	return 0;
}

int
spool_dedupe_get(struct spool_txn *t, const char *login, const char *letter,
    int64_t *filed_r, char qid_r[QID_SIZE])
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	if ((rc = spool_dedupe_key(&k, login, letter)) != 0 ||
	    (rc = spool_db_get(t, SPOOL_DB_DEDUPE, &k, &v, &len)) != 0)
		return rc;
	return spool_dedupe_dec(v, len, filed_r, qid_r);
}

int
spool_dedupe_put(struct spool_txn *t, const char *login, const char *letter,
    const char *qid, int64_t filed)
{
	struct spool_key k;
	uint8_t		 v[SPOOL_DEDUPE_VLEN];
	int		 rc;

	if (!qid_ok(qid))
		return EINVAL;
	if ((rc = spool_dedupe_key(&k, login, letter)) != 0)
		return rc;
	v[0] = SPOOL_DEDUPE_VERSION;
	spool_be64_put(v + 1, (uint64_t)filed);
	memcpy(v + 9, qid, QID_LEN);
	return spool_db_put(t, SPOOL_DB_DEDUPE, &k, v, sizeof(v));
}

/* A pruning walk by time (spool_rec.h spool_db_prune_by_time). */
struct spool_time_prune {
	struct spool_txn	   *txn;
	enum spool_dbi		    db;
	spool_db_time_fn	   *when;
	struct spool_dedupe_cursor *cur;
	int64_t			    before;
	size_t			    left, looks, n;
};

static int
spool_time_prune_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_time_prune	   *p = arg;
	struct spool_dedupe_cursor *cur = p->cur;
	struct spool_key	    k;
	int64_t			    t;
	int			    rc;

	if (klen == cur->dc_len && memcmp(key, cur->dc_key, klen) == 0)
		return 0; /* where the last call stopped */
	if (p->left == 0 || p->looks == 0)
		return SPOOL_DEDUPE_STOP;
	p->looks--;
	if (klen > sizeof(cur->dc_key))
		return SPOOL_ECORRUPT;
	memcpy(cur->dc_key, key, klen);
	cur->dc_len = klen;
	/* an undecodable entry would never expire: it goes too */
	if (p->when(v, len, &t) == 0 && t >= p->before)
		return 0;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	if ((rc = spool_db_del(p->txn, p->db, &k)) != 0)
		return rc;
	p->left--;
	p->n++;
	return 0;
}

int
spool_db_prune_by_time(struct spool_txn *t, enum spool_dbi db,
    spool_db_time_fn *when, int64_t before, struct spool_dedupe_cursor *cur,
    size_t max, size_t *n_r, bool *done_r)
{
	struct spool_time_prune p = { .txn = t,
		.db = db,
		.when = when,
		.cur = cur,
		.before = before,
		.left = max,
		.looks = max * 4 };
	struct spool_key	k;
	int			rc;

	*n_r = 0;
	*done_r = false;
	spool_key_init(&k);
	spool_key_raw(&k, cur->dc_key, cur->dc_len);
	rc = spool_db_iter(t, db, &k, 0, false, spool_time_prune_cb, &p);
	*n_r = p.n;
	if (rc == SPOOL_DEDUPE_STOP)
		return 0;
	if (rc == 0)
		*done_r = true;
	return rc;
}

static int
spool_dedupe_when(const void *v, size_t len, int64_t *filed_r)
{
	return spool_dedupe_dec(v, len, filed_r, NULL);
}

int
spool_dedupe_prune(struct spool_txn *t, int64_t before,
    struct spool_dedupe_cursor *cur, size_t max, size_t *n_r, bool *done_r)
{
	return spool_db_prune_by_time(t, SPOOL_DB_DEDUPE, spool_dedupe_when,
	    before, cur, max, n_r, done_r);
}
