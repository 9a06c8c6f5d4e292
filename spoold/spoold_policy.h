/*
 * spoold_policy: what spoold decides about one accepted message, without
 * I/O. spoold_hdrinfo collects the header fields the policy needs from
 * common/hdr events; spoold_policy_message() and spoold_policy_rcpt()
 * apply the CONTRACT rules through a lookup table (LMDB in spoold, a
 * table in the unit tests). Texts are the CONTRACT's, exactly; they are
 * static strings.
 */
#ifndef SG_SPOOLD_POLICY_H
#define SG_SPOOLD_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "hdr.h"
#include "rfc5322addr.h"
#include "spool.h"

#define SPOOLD_T_BLOCKED    "635 6.7.8 issue is blocked"
#define SPOOLD_T_UNKNOWN    "635 6.7.8 error/sender/unknown"
#define SPOOLD_T_ONMOD	    "635 6.7.8 error/sender/onmoderation"
#define SPOOLD_T_PROHIBITED "635 6.7.8 error/sender/prohibited"
#define SPOOLD_T_NOEMAIL    "635 6.7.8 no email in From:"
#define SPOOLD_T_MULTIFROM  "635 6.7.8 multiple From:"
#define SPOOLD_T_MULTIMBOX \
	"635 6.7.8 multiple mailboxes in From: without Sender:"
#define SPOOLD_T_BADFROM     "635 6.7.8 bad From:"
#define SPOOLD_T_BADSENDER   "635 6.7.8 bad Sender:"
#define SPOOLD_T_MANYFROM    "635 6.7.8 too many mailboxes in From:"
#define SPOOLD_T_BADCAMPAIGN "635 6.7.8 bad X-Campaign-Id"
#define SPOOLD_T_BADLETTER   "635 6.7.8 bad X-Letter-Id"
#define SPOOLD_T_HDRSIZE     "635 6.7.8 header too large"
#define SPOOLD_T_HDRLINE     "635 6.7.8 header line too long"
#define SPOOLD_T_STOPLIST    "550 5.0.0 Email is in the account stoplist"
#define SPOOLD_T_PERMFAIL    "550 5.0.0 Email has permanent delivery errors"
#define SPOOLD_T_HOPS	     "554 5.4.6 too many hops" /* hopcount_limit */
/* the envelope's account no longer exists (deleted after the 250) */
#define SPOOLD_T_NOACCOUNT   "635 6.7.8 error/account/unknown"

/* The required headers, in the order they are checked. */
enum spoold_req {
	SPOOLD_H_MESSAGE_ID,
	SPOOLD_H_DATE,
	SPOOLD_H_FROM,
	SPOOLD_H_TO,
	SPOOLD_H_SUBJECT,
	SPOOLD_H_MIME_VERSION,
	SPOOLD_H_CONTENT_TYPE,
	SPOOLD_H_NREQ
};

/* From: mailboxes checked one by one; a longer list is refused. */
#define SPOOLD_FROM_MAX 8

struct spoold_hdrinfo {
	bool			sh_seen[SPOOLD_H_NREQ];
	enum rfc5322addr_status sh_from_st; /* of the first From: */
	char			sh_from[SPOOL_ADDR_MAX];
	char		sh_message_id[SPOOL_MSGID_MAX]; /* printable, cut */
	char		sh_subject[256];		/* UTF-8-safe, cut */
	bool		sh_has_campaign, sh_campaign_ok;
	char		sh_campaign[SPOOL_NAME_MAX];
	bool		sh_has_letter, sh_letter_ok;
	char		sh_letter[SPOOL_NAME_MAX];
	enum hdr_status sh_status;   /* HDR_END, or why the block broke */
	unsigned	sh_received; /* Received: fields (hops) */
	/* From:/Sender: read strictly (RFC 5322 3.6.2); sh_from_st above is
	 * RFC5322ADDR_JUNK for a From: with more than mailboxes in it */
	unsigned sh_nfrom_fields; /* From: header fields */
	size_t	 sh_nfrom;	  /* mailboxes in From: */
	char	 sh_from_more[SPOOLD_FROM_MAX - 1][SPOOL_ADDR_MAX];
	unsigned sh_nsender_fields;	      /* Sender: header fields */
	enum rfc5322addr_status sh_sender_st; /* OK: one mailbox */
	char			sh_sender[SPOOL_ADDR_MAX];
};

void spoold_hdrinfo_init(struct spoold_hdrinfo *);
/* Takes one field; the first occurrence of each header wins. */
void spoold_hdrinfo_add(struct spoold_hdrinfo *, const struct hdr_field *);
/* Parses a whole header block held in memory (for tests and small files). */
enum hdr_status spoold_hdrinfo_parse(struct spoold_hdrinfo *, const char *,
    size_t, size_t max_size);

/* [A-Za-z0-9_-]{1,255}: X-Campaign-Id and X-Letter-Id values. */
bool spoold_name_ok(const char *, size_t);

struct spoold_lookup {
	void *lu_arg;
	/* 0 and *st_r, SPOOL_ENOTFOUND, or another spool error */
	int (*lu_sender)(void *, const char *key,
	    enum spool_sender_status *st_r);
	bool (*lu_stop)(void *, const char *addr);
	bool (*lu_permfail)(void *, const char *addr);
};

/*
 * The message-level checks in order: header block readable, required
 * headers, one From: field, nothing but mailboxes in it (bad From:), an
 * address in From:, more than one mailbox only with one valid Sender:
 * (RFC 5322 3.6.2) and at most SPOOLD_FROM_MAX, X-Campaign-Id,
 * X-Letter-Id, then the sender policy (only with --senders registered:
 * every From: address and the Sender: one when required, each as the
 * address, then "@domain"; the first refusal wins). *text_r is NULL when the message passes. Returns 0, or the
 * lookup's error (nothing decided). The issue block is checked by the
 * caller once the issue is known (SPOOLD_T_BLOCKED).
 */
int spoold_policy_message(const struct spoold_hdrinfo *, enum spool_senders,
    const struct spoold_lookup *, const char **text_r);
/* Per recipient: stoplist, then permanent failures. NULL = deliver. */
const char *spoold_policy_rcpt(const struct spoold_lookup *, const char *addr);
/* A mail loop (issue 14): SPOOLD_T_HOPS when the message carries more
 * than limit Received: fields (hopcount_limit, 50 as in Postfix), else NULL. */
const char *spoold_policy_hops(const struct spoold_hdrinfo *, int64_t limit);
/* "no To:" etc. for a missing required header. */
const char *spoold_policy_missing_text(enum spoold_req);

#endif
