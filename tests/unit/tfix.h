/*
 * tfix: fixtures shared by the unit tests that need a spool tree on disk.
 */
#ifndef SG_TFIX_H
#define SG_TFIX_H

#include <stddef.h>

struct conf;

/* rm -rf dir (a t_diag line if that fails); nothing if dir is "". */
void		 t_rmtree(const char *dir);
/*
 * A default configuration whose spool_dir is a fresh /tmp/NAME.XXXXXX,
 * written to dir (the previous one there, if any, is removed first). As
 * root the daemon users and the group are root: the configured ones may
 * not exist on a build machine. Aborts if it cannot.
 */
struct conf	*t_spool_conf(char *dir, size_t dirsz, const char *name);

#endif
