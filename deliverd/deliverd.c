/*
 * deliverd: main() is common/daemon.c's skeleton: options, the checks
 * the loader cannot make (dns_server), phase 1 (spool tree, trigger
 * FIFO), privilege drop, then the scheduler (deliverd_sched.c), which
 * forks the delivery workers and the callback sender.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "daemon.h"
#include "deliverd.h"
#include "deliverd_dest.h"
#include "dns.h"
#include "fsx.h"
#include "log.h"
#include "spool.h"
#include "tls.h"
#include "trigger.h"

/* Values the generic loader cannot check. */
static void
deliverd_check_conf(const struct conf *cf)
{
	struct dns *d;
	char	    err[512];

	/* relayhost's syntax is checked once, by conf_check_values() */
	if ((d = dns_new(cf->cf_dns_server, 5, err, sizeof(err))) == NULL)
		log_fatalx_status(2, "%s: dns_server: %s", cf->cf_path, err);
	/* dnssec = validate: libunbound and its trust anchor */
	if (strcmp(cf->cf_dnssec, "validate") == 0 &&
	    dns_set_validate(d, cf->cf_dns_server, cf->cf_dnssec_trust_anchor,
		err, sizeof(err)) == -1)
		log_fatalx_status(2, "%s: dnssec: %s", cf->cf_path, err);
	dns_free(&d);
	deliverd_dest_check_conf(cf);
}

/*
 * relayhost_tls (issue 14), as the unprivileged user: the CA file must be
 * readable by the workers. Says once how the relayhost is reached.
 */
/* A CA file key (relayhost_tls_ca_file, tls_ca_file): readable, loads. */
static void
deliverd_check_ca_file(const struct conf *cf, const char *key, const char *path)
{
	struct tls_ctx *t;
	char		err[512], w[4200];

	if (path[0] == '\0')
		return;
	if (access(path, R_OK) == -1)
		log_fatalx_status(2, "%s: %s: %s",
		    conf_where(cf, key, w, sizeof(w)), path, strerror(errno));
	if ((t = tls_client_ctx_new(path, err, sizeof(err))) == NULL)
		log_fatalx_status(2, "%s: %s",
		    conf_where(cf, key, w, sizeof(w)), err);
	tls_ctx_free(&t);
}

/* relayhost_tls = dane: DNSSEC on, and a host name to look up. */
static void
deliverd_check_relay_dane(const struct conf *cf)
{
	char	      host[256], port[8], w[4200];
	unsigned char a[16];

	if (strcmp(cf->cf_dnssec, "off") == 0)
		log_fatalx_status(2,
		    "%s: dane needs dnssec = trust-ad or validate",
		    conf_where(cf, "relayhost_tls", w, sizeof(w)));
	if (conf_split_hostport(cf->cf_relayhost, host, sizeof(host), port,
		sizeof(port), "25") == -1 ||
	    !conf_hostname_ok(host) || inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1)
		log_fatalx_status(2,
		    "%s: dane needs the relayhost as a host name (its TLSA "
		    "records are _PORT._tcp.HOST), not \"%s\"",
		    conf_where(cf, "relayhost_tls", w, sizeof(w)),
		    cf->cf_relayhost);
	log_info("relayhost %s: relayhost_tls=dane: TLS checked against the "
		 "relayhost's TLSA records when they are DNSSEC-secure, else "
		 "as may",
	    cf->cf_relayhost);
}

static void
deliverd_check_relay_tls(const struct conf *cf)
{
	tls_init();
	deliverd_check_ca_file(cf, "relayhost_tls_ca_file",
	    cf->cf_relayhost_tls_ca_file);
	deliverd_check_ca_file(cf, "tls_ca_file", cf->cf_tls_ca_file);
	if (cf->cf_relayhost[0] == '\0')
		return;
	if (strcmp(cf->cf_relayhost_tls, "dane") == 0) {
		deliverd_check_relay_dane(cf);
		return;
	}
	if (strcmp(cf->cf_relayhost_tls, "verify") == 0)
		log_info(
		    "relayhost %s: TLS with a verified certificate required",
		    cf->cf_relayhost);
	else
		log_info("relayhost %s: relayhost_tls=%s: %s", cf->cf_relayhost,
		    cf->cf_relayhost_tls,
		    strcmp(cf->cf_relayhost_tls, "encrypt") == 0
			? "TLS required, the certificate is not checked"
			: "the session may run in clear; set relayhost_tls = "
			  "verify "
			  "for a relayhost across a network you do not "
			  "control");
}

/* Phase 1: the trigger FIFO (the tree is the skeleton's). */
static void
deliverd_bind(struct daemon *d)
{
	int *tfd = d->d_arg;
	char tpath[4096];

	if (spool_trigger_path(tpath, sizeof(tpath), d->d_cf->cf_spool_dir) ==
		-1 ||
	    (*tfd = trigger_open(tpath)) == -1)
		log_fatal("trigger %s (refusing anything but a FIFO)", tpath);
}

static const char *
deliverd_user(const struct conf *cf)
{
	return cf->cf_deliverd_user;
}

/* Temporaries of a killed `spoolctl dkim add` or clusterd key write in
 * keys/, which only deliverd_user may list (fsx_sweep_tmp). */
static void
deliverd_sweep_keys(const struct conf *cf)
{
	char   dir[4096];
	size_t n;

	if (spool_path(dir, sizeof(dir), cf->cf_spool_dir, SPOOL_KEYS, NULL) ==
	    -1)
		return;
	if (fsx_sweep_tmp(dir, cf->cf_stale_tmp_age, &n) == -1)
		log_warn("sweep %s", dir);
	else if (n > 0)
		log_info("removed %zu stale temporary file(s) from %s", n, dir);
}

/* Phase 2: the scheduler forks its children, then opens LMDB. */
static int
deliverd_run(struct daemon *d)
{
	deliverd_check_relay_tls(d->d_cf);
	deliverd_sweep_keys(d->d_cf);
	deliverd_key_start(d->d_cf); /* before any worker */
	deliverd_sched_main(d->d_cf, *(int *)d->d_arg);
}

static void
deliverd_check(struct daemon *d)
{
	deliverd_check_conf(d->d_cf);
	(void)deliverd_bounce_load(d->d_cf, true);
}

int
main(int argc, char *argv[])
{
	static int			tfd = -1;
	static const struct daemon_spec spec = {
		.ds_name = "deliverd",
		.ds_check = deliverd_check,
		.ds_spool = spool_tree_create_err,
		.ds_bind = deliverd_bind,
		.ds_user = deliverd_user,
		.ds_run = deliverd_run,
		.ds_arg = &tfd,
	};

	daemon_main(argc, argv, &spec);
}
