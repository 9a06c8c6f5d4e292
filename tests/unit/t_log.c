/* Unit tests for common/log: line format, errno text, verbosity, log_vis,
 * and the terminal calls (in child processes). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

static char capbuf[8192];

/* Runs fn with stderr redirected to a temp file; returns what it wrote. */
static const char *
capture(void (*fn)(void))
{
	FILE  *tmp = tmpfile();
	int    saved = dup(STDERR_FILENO);
	size_t n;

	capbuf[0] = '\0';
	if (tmp == NULL || saved == -1)
		return capbuf;
	(void)dup2(fileno(tmp), STDERR_FILENO);
	fn();
	(void)dup2(saved, STDERR_FILENO);
	(void)close(saved);
	rewind(tmp);
	n = fread(capbuf, 1, sizeof(capbuf) - 1, tmp);
	capbuf[n] = '\0';
	fclose(tmp);
	return capbuf;
}

static void
emit_info(void)
{
	log_info("%s: from=<%s>, size=%d", "0123456789ABCDEF0123", "a@b", 42);
}

static void
emit_warn(void)
{
	errno = ENOENT;
	log_warn("NOQUEUE: open %s", "/x");
}

static int errno_after;

static void
emit_errno(void)
{
	errno = EACCES;
	log_warn("x");
	log_info("y");
	errno_after = errno;
}

static void
emit_debug(void)
{
	log_debug("hidden unless verbose");
}

static void
emit_long(void)
{
	char big[6000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_warnx("%s", big);
}

static void
t_format(void)
{
	const char *s;
	char	    want[128];

	s = capture(emit_info);
	(void)snprintf(want, sizeof(want),
	    " t_log[%ld]: 0123456789ABCDEF0123: from=<a@b>, size=42\n",
	    (long)getpid());
	t_ok(strstr(s, want) != NULL, "QID first, program[pid]: %s", s);
	t_ok(strlen(s) > 24 && s[4] == '-' && s[10] == 'T' && s[19] == '.' &&
		s[23] == 'Z',
	    "UTC timestamp with milliseconds");
	t_ok(strchr(s, '\n') == s + strlen(s) - 1, "exactly one line");

	s = capture(emit_warn);
	t_ok(strstr(s,
		 "warning: NOQUEUE: open /x: No such file or directory\n") !=
		NULL,
	    "warn appends strerror: %s", s);
	(void)capture(emit_errno);
	t_int_eq(errno_after, EACCES, "errno preserved across log calls");

	log_set_verbose(false);
	t_str_eq(capture(emit_debug), "", "debug suppressed");
	log_set_verbose(true);
	t_ok(strstr(capture(emit_debug), "hidden unless verbose") != NULL,
	    "debug with -v");
	t_ok(log_is_verbose(), "log_is_verbose");
	log_set_verbose(false);

	log_set_procname("t_log/worker");
	t_ok(strstr(capture(emit_info), " t_log/worker[") != NULL, "procname");
	log_set_procname("t_log");

	s = capture(emit_long);
	t_ok(strlen(s) < 4200 && s[strlen(s) - 1] == '\n',
	    "long message cut, still one line");
}

static int
do_fatalx(void *arg)
{
	(void)arg;
	log_fatalx("bad");
}

static int
do_fatal_status(void *arg)
{
	(void)arg;
	log_fatalx_status(2, "config");
}

static int
do_panic(void *arg)
{
	struct sigaction sa;

	(void)arg;
	/* no core file from the test */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGABRT, &sa, NULL);
	log_panic("invariant");
}

static void
t_terminal(void)
{
	int st;

	st = t_child(do_fatalx, NULL);
	t_ok(WIFEXITED(st) && WEXITSTATUS(st) == 1, "log_fatalx exits 1");
	st = t_child(do_fatal_status, NULL);
	t_ok(WIFEXITED(st) && WEXITSTATUS(st) == 2,
	    "log_fatalx_status(2) exits 2");
	st = t_child(do_panic, NULL);
	t_ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "log_panic aborts");
}

static void
t_vis(void)
{
	char d[64], small[4];

	t_str_eq(log_vis(d, sizeof(d), "a\r\nb\\", 5), "a\\x0d\\x0ab\\\\",
	    "escapes");
	t_str_eq(log_vis(d, sizeof(d), "\x7f\xff\0z", 4), "\\x7f\\xff\\x00z",
	    "high, DEL and NUL bytes");
	t_str_eq(log_vis(d, sizeof(d), "", 0), "", "empty");
	log_vis(d, 16, "0123456789abcdefghij", 20);
	t_ok(strlen(d) < 16 && strstr(d, "...") != NULL, "cut with ...: %s", d);
	log_vis(d, 16, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	t_ok(strlen(d) < 16, "escaped input cut within size: %s", d);
	t_str_eq(log_vis(small, sizeof(small), "abc", 3), "",
	    "tiny buffer gives empty string");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "format", t_format },
		{ "terminal", t_terminal },
		{ "vis", t_vis },
	};

	log_init("t_log", LOG_DEST_STDERR);
	return T_RUN(cases);
}
