/*
 * dkey_proto: the messages between a delivery worker and deliverd's key
 * process (deliverd_key.c). One message per SOCK_SEQPACKET datagram,
 * after the common header (peer_hdr.h):
 *
 *   version u8 (1) | type u8 | length u16 BE | id u32 BE | payload[length]
 *
 * Requests name a key file inside spool_dir/keys/ (the spool's
 * dk_keyfile: 1..DKEY_NAME_MAX bytes of [A-Za-z0-9@._-], not starting
 * with '.'):
 *   DKEY_Q_PUB      payload: name                 -> its public key (DER
 *                                                    SubjectPublicKeyInfo)
 *   DKEY_Q_RSA      payload: namelen u8 | name | SHA-256 digest (32)
 *                   -> RSASSA-PKCS1-v1_5 signature (RSA_sign(NID_sha256))
 *   DKEY_Q_ED25519  payload: namelen u8 | name | SHA-256 digest (32)
 *                   -> Ed25519 signature of the 32 bytes (RFC 8463)
 * One request names no key file: the engagement-tracking tokens of one
 * recipient's copy of a tracked message (spool_track.h), made under
 * db/track.key, which only the key process reads:
 *   DKEY_Q_TOKENS   payload: QID (QID_LEN characters) | recipient index
 *                   u32 BE | what u8 (DKEY_TOK_OPEN | DKEY_TOK_UNSUB) |
 *                   links u16 BE (0..DKEY_LINKS_MAX; at least one token)
 *                   -> the tokens, SPOOL_TRACK_TOKEN_LEN characters each,
 *                   no separator, in this order: the open token if asked,
 *                   the unsubscribe token if asked, the click tokens of
 *                   links 0 .. links-1
 * Replies carry the request's id: DKEY_R_OK (payload: the signature, key
 * or tokens, 1..DKEY_OUT_MAX bytes) or DKEY_R_NO (empty: refused or
 * failed).
 *
 * Pure, bounded, no allocation (STYLE R1): encoders return the bytes
 * written or 0 when the message does not fit; parsers return an enum
 * dkey_status and fill the caller's struct.
 */
#ifndef SG_DKEY_PROTO_H
#define SG_DKEY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer_hdr.h"
#include "qid.h"
#include "spool_track.h"

#define DKEY_VERSION	    1
#define DKEY_HDR_LEN	    PEER_HDR_LEN
#define DKEY_NAME_MAX	    255
#define DKEY_DIGEST_LEN	    32
#define DKEY_LINKS_MAX	    SPOOL_TRACK_LINKS_MAX /* click tokens per request */
#define DKEY_TOK_OPEN	    0x01
#define DKEY_TOK_UNSUB	    0x02
#define DKEY_TOKENS_MAX	    (2 + DKEY_LINKS_MAX) /* open, unsubscribe, links */
#define DKEY_TOKENS_PAYLOAD (QID_LEN + 4 + 1 + 2)
/* 502 tokens of 39 characters; RSA-8192: 1,024-byte signature, ~1,100 DER */
#define DKEY_OUT_MAX	    (DKEY_TOKENS_MAX * SPOOL_TRACK_TOKEN_LEN)
#define DKEY_REQ_MAX	    (DKEY_HDR_LEN + 1 + DKEY_NAME_MAX + DKEY_DIGEST_LEN)
#define DKEY_REP_MAX	    (DKEY_HDR_LEN + DKEY_OUT_MAX)

enum dkey_type {
	DKEY_Q_PUB = 1,
	DKEY_Q_RSA = 2,
	DKEY_Q_ED25519 = 3,
	DKEY_Q_TOKENS = 4,
	DKEY_R_OK = 0x81,
	DKEY_R_NO = 0x82
};

enum dkey_status {
	DKEY_OK,      /* a valid message */
	DKEY_EHDR,    /* short, wrong version or length differs */
	DKEY_ETYPE,   /* a type this side does not accept */
	DKEY_EPAYLOAD /* the payload does not fit the type (a bad name) */
};

struct dkey_req {
	uint8_t dq_type; /* DKEY_Q_* */
	char	dq_name[DKEY_NAME_MAX + 1];
	uint8_t dq_digest[DKEY_DIGEST_LEN]; /* not for DKEY_Q_PUB */
	/* DKEY_Q_TOKENS (dq_name ""): */
	char	 dq_qid[QID_SIZE];
	uint32_t dq_idx;
	uint8_t	 dq_what;  /* DKEY_TOK_* */
	uint16_t dq_links; /* click tokens of links 0 .. dq_links-1 */
};

/* How many tokens a DKEY_Q_TOKENS request asks for. */
size_t dkey_tokens_count(const struct dkey_req *);

struct dkey_reply {
	uint32_t       dr_id;
	uint8_t	       dr_type; /* DKEY_R_OK or DKEY_R_NO */
	const uint8_t *dr_out;	/* into the caller's buffer */
	size_t	       dr_len;
};

/* Is name a key file name a request may carry (see above)? */
bool		 dkey_name_ok(const char *name, size_t len);
size_t		 dkey_request_make(uint8_t *buf, size_t bufsz, uint32_t id,
	      const struct dkey_req *);
enum dkey_status dkey_request_parse(const void *buf, size_t len, uint32_t *id_r,
    struct dkey_req *r);
/* out may be NULL (len 0) for DKEY_R_NO. */
size_t dkey_reply_make(uint8_t *buf, size_t bufsz, uint8_t type, uint32_t id,
    const uint8_t *out, size_t len);
enum dkey_status dkey_reply_parse(const void *buf, size_t len,
    struct dkey_reply *r);

#endif
