/*
 * landlock: a process confines itself (Landlock, the kernel's
 * unprivileged file-access sandbox) once it has opened what it needs at
 * start. The processes that face the network run as the user that owns
 * keys/ (the DKIM private keys) and the database's key files; uid and
 * mode bits cannot keep those from a process taken over through a parser
 * bug, a Landlock domain can (landlock.c).
 *
 * A profile is a list of paths and what may be done beneath them; the
 * system's read-only trees (/etc, /usr, /lib, /lib64, /bin, /sbin) and
 * /dev/null, /dev/urandom, /dev/random are always in it. Nothing else may
 * be read, written, created, removed or executed. Only the calling thread
 * and the threads and processes it starts later are confined: call it
 * before starting threads.
 */
#ifndef SMTPGATE_LANDLOCK_H
#define SMTPGATE_LANDLOCK_H

#include <stddef.h>

#define LANDLOCK_READ  0x1 /* read files, list directories */
#define LANDLOCK_WRITE 0x2 /* write (and truncate) existing files */
#define LANDLOCK_MAKE  0x4 /* create, rename, remove files in a directory */

struct landlock_path {
	const char *lp_path; /* file or directory; "" or absent: skipped */
	unsigned    lp_access;
};

/* Confines the calling thread to the profile (paths, plus the system
 * trees). A system tree that holds spool_dir is not granted (logged once,
 * naming who). 1 confined (why: the ABI), 0 this kernel has no Landlock
 * (why: the reason, naming who: the caller logs it once), -1 error (why). */
int landlock_confine(const char *spool_dir, const struct landlock_path *paths,
    size_t npaths, const char *who, char *why, size_t whysz);

#endif
