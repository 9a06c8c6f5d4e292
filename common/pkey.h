/*
 * pkey: inspects a DKIM private key for `spoolctl dkim add` (OpenSSL).
 * pkey_inspect() parses PEM text (PKCS#8 or traditional RSA), accepts RSA
 * of at least PKEY_RSA_MIN_BITS bits or Ed25519, and fills a struct
 * pkey_info with the algorithm, the size and the DNS TXT record value
 * ("v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo, base64>" or
 * "v=DKIM1; k=ed25519; p=<raw 32-byte key, base64>"). It returns 0, or -1
 * with a one-line reason in err. Nothing is allocated that outlives the
 * call; the caller wipes the PEM text it read.
 */
#ifndef SG_PKEY_H
#define SG_PKEY_H

#include <stddef.h>

struct buf;

#define PKEY_RSA_MIN_BITS 1024
#define PKEY_RSA_MAX_BITS 8192
#define PKEY_PEM_MAX	  (64 * 1024)

/* Same values as enum spool_dkim_alg. */
enum pkey_alg { PKEY_RSA = 1, PKEY_ED25519 = 2 };

struct pkey_info {
	enum pkey_alg pk_alg;
	int	      pk_bits;
	char	      pk_txt[2048]; /* the TXT record value, unsplit */
};

int pkey_inspect(const char *pem, size_t len, struct pkey_info *r, char *err,
    size_t errsz);
const char *pkey_alg_name(enum pkey_alg); /* "rsa", "ed25519" */
/*
 * Appends the zone-file line to publish:
 *   SEL._domainkey.DOMAIN. IN TXT "v=DKIM1; k=rsa; p=..." "..."
 * with the value cut into quoted strings of at most 255 bytes (RFC 1035).
 * 0, or -1 (the buffer's max was reached).
 */
int pkey_txt_zone(const struct pkey_info *, const char *selector,
    const char *domain, struct buf *out);

#endif
