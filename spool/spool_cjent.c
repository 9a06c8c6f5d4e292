/*
 * The cluster journal's entry encoding (spool_cluster.h): pure, no LMDB,
 * fuzzed by tests/fuzz/fuzz_spool_centry.c.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "spool_cluster.h"
#include "spool_key.h"
#include "spool_rec.h"

#define SPOOL_CE_VERSION 1

static const char *const spool_ckind_names[SPOOL_CK_N] = {
	[SPOOL_CK_ACCOUNTS] = "accounts",
	[SPOOL_CK_SENDERS] = "senders",
	[SPOOL_CK_DKIM] = "dkim",
	[SPOOL_CK_STOPLIST] = "stoplist",
	[SPOOL_CK_PERMFAIL] = "permfail",
	[SPOOL_CK_PAUSES] = "pauses",
	[SPOOL_CK_ISSUE_BLOCK] = "issue_block",
	[SPOOL_CK_DKIM_KEY] = "dkim_key",
};

const char *
spool_ckind_name(enum spool_ckind k)
{
	return (unsigned)k < SPOOL_CK_N ? spool_ckind_names[k] : "unknown";
}

int
spool_ckind_parse(const char *s, size_t len, enum spool_ckind *k_r)
{
	size_t i;

	for (i = 0; i < SPOOL_CK_N; i++)
		if (strlen(spool_ckind_names[i]) == len &&
		    memcmp(spool_ckind_names[i], s, len) == 0) {
			*k_r = (enum spool_ckind)i;
			return 0;
		}
	return EINVAL;
}

static bool
spool_centry_ok(const struct spool_centry *e)
{
	return (unsigned)e->ce_kind < SPOOL_CK_N && e->ce_klen > 0 &&
	    e->ce_klen <= SPOOL_KEY_MAX &&
	    (e->ce_val == NULL || e->ce_vlen <= SPOOL_REC_MAX);
}

int
spool_centry_enc(const struct spool_centry *e, struct buf *out)
{
	uint8_t h[4];

	if (!spool_centry_ok(e))
		return SPOOL_ECORRUPT;
	h[0] = SPOOL_CE_VERSION;
	h[1] = (uint8_t)e->ce_kind;
	h[2] = (uint8_t)(e->ce_klen >> 8);
	h[3] = (uint8_t)e->ce_klen;
	if (buf_append(out, h, 4) == -1 ||
	    buf_append(out, e->ce_key, e->ce_klen) == -1 ||
	    buf_putc(out, e->ce_val != NULL) == -1)
		return ENOMEM;
	if (e->ce_val == NULL)
		return 0;
	spool_be32_put(h, (uint32_t)e->ce_vlen);
	if (buf_append(out, h, 4) == -1 ||
	    buf_append(out, e->ce_val, e->ce_vlen) == -1)
		return ENOMEM;
	return 0;
}

int
spool_centry_dec(const void *data, size_t len, struct spool_centry *e)
{
	const uint8_t *p = data;
	size_t	       klen, vlen;

	memset(e, 0, sizeof(*e));
	if (len < 5 || p[0] != SPOOL_CE_VERSION || p[1] >= SPOOL_CK_N)
		return SPOOL_ECORRUPT;
	e->ce_kind = (enum spool_ckind)p[1];
	klen = (size_t)p[2] << 8 | p[3];
	if (klen == 0 || klen > SPOOL_KEY_MAX || len - 4 < klen + 1)
		return SPOOL_ECORRUPT;
	e->ce_key = p + 4;
	e->ce_klen = klen;
	p += 4 + klen;
	len -= 4 + klen;
	if (p[0] == 0)
		return len == 1 ? 0 : SPOOL_ECORRUPT;
	if (p[0] != 1 || len < 5)
		return SPOOL_ECORRUPT;
	vlen = spool_be32_get(p + 1);
	if (vlen > SPOOL_REC_MAX || len - 5 != vlen)
		return SPOOL_ECORRUPT;
	e->ce_val = p + 5;
	e->ce_vlen = vlen;
	return 0;
}
