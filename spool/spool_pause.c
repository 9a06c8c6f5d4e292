/*
 * Pauses (spool.h, issue 15 item 7): key "domain\0login\0" (login "" for
 * the whole domain, so it sorts first), value the time it began (a small
 * versioned record). Few by design: at most SPOOL_PAUSE_MAX.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

static void
spool_pause_key(struct spool_key *k, const char *domain, const char *login)
{
	spool_key_init(k);
	spool_key_lstr(k, domain);
	spool_key_str(k, login);
}

int
spool_pause_count(struct spool_txn *t, size_t *n_r)
{
	return spool_db_count(t, SPOOL_DB_PAUSES, n_r);
}

int
spool_pause_get(struct spool_txn *t, const char *domain, const char *login,
    struct spool_pause *pz)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	uint64_t	 since;
	int		 rc;

	spool_pause_key(&k, domain, login);
	if ((rc = spool_db_get(t, SPOOL_DB_PAUSES, &k, &v, &len)) != 0 ||
	    (rc = spool_rec_dec_u64(v, len, &since)) != 0)
		return rc;
	memset(pz, 0, sizeof(*pz));
	(void)str_copy(pz->pz_domain, sizeof(pz->pz_domain),
	    (const char *)k.k_data);
	(void)str_copy(pz->pz_login, sizeof(pz->pz_login), login);
	pz->pz_since = (int64_t)since;
	return 0;
}

int
spool_pause_put(struct spool_txn *t, const struct spool_pause *pz)
{
	struct spool_pause old;
	struct spool_key   k;
	struct buf	   b;
	size_t		   n;
	int		   rc;

	if (pz->pz_domain[0] == '\0')
		return EINVAL;
	if ((rc = spool_pause_get(t, pz->pz_domain, pz->pz_login, &old)) == 0)
		return SPOOL_EEXIST;
	if (rc != SPOOL_ENOTFOUND)
		return rc;
	if ((rc = spool_pause_count(t, &n)) != 0)
		return rc;
	if (n >= SPOOL_PAUSE_MAX)
		return EDQUOT;
	spool_pause_key(&k, pz->pz_domain, pz->pz_login);
	buf_init(&b, 64);
	if ((rc = spool_rec_enc_u64((uint64_t)pz->pz_since, &b)) == 0)
		rc = spool_db_put(t, SPOOL_DB_PAUSES, &k, b.data, b.len);
	buf_release(&b);
	return rc;
}

int
spool_pause_del(struct spool_txn *t, const char *domain, const char *login)
{
	struct spool_key k;

	spool_pause_key(&k, domain, login);
	return spool_db_del(t, SPOOL_DB_PAUSES, &k);
}

int
spool_pause_find(struct spool_txn *t, const char *domain, const char *login,
    struct spool_pause *pz_r)
{
	int rc;

	if (login[0] != '\0' &&
	    (rc = spool_pause_get(t, domain, login, pz_r)) != SPOOL_ENOTFOUND)
		return rc;
	return spool_pause_get(t, domain, "", pz_r);
}

struct spool_pause_it {
	int (*cb)(const struct spool_pause *, void *);
	void *arg;
};

static int
spool_pause_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_pause_it *it = arg;
	struct spool_pause     pz;
	const uint8_t	      *nul = memchr(key, '\0', klen);
	uint64_t	       since;
	size_t		       dlen;
	int		       rc;

	if (nul == NULL || key[klen - 1] != '\0')
		return SPOOL_ECORRUPT;
	dlen = (size_t)(nul - key);
	memset(&pz, 0, sizeof(pz));
	if (str_ncopy(pz.pz_domain, sizeof(pz.pz_domain), (const char *)key,
		dlen) == -1 ||
	    str_copy(pz.pz_login, sizeof(pz.pz_login), (const char *)nul + 1) ==
		-1)
		return SPOOL_ECORRUPT;
	if ((rc = spool_rec_dec_u64(v, len, &since)) != 0)
		return rc;
	pz.pz_since = (int64_t)since;
	return it->cb(&pz, it->arg);
}

int
spool_pause_iter(struct spool_txn *t,
    int (*cb)(const struct spool_pause *, void *), void *arg)
{
	struct spool_pause_it it = { .cb = cb, .arg = arg };

	return spool_db_iter(t, SPOOL_DB_PAUSES, NULL, 0, false,
	    spool_pause_it_cb, &it);
}
