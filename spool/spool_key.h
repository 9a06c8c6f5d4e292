/*
 * spool_key: LMDB key building, internal to libspool (STYLE R6). Numbers
 * are big-endian so LMDB's memcmp order is numeric order; string parts are
 * followed by a NUL so "login\0rest" prefixes never collide. A key lives in
 * a fixed buffer (LMDB's key limit is 511 bytes); an add that does not fit
 * marks the key bad and spool_key_ok() then fails (the caller returns
 * SPOOL_ETOOBIG). No allocation.
 */
#ifndef SG_SPOOL_KEY_H
#define SG_SPOOL_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPOOL_KEY_MAX 511

struct spool_key {
	uint8_t k_data[SPOOL_KEY_MAX];
	size_t	k_len;
	bool	k_bad; /* something did not fit */
};

void spool_key_init(struct spool_key *);
bool spool_key_ok(const struct spool_key *);
void spool_key_raw(struct spool_key *, const void *, size_t);
/* The string and its terminating NUL. */
void spool_key_str(struct spool_key *, const char *);
/* The string lower-cased (ASCII), NUL-terminated. */
void spool_key_lstr(struct spool_key *, const char *);
void spool_key_be32(struct spool_key *, uint32_t);
void spool_key_be64(struct spool_key *, uint64_t);

void	 spool_be32_put(uint8_t out[4], uint32_t);
void	 spool_be64_put(uint8_t out[8], uint64_t);
uint32_t spool_be32_get(const void *);
uint64_t spool_be64_get(const void *);

#endif
