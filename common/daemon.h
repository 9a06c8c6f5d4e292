/*
 * daemon: the skeleton every daemon's main() calls (STYLE M1), as
 * Postfix's single_server_main: options (-c FILE, -v) -> configuration
 * -> log destination -> checks the loader cannot make -> signals ->
 * the spool tree (created or verified) -> bind (phase 1, privileged:
 * sockets, FIFOs, keys) -> tzset -> privilege drop -> run (phase 2: state,
 * the loop). -v takes effect before the configuration is read; the log
 * destination is decided by daemon_log_dest() at start and on reload.
 * Every failure before run is fatal (exit 2 for usage and configuration).
 */
#ifndef SG_DAEMON_H
#define SG_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct conf;

struct daemon {
	const char  *d_name;
	const char  *d_path; /* -c FILE, or NULL: conf_default_path() */
	struct conf *d_cf;   /* run owns it from then on */
	bool	     d_verbose;
	void	    *d_arg; /* the spec's ds_arg */
};

struct daemon_spec {
	const char *ds_name;
	/* values the generic loader cannot check (NULL: none) */
	void (*ds_check)(struct daemon *);
	/* creates or verifies the spool tree: spool_tree_create_err (NULL: none) */
	int (*ds_spool)(const struct conf *, char *why, size_t whysz);
	/* phase 1, privileged (NULL: nothing to open) */
	void (*ds_bind)(struct daemon *);
	/* whom to drop to with the configured group; NULL or a NULL answer:
	 * keep the ids (a master that never reads client bytes, STYLE P4) */
	const char *(*ds_user)(const struct conf *);
	/* phase 2: state, the loop; returns the exit status */
	int (*ds_run)(struct daemon *);
	void *ds_arg;
};

/* Runs the skeleton and exits with ds_run's status. */
__attribute__((noreturn)) void daemon_main(int argc, char **argv,
    const struct daemon_spec *);
/*
 * spool_dir/NAME.pid with this process's id (spoolctl status reads it and
 * checks /proc/PID/comm, so a stale file is harmless); daemon_main writes
 * it after ds_bind. A failure is a warning.
 */
void daemon_pidfile_write(const struct conf *, const char *name);
/* "log = syslog" (any case) is syslog; anything else stderr. */
enum log_dest daemon_log_dest(const struct conf *);

#endif
