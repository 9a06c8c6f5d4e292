/*
 * daemon: see daemon.h. The three mains used to differ in when -v took
 * effect (before the load, after it, at once) and in how "log = syslog"
 * was compared (strcmp vs case-insensitive); here both are done once.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "buf.h"
#include "daemon.h"
#include "fsx.h"
#include "log.h"
#include "metrics.h"
#include "priv.h"
#include "sig.h"

static __attribute__((noreturn)) void
daemon_usage(const char *name)
{
	(void)fprintf(stderr, "usage: %s [-v] [-c file]\n", name);
	exit(2);
}

enum log_dest
daemon_log_dest(const struct conf *cf)
{
	return str_ieq(cf->cf_log, "syslog") ? LOG_DEST_SYSLOG
					     : LOG_DEST_STDERR;
}

static void
daemon_args(struct daemon *d, int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "c:v")) != -1) {
		switch (ch) {
		case 'c':
			d->d_path = optarg;
			break;
		case 'v':
			d->d_verbose = true;
			break;
		default:
			daemon_usage(d->d_name);
		}
	}
	if (optind != argc)
		daemon_usage(d->d_name);
}

void
daemon_pidfile_write(const struct conf *cf, const char *name)
{
	char file[64], pid[32];
	int  dfd, n;

	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	(void)snprintf(file, sizeof(file), "%s.pid", name);
	/* a directory the daemon users can write: nothing is followed */
	if ((dfd = open(cf->cf_spool_dir,
		 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fsx_write_durable_at(dfd, file, pid, (size_t)n, 0644, (uid_t)-1,
		(gid_t)-1) == -1)
		log_warn("%s/%s (spoolctl status will call %s down)",
		    cf->cf_spool_dir, file, name);
	if (dfd != -1)
		(void)close(dfd);
}

void
daemon_main(int argc, char **argv, const struct daemon_spec *ds)
{
	struct daemon d = { .d_name = ds->ds_name, .d_arg = ds->ds_arg };
	const char   *user;
	char	      why[4400];

	log_init(ds->ds_name, LOG_DEST_STDERR);
	daemon_args(&d, argc, argv);
	log_set_verbose(d.d_verbose);
	d.d_cf = conf_load_or_exit(d.d_path);
	log_set_dest(daemon_log_dest(d.d_cf));
	if (ds->ds_check != NULL)
		ds->ds_check(&d);
	sig_init();

	/* Phase 1, privileged: the tree (owners and modes as root), then
	 * what the daemon opens before the drop. */
	if (ds->ds_spool != NULL && ds->ds_spool(d.d_cf, why, sizeof(why)) != 0)
		log_fatalx("spool tree: %s", why);
	/* the counters (common/metrics.h): mapped before the drop and forks */
	if (ds->ds_spool != NULL &&
	    metrics_attach(d.d_cf->cf_spool_dir, ds->ds_name) == -1)
		log_warn("%s/%s (metrics off)", d.d_cf->cf_spool_dir,
		    METRICS_FILE);
	if (ds->ds_bind != NULL)
		ds->ds_bind(&d);
	daemon_pidfile_write(d.d_cf, ds->ds_name);
	tzset();
	user = ds->ds_user != NULL ? ds->ds_user(d.d_cf) : NULL;
	if (user != NULL)
		priv_drop(user, d.d_cf->cf_group, NULL);

	/* Phase 2, unprivileged (or in each child of a master). */
	exit(ds->ds_run(&d));
}
