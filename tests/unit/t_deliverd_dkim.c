/*
 * Unit tests for deliverd_dkim's decoded-key cache: libopendkim's key
 * decoding must go through it (RSA and Ed25519 as PEM, RSA as base64 DER:
 * one miss, then hits), and nothing else may. A libopendkim or OpenSSL
 * update that decodes keys another way leaves the hit counter at zero and
 * fails here, instead of silently tripling the CPU per signature.
 */
#include "config.h"

#include "spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "tap.h"
#include "tfix.h"

#define T_MSG \
	"From: Sender <a@example.org>\r\nTo: b@example.net\r\n" \
	"Subject: cache\r\nDate: Mon, 7 Dec 2026 06:00:00 +0000\r\n" \
	"Message-Id: <cache@example.org>\r\n\r\nbody\r\n"

enum t_keyform { T_PEM, T_DER64 };

/*
 * LeakSanitizer (make check-sanitize): libopendkim 2.11 does not free the
 * key state of an Ed25519 signature (tests/unit/valgrind.supp says more).
 */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:dkim_privkey_load\n";
}

static char	     t_dir[4096];
static struct conf  *t_cf;
static struct spool *t_sp;

/* A fresh key as PEM (PKCS#8) or base64 DER ("MII..."); malloc'd. */
static char *
t_key(bool ed25519, enum t_keyform form, size_t *len_r)
{
	EVP_PKEY      *pk;
	BIO	      *bio = BIO_new(BIO_s_mem());
	unsigned char *der = NULL;
	char	      *p, *out = NULL;
	int	       n;

	pk = ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
		     : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (pk == NULL || bio == NULL)
		abort();
	if (form == T_PEM &&
	    PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = (int)BIO_get_mem_data(bio, &p)) > 0)
		out = strndup(p, (size_t)n);
	if (form == T_DER64 && (n = i2d_PrivateKey(pk, &der)) > 0 &&
	    (out = malloc((size_t)n * 2 + 4)) != NULL)
		n = EVP_EncodeBlock((unsigned char *)out, der, n);
	if (out == NULL)
		abort();
	*len_r = strlen(out);
	OPENSSL_free(der);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return out;
}

/* Signs T_MSG as the delivery worker does; the hit/miss counts it added. */
static bool
t_sign(const char *what, struct deliverd_dkim_cache_stats *delta_r)
{
	struct deliverd_dkim_cache_stats before, after;
	struct spool_msg		 m = { .sm_qid = "0123456789ABCDEF" };
	struct spool_txn		*txn;
	struct buf			 sig;
	enum deliverd_dkim_status	 st = DELIVERD_DKIM_ERROR;
	char				 why[512] = "";

	(void)str_copy(m.sm_login, sizeof(m.sm_login), "t");
	(void)str_copy(m.sm_from_hdr, sizeof(m.sm_from_hdr), "a@example.org");
	buf_init(&sig, SPOOL_DKIMSIG_MAX);
	deliverd_dkim_cache_stats(&before);
	if (spool_begin(t_sp, false, &txn) == 0) {
		st = deliverd_dkim_sign(txn, t_cf, &m, T_MSG, strlen(T_MSG),
		    &sig, why, sizeof(why));
		spool_abort(&txn);
	}
	deliverd_dkim_cache_stats(&after);
	delta_r->dcs_hits = after.dcs_hits - before.dcs_hits;
	delta_r->dcs_misses = after.dcs_misses - before.dcs_misses;
	t_ok(st == DELIVERD_DKIM_SIGNED &&
		strncmp(sig.data ? sig.data : "", "DKIM-Signature: ", 16) == 0,
	    "%s: signed%s%s", what, why[0] ? ": " : "", why);
	buf_release(&sig);
	return st == DELIVERD_DKIM_SIGNED;
}

/* A fresh spool whose account "t" signs example.org with this key. */
static char *
t_setup(bool ed25519, enum t_keyform form, size_t *len_r)
{
	char *key = t_key(ed25519, form, len_r);

	spool_close(&t_sp);
	conf_free(&t_cf);
	t_cf = t_spool_conf(t_dir, sizeof(t_dir), "t_deliverd_dkim");
	if (spool_open(t_dir, t_cf->cf_lmdb_map_size, t_cf->cf_lmdb_map_max, 0,
		&t_sp) != 0)
		abort();
	t_dkim_key(t_cf, t_sp, "t", "example.org", "t.key", ed25519, key,
	    *len_r);
	return key;
}

/* One decode for the first message, the cached key for the next two. */
static void
t_hits(const char *what, bool ed25519, enum t_keyform form)
{
	struct deliverd_dkim_cache_stats d;
	size_t				 len;
	int				 i;

	free(t_setup(ed25519, form, &len));
	(void)t_sign(what, &d);
	t_int_eq((long long)d.dcs_misses, 1,
	    "first message: the key decoded and kept");
	t_int_eq((long long)d.dcs_hits, 0, "first message: no hit");
	for (i = 0; i < 2; i++) {
		(void)t_sign(what, &d);
		t_int_eq((long long)d.dcs_hits, 1,
		    "next message: served from the cache");
		t_int_eq((long long)d.dcs_misses, 0,
		    "next message: no decoding");
	}
}

static void
t_rsa_pem(void)
{
	t_hits("RSA-2048 PEM", false, T_PEM);
}

static void
t_ed25519_pem(void)
{
	t_hits("Ed25519 PEM", true, T_PEM);
}

static void
t_rsa_der(void)
{
	t_hits("RSA-2048 base64 DER", false, T_DER64);
}

/* A replaced key file is new bytes: decoded, never the old key. */
static void
t_key_replaced(void)
{
	struct deliverd_dkim_cache_stats d;
	size_t				 len;
	char				*key;

	free(t_setup(false, T_PEM, &len));
	(void)t_sign("old key", &d);
	key = t_key(false, T_PEM, &len);
	t_dkim_key(t_cf, t_sp, "t", "example.org", "t.key", false, key, len);
	free(key);
	(void)t_sign("new key", &d);
	t_int_eq((long long)d.dcs_misses, 1, "new key bytes: decoded");
	t_int_eq((long long)d.dcs_hits, 0,
	    "new key bytes: the old key not served");
}

/* Outside signing the interposed names are plain OpenSSL. */
static void
t_confined(void)
{
	struct deliverd_dkim_cache_stats before, after, d;
	EVP_PKEY			*pk;
	BIO				*bio;
	size_t				 len;
	char				*key;

	key = t_setup(false, T_PEM, &len);
	(void)t_sign("cached", &d);
	deliverd_dkim_cache_stats(&before);
	bio = BIO_new_mem_buf(key, (int)len);
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	t_ok(pk != NULL, "a direct PEM_read_bio_PrivateKey decodes the key");
	deliverd_dkim_cache_stats(&after);
	t_ok(after.dcs_hits == before.dcs_hits &&
		after.dcs_misses == before.dcs_misses,
	    "a direct call neither hits nor fills the cache");
	EVP_PKEY_free(pk);
	BIO_free(bio);
	free(key);
	deliverd_dkim_cache_enable(false);
	(void)t_sign("cache off", &d);
	t_ok(d.dcs_hits == 0 && d.dcs_misses == 0,
	    "cache off: libopendkim decodes itself");
	deliverd_dkim_cache_enable(true);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "rsa_pem", t_rsa_pem },
		{ "ed25519_pem", t_ed25519_pem },
		{ "rsa_der", t_rsa_der },
		{ "key_replaced", t_key_replaced },
		{ "confined", t_confined },
	};
	int rc = T_RUN(cases);

	spool_close(&t_sp);
	conf_free(&t_cf);
	t_rmtree(t_dir);
	return rc;
}
