/* Unit tests for common/pkey: DKIM key inspection and the TXT record. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "pkey.h"
#include "tap.h"

/* PEM text of a fresh key ("RSA" with bits, or "ED25519"); malloc'd. */
static char *
gen_pem(const char *type, size_t bits, bool traditional, size_t *len_r)
{
	EVP_PKEY *pk;
	BIO	 *bio;
	char	 *p, *out;
	long	  n;
	int	  ok;

	if (strcmp(type, "RSA") == 0)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
	else
		pk = EVP_PKEY_Q_keygen(NULL, NULL, type);
	if (pk == NULL)
		return NULL;
	bio = BIO_new(BIO_s_mem());
	if (traditional)
		ok = PEM_write_bio_PrivateKey_traditional(bio, pk, NULL, NULL,
		    0, NULL, NULL);
	else
		ok = PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL,
		    NULL);
	n = BIO_get_mem_data(bio, &p);
	out = ok ? strndup(p, (size_t)n) : NULL;
	*len_r = (size_t)n;
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return out;
}

/* The p= value decodes to n bytes. */
static int
txt_p_len(const char *txt)
{
	unsigned char raw[2048];
	const char   *p = strstr(txt, "p=");
	int	      n, pad = 0;
	size_t	      l;

	if (p == NULL)
		return -1;
	p += 2;
	l = strlen(p);
	if (l >= 1 && p[l - 1] == '=')
		pad++;
	if (l >= 2 && p[l - 2] == '=')
		pad++;
	n = EVP_DecodeBlock(raw, (const unsigned char *)p, (int)l);
	return n < 0 ? -1 : n - pad;
}

static void
t_rsa(void)
{
	struct pkey_info pi;
	struct buf	 b;
	char		*pem, err[256];
	size_t		 len;

	if ((pem = gen_pem("RSA", 2048, false, &len)) == NULL) {
		t_ok(false, "keygen");
		return;
	}
	t_ok(pkey_inspect(pem, len, &pi, err, sizeof(err)) == 0,
	    "RSA 2048 PKCS#8: %s", err);
	t_int_eq(pi.pk_alg, PKEY_RSA, "alg");
	t_int_eq(pi.pk_bits, 2048, "bits");
	t_ok(strncmp(pi.pk_txt, "v=DKIM1; k=rsa; p=MIIB", 22) == 0,
	    "TXT: %.40s", pi.pk_txt);
	t_int_eq(txt_p_len(pi.pk_txt), 294,
	    "p= is the SubjectPublicKeyInfo DER");
	buf_init(&b, 8192);
	t_ok(pkey_txt_zone(&pi, "s1", "example.com", &b) == 0, "zone line");
	t_ok(strncmp(b.data,
		 "s1._domainkey.example.com. IN TXT \"v=DKIM1; k=rsa; p=",
		 53) == 0,
	    "zone prefix: %.60s", b.data);
	t_ok(strstr(b.data, "\" \"") != NULL, "split into <= 255-byte strings");
	buf_release(&b);
	free(pem);

	pem = gen_pem("RSA", 1024, true, &len);
	t_ok(pem != NULL &&
		pkey_inspect(pem, len, &pi, err, sizeof(err)) == 0 &&
		pi.pk_bits == 1024,
	    "traditional RSA 1024 accepted");
	free(pem);
	pem = gen_pem("RSA", 512, false, &len);
	t_ok(pem != NULL && pkey_inspect(pem, len, &pi, err, sizeof(err)) == -1,
	    "RSA 512 refused");
	t_str_eq(err, "RSA key has 512 bits: DKIM needs 1024 to 8192",
	    "reason");
	free(pem);
}

static void
t_ed25519(void)
{
	struct pkey_info pi;
	char		*pem, err[256];
	size_t		 len;

	if ((pem = gen_pem("ED25519", 0, false, &len)) == NULL) {
		t_ok(false, "keygen");
		return;
	}
	t_ok(pkey_inspect(pem, len, &pi, err, sizeof(err)) == 0, "Ed25519: %s",
	    err);
	t_int_eq(pi.pk_alg, PKEY_ED25519, "alg");
	t_ok(strncmp(pi.pk_txt, "v=DKIM1; k=ed25519; p=", 22) == 0, "TXT %s",
	    pi.pk_txt);
	t_int_eq(txt_p_len(pi.pk_txt), 32, "p= is the raw 32-byte key");
	t_str_eq(pkey_alg_name(pi.pk_alg), "ed25519", "name");
	free(pem);
}

static void
t_bad(void)
{
	static const char pub[] =
	    "-----BEGIN PUBLIC KEY-----\n"
	    "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
	    "-----END PUBLIC KEY-----\n";
	struct pkey_info pi;
	char		*pem, err[256];
	size_t		 len;

	t_ok(pkey_inspect("hello", 5, &pi, err, sizeof(err)) == -1,
	    "garbage refused");
	t_str_eq(err, "not a PEM private key", "reason");
	t_ok(pkey_inspect("", 0, &pi, err, sizeof(err)) == -1, "empty refused");
	t_str_eq(err, "empty key file", "reason");
	t_ok(pkey_inspect(pub, sizeof(pub) - 1, &pi, err, sizeof(err)) == -1,
	    "public key refused");
	{
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		BIO	 *bio = BIO_new(BIO_s_mem());
		char	 *p;

		(void)PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL,
		    NULL);
		len = (size_t)BIO_get_mem_data(bio, &p);
		pem = strndup(p, len);
		BIO_free(bio);
		EVP_PKEY_free(pk);
	}
	t_ok(pkey_inspect(pem, len, &pi, err, sizeof(err)) == -1, "EC refused");
	t_str_eq(err,
	    "unsupported key type: DKIM keys are RSA (>= 1024 bits) or Ed25519",
	    "reason");
	free(pem);
}

static void
t_encrypted(void)
{
	EVP_PKEY	*pk;
	BIO		*bio;
	struct pkey_info pi;
	char		*p, err[256];
	long		 n;

	pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	bio = BIO_new(BIO_s_mem());
	t_ok(PEM_write_bio_PKCS8PrivateKey(bio, pk, EVP_aes_256_cbc(), "pw", 2,
		 NULL, NULL) == 1,
	    "encrypted key written");
	n = BIO_get_mem_data(bio, &p);
	t_ok(pkey_inspect(p, (size_t)n, &pi, err, sizeof(err)) == -1,
	    "encrypted refused");
	t_str_eq(err,
	    "the key is encrypted: give an unencrypted PEM private key",
	    "reason");
	BIO_free(bio);
	EVP_PKEY_free(pk);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ .name = "rsa", .fn = t_rsa },
		{ .name = "ed25519", .fn = t_ed25519 },
		{ .name = "bad", .fn = t_bad },
		{ .name = "encrypted", .fn = t_encrypted },
	};

	return T_RUN(cases);
}
