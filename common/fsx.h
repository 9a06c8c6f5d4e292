/*
 * fsx: durable file operations (STYLE M6). All return 0, or -1 with errno.
 * A file is durable once its data and the directory entry naming it are
 * on disk: fsync the file, rename into place, fsync the directory.
 */
#ifndef SG_FSX_H
#define SG_FSX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* write(2) until done, retrying EINTR. */
int fsx_write_all(int fd, const void *, size_t);
/* read(2) up to n bytes, retrying EINTR; returns bytes read or -1. */
ssize_t fsx_read_full(int fd, void *, size_t);
/* fsync a directory by path. */
int fsx_fsync_dir(const char *dir);
int fsx_fsync_dirfd(int dirfd);
/* rename(from, to) then fsync the directories of `to` (and `from` if it differs). */
int fsx_rename_durable(const char *from, const char *to);
/* Writes data to dir/name via dir/.name.tmp: write, fsync, rename, fsync(dir). */
int fsx_write_durable(const char *dir, const char *name, const void *, size_t,
    mode_t);
/* mkdir -p with a mode for the last component; existing is fine. */
int fsx_mkdirs(const char *path, mode_t mode);
/*
 * Opens rel ("a/b/c") below dirfd without following a symbolic link in any
 * component (each opened O_NOFOLLOW, the intermediate ones O_DIRECTORY);
 * flags and mode are for the last one. A link gives ELOOP or ENOTDIR:
 * for root acting in a directory that a daemon user can write.
 */
int fsx_open_beneath(int dirfd, const char *rel, int flags, mode_t mode);
/*
 * fsx_write_durable into an open directory, safe for root in a directory
 * another user can write: the temporary name is fresh (O_EXCL|O_NOFOLLOW,
 * never an existing file or link), it is given owner uid:gid (unless uid
 * is (uid_t)-1) and mode through its descriptor, then renamed into place.
 */
int fsx_write_durable_at(int dirfd, const char *name, const void *, size_t,
    mode_t, uid_t, gid_t);
/*
 * The temporaries of fsx_write_durable (".NAME.tmp") and
 * fsx_write_durable_at (".NAME.XXXXXXXX.tmp") that a process killed
 * between their creation and the rename left in dir: the regular files
 * of those names whose last change is at least max_age seconds old are
 * removed (h-astate: nothing else ever would). 0 and *n_r, or -1 with
 * errno if dir cannot be read.
 */
int fsx_sweep_tmp(const char *dir, time_t max_age, size_t *n_r);
/* The regular files of dir (not followed through links) older than
 * max_age whose name want accepts (NULL: every one) removed; their number
 * in *n_r. 0, or -1 with errno when dir cannot be read. */
int fsx_sweep(const char *dir, time_t max_age, bool (*want)(const char *),
    size_t *n_r);

/* Reads a whole small file (at most max bytes) into a malloc'd NUL-terminated buffer. */
int fsx_read_file(const char *path, size_t max, char **data_r, size_t *len_r);

#endif
