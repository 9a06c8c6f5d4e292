/*
 * smtpd_lka_client: a worker's questions to the lookup process
 * (smtpd_lka.c) over its own socket (se_lka_fd). Synchronous with a
 * deadline: libsasl2's password callback cannot wait otherwise, and the
 * lka answers a pinned-address lookup in microseconds. Each request has
 * an id; a late reply to an earlier request that timed out is skipped.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "ev.h"
#include "lka_proto.h"
#include "log.h"
#include "smtpd.h"
#include "smtpd_peers.h"

/* Waits for the reply to id; LKA_R_TEMP on timeout or a broken socket. */
static enum lka_type
smtpd_lkac_wait(int fd, uint32_t id, struct lka_reply *r)
{
	uint8_t in[LKA_MSG_MAX + 1];
	int64_t end = ev_clock_ms() + SMTPD_LKA_TIMEOUT_MS;
	ssize_t n;

	/* 0 or -1: the lka is gone, or late */
	while ((n = smtpd_peers_recv(fd, end, in, sizeof(in))) > 0) {
		if ((size_t)n > LKA_MSG_MAX ||
		    lka_reply_parse(in, (size_t)n, r) != LKA_OK) {
			log_warnx("lka: malformed reply");
			break;
		}
		if (r->lr_id == id)
			return r->lr_type;
	}
	return LKA_R_TEMP;
}

/* The request, with passfd (unless -1) as SCM_RIGHTS; never waits. */
static ssize_t
smtpd_lkac_send(int fd, const void *q, size_t qlen, int passfd)
{
	union {
		struct cmsghdr hdr;
		char	       buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr	mh;
	struct iovec	iov = { .iov_base = (void *)(uintptr_t)q,
		   .iov_len = qlen };
	struct cmsghdr *c;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (passfd != -1) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &passfd, sizeof(int));
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static enum lka_type
smtpd_lkac_ask(struct smtpd_env *env, const void *q, size_t qlen, int passfd,
    uint32_t id, char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX])
{
	struct lka_reply r;
	enum lka_type	 t;

	if (qlen == 0)
		return LKA_R_NO; /* too long for any account */
	/* a hung lka must not stall every session of the worker in turn,
	 * nor a full socket buffer block it: no wait on send */
	if (env->se_lka_fd == -1 || ev_clock_ms() < env->se_lka_quiet ||
	    smtpd_lkac_send(env->se_lka_fd, q, qlen, passfd) != (ssize_t)qlen)
		return LKA_R_TEMP;
	t = smtpd_lkac_wait(env->se_lka_fd, id, &r);
	if (t == LKA_R_TEMP)
		env->se_lka_quiet = ev_clock_ms() + SMTPD_LKA_QUIET_MS;
	if (t == LKA_R_OK) {
		(void)str_copy(login, SPOOL_LOGIN_MAX, r.lr_login);
		(void)str_copy(tag, SPOOL_TAG_HEX, r.lr_tag);
	}
	return t;
}

int
smtpd_lka_pin(struct smtpd_env *env, int cfd, const char *addr,
    char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX])
{
	uint8_t	      q[LKA_MSG_MAX];
	uint32_t      id = ++env->se_lka_id;
	enum lka_type t;

	t = smtpd_lkac_ask(env, q, lka_query_pin(q, sizeof(q), id, addr), cfd,
	    id, login, tag);
	return t == LKA_R_OK ? 0 : t == LKA_R_NO ? 1 : -1;
}

int
smtpd_lka_auth(struct smtpd_env *env, const char *user, const char *pass,
    size_t passlen, char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX])
{
	uint8_t	      q[LKA_MSG_MAX];
	uint32_t      id = ++env->se_lka_id;
	size_t	      qlen;
	enum lka_type t;

	qlen = lka_query_auth(q, sizeof(q), id, user, strlen(user), pass,
	    passlen);
	t = smtpd_lkac_ask(env, q, qlen, -1, id, login, tag);
	explicit_bzero(q, sizeof(q));
	return t == LKA_R_OK ? 0 : t == LKA_R_NO ? 1 : -1;
}
