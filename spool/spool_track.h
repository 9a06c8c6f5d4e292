/*
 * Engagement tracking (issue 16): the pieces shared by spoold (records what
 * a tracked message links to, at filing), deliverd (rewrites each
 * recipient's copy with tokens before DKIM signing) and trackd (answers
 * /o/, /c/ and /u/ requests and turns them into events).
 *
 * Tokens. A token names one recipient of one message and, for clicks, one
 * link of it: kind, QID, recipient index, link index, authenticated with
 * HMAC-SHA256 under the gateway's tracking key (spool_track_key_load; a
 * random 32-byte file db/track.key made once by spoold, 0600, read by
 * deliverd's key process and trackd as its owner; never by a delivery
 * worker) and truncated to 12 bytes; the whole is base64url
 * without padding (about 40 characters). A token that does not verify is
 * unknown: trackd answers 404 and logs one line, nothing else.
 *
 * Links. The click target is never taken from the request: it is link
 * number N of what spoold recorded for that message (spool_track_put, in
 * the filing transaction, so it is durable before the first delivery).
 * Records are pruned with the delivery log (delivery_log_retention).
 */
#ifndef SG_SPOOL_TRACK_H
#define SG_SPOOL_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qid.h"
#include "spool.h"

#define SPOOL_TRACK_KEYLEN    32
#define SPOOL_TRACK_KEY_FILE  "track.key" /* under db/ */
#define SPOOL_TRACK_TOKEN_MAX 96	  /* a token, NUL included */
#define SPOOL_TRACK_TOKEN_LEN 39	  /* characters of every token */
#define SPOOL_TRACK_LINKS_MAX 500	  /* links recorded per message */

enum spool_track_kind {
	SPOOL_TRACK_OPEN = 'o',
	SPOOL_TRACK_CLICK = 'c',
	SPOOL_TRACK_UNSUB = 'u'
};

struct spool_track_ref {
	enum spool_track_kind tk_kind;
	char		      tk_qid[QID_SIZE];
	uint32_t	      tk_idx;  /* recipient index in the message */
	uint16_t	      tk_link; /* clicks: index in km_links, else 0 */
};

/* Loads db/track.key, creating it (0640, group smtpgate) when absent and
 * create is true; 0 or an errno value. */
int spool_track_key_load(const char *spool_dir, bool create,
    unsigned char key[SPOOL_TRACK_KEYLEN]);
/* Writes the token for ref into out (SPOOL_TRACK_TOKEN_MAX); -1 if ref is
 * not valid (empty or overlong QID, unknown kind). */
int spool_track_token(const unsigned char key[SPOOL_TRACK_KEYLEN],
    const struct spool_track_ref *, char *out, size_t outlen);
/* A keyed HMAC context for making many tokens under one key (deliverd's
 * key process); NULL if OpenSSL cannot make one. */
struct spool_track_signer;
struct spool_track_signer *spool_track_signer_new(
    const unsigned char key[SPOOL_TRACK_KEYLEN]);
void spool_track_signer_free(struct spool_track_signer *);
/* spool_track_token with the signer's key. */
int spool_track_token_with(struct spool_track_signer *,
    const struct spool_track_ref *, char *out, size_t outlen);
/* 0 and ref filled when tok is a token made under key; -1 otherwise
 * (malformed, truncated, forged, wrong kind byte). Constant-time compare. */
int spool_track_parse(const unsigned char key[SPOOL_TRACK_KEYLEN],
    const char *tok, size_t len, struct spool_track_ref *);

/*
 * What spoold records for a tracked message: the account's tracking
 * settings at filing time and the message's http/https links in document
 * order (the order deliverd's rewriter numbers them in; see
 * common/track_html.h). Freed with spool_track_msg_free.
 */
struct spool_track_msg {
	char	 km_login[SPOOL_LOGIN_MAX];
	uint64_t km_issue;
	char	 km_uniq[SPOOL_NAME_MAX]; /* X-Letter-Id or "" */
	char	 km_message_id[SPOOL_MSGID_MAX];
	char	 km_from[SPOOL_ADDR_MAX];
	int64_t	 km_arrival;
	unsigned km_track;		    /* SPOOL_TRACK_F_* */
	char	 km_host[SPOOL_DOMAIN_MAX]; /* --track-host */
	char   **km_links;		    /* heap */
	size_t	 km_nlinks;
	char   **km_rcpts; /* heap: index -> address */
	size_t	 km_nrcpts;
	/* where the rewriting's edits go (track_html's plan, opaque here):
	 * deliverd applies it without parsing the message again */
	char  *km_plan; /* heap, or NULL */
	size_t km_planlen;
};
#define SPOOL_TRACK_F_OPENS  0x01
#define SPOOL_TRACK_F_CLICKS 0x02
#define SPOOL_TRACK_F_UNSUB  0x04

int spool_track_put(struct spool_txn *, const char *qid,
    const struct spool_track_msg *);
/* 0, SPOOL_ENOTFOUND (never tracked, or pruned), or another SPOOL_E*. */
int  spool_track_get(struct spool_txn *, const char *qid,
     struct spool_track_msg *);
void spool_track_msg_free(struct spool_track_msg *);
/* A record exists (no decoding: the scheduler's check). */
bool spool_track_has(struct spool_txn *, const char *qid);
/* Removes the record (spool_prune's phase 4); SPOOL_ENOTFOUND if none. */
int spool_track_del(struct spool_txn *, const char *qid);

#endif
