/*
 * spoold_policy: header facts and the CONTRACT's policy decisions (see
 * spoold_policy.h). No I/O: the lookups are the caller's.
 */
#include "config.h"

#include <limits.h>
#include <string.h>

#include "buf.h"
#include "spoold_policy.h"

static const struct {
	const char *name;
	const char *missing;
} spoold_req_tab[SPOOLD_H_NREQ] = {
	[SPOOLD_H_MESSAGE_ID] = { "Message-Id", "635 6.7.8 no Message-Id:" },
	[SPOOLD_H_DATE] = { "Date", "635 6.7.8 no Date:" },
	[SPOOLD_H_FROM] = { "From", "635 6.7.8 no From:" },
	[SPOOLD_H_TO] = { "To", "635 6.7.8 no To:" },
	[SPOOLD_H_SUBJECT] = { "Subject", "635 6.7.8 no Subject:" },
	[SPOOLD_H_MIME_VERSION] = { "MIME-Version",
	    "635 6.7.8 no MIME-Version:" },
	[SPOOLD_H_CONTENT_TYPE] = { "Content-Type",
	    "635 6.7.8 no Content-Type:" },
};

void
spoold_hdrinfo_init(struct spoold_hdrinfo *h)
{
	memset(h, 0, sizeof(*h));
	h->sh_from_st = RFC5322ADDR_NOADDR;
	h->sh_sender_st = RFC5322ADDR_NOADDR;
	h->sh_status = HDR_END;
}

/* Length of the valid UTF-8 character at s[0..n), or 0. */
static size_t
spoold_utf8_char(const unsigned char *s, size_t n)
{
	size_t k, len;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0 && s[0] >= 0xc2)
		len = 2;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3;
	else if ((s[0] & 0xf8) == 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (k = 1; k < len; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * Copies a header value for records and JSON events: control bytes and
 * invalid UTF-8 become '?', and the copy is cut at a character boundary.
 */
static void
spoold_clean_copy(char *dst, size_t dstsz, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t		     i = 0, o = 0, clen;

	while (i < n) {
		clen = spoold_utf8_char(s + i, n - i);
		if (o + (clen == 0 ? 1 : clen) >= dstsz)
			break;
		if (clen == 0 || (clen == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
			dst[o++] = '?';
			i++;
			continue;
		}
		memcpy(dst + o, s + i, clen);
		o += clen;
		i += clen;
	}
	dst[o] = '\0';
}

bool
spoold_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n < 1 || n > 255)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool
spoold_is(const struct hdr_field *f, const char *name)
{
	return f->hf_namelen == strlen(name) && str_ieq(f->hf_name, name);
}

static void
spoold_hdrinfo_name(const struct hdr_field *f, bool *has, bool *ok, char *dst,
    size_t dstsz)
{
	if (*has)
		return;
	*has = true;
	*ok = spoold_name_ok(f->hf_value, f->hf_valuelen);
	if (*ok)
		(void)str_ncopy(dst, dstsz, f->hf_value, f->hf_valuelen);
}

/*
 * Every mailbox of the first From:, strictly (the first address is the
 * message's: DKIM domain, records). A mailbox without an address beside
 * ones with, or a break after one, is more than mailboxes: JUNK.
 */
static void
spoold_hdrinfo_from(struct spoold_hdrinfo *h, const struct hdr_field *f)
{
	struct rfc5322addr	a;
	enum rfc5322addr_status st;
	size_t			pos = 0;
	bool			noaddr = false;

	while ((st = rfc5322addr_next_strict(f->hf_value, f->hf_valuelen, &pos,
		    &a)) == RFC5322ADDR_OK ||
	    st == RFC5322ADDR_NOADDR) {
		if (st == RFC5322ADDR_NOADDR) {
			noaddr = true;
			continue;
		}
		if (h->sh_nfrom == 0)
			spoold_clean_copy(h->sh_from, sizeof(h->sh_from),
			    a.ra_addr, strlen(a.ra_addr));
		else if (h->sh_nfrom < SPOOLD_FROM_MAX)
			spoold_clean_copy(h->sh_from_more[h->sh_nfrom - 1],
			    sizeof(h->sh_from_more[0]), a.ra_addr,
			    strlen(a.ra_addr));
		h->sh_nfrom++;
	}
	if (st == RFC5322ADDR_END)
		h->sh_from_st = h->sh_nfrom == 0 ? RFC5322ADDR_NOADDR
		    : noaddr			 ? RFC5322ADDR_JUNK
						 : RFC5322ADDR_OK;
	else
		h->sh_from_st = h->sh_nfrom > 0 && st == RFC5322ADDR_SYNTAX
		    ? RFC5322ADDR_JUNK
		    : st;
}

/* The first Sender:: exactly one mailbox with an address, or not OK. */
static void
spoold_hdrinfo_sender(struct spoold_hdrinfo *h, const struct hdr_field *f)
{
	struct rfc5322addr a, b;
	size_t		   pos = 0;

	if (h->sh_nsender_fields++ > 0)
		return;
	h->sh_sender_st = rfc5322addr_next_strict(f->hf_value, f->hf_valuelen,
	    &pos, &a);
	if (h->sh_sender_st == RFC5322ADDR_OK &&
	    rfc5322addr_next_strict(f->hf_value, f->hf_valuelen, &pos, &b) !=
		RFC5322ADDR_END)
		h->sh_sender_st = RFC5322ADDR_JUNK;
	if (h->sh_sender_st == RFC5322ADDR_OK)
		spoold_clean_copy(h->sh_sender, sizeof(h->sh_sender), a.ra_addr,
		    strlen(a.ra_addr));
}

void
spoold_hdrinfo_add(struct spoold_hdrinfo *h, const struct hdr_field *f)
{
	int i;

	if (spoold_is(f, "Received") && h->sh_received < UINT_MAX)
		h->sh_received++; /* hops: spoold_policy_hops() */
	for (i = 0; i < SPOOLD_H_NREQ; i++)
		if (spoold_is(f, spoold_req_tab[i].name))
			break;
	if (i < SPOOLD_H_NREQ) {
		if (i == SPOOLD_H_FROM)
			h->sh_nfrom_fields++;
		if (h->sh_seen[i])
			return;
		h->sh_seen[i] = true;
		if (i == SPOOLD_H_FROM)
			spoold_hdrinfo_from(h, f);
		else if (i == SPOOLD_H_MESSAGE_ID)
			spoold_clean_copy(h->sh_message_id,
			    sizeof(h->sh_message_id), f->hf_value,
			    f->hf_valuelen);
		else if (i == SPOOLD_H_SUBJECT)
			spoold_clean_copy(h->sh_subject, sizeof(h->sh_subject),
			    f->hf_value, f->hf_valuelen);
	} else if (spoold_is(f, "X-Campaign-Id"))
		spoold_hdrinfo_name(f, &h->sh_has_campaign, &h->sh_campaign_ok,
		    h->sh_campaign, sizeof(h->sh_campaign));
	else if (spoold_is(f, "X-Letter-Id"))
		spoold_hdrinfo_name(f, &h->sh_has_letter, &h->sh_letter_ok,
		    h->sh_letter, sizeof(h->sh_letter));
	else if (spoold_is(f, "Sender"))
		spoold_hdrinfo_sender(h, f);
}

enum hdr_status
spoold_hdrinfo_parse(struct spoold_hdrinfo *h, const char *data, size_t len,
    size_t max_size)
{
	struct hdr_limits lim = { 0, max_size };
	struct hdr	  p;
	struct hdr_field  f;
	enum hdr_status	  st;

	spoold_hdrinfo_init(h);
	hdr_init(&p, &lim);
	hdr_push(&p, data, len);
	hdr_push_eof(&p);
	while ((st = hdr_next(&p, &f)) == HDR_FIELD)
		spoold_hdrinfo_add(h, &f);
	hdr_release(&p);
	h->sh_status = st;
	return st;
}

const char *
spoold_policy_missing_text(enum spoold_req r)
{
	return r < SPOOLD_H_NREQ ? spoold_req_tab[r].missing : NULL;
}

static int
spoold_policy_sender_one(const char *addr, const struct spoold_lookup *lk,
    const char **text_r)
{
	enum spool_sender_status st;
	const char		*at;
	char			 key[SPOOL_ADDR_MAX + 1];
	int			 rc;

	rc = lk->lu_sender(lk->lu_arg, addr, &st);
	if (rc == SPOOL_ENOTFOUND && (at = strrchr(addr, '@')) != NULL) {
		(void)str_copy(key, sizeof(key), at);
		rc = lk->lu_sender(lk->lu_arg, key, &st);
	}
	if (rc == SPOOL_ENOTFOUND) {
		*text_r = SPOOLD_T_UNKNOWN;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (st == SPOOL_SENDER_ONMODERATION)
		*text_r = SPOOLD_T_ONMOD;
	else if (st != SPOOL_SENDER_APPROVED)
		*text_r = SPOOLD_T_PROHIBITED;
	return 0;
}

/* Every From: address, and the Sender: one when it is required. */
static int
spoold_policy_sender(const struct spoold_hdrinfo *h,
    const struct spoold_lookup *lk, const char **text_r)
{
	size_t i;
	int    rc;

	if ((rc = spoold_policy_sender_one(h->sh_from, lk, text_r)) != 0 ||
	    *text_r != NULL)
		return rc;
	for (i = 1; i < h->sh_nfrom && i < SPOOLD_FROM_MAX; i++)
		if ((rc = spoold_policy_sender_one(h->sh_from_more[i - 1], lk,
			 text_r)) != 0 ||
		    *text_r != NULL)
			return rc;
	if (h->sh_nfrom > 1)
		return spoold_policy_sender_one(h->sh_sender, lk, text_r);
	return 0;
}

/* One From: field of mailboxes only; several only with one Sender:. */
static const char *
spoold_policy_from(const struct spoold_hdrinfo *h)
{
	if (h->sh_nfrom_fields > 1)
		return SPOOLD_T_MULTIFROM;
	if (h->sh_from_st == RFC5322ADDR_JUNK)
		return SPOOLD_T_BADFROM;
	if (h->sh_from_st != RFC5322ADDR_OK)
		return SPOOLD_T_NOEMAIL;
	if (h->sh_nfrom == 1)
		return NULL;
	if (h->sh_nfrom > SPOOLD_FROM_MAX)
		return SPOOLD_T_MANYFROM;
	if (h->sh_nsender_fields == 0)
		return SPOOLD_T_MULTIMBOX;
	if (h->sh_nsender_fields > 1 || h->sh_sender_st != RFC5322ADDR_OK)
		return SPOOLD_T_BADSENDER;
	return NULL;
}

int
spoold_policy_message(const struct spoold_hdrinfo *h,
    enum spool_senders senders, const struct spoold_lookup *lk,
    const char **text_r)
{
	int i;

	*text_r = NULL;
	if (h->sh_status == HDR_ESIZE || h->sh_status == HDR_ENOMEM) {
		*text_r = SPOOLD_T_HDRSIZE;
		return 0;
	}
	if (h->sh_status == HDR_ELINE) {
		*text_r = SPOOLD_T_HDRLINE;
		return 0;
	}
	for (i = 0; i < SPOOLD_H_NREQ; i++) {
		if (!h->sh_seen[i]) {
			*text_r = spoold_req_tab[i].missing;
			return 0;
		}
	}
	if ((*text_r = spoold_policy_from(h)) != NULL)
		return 0;
	if (h->sh_has_campaign && !h->sh_campaign_ok)
		*text_r = SPOOLD_T_BADCAMPAIGN;
	else if (h->sh_has_letter && !h->sh_letter_ok)
		*text_r = SPOOLD_T_BADLETTER;
	else if (senders == SPOOL_SENDERS_REGISTERED)
		return spoold_policy_sender(h, lk, text_r);
	return 0;
}

const char *
spoold_policy_rcpt(const struct spoold_lookup *lk, const char *addr)
{
	if (lk->lu_stop(lk->lu_arg, addr))
		return SPOOLD_T_STOPLIST;
	if (lk->lu_permfail(lk->lu_arg, addr))
		return SPOOLD_T_PERMFAIL;
	return NULL;
}

const char *
spoold_policy_hops(const struct spoold_hdrinfo *h, int64_t limit)
{
	return (int64_t)h->sh_received > limit ? SPOOLD_T_HOPS : NULL;
}
