/* Record encoding: version byte + tag/length/value (see spool_rec.h). */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "spool_rec.h"

#define N(t) (sizeof(t) / sizeof((t)[0]))
#define FSTR(tag, st, m) \
	{ \
		tag, SPOOL_F_STR, offsetof(st, m), sizeof(((st *)0)->m) \
	}
#define FNUM(tag, ty, st, m) \
	{ \
		tag, ty, offsetof(st, m), sizeof(((st *)0)->m) \
	}

_Static_assert(sizeof(enum spool_rcpt_state) == sizeof(int), "enum size");
_Static_assert(sizeof(enum spool_dkim_alg) == sizeof(int), "enum size");
_Static_assert(sizeof(enum spool_cb_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum spool_senders) == sizeof(int), "enum size");
_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "ac_track size");

static int
spool_rec_err(void)
{
	return errno == EMSGSIZE ? SPOOL_ETOOBIG : ENOMEM;
}

int
spool_rec_tlv(struct buf *out, uint8_t tag, const void *v, size_t n)
{
	uint8_t h[5];

	if (n > SPOOL_REC_MAX)
		return SPOOL_ETOOBIG;
	h[0] = tag;
	spool_be32_put(h + 1, (uint32_t)n);
	if (buf_append(out, h, sizeof(h)) == -1 || buf_append(out, v, n) == -1)
		return spool_rec_err();
	return 0;
}

static uint64_t
spool_rec_num(const struct spool_rec_field *f, const char *p)
{
	int64_t	 i64;
	uint64_t u64;
	uint32_t u32;
	bool	 b;
	int	 e;

	switch (f->rf_type) {
	case SPOOL_F_I64:
		memcpy(&i64, p, sizeof(i64));
		return (uint64_t)i64;
	case SPOOL_F_U64:
		memcpy(&u64, p, sizeof(u64));
		return u64;
	case SPOOL_F_U32:
		memcpy(&u32, p, sizeof(u32));
		return u32;
	case SPOOL_F_BOOL:
		memcpy(&b, p, sizeof(b));
		return b ? 1 : 0;
	case SPOOL_F_ENUM:
		memcpy(&e, p, sizeof(e));
		return (uint64_t)(int64_t)e;
	default:
		return 0;
	}
}

int
spool_rec_enc(const struct spool_rec_field *t, size_t n, const void *obj,
    struct buf *out)
{
	const char *p;
	uint8_t	    v = SPOOL_REC_VERSION, be[8];
	size_t	    i, l;
	int	    rc;

	if (buf_append(out, &v, 1) == -1)
		return spool_rec_err();
	for (i = 0; i < n; i++) {
		p = (const char *)obj + t[i].rf_off;
		if (t[i].rf_type == SPOOL_F_STR) {
			l = strnlen(p, t[i].rf_size);
			if (l == t[i].rf_size)
				return SPOOL_ETOOBIG; /* not terminated */
			rc = spool_rec_tlv(out, t[i].rf_tag, p, l);
		} else {
			spool_be64_put(be, spool_rec_num(&t[i], p));
			rc = spool_rec_tlv(out, t[i].rf_tag, be, sizeof(be));
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int
spool_rec_set(const struct spool_rec_field *f, const uint8_t *v, size_t len,
    void *obj)
{
	char	*p = (char *)obj + f->rf_off;
	uint64_t x;
	int64_t	 i64;
	uint32_t u32;
	bool	 b;
	int	 e;

	if (f->rf_type == SPOOL_F_STR) {
		if (len >= f->rf_size || memchr(v, '\0', len) != NULL)
			return SPOOL_ECORRUPT;
		memcpy(p, v, len);
		p[len] = '\0';
		return 0;
	}
	if (len != 8)
		return SPOOL_ECORRUPT;
	x = spool_be64_get(v);
	switch (f->rf_type) {
	case SPOOL_F_I64:
		i64 = (int64_t)x;
		memcpy(p, &i64, sizeof(i64));
		break;
	case SPOOL_F_U64:
		memcpy(p, &x, sizeof(x));
		break;
	case SPOOL_F_U32:
		u32 = (uint32_t)x;
		memcpy(p, &u32, sizeof(u32));
		break;
	case SPOOL_F_BOOL:
		b = x != 0;
		memcpy(p, &b, sizeof(b));
		break;
	case SPOOL_F_ENUM:
		e = (int)(int64_t)x;
		memcpy(p, &e, sizeof(e));
		break;
	default:
		return SPOOL_ECORRUPT;
	}
	return 0;
}

int
spool_rec_dec(const struct spool_rec_field *t, size_t n, const void *data,
    size_t len, void *obj, spool_rec_extra_cb *extra, void *arg)
{
	const uint8_t *d = data;
	size_t	       off = 1, vlen, i;
	uint8_t	       tag;
	int	       rc;

	if (len < 1 || d[0] != SPOOL_REC_VERSION)
		return SPOOL_ECORRUPT;
	while (off < len) {
		if (len - off < 5)
			return SPOOL_ECORRUPT;
		tag = d[off];
		vlen = spool_be32_get(d + off + 1);
		off += 5;
		if (vlen > len - off)
			return SPOOL_ECORRUPT;
		for (i = 0; i < n && t[i].rf_tag != tag; i++)
			;
		if (i < n)
			rc = spool_rec_set(&t[i], d + off, vlen, obj);
		else
			rc = extra != NULL ? extra(tag, d + off, vlen, arg) : 0;
		if (rc != 0)
			return rc;
		off += vlen;
	}
	return 0;
}

/* ---- accounts: the --ip ranges are repeated tag 100 (family, prefix, addr) */
#define SA struct spool_account
static const struct spool_rec_field spool_rec_account[] = {
	FSTR(1, SA, ac_login),
	FSTR(2, SA, ac_pwhash),
	FNUM(3, SPOOL_F_BOOL, SA, ac_sandbox),
	FSTR(4, SA, ac_callback_url),
	FNUM(5, SPOOL_F_ENUM, SA, ac_callback_format),
	FNUM(6, SPOOL_F_ENUM, SA, ac_senders),
	FNUM(7, SPOOL_F_I64, SA, ac_created),
	/* issue 15 item 6 (a tag of its own, away from others' new fields) */
	FSTR(40, SA, ac_source),
	/* issue 16: tracking settings */
	FNUM(50, SPOOL_F_U32, SA, ac_track),
	FSTR(51, SA, ac_track_host),
	/* issue 18 item 1: callback signing secrets */
	FSTR(60, SA, ac_cb_secret[0]),
	FSTR(61, SA, ac_cb_secret[1]),
};
_Static_assert(SPOOL_CB_SECRETS == 2, "one tag per callback secret");
#define SPOOL_TAG_IP 100

int
spool_rec_enc_account(const struct spool_account *a, struct buf *out)
{
	uint8_t v[18];
	size_t	i;
	int	rc;

	if ((rc = spool_rec_enc(spool_rec_account, N(spool_rec_account), a,
		 out)) != 0)
		return rc;
	if (a->ac_nips > SPOOL_MAX_IPS)
		return SPOOL_ETOOBIG;
	for (i = 0; i < a->ac_nips; i++) {
		v[0] = a->ac_ips[i].family;
		v[1] = a->ac_ips[i].prefix;
		memcpy(v + 2, a->ac_ips[i].addr, 16);
		if ((rc = spool_rec_tlv(out, SPOOL_TAG_IP, v, sizeof(v))) != 0)
			return rc;
	}
	return 0;
}

static int
spool_rec_account_ip(uint8_t tag, const uint8_t *v, size_t len, void *arg)
{
	struct spool_account *a = arg;
	struct cidr	     *c;

	if (tag != SPOOL_TAG_IP)
		return 0;
	if (len != 18 || a->ac_nips >= SPOOL_MAX_IPS)
		return SPOOL_ECORRUPT;
	c = &a->ac_ips[a->ac_nips++];
	c->family = v[0];
	c->prefix = v[1];
	memcpy(c->addr, v + 2, 16);
	return 0;
}

int
spool_rec_dec_account(const void *d, size_t len, struct spool_account *a)
{
	memset(a, 0, sizeof(*a));
	return spool_rec_dec(spool_rec_account, N(spool_rec_account), d, len, a,
	    spool_rec_account_ip, a);
}

/* ---- DKIM keys */
#define SD struct spool_dkim
static const struct spool_rec_field spool_rec_dkim[] = {
	FSTR(1, SD, dk_login),
	FSTR(2, SD, dk_domain),
	FSTR(3, SD, dk_selector),
	FNUM(4, SPOOL_F_ENUM, SD, dk_alg),
	FSTR(5, SD, dk_keyfile),
	FNUM(6, SPOOL_F_BOOL, SD, dk_default),
	FNUM(7, SPOOL_F_I64, SD, dk_created),
};

int
spool_rec_enc_dkim(const struct spool_dkim *k, struct buf *out)
{
	return spool_rec_enc(spool_rec_dkim, N(spool_rec_dkim), k, out);
}

int
spool_rec_dec_dkim(const void *d, size_t len, struct spool_dkim *k)
{
	memset(k, 0, sizeof(*k));
	return spool_rec_dec(spool_rec_dkim, N(spool_rec_dkim), d, len, k, NULL,
	    NULL);
}

/* ---- issues */
#define SI struct spool_issue
static const struct spool_rec_field spool_rec_issue[] = {
	FNUM(1, SPOOL_F_U64, SI, su_id),
	FSTR(2, SI, su_login),
	FSTR(3, SI, su_date),
	FSTR(4, SI, su_name),
	FNUM(5, SPOOL_F_BOOL, SI, su_has_name),
	FNUM(6, SPOOL_F_BOOL, SI, su_blocked),
	FNUM(7, SPOOL_F_U64, SI, su_msgs),
	FNUM(8, SPOOL_F_U64, SI, su_rcpts),
	FNUM(9, SPOOL_F_U64, SI, su_delivered),
	FNUM(10, SPOOL_F_U64, SI, su_deferred),
	FNUM(11, SPOOL_F_U64, SI, su_bounced_policy),
	FNUM(12, SPOOL_F_U64, SI, su_bounced_remote),
	FNUM(13, SPOOL_F_U64, SI, su_bounced_expired),
	FNUM(14, SPOOL_F_U64, SI, su_bounced_admin),
	/* issue 15: bounced events by category, tag 160 + enum bounce_cat */
	FNUM(161, SPOOL_F_U64, SI, su_bounced_cat[1]),
	FNUM(162, SPOOL_F_U64, SI, su_bounced_cat[2]),
	FNUM(163, SPOOL_F_U64, SI, su_bounced_cat[3]),
	FNUM(164, SPOOL_F_U64, SI, su_bounced_cat[4]),
	FNUM(165, SPOOL_F_U64, SI, su_bounced_cat[5]),
	FNUM(166, SPOOL_F_U64, SI, su_bounced_cat[6]),
	FNUM(167, SPOOL_F_U64, SI, su_bounced_cat[7]),
	FNUM(168, SPOOL_F_U64, SI, su_bounced_cat[8]),
	FNUM(169, SPOOL_F_U64, SI, su_bounced_cat[9]),
	FNUM(170, SPOOL_F_U64, SI, su_bounced_cat[10]),
	FNUM(171, SPOOL_F_U64, SI, su_bounced_cat[11]),
	FNUM(172, SPOOL_F_U64, SI, su_bounced_cat[12]),
	FNUM(173, SPOOL_F_U64, SI, su_bounced_cat[13]),
	/* issue 16: engagement */
	FNUM(200, SPOOL_F_U64, SI, su_opens),
	FNUM(201, SPOOL_F_U64, SI, su_opens_unique),
	FNUM(202, SPOOL_F_U64, SI, su_clicks),
	FNUM(203, SPOOL_F_U64, SI, su_clicks_unique),
	FNUM(204, SPOOL_F_U64, SI, su_unsubscribed),
	FNUM(205, SPOOL_F_U64, SI, su_complained),
	/* issue 18 item 3 */
	FNUM(220, SPOOL_F_U64, SI, su_duplicates),
};

int
spool_rec_enc_issue(const struct spool_issue *s, struct buf *out)
{
	return spool_rec_enc(spool_rec_issue, N(spool_rec_issue), s, out);
}

int
spool_rec_dec_issue(const void *d, size_t len, struct spool_issue *s)
{
	memset(s, 0, sizeof(*s));
	return spool_rec_dec(spool_rec_issue, N(spool_rec_issue), d, len, s,
	    NULL, NULL);
}

/* ---- messages */
#define SM struct spool_msg
static const struct spool_rec_field spool_rec_msg[] = {
	FSTR(1, SM, sm_qid),
	FSTR(2, SM, sm_login),
	FNUM(3, SPOOL_F_I64, SM, sm_arrival),
	FNUM(4, SPOOL_F_I64, SM, sm_size),
	FNUM(5, SPOOL_F_U64, SM, sm_issue),
	FSTR(6, SM, sm_from),
	FSTR(7, SM, sm_from_params),
	FSTR(8, SM, sm_from_hdr),
	FSTR(9, SM, sm_message_id),
	FSTR(10, SM, sm_subject),
	FSTR(11, SM, sm_letter_id),
	FNUM(12, SPOOL_F_BOOL, SM, sm_has_letter_id),
	FSTR(13, SM, sm_client),
	FSTR(14, SM, sm_auth),
	FNUM(15, SPOOL_F_U32, SM, sm_nrcpt),
	FNUM(16, SPOOL_F_U32, SM, sm_npending),
	FNUM(17, SPOOL_F_BOOL, SM, sm_held),
	FNUM(18, SPOOL_F_BOOL, SM, sm_sandbox),
	FNUM(19, SPOOL_F_BOOL, SM, sm_dkim_done),
	FSTR(20, SM, sm_dkim),
	FNUM(21, SPOOL_F_I64, SM, sm_body_off),
};

int
spool_rec_enc_msg(const struct spool_msg *m, struct buf *out)
{
	return spool_rec_enc(spool_rec_msg, N(spool_rec_msg), m, out);
}

int
spool_rec_dec_msg(const void *d, size_t len, struct spool_msg *m)
{
	memset(m, 0, sizeof(*m));
	return spool_rec_dec(spool_rec_msg, N(spool_rec_msg), d, len, m, NULL,
	    NULL);
}

/* ---- recipients */
#define SR struct spool_rcpt
static const struct spool_rec_field spool_rec_rcpt[] = {
	FSTR(1, SR, sr_qid), FNUM(2, SPOOL_F_U32, SR, sr_idx),
	FSTR(3, SR, sr_addr), FNUM(4, SPOOL_F_ENUM, SR, sr_state),
	FNUM(5, SPOOL_F_U32, SR, sr_attempts),
	FNUM(6, SPOOL_F_I64, SR, sr_next), FNUM(7, SPOOL_F_I64, SR, sr_last),
	FSTR(8, SR, sr_reply), FSTR(9, SR, sr_hop), FSTR(10, SR, sr_tls),
	FSTR(161, SR, sr_category), /* issue 15 */
};

int
spool_rec_enc_rcpt(const struct spool_rcpt *r, struct buf *out)
{
	return spool_rec_enc(spool_rec_rcpt, N(spool_rec_rcpt), r, out);
}

int
spool_rec_dec_rcpt(const void *d, size_t len, struct spool_rcpt *r)
{
	memset(r, 0, sizeof(*r));
	return spool_rec_dec(spool_rec_rcpt, N(spool_rec_rcpt), d, len, r, NULL,
	    NULL);
}

/* ---- small records */
struct spool_rec_small {
	uint64_t rs_val;
};
static const struct spool_rec_field spool_rec_small[] = {
	FNUM(1, SPOOL_F_U64, struct spool_rec_small, rs_val),
};

int
spool_rec_enc_u64(uint64_t v, struct buf *out)
{
	struct spool_rec_small s = { .rs_val = v };

	return spool_rec_enc(spool_rec_small, N(spool_rec_small), &s, out);
}

int
spool_rec_dec_u64(const void *d, size_t len, uint64_t *v)
{
	struct spool_rec_small s;
	int		       rc;

	memset(&s, 0, sizeof(s));
	rc = spool_rec_dec(spool_rec_small, N(spool_rec_small), d, len, &s,
	    NULL, NULL);
	*v = s.rs_val;
	return rc;
}

/* ---- permanent failures (suppression entries): tags 1 and 2 are the
 * first records' (when, reply); 3.. came with issue 15. */
#define PF struct spool_permfail
static const struct spool_rec_field spool_rec_permfail[] = {
	FNUM(1, SPOOL_F_I64, PF, pf_when),
	FSTR(2, PF, pf_reply),
	FSTR(3, PF, pf_reason),
	FSTR(4, PF, pf_qid),
	FNUM(5, SPOOL_F_U64, PF, pf_issue),
};

int
spool_rec_enc_permfail(const struct spool_permfail *pf, struct buf *out)
{
	return spool_rec_enc(spool_rec_permfail, N(spool_rec_permfail), pf,
	    out);
}

/* ---- stop-list entries (h-asupp): before, a bare version byte */
#define SE struct spool_stopent
static const struct spool_rec_field spool_rec_stop[] = {
	FSTR(1, SE, se_reason),
	FNUM(2, SPOOL_F_I64, SE, se_when),
	FSTR(3, SE, se_qid),
	FSTR(4, SE, se_note),
};

int
spool_rec_enc_stop(const struct spool_stopent *se, struct buf *out)
{
	return spool_rec_enc(spool_rec_stop, N(spool_rec_stop), se, out);
}

int
spool_rec_dec_stop(const void *d, size_t len, struct spool_stopent *se)
{
	memset(se, 0, sizeof(*se));
	return spool_rec_dec(spool_rec_stop, N(spool_rec_stop), d, len, se,
	    NULL, NULL);
}

int
spool_rec_dec_permfail(const void *d, size_t len, struct spool_permfail *pf)
{
	/* login and address are the key's: only the record's fields reset */
	pf->pf_when = 0;
	pf->pf_reply[0] = pf->pf_reason[0] = pf->pf_qid[0] = '\0';
	pf->pf_issue = 0;
	return spool_rec_dec(spool_rec_permfail, N(spool_rec_permfail), d, len,
	    pf, NULL, NULL);
}
