/*
 * smtpd_lka_peer: whose connection a pinned-address lookup is about. The
 * worker hands the lka the client's socket with the question (SCM_RIGHTS)
 * and the lka reads the address from it: a taken-over worker that claims
 * a pinned address (an account's only credential) gets nothing unless it
 * holds a connection from that address, accepted on one of the listeners
 * (an outgoing connection to the address cannot have a listener's port
 * as its own: root holds those). The descriptor is only inspected, never
 * read or written, and closed at once by the caller.
 */
#include "config.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "smtpd.h"

static int
smtpd_lka_peer_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(
		    ((const struct sockaddr_in *)(const void *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(
		    ((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
	return -1;
}

int
smtpd_lka_peer_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t		len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	return smtpd_lka_peer_port(&ss);
}

/* The connection's local port is one of the listening sockets'. */
static bool
smtpd_lka_peer_listener(const int *ports, size_t nports, int cfd)
{
	int    port;
	size_t i;

	if ((port = smtpd_lka_peer_local_port(cfd)) <= 0)
		return false;
	for (i = 0; i < nports; i++)
		if (ports[i] == port)
			return true;
	return false;
}

const char *
smtpd_lka_peer_addr(const int *ports, size_t nports, int cfd, char *addr,
    size_t addrsz)
{
	struct sockaddr_storage ss;
	socklen_t		len = sizeof(ss);
	int			type = 0;
	socklen_t		tlen = sizeof(type);
	char			a[NI_MAXHOST];
	const char	       *p = a;

	if (cfd == -1)
		return "no connection passed";
	if (getsockopt(cfd, SOL_SOCKET, SO_TYPE, &type, &tlen) == -1 ||
	    type != SOCK_STREAM ||
	    getpeername(cfd, (struct sockaddr *)&ss, &len) == -1 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return "not a TCP connection";
	if (!smtpd_lka_peer_listener(ports, nports, cfd))
		return "not a connection to a listener";
	if (getnameinfo((struct sockaddr *)&ss, len, a, sizeof(a), NULL, 0,
		NI_NUMERICHOST) != 0)
		return "no address";
	if (strncmp(a, "::ffff:", 7) == 0 && strchr(a + 7, '.') != NULL)
		p = a + 7; /* IPv4-mapped: as the worker names it */
	if (str_copy(addr, addrsz, p) == -1)
		return "no address";
	return NULL;
}
