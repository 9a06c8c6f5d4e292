/*
 * lka_proto: the messages between an smtpd worker and the lookup process
 * (smtpd_lka.c, OpenSMTPD's lka). One message per SOCK_SEQPACKET datagram:
 *
 *   version u8 (1) | type u8 | length u16 BE | id u32 BE | payload[length]
 *
 * Requests: LKA_Q_PIN (payload: the client's numeric address; the
 * client's connection rides along as SCM_RIGHTS and the lka believes
 * only that, smtpd_lka_peer.c) and
 * LKA_Q_AUTH (payload: user length u8, user, password). Replies carry the
 * request's id: LKA_R_OK (payload: account login, NUL, the account's
 * envelope tag), LKA_R_NO (no such pinned address / wrong user or
 * password: the same reply for both), LKA_R_TEMP (try later). Never a
 * password hash.
 *
 * Pure, bounded, no allocation (STYLE R1): the decoded fields point into
 * the caller's buffer (user/password/address are not NUL-terminated, the
 * reply's strings are copied into fixed arrays). Parsers return enum
 * lka_status; encoders return the number of bytes written or 0 if the
 * message does not fit / a field is too long.
 */
#ifndef SG_LKA_PROTO_H
#define SG_LKA_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "peer_hdr.h"

#define LKA_VERSION	1
#define LKA_HDR_LEN	PEER_HDR_LEN
#define LKA_PAYLOAD_MAX 1400 /* a user, a password, an address: small */
#define LKA_MSG_MAX	(LKA_HDR_LEN + LKA_PAYLOAD_MAX)
#define LKA_USER_MAX	255 /* bytes of a login in a request */
#define LKA_PASS_MAX	1024
#define LKA_ADDR_MAX	63
#define LKA_LOGIN_MAX	256 /* SPOOL_LOGIN_MAX, with its NUL */
#define LKA_TAG_MAX	65  /* hex HMAC-SHA256, with its NUL */

enum lka_type {
	LKA_Q_PIN = 1,
	LKA_Q_AUTH = 2,
	LKA_R_OK = 0x81,
	LKA_R_NO = 0x82,
	LKA_R_TEMP = 0x83
};

enum lka_status {
	LKA_OK,	  /* a valid message */
	LKA_EHDR, /* short, wrong version or length differs from the datagram */
	LKA_ETYPE,   /* a type this side does not accept */
	LKA_EPAYLOAD /* the payload does not fit the type */
};

struct lka_msg {
	uint8_t	       lg_type;
	uint32_t       lg_id;
	const uint8_t *lg_payload;
	size_t	       lg_len;
};

struct lka_query {
	enum lka_type lq_type;
	uint32_t      lq_id;
	const char   *lq_addr; /* LKA_Q_PIN */
	size_t	      lq_addrlen;
	const char   *lq_user; /* LKA_Q_AUTH */
	size_t	      lq_userlen;
	const char   *lq_pass;
	size_t	      lq_passlen;
};

struct lka_reply {
	enum lka_type lr_type;
	uint32_t      lr_id;
	char	      lr_login[LKA_LOGIN_MAX]; /* LKA_R_OK only */
	char	      lr_tag[LKA_TAG_MAX];
};

/* One datagram of exactly len bytes. */
enum lka_status lka_msg_parse(const void *buf, size_t len, struct lka_msg *m_r);
/* A worker's request (the lookup process's side). */
enum lka_status lka_query_parse(const void *buf, size_t len,
    struct lka_query *q_r);
/* The lookup process's reply (the worker's side). */
enum lka_status lka_reply_parse(const void *buf, size_t len,
    struct lka_reply *r_r);

size_t lka_query_pin(void *out, size_t outsz, uint32_t id, const char *addr);
size_t lka_query_auth(void *out, size_t outsz, uint32_t id, const char *user,
    size_t userlen, const char *pass, size_t passlen);
/* login/tag are used only for LKA_R_OK. */
size_t lka_reply_make(void *out, size_t outsz, enum lka_type, uint32_t id,
    const char *login, const char *tag);

#endif
