/*
 * smtpd_lka_client: a worker's questions to the lookup process
 * (smtpd_lka.c) over its own socket (se_lka_fd). Synchronous with a
 * deadline: libsasl2's password callback cannot wait otherwise, and the
 * lka answers a pinned-address lookup in microseconds. Each request has
 * an id; a late reply to an earlier request that timed out is skipped.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "ev.h"
#include "lka_proto.h"
#include "log.h"
#include "smtpd.h"

/* Waits for the reply to id; LKA_R_TEMP on timeout or a broken socket. */
static enum lka_type
smtpd_lkac_wait(int fd, uint32_t id, struct lka_reply *r)
{
	uint8_t	      in[LKA_MSG_MAX + 1];
	int64_t	      end = ev_clock_ms() + SMTPD_LKA_TIMEOUT_MS, left;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t	      n;

	while ((left = end - ev_clock_ms()) > 0) {
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			break;
		n = recv(fd, in, sizeof(in), MSG_TRUNC | MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break; /* the lka is gone */
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

static enum lka_type
smtpd_lkac_ask(struct smtpd_env *env, const void *q, size_t qlen, uint32_t id,
    char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX])
{
	struct lka_reply r;
	enum lka_type	 t;

	if (qlen == 0)
		return LKA_R_NO; /* too long for any account */
	/* a hung lka must not stall every session of the worker in turn,
	 * nor a full socket buffer block it: no wait on send */
	if (env->se_lka_fd == -1 || ev_clock_ms() < env->se_lka_quiet ||
	    send(env->se_lka_fd, q, qlen, MSG_NOSIGNAL | MSG_DONTWAIT) !=
		(ssize_t)qlen)
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
smtpd_lka_pin(struct smtpd_env *env, const char *addr,
    char login[SPOOL_LOGIN_MAX], char tag[SPOOL_TAG_HEX])
{
	uint8_t	      q[LKA_MSG_MAX];
	uint32_t      id = ++env->se_lka_id;
	enum lka_type t;

	t = smtpd_lkac_ask(env, q, lka_query_pin(q, sizeof(q), id, addr), id,
	    login, tag);
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
	t = smtpd_lkac_ask(env, q, qlen, id, login, tag);
	explicit_bzero(q, sizeof(q));
	return t == LKA_R_OK ? 0 : t == LKA_R_NO ? 1 : -1;
}
