/* Big-endian numbers and composite LMDB keys (see spool_key.h). */
#include "config.h"

#include <string.h>

#include "spool_key.h"

void
spool_key_init(struct spool_key *k)
{
	k->k_len = 0;
	k->k_bad = false;
}

bool
spool_key_ok(const struct spool_key *k)
{
	return !k->k_bad && k->k_len > 0;
}

void
spool_key_raw(struct spool_key *k, const void *p, size_t n)
{
	if (k->k_bad || n > SPOOL_KEY_MAX - k->k_len) {
		k->k_bad = true;
		return;
	}
	memcpy(k->k_data + k->k_len, p, n);
	k->k_len += n;
}

void
spool_key_str(struct spool_key *k, const char *s)
{
	spool_key_raw(k, s, strlen(s) + 1);
}

void
spool_key_lstr(struct spool_key *k, const char *s)
{
	size_t i, n = strlen(s);
	char   c;

	if (k->k_bad || n + 1 > SPOOL_KEY_MAX - k->k_len) {
		k->k_bad = true;
		return;
	}
	for (i = 0; i <= n; i++) {
		c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		k->k_data[k->k_len++] = (uint8_t)c;
	}
}

void
spool_key_be32(struct spool_key *k, uint32_t v)
{
	uint8_t b[4];

	spool_be32_put(b, v);
	spool_key_raw(k, b, sizeof(b));
}

void
spool_key_be64(struct spool_key *k, uint64_t v)
{
	uint8_t b[8];

	spool_be64_put(b, v);
	spool_key_raw(k, b, sizeof(b));
}

void
spool_be32_put(uint8_t out[4], uint32_t v)
{
	int i;

	for (i = 3; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)(v & 0xff);
}

void
spool_be64_put(uint8_t out[8], uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)(v & 0xff);
}

uint32_t
spool_be32_get(const void *p)
{
	const uint8_t *b = p;
	uint32_t       v = 0;
	int	       i;

	for (i = 0; i < 4; i++)
		v = (v << 8) | b[i];
	return v;
}

uint64_t
spool_be64_get(const void *p)
{
	const uint8_t *b = p;
	uint64_t       v = 0;
	int	       i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}
