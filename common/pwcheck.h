/*
 * pwcheck: a password against the crypt(3) hash of an account, in the same
 * time whether or not the account exists (issue 14 item 6). For an unknown
 * user, an account without a password or a hash crypt(3) cannot compute
 * (a locked "*" or "!"), a dummy hash of a random password is computed
 * instead: made once by pwcheck_init() with the scheme and cost spoolctl
 * gives real ones (yescrypt, crypt_gensalt_ra("$y$", 0)). No I/O besides
 * the random source; nothing is logged. Small on purpose: it moves with
 * whichever process checks passwords.
 */
#ifndef SG_PWCHECK_H
#define SG_PWCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Makes the dummy hash (once; later calls do nothing): 0, or -1 with errno.
 * Call it before forking workers so they share it; pwcheck_ok() makes it
 * itself when it was not called. */
int pwcheck_init(void);
/* True when pass[0..passlen) matches hash; hash NULL (no such account) or
 * unusable computes the dummy and is false. */
bool pwcheck_ok(const char *hash, const char *pass, size_t passlen);

#endif
