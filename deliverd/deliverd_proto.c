/*
 * The scheduler <-> worker line protocol and small helpers. Lines are
 * TAB-separated fields, escaped so that a field never holds TAB or LF.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "deliverd.h"
#include "spool.h"

#define DELIVERD_MAXF 20

void
deliverd_esc(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '\\':
			(void)buf_puts(b, "\\\\");
			break;
		case '\t':
			(void)buf_puts(b, "\\t");
			break;
		case '\n':
			(void)buf_puts(b, "\\n");
			break;
		case '\r':
			(void)buf_puts(b, "\\r");
			break;
		default:
			(void)buf_putc(b, *s);
		}
	}
}

int
deliverd_unesc(const char *src, size_t len, char *dst, size_t dstsz)
{
	size_t i, o = 0;
	char   c;

	for (i = 0; i < len; i++) {
		c = src[i];
		if (c == '\\' && i + 1 < len) {
			c = src[++i];
			c = c == 't'   ? '\t'
			    : c == 'n' ? '\n'
			    : c == 'r' ? '\r'
				       : c;
		}
		if (o + 1 >= dstsz)
			return -1;
		dst[o++] = c;
	}
	if (dstsz == 0)
		return -1;
	dst[o] = '\0';
	return 0;
}

/* Splits line into at most max TAB-separated fields. */
static size_t
deliverd_split(const char *line, size_t len, const char **f, size_t *fl,
    size_t max)
{
	size_t	    n = 0;
	const char *p = line, *end = line + len, *t;

	while (n < max) {
		t = memchr(p, '\t', (size_t)(end - p));
		f[n] = p;
		fl[n] = t != NULL ? (size_t)(t - p) : (size_t)(end - p);
		n++;
		if (t == NULL)
			break;
		p = t + 1;
	}
	return n;
}

static int
deliverd_u64(const char *s, size_t len, uint64_t *r)
{
	char  tmp[32];
	char *end;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	*r = strtoull(tmp, &end, 10);
	return *end != '\0' || errno != 0 ? -1 : 0;
}

static int
deliverd_qid(const char *s, size_t len, char qid[QID_SIZE])
{
	if (str_ncopy(qid, QID_SIZE, s, len) == -1 || !qid_ok(qid))
		return -1;
	return 0;
}

int
deliverd_job_format(const struct deliverd_job *j, struct buf *b)
{
	size_t i;

	(void)buf_printf(b, "J\t%llu\t%s\t%d\t", (unsigned long long)j->dj_id,
	    j->dj_qid, j->dj_relay ? 1 : 0);
	deliverd_esc(b, j->dj_hop);
	(void)buf_putc(b, '\t');
	for (i = 0; i < j->dj_nidx; i++)
		(void)buf_printf(b, "%s%u", i ? "," : "", j->dj_idx[i]);
	return buf_putc(b, '\n');
}

int
deliverd_job_parse(const char *line, size_t len, struct deliverd_job *j)
{
	const char *f[DELIVERD_MAXF], *p, *end;
	size_t	    fl[DELIVERD_MAXF];
	uint64_t    v;

	memset(j, 0, sizeof(*j));
	if (deliverd_split(line, len, f, fl, DELIVERD_MAXF) != 6 ||
	    fl[0] != 1 || f[0][0] != 'J' ||
	    deliverd_u64(f[1], fl[1], &j->dj_id) == -1 ||
	    deliverd_qid(f[2], fl[2], j->dj_qid) == -1 ||
	    deliverd_unesc(f[4], fl[4], j->dj_hop, sizeof(j->dj_hop)) == -1)
		return -1;
	j->dj_relay = fl[3] == 1 && f[3][0] == '1';
	for (p = f[5], end = f[5] + fl[5]; p < end;) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t	    n = c != NULL ? (size_t)(c - p) : (size_t)(end - p);

		if (j->dj_nidx >= DELIVERD_JOB_RCPT_MAX ||
		    deliverd_u64(p, n, &v) == -1 || v > UINT32_MAX)
			return -1;
		j->dj_idx[j->dj_nidx++] = (uint32_t)v;
		p += n + (c != NULL);
	}
	return j->dj_nidx > 0 ? 0 : -1;
}

/* The TLS outcome's nine trailing fields (deliverd.h). */
static void
deliverd_tlsout_format(const struct deliverd_tlsout *o, struct buf *b)
{
	(void)buf_printf(b, "\t%s\t%s\t%s\t",
	    tlsres_verified_name(o->to_verified),
	    tlsres_policy_name(o->to_policy), tlsres_result_name(o->to_result));
	deliverd_esc(b, o->to_mx);
	(void)buf_putc(b, '\t');
	deliverd_esc(b, o->to_pstr);
	(void)buf_putc(b, '\t');
	deliverd_esc(b, o->to_mxpat);
	(void)buf_printf(b, "\t%s\t%s\t", o->to_sip, o->to_rip);
	deliverd_esc(b, o->to_helo);
}

int
deliverd_result_format(const struct deliverd_result *r, struct buf *b)
{
	if (r->dr_skip)
		return buf_printf(b, "S\t%s\t%u\n", r->dr_qid, r->dr_idx);
	(void)buf_printf(b, "R\t%s\t%u\t", r->dr_qid, r->dr_idx);
	deliverd_esc(b, r->dr_reply);
	(void)buf_putc(b, '\t');
	deliverd_esc(b, r->dr_relay);
	(void)buf_putc(b, '\t');
	deliverd_esc(b, r->dr_tls);
	(void)buf_putc(b, '\t');
	deliverd_esc(b, r->dr_to);
	(void)buf_putc(b, '\t');
	(void)buf_puts(b, bounce_stage_name(r->dr_stage));
	(void)buf_puts(b, r->dr_shared ? "+\t" : "\t");
	deliverd_esc(b, r->dr_mx);
	if (r->dr_tlsout.to_set)
		deliverd_tlsout_format(&r->dr_tlsout, b);
	return buf_putc(b, '\n');
}

/* "" or an IPv4/IPv6 address in text form. */
static int
deliverd_ip(const char *s, size_t len, char *dst, size_t dstsz)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (str_ncopy(dst, dstsz, s, len) == -1 || strlen(dst) != len)
		return -1;
	if (dst[0] == '\0' || inet_pton(AF_INET, dst, a) == 1 ||
	    inet_pton(AF_INET6, dst, a) == 1)
		return 0;
	return -1;
}

/* The TLS outcome's fields: 6, or 9 with the connection's addresses. */
static int
deliverd_tlsout_parse(const char **f, const size_t *fl, size_t n,
    struct deliverd_tlsout *o)
{
	char tmp[40];

	if (n == 9 &&
	    (deliverd_ip(f[6], fl[6], o->to_sip, sizeof(o->to_sip)) == -1 ||
		deliverd_ip(f[7], fl[7], o->to_rip, sizeof(o->to_rip)) == -1 ||
		deliverd_unesc(f[8], fl[8], o->to_helo, sizeof(o->to_helo)) ==
		    -1))
		return -1;

	if (str_ncopy(tmp, sizeof(tmp), f[0], fl[0]) == -1 ||
	    tlsres_verified_parse(tmp, &o->to_verified) == -1 ||
	    str_ncopy(tmp, sizeof(tmp), f[1], fl[1]) == -1 ||
	    tlsres_policy_parse(tmp, &o->to_policy) == -1 ||
	    str_ncopy(tmp, sizeof(tmp), f[2], fl[2]) == -1 ||
	    tlsres_result_parse(tmp, &o->to_result) == -1 ||
	    deliverd_unesc(f[3], fl[3], o->to_mx, sizeof(o->to_mx)) == -1 ||
	    deliverd_unesc(f[4], fl[4], o->to_pstr, sizeof(o->to_pstr)) == -1 ||
	    deliverd_unesc(f[5], fl[5], o->to_mxpat, sizeof(o->to_mxpat)) == -1)
		return -1;
	o->to_set = true;
	return 0;
}

/* The stage field: a name from bounce_stage_name(), "+" after it for a
 * shared reply (deliverd.h dr_shared), nothing else. */
static int
deliverd_stage(const char *s, size_t len, enum bounce_stage *r, bool *shared_r)
{
	char tmp[16];

	if ((*shared_r = len > 1 && s[len - 1] == '+'))
		len--;
	if (str_ncopy(tmp, sizeof(tmp), s, len) == -1)
		return -1;
	*r = bounce_stage_parse(tmp);
	return strcmp(bounce_stage_name(*r), tmp) == 0 ? 0 : -1;
}

int
deliverd_result_parse(const char *line, size_t len, struct deliverd_result *r)
{
	const char *f[DELIVERD_MAXF];
	size_t	    fl[DELIVERD_MAXF], n;
	uint64_t    v;

	memset(r, 0, sizeof(*r));
	n = deliverd_split(line, len, f, fl, DELIVERD_MAXF);
	if (n < 3 || fl[0] != 1 || deliverd_qid(f[1], fl[1], r->dr_qid) == -1 ||
	    deliverd_u64(f[2], fl[2], &v) == -1 || v > UINT32_MAX)
		return -1;
	r->dr_idx = (uint32_t)v;
	if (f[0][0] == 'S' && n == 3) {
		r->dr_skip = true;
		return 0;
	}
	if (f[0][0] != 'R' || n < 6 || (n > 9 && n != 15 && n != 18) ||
	    deliverd_unesc(f[3], fl[3], r->dr_reply, sizeof(r->dr_reply)) ==
		-1 ||
	    deliverd_unesc(f[4], fl[4], r->dr_relay, sizeof(r->dr_relay)) ==
		-1 ||
	    deliverd_unesc(f[5], fl[5], r->dr_tls, sizeof(r->dr_tls)) == -1 ||
	    (n >= 7 &&
		deliverd_unesc(f[6], fl[6], r->dr_to, sizeof(r->dr_to)) ==
		    -1) ||
	    (n >= 8 &&
		deliverd_stage(f[7], fl[7], &r->dr_stage, &r->dr_shared) ==
		    -1) ||
	    (n >= 9 &&
		deliverd_unesc(f[8], fl[8], r->dr_mx, sizeof(r->dr_mx)) ==
		    -1) ||
	    (n >= 15 &&
		deliverd_tlsout_parse(f + 9, fl + 9, n - 9, &r->dr_tlsout) ==
		    -1))
		return -1;
	if (r->dr_reply[0] != '2' && r->dr_reply[0] != '4' &&
	    r->dr_reply[0] != '5')
		return -1;
	return 0;
}

int
deliverd_sig_format(const char *qid, const char *sig, struct buf *b)
{
	(void)buf_printf(b, "K\t%s\t", qid);
	deliverd_esc(b, sig);
	return buf_putc(b, '\n');
}

int
deliverd_sig_parse(const char *line, size_t len, char qid[QID_SIZE],
    struct buf *sig)
{
	const char *f[DELIVERD_MAXF];
	size_t	    fl[DELIVERD_MAXF];
	char	   *tmp;
	int	    rc;

	if (deliverd_split(line, len, f, fl, DELIVERD_MAXF) != 3 ||
	    fl[0] != 1 || f[0][0] != 'K' ||
	    deliverd_qid(f[1], fl[1], qid) == -1)
		return -1;
	tmp = malloc(fl[2] + 1);
	if (tmp == NULL)
		return -1;
	rc = deliverd_unesc(f[2], fl[2], tmp, fl[2] + 1);
	buf_reset(sig);
	if (rc == 0)
		rc = buf_puts(sig, tmp);
	free(tmp);
	return rc;
}

int
deliverd_pipe_read(int fd, struct buf		   *in,
    void (*cb)(const char *, size_t, void *), void *arg)
{
	char	    tmp[16384];
	ssize_t	    n;
	size_t	    off;
	const char *nl;

	for (;;) {
		n = read(fd, tmp, sizeof(tmp));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		if (buf_append(in, tmp, (size_t)n) == -1)
			return -1;
		off = 0;
		while ((nl = memchr(in->data + off, '\n', in->len - off)) !=
		    NULL) {
			cb(in->data + off, (size_t)(nl - (in->data + off)),
			    arg);
			off = (size_t)(nl - in->data) + 1;
		}
		buf_consume(in, off);
		if ((size_t)n < sizeof(tmp))
			return 0;
	}
}

int
deliverd_pipe_write(int fd, const void *p, size_t len)
{
	const char   *s = p;
	ssize_t	      n;
	struct pollfd pfd;

	while (len > 0) {
		n = write(fd, s, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			(void)poll(&pfd, 1, 1000);
			continue;
		}
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

int64_t
deliverd_now(void)
{
	return (int64_t)time(NULL);
}

void
deliverd_domain(const char *addr, char *dst, size_t dstsz)
{
	const char *at = strrchr(addr, '@');

	if (at == NULL || str_copy(dst, dstsz, at + 1) == -1) {
		if (dstsz > 0)
			dst[0] = '\0';
		return;
	}
	str_lower(dst);
}

void
deliverd_fold(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}
