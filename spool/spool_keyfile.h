/*
 * spool_keyfile: the secret key files in the spool's db/ (envelope.key,
 * track.key), internal to libspool. A key is created once with
 * getrandom(2), written beside its final name and link(2)ed into place,
 * so concurrent first users agree on one key; a file of the wrong size,
 * type or mode is never used (EPERM).
 */
#ifndef SG_SPOOL_KEYFILE_H
#define SG_SPOOL_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct spool_keyfile {
	const char *kf_name;   /* the file's name in db/ */
	size_t	    kf_len;    /* the key's (and the file's) size */
	mode_t	    kf_mode;   /* the mode a new file gets */
	mode_t	    kf_forbid; /* mode bits that make a file unusable */
	bool	    kf_own;    /* the file must belong to the euid */
};

/*
 * Reads the key into key (kf_len bytes); when it does not exist and
 * create is set, makes it first. 0 or an errno value (ENOENT: absent and
 * not created).
 */
int spool_keyfile_load(const struct spool_keyfile *, const char *spool_dir,
    bool create, unsigned char *key);

#endif
