/*
 * sendmail_msg: reading a message from stdin and writing it into
 * incoming/ (the same spool_in_* calls as smtpd's DATA). Lines may end in
 * LF, CRLF or a bare CR; every one is written with CRLF, so the spool never
 * holds a bare CR or LF (no smuggling through deliverd, CONTRACT).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "mailaddr.h"
#include "rfc5322addr.h"
#include "sendmail.h"
#include "spool.h"
#include "xmem.h"

void
sm_rd_init(struct sm_rd *rd, int fd, bool flush_stdout)
{
	memset(rd, 0, sizeof(*rd));
	rd->fd = fd;
	rd->flush_stdout = flush_stdout;
}

/* Reads more input after the unread bytes; 1, 0 at EOF, -1 on error. */
static int
sm_rd_fill(struct sm_rd *rd)
{
	ssize_t n;

	if (rd->eof)
		return 0;
	if (rd->off > 0) {
		memmove(rd->data, rd->data + rd->off, rd->len - rd->off);
		rd->len -= rd->off;
		rd->off = 0;
	}
	if (rd->flush_stdout)
		(void)fflush(stdout); /* -bs: answer pipelined commands first */
	do
		n = read(rd->fd, rd->data + rd->len,
		    sizeof(rd->data) - rd->len);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (n == 0) {
		rd->eof = true;
		return 0;
	}
	rd->len += (size_t)n;
	return 1;
}

int
sm_rd_line(struct sm_rd *rd, struct buf *out, size_t cap, bool *complete)
{
	const char *p, *s, *e;
	size_t	    want;
	int	    r;

	buf_reset(out);
	*complete = true;
	for (;;) {
		if (rd->off == rd->len) {
			if ((r = sm_rd_fill(rd)) == -1)
				return -1;
			if (r == 0)
				return out->len > 0
				    ? 1
				    : 0; /* last line without EOL */
			continue;
		}
		s = rd->data + rd->off;
		want = cap - out->len;
		e = s + (rd->len - rd->off < want ? rd->len - rd->off : want);
		for (p = s; p < e && *p != '\n' && *p != '\r'; p++)
			;
		if (buf_append(out, s, (size_t)(p - s)) == -1)
			return -1;
		rd->off += (size_t)(p - s);
		if (p < e) {
			rd->off++;
			/* CR LF is one line end; a CR at the buffer end needs a peek */
			if (*p == '\r') {
				if (rd->off == rd->len && sm_rd_fill(rd) == -1)
					return -1;
				if (rd->off < rd->len &&
				    rd->data[rd->off] == '\n')
					rd->off++;
			}
			return 1;
		}
		if (out->len >= cap) {
			*complete = false;
			return 1;
		}
	}
}

int
sm_addr_fix(const struct sm_ctx *ctx, const char *in, char *out, size_t outsz,
    char *err, size_t errsz)
{
	char   a[SPOOL_ADDR_MAX];
	size_t n;

	while (*in == ' ' || *in == '\t')
		in++;
	n = strlen(in);
	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t'))
		n--;
	if (n >= 2 && in[0] == '<' && in[n - 1] == '>') {
		in++;
		n -= 2;
	}
	if (n == 0 || str_ncopy(a, sizeof(a), in, n) == -1)
		goto bad;
	if (strchr(a, '@') == NULL &&
	    str_printf(a, sizeof(a), "%.*s@%s", (int)n, in,
		ctx->cf->cf_hostname) == -1)
		goto bad;
	if (!mailaddr_ok(a, MAILADDR_UTF8) || str_copy(out, outsz, a) == -1)
		goto bad;
	return 0;
bad:
	(void)snprintf(err, errsz, "bad address syntax: \"%.*s\"",
	    (int)(n > 200 ? 200 : n), in);
	return -1;
}

int
sm_rcpt_add(const struct sm_ctx *ctx, struct spool_env *env, const char *addr,
    char *err, size_t errsz)
{
	char   a[SPOOL_ADDR_MAX];
	size_t i;

	if (sm_addr_fix(ctx, addr, a, sizeof(a), err, errsz) == -1)
		return EX_NOUSER;
	for (i = 0; i < env->pe_nrcpt; i++)
		if (str_ieq(env->pe_rcpt[i], a))
			return 0;
	if ((int64_t)env->pe_nrcpt >= ctx->cf->cf_max_recipients) {
		(void)snprintf(err, errsz,
		    "too many recipients (max_recipients = %lld)",
		    (long long)ctx->cf->cf_max_recipients);
		return EX_DATAERR;
	}
	if (spool_env_add_rcpt(env, a) != 0) {
		(void)snprintf(err, errsz, "bad recipient \"%s\"", a);
		return EX_DATAERR;
	}
	return 0;
}

/* ---- reading the message: terminators and dot-stuffing */

struct sm_msg {
	struct sm_rd *rd;
	enum sm_term  term;
	bool	      at_bol; /* the next piece starts a line */
	bool	      done;
};

/* 1 = a line (piece) in out, 0 = end of message, -1 = input error. */
static int
sm_msg_line(struct sm_msg *m, struct buf *out, bool *complete)
{
	bool bol = m->at_bol;
	int  r;

	if (m->done)
		return 0;
	if ((r = sm_rd_line(m->rd, out, SM_PIECE_MAX, complete)) == -1)
		return -1;
	if (r == 0) {
		m->done = true;
		if (m->term == SM_TERM_SMTP) {
			errno = 0; /* EOF inside DATA: the client went away */
			return -1;
		}
		return 0;
	}
	m->at_bol = *complete;
	if (bol && m->term != SM_TERM_EOF && *complete && out->len == 1 &&
	    out->data[0] == '.') {
		m->done = true;
		return 0;
	}
	if (bol && m->term == SM_TERM_SMTP && out->len > 0 &&
	    out->data[0] == '.')
		buf_consume(out, 1);
	return 1;
}

/* Reads and drops the rest of the message (SMTP: stay in step). */
static void
sm_msg_drain(struct sm_msg *m, struct buf *tmp)
{
	bool complete;

	if (m->term != SM_TERM_SMTP)
		return;
	while (sm_msg_line(m, tmp, &complete) == 1)
		;
}

/* ---- the header block */

struct sm_field {
	size_t off,
	    len; /* in hb: the field as read, folded lines CRLF-joined */
};

struct sm_hdrs {
	struct buf	 hb;
	struct sm_field *f;
	size_t		 n;
	bool		 has_from, has_date, has_msgid, has_dest;
	bool		 has_mime, has_ctype;
};

static bool
sm_is_field(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i] != ':'; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			break;
	/* obsolete syntax allows blanks between the name and the colon */
	while (i < len && i > 0 && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i > 0 && i < len && s[i] == ':';
}

static bool
sm_field_is(const struct sm_hdrs *h, size_t i, const char *name)
{
	const char *s = h->hb.data + h->f[i].off;
	size_t	    n = strlen(name), j;

	if (h->f[i].len <= n || strncasecmp(s, name, n) != 0)
		return false;
	for (j = n; j < h->f[i].len && (s[j] == ' ' || s[j] == '\t'); j++)
		;
	return j < h->f[i].len && s[j] == ':';
}

/* Address fields whose bare user names get @hostname (sm_qualify). */
static bool
sm_field_addrs(const struct sm_hdrs *h, size_t i)
{
	return sm_field_is(h, i, "From") || sm_field_is(h, i, "Sender") ||
	    sm_field_is(h, i, "Reply-To") || sm_field_is(h, i, "To") ||
	    sm_field_is(h, i, "Cc");
}

/* Adds one header line (a new field, or a continuation when cont). */
static int
sm_hdr_add(struct sm_hdrs *h, const struct buf *line, bool cont)
{
	if (cont) {
		if (buf_append(&h->hb, "\r\n", 2) == -1 ||
		    buf_append(&h->hb, line->data, line->len) == -1)
			return -1;
		h->f[h->n - 1].len += 2 + line->len;
		return 0;
	}
	h->f = xreallocarray(h->f, h->n + 1, sizeof(h->f[0]));
	h->f[h->n].off = h->hb.len;
	h->f[h->n].len = line->len;
	h->n++;
	return buf_append(&h->hb, line->data, line->len);
}

/*
 * Local programs write bare user names ("From: root (Cron Daemon)", "To:
 * root"). Like Postfix's cleanup for local mail, @hostname is appended to
 * an address without a domain, inside <> or when it is the one word of a
 * list element (group members too); anything odder (quoted local
 * parts, several words) is left as written. On true, out holds the
 * rewritten field.
 */
struct sm_qstate {
	bool   skip; /* quoted string or group: leave the element */
	bool   at;   /* the element's address has a domain */
	bool   angle_seen;
	bool   inword;
	size_t words; /* words outside comments and <> */
	size_t end;   /* just after the last address character */
};

static bool
sm_qualify(const char *s, size_t len, const char *host, struct buf *out)
{
	struct sm_qstate q = { 0 };
	size_t		 ins[64], n = 0, i, k, from = 0, astart = 0;
	int		 depth = 0;
	bool		 quote = false, angle = false, aat = false;
	const char	*colon = memchr(s, ':', len);
	char		 c;

	/* the field is "Name: value": scan the value only */
	for (i = colon ? (size_t)(colon - s) + 1 : len;
	     i <= len && n < sizeof(ins) / sizeof(ins[0]); i++) {
		c = i < len ? s[i] : ',';
		if (quote || depth > 0) {
			if (c == '\\')
				i++;
			else if (quote)
				quote = c != '"';
			else
				depth += c == '(' ? 1 : c == ')' ? -1 : 0;
			continue;
		}
		if (angle && c != '>') {
			aat |= c == '@';
			continue;
		}
		switch (c) {
		case '(':
			depth = 1;
			q.inword = false;
			break;
		case '"':
			quote = q.skip = true;
			break;
		case '<':
			angle = q.angle_seen = true;
			aat = false;
			astart = i + 1;
			break;
		case '>':
			if (!aat && i > astart && !q.skip)
				ins[n++] = i;
			angle = false;
			break;
		case ',':
		case ';':
			if (!q.skip && !q.angle_seen && !q.at && q.words == 1)
				ins[n++] = q.end;
			memset(&q, 0, sizeof(q));
			break;
		case ':': /* "group name:" is no address; members follow */
			memset(&q, 0, sizeof(q));
			break;
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			q.inword = false;
			break;
		default:
			q.at |= c == '@';
			q.words += !q.inword;
			q.inword = true;
			q.end = i + 1;
			break;
		}
	}
	if (n == 0)
		return false;
	buf_reset(out);
	for (k = 0; k < n; k++) {
		if (buf_append(out, s + from, ins[k] - from) == -1 ||
		    buf_printf(out, "@%s", host) == -1)
			return false; /* does not fit: keep the field as written */
		from = ins[k];
	}
	return buf_append(out, s + from, len - from) == 0;
}

/* Adds the addresses of To:/Cc:/Bcc: field i to env (-t). */
static int
sm_hdr_rcpts(const struct sm_ctx *ctx, const struct sm_hdrs *h, size_t i,
    struct spool_env *env, char *err, size_t errsz)
{
	const char	  *s = h->hb.data + h->f[i].off, *colon;
	size_t		   len = h->f[i].len, pos = 0, k;
	struct buf	   v, q;
	struct rfc5322addr ra;
	int		   rc = 0;

	buf_init(&q, 2 * len + 4096);
	if (sm_qualify(s, len, ctx->cf->cf_hostname, &q)) {
		s = q.data; /* "To: root" means root@hostname, as in the header */
		len = q.len;
	}
	colon = memchr(s, ':', len);
	buf_init(&v, len + 1);
	for (k = (size_t)(colon - s) + 1; k < len; k++)
		if (s[k] != '\r' && s[k] != '\n') /* unfold */
			(void)buf_putc(&v, s[k]);
	for (;;) {
		switch (rfc5322addr_next(v.data, v.len, &pos, &ra)) {
		case RFC5322ADDR_OK:
			if ((rc = sm_rcpt_add(ctx, env, ra.ra_addr, err,
				 errsz)) != 0)
				goto out;
			continue;
		case RFC5322ADDR_NOADDR:
			continue;
		case RFC5322ADDR_END:
			goto out;
		default:
			(void)snprintf(err, errsz,
			    "cannot parse the addresses in "
			    "%.*s",
			    (int)(colon - s), s);
			rc = EX_DATAERR;
			goto out;
		}
	}
out:
	buf_release(&v);
	buf_release(&q);
	return rc;
}

/* Notes which headers exist and, with -t, collects the recipients. */
static int
sm_hdr_scan(const struct sm_ctx *ctx, struct sm_hdrs *h, struct spool_env *env,
    char *err, size_t errsz)
{
	size_t i;
	int    rc;
	bool   dest;

	for (i = 0; i < h->n; i++) {
		h->has_from |= sm_field_is(h, i, "From");
		h->has_date |= sm_field_is(h, i, "Date");
		h->has_msgid |= sm_field_is(h, i, "Message-Id");
		h->has_mime |= sm_field_is(h, i, "MIME-Version");
		h->has_ctype |= sm_field_is(h, i, "Content-Type");
		dest = sm_field_is(h, i, "To") || sm_field_is(h, i, "Cc");
		h->has_dest |= dest;
		if (ctx->extract && (dest || sm_field_is(h, i, "Bcc")) &&
		    (rc = sm_hdr_rcpts(ctx, h, i, env, err, errsz)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Reads the header block. Stops at the empty line, at the end of the
 * message, or at the first line that is not a header: that line (the
 * start of a body without a separator) is left in pending.
 */
static int
sm_hdr_read(const struct sm_ctx *ctx, struct sm_msg *m, struct sm_hdrs *h,
    struct buf *pending, bool *pending_r, bool *pcomplete, char *err,
    size_t errsz)
{
	bool first = true, complete, cont;
	int  r;

	*pending_r = false;
	while ((r = sm_msg_line(m, pending, &complete)) == 1) {
		if (first && m->term != SM_TERM_SMTP && pending->len >= 5 &&
		    memcmp(pending->data, "From ", 5) == 0) {
			first = false; /* an mbox "From " line is no header */
			if (!complete)
				while (
				    sm_msg_line(m, pending, &complete) == 1 &&
				    !complete)
					;
			continue;
		}
		first = false;
		if (pending->len == 0 && complete)
			return 0;
		cont = h->n > 0 &&
		    (pending->data[0] == ' ' || pending->data[0] == '\t');
		if (!cont && !sm_is_field(pending->data, pending->len)) {
			*pending_r = true;
			*pcomplete = complete;
			return 0;
		}
		if (!complete ||
		    h->hb.len + pending->len + 2 >
			(size_t)ctx->cf->cf_max_header_size) {
			(void)snprintf(err, errsz,
			    "message header too large "
			    "(max_header_size = %lld)",
			    (long long)ctx->cf->cf_max_header_size);
			return EX_DATAERR;
		}
		if (sm_hdr_add(h, pending, cont) == -1) {
			(void)snprintf(err, errsz, "out of memory");
			return EX_OSERR;
		}
	}
	if (r == -1) {
		(void)snprintf(err, errsz, "reading the message: %s",
		    errno ? strerror(errno) : "unexpected end of input");
		return EX_NOINPUT;
	}
	return 0;
}

/* ---- writing */

struct sm_out {
	struct spool_in si;
	struct buf	b;
	int		rc;   /* first write error */
	uint64_t	size; /* message bytes (without the envelope) */
	uint64_t	max;
	bool		toobig;
};

static void
sm_out_flush(struct sm_out *o)
{
	int rc;

	if (o->rc == 0 && o->b.len > 0 &&
	    (rc = spool_in_write(&o->si, o->b.data, o->b.len)) != 0)
		o->rc = rc;
	buf_reset(&o->b);
}

static void
sm_out_put(struct sm_out *o, const void *p, size_t n, bool counts)
{
	if (counts) {
		o->size += n;
		if (o->size > o->max)
			o->toobig = true;
	}
	if (o->rc != 0 || o->toobig)
		return;
	if (o->b.len + n > SM_PIECE_MAX)
		sm_out_flush(o);
	if (buf_append(&o->b, p, n) == -1 && o->rc == 0)
		o->rc = ENOMEM;
}

static void
sm_rfc5322_date(char *dst, size_t dstsz)
{
	time_t	  now = time(NULL);
	struct tm tm;

	(void)localtime_r(&now, &tm);
	if (strftime(dst, dstsz, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		(void)str_copy(dst, dstsz, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* RFC 2047 "B" encoding for a display name with 8-bit bytes. */
static void
sm_name_encode(struct buf *b, const char *name)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = (const unsigned char *)name;
	size_t		     n = strlen(name), i;
	unsigned	     v;

	(void)buf_puts(b, "=?UTF-8?B?");
	for (i = 0; i < n; i += 3) {
		v = (unsigned)s[i] << 16 |
		    (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
		    (i + 2 < n ? s[i + 2] : 0);
		(void)buf_putc(b, b64[v >> 18 & 63]);
		(void)buf_putc(b, b64[v >> 12 & 63]);
		(void)buf_putc(b, i + 1 < n ? b64[v >> 6 & 63] : '=');
		(void)buf_putc(b, i + 2 < n ? b64[v & 63] : '=');
	}
	(void)buf_puts(b, "?=");
}

/* "From: Full Name <addr>" for a message without From:. */
static void
sm_from_header(const struct sm_ctx *ctx, struct buf *b)
{
	const char *p;
	bool	    eight = false;
	char	    def[SPOOL_ADDR_MAX];
	const char *addr = ctx->from;

	if (addr[0] == '\0') {
		(void)str_printf(def, sizeof(def), "%s@%s", ctx->user,
		    ctx->cf->cf_hostname);
		addr = def;
	}
	(void)buf_puts(b, "From: ");
	if (ctx->fullname[0] != '\0') {
		for (p = ctx->fullname; *p != '\0'; p++)
			eight |= (unsigned char)*p >= 0x80;
		if (eight)
			sm_name_encode(b, ctx->fullname);
		else {
			(void)buf_putc(b, '"');
			for (p = ctx->fullname; *p != '\0'; p++) {
				if (*p == '"' || *p == '\\')
					(void)buf_putc(b, '\\');
				if ((unsigned char)*p >= ' ')
					(void)buf_putc(b, *p);
			}
			(void)buf_putc(b, '"');
		}
		(void)buf_printf(b, " <%s>\r\n", addr);
	} else
		(void)buf_printf(b, "%s\r\n", addr);
}

/* Received: first, then the header block without Bcc:, then what is missing. */
static void
sm_write_header(const struct sm_ctx *ctx, struct sm_out *o,
    const struct sm_hdrs *h)
{
	char	   date[64];
	struct buf b;
	size_t	   i;

	sm_rfc5322_date(date, sizeof(date));
	buf_init(&b, 2 * (size_t)ctx->cf->cf_max_header_size + SM_PIECE_MAX);
	if (ctx->smtp)
		(void)buf_printf(&b,
		    "Received: from %s (localhost)\r\n"
		    "\tby %s (smtpgate-sendmail -bs, from userid %lu)\r\n"
		    "\tid %s; %s\r\n",
		    ctx->helo, ctx->cf->cf_hostname, (unsigned long)ctx->uid,
		    o->si.sn_qid, date);
	else
		(void)buf_printf(&b,
		    "Received: by %s (smtpgate-sendmail, "
		    "from userid %lu)\r\n\tid %s; %s\r\n",
		    ctx->cf->cf_hostname, (unsigned long)ctx->uid, o->si.sn_qid,
		    date);
	sm_out_put(o, b.data, b.len, true);
	for (i = 0; i < h->n; i++) {
		if (sm_field_is(h, i, "Bcc"))
			continue;
		if (sm_field_addrs(h, i) &&
		    sm_qualify(h->hb.data + h->f[i].off, h->f[i].len,
			ctx->cf->cf_hostname, &b))
			sm_out_put(o, b.data, b.len, true);
		else
			sm_out_put(o, h->hb.data + h->f[i].off, h->f[i].len,
			    true);
		sm_out_put(o, "\r\n", 2, true);
	}
	buf_reset(&b);
	if (!h->has_from)
		sm_from_header(ctx, &b);
	if (!h->has_date)
		(void)buf_printf(&b, "Date: %s\r\n", date);
	if (!h->has_msgid)
		(void)buf_printf(&b, "Message-Id: <%s@%s>\r\n", o->si.sn_qid,
		    ctx->cf->cf_hostname);
	if (!h->has_dest)
		(void)buf_puts(&b, "To: undisclosed-recipients:;\r\n");
	if (!h->has_mime)
		(void)buf_puts(&b, "MIME-Version: 1.0\r\n");
	if (!h->has_ctype)
		(void)buf_puts(&b,
		    "Content-Type: text/plain; charset=utf-8\r\n");
	(void)buf_puts(&b, "\r\n");
	sm_out_put(o, b.data, b.len, true);
	buf_release(&b);
}

/* Copies the body; the first line may already be in pending. */
static int
sm_write_body(struct sm_out *o, struct sm_msg *m, struct buf *line, bool have,
    bool complete)
{
	int r = 1;

	for (;;) {
		if (have) {
			sm_out_put(o, line->data, line->len, true);
			if (complete)
				sm_out_put(o, "\r\n", 2, true);
		}
		if ((r = sm_msg_line(m, line, &complete)) != 1)
			break;
		have = true;
	}
	return r;
}

static int
sm_env_fill(const struct sm_ctx *ctx, struct spool_env *env, const char *qid,
    char *err, size_t errsz)
{
	if (str_copy(env->pe_qid, sizeof(env->pe_qid), qid) == -1 ||
	    str_copy(env->pe_account, sizeof(env->pe_account),
		ctx->cf->cf_sendmail_account) == -1 ||
	    str_copy(env->pe_client, sizeof(env->pe_client), "local") == -1 ||
	    str_copy(env->pe_helo, sizeof(env->pe_helo), ctx->helo) == -1 ||
	    str_copy(env->pe_from, sizeof(env->pe_from), ctx->from) == -1) {
		(void)snprintf(err, errsz, "envelope field too long");
		return EX_DATAERR;
	}
	env->pe_time = (int64_t)time(NULL);
	env->pe_tls[0] = env->pe_auth[0] = env->pe_from_params[0] = '\0';
	return 0;
}

/* min_free_space: refuse while the spool is short of space (try later). */
static int
sm_space_check(const struct sm_ctx *ctx, char *err, size_t errsz)
{
	int64_t min = spool_space_min(ctx->cf), avail;

	if (spool_space_check(ctx->cf->cf_spool_dir, min, &avail) != ENOSPC)
		return 0; /* enough, or cannot tell: the write will */
	(void)snprintf(err, errsz,
	    "insufficient system storage: %s has %lld bytes "
	    "free, min_free_space is %lld; try again later",
	    ctx->cf->cf_spool_dir, (long long)avail, (long long)min);
	return EX_TEMPFAIL;
}

/* Creates maildrop/.QID and writes the envelope (spoold replaces the
 * account, auth and tag: whatever is written here is not trusted). */
static int
sm_out_open(const struct sm_ctx *ctx, struct sm_out *o, struct spool_env *env,
    char *err, size_t errsz)
{
	struct buf eb;
	int	   rc;

	if ((rc = sm_space_check(ctx, err, errsz)) != 0)
		return rc;
	if ((rc = spool_drop_create(ctx->cf->cf_spool_dir, &o->si)) != 0) {
		(void)snprintf(err, errsz,
		    "cannot queue the message: %s/maildrop: %s",
		    ctx->cf->cf_spool_dir, spool_strerror(rc));
		return EX_TEMPFAIL;
	}
	if ((rc = sm_env_fill(ctx, env, o->si.sn_qid, err, errsz)) != 0) {
		spool_in_abort(&o->si);
		return rc;
	}
	buf_init(&eb, 1 << 30);
	if ((rc = spool_env_format(env, &eb)) == 0)
		sm_out_put(o, eb.data, eb.len, false);
	buf_release(&eb);
	if (rc != 0) {
		(void)snprintf(err, errsz, "cannot write the envelope: %s",
		    spool_strerror(rc));
		spool_in_abort(&o->si);
		return EX_DATAERR;
	}
	return 0;
}

/* Writes the whole message after the header block was read. */
static int
sm_write_all(const struct sm_ctx *ctx, struct sm_msg *m, struct sm_hdrs *h,
    struct buf *line, bool pending, bool pcomplete, struct spool_env *env,
    char qid_r[QID_SIZE], char *err, size_t errsz)
{
	struct sm_out o;
	int	      rc, r;

	memset(&o, 0, sizeof(o));
	o.si.sn_fd = -1;
	o.max = (uint64_t)ctx->cf->cf_max_message_size;
	buf_init(&o.b, SM_PIECE_MAX + 4096);
	if ((rc = sm_out_open(ctx, &o, env, err, errsz)) != 0) {
		buf_release(&o.b);
		return rc;
	}
	sm_write_header(ctx, &o, h);
	r = sm_write_body(&o, m, line, pending, pcomplete);
	sm_out_flush(&o);
	buf_release(&o.b);
	if (r == -1) {
		(void)snprintf(err, errsz, "reading the message: %s",
		    errno ? strerror(errno) : "unexpected end of input");
		rc = EX_NOINPUT;
	} else if (o.toobig) {
		(void)snprintf(err, errsz,
		    "message too large (max_message_size = %lld)",
		    (long long)ctx->cf->cf_max_message_size);
		rc = EX_DATAERR;
	} else if (o.rc != 0) {
		(void)snprintf(err, errsz, "cannot write %s: %s", o.si.sn_tmp,
		    spool_strerror(o.rc));
		rc = EX_TEMPFAIL;
	} else if ((rc = sm_space_check(ctx, err, errsz)) != 0) {
		; /* the message crossed the watermark: removed below */
	} else if ((rc = spool_in_commit(&o.si)) != 0) {
		(void)snprintf(err, errsz, "cannot commit %s: %s", o.si.sn_tmp,
		    spool_strerror(rc));
		return EX_TEMPFAIL; /* the library removed the tmp file */
	}
	if (rc != 0) {
		spool_in_abort(&o.si);
		return rc;
	}
	(void)str_copy(qid_r, QID_SIZE, o.si.sn_qid);
	return 0;
}

int
sm_inject(const struct sm_ctx *ctx, struct sm_rd *rd, enum sm_term term,
    struct spool_env *env, char qid_r[QID_SIZE], char *err, size_t errsz)
{
	struct sm_msg  m = { .rd = rd, .term = term, .at_bol = true };
	struct sm_hdrs h;
	struct buf     line;
	bool	       pending = false, pcomplete = true;
	int	       rc;

	memset(&h, 0, sizeof(h));
	buf_init(&h.hb, (size_t)ctx->cf->cf_max_header_size + SM_PIECE_MAX);
	buf_init(&line, SM_PIECE_MAX + 1);
	rc = sm_hdr_read(ctx, &m, &h, &line, &pending, &pcomplete, err, errsz);
	if (rc == 0)
		rc = sm_hdr_scan(ctx, &h, env, err, errsz);
	if (rc == 0 && env->pe_nrcpt == 0) {
		(void)snprintf(err, errsz,
		    "no recipient addresses found in the "
		    "message header");
		rc = EX_DATAERR;
	}
	if (rc == 0)
		rc = sm_write_all(ctx, &m, &h, &line, pending, pcomplete, env,
		    qid_r, err, errsz);
	if (rc != 0)
		sm_msg_drain(&m, &line);
	buf_release(&line);
	buf_release(&h.hb);
	free(h.f);
	return rc;
}
