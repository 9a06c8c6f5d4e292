/*
 * log: one line per event, to stderr (default) or syslog (LOG_MAIL).
 * Lines about a message start with "QID: " or "NOQUEUE: " (STYLE G2); the
 * program name and pid are added by log_init(). Every function preserves
 * errno. The *warn and *fatal variants append ": strerror(errno)".
 * log_fatal* exit(1); log_panic aborts for a core file (STYLE E3).
 */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_dest { LOG_DEST_STDERR, LOG_DEST_SYSLOG };

void log_init(const char *progname, enum log_dest);
void log_set_dest(enum log_dest); /* after config load / SIGHUP */
void log_set_verbose(bool);
void log_set_procname(const char *); /* e.g. "smtpd/worker" */
bool log_is_verbose(void);

void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* An error the daemon lives with (LOG_ERR, "error: "), no errno. */
void log_errx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void log_fatalx(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* Exit with a given status (2 = configuration error, CONTRACT). */
void log_fatalx_status(int status, const char *, ...)
    __attribute__((format(printf, 2, 3), noreturn));
void log_panic(const char *, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Makes client-supplied text safe to log (STYLE G3): non-printable bytes
 * become \xHH, backslash becomes \\, the result is cut at dstsz-1 bytes
 * (with "..." when cut). Returns dst.
 */
const char *log_vis(char *dst, size_t dstsz, const char *src, size_t srclen);
#define LOG_VIS_MAX 512

#endif
