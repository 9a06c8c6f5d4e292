/*
 * smtpd_peers: the worker sockets of smtpd's lookup (smtpd_lka.c) and key
 * (smtpd_key.c) processes. The master hands the helper its end of each
 * new worker's SOCK_SEQPACKET pair over a control socket (SCM_RIGHTS,
 * smtpd_peers_attach); smtpd_peers_run watches them in a common/ev.c
 * loop, calls pp_serve when one is readable, closes it when pp_serve says
 * false, and stops when the master is gone, or when the helper was told
 * to retire and no worker socket is left. A worker waits for its answer
 * with smtpd_peers_recv (bounded). Nothing here allocates; the caller
 * owns struct smtpd_peers and logs a refused socket (pp_refuse).
 */
#ifndef SG_SMTPD_PEERS_H
#define SG_SMTPD_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ev.h"

struct smtpd_peers {
	/* set by the caller */
	const char *pp_name;	    /* "lka", "key": the log lines' prefix */
	int	    pp_ctl;	    /* the control socket from the master */
	size_t	    pp_max;	    /* worker sockets at most */
	unsigned    pp_retire_sigs; /* the SIG_* flags that make it retire */
	bool pp_ctl_exit; /* control socket closed: exit(0) now, not retire */
	/* one request from fd; false: close that worker's socket */
	bool (*pp_serve)(void *arg, int fd);
	/* logs a refused worker socket: full (pp_max), else errno is set */
	void (*pp_refuse)(void *arg, size_t npeers, bool full);
	void *pp_arg;
	/* the loop's own */
	struct ev      *pp_ev;
	struct ev_timer pp_tick; /* is the master still there? */
	size_t		pp_npeers;
	bool		pp_retiring;
};

/* Serves the worker sockets until it stops; log_fatal if no loop. */
void smtpd_peers_run(struct smtpd_peers *);
/*
 * The master: a new worker's socket pair; its other end goes to the
 * helper over ctl (-1: none). Returns the worker's end, or -1 (logged)
 * if there is no pair. If the helper is not reached it logs "NAME:
 * cannot reach UNREACHABLE" and still returns the worker's end.
 */
int smtpd_peers_attach(int ctl, const char *name, const char *unreachable);
/*
 * A worker: one datagram from fd into buf (MSG_TRUNC: the return is its
 * whole length) before the ev_clock_ms() deadline end; 0 if the helper
 * closed the socket; -1 with errno (ETIMEDOUT at the deadline).
 */
ssize_t smtpd_peers_recv(int fd, int64_t end, void *buf, size_t bufsz);

#endif
