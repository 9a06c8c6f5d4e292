/*
 * deliverd_smtp_int.h: the SMTP client's session, shared by its two files
 * (deliverd_smtp.c: connection, dialogue and transactions;
 * deliverd_smtp_tls.c: the TLS outcome, verification and REQUIRETLS).
 * Private to them.
 */
#ifndef SG_DELIVERD_SMTP_INT_H
#define SG_DELIVERD_SMTP_INT_H

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "smtp_reply.h"
#include "tls.h"

struct deliverd_smtp {
	const struct conf *s_cf;
	struct tls_ctx	  *s_tlsctx;
	struct tls_conn	  *s_tls;
	int		   s_fd;
	char		   s_key[DELIVERD_SMTP_KEY_MAX];
	/* the source of the next open (issue 15 item 6): family 0 = none */
	struct sockaddr_storage s_src;
	char			s_srctext[INET6_ADDRSTRLEN];
	char			s_helo[256]; /* "" = hostname */
	char			s_host[256];
	char			s_relay[256];
	char			s_tlsinfo[128];
	struct tls_policy	s_pol; /* tp_name points to s_tlsname */
	char			s_tlsname[256];
	char			s_tlsalt[256]; /* secure: the MX host, or "" */
	struct deliverd_tlsout	s_out; /* the last session's TLS outcome */
	bool		  s_pipelining, s_8bit, s_utf8, s_size, s_starttls;
	bool		  s_requiretls;
	bool		  s_dirty; /* a transaction did not end cleanly */
	bool		  s_probe; /* reused: RSET goes ahead of MAIL */
	int64_t		  s_nmsgs;
	struct smtp_reply s_rp;
	char		  s_rbuf[16384];
	size_t		  s_roff, s_rlen;
	struct buf	  s_wbuf;
	char		  s_err[256]; /* why the last I/O failed */
	enum bounce_stage s_stage;    /* where the last open failed */
};

/* kw is one of the space-separated MAIL FROM parameters (any case). */
bool deliverd_smtp_param(const char *params, const char *kw);
/* RFC 8460 4.4 facts of the connection just made (s_fd, to peer) and of
 * its last EHLO/HELO reply, kept in s_out until the next open. */
void deliverd_smtp_tls_addrs(struct deliverd_smtp *,
    const struct sockaddr_storage *peer);
void deliverd_smtp_tls_helo(struct deliverd_smtp *);
/* The TLS level's verdict as the session's outcome (no-policy-found). */
void deliverd_smtp_tls_level_outcome(struct deliverd_smtp *, enum tls_fail);
/* secure: also accept the MX host when it lies inside the next-hop domain. */
void deliverd_smtp_secure_alt(struct deliverd_smtp *, const char *host);
/* The session is TLS with a verified peer; false with the reason in why. */
bool deliverd_smtp_tls_verified(const struct deliverd_smtp *, char *why,
    size_t whysz);
/* REQUIRETLS cannot be met on this session: true with the reason. */
bool deliverd_smtp_requiretls_why(const struct deliverd_smtp *, char *why,
    size_t whysz);
/* REQUIRETLS met on this session (logs the verdict with the queue id). */
bool deliverd_smtp_requiretls_ok(const struct deliverd_smtp *, const char *qid);

#endif
