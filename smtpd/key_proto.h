/*
 * key_proto: the messages between an smtpd worker and the key process
 * (smtpd_key.c, OpenSMTPD's ca). One message per SOCK_SEQPACKET datagram:
 *
 *   version u8 (1) | type u8 | length u16 BE | id u32 BE | payload[length]
 *
 * A request's type is its enum tls_sign_kind; its payload is the digest
 * algorithm (enum tls_sign_md, u8) and the digest or block (1 ..
 * TLS_SIGN_MAX bytes): one per request. Replies carry the request's id:
 * KEY_R_OK (payload: the signature) or KEY_R_NO (empty: refused or
 * failed).
 *
 * Pure, bounded, no allocation (STYLE R1). Encoders return the bytes
 * written or 0 when the message does not fit; parsers return an enum
 * key_status and fill the caller's struct.
 */
#ifndef SG_KEY_PROTO_H
#define SG_KEY_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "peer_hdr.h"
#include "tls_key.h"

#define KEY_VERSION 1
#define KEY_HDR_LEN PEER_HDR_LEN
#define KEY_MSG_MAX (KEY_HDR_LEN + 1 + TLS_SIGN_MAX)

enum key_type { KEY_R_OK = 0x81, KEY_R_NO = 0x82 };

enum key_status {
	KEY_OK,	  /* a valid message */
	KEY_EHDR, /* short, wrong version or length differs from the datagram */
	KEY_ETYPE,   /* a type this side does not accept */
	KEY_EPAYLOAD /* the payload does not fit the type */
};

struct key_reply {
	uint32_t       kr_id;
	uint8_t	       kr_type; /* KEY_R_OK or KEY_R_NO */
	const uint8_t *kr_sig;	/* into the caller's buffer */
	size_t	       kr_len;
};

size_t		key_request_make(uint8_t *buf, size_t bufsz, uint32_t id,
	     const struct tls_sign *);
enum key_status key_request_parse(const void *buf, size_t len, uint32_t *id_r,
    struct tls_sign *r);
/* sig may be NULL (len 0) for KEY_R_NO. */
size_t key_reply_make(uint8_t *buf, size_t bufsz, uint8_t type, uint32_t id,
    const uint8_t *sig, size_t len);
enum key_status key_reply_parse(const void *buf, size_t len,
    struct key_reply *r);

#endif
