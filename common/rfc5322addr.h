/*
 * rfc5322addr: the addresses in an (unfolded) From:/To:/Cc: value
 * (RFC 5322 3.4 with the obsolete forms of 4.4). Pure (STYLE R1): no I/O,
 * no allocation, results in caller-owned fixed arrays.
 *
 * Understands display names (atoms, quoted strings, RFC 2047 encoded words,
 * which are decoded to UTF-8 for utf-8, us-ascii and iso-8859-1 and kept
 * as written otherwise), comments anywhere (skipped), angle addresses with
 * obsolete routes, groups ("name: a@b, c@d;"), and bare addr-specs. The
 * address is returned without CFWS: local-part as written (quotes kept),
 * "@", domain (or [literal]). It is never lower-cased.
 */
#ifndef SG_RFC5322ADDR_H
#define SG_RFC5322ADDR_H

#include <stddef.h>

#define RFC5322ADDR_MAX	     512 /* address incl. NUL (= SPOOL_ADDR_MAX) */
#define RFC5322ADDR_NAME_MAX 256 /* display name incl. NUL; cut if longer */

enum rfc5322addr_status {
	RFC5322ADDR_OK,	    /* ra_addr holds an address */
	RFC5322ADDR_NOADDR, /* a mailbox without an address ("john", "<>") */
	RFC5322ADDR_END,    /* no more mailboxes */
	RFC5322ADDR_SYNTAX, /* unparseable (unterminated quote/comment/angle...) */
	RFC5322ADDR_TOOLONG, /* the address does not fit ra_addr */
	RFC5322ADDR_JUNK     /* strict only: more than a mailbox (see below) */
};

struct rfc5322addr {
	char ra_addr[RFC5322ADDR_MAX];
	char ra_name[RFC5322ADDR_NAME_MAX];
};

/*
 * Next mailbox of v[0..len) from *pos (start with 0). Empty list elements
 * and group names are skipped. After SYNTAX or TOOLONG, *pos is at len.
 */
enum rfc5322addr_status rfc5322addr_next(const char *v, size_t len, size_t *pos,
    struct rfc5322addr *r);
/*
 * The same for From: and Sender: (RFC 5322 3.6.2: a mailbox-list, no
 * groups), refusing what the lenient reading skips: JUNK for anything but
 * CFWS between an angle address and the next ',' ("<a@b> c@d",
 * "Boss <a@b> <c@d>"), a display name that is not a phrase ("c@d <a@b>"),
 * words before a bare address ("John john@x") and a group ("g: a@b;").
 * After JUNK, *pos is at len.
 */
enum rfc5322addr_status rfc5322addr_next_strict(const char *v, size_t len,
    size_t *pos, struct rfc5322addr *r);
/*
 * The first mailbox with an address: OK, or NOADDR when there is none,
 * or SYNTAX/TOOLONG when the value breaks before one is found.
 */
enum rfc5322addr_status rfc5322addr_first(const char *v, size_t len,
    struct rfc5322addr *r);
const char	       *rfc5322addr_status_name(enum rfc5322addr_status);

#endif
