/*
 * The envelope at the head of every message file (format in spool.h):
 *   SMTPGATE 1\n  key value\n ...  \n
 * The parser is pure and bounded (STYLE R1): it reads only data[0..len),
 * allocates only the recipient list, and rejects rather than guesses.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "xmem.h"

#define SPOOL_ENV_MAGIC	  "SMTPGATE 1\n"
#define SPOOL_ENV_MAXRCPT (1u << 20)

/* The plain string fields, in the order they are written. */
static const struct spool_env_field {
	const char *name;
	size_t	    off;
	size_t	    size;
} spool_env_fields[] = {
#define F(n, m) \
	{ \
		n, offsetof(struct spool_env, m), \
		    sizeof(((struct spool_env *)0)->m) \
	}
	F("qid", pe_qid),
	F("account", pe_account),
	F("client", pe_client),
	F("helo", pe_helo),
	F("tls", pe_tls),
	F("auth", pe_auth),
	F("from", pe_from),
	F("from_params", pe_from_params),
	F("tag", pe_tag),
#undef F
};
#define SPOOL_ENV_NFIELDS \
	(sizeof(spool_env_fields) / sizeof(spool_env_fields[0]))
#define SPOOL_ENV_BIT_TIME (1u << SPOOL_ENV_NFIELDS)

void
spool_env_init(struct spool_env *e)
{
	memset(e, 0, sizeof(*e));
}

void
spool_env_free(struct spool_env *e)
{
	size_t i;

	for (i = 0; i < e->pe_nrcpt; i++)
		free(e->pe_rcpt[i]);
	free(e->pe_rcpt);
	e->pe_rcpt = NULL;
	e->pe_nrcpt = 0;
}

static int
spool_env_add_rcptn(struct spool_env *e, const char *a, size_t n)
{
	if (n == 0 || n >= SPOOL_ADDR_MAX)
		return SPOOL_ETOOBIG;
	if (e->pe_nrcpt >= SPOOL_ENV_MAXRCPT)
		return SPOOL_ETOOBIG;
	e->pe_rcpt = xreallocarray(e->pe_rcpt, e->pe_nrcpt + 1, sizeof(char *));
	e->pe_rcpt[e->pe_nrcpt++] = xstrndup(a, n);
	return 0;
}

int
spool_env_add_rcpt(struct spool_env *e, const char *addr)
{
	return spool_env_add_rcptn(e, addr, strlen(addr));
}

static bool
spool_env_clean(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

static int
spool_env_line(struct buf *out, const char *key, const char *val)
{
	if (!spool_env_clean(val))
		return SPOOL_EFORMAT;
	if (buf_printf(out, "%s %s\n", key, val) == -1)
		return errno == EMSGSIZE ? SPOOL_ETOOBIG : ENOMEM;
	return 0;
}

int
spool_env_format(const struct spool_env *e, struct buf *out)
{
	size_t i;
	int    rc;

	if (!qid_ok(e->pe_qid) || e->pe_time < 0)
		return SPOOL_EFORMAT;
	if (buf_printf(out, "%sqid %s\ntime %lld\n", SPOOL_ENV_MAGIC, e->pe_qid,
		(long long)e->pe_time) == -1)
		return errno == EMSGSIZE ? SPOOL_ETOOBIG : ENOMEM;
	for (i = 1; i < SPOOL_ENV_NFIELDS; i++) /* [0] is the qid */
		if ((rc = spool_env_line(out, spool_env_fields[i].name,
			 (const char *)e + spool_env_fields[i].off)) != 0)
			return rc;
	for (i = 0; i < e->pe_nrcpt; i++) {
		if (e->pe_rcpt[i][0] == '\0')
			return SPOOL_EFORMAT;
		if ((rc = spool_env_line(out, "rcpt", e->pe_rcpt[i])) != 0)
			return rc;
	}
	if (buf_putc(out, '\n') == -1)
		return errno == EMSGSIZE ? SPOOL_ETOOBIG : ENOMEM;
	return 0;
}

static int
spool_env_time(const char *v, size_t n, int64_t *t_r)
{
	int64_t t = 0;
	size_t	i;

	if (n == 0 || n > 18)
		return SPOOL_EFORMAT;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return SPOOL_EFORMAT;
		t = t * 10 + (v[i] - '0');
	}
	*t_r = t;
	return 0;
}

/* One "key value" line (without its LF); *seen tracks single keys. */
static int
spool_env_kv(struct spool_env *e, const char *l, size_t n, unsigned *seen)
{
	const char *sp = memchr(l, ' ', n);
	size_t	    kl = sp != NULL ? (size_t)(sp - l) : n, vl, i;
	const char *v = sp != NULL ? sp + 1 : l + n;

	vl = n - (size_t)(v - l);
	if (kl == 0 || memchr(l, '\r', n) != NULL || memchr(l, '\0', n) != NULL)
		return SPOOL_EFORMAT;
	if (kl == 4 && memcmp(l, "rcpt", 4) == 0)
		return spool_env_add_rcptn(e, v, vl) == 0 ? 0 : SPOOL_EFORMAT;
	if (kl == 4 && memcmp(l, "time", 4) == 0) {
		if (*seen & SPOOL_ENV_BIT_TIME)
			return SPOOL_EFORMAT;
		*seen |= SPOOL_ENV_BIT_TIME;
		return spool_env_time(v, vl, &e->pe_time);
	}
	for (i = 0; i < SPOOL_ENV_NFIELDS; i++) {
		if (strlen(spool_env_fields[i].name) != kl ||
		    memcmp(spool_env_fields[i].name, l, kl) != 0)
			continue;
		if (*seen & (1u << i) || vl >= spool_env_fields[i].size)
			return SPOOL_EFORMAT;
		*seen |= 1u << i;
		memcpy((char *)e + spool_env_fields[i].off, v, vl);
		((char *)e + spool_env_fields[i].off)[vl] = '\0';
		return 0;
	}
	return 0; /* unknown key (rcpt_params, a newer writer's): ignored */
}

static int
spool_env_lines(const char *data, size_t len, struct spool_env *e)
{
	size_t	    off = sizeof(SPOOL_ENV_MAGIC) - 1;
	const char *nl;
	unsigned    seen = 0;
	int	    rc;

	for (;;) {
		if ((nl = memchr(data + off, '\n', len - off)) == NULL)
			return SPOOL_EFORMAT; /* truncated */
		if (nl == data + off)
			break;
		if ((rc = spool_env_kv(e, data + off, (size_t)(nl - data - off),
			 &seen)) != 0)
			return rc;
		off = (size_t)(nl - data) + 1;
	}
	e->pe_hdrlen = (size_t)(nl - data) + 1;
	if (!(seen & 1u) || !(seen & SPOOL_ENV_BIT_TIME) || !qid_ok(e->pe_qid))
		return SPOOL_EFORMAT;
	return 0;
}

int
spool_env_parse(const char *data, size_t len, struct spool_env *e)
{
	int rc;

	spool_env_init(e);
	if (len < sizeof(SPOOL_ENV_MAGIC) - 1 ||
	    memcmp(data, SPOOL_ENV_MAGIC, sizeof(SPOOL_ENV_MAGIC) - 1) != 0)
		return SPOOL_EFORMAT;
	if ((rc = spool_env_lines(data, len, e)) != 0) {
		spool_env_free(e);
		spool_env_init(e);
	}
	return rc;
}

/* Offset just past the first "\n\n" in b, searching from `from`, or 0. */
static size_t
spool_env_end(const struct buf *b, size_t from)
{
	size_t i;

	for (i = from > 0 ? from - 1 : 0; i + 1 < b->len; i++)
		if (b->data[i] == '\n' && b->data[i + 1] == '\n')
			return i + 2;
	return 0;
}

int
spool_env_read(int fd, size_t max, struct spool_env *e)
{
	struct buf b;
	char	   chunk[4096];
	size_t	   end = 0, want;
	ssize_t	   r;
	int	   rc;

	spool_env_init(e);
	buf_init(&b, max + 1);
	while (end == 0) {
		want = sizeof(chunk) < max + 1 - b.len ? sizeof(chunk)
						       : max + 1 - b.len;
		if (want == 0) {
			rc = SPOOL_ETOOBIG;
			goto done;
		}
		if ((r = pread(fd, chunk, want, (off_t)b.len)) == -1) {
			if (errno == EINTR)
				continue;
			rc = errno;
			goto done;
		}
		if (r == 0 || buf_append(&b, chunk, (size_t)r) == -1) {
			rc = r == 0 ? SPOOL_EFORMAT : ENOMEM;
			goto done;
		}
		end = spool_env_end(&b, b.len - (size_t)r);
	}
	if (end > max)
		rc = SPOOL_ETOOBIG;
	else if ((rc = spool_env_parse(b.data, end, e)) == 0 &&
	    lseek(fd, (off_t)e->pe_hdrlen, SEEK_SET) == -1) {
		rc = errno;
		spool_env_free(e);
	}
done:
	buf_release(&b);
	return rc;
}
