/*
 * TLS reporting (issue 17 item 4, RFC 8460; spool.h "tlsrpt"): per UTC
 * day and recipient domain, the sessions deliverd made under each policy
 * type, by result type and MX host, failures also by sending and
 * receiving IP and the MX's EHLO name (RFC 8460 4.4).
 *
 *   tlsrpt: day(BE32) domain NUL policy NUL result NUL mx NUL
 *           [sip NUL rip NUL helo NUL ["overflow" NUL]]
 *           -> version(1) count(BE64) policy-string NUL mx-patterns NUL
 *   tlsrpt: day(BE32) NUL -> version(1) rows(BE64)   (the day's row count)
 *
 * day is days since the epoch (UTC), so keys sort by day. The bracketed
 * parts are in failure rows with an address or EHLO name only (a key
 * without them, the only form before they existed, decodes with them "";
 * a key too long with the EHLO name drops it); "overflow" marks the
 * domain's row of a policy and result type that counts the failures past
 * SPOOL_TLSRPT_DETAIL_MAX failure rows of the domain and day (its mx, sip,
 * rip and helo are ""). Written by deliverd's commit transaction; a day
 * holds at most SPOOL_TLSRPT_DAY_MAX rows (further new rows are dropped:
 * the counts of existing rows still grow). The first write of a day keeps
 * that day and the SPOOL_TLSRPT_DAYS - 1 before it, deleting older ones
 * (at most SPOOL_TLSRPT_PRUNE_MAX rows per call, the rest at the next new
 * day). An older database gets the empty database from the writer's open;
 * there is nothing to build.
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

#define SPOOL_TLSRPT_OVERFLOW "overflow"

/* The parts after the MX host: none, the addresses and EHLO name, the
 * addresses only, or the overflow row's. */
enum spool_tlsrpt_form {
	SPOOL_TLSRPT_BASE,
	SPOOL_TLSRPT_ADDRS,
	SPOOL_TLSRPT_NOHELO,
	SPOOL_TLSRPT_OVER
};

static int
spool_tlsrpt_key(struct spool_key *k, uint32_t day,
    const struct spool_tlsrpt_row *r, enum spool_tlsrpt_form f)
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
	spool_key_lstr(k, f == SPOOL_TLSRPT_OVER ? "" : r->tr_mx);
	if (f == SPOOL_TLSRPT_ADDRS || f == SPOOL_TLSRPT_NOHELO) {
		spool_key_str(k, r->tr_sip);
		spool_key_str(k, r->tr_rip);
		spool_key_str(k, f == SPOOL_TLSRPT_ADDRS ? r->tr_helo : "");
	} else if (f == SPOOL_TLSRPT_OVER) {
		spool_key_str(k, ""); /* sip, rip, helo */
		spool_key_str(k, "");
		spool_key_str(k, "");
		spool_key_str(k, SPOOL_TLSRPT_OVERFLOW);
	}
	return spool_key_ok(k) ? 0 : SPOOL_ETOOBIG;
}

static bool
spool_tlsrpt_failure(const struct spool_tlsrpt_row *r)
{
	return strcmp(r->tr_result, "success") != 0;
}

/* The row key of r: a success per MX host; a failure with what is known
 * of its connection, without the EHLO name or in the overflow row when
 * the key does not fit (*over_r). */
static int
spool_tlsrpt_rowkey(struct spool_key *k, uint32_t day,
    const struct spool_tlsrpt_row *r, bool *over_r)
{
	int rc;

	*over_r = false;
	if (!spool_tlsrpt_failure(r) ||
	    (r->tr_sip[0] == '\0' && r->tr_rip[0] == '\0' &&
		r->tr_helo[0] == '\0'))
		return spool_tlsrpt_key(k, day, r, SPOOL_TLSRPT_BASE);
	if ((rc = spool_tlsrpt_key(k, day, r, SPOOL_TLSRPT_ADDRS)) !=
		SPOOL_ETOOBIG ||
	    (rc = spool_tlsrpt_key(k, day, r, SPOOL_TLSRPT_NOHELO)) !=
		SPOOL_ETOOBIG)
		return rc;
	*over_r = true;
	return spool_tlsrpt_key(k, day, r, SPOOL_TLSRPT_OVER);
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

/* spool_db_prune_days (spool_rec.h): a walk from the first key */
struct spool_dayprune {
	struct spool_txn *t;
	enum spool_dbi	  d;
	uint32_t	  before;
	size_t		  left;
};

static int
spool_dayprune_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_dayprune *dp = arg;
	struct spool_key       k;

	(void)v;
	(void)len;
	if (klen < 4 || spool_be32_get(key) >= dp->before || dp->left == 0)
		return SPOOL_TLSRPT_STOP;
	dp->left--;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	return spool_db_del(dp->t, dp->d, &k);
}

int
spool_db_prune_days(struct spool_txn *t, enum spool_dbi d, uint32_t before,
    size_t max)
{
	struct spool_dayprune dp = { .t = t,
		.d = d,
		.before = before,
		.left = max };
	struct spool_key      k;
	int		      rc;

	spool_key_init(&k);
	rc = spool_db_iter(t, d, &k, 0, false, spool_dayprune_cb, &dp);
	return rc == SPOOL_TLSRPT_STOP ? 0 : rc;
}

/* Deletes the rows of the days before `before` (a bounded number). */
static int
spool_tlsrpt_prune(struct spool_txn *t, uint32_t before)
{
	return spool_db_prune_days(t, SPOOL_DB_TLSRPT, before,
	    SPOOL_TLSRPT_PRUNE_MAX);
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

	(void)spool_tlsrpt_key(&k, day, NULL, SPOOL_TLSRPT_BASE);
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

/* The session count of the row at k: 0, SPOOL_ENOTFOUND or an error. */
static int
spool_tlsrpt_find(struct spool_txn *t, const struct spool_key *k, uint64_t *n_r)
{
	const void *old;
	size_t	    len;
	int	    rc;

	*n_r = 0;
	if ((rc = spool_db_get(t, SPOOL_DB_TLSRPT, k, &old, &len)) != 0)
		return rc;
	return spool_tlsrpt_count(old, len, n_r);
}

/* Stores the row at k with n + 1 sessions and r's strings. */
static int
spool_tlsrpt_write(struct spool_txn *t, const struct spool_key *k,
    const struct spool_tlsrpt_row *r, uint64_t n)
{
	uint8_t v[9 + sizeof(r->tr_pstr) + sizeof(r->tr_mxpat)];
	size_t	pl = strnlen(r->tr_pstr, sizeof(r->tr_pstr) - 1);
	size_t	ml = strnlen(r->tr_mxpat, sizeof(r->tr_mxpat) - 1);

	v[0] = SPOOL_TLSRPT_VERSION;
	spool_be64_put(v + 1, n + 1);
	memcpy(v + 9, r->tr_pstr, pl);
	v[9 + pl] = '\0';
	memcpy(v + 9 + pl + 1, r->tr_mxpat, ml);
	v[9 + pl + 1 + ml] = '\0';
	return spool_db_put(t, SPOOL_DB_TLSRPT, k, v, 9 + pl + 1 + ml + 1);
}

/* Counts one session in the row at k, a new row when the day has room
 * (*new_r; else nothing is counted). */
static int
spool_tlsrpt_bump(struct spool_txn *t, const struct spool_key *k, uint32_t day,
    const struct spool_tlsrpt_row *r, bool *new_r)
{
	uint64_t n;
	int	 rc;

	*new_r = false;
	rc = spool_tlsrpt_find(t, k, &n);
	if (rc == SPOOL_ENOTFOUND) {
		if ((rc = spool_tlsrpt_newrow(t, day)) != 0)
			return rc == 1 ? 0 : rc; /* the day is full */
		*new_r = true;
	} else if (rc != 0)
		return rc;
	return spool_tlsrpt_write(t, k, r, n);
}

static int spool_tlsrpt_dec(const uint8_t *, size_t, const void *, size_t,
    struct spool_tlsrpt_row *);

static int
spool_tlsrpt_detail_cb(const uint8_t *key, size_t klen, const void *v,
    size_t len, void *arg)
{
	size_t		       *n = arg;
	struct spool_tlsrpt_row r;
	int			rc;

	if ((rc = spool_tlsrpt_dec(key, klen, v, len, &r)) != 0)
		return rc;
	if (spool_tlsrpt_failure(&r) && !r.tr_overflow)
		(*n)++;
	return *n >= SPOOL_TLSRPT_DETAIL_MAX ? SPOOL_TLSRPT_STOP : 0;
}

/* Has the domain its SPOOL_TLSRPT_DETAIL_MAX failure rows of the day?
 * A walk of its rows of the day (up to the cap's failure rows), made only
 * for a failure without a row while its overflow row does not exist. */
static int
spool_tlsrpt_detail_full(struct spool_txn *t, uint32_t day, const char *domain,
    bool *full_r)
{
	struct spool_key k;
	size_t		 n = 0;
	int		 rc;

	spool_key_init(&k);
	spool_key_be32(&k, day);
	spool_key_lstr(&k, domain);
	if (!spool_key_ok(&k))
		return SPOOL_ETOOBIG;
	rc = spool_db_iter(t, SPOOL_DB_TLSRPT, &k, k.k_len, false,
	    spool_tlsrpt_detail_cb, &n);
	*full_r = n >= SPOOL_TLSRPT_DETAIL_MAX;
	return rc == SPOOL_TLSRPT_STOP ? 0 : rc;
}

/* Where a failure without a row of its own goes: a new row at k, or (*k
 * replaced, *over_r) the domain's overflow row of its policy and result
 * type when that exists (the domain was full: rows of a day are never
 * deleted during it) or the domain has its SPOOL_TLSRPT_DETAIL_MAX
 * failure rows. */
static int
spool_tlsrpt_place(struct spool_txn *t, uint32_t day,
    const struct spool_tlsrpt_row *r, struct spool_key *k, bool *over_r)
{
	struct spool_key o;
	uint64_t	 n;
	bool		 full = true;
	int		 rc;

	if ((rc = spool_tlsrpt_key(&o, day, r, SPOOL_TLSRPT_OVER)) != 0)
		return rc;
	rc = spool_tlsrpt_find(t, &o, &n);
	if (rc == SPOOL_ENOTFOUND)
		rc = spool_tlsrpt_detail_full(t, day, r->tr_domain, &full);
	if (rc != 0)
		return rc;
	if (full)
		*k = o;
	*over_r = full;
	return 0;
}

int
spool_tlsrpt_add(struct spool_txn *t, int64_t now,
    const struct spool_tlsrpt_row *r, bool *overflow_r)
{
	struct spool_key k;
	uint64_t	 n;
	uint32_t	 day = spool_tlsrpt_day(now);
	bool		 over, created;
	int		 rc;

	if (overflow_r != NULL)
		*overflow_r = false;
	if ((rc = spool_tlsrpt_rowkey(&k, day, r, &over)) != 0)
		return rc;
	if (spool_tlsrpt_failure(r) && !over) {
		rc = spool_tlsrpt_find(t, &k, &n);
		if (rc == 0)
			return spool_tlsrpt_write(t, &k, r, n);
		if (rc != SPOOL_ENOTFOUND ||
		    (rc = spool_tlsrpt_place(t, day, r, &k, &over)) != 0)
			return rc;
	}
	if ((rc = spool_tlsrpt_bump(t, &k, day, r, &created)) != 0)
		return rc;
	if (over && created && overflow_r != NULL)
		*overflow_r = true;
	return 0;
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

/* The parts of a key after the MX host: none (a key of before them),
 * sip, rip and helo, or those and "overflow". */
static int
spool_tlsrpt_dec_ext(const uint8_t *key, size_t klen, size_t off,
    struct spool_tlsrpt_row *r)
{
	char kind[sizeof(SPOOL_TLSRPT_OVERFLOW)];
	int  rc;

	if (off == klen)
		return 0;
	if ((rc = spool_tlsrpt_part(key, klen, &off, r->tr_sip,
		 sizeof(r->tr_sip))) != 0 ||
	    (rc = spool_tlsrpt_part(key, klen, &off, r->tr_rip,
		 sizeof(r->tr_rip))) != 0 ||
	    (rc = spool_tlsrpt_part(key, klen, &off, r->tr_helo,
		 sizeof(r->tr_helo))) != 0)
		return rc;
	if (off == klen)
		return 0;
	if ((rc = spool_tlsrpt_part(key, klen, &off, kind, sizeof(kind))) !=
		0 ||
	    strcmp(kind, SPOOL_TLSRPT_OVERFLOW) != 0 || off != klen)
		return SPOOL_ECORRUPT;
	r->tr_overflow = true;
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
		 sizeof(r->tr_mx))) != 0 ||
	    (rc = spool_tlsrpt_dec_ext(key, klen, off, r)) != 0)
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
