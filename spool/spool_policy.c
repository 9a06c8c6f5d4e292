/*
 * Policy records in LMDB: accounts, senders, DKIM keys, stoplist and
 * permanent failures (spool.h). Keys are "login\0part": everything an
 * account owns sits under its prefix. Addresses and domains in keys are
 * lower-cased here, so callers never have to.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "idn.h"
#include "spool.h"
#include "spool_key.h"
#include "spool_rec.h"

static void
spool_pkey(struct spool_key *k, const char *login, const char *part)
{
	spool_key_init(k);
	spool_key_str(k, login);
	if (part != NULL)
		spool_key_lstr(k, part);
}

/* Encodes with enc, then stores under k. */
static int
spool_put_rec(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k,
    struct buf *b, int rc)
{
	if (rc == 0)
		rc = spool_db_put(t, d, k, b->data, b->len);
	buf_release(b);
	return rc;
}

/* ---- accounts */

int
spool_account_get(struct spool_txn *t, const char *login,
    struct spool_account *a)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	spool_pkey(&k, login, NULL);
	if ((rc = spool_db_get(t, SPOOL_DB_ACCOUNTS, &k, &v, &len)) != 0)
		return rc;
	return spool_rec_dec_account(v, len, a);
}

int
spool_account_put(struct spool_txn *t, const struct spool_account *a)
{
	struct spool_key k;
	struct buf	 b;

	if (a->ac_login[0] == '\0')
		return EINVAL;
	spool_pkey(&k, a->ac_login, NULL);
	buf_init(&b, SPOOL_REC_MAX);
	return spool_put_rec(t, SPOOL_DB_ACCOUNTS, &k, &b,
	    spool_rec_enc_account(a, &b));
}

int
spool_account_del(struct spool_txn *t, const char *login)
{
	static const enum spool_dbi owned[] = { SPOOL_DB_SENDERS, SPOOL_DB_DKIM,
		SPOOL_DB_STOPLIST, SPOOL_DB_PERMFAIL };
	struct spool_key	    k;
	size_t			    i;
	int			    rc;

	spool_pkey(&k, login, NULL);
	if ((rc = spool_db_del(t, SPOOL_DB_ACCOUNTS, &k)) != 0)
		return rc;
	for (i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
		if ((rc = spool_db_del_prefix(t, owned[i], &k)) != 0)
			return rc;
	return 0;
}

struct spool_account_it {
	int (*cb)(const struct spool_account *, void *);
	void		     *arg;
	const char	     *ip;  /* by_ip: the address */
	struct spool_account *out; /* by_ip: the result */
};

static int
spool_account_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_account_it *it = arg;
	struct spool_account	 a;
	size_t			 i;
	int			 rc;

	(void)key;
	(void)klen;
	if ((rc = spool_rec_dec_account(v, len, &a)) != 0)
		return rc;
	if (it->ip == NULL)
		return it->cb(&a, it->arg);
	for (i = 0; i < a.ac_nips; i++)
		if (cidr_match_str(&a.ac_ips[i], it->ip)) {
			*it->out = a;
			return 1;
		}
	return 0;
}

int
spool_account_iter(struct spool_txn *t,
    int (*cb)(const struct spool_account *, void *), void *arg)
{
	struct spool_account_it it = { .cb = cb, .arg = arg };

	return spool_db_iter(t, SPOOL_DB_ACCOUNTS, NULL, 0, false,
	    spool_account_it_cb, &it);
}

int
spool_account_by_ip(struct spool_txn *t, const char *addr,
    struct spool_account *a)
{
	struct spool_account_it it = { .ip = addr, .out = a };
	int			rc;

	rc = spool_db_iter(t, SPOOL_DB_ACCOUNTS, NULL, 0, false,
	    spool_account_it_cb, &it);
	if (rc == 1)
		return 0;
	return rc == 0 ? SPOOL_ENOTFOUND : rc;
}

/* ---- iteration over "login\0part" keys: cb gets the part */

struct spool_part_it {
	size_t plen;
	int (*cb)(const char *part, const void *v, size_t len, void *);
	void *arg;
};

static int
spool_part_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_part_it *it = arg;
	char		      part[SPOOL_KEY_MAX + 1];
	size_t		      n = klen - it->plen;

	memcpy(part, key + it->plen, n);
	part[n] = '\0'; /* keys end in NUL already; this bounds them */
	return it->cb(part, v, len, it->arg);
}

static int
spool_part_iter(struct spool_txn *t, enum spool_dbi d, const char *login,
    int (*cb)(const char *, const void *, size_t, void *), void *arg)
{
	struct spool_key     k;
	struct spool_part_it it = { .cb = cb, .arg = arg };

	spool_pkey(&k, login, NULL);
	it.plen = k.k_len;
	return spool_db_iter(t, d, &k, k.k_len, false, spool_part_it_cb, &it);
}

/* ---- senders */

const char *
spool_sender_status_name(enum spool_sender_status s)
{
	switch (s) {
	case SPOOL_SENDER_APPROVED:
		return "approved";
	case SPOOL_SENDER_ONMODERATION:
		return "onmoderation";
	case SPOOL_SENDER_PROHIBITED:
		return "prohibited";
	default:
		return "unknown";
	}
}

int
spool_sender_put(struct spool_txn *t, const char *login, const char *key,
    enum spool_sender_status s)
{
	struct spool_key k;
	struct buf	 b;

	if (s < SPOOL_SENDER_APPROVED || s > SPOOL_SENDER_PROHIBITED ||
	    key[0] == '\0')
		return EINVAL;
	spool_pkey(&k, login, key);
	buf_init(&b, 64);
	return spool_put_rec(t, SPOOL_DB_SENDERS, &k, &b,
	    spool_rec_enc_u64(s, &b));
}

int
spool_sender_get(struct spool_txn *t, const char *login, const char *key,
    enum spool_sender_status *s_r)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	uint64_t	 s;
	int		 rc;

	spool_pkey(&k, login, key);
	if ((rc = spool_db_get(t, SPOOL_DB_SENDERS, &k, &v, &len)) != 0 ||
	    (rc = spool_rec_dec_u64(v, len, &s)) != 0)
		return rc;
	*s_r = (enum spool_sender_status)s;
	return 0;
}

int
spool_sender_del(struct spool_txn *t, const char *login, const char *key)
{
	struct spool_key k;

	spool_pkey(&k, login, key);
	return spool_db_del(t, SPOOL_DB_SENDERS, &k);
}

struct spool_sender_it {
	int (*cb)(const char *, enum spool_sender_status, void *);
	void *arg;
};

static int
spool_sender_it_cb(const char *part, const void *v, size_t len, void *arg)
{
	struct spool_sender_it *it = arg;
	uint64_t		s;
	int			rc;

	if ((rc = spool_rec_dec_u64(v, len, &s)) != 0)
		return rc;
	return it->cb(part, (enum spool_sender_status)s, it->arg);
}

int
spool_sender_iter(struct spool_txn *t, const char		    *login,
    int (*cb)(const char *, enum spool_sender_status, void *), void *arg)
{
	struct spool_sender_it it = { .cb = cb, .arg = arg };

	return spool_part_iter(t, SPOOL_DB_SENDERS, login, spool_sender_it_cb,
	    &it);
}

/* ---- DKIM: key login\0domain\0selector\0 */

static void
spool_dkim_key(struct spool_key *k, const char *login, const char *domain,
    const char *selector)
{
	spool_pkey(k, login, domain);
	if (selector != NULL)
		spool_key_str(k, selector);
}

int
spool_dkim_put(struct spool_txn *t, const struct spool_dkim *d)
{
	struct spool_dkim c = *d;
	struct spool_key  k;
	struct buf	  b;

	if (c.dk_domain[0] == '\0' || c.dk_selector[0] == '\0')
		return EINVAL;
	str_lower(c.dk_domain);
	spool_dkim_key(&k, c.dk_login, c.dk_domain, c.dk_selector);
	buf_init(&b, SPOOL_REC_MAX);
	return spool_put_rec(t, SPOOL_DB_DKIM, &k, &b,
	    spool_rec_enc_dkim(&c, &b));
}

int
spool_dkim_del(struct spool_txn *t, const char *login, const char *domain,
    const char *selector)
{
	struct spool_key k;

	spool_dkim_key(&k, login, domain, selector);
	if (selector != NULL)
		return spool_db_del(t, SPOOL_DB_DKIM, &k);
	return spool_db_del_prefix(t, SPOOL_DB_DKIM, &k);
}

struct spool_dkim_it {
	int (*cb)(const struct spool_dkim *, void *);
	void *arg;
};

static int
spool_dkim_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_dkim_it *it = arg;
	struct spool_dkim     d;
	int		      rc;

	(void)key;
	(void)klen;
	if ((rc = spool_rec_dec_dkim(v, len, &d)) != 0)
		return rc;
	return it->cb(&d, it->arg);
}

int
spool_dkim_iter(struct spool_txn *t, const char *login, const char *domain,
    int (*cb)(const struct spool_dkim *, void *), void *arg)
{
	struct spool_dkim_it it = { .cb = cb, .arg = arg };
	struct spool_key     k;

	spool_dkim_key(&k, login, domain, NULL);
	return spool_db_iter(t, SPOOL_DB_DKIM, &k, k.k_len, false,
	    spool_dkim_it_cb, &it);
}

/*
 * The key of a stop-list or suppression entry (h-asupp): login, then the
 * address as idn_addr_key gives it: ASCII lower-cased, the domain as
 * A-labels ("bob@xn--bcher-kva.example" for Bob@Bücher.Example), so an
 * entry matches the mailbox whichever form a client wrote. raw: only
 * lower-cased, the form of entries written before (deletion finds them).
 */
static void
spool_addr_pkey(struct spool_key *k, const char *login, const char *addr,
    bool raw)
{
	char a[SPOOL_ADDR_MAX + 64];

	if (raw || idn_addr_key(addr, a, sizeof(a)) == -1)
		spool_pkey(k, login, addr);
	else
		spool_pkey(k, login, a);
}

/* Deletes the normalized key, else an older entry's raw one. */
static int
spool_addr_del(struct spool_txn *t, enum spool_dbi d, const char *login,
    const char *addr)
{
	struct spool_key k;
	int		 rc;

	spool_addr_pkey(&k, login, addr, false);
	rc = spool_db_del(t, d, &k);
	if (rc == SPOOL_ENOTFOUND) {
		spool_addr_pkey(&k, login, addr, true);
		rc = spool_db_del(t, d, &k);
	}
	return rc;
}

/* ---- stoplist */

int
spool_stop_put(struct spool_txn *t, const char *login, const char *addr)
{
	return spool_stop_put_why(t, login, addr, NULL);
}

int
spool_stop_put_why(struct spool_txn *t, const char *login, const char *addr,
    const struct spool_stopent *se)
{
	struct spool_stopent old;
	struct spool_key     k;
	struct buf	     b;

	if (addr[0] == '\0')
		return EINVAL;
	/* listed already: the first why stays, written again as before (a
	 * cluster node publishes the entry again, as it always did) */
	if (spool_stop_get(t, login, addr, &old) == 0)
		se = &old;
	else if (se == NULL) {
		memset(&old, 0, sizeof(old));
		se = &old;
	}
	spool_addr_pkey(&k, login, addr, false);
	buf_init(&b, SPOOL_REC_MAX);
	return spool_put_rec(t, SPOOL_DB_STOPLIST, &k, &b,
	    spool_rec_enc_stop(se, &b));
}

int
spool_stop_get(struct spool_txn *t, const char *login, const char *addr,
    struct spool_stopent *se)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	spool_addr_pkey(&k, login, addr, false);
	if ((rc = spool_db_get(t, SPOOL_DB_STOPLIST, &k, &v, &len)) != 0)
		return rc;
	return spool_rec_dec_stop(v, len, se);
}

int
spool_stop_del(struct spool_txn *t, const char *login, const char *addr)
{
	return spool_addr_del(t, SPOOL_DB_STOPLIST, login, addr);
}

bool
spool_stop_has(struct spool_txn *t, const char *login, const char *addr)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;

	spool_addr_pkey(&k, login, addr, false);
	return spool_db_get(t, SPOOL_DB_STOPLIST, &k, &v, &len) == 0;
}

struct spool_stop_it {
	int (*cb)(const char *, void *);
	void *arg;
};

static int
spool_stop_it_cb(const char *part, const void *v, size_t len, void *arg)
{
	struct spool_stop_it *it = arg;

	(void)v;
	(void)len;
	return it->cb(part, it->arg);
}

int
spool_stop_iter(struct spool_txn *t, const char *login,
    int (*cb)(const char *, void *), void	*arg)
{
	struct spool_stop_it it = { .cb = cb, .arg = arg };

	return spool_part_iter(t, SPOOL_DB_STOPLIST, login, spool_stop_it_cb,
	    &it);
}

/* ---- permanent failures */

int
spool_permfail_put(struct spool_txn *t, const char *login, const char *addr,
    int64_t when, const char *reply)
{
	struct spool_permfail pf;

	memset(&pf, 0, sizeof(pf));
	if (str_copy(pf.pf_login, sizeof(pf.pf_login), login) == -1 ||
	    str_copy(pf.pf_addr, sizeof(pf.pf_addr), addr) == -1)
		return SPOOL_ETOOBIG;
	pf.pf_when = when;
	if (reply != NULL)
		(void)str_copy(pf.pf_reply, sizeof(pf.pf_reply), reply);
	return spool_permfail_set(t, &pf);
}

int
spool_permfail_set(struct spool_txn *t, const struct spool_permfail *pf)
{
	struct spool_key k;
	struct buf	 b;

	if (pf->pf_addr[0] == '\0' || pf->pf_login[0] == '\0')
		return EINVAL;
	spool_addr_pkey(&k, pf->pf_login, pf->pf_addr, false);
	buf_init(&b, SPOOL_REC_MAX);
	return spool_put_rec(t, SPOOL_DB_PERMFAIL, &k, &b,
	    spool_rec_enc_permfail(pf, &b));
}

int
spool_permfail_get(struct spool_txn *t, const char *login, const char *addr,
    struct spool_permfail *pf)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	spool_addr_pkey(&k, login, addr, false);
	if ((rc = spool_db_get(t, SPOOL_DB_PERMFAIL, &k, &v, &len)) != 0)
		return rc;
	memset(pf, 0, sizeof(*pf));
	(void)str_copy(pf->pf_login, sizeof(pf->pf_login), login);
	if (idn_addr_key(addr, pf->pf_addr, sizeof(pf->pf_addr)) == -1)
		(void)str_copy(pf->pf_addr, sizeof(pf->pf_addr), addr);
	str_lower(pf->pf_addr);
	return spool_rec_dec_permfail(v, len, pf);
}

struct spool_pf_it {
	int (*cb)(const struct spool_permfail *, void *);
	void		     *arg;
	const uint8_t	     *skip; /* the "after" key itself */
	size_t		      skiplen;
	struct spool_permfail pf;
};

/* key: "login\0addr\0" */
static int
spool_pf_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_pf_it *it = arg;
	const uint8_t	   *nul;
	size_t		    llen, alen;
	int		    rc;

	if (it->skip != NULL && klen == it->skiplen &&
	    memcmp(key, it->skip, klen) == 0)
		return 0;
	if ((nul = memchr(key, '\0', klen)) == NULL)
		return SPOOL_ECORRUPT;
	llen = (size_t)(nul - key);
	alen = klen - llen - 1;
	if (alen > 0 && key[klen - 1] == '\0')
		alen--;
	if (llen >= sizeof(it->pf.pf_login) || alen >= sizeof(it->pf.pf_addr))
		return SPOOL_ECORRUPT;
	memcpy(it->pf.pf_login, key, llen);
	it->pf.pf_login[llen] = '\0';
	memcpy(it->pf.pf_addr, nul + 1, alen);
	it->pf.pf_addr[alen] = '\0';
	if ((rc = spool_rec_dec_permfail(v, len, &it->pf)) != 0)
		return rc;
	return it->cb(&it->pf, it->arg);
}

int
spool_permfail_iter(struct spool_txn *t, const char *login, const char *after,
    int (*cb)(const struct spool_permfail *, void *), void *arg)
{
	struct spool_pf_it *it;
	struct spool_key    k;
	size_t		    plen;
	int		    rc;

	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return ENOMEM;
	it->cb = cb;
	it->arg = arg;
	spool_key_init(&k);
	if (login != NULL) {
		spool_pkey(&k, login, NULL);
		plen = k.k_len;
		if (after != NULL) {
			spool_key_lstr(&k, after);
			it->skip = k.k_data;
			it->skiplen = k.k_len;
		}
	} else
		plen = 0;
	if (k.k_bad)
		rc = SPOOL_ETOOBIG;
	else
		rc = spool_db_iter(t, SPOOL_DB_PERMFAIL, &k, plen, false,
		    spool_pf_it_cb, it);
	free(it);
	return rc;
}

bool
spool_permfail_has(struct spool_txn *t, const char *login, const char *addr)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;

	spool_addr_pkey(&k, login, addr, false);
	return spool_db_get(t, SPOOL_DB_PERMFAIL, &k, &v, &len) == 0;
}

int
spool_permfail_del(struct spool_txn *t, const char *login, const char *addr)
{
	return spool_addr_del(t, SPOOL_DB_PERMFAIL, login, addr);
}
