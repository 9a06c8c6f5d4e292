/*
 * srcaddr: the source addresses deliverd binds its connections to (issue
 * 15 item 6). A source is written "ADDR [HELO-NAME]" (the source_address
 * key, an account's --source-address) or is the NAME of a pool: every
 * source_pool line "NAME ADDR [HELO-NAME]" with that NAME. No HELO name
 * means the configured hostname. Pure: parsing and picking, no I/O, no
 * allocation; functions return 0, or -1 with one line in why.
 */
#ifndef SG_SRCADDR_H
#define SG_SRCADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <netinet/in.h>

#define SRCADDR_NAME_MAX   64  /* pool name, NUL included */
#define SRCADDR_HELO_MAX   256 /* HELO name, NUL included */
#define SRCADDR_TEXT_MAX   (INET6_ADDRSTRLEN + SRCADDR_HELO_MAX) /* a spec */
#define SRCADDR_POOL_LINES 256 /* source_pool lines at most */

struct srcaddr {
	struct sockaddr_storage so_ss;			   /* port 0 */
	char			so_addr[INET6_ADDRSTRLEN]; /* numeric text */
	char			so_helo[SRCADDR_HELO_MAX]; /* "" = hostname */
};

/* "ADDR [HELO-NAME]": an IPv4 or IPv6 address, then optionally a host name. */
int srcaddr_parse(const char *s, struct srcaddr *r, char *why, size_t whysz);
/* A source_pool line "NAME ADDR [HELO-NAME]". */
int srcaddr_parse_pool(const char *line, char name[SRCADDR_NAME_MAX],
    struct srcaddr *r, char *why, size_t whysz);
/* A pool name: a letter, then [A-Za-z0-9_.-], 63 at most, not an address. */
bool srcaddr_is_name(const char *);
/* Every line a valid pool line, at most SRCADDR_POOL_LINES of them; on
 * -1, *bad_r is the index of the offending line. */
int srcaddr_check_pools(char *const *lines, size_t n, size_t *bad_r, char *why,
    size_t whysz);
/* How many lines belong to pool name. */
size_t srcaddr_pool_size(char *const *lines, size_t n, const char *name);
/*
 * The source for spec (an address with an optional HELO name, or a pool
 * name) given the source_pool lines. For a pool: the entry whose address
 * is prefer (the source of a connection in hand, may be NULL) if the pool
 * has it, else entry pick modulo the pool's size. -1: a pool that no line
 * names, or a spec that does not parse.
 */
int srcaddr_pick(const char *spec, char *const *lines, size_t n,
    const char *prefer, unsigned pick, struct srcaddr *r, char *why,
    size_t whysz);

#endif
