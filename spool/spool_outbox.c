/*
 * spool_outbox: the callback outbox, one key range per account (spool.h).
 * Key: login, NUL, BE64 event sequence; value: a version byte, the event
 * time (BE64 unix seconds), the event JSON. The callback sender reads,
 * posts, backs off and ages out each account on its own, so one dead
 * receiver never hides another account's entries. The first outbox
 * ("outbox": BE64 seq -> login NUL JSON) is moved here by the writer's
 * open (spool_db_migrate_spoold).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_OUTBOX_VERSION 1
#define SPOOL_OUTBOX_HDR     9	   /* version + BE64 time */
#define SPOOL_MIGRATE_CHUNK  10000 /* entries per migration transaction */

static void
spool_outbox_key(struct spool_key *k, const char *login, uint64_t seq)
{
	spool_key_init(k);
	spool_key_str(k, login);
	spool_key_be64(k, seq);
}

int
spool_outbox_put(struct spool_txn *t, const char *login, uint64_t seq,
    int64_t dt, const char *json, size_t len)
{
	struct spool_key k;
	struct buf	 b;
	uint8_t		 hdr[SPOOL_OUTBOX_HDR];
	int		 rc;

	if (login[0] == '\0')
		return EINVAL;
	spool_outbox_key(&k, login, seq);
	hdr[0] = SPOOL_OUTBOX_VERSION;
	spool_be64_put(hdr + 1, (uint64_t)dt);
	buf_init(&b, SPOOL_REC_MAX * 2);
	if (buf_append(&b, hdr, sizeof(hdr)) == -1 ||
	    buf_append(&b, json, len) == -1)
		rc = errno == EMSGSIZE ? SPOOL_ETOOBIG : ENOMEM;
	else
		rc = spool_db_put(t, SPOOL_DB_OUTBOX_ACCT, &k, b.data, b.len);
	buf_release(&b);
	return rc;
}

struct spool_outbox_it {
	int (*cb)(uint64_t, int64_t, const char *, size_t, void *);
	void	*arg;
	size_t	 plen; /* login + NUL */
	char	*login_r;
	int64_t *dt_r;
};

static int
spool_outbox_first_cb(const uint8_t *key, size_t klen, const void *v,
    size_t len, void *arg)
{
	struct spool_outbox_it *it = arg;
	const uint8_t	       *nul, *p = v;

	if ((nul = memchr(key, '\0', klen)) == NULL ||
	    (size_t)(nul - key) >= SPOOL_LOGIN_MAX ||
	    klen != (size_t)(nul - key) + 9 || len < SPOOL_OUTBOX_HDR)
		return SPOOL_ECORRUPT;
	memcpy(it->login_r, key, (size_t)(nul - key) + 1);
	if (it->dt_r != NULL)
		*it->dt_r = (int64_t)spool_be64_get(p + 1);
	return 1;
}

int
spool_outbox_next_account(struct spool_txn *t, const char *after,
    char login_r[SPOOL_LOGIN_MAX], int64_t *dt_r)
{
	struct spool_outbox_it it = { .login_r = login_r, .dt_r = dt_r };
	struct spool_key       k;
	int		       rc;

	spool_key_init(&k);
	if (after != NULL && after[0] != '\0') {
		/* past every "after\0..." key: the next login sorts at or above this */
		spool_key_raw(&k, after, strlen(after));
		spool_key_raw(&k, "\001", 1);
	}
	rc = spool_db_iter(t, SPOOL_DB_OUTBOX_ACCT, &k, 0, false,
	    spool_outbox_first_cb, &it);
	if (rc == 1)
		return 0;
	return rc == 0 ? SPOOL_ENOTFOUND : rc;
}

static int
spool_outbox_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_outbox_it *it = arg;
	const uint8_t	       *p = v;

	if (klen != it->plen + 8 || len < SPOOL_OUTBOX_HDR ||
	    p[0] != SPOOL_OUTBOX_VERSION)
		return SPOOL_ECORRUPT;
	return it->cb(spool_be64_get(key + it->plen),
	    (int64_t)spool_be64_get(p + 1), (const char *)p + SPOOL_OUTBOX_HDR,
	    len - SPOOL_OUTBOX_HDR, it->arg);
}

int
spool_outbox_iter(struct spool_txn *t, const char *login, uint64_t from,
    int (*cb)(uint64_t seq, int64_t dt, const char *json, size_t len, void *),
    void *arg)
{
	struct spool_outbox_it it = { .cb = cb, .arg = arg };
	struct spool_key       k;

	spool_key_init(&k);
	spool_key_str(&k, login);
	it.plen = k.k_len;
	spool_key_be64(&k, from);
	return spool_db_iter(t, SPOOL_DB_OUTBOX_ACCT, &k, it.plen, false,
	    spool_outbox_it_cb, &it);
}

int
spool_outbox_del(struct spool_txn *t, const char *login, uint64_t seq)
{
	struct spool_key k;

	spool_outbox_key(&k, login, seq);
	return spool_db_del(t, SPOOL_DB_OUTBOX_ACCT, &k);
}

struct spool_outbox_age {
	struct spool_txn *t;
	const char	 *login;
	int64_t		  before;
	size_t		  max, n;
};

static int
spool_outbox_age_cb(uint64_t seq, int64_t dt, const char *json, size_t len,
    void *arg)
{
	struct spool_outbox_age *a = arg;
	int			 rc;

	(void)json;
	(void)len;
	if (dt >= a->before || a->n == a->max)
		return 1; /* the rest is younger (sequence order is time order) */
	if ((rc = spool_outbox_del(a->t, a->login, seq)) != 0)
		return rc;
	a->n++;
	return 0;
}

/* Adds n to the total and to the account's counter in meta. */
static int
spool_outbox_count_drops(struct spool_txn *t, const char *login, uint64_t n)
{
	char	 name[SPOOL_LOGIN_MAX + 32];
	uint64_t v;
	int	 rc, i;

	for (i = 0; i < 2; i++) {
		if (i == 0)
			(void)str_copy(name, sizeof(name), "callback_dropped");
		else
			(void)snprintf(name, sizeof(name),
			    "callback_dropped:%s", login);
		v = 0;
		rc = spool_db_meta_get_u64(t, name, &v);
		if (rc != 0 && rc != SPOOL_ENOTFOUND)
			return rc;
		if ((rc = spool_db_meta_put_u64(t, name, v + n)) != 0)
			return rc;
	}
	return 0;
}

int
spool_outbox_drop_old(struct spool_txn *t, const char *login, int64_t before,
    size_t max, size_t *n_r)
{
	struct spool_outbox_age a = { .t = t,
		.login = login,
		.before = before,
		.max = max };
	int			rc;

	*n_r = 0;
	rc = spool_outbox_iter(t, login, 0, spool_outbox_age_cb, &a);
	if (rc != 0 && rc != 1)
		return rc;
	if (a.n > 0 && (rc = spool_outbox_count_drops(t, login, a.n)) != 0)
		return rc;
	*n_r = a.n;
	return 0;
}

int
spool_outbox_dropped(struct spool_txn *t, const char *login, uint64_t *n_r)
{
	char name[SPOOL_LOGIN_MAX + 32];
	int  rc;

	if (login == NULL)
		(void)str_copy(name, sizeof(name), "callback_dropped");
	else
		(void)snprintf(name, sizeof(name), "callback_dropped:%s",
		    login);
	*n_r = 0;
	rc = spool_db_meta_get_u64(t, name, n_r);
	return rc == SPOOL_ENOTFOUND ? 0 : rc;
}

/* ---- migration from the first outbox */

struct spool_migrate {
	struct spool_txn *t;
	int64_t		  now;
	size_t		  n;
};

static int
spool_migrate_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_migrate *m = arg;
	struct spool_key      k;
	const char	     *login = v, *nul;
	int		      rc;

	if (m->n == SPOOL_MIGRATE_CHUNK)
		return 1;
	if (klen != 8 || (nul = memchr(v, '\0', len)) == NULL)
		return SPOOL_ECORRUPT;
	/* the first outbox kept no time: the entry ages from its move */
	if (login[0] != '\0' &&
	    (rc = spool_outbox_put(m->t, login, spool_be64_get(key), m->now,
		 nul + 1, len - (size_t)(nul + 1 - login))) != 0)
		return rc;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	if ((rc = spool_db_del(m->t, SPOOL_DB_OUTBOX, &k)) != 0)
		return rc;
	m->n++;
	return 0;
}

int
spool_db_migrate_spoold(struct spool *sp)
{
	struct spool_migrate m = { .now = (int64_t)time(NULL) };
	int		     rc;

	do {
		m.n = 0;
		if ((rc = spool_begin(sp, true, &m.t)) != 0)
			return rc;
		rc = spool_db_iter(m.t, SPOOL_DB_OUTBOX, NULL, 0, false,
		    spool_migrate_cb, &m);
		if (rc != 0 && rc != 1) {
			spool_abort(&m.t);
			return rc;
		}
		if (m.n == 0) {
			spool_abort(&m.t);
			return 0;
		}
		if ((rc = spool_commit(&m.t)) != 0)
			return rc;
	} while (m.n == SPOOL_MIGRATE_CHUNK);
	return 0;
}
