/* Unit tests for common/daemon: the skeleton's order, options, failures. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "tap.h"

static int  trace_fd = -1; /* the child writes one letter per step */
static bool fail_spool;

static void
step(char c)
{
	if (write(trace_fd, &c, 1) != 1)
		_exit(99);
}

static void
t_dmn_check(struct daemon *d)
{
	/* -v is in force before the configuration was read */
	step(log_is_verbose() ? 'V' : 'c');
	if (d->d_cf == NULL)
		_exit(98);
}

static int
t_spool(const struct conf *cf, char *why, size_t whysz)
{
	(void)cf;
	step('s');
	if (fail_spool) {
		(void)snprintf(why, whysz, "no such tree");
		return -1;
	}
	return 0;
}

static void
t_bind(struct daemon *d)
{
	(void)d;
	step('b');
}

static const char *
t_user(const struct conf *cf)
{
	(void)cf;
	step('u');
	return NULL; /* keep the ids: the test may run as root */
}

static int
t_dmn_run(struct daemon *d)
{
	step('r');
	return *(int *)d->d_arg;
}

static int run_status = 7;

static const struct daemon_spec spec = {
	.ds_name = "t_daemon",
	.ds_check = t_dmn_check,
	.ds_spool = t_spool,
	.ds_bind = t_bind,
	.ds_user = t_user,
	.ds_run = t_dmn_run,
	.ds_arg = &run_status,
};

/* Runs daemon_main in a child; returns its exit status, the steps in trace. */
static int
run(char **argv, char *trace, size_t tracesz)
{
	int	p[2], st = -1, argc = 0;
	size_t	len;
	ssize_t n;
	pid_t	pid;

	while (argv[argc] != NULL)
		argc++;
	if (pipe(p) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		(void)close(p[0]);
		trace_fd = p[1];
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(97);
		daemon_main(argc, argv, &spec);
	}
	(void)close(p[1]);
	/* until the child is gone (EOF): bounded by tracesz */
	for (len = 0; len < tracesz - 1; len += (size_t)n)
		if ((n = read(p[0], trace + len, tracesz - 1 - len)) <= 0)
			break;
	trace[len] = '\0';
	(void)close(p[0]);
	(void)waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char conf_path[64];

/* path: 64 bytes */
static void
write_conf(char *path, const char *text)
{
	int fd;

	(void)snprintf(path, 64, "/tmp/t_daemon.XXXXXX");
	if ((fd = mkstemp(path)) == -1 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    close(fd) == -1)
		t_ok(false, "write %s", path);
}

static void
t_order(void)
{
	char  tr[32];
	char *plain[] = { "t_daemon", "-c", conf_path, NULL };
	char *verbose[] = { "t_daemon", "-v", "-c", conf_path, NULL };

	t_int_eq(run(plain, tr, sizeof(tr)), 7, "exit status is ds_run's");
	t_str_eq(tr, "csbur", "check, spool, bind, user, run: in this order");
	t_int_eq(run(verbose, tr, sizeof(tr)), 7, "-v: same status");
	t_str_eq(tr, "Vsbur", "-v in force from the start");
}

static void
t_failures(void)
{
	char  tr[32];
	char *badopt[] = { "t_daemon", "-x", NULL };
	char *extra[] = { "t_daemon", "-c", conf_path, "more", NULL };
	char *noconf[] = { "t_daemon", "-c", "/nonexistent/t_daemon.conf",
		NULL };
	char *plain[] = { "t_daemon", "-c", conf_path, NULL };

	t_int_eq(run(badopt, tr, sizeof(tr)), 2, "unknown option: 2");
	t_str_eq(tr, "", "nothing ran");
	t_int_eq(run(extra, tr, sizeof(tr)), 2, "operand: 2");
	t_int_eq(run(noconf, tr, sizeof(tr)), 2, "unreadable configuration: 2");
	t_str_eq(tr, "", "nothing ran");
	fail_spool = true;
	t_int_eq(run(plain, tr, sizeof(tr)), 1, "spool tree failure is fatal");
	t_str_eq(tr, "cs", "nothing binds after it");
	fail_spool = false;
}

static void
t_log_dest(void)
{
	static const struct {
		const char   *text;
		enum log_dest want;
	} cases[] = {
		{ "spool_dir = /tmp/t_daemon\nlog = syslog\n",
		    LOG_DEST_SYSLOG },
		{ "spool_dir = /tmp/t_daemon\nlog = stderr\n",
		    LOG_DEST_STDERR },
		{ "spool_dir = /tmp/t_daemon\n", LOG_DEST_STDERR },
	};
	struct conf *cf;
	char	     err[512], path[64];
	size_t	     i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_conf(path, cases[i].text);
		cf = conf_load(path, err, sizeof(err));
		(void)unlink(path);
		if (!t_ok(cf != NULL, "load case %zu (%s)", i, cf ? "" : err))
			continue;
		t_int_eq(daemon_log_dest(cf), cases[i].want, "log destination");
		conf_free(&cf);
	}
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "order", t_order },
		{ "failures", t_failures },
		{ "log_dest", t_log_dest },
	};
	int rc;

	log_init("t_daemon", LOG_DEST_STDERR);
	write_conf(conf_path, "spool_dir = /tmp/t_daemon\n");
	rc = T_RUN(cases);
	(void)unlink(conf_path);
	return rc;
}
