/*
 * smtpd_peers: the worker sockets of the lookup and key processes
 * (smtpd_peers.h): taking them from the master, serving them, retiring.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sig.h"
#include "smtpd_peers.h"

/* Room for the one descriptor a control message carries. */
union smtpd_peers_cmsg {
	struct cmsghdr hdr;
	char	       buf[CMSG_SPACE(sizeof(int))];
};

/*
 * Retiring (the master stops or reloads): the workers finish their
 * sessions first and may still ask; the helper goes once their sockets
 * are closed, or at once when the master is gone.
 */
static void
smtpd_peers_stop_check(struct smtpd_peers *pp)
{
	if (getppid() == 1 || (pp->pp_retiring && pp->pp_npeers == 0))
		ev_break(pp->pp_ev);
}

/* A worker's socket is readable: answer, or drop the socket. */
static void
smtpd_peers_peer(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct smtpd_peers *pp = arg;

	(void)revents;
	if (pp->pp_serve(pp->pp_arg, fd))
		return;
	ev_fd_del(e, fd);
	(void)close(fd); /* a socket: nothing to lose */
	pp->pp_npeers--;
	smtpd_peers_stop_check(pp);
}

/* A control message of one byte (*byte) and one descriptor (in cm). */
static void
smtpd_peers_msghdr(struct msghdr *mh, struct iovec *iov, char *byte,
    union smtpd_peers_cmsg *cm)
{
	memset(mh, 0, sizeof(*mh));
	memset(cm, 0, sizeof(*cm));
	iov->iov_base = byte;
	iov->iov_len = 1;
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	mh->msg_control = cm->buf;
	mh->msg_controllen = sizeof(cm->buf);
}

/* The control socket closed: the master reloads or is gone. */
static void
smtpd_peers_ctl_closed(struct smtpd_peers *pp)
{
	if (pp->pp_ctl_exit)
		exit(0);
	ev_fd_del(pp->pp_ev, pp->pp_ctl);
	pp->pp_retiring = true;
	smtpd_peers_stop_check(pp);
}

/* A new worker's socket from the master, or the master gone. */
static void
smtpd_peers_take(struct ev *e, int ctl, unsigned revents, void *arg)
{
	struct smtpd_peers    *pp = arg;
	union smtpd_peers_cmsg cm;
	struct msghdr	       mh;
	struct iovec	       iov;
	struct cmsghdr	      *c;
	char		       b;
	int		       fd;
	ssize_t		       n;

	(void)revents;
	smtpd_peers_msghdr(&mh, &iov, &b, &cm);
	if ((n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)) == 0) {
		smtpd_peers_ctl_closed(pp);
		return;
	}
	if (n == -1 || (c = CMSG_FIRSTHDR(&mh)) == NULL ||
	    c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	if (pp->pp_npeers >= pp->pp_max ||
	    ev_fd_add(e, fd, EV_READ, smtpd_peers_peer, pp) == -1) {
		pp->pp_refuse(pp->pp_arg, pp->pp_npeers,
		    pp->pp_npeers >= pp->pp_max);
		(void)close(fd);
		return;
	}
	pp->pp_npeers++;
}

static void
smtpd_peers_sig(struct ev *e, unsigned sigs, void *arg)
{
	struct smtpd_peers *pp = arg;

	(void)e;
	if (sigs & pp->pp_retire_sigs)
		pp->pp_retiring = true;
	smtpd_peers_stop_check(pp);
}

static void
smtpd_peers_tick(struct ev *e, struct ev_timer *t, void *arg)
{
	(void)e;
	(void)t;
	smtpd_peers_stop_check(arg);
}

void
smtpd_peers_run(struct smtpd_peers *pp)
{
	if ((pp->pp_ev = ev_new(pp->pp_max + 4, 4)) == NULL ||
	    ev_signal(pp->pp_ev, smtpd_peers_sig, pp) == -1 ||
	    ev_fd_add(pp->pp_ev, pp->pp_ctl, EV_READ, smtpd_peers_take, pp) ==
		-1)
		log_fatal("%s: event loop", pp->pp_name);
	ev_timer_init(&pp->pp_tick, smtpd_peers_tick, pp);
	(void)ev_timer_arm(pp->pp_ev, &pp->pp_tick, 1000, 1000);
	ev_run(pp->pp_ev);
}

int
smtpd_peers_attach(int ctl, const char *name, const char *unreachable)
{
	union smtpd_peers_cmsg cm;
	struct msghdr	       mh;
	struct iovec	       iov;
	struct cmsghdr	      *c;
	char		       byte = 0;
	int		       sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("%s: socketpair", name);
		return -1;
	}
	smtpd_peers_msghdr(&mh, &iov, &byte, &cm);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &sp[1], sizeof(int));
	if (ctl == -1 || sendmsg(ctl, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		log_warnx("%s: cannot reach %s", name, unreachable);
	(void)close(sp[1]); /* the helper has its copy, or nobody needs it */
	return sp[0];
}

ssize_t
smtpd_peers_recv(int fd, int64_t end, void *buf, size_t bufsz)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t	      left;
	ssize_t	      n;

	while ((left = end - ev_clock_ms()) > 0) {
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			return -1;
		n = recv(fd, buf, bufsz, MSG_TRUNC | MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		return n;
	}
	errno = ETIMEDOUT;
	return -1;
}
