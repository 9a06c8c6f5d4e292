/*
 * priv: the only place that changes user ids (STYLE 4.7). priv_drop() is a
 * no-op (with a log line) when not root: the development and test mode.
 * As root it looks the user up, optionally chroots, sets groups to the
 * user's primary group plus `group` (when non-NULL and existing), then gid
 * and uid, and proves root cannot be regained; any failure is fatal.
 */
#ifndef SG_PRIV_H
#define SG_PRIV_H

#include <stdbool.h>
#include <sys/types.h>

void priv_drop(const char *user, const char *group, const char *jail);
/* The same with group as the only group (gid and supplementary), whatever
 * the user's own: smtpd's workers, the injector run by root. */
void priv_drop_only(const char *user, const char *group, const char *jail);
/* Looks up uid/gid of a user; -1 if unknown. */
int  priv_lookup(const char *user, uid_t *uid_r, gid_t *gid_r);
int  priv_lookup_group(const char *group, gid_t *gid_r);
bool priv_is_root(void);

#endif
