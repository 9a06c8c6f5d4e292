#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char   *log_progname = "smtpgate";
static char	     log_procname[64] = "smtpgate";
static enum log_dest log_dest = LOG_DEST_STDERR;
static bool	     log_verbose;

void
log_init(const char *progname, enum log_dest dest)
{
	log_progname = progname;
	(void)snprintf(log_procname, sizeof(log_procname), "%s", progname);
	log_set_dest(dest);
	tzset();
}

void
log_set_dest(enum log_dest dest)
{
	if (dest == LOG_DEST_SYSLOG && log_dest != LOG_DEST_SYSLOG)
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (dest != LOG_DEST_SYSLOG && log_dest == LOG_DEST_SYSLOG)
		closelog();
	log_dest = dest;
}

void
log_set_verbose(bool v)
{
	log_verbose = v;
}

bool
log_is_verbose(void)
{
	return log_verbose;
}

void
log_set_procname(const char *name)
{
	(void)snprintf(log_procname, sizeof(log_procname), "%s", name);
}

static void
log_vlog(int pri, int errnum, const char *fmt, va_list ap)
{
	char		msg[4096], line[4096 + 160];
	int		n;
	struct timespec ts;
	struct tm	tm;
	char		tbuf[32];

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n >= 0 && errnum != 0 && (size_t)n < sizeof(msg))
		(void)snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
		    strerror(errnum));
	if (log_dest == LOG_DEST_SYSLOG) {
		syslog(pri, "%s", msg);
		/* the reason a daemon exits is also shown to whoever started it */
		if (pri <= LOG_CRIT)
			(void)dprintf(STDERR_FILENO, "%s[%ld]: fatal: %s\n",
			    log_procname, (long)getpid(), msg);
		return;
	}
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	(void)gmtime_r(&ts.tv_sec, &tm);
	(void)strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	/*
	 * One write(2) per line so that lines of concurrent processes do not
	 * interleave (the log is opened O_APPEND). Formatted here rather than
	 * with dprintf(), which costs an fstat and an lseek per line.
	 */
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld]: %s%s\n", tbuf,
	    ts.tv_nsec / 1000000, log_procname, (long)getpid(),
	    pri == LOG_WARNING	  ? "warning: "
		: pri == LOG_ERR  ? "error: "
		: pri <= LOG_CRIT ? "fatal: "
				  : "",
	    msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n'; /* truncated, still one line */
	}
	if (write(STDERR_FILENO, line, (size_t)n) == -1) {
		/* nowhere left to report it */
	}
}

#define LOG_BODY(pri, errnum) \
	do { \
		int	saved = errno; \
		va_list ap; \
		va_start(ap, fmt); \
		log_vlog((pri), (errnum), fmt, ap); \
		va_end(ap); \
		errno = saved; \
	} while (0)

void
log_debug(const char *fmt, ...)
{
	if (!log_verbose)
		return;
	LOG_BODY(LOG_DEBUG, 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, 0);
}

void
log_warn(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, errno);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, 0);
}

void
log_errx(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, 0);
}

void
log_fatal(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, errno);
	exit(1);
}

void
log_fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, 0);
	exit(1);
}

void
log_fatalx_status(int status, const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, 0);
	exit(status);
}

void
log_panic(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, 0);
	abort();
}

const char *
log_vis(char *dst, size_t dstsz, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t		  i, o = 0;
	unsigned char	  c;

	if (dstsz < 8) {
		if (dstsz > 0)
			dst[0] = '\0';
		return dst;
	}
	for (i = 0; i < srclen; i++) {
		c = (unsigned char)src[i];
		if (o + 4 + 4 >= dstsz) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '\\') {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else if (c < 0x20 || c >= 0x7f) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else
			dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return dst;
}
