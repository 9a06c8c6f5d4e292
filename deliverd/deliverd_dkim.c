/*
 * DKIM signing with libopendkim: the only file that includes
 * <opendkim/dkim.h> (STYLE L2). Key choice: the account's keys for the
 * From header's domain, else the keys of the account's default domain,
 * else no signature. One signature per key (RSA-SHA256 and/or
 * Ed25519-SHA256), relaxed/relaxed. Not thread-safe: a delivery worker
 * signs on one thread.
 *
 * Key cache. libopendkim takes the key as bytes and decodes them again
 * for every signature (PEM_read_bio_PrivateKey, or d2i_PrivateKey_bio for
 * base64 DER, on a memory BIO, in dkim_eom). With OpenSSL 3 that decoding
 * (decoder look-up, for RSA the legacy conversion and the Montgomery
 * set-up) costs more than the signature itself: bench/dkim-bench measured
 * 0.92 ms of CPU per RSA-2048 message without the cache against 0.30 ms
 * with it, 0.37 against 0.06 ms for Ed25519 (bench/README.md); deliverd's
 * whole CPU per RSA-signed message is about 0.6 ms with it.
 * libopendkim has no call that takes a decoded key, so this file defines
 * those two OpenSSL functions itself; the executable's definitions
 * interpose libopendkim's calls. They are confined:
 * - they serve or fill the cache only while this thread is inside
 *   dkim_sign() or dkim_eom() ("armed", thread-local): then only
 *   libopendkim runs on it (we hand it no callbacks), so only its call
 *   sites can get a cached key;
 * - only for a memory BIO with no password callback and no output
 *   argument, the exact form of libopendkim's calls;
 * - every other call (libssl, anything else in the process) goes straight
 *   to OpenSSL's own function. common/pkey.c calls
 *   PEM_read_bio_PrivateKey_ex, a name not interposed here.
 * The cache key is the exact bytes (a changed key file is a new entry);
 * the caller gets its own reference (EVP_PKEY_up_ref), which libopendkim
 * frees as usual, except after an Ed25519 signature: libopendkim 2.11's
 * dkim_free releases RSA key state only, so the reference is never
 * dropped and 64 bytes of its own are lost per Ed25519 signature (about
 * 740 without the cache, where the decoded key is lost too; valgrind).
 * tests/unit/t_deliverd_dkim reads the hit counter, so a library update
 * that bypasses the cache fails the tests.
 *
 * The delivery workers hold no private key (deliverd_dkim_use_keyproc):
 * libopendkim gets a reference text naming the key file instead of the
 * key, and the same interposition, as confined, hands it a proxy key for
 * that reference: the public key (asked of the key process once per key
 * file, DKIM_CACHE_MAX kept) whose private operation is a request to the
 * key process (deliverd_key.c). RSA: libopendkim calls RSA_sign(), which
 * calls the proxy's RSA_METHOD (common/tls_key.c). Ed25519 has no method;
 * EVP_DigestSignInit and EVP_DigestSign are interposed for the proxy key
 * and the context it was given. The decoded-key cache then serves only
 * programs that sign in their own process (bench/dkim-sign-bench).
 */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <opendkim/dkim.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "dkey_proto.h"
#include "fsx.h"
#include "spool.h"
#include "tls_key.h"
#include "xmem.h"

#define DKIM_KEYS_MAX 4
#define DKIM_PEM_MAX  (64 * 1024)
#define DKIM_PREFIX   "DKIM-Signature: "

/* Signed on top of libopendkim's own list (dkim_should_signhdrs). */
static const char *deliverd_dkim_extra[] = {
	"from",
	"to",
	"subject",
	"date",
	"message-id",
	"mime-version",
	"content-type",
	"content-transfer-encoding",
	"reply-to",
	"cc",
	"list-unsubscribe",
	"list-unsubscribe-post",
	"x-campaign-id",
	"x-letter-id",
	"feedback-id", /* Gmail's Feedback Loop wants it signed */
	"in-reply-to",
	"references",
};

static DKIM_LIB *deliverd_dkim_lib;

/* ---- decoded key cache (see the top of the file) */

#define DKIM_CACHE_MAX 16

struct deliverd_dkim_cached {
	unsigned char *bytes; /* the key text exactly as decoded */
	size_t	       len;
	EVP_PKEY      *pkey;
	uint64_t       used; /* LRU clock */
};

static struct deliverd_dkim_cached	deliverd_dkim_cache[DKIM_CACHE_MAX];
static uint64_t				deliverd_dkim_clock;
static struct deliverd_dkim_cache_stats deliverd_dkim_stats;
static bool				deliverd_dkim_cache_off;
static _Thread_local bool		deliverd_dkim_armed;

/* ---- the workers' keys: a reference and a public key (deliverd_key.c) */

#define DKIM_REF_PREFIX	    "-----BEGIN SMTPGATE KEY REFERENCE-----\n"
#define DKIM_ED25519_SIGLEN 64

struct deliverd_dkim_proxy {
	char	  dp_name[DKEY_NAME_MAX + 1]; /* "": a free slot */
	EVP_PKEY *dp_pkey; /* RSA: the public key with tls_key's method;
			      Ed25519: the public key alone */
	int	  dp_type; /* EVP_PKEY_RSA or EVP_PKEY_ED25519 */
	uint64_t  dp_used;
};

static bool			  deliverd_dkim_remote;
static struct deliverd_dkim_proxy deliverd_dkim_proxies[DKIM_CACHE_MAX];
static _Thread_local struct deliverd_dkim_proxy *deliverd_dkim_cur;
static _Thread_local EVP_MD_CTX			*deliverd_dkim_ed_ctx;

typedef EVP_PKEY *(
    *deliverd_dkim_pem_fn)(BIO *, EVP_PKEY **, pem_password_cb *, void *);
typedef EVP_PKEY *(*deliverd_dkim_der_fn)(BIO *, EVP_PKEY **);

void
deliverd_dkim_cache_stats(struct deliverd_dkim_cache_stats *st_r)
{
	*st_r = deliverd_dkim_stats;
}

void
deliverd_dkim_cache_enable(bool on)
{
	deliverd_dkim_cache_off = !on;
}

/*
 * For libopendkim's calls only (armed, a memory BIO): its bytes in
 * data_r/len_r, and the cached key for them (a new reference) or NULL.
 */
static EVP_PKEY *
deliverd_dkim_cache_get(BIO *bp, const unsigned char **data_r, size_t *len_r)
{
	char  *data = NULL;
	long   len;
	size_t i;

	*data_r = NULL;
	if (!deliverd_dkim_armed || deliverd_dkim_cache_off || bp == NULL ||
	    BIO_method_type(bp) != BIO_TYPE_MEM ||
	    (len = BIO_get_mem_data(bp, &data)) <= 0 || data == NULL)
		return NULL;
	*data_r = (const unsigned char *)data;
	*len_r = (size_t)len;
	for (i = 0; i < DKIM_CACHE_MAX; i++) {
		if (deliverd_dkim_cache[i].pkey == NULL ||
		    deliverd_dkim_cache[i].len != (size_t)len ||
		    memcmp(deliverd_dkim_cache[i].bytes, data, (size_t)len) !=
			0)
			continue;
		if (EVP_PKEY_up_ref(deliverd_dkim_cache[i].pkey) != 1)
			return NULL;
		deliverd_dkim_cache[i].used = ++deliverd_dkim_clock;
		deliverd_dkim_stats.dcs_hits++;
		return deliverd_dkim_cache[i].pkey;
	}
	return NULL;
}

/* Keeps pkey for data (from deliverd_dkim_cache_get; NULL: not ours). */
static void
deliverd_dkim_cache_put(const unsigned char *data, size_t len, EVP_PKEY *pkey)
{
	struct deliverd_dkim_cached *c = &deliverd_dkim_cache[0];
	size_t			     i;

	if (data == NULL || pkey == NULL)
		return;
	deliverd_dkim_stats.dcs_misses++;
	for (i = 1; i < DKIM_CACHE_MAX; i++)
		if (deliverd_dkim_cache[i].used < c->used)
			c = &deliverd_dkim_cache[i];
	if (EVP_PKEY_up_ref(pkey) != 1)
		return;
	if (c->pkey != NULL) {
		EVP_PKEY_free(c->pkey);
		freezero(c->bytes, c->len);
	}
	c->bytes = xmalloc(len);
	memcpy(c->bytes, data, len);
	c->len = len;
	c->pkey = pkey;
	c->used = ++deliverd_dkim_clock;
}

/*
 * A worker's libopendkim call (armed, a memory BIO holding the reference
 * deliverd_dkim_one gave it): the current key's proxy, a new reference.
 * Nothing else is decoded in a worker that signs through the key process.
 */
static EVP_PKEY *
deliverd_dkim_proxy_ref(BIO *bp)
{
	char *data = NULL;
	long  len;

	if (!deliverd_dkim_armed || deliverd_dkim_cur == NULL || bp == NULL ||
	    BIO_method_type(bp) != BIO_TYPE_MEM ||
	    (len = BIO_get_mem_data(bp, &data)) <= 0 || data == NULL ||
	    (size_t)len < strlen(DKIM_REF_PREFIX) ||
	    memcmp(data, DKIM_REF_PREFIX, strlen(DKIM_REF_PREFIX)) != 0 ||
	    EVP_PKEY_up_ref(deliverd_dkim_cur->dp_pkey) != 1)
		return NULL;
	return deliverd_dkim_cur->dp_pkey;
}

typedef int (*deliverd_dkim_dsinit_fn)(EVP_MD_CTX *, EVP_PKEY_CTX **,
    const EVP_MD *, ENGINE *, EVP_PKEY *);
typedef int (*deliverd_dkim_ds_fn)(EVP_MD_CTX *, unsigned char *, size_t *,
    const unsigned char *, size_t);

/*
 * Ed25519 has no method to replace: libopendkim 2.11 signs the SHA-256
 * hash with EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) and
 * EVP_DigestSign(ctx, sig, &len, hash, 32). Both are interposed like the
 * decoding above, and as confined: only while armed, only for the current
 * proxy key and the context it was given; everything else goes to
 * OpenSSL.
 */
int
EVP_DigestSignInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type,
    ENGINE *e, EVP_PKEY *pkey)
{
	static deliverd_dkim_dsinit_fn real;

	if (deliverd_dkim_armed && deliverd_dkim_cur != NULL &&
	    deliverd_dkim_cur->dp_type == EVP_PKEY_ED25519 &&
	    pkey == deliverd_dkim_cur->dp_pkey && ctx != NULL && pctx == NULL &&
	    type == NULL && e == NULL) {
		deliverd_dkim_ed_ctx = ctx;
		return 1;
	}
	if (real == NULL &&
	    (real = (deliverd_dkim_dsinit_fn)dlsym(RTLD_NEXT,
		 "EVP_DigestSignInit")) == NULL)
		return 0;
	return real(ctx, pctx, type, e, pkey);
}

int
EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sigret, size_t *siglen,
    const unsigned char *tbs, size_t tbslen)
{
	static deliverd_dkim_ds_fn real;

	if (deliverd_dkim_armed && ctx != NULL && ctx == deliverd_dkim_ed_ctx &&
	    deliverd_dkim_cur != NULL) {
		if (sigret == NULL) {
			*siglen = DKIM_ED25519_SIGLEN;
			return 1;
		}
		if (tbslen != DKEY_DIGEST_LEN || *siglen < DKIM_ED25519_SIGLEN)
			return 0;
		return deliverd_key_ask(DKEY_Q_ED25519,
			   deliverd_dkim_cur->dp_name, tbs, sigret, *siglen,
			   siglen) == 0 &&
		    *siglen == DKIM_ED25519_SIGLEN;
	}
	if (real == NULL &&
	    (real = (deliverd_dkim_ds_fn)dlsym(RTLD_NEXT, "EVP_DigestSign")) ==
		NULL)
		return 0;
	return real(ctx, sigret, siglen, tbs, tbslen);
}

/* tls_key's RSA method asks here: RSA_sign(NID_sha256) of the current key. */
static int
deliverd_dkim_rsa_signer(const struct tls_sign *req, uint8_t *sig, size_t sigsz,
    size_t *siglen_r)
{
	if (!deliverd_dkim_armed || deliverd_dkim_cur == NULL ||
	    deliverd_dkim_cur->dp_type != EVP_PKEY_RSA ||
	    req->ts_kind != TLS_SIGN_RSA_PKCS1 || req->ts_md != TLS_MD_SHA256 ||
	    req->ts_len != DKEY_DIGEST_LEN)
		return -1;
	return deliverd_key_ask(DKEY_Q_RSA, deliverd_dkim_cur->dp_name,
	    req->ts_data, sig, sigsz, siglen_r);
}

void
deliverd_dkim_use_keyproc(void)
{
	deliverd_dkim_remote = true;
	tls_key_signer(deliverd_dkim_rsa_signer);
}

static void
deliverd_dkim_proxy_drop(struct deliverd_dkim_proxy *p)
{
	EVP_PKEY_free(p->dp_pkey);
	memset(p, 0, sizeof(*p));
}

/* The proxy for the key file name: cached, else from its public key. */
static struct deliverd_dkim_proxy *
deliverd_dkim_proxy_get(const char *name, char *why, size_t whysz)
{
	struct deliverd_dkim_proxy *p, *lru = &deliverd_dkim_proxies[0];
	uint8_t			    der[DKEY_OUT_MAX];
	const unsigned char	   *dp = der;
	size_t			    i, n = 0;
	EVP_PKEY		   *pub, *pk = NULL;

	for (i = 0; i < DKIM_CACHE_MAX; i++) {
		p = &deliverd_dkim_proxies[i];
		if (p->dp_pkey != NULL && strcmp(p->dp_name, name) == 0) {
			p->dp_used = ++deliverd_dkim_clock;
			return p;
		}
		if (p->dp_used < lru->dp_used)
			lru = p;
	}
	if (deliverd_key_ask(DKEY_Q_PUB, name, NULL, der, sizeof(der), &n) ==
	    -1) {
		(void)snprintf(why, whysz,
		    "key %s: no public key from the key process", name);
		return NULL;
	}
	if ((pub = d2i_PUBKEY(NULL, &dp, (long)n)) == NULL) {
		(void)snprintf(why, whysz, "key %s: not a public key", name);
		return NULL;
	}
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_ED25519)
		pk = pub;
	else {
		pk = tls_key_proxy_pkey(pub);
		EVP_PKEY_free(pub);
	}
	if (pk == NULL) {
		(void)snprintf(why, whysz, "key %s: no proxy key", name);
		return NULL;
	}
	deliverd_dkim_proxy_drop(lru);
	(void)snprintf(lru->dp_name, sizeof(lru->dp_name), "%s", name);
	lru->dp_pkey = pk;
	lru->dp_type = EVP_PKEY_get_base_id(pk);
	lru->dp_used = ++deliverd_dkim_clock;
	return lru;
}

EVP_PKEY *
PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u)
{
	static deliverd_dkim_pem_fn real;
	const unsigned char	   *data = NULL;
	size_t			    len = 0;
	EVP_PKEY		   *pk;

	if (x == NULL && cb == NULL && deliverd_dkim_remote)
		return deliverd_dkim_proxy_ref(bp);
	if (x == NULL && cb == NULL &&
	    (pk = deliverd_dkim_cache_get(bp, &data, &len)) != NULL)
		return pk;
	if (real == NULL &&
	    (real = (deliverd_dkim_pem_fn)dlsym(RTLD_NEXT,
		 "PEM_read_bio_PrivateKey")) == NULL)
		return NULL;
	pk = real(bp, x, cb, u);
	deliverd_dkim_cache_put(data, len, pk);
	return pk;
}

EVP_PKEY *
d2i_PrivateKey_bio(BIO *bp, EVP_PKEY **a)
{
	static deliverd_dkim_der_fn real;
	const unsigned char	   *data = NULL;
	size_t			    len = 0;
	EVP_PKEY		   *pk;

	if (a == NULL &&
	    (pk = deliverd_dkim_cache_get(bp, &data, &len)) != NULL)
		return pk;
	if (real == NULL &&
	    (real = (deliverd_dkim_der_fn)dlsym(RTLD_NEXT,
		 "d2i_PrivateKey_bio")) == NULL)
		return NULL;
	pk = real(bp, a);
	deliverd_dkim_cache_put(data, len, pk);
	return pk;
}

struct deliverd_dkim_keys {
	struct spool_dkim k[DKIM_KEYS_MAX];
	size_t		  n;
	bool		  only_default;
};

static int
deliverd_dkim_collect(const struct spool_dkim *d, void *arg)
{
	struct deliverd_dkim_keys *ks = arg;

	if (ks->only_default && !d->dk_default)
		return 0;
	if (ks->n < DKIM_KEYS_MAX)
		ks->k[ks->n++] = *d;
	return 0;
}

static DKIM_LIB *
deliverd_dkim_init(void)
{
	static const char *hdrs[64];
	size_t		   n = 0, i, j;
	bool		   dup;

	if (deliverd_dkim_lib != NULL)
		return deliverd_dkim_lib;
	if ((deliverd_dkim_lib = dkim_init(NULL, NULL)) == NULL)
		return NULL;
	for (i = 0;
	     i < sizeof(deliverd_dkim_extra) / sizeof(deliverd_dkim_extra[0]);
	     i++)
		hdrs[n++] = deliverd_dkim_extra[i];
	for (i = 0; dkim_should_signhdrs[i] != NULL && n < 63; i++) {
		for (dup = false, j = 0; j < n && !dup; j++)
			dup = strcasecmp(hdrs[j],
				  (const char *)dkim_should_signhdrs[i]) == 0;
		if (!dup)
			hdrs[n++] = (const char *)dkim_should_signhdrs[i];
	}
	hdrs[n] = NULL;
	(void)dkim_options(deliverd_dkim_lib, DKIM_OP_SETOPT,
	    DKIM_OPTS_SIGNHDRS, hdrs, sizeof(char **));
	return deliverd_dkim_lib;
}

/* Feeds the header fields and the body; hdrlen covers the header block
 * up to (not including) the empty line. */
static DKIM_STAT
deliverd_dkim_feed(DKIM *dk, const char *msg, size_t hdrlen, const char *body,
    size_t bodylen)
{
	const char *p = msg, *end = msg + hdrlen, *f, *nl;
	size_t	    n;
	DKIM_STAT   st;

	while (p < end) {
		f = p;
		/* a field runs until a line that does not start with SP/HT */
		do {
			nl = memchr(p, '\n', (size_t)(end - p));
			p = nl != NULL ? nl + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		n = (size_t)(p - f);
		while (n > 0 && (f[n - 1] == '\n' || f[n - 1] == '\r'))
			n--;
		if (n > 0 &&
		    (st = dkim_header(dk, (u_char *)(uintptr_t)f, n)) !=
			DKIM_STAT_OK)
			return st;
	}
	if ((st = dkim_eoh(dk)) != DKIM_STAT_OK)
		return st;
	if (bodylen > 0 &&
	    (st = dkim_body(dk, (u_char *)(uintptr_t)body, bodylen)) !=
		DKIM_STAT_OK)
		return st;
	deliverd_dkim_armed = true; /* libopendkim decodes the key in here */
	st = dkim_eom(dk, NULL);
	deliverd_dkim_armed = false;
	deliverd_dkim_ed_ctx = NULL;
	return st;
}

/* Where the header block ends and the body starts. */
static void
deliverd_dkim_split(const char *msg, size_t len, size_t *hdrlen_r,
    size_t *body_r)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (i + 1 < len && msg[i + 1] == '\n') {
			*hdrlen_r = i + 1;
			*body_r = i + 2;
			return;
		}
		if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n') {
			*hdrlen_r = i + 1;
			*body_r = i + 3;
			return;
		}
	}
	*hdrlen_r = len;
	*body_r = len;
}

static int
deliverd_dkim_one(const struct conf *cf, const struct spool_dkim *k,
    const char *qid, const char *msg, size_t len, struct buf *sig, char *why,
    size_t whysz)
{
	char			    path[4096];
	char			   *pem = NULL;
	size_t			    pemlen, hdrlen, boff;
	DKIM			   *dk = NULL;
	DKIM_STAT		    st = DKIM_STAT_OK;
	u_char			   *hv;
	size_t			    hvlen;
	int			    rc = -1;
	struct deliverd_dkim_proxy *px = NULL;

	if (deliverd_dkim_remote) {
		/* the key process signs: libopendkim gets the name */
		if ((px = deliverd_dkim_proxy_get(k->dk_keyfile, why, whysz)) ==
		    NULL)
			return -1;
		if (px->dp_type !=
		    (k->dk_alg == SPOOL_DKIM_ED25519 ? EVP_PKEY_ED25519
						     : EVP_PKEY_RSA)) {
			(void)snprintf(why, whysz, "key %s: not a %s key",
			    k->dk_keyfile,
			    k->dk_alg == SPOOL_DKIM_ED25519 ? "Ed25519"
							    : "RSA");
			deliverd_dkim_proxy_drop(px);
			return -1;
		}
		pemlen = strlen(DKIM_REF_PREFIX) + strlen(k->dk_keyfile) + 2;
		pem = xmalloc(pemlen);
		(void)snprintf(pem, pemlen, "%s%s\n", DKIM_REF_PREFIX,
		    k->dk_keyfile);
		deliverd_dkim_cur = px;
	} else if (spool_path(path, sizeof(path), cf->cf_spool_dir, SPOOL_KEYS,
		       k->dk_keyfile) == -1 ||
	    fsx_read_file(path, DKIM_PEM_MAX, &pem, &pemlen) == -1) {
		(void)snprintf(why, whysz, "key %s: cannot read: %m", path);
		return -1;
	}
	deliverd_dkim_armed = true; /* in case a library decodes it this early */
	dk = dkim_sign(deliverd_dkim_lib, (const u_char *)qid, NULL,
	    (dkim_sigkey_t)pem, (const u_char *)k->dk_selector,
	    (const u_char *)k->dk_domain, DKIM_CANON_RELAXED,
	    DKIM_CANON_RELAXED,
	    k->dk_alg == SPOOL_DKIM_ED25519 ? DKIM_SIGN_ED25519SHA256
					    : DKIM_SIGN_RSASHA256,
	    -1, &st);
	deliverd_dkim_armed = false;
	if (dk == NULL) {
		(void)snprintf(why, whysz, "dkim_sign %s/%s: %s", k->dk_domain,
		    k->dk_selector, dkim_getresultstr(st));
		goto out;
	}
	deliverd_dkim_split(msg, len, &hdrlen, &boff);
	st = deliverd_dkim_feed(dk, msg, hdrlen, msg + boff, len - boff);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(dk, strlen(DKIM_PREFIX), &hv, &hvlen);
	if (st != DKIM_STAT_OK) {
		(void)snprintf(why, whysz, "signing with %s/%s: %s",
		    k->dk_domain, k->dk_selector,
		    dkim_geterror(dk) ? dkim_geterror(dk)
				      : dkim_getresultstr(st));
		goto out;
	}
	/* getsighdr folds with CRLF + TAB already (NOTES) */
	if (buf_puts(sig, DKIM_PREFIX) == -1 ||
	    buf_append(sig, hv, hvlen) == -1 || buf_puts(sig, "\r\n") == -1) {
		(void)snprintf(why, whysz, "signature too long");
		goto out;
	}
	rc = 0;
out:
	if (dk != NULL)
		(void)dkim_free(dk);
	if (pem != NULL)
		freezero(pem, pemlen);
	deliverd_dkim_cur = NULL;
	if (rc == -1 && px != NULL) /* its file may have changed: ask again */
		deliverd_dkim_proxy_drop(px);
	return rc;
}

enum deliverd_dkim_status
deliverd_dkim_sign(struct spool_txn *txn, const struct conf *cf,
    const struct spool_msg *m, const char *msg, size_t len, struct buf *sig,
    char *why, size_t whysz)
{
	struct deliverd_dkim_keys ks;
	char			  dom[SPOOL_DOMAIN_MAX];
	size_t			  i, nok = 0;

	memset(&ks, 0, sizeof(ks));
	deliverd_domain(m->sm_from_hdr, dom, sizeof(dom));
	if (dom[0] != '\0')
		(void)spool_dkim_iter(txn, m->sm_login, dom,
		    deliverd_dkim_collect, &ks);
	if (ks.n == 0) {
		ks.only_default = true;
		(void)spool_dkim_iter(txn, m->sm_login, NULL,
		    deliverd_dkim_collect, &ks);
	}
	if (ks.n == 0) {
		(void)snprintf(why, whysz,
		    "no DKIM key for %s or a default domain of %s",
		    dom[0] ? dom : "(no From domain)", m->sm_login);
		return DELIVERD_DKIM_NOKEY;
	}
	if (deliverd_dkim_init() == NULL) {
		(void)snprintf(why, whysz, "dkim_init failed");
		return DELIVERD_DKIM_ERROR;
	}
	for (i = 0; i < ks.n; i++)
		if (deliverd_dkim_one(cf, &ks.k[i], m->sm_qid, msg, len, sig,
			why, whysz) == 0)
			nok++;
	return nok > 0 ? DELIVERD_DKIM_SIGNED : DELIVERD_DKIM_ERROR;
}
