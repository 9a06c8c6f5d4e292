/*
 * Cluster mode, the spool side (spool_cluster.h): the policy journal
 * (cluster_out), the mirror's writes, issue blocks and the deterministic
 * issue ids of CLUSTER.md item 5.
 */
#include "config.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsx.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_CJ_SEQ	  "cluster_out_seq"
#define SPOOL_CJ_OVERFLOW "cluster_out_overflow"
#define SPOOL_CJ_INSTANCE "cluster_out_instance" /* 16 random bytes */
#define SPOOL_ID_MASK	  ((UINT64_C(1) << 52) - 1)
#define SPOOL_CLAIM_META  "cluster_node_claim"
#define SPOOL_ID_PROBES	  64 /* collisions probed before giving up */

/* The database of each kind; issue_block has none of its own. */
static const enum spool_dbi spool_ckind_dbi[SPOOL_CK_N] = {
	[SPOOL_CK_ACCOUNTS] = SPOOL_DB_ACCOUNTS,
	[SPOOL_CK_SENDERS] = SPOOL_DB_SENDERS,
	[SPOOL_CK_DKIM] = SPOOL_DB_DKIM,
	[SPOOL_CK_STOPLIST] = SPOOL_DB_STOPLIST,
	[SPOOL_CK_PERMFAIL] = SPOOL_DB_PERMFAIL,
	[SPOOL_CK_PAUSES] = SPOOL_DB_PAUSES,
	[SPOOL_CK_ISSUE_BLOCK] = SPOOL_DB_ISSUES,
	[SPOOL_CK_DKIM_KEY] = SPOOL_DB_DKIM,
};

/* ---- the journal */

int
spool_cjournal_overflowed(struct spool_txn *t, bool *over_r)
{
	uint64_t v = 0;
	int	 rc;

	rc = spool_db_meta_get_u64(t, SPOOL_CJ_OVERFLOW, &v);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		return rc;
	*over_r = v != 0;
	return 0;
}

int
spool_cjournal_set_overflow(struct spool_txn *t, bool on)
{
	return spool_db_meta_put_u64(t, SPOOL_CJ_OVERFLOW, on ? 1 : 0);
}

int
spool_cjournal_count(struct spool_txn *t, size_t *n_r)
{
	return spool_db_count(t, SPOOL_DB_CLUSTER_OUT, n_r);
}

int
spool_cjournal_add(struct spool_txn *t, enum spool_ckind kind, const void *key,
    size_t klen, const void *val, size_t vlen)
{
	struct spool_centry e = { .ce_kind = kind,
		.ce_key = key,
		.ce_klen = klen,
		.ce_val = val,
		.ce_vlen = vlen };
	struct spool_key    k;
	struct buf	    b;
	char		    inst[SPOOL_CJ_INSTANCE_HEX + 1];
	uint64_t	    seq;
	size_t		    n;
	bool		    over;
	int		    rc;

	if ((rc = spool_cjournal_overflowed(t, &over)) != 0)
		return rc;
	if (over)
		return 0; /* clusterd pushes every row at its next connect */
	if ((rc = spool_cjournal_count(t, &n)) != 0)
		return rc;
	if (n >= SPOOL_CJ_MAX)
		return spool_cjournal_set_overflow(t, true);
	if ((rc = spool_cjournal_instance(t, true, inst)) != 0 ||
	    (rc = spool_db_meta_next(t, SPOOL_CJ_SEQ, &seq)) != 0)
		return rc;
	spool_key_init(&k);
	spool_key_be64(&k, seq);
	buf_init(&b, SPOOL_REC_MAX + SPOOL_KEY_MAX + 16);
	if ((rc = spool_centry_enc(&e, &b)) == 0)
		rc = spool_db_put(t, SPOOL_DB_CLUSTER_OUT, &k, b.data, b.len);
	buf_release(&b);
	return rc;
}

static void
spool_cj_hex(const uint8_t *p, char *dst)
{
	static const char hex[] = "0123456789abcdef";
	size_t		  i;

	for (i = 0; i < SPOOL_CJ_INSTANCE_HEX / 2; i++) {
		dst[2 * i] = hex[p[i] >> 4];
		dst[2 * i + 1] = hex[p[i] & 15];
	}
	dst[SPOOL_CJ_INSTANCE_HEX] = '\0';
}

int
spool_cjournal_instance_new(struct spool_txn *t,
    char				      dst[SPOOL_CJ_INSTANCE_HEX + 1])
{
	uint8_t		 r[SPOOL_CJ_INSTANCE_HEX / 2];
	struct spool_key k;
	int		 rc;

	if (RAND_bytes(r, (int)sizeof(r)) != 1)
		return EIO;
	spool_key_init(&k);
	spool_key_str(&k, SPOOL_CJ_INSTANCE);
	if ((rc = spool_db_put(t, SPOOL_DB_META, &k, r, sizeof(r))) == 0)
		spool_cj_hex(r, dst);
	return rc;
}

int
spool_cjournal_instance(struct spool_txn *t, bool create,
    char dst[SPOOL_CJ_INSTANCE_HEX + 1])
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	spool_key_init(&k);
	spool_key_str(&k, SPOOL_CJ_INSTANCE);
	rc = spool_db_get(t, SPOOL_DB_META, &k, &v, &len);
	if (rc == SPOOL_ENOTFOUND && create)
		return spool_cjournal_instance_new(t, dst);
	if (rc == 0 && len != SPOOL_CJ_INSTANCE_HEX / 2)
		rc = SPOOL_ECORRUPT;
	if (rc == 0)
		spool_cj_hex(v, dst);
	return rc;
}

int
spool_centry_digest(uint64_t seq, const struct spool_centry *e,
    uint8_t md[SPOOL_CJ_DIGEST])
{
	EVP_MD_CTX *c;
	struct buf  b;
	uint8_t	    s[8];
	unsigned    n = 0;
	int	    rc;

	buf_init(&b, SPOOL_REC_MAX + SPOOL_KEY_MAX + 16);
	if ((rc = spool_centry_enc(e, &b)) != 0) {
		buf_release(&b);
		return rc;
	}
	spool_be64_put(s, seq);
	rc = ENOMEM;
	if ((c = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, s, sizeof(s)) == 1 &&
	    EVP_DigestUpdate(c, b.data, b.len) == 1 &&
	    EVP_DigestFinal_ex(c, md, &n) == 1 && n == SPOOL_CJ_DIGEST)
		rc = 0;
	EVP_MD_CTX_free(c);
	buf_release(&b);
	return rc;
}

int
spool_cjournal_txn_add(struct spool_txn *t, enum spool_ckind kind,
    const void *key, size_t klen, const void *val, size_t vlen)
{
	if (!spool_db_journals(t))
		return 0;
	return spool_cjournal_add(t, kind, key, klen, val, vlen);
}

int
spool_cjournal_dbi(struct spool_txn *t, int dbi, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	unsigned k;

	for (k = 0; k < SPOOL_CK_ISSUE_BLOCK; k++)
		if ((int)spool_ckind_dbi[k] == dbi)
			return spool_cjournal_add(t, (enum spool_ckind)k, key,
			    klen, val, vlen);
	return 0;
}

struct spool_cj_it {
	spool_cjournal_cb *cb;
	void		  *arg;
	size_t		   left;
};

static int
spool_cj_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_cj_it *it = arg;
	struct spool_centry e;
	int		    rc;

	if (it->left == 0)
		return 1;
	if (klen != 8 || (rc = spool_centry_dec(v, len, &e)) != 0)
		return SPOOL_ECORRUPT;
	it->left--;
	return it->cb(spool_be64_get(key), &e, it->arg);
}

int
spool_cjournal_iter(struct spool_txn *t, uint64_t after, size_t max,
    spool_cjournal_cb *cb, void *arg)
{
	struct spool_cj_it it = { .cb = cb, .arg = arg, .left = max };
	struct spool_key   k;
	int		   rc;

	if (after == UINT64_MAX)
		return 0;
	spool_key_init(&k);
	spool_key_be64(&k, after + 1);
	rc = spool_db_iter(t, SPOOL_DB_CLUSTER_OUT, &k, 0, false,
	    spool_cj_it_cb, &it);
	return rc == 1 ? 0 : rc;
}

static int
spool_cj_drop_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_txn *t = ((void **)arg)[0];
	uint64_t	  upto = *(const uint64_t *)((void **)arg)[1];
	struct spool_key  k;

	(void)v;
	(void)len;
	if (klen != 8 || spool_be64_get(key) > upto)
		return 1;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	return spool_db_del(t, SPOOL_DB_CLUSTER_OUT, &k);
}

int
spool_cjournal_drop(struct spool_txn *t, uint64_t upto)
{
	void *arg[2] = { t, &upto };
	int   rc;

	rc = spool_db_iter(t, SPOOL_DB_CLUSTER_OUT, NULL, 0, false,
	    spool_cj_drop_cb, arg);
	return rc == 1 ? 0 : rc;
}

struct spool_cj_has {
	enum spool_ckind kind;
	const uint8_t	*key;
	size_t		 klen;
	bool		 found;
};

static int
spool_cj_has_cb(uint64_t seq, const struct spool_centry *e, void *arg)
{
	struct spool_cj_has *h = arg;

	(void)seq;
	if (e->ce_kind == h->kind && e->ce_klen == h->klen &&
	    memcmp(e->ce_key, h->key, h->klen) == 0) {
		h->found = true;
		return 1;
	}
	return 0;
}

int
spool_cjournal_has(struct spool_txn *t, enum spool_ckind kind,
    const uint8_t *key, size_t klen, bool *found_r)
{
	struct spool_cj_has h = { .kind = kind, .key = key, .klen = klen };
	int		    rc;

	rc = spool_cjournal_iter(t, 0, SIZE_MAX, spool_cj_has_cb, &h);
	*found_r = h.found;
	return rc == 1 ? 0 : rc;
}

/* ---- the mirror */

/* A row from elsewhere must decode as its kind's record before a reader
 * of this node meets it. */
static int
spool_cluster_check(enum spool_ckind kind, const void *v, size_t len)
{
	union {
		struct spool_account  a;
		struct spool_dkim     d;
		struct spool_permfail p;
	} * u;
	uint64_t x;
	int	 rc;

	switch (kind) {
	case SPOOL_CK_DKIM_KEY:
		return len > 11 && len <= SPOOL_DKIM_KEY_MAX &&
			memcmp(v, "-----BEGIN ", 11) == 0
		    ? 0
		    : SPOOL_ECORRUPT;
	case SPOOL_CK_SENDERS:
	case SPOOL_CK_PAUSES:
	case SPOOL_CK_ISSUE_BLOCK:
		return spool_rec_dec_u64(v, len, &x);
	case SPOOL_CK_STOPLIST: {
		/* a bare version byte, or (h-asupp) the entry's why */
		struct spool_stopent se;

		return spool_rec_dec_stop(v, len, &se);
	}
	default:
		break;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return ENOMEM;
	rc = kind == SPOOL_CK_ACCOUNTS ? spool_rec_dec_account(v, len, &u->a)
	    : kind == SPOOL_CK_DKIM    ? spool_rec_dec_dkim(v, len, &u->d)
				       : spool_rec_dec_permfail(v, len, &u->p);
	free(u);
	return rc;
}

/* key login\0date\0(\0 | \1 name\0) into its parts. */
static int
spool_cluster_block_key(const uint8_t *key, size_t klen, char *login,
    char *date, char *name, bool *has_name)
{
	const uint8_t *end = key + klen, *p = key, *nul;
	size_t	       n;

	if ((nul = memchr(p, '\0', klen)) == NULL ||
	    (n = (size_t)(nul - p)) == 0 || n >= SPOOL_LOGIN_MAX)
		return SPOOL_ECORRUPT;
	memcpy(login, p, n + 1);
	p = nul + 1;
	if (end - p < 12 || p[10] != '\0')
		return SPOOL_ECORRUPT;
	memcpy(date, p, 11);
	p += 11;
	*has_name = *p++ == '\1';
	if (!*has_name)
		return p == end && p[-1] == '\0' ? 0 : SPOOL_ECORRUPT;
	if ((nul = memchr(p, '\0', (size_t)(end - p))) == NULL ||
	    nul + 1 != end || (n = (size_t)(nul - p)) >= SPOOL_NAME_MAX)
		return SPOOL_ECORRUPT;
	memcpy(name, p, n + 1);
	return 0;
}

static int
spool_cluster_apply_block(struct spool_txn *t, const struct spool_centry *e)
{
	char login[SPOOL_LOGIN_MAX], date[11], name[SPOOL_NAME_MAX];
	struct spool_issue si;
	uint64_t	   v = 0;
	bool		   has_name;
	int		   rc;

	if ((rc = spool_cluster_block_key(e->ce_key, e->ce_klen, login, date,
		 name, &has_name)) != 0)
		return rc;
	if (e->ce_val != NULL &&
	    (rc = spool_rec_dec_u64(e->ce_val, e->ce_vlen, &v)) != 0)
		return rc;
	rc = spool_issue_find(t, login, date, has_name ? name : NULL, &si);
	if (rc == SPOOL_ENOTFOUND && v == 0)
		return 0; /* unblocking an issue this node never had */
	if (rc == SPOOL_ENOTFOUND)
		rc = spool_issue_find_or_create(t, login, date,
		    has_name ? name : NULL, &si);
	if (rc != 0 || si.su_blocked == (v != 0))
		return rc;
	si.su_blocked = v != 0;
	return spool_issue_put(t, &si);
}

/* spool_dir of an open spool (its db/ minus "/db"). */
static int
spool_cluster_dir(struct spool_txn *t, char *dst, size_t dstsz)
{
	const char *db = spool_db_dir(spool_txn_spool(t));
	size_t	    n = strlen(db);

	if (n < 3 || strcmp(db + n - 3, "/db") != 0 || n - 3 >= dstsz)
		return EINVAL;
	memcpy(dst, db, n - 3);
	dst[n - 3] = '\0';
	return 0;
}

/* A key file name as spoolctl makes them: [A-Za-z0-9@._-], no dot first. */
static bool
spool_cluster_keyname(const uint8_t *p, size_t n, char *dst, size_t dstsz)
{
	size_t i;

	if (n == 0 || n >= dstsz || p[0] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
			(p[i] >= 'A' && p[i] <= 'Z') ||
			(p[i] >= '0' && p[i] <= '9') ||
			strchr("@.-_", p[i]) != NULL) ||
		    p[i] == '\0')
			return false;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return true;
}

/* Writes (or removes) keys/NAME; written before the txn that makes a dkim
 * record name it commits, so a reader never meets a record without it. */
static int
spool_cluster_apply_key(struct spool_txn *t, const struct spool_centry *e)
{
	char dir[4096], name[256];
	int  dfd, rc = 0;

	if (!spool_cluster_keyname(e->ce_key, e->ce_klen, name, sizeof(name)) ||
	    (e->ce_val != NULL &&
		spool_cluster_check(e->ce_kind, e->ce_val, e->ce_vlen) != 0))
		return SPOOL_ECORRUPT;
	if ((rc = spool_cluster_dir(t, dir, sizeof(dir))) != 0)
		return rc;
	if (e->ce_val == NULL) {
		rc = spool_unlink(dir, SPOOL_KEYS, name);
		return rc == ENOENT ? 0 : rc;
	}
	if ((dfd = spool_area_open(dir, SPOOL_KEYS)) == -1)
		return errno;
	if (fsx_write_durable_at(dfd, name, e->ce_val, e->ce_vlen, 0600,
		(uid_t)-1, (gid_t)-1) == -1)
		rc = errno;
	(void)close(dfd); /* fsync'ed by fsx_write_durable_at */
	return rc;
}

int
spool_dkim_key_journal(struct spool_txn *t, const char *name, const void *pem,
    size_t len)
{
	return spool_cjournal_txn_add(t, SPOOL_CK_DKIM_KEY, name, strlen(name),
	    pem, len);
}

int
spool_cluster_apply(struct spool_txn *t, const struct spool_centry *e)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	enum spool_dbi	 d;
	int		 rc;

	if ((unsigned)e->ce_kind >= SPOOL_CK_N || e->ce_klen == 0 ||
	    e->ce_klen > SPOOL_KEY_MAX)
		return SPOOL_ECORRUPT;
	if (e->ce_kind == SPOOL_CK_ISSUE_BLOCK)
		return spool_cluster_apply_block(t, e);
	if (e->ce_kind == SPOOL_CK_DKIM_KEY)
		return spool_cluster_apply_key(t, e);
	d = spool_ckind_dbi[e->ce_kind];
	spool_key_init(&k);
	spool_key_raw(&k, e->ce_key, e->ce_klen);
	if (e->ce_val == NULL) {
		rc = spool_db_del(t, d, &k);
		return rc == SPOOL_ENOTFOUND ? 0 : rc;
	}
	if ((rc = spool_cluster_check(e->ce_kind, e->ce_val, e->ce_vlen)) != 0)
		return rc;
	if (spool_db_get(t, d, &k, &v, &len) == 0 && len == e->ce_vlen &&
	    memcmp(v, e->ce_val, len) == 0)
		return 0; /* no write for a row this node has */
	return spool_db_put(t, d, &k, e->ce_val, e->ce_vlen);
}

struct spool_cl_it {
	enum spool_ckind kind;
	int (*cb)(const struct spool_centry *, void *);
	void		 *arg;
	struct spool_txn *t;
};

static int
spool_cl_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_cl_it *it = arg;
	struct spool_centry e = { .ce_kind = it->kind,
		.ce_key = key,
		.ce_klen = klen,
		.ce_val = v,
		.ce_vlen = len };

	return it->cb(&e, it->arg);
}

/* An issue block's journal key: account, day, whether it has a name, the
 * name (X-Campaign-Id); -1 when it does not fit a key. */
static int
spool_cl_block_key(const struct spool_issue *si, struct spool_key *k)
{
	spool_key_init(k);
	spool_key_str(k, si->su_login);
	spool_key_str(k, si->su_date);
	spool_key_raw(k, si->su_has_name ? "\1" : "\0", 1);
	if (si->su_has_name)
		spool_key_str(k, si->su_name);
	return spool_key_ok(k) ? 0 : -1;
}

/* issue_block: the key of every blocked issue, value u64 1. */
static int
spool_cl_block_cb(const struct spool_issue *si, void *arg)
{
	struct spool_cl_it *it = arg;
	struct spool_centry e = { .ce_kind = SPOOL_CK_ISSUE_BLOCK };
	struct spool_key    k;
	struct buf	    b;
	int		    rc;

	if (!si->su_blocked)
		return 0;
	if (spool_cl_block_key(si, &k) == -1)
		return SPOOL_ETOOBIG;
	buf_init(&b, 64);
	if ((rc = spool_rec_enc_u64(1, &b)) == 0) {
		e.ce_key = k.k_data;
		e.ce_klen = k.k_len;
		e.ce_val = (const uint8_t *)b.data;
		e.ce_vlen = b.len;
		rc = it->cb(&e, it->arg);
	}
	buf_release(&b);
	return rc;
}

/* dkim_key: the file every dkim record names (missing ones skipped). */
static int
spool_cl_key_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_cl_it *it = arg;
	struct spool_centry e = { .ce_kind = SPOOL_CK_DKIM_KEY };
	struct spool_dkim  *d;
	char		    dir[4096];
	uint8_t		   *pem = NULL;
	ssize_t		    n = -1;
	int		    dfd, fd, rc;

	(void)key;
	(void)klen;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return ENOMEM;
	if ((rc = spool_rec_dec_dkim(v, len, d)) != 0 ||
	    (rc = spool_cluster_dir(it->t, dir, sizeof(dir))) != 0)
		goto done;
	if ((dfd = spool_area_open(dir, SPOOL_KEYS)) != -1) {
		fd = openat(dfd, d->dk_keyfile,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != -1 && (pem = malloc(SPOOL_DKIM_KEY_MAX + 1)) != NULL)
			n = fsx_read_full(fd, pem, SPOOL_DKIM_KEY_MAX + 1);
		if (fd != -1)
			(void)close(fd); /* read only */
		(void)close(dfd);
	}
	if (n > 0 && n <= SPOOL_DKIM_KEY_MAX) {
		e.ce_key = (const uint8_t *)d->dk_keyfile;
		e.ce_klen = strlen(d->dk_keyfile);
		e.ce_val = pem;
		e.ce_vlen = (size_t)n;
		rc = it->cb(&e, it->arg);
	}
done:
	free(pem);
	free(d);
	return rc;
}

int
spool_cluster_iter(struct spool_txn *t, enum spool_ckind  kind,
    int (*cb)(const struct spool_centry *, void *), void *arg)
{
	struct spool_cl_it it = { .kind = kind, .cb = cb, .arg = arg, .t = t };

	if ((unsigned)kind >= SPOOL_CK_N)
		return EINVAL;
	if (kind == SPOOL_CK_ISSUE_BLOCK)
		return spool_issue_iter(t, spool_cl_block_cb, &it);
	if (kind == SPOOL_CK_DKIM_KEY)
		return spool_db_iter(t, SPOOL_DB_DKIM, NULL, 0, false,
		    spool_cl_key_cb, &it);
	return spool_db_iter(t, spool_ckind_dbi[kind], NULL, 0, false,
	    spool_cl_it_cb, &it);
}

int
spool_cluster_keycmp(const uint8_t *a, size_t alen, const uint8_t *b,
    size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

struct spool_cl_range {
	const uint8_t *lo, *hi;
	size_t	       lolen, hilen;
	int (*cb)(const uint8_t *, size_t, void *);
	void *arg;
};

static int
spool_cl_range_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_cl_range *r = arg;

	(void)v;
	(void)len;
	if (r->lolen > 0 &&
	    spool_cluster_keycmp(key, klen, r->lo, r->lolen) <= 0)
		return 0; /* lo itself */
	if (r->hi != NULL &&
	    spool_cluster_keycmp(key, klen, r->hi, r->hilen) > 0)
		return 1;
	return r->cb(key, klen, r->arg);
}

int
spool_cluster_range(struct spool_txn *t, enum spool_ckind kind,
    const uint8_t *lo, size_t lolen, const uint8_t *hi, size_t hilen,
    int (*cb)(const uint8_t *, size_t, void *), void *arg)
{
	struct spool_cl_range r = { .lo = lo,
		.lolen = lolen,
		.hi = hi,
		.hilen = hilen,
		.cb = cb,
		.arg = arg };
	struct spool_key      k;
	int		      rc;

	if ((unsigned)kind >= SPOOL_CK_ISSUE_BLOCK || lolen > SPOOL_KEY_MAX)
		return EINVAL;
	spool_key_init(&k);
	spool_key_raw(&k, lo, lolen);
	rc = spool_db_iter(t, spool_ckind_dbi[kind], lolen > 0 ? &k : NULL, 0,
	    false, spool_cl_range_cb, &r);
	return rc == 1 ? 0 : rc;
}

int
spool_cluster_meta_get(struct spool_txn *t, const char *name, uint64_t *v_r)
{
	return spool_db_meta_get_u64(t, name, v_r);
}

int
spool_cluster_meta_put(struct spool_txn *t, const char *name, uint64_t v)
{
	return spool_db_meta_put_u64(t, name, v);
}

/* ---- issues */

int
spool_issue_set_blocked(struct spool_txn *t, struct spool_issue *si, bool on)
{
	struct spool_key k;
	struct buf	 b;
	int		 rc;

	si->su_blocked = on;
	if ((rc = spool_issue_put(t, si)) != 0 ||
	    !spool_cluster_on(spool_txn_spool(t)))
		return rc;
	if (spool_cl_block_key(si, &k) == -1)
		return SPOOL_ETOOBIG;
	buf_init(&b, 64);
	if ((rc = spool_rec_enc_u64(on ? 1 : 0, &b)) == 0)
		rc = spool_cjournal_txn_add(t, SPOOL_CK_ISSUE_BLOCK, k.k_data,
		    k.k_len, b.data, b.len);
	buf_release(&b);
	return rc;
}

uint64_t
spool_issue_cluster_id(const char *login, const char *date, const char *name)
{
	uint8_t	    md[EVP_MAX_MD_SIZE];
	unsigned    mdlen = 0;
	EVP_MD_CTX *c;
	uint64_t    id = 0;

	if ((c = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, login, strlen(login) + 1) == 1 &&
	    EVP_DigestUpdate(c, date, strlen(date) + 1) == 1 &&
	    EVP_DigestUpdate(c, name != NULL ? name : "",
		(name != NULL ? strlen(name) : 0) + 1) == 1 &&
	    EVP_DigestUpdate(c, name != NULL ? "1" : "0", 1) == 1 &&
	    EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen >= 8)
		id = spool_be64_get(md) >> 12;
	EVP_MD_CTX_free(c);
	return id == 0 ? 1 : id;
}

/* The id of a new issue in cluster mode: its hash, or the next free one
 * after a collision with another key (counted in meta issue_id_collisions
 * for spoolctl status; ~2^-52 per pair). */
int
spool_issue_cluster_pick(struct spool_txn *t, const char *login,
    const char *date, const char *name, uint64_t *id_r)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	uint64_t	 id, n;
	unsigned	 i;
	int		 rc;

	id = spool_issue_cluster_id(login, date, name);
	for (i = 0; i < SPOOL_ID_PROBES; i++) {
		spool_key_init(&k);
		spool_key_be64(&k, id);
		if ((rc = spool_db_get(t, SPOOL_DB_ISSUES, &k, &v, &len)) ==
		    SPOOL_ENOTFOUND) {
			*id_r = id;
			return i == 0
			    ? 0
			    : spool_db_meta_next(t, "issue_id_collisions", &n);
		}
		if (rc != 0)
			return rc;
		id = (id + 1) & SPOOL_ID_MASK;
		if (id == 0)
			id = 1;
	}
	return SPOOL_EEXIST;
}

/* ---- the node claim */

static int
spool_claim_get(struct spool_txn *t, char dst[SPOOL_CLAIM_LEN + 1])
{
	struct spool_key k;
	const void	*v;
	size_t		 len, i;
	int		 rc;

	spool_key_init(&k);
	spool_key_str(&k, SPOOL_CLAIM_META);
	if ((rc = spool_db_get(t, SPOOL_DB_META, &k, &v, &len)) != 0)
		return rc;
	if (len != SPOOL_CLAIM_LEN)
		return SPOOL_ECORRUPT;
	memcpy(dst, v, len);
	dst[len] = '\0';
	for (i = 0; i < len; i++)
		if (strchr("0123456789abcdef", dst[i]) == NULL)
			return SPOOL_ECORRUPT;
	return 0;
}

static int
spool_claim_new(struct spool_txn *t, char dst[SPOOL_CLAIM_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	struct spool_key  k;
	unsigned char	  r[SPOOL_CLAIM_LEN / 2];
	size_t		  i;

	if (RAND_bytes(r, (int)sizeof(r)) != 1)
		return EIO;
	for (i = 0; i < sizeof(r); i++) {
		dst[2 * i] = hex[r[i] >> 4];
		dst[2 * i + 1] = hex[r[i] & 15];
	}
	dst[SPOOL_CLAIM_LEN] = '\0';
	spool_key_init(&k);
	spool_key_str(&k, SPOOL_CLAIM_META);
	return spool_db_put(t, SPOOL_DB_META, &k, dst, SPOOL_CLAIM_LEN);
}

int
spool_cluster_node_claim(struct spool *sp, char dst[SPOOL_CLAIM_LEN + 1])
{
	struct spool_txn *t;
	int		  rc;

	if ((rc = spool_begin(sp, false, &t)) != 0)
		return rc;
	rc = spool_claim_get(t, dst);
	spool_abort(&t);
	if (rc != SPOOL_ENOTFOUND)
		return rc;
	if ((rc = spool_begin(sp, true, &t)) != 0)
		return rc;
	if ((rc = spool_claim_get(t, dst)) == SPOOL_ENOTFOUND &&
	    (rc = spool_claim_new(t, dst)) == 0)
		return spool_commit(&t);
	spool_abort(&t);
	return rc;
}
