/*
 * deliverd: options, phase 1 (spool tree, trigger FIFO), privilege drop,
 * then the scheduler loop (deliverd_sched.c), which forks the delivery
 * workers and the callback sender.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "deliverd.h"
#include "dns.h"
#include "log.h"
#include "priv.h"
#include "sig.h"
#include "spool.h"
#include "tls.h"
#include "trigger.h"

static void
deliverd_usage(void)
{
	(void)fprintf(stderr, "usage: deliverd [-v] [-c file]\n");
	exit(2);
}

/* Values the generic loader cannot check. */
static void
deliverd_check_conf(const struct conf *cf)
{
	struct dns	*d;
	char		 err[512];

	/* relayhost's syntax is checked once, by conf_check_values() */
	if ((d = dns_new(cf->cf_dns_server, 5, err, sizeof(err))) == NULL)
		log_fatalx_status(2, "%s: dns_server: %s", cf->cf_path, err);
	dns_free(&d);
}

/*
 * relayhost_tls (issue 14), as the unprivileged user: the CA file must be
 * readable by the workers. Says once how the relayhost is reached.
 */
static void
deliverd_check_relay_tls(const struct conf *cf)
{
	struct tls_ctx	*t;
	char		 err[512], w[4200];

	tls_init();
	if (cf->cf_relayhost_tls_ca_file[0] != '\0') {
		if (access(cf->cf_relayhost_tls_ca_file, R_OK) == -1)
			log_fatalx_status(2, "%s: %s: %s", conf_where(cf,
			    "relayhost_tls_ca_file", w, sizeof(w)),
			    cf->cf_relayhost_tls_ca_file, strerror(errno));
		if ((t = tls_client_ctx_new(cf->cf_relayhost_tls_ca_file, err,
		    sizeof(err))) == NULL)
			log_fatalx_status(2, "%s: %s", conf_where(cf,
			    "relayhost_tls_ca_file", w, sizeof(w)), err);
		tls_ctx_free(&t);
	}
	if (cf->cf_relayhost[0] == '\0')
		return;
	if (strcmp(cf->cf_relayhost_tls, "verify") == 0)
		log_info("relayhost %s: TLS with a verified certificate required",
		    cf->cf_relayhost);
	else
		log_info("relayhost %s: relayhost_tls=%s: %s", cf->cf_relayhost,
		    cf->cf_relayhost_tls, strcmp(cf->cf_relayhost_tls, "encrypt") == 0 ?
		    "TLS required, the certificate is not checked" :
		    "the session may run in clear; set relayhost_tls = verify "
		    "for a relayhost across a network you do not control");
}

int
main(int argc, char *argv[])
{
	struct conf	*cf;
	const char	*path = NULL;
	char		 tpath[4096], why[4400];
	bool		 verbose = false;
	int		 ch, rc, tfd;

	log_init("deliverd", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:v")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			deliverd_usage();
		}
	}
	if (optind != argc)
		deliverd_usage();
	cf = conf_load_or_exit(path);
	log_set_verbose(verbose);
	log_set_dest(str_ieq(cf->cf_log, "syslog") ? LOG_DEST_SYSLOG : LOG_DEST_STDERR);
	deliverd_check_conf(cf);
	sig_init();

	/* Phase 1: the tree (owners and modes as root) and the trigger FIFO. */
	if ((rc = spool_tree_create_err(cf, why, sizeof(why))) != 0)
		log_fatalx("spool tree: %s", why);
	if (spool_trigger_path(tpath, sizeof(tpath), cf->cf_spool_dir) == -1 ||
	    (tfd = trigger_open(tpath)) == -1)
		log_fatal("trigger %s (refusing anything but a FIFO)", tpath);
	priv_drop(cf->cf_deliverd_user, cf->cf_group, NULL);
	deliverd_check_relay_tls(cf);

	/* Phase 2: the scheduler forks its children, then opens LMDB. */
	deliverd_sched_main(cf, tfd);
}
