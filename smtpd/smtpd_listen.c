/*
 * smtpd_listen: the listening sockets, one set per worker (SO_REUSEPORT).
 *
 * For each `listen` address the master binds G sockets with SO_REUSEPORT
 * ("groups" 0 .. G-1, G = smtpd_workers, at most SMTPD_GROUPS_MAX), as
 * root before any worker starts, and keeps them all open for its whole
 * life. The kernel spreads new connections over a group's sockets by a
 * hash of the connection's addresses and ports, so each connection wakes
 * the one worker that polls its socket, not every idle worker (with one
 * shared socket under poll(2), all but one of them got EAGAIN).
 *
 * Worker w of n (its kids slot, 0-based) polls the groups s with
 * s % n == w (or group w % G when n > G). A worker that dies, is killed
 * or retires leaves its sockets open in the master: what the kernel
 * queued on them waits for the replacement in the same slot, which gets
 * the same sockets back, and is never reset. Until then, and while a
 * worker is full, the other workers with room poll that group too
 * ("help", checked every SMTPD_FULL_CHECK_MS from the board).
 *
 * SIGHUP keeps the sockets; a larger smtpd_workers binds more groups; a
 * smaller one keeps them all and lets some workers poll more than one.
 * Layout: ls[s * nbase + b] is group s of base listener b.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "smtpd.h"

static int
smtpd_listen_socket(const struct conf *cf, const struct conf_listen *cl,
    const char *host, const char *port, bool fatal)
{
	struct addrinfo hints, *res = NULL;
	int		fd, one = 1, rc;
	char		w[4200];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		log_fatalx_status(2, "%s: %s:%s: %s",
		    conf_where_listen(cf, cl, w, sizeof(w)), host, port,
		    gai_strerror(rc));
	fd = socket(res->ai_family,
	    res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd != -1) {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (res->ai_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof(one));
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
			sizeof(one)) == -1 ||
		    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
		    listen(fd, 1024) == -1) {
			rc = errno;
			(void)close(fd);
			fd = -1;
			errno = rc;
		}
	}
	freeaddrinfo(res);
	if (fd == -1 && fatal)
		log_fatalx_status(2, "%s: %s:%s: %s",
		    conf_where_listen(cf, cl, w, sizeof(w)), host, port,
		    strerror(errno));
	if (fd == -1)
		log_warn("%s: %s:%s", conf_where_listen(cf, cl, w, sizeof(w)),
		    host, port);
	return fd;
}

static void
smtpd_listen_name(struct smtpd_listener *l, const char *host, const char *port,
    enum conf_tls tls)
{
	l->sl_tls = tls;
	(void)snprintf(l->sl_name, sizeof(l->sl_name), "%s%s%s:%s",
	    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
	    port);
}

/* The base listeners' addresses, in order ("*": 0.0.0.0, then ::). */
size_t
smtpd_listen_count(const struct conf *cf)
{
	size_t i, n = 0;

	for (i = 0; i < cf->cf_nlisten; i++)
		n += strcmp(cf->cf_listen[i].cl_addr, "*") == 0 ||
			cf->cf_listen[i].cl_addr[0] == '\0'
		    ? 2
		    : 1;
	return n;
}

/* Groups for n workers: n, at most SMTPD_GROUPS_MAX and
 * SMTPD_MAX_SOCKETS in all. */
size_t
smtpd_listen_groups(size_t nbase, size_t nworkers)
{
	size_t g = nworkers < 1 ? 1 : nworkers;

	if (g > SMTPD_GROUPS_MAX)
		g = SMTPD_GROUPS_MAX;
	if (nbase > 0 && g * nbase > SMTPD_MAX_SOCKETS)
		g = SMTPD_MAX_SOCKETS / nbase;
	return g < 1 ? 1 : g;
}

/*
 * Another process holding the address (a second smtpd: SO_REUSEPORT
 * would let it share the port with the same user) fails, as before.
 */
static void
smtpd_listen_probe(const struct conf *cf, const struct conf_listen *cl,
    const char *host)
{
	struct addrinfo hints, *res = NULL;
	int		fd, one = 1, bad;
	char		w[4200];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, cl->cl_port, &hints, &res) != 0)
		return; /* smtpd_listen_socket says why */
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0)) !=
	    -1) {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (res->ai_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof(one));
		bad = bind(fd, res->ai_addr, res->ai_addrlen) == -1 ? errno : 0;
		(void)close(fd);
		if (bad != 0)
			log_fatalx_status(2, "%s: %s:%s: %s",
			    conf_where_listen(cf, cl, w, sizeof(w)), host,
			    cl->cl_port, strerror(bad));
	}
	freeaddrinfo(res);
}

/*
 * Binds group `group` of every listener into ls[group * nbase ..]. The
 * first group's failures are fatal (exit 2: a bad address or port); a
 * later group's (SIGHUP) returns -1 and closes what it bound.
 */
int
smtpd_listen_bind(const struct conf *cf, struct smtpd_listener *ls,
    size_t nbase, size_t group)
{
	struct smtpd_listener	 *l = &ls[group * nbase];
	size_t			  i, b = 0, k;
	const struct conf_listen *cl;
	bool			  any;

	for (i = 0; i < cf->cf_nlisten; i++) {
		cl = &cf->cf_listen[i];
		any = strcmp(cl->cl_addr, "*") == 0 || cl->cl_addr[0] == '\0';

		for (k = 0; k < (any ? 2u : 1u); k++, b++) {
			const char *h = any ? (k == 0 ? "0.0.0.0" : "::")
					    : cl->cl_addr;

			if (group == 0)
				smtpd_listen_probe(cf, cl, h);
			l[b].sl_fd = smtpd_listen_socket(cf, cl, h, cl->cl_port,
			    group == 0);
			if (l[b].sl_fd == -1) {
				while (b-- > 0)
					(void)close(l[b].sl_fd);
				return -1;
			}
			smtpd_listen_name(&l[b], h, cl->cl_port, cl->cl_tls);
		}
	}
	if (b != nbase)
		log_panic("listeners: %zu bound, %zu counted", b, nbase);
	return 0;
}

/* Who polls what: packed into the board (w, n, G; see the top). */
unsigned
smtpd_listen_own(size_t w, size_t n, size_t g)
{
	return (unsigned)(w & 0x3ff) | (unsigned)(n & 0x3ff) << 10 |
	    (unsigned)(g & 0x7f) << 20 | 1u << 30;
}

bool
smtpd_listen_owns(unsigned own, size_t s)
{
	size_t w = own & 0x3ff, n = own >> 10 & 0x3ff, g = own >> 20 & 0x7f;

	if (!(own & 1u << 30) || n == 0 || s >= g)
		return false;
	return g >= n ? s % n == w : s == w % g;
}
