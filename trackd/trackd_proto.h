/*
 * trackd_proto: the messages between trackd's HTTP process (libmicrohttpd,
 * unprivileged, no database, no key) and its backend (trackd_backend.c:
 * the tracking key, LMDB). One message per SOCK_SEQPACKET datagram, the
 * same frame as smtpd's lka_proto:
 *
 *   version u8 (1) | type u8 | length u16 BE | id u32 BE | payload[length]
 *
 * Requests (HTTP process -> backend):
 *   TP_Q_HIT     kind u8 ('o' 'c' 'u') | method u8 (enum trackd_method:
 *                GET, HEAD, or POST for 'u' only) | token length u8 |
 *                client length u8 | user agent length u16 BE | token
 *                ([A-Za-z0-9_-], 1..TP_TOKEN_MAX) | client (the numeric
 *                peer address, [0-9A-Fa-f:.], 0..TP_CLIENT_MAX; the
 *                backend cuts it to /24 or /48) | user agent (no NUL and
 *                no control character, 0..TP_UA_MAX; 0 = none)
 *   TP_Q_RELOAD  empty: re-read the configuration (SIGHUP)
 * Replies (backend -> HTTP process), with the request's id:
 *   TP_R_ANSWER  status u16 BE (100..599) | flags u8 (TP_F_*) | content
 *                type u8 (TP_CT_*) | body length u16 BE | location length
 *                u16 BE | body | location (printable ASCII, only with 302)
 *   TP_R_RELOADED  log destination u8 (0 stderr, 1 syslog)
 *
 * Pure, bounded, no allocation (STYLE R1): decoded fields point into the
 * caller's buffer and are not NUL-terminated. Parsers return enum
 * tp_status; encoders return the bytes written, or 0 if a field is out of
 * bounds or the message does not fit.
 */
#ifndef SG_TRACKD_PROTO_H
#define SG_TRACKD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define TP_VERSION	1
#define TP_HDR_LEN	8
#define TP_TOKEN_MAX	253  /* TRACKD_URL_MAX less "/k/" */
#define TP_CLIENT_MAX	45   /* INET6_ADDRSTRLEN less its NUL */
#define TP_UA_MAX	255  /* TRACKD_UA_MAX less its NUL */
#define TP_BODY_MAX	8192 /* TRACKD_PAGE_MAX */
#define TP_LOC_MAX	8192
#define TP_HIT_FIXED	6
#define TP_ANSWER_FIXED 8
#define TP_QUERY_MAX \
	(TP_HDR_LEN + TP_HIT_FIXED + TP_TOKEN_MAX + TP_CLIENT_MAX + TP_UA_MAX)
#define TP_REPLY_MAX (TP_HDR_LEN + TP_ANSWER_FIXED + TP_BODY_MAX + TP_LOC_MAX)

enum tp_type {
	TP_Q_HIT = 1,
	TP_Q_RELOAD = 2,
	TP_R_ANSWER = 0x81,
	TP_R_RELOADED = 0x82
};

/* the methods on the wire: enum trackd_method's values */
#define TP_M_GET  0
#define TP_M_HEAD 1
#define TP_M_POST 2

#define TP_F_NOCACHE   0x01 /* Cache-Control: no-store ... */
#define TP_F_ALLOW_GH  0x02 /* 405: Allow: GET, HEAD */
#define TP_F_ALLOW_GHP 0x04 /* 405: Allow: GET, HEAD, POST */
#define TP_F_ALL       0x07

enum tp_ctype { TP_CT_TEXT = 0, TP_CT_GIF = 1, TP_CT_HTML = 2 };

enum tp_status {
	TP_OK,	    /* a valid message */
	TP_EHDR,    /* short, long, wrong version or length */
	TP_ETYPE,   /* a type this side does not accept */
	TP_EPAYLOAD /* the payload does not fit the type */
};

struct tp_query {
	enum tp_type q_type;
	uint32_t     q_id;
	char	     q_kind; /* TP_Q_HIT: 'o', 'c' or 'u' */
	uint8_t	     q_method;
	const char  *q_tok;
	size_t	     q_toklen;
	const char  *q_client;
	size_t	     q_clientlen;
	const char  *q_ua;
	size_t	     q_ualen;
};

struct tp_reply {
	enum tp_type   r_type;
	uint32_t       r_id;
	uint16_t       r_status; /* TP_R_ANSWER */
	uint8_t	       r_flags;
	uint8_t	       r_ctype;
	const uint8_t *r_body;
	size_t	       r_bodylen;
	const char    *r_loc;
	size_t	       r_loclen;
	uint8_t	       r_logdest; /* TP_R_RELOADED */
};

/* The backend's side: one datagram of exactly len bytes. */
enum tp_status tp_query_parse(const void *buf, size_t len,
    struct tp_query *q_r);
/* The HTTP process's side. */
enum tp_status tp_reply_parse(const void *buf, size_t len,
    struct tp_reply *r_r);

/* q->q_type TP_Q_HIT or TP_Q_RELOAD (then only q_id counts). */
size_t tp_query_make(void *out, size_t outsz, const struct tp_query *q);
/* r->r_type TP_R_ANSWER or TP_R_RELOADED. */
size_t tp_reply_make(void *out, size_t outsz, const struct tp_reply *r);

/* The HTTP process's routing, pure: "/k/..." with k in "ocu" gives
 * *kind_r and *tok_r, and 0 if the rest is a token (1 to TP_TOKEN_MAX
 * characters of [A-Za-z0-9_-]), else 1; any other path -1. */
int tp_route(const char *path, char *kind_r, const char **tok_r);

#endif
