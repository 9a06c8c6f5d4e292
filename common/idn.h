/*
 * idn: internationalized domain names in their ASCII form (IDNA2008 with
 * the UTS #46 mapping, libidn2; the only file that includes <idn2.h>).
 * DNS knows only A-labels ("xn--bcher-kva.example"), and a suppression or
 * stop-list entry must match the same mailbox whichever form a client
 * wrote (smtpd accepts UTF-8 domains under SMTPUTF8). Pure: no I/O, no
 * logging; the caller's buffers only.
 */
#ifndef SG_IDN_H
#define SG_IDN_H

#include <stdbool.h>
#include <stddef.h>

/* Any byte >= 0x80 in s. */
bool idn_is_ascii(const char *s);

/*
 * domain in its ASCII form into dst: each label with non-ASCII characters
 * as its A-label (Unicode case folded, NFC), ASCII lower-cased. An
 * all-ASCII domain is only lower-cased; an address literal is written as
 * inet_ntop writes its address ("[192.0.2.1]", "[ipv6:2001:db8::1]").
 * 0, or -1 when domain is not a valid internationalized name (non-
 * transitional and then transitional processing both fail) or dst is too
 * small (dst is then "").
 */
int idn_domain_ascii(const char *domain, char *dst, size_t dstsz);

/*
 * The form under which an address is a suppression or stop-list key:
 * "Bob@Bücher.Example" -> "bob@xn--bcher-kva.example". The domain as
 * idn_domain_ascii gives it, the local part as written with ASCII letters
 * lower-cased (no Unicode case folding of a UTF-8 local part). An address
 * whose domain does not convert is only ASCII lower-cased: the same input
 * always gives the same key. -1 when dst is too small (dst is then "").
 */
int idn_addr_key(const char *addr, char *dst, size_t dstsz);

#endif
