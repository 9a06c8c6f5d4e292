/*
 * TLS reporting (issue 17 item 4, RFC 8460; spool.h "tlsrpt"): per UTC
 * day and recipient domain, the sessions deliverd made under each policy
 * type, by result type and MX host.
 *
 *   tlsrpt: day(BE32) domain NUL policy NUL result NUL mx NUL
 *           -> version(1) count(BE64) policy-string NUL mx-patterns NUL
 *   tlsrpt: day(BE32) NUL -> version(1) rows(BE64)   (the day's row count)
 *
 * day is days since the epoch (UTC), so keys sort by day. Written by
 * deliverd's commit transaction; a day holds at most SPOOL_TLSRPT_DAY_MAX
 * rows (further new rows are dropped: the counts of existing rows still
 * grow). The first write of a day keeps that day and the
 * SPOOL_TLSRPT_DAYS - 1 before it, deleting older ones (at most SPOOL_TLSRPT_PRUNE_MAX rows per call, the
 * rest at the next new day). An older database gets the empty database
 * from the writer's open; there is nothing to build.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_TLSRPT_VERSION   1
#define SPOOL_TLSRPT_STOP      (-30995) /* internal: the walk stops here */
#define SPOOL_TLSRPT_PRUNE_MAX (4 * SPOOL_TLSRPT_DAY_MAX)

static uint32_t
spool_tlsrpt_day(int64_t t)
{
	return t < 0 ? 0 : (uint32_t)(t / 86400);
}

static int
spool_tlsrpt_key(struct spool_key *k, uint32_t day,
    const struct spool_tlsrpt_row *r)
{
	spool_key_init(k);
	spool_key_be32(k, day);
	if (r == NULL) {
		spool_key_str(k, "");
		return 0;
	}
	if (r->tr_domain[0] == '\0')
		return EINVAL;
	spool_key_lstr(k, r->tr_domain);
	spool_key_str(k, r->tr_policy);
	spool_key_str(k, r->tr_result);
	spool_key_lstr(k, r->tr_mx);
	return spool_key_ok(k) ? 0 : SPOOL_ETOOBIG;
}

/* The count of a row (or the day's row count) and where its strings start. */
static int
spool_tlsrpt_count(const void *v, size_t len, uint64_t *n_r)
{
	const uint8_t *p = v;

	if (len < 9 || p[0] != SPOOL_TLSRPT_VERSION)
		return SPOOL_ECORRUPT;
	*n_r = spool_be64_get(p + 1);
	return 0;
}

static int
spool_tlsrpt_prune_cb(const uint8_t *key, size_t klen, const void *v,
    size_t len, void *arg)
{
	void		**a = arg;
	struct spool_txn *t = a[0];
	uint32_t	  before = *(uint32_t *)a[1];
	size_t		 *left = a[2];
	struct spool_key  k;

	(void)v;
	(void)len;
	if (klen < 4 || spool_be32_get(key) >= before || *left == 0)
		return SPOOL_TLSRPT_STOP;
	(*left)--;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	return spool_db_del(t, SPOOL_DB_TLSRPT, &k);
}

/* Deletes the rows of the days before `before` (a bounded number). */
static int
spool_tlsrpt_prune(struct spool_txn *t, uint32_t before)
{
	struct spool_key k;
	size_t		 left = SPOOL_TLSRPT_PRUNE_MAX;
	void		*a[3] = { t, &before, &left };
	int		 rc;

	spool_key_init(&k);
	rc = spool_db_iter(t, SPOOL_DB_TLSRPT, &k, 0, false,
	    spool_tlsrpt_prune_cb, a);
	return rc == SPOOL_TLSRPT_STOP ? 0 : rc;
}

/* Counts one more row in the day; SPOOL_EFULL-like refusal: 1 when the
 * day is at its cap. */
static int
spool_tlsrpt_newrow(struct spool_txn *t, uint32_t day)
{
	struct spool_key k;
	uint8_t		 v[9];
	const void	*old;
	size_t		 len;
	uint64_t	 n = 0;
	int		 rc;

	(void)spool_tlsrpt_key(&k, day, NULL);
	rc = spool_db_get(t, SPOOL_DB_TLSRPT, &k, &old, &len);
	if (rc == SPOOL_ENOTFOUND) {
		if (day >= SPOOL_TLSRPT_DAYS &&
		    (rc = spool_tlsrpt_prune(t, day - SPOOL_TLSRPT_DAYS + 1)) !=
			0)
			return rc;
	} else if (rc != 0 || (rc = spool_tlsrpt_count(old, len, &n)) != 0)
		return rc;
	if (n >= SPOOL_TLSRPT_DAY_MAX)
		return 1;
	v[0] = SPOOL_TLSRPT_VERSION;
	spool_be64_put(v + 1, n + 1);
	return spool_db_put(t, SPOOL_DB_TLSRPT, &k, v, sizeof(v));
}

int
spool_tlsrpt_add(struct spool_txn *t, int64_t now,
    const struct spool_tlsrpt_row *r)
{
	struct spool_key k;
	uint8_t		 v[9 + sizeof(r->tr_pstr) + sizeof(r->tr_mxpat)];
	const void	*old;
	size_t		 len, pl = strlen(r->tr_pstr), ml = strlen(r->tr_mxpat);
	uint64_t	 n = 0;
	uint32_t	 day = spool_tlsrpt_day(now);
	int		 rc;

	if ((rc = spool_tlsrpt_key(&k, day, r)) != 0)
		return rc;
	rc = spool_db_get(t, SPOOL_DB_TLSRPT, &k, &old, &len);
	if (rc == SPOOL_ENOTFOUND) {
		if ((rc = spool_tlsrpt_newrow(t, day)) != 0)
			return rc == 1 ? 0 : rc; /* the day is full */
	} else if (rc != 0 || (rc = spool_tlsrpt_count(old, len, &n)) != 0)
		return rc;
	v[0] = SPOOL_TLSRPT_VERSION;
	spool_be64_put(v + 1, n + 1);
	memcpy(v + 9, r->tr_pstr, pl + 1);
	memcpy(v + 9 + pl + 1, r->tr_mxpat, ml + 1);
	return spool_db_put(t, SPOOL_DB_TLSRPT, &k, v, 9 + pl + 1 + ml + 1);
}

/* A key's string part at *off (NUL-terminated inside the key) into dst. */
static int
spool_tlsrpt_part(const uint8_t *key, size_t klen, size_t *off, char *dst,
    size_t dstsz)
{
	const uint8_t *nul = memchr(key + *off, '\0', klen - *off);
	size_t	       n;

	if (nul == NULL || (n = (size_t)(nul - (key + *off))) >= dstsz)
		return SPOOL_ECORRUPT;
	memcpy(dst, key + *off, n + 1);
	*off += n + 1;
	return 0;
}

static int
spool_tlsrpt_dec(const uint8_t *key, size_t klen, const void *v, size_t len,
    struct spool_tlsrpt_row *r)
{
	const char *p = (const char *)v + 9, *end = (const char *)v + len;
	size_t	    off = 4, n;
	int	    rc;

	memset(r, 0, sizeof(*r));
	if ((rc = spool_tlsrpt_count(v, len, &r->tr_count)) != 0 ||
	    (rc = spool_tlsrpt_part(key, klen, &off, r->tr_domain,
		 sizeof(r->tr_domain))) != 0 ||
	    (rc = spool_tlsrpt_part(key, klen, &off, r->tr_policy,
		 sizeof(r->tr_policy))) != 0 ||
	    (rc = spool_tlsrpt_part(key, klen, &off, r->tr_result,
		 sizeof(r->tr_result))) != 0 ||
	    (rc = spool_tlsrpt_part(key, klen, &off, r->tr_mx,
		 sizeof(r->tr_mx))) != 0)
		return rc;
	if ((n = strnlen(p, (size_t)(end - p))) >= sizeof(r->tr_pstr) ||
	    p + n >= end)
		return SPOOL_ECORRUPT;
	memcpy(r->tr_pstr, p, n + 1);
	p += n + 1;
	if ((n = strnlen(p, (size_t)(end - p))) >= sizeof(r->tr_mxpat) ||
	    p + n >= end)
		return SPOOL_ECORRUPT;
	memcpy(r->tr_mxpat, p, n + 1);
	return 0;
}

struct spool_tlsrpt_walk {
	int (*cb)(const struct spool_tlsrpt_row *, void *);
	void *arg;
};

static int
spool_tlsrpt_iter_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_tlsrpt_walk *w = arg;
	struct spool_tlsrpt_row	  r;
	int			  rc;

	if (klen == 5 && key[4] == '\0')
		return 0; /* the day's row count */
	if ((rc = spool_tlsrpt_dec(key, klen, v, len, &r)) != 0)
		return rc;
	return w->cb(&r, w->arg);
}

int
spool_tlsrpt_iter(struct spool_txn *t, int64_t day_start, const char *domain,
    int (*cb)(const struct spool_tlsrpt_row *, void *), void *arg)
{
	struct spool_key	 k;
	struct spool_tlsrpt_walk w = { cb, arg };

	spool_key_init(&k);
	spool_key_be32(&k, spool_tlsrpt_day(day_start));
	if (domain != NULL && domain[0] != '\0')
		spool_key_lstr(&k, domain);
	if (!spool_key_ok(&k))
		return SPOOL_ETOOBIG;
	return spool_db_iter(t, SPOOL_DB_TLSRPT, &k, k.k_len, false,
	    spool_tlsrpt_iter_cb, &w);
}
