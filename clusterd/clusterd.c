/*
 * clusterd (issue 19; clusterd.8): a node's synchronisation with the
 * PostgreSQL database that the gateways of a cluster share. main() is
 * common/daemon.c's skeleton; without cluster_dsn it logs one line and
 * exits 0. It runs as spoold_user (it writes LMDB) and turns common/ev's
 * loop: the PostgreSQL socket (LISTEN smtpgate_policy) and timers:
 *   1 s   publish the policy journal; ship events (CD_BATCH_MAX a batch,
 *         turning again at once while there are more)
 *   5 s   heartbeat, live nodes, pull policy changes, cluster.state
 *   10 s  per-issue counters
 *   1 h   event partitions ahead, retention
 *   cluster_resync_interval: a full policy resync (and at start)
 * Publishing, shipping and counters only while this gateway holds its
 * cluster_node's row (cd_owner, cluster_node.c); the heartbeat claims it.
 * No other daemon waits for it: when PostgreSQL is away the node goes on
 * with its LMDB, and clusterd catches up when it returns.
 * SIGHUP re-reads the configuration (the log destination; the other keys
 * need a restart), SIGTERM stops it after the statement under way.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cluster_policy.h"
#include "clusterd.h"
#include "conf.h"
#include "daemon.h"
#include "ev.h"
#include "log.h"
#include "sig.h"
#include "spool.h"
#include "spool_cluster.h"

#define CD_TICK_MS	 1000
#define CD_BEAT_MS	 5000
#define CD_COUNTS_MS	 10000
#define CD_MAINT_MS	 3600000
#define CD_SHIP_PER_TURN 10 /* batches before the loop looks around */

/* cluster_secret_file, read here (as root, before the drop): the key
 * stays in memory, so the file may be root's alone. */
static void
cd_check_seal(struct daemon *d)
{
	const char *path = d->d_cf->cf_cluster_secret_file;
	char	    err[512], w[4200];

	if (cseal_load(path, d->d_cf->cf_cluster_secret_file_accept, err,
		sizeof(err)) == -1)
		log_fatalx_status(2, "%s: %s",
		    conf_where(d->d_cf, "cluster_secret_file", w, sizeof(w)),
		    err);
	if (cseal_accepting())
		log_info("cluster_secret_file_accept is set: values sealed with "
			 "it are applied too (a key rotation: clusterd(8), "
			 "\"Changing the key\")");
	if (!cseal_on())
		log_warnx("cluster_secret_file is not set: PostgreSQL holds "
			  "the DKIM private keys, password hashes and callback "
			  "secrets in clear (clusterd(8), \"Sealed rows\")");
}

/*
 * A password in the string, in a file every local user may read (it must
 * be: smtpgate-sendmail reads it as the user who runs it): one warning
 * naming the way out. Not fatal: an upgrade must not stop a running
 * cluster.
 */
static void
cd_check_password(const struct conf *cf, const PQconninfoOption *o)
{
	struct stat st;
	char	    w[4200];

	for (; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL &&
		    o->val[0] != '\0')
			break;
	if (o->keyword == NULL || stat(cf->cf_path, &st) == -1 ||
	    (st.st_mode & S_IROTH) == 0)
		return;
	log_warnx("%s: holds a password, and %s is readable by every local "
		  "user (mode %04o): move it to a passfile= (mode 0600) or "
		  "~/.pgpass",
	    conf_where(cf, "cluster_dsn", w, sizeof(w)), cf->cf_path,
	    (unsigned)(st.st_mode & 07777));
}

static void
cd_check(struct daemon *d)
{
	const struct conf *cf = d->d_cf;
	PQconninfoOption  *o;
	char		  *err = NULL, w[4200];

	if (cf->cf_cluster_dsn[0] == '\0') {
		log_info("cluster_dsn is empty: a single node, nothing to do");
		exit(0);
	}
	if ((o = PQconninfoParse(cf->cf_cluster_dsn, &err)) == NULL) {
		if (err != NULL)
			err[strcspn(err, "\n")] = '\0';
		log_fatalx_status(2, "%s: %s",
		    conf_where(d->d_cf, "cluster_dsn", w, sizeof(w)),
		    err != NULL ? err : "out of memory");
	}
	cd_check_password(cf, o);
	PQconninfoFree(o);
	if (cf->cf_cluster_node[0] == '\0' || strlen(cf->cf_cluster_node) > 255)
		log_fatalx_status(2, "%s: empty or longer than 255 bytes",
		    conf_where(d->d_cf, "cluster_node", w, sizeof(w)));
	cd_check_seal(d);
}

static const char *
cd_user(const struct conf *cf)
{
	return cf->cf_spoold_user;
}

static void
cd_reload(struct cd *cd)
{
	struct conf *ncf;
	char	     err[1024];

	if ((ncf = conf_load(cd->cf->cf_path, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s (keeping the old configuration)", err);
		return;
	}
	if (strcmp(ncf->cf_cluster_dsn, cd->cf->cf_cluster_dsn) != 0 ||
	    strcmp(ncf->cf_cluster_node, cd->cf->cf_cluster_node) != 0 ||
	    strcmp(ncf->cf_spool_dir, cd->cf->cf_spool_dir) != 0)
		log_warnx("reload: cluster_dsn, cluster_node and spool_dir "
			  "changes need a restart");
	log_set_dest(daemon_log_dest(ncf));
	conf_free(&ncf);
	log_info("reloaded %s", cd->cf->cf_path);
}

static void
cd_on_signal(struct ev *e, unsigned sigs, void *arg)
{
	if (sigs & SIG_HUP)
		cd_reload(arg);
	if (sig_stopping())
		ev_break(e);
}

static void
cd_pull(struct cd *cd)
{
	if (cd->pg != NULL && cpol_pull(cd->pg, cd->sp, CD_PULL_MAX) == -1)
		log_warnx("policy pull failed (retried in %d s)",
		    CD_BEAT_MS / 1000);
	cd->pull_due = false;
}

void
cd_on_socket(struct ev *e, int fd, unsigned revents, void *arg)
{
	struct cd *cd = arg;

	(void)e;
	(void)fd;
	(void)revents;
	if (cd_notified(cd))
		cd_pull(cd);
}

/* What a fresh connection does first. */
static void
cd_on_connected(struct cd *cd)
{
	(void)cd_heartbeat(cd); /* first: the claim on the node's row */
	(void)cd_partitions(cd);
	(void)cd_nodes_retention(cd);
	if (cd->resync_due && cd->pg != NULL) {
		if (cpol_resync(cd->pg, cd->sp) == 0)
			cd->resync_due = false;
		else
			log_warnx("policy resync failed (retried)");
	}
	cd_pull(cd);
	cd_state_write(cd);
	(void)ev_timer_arm(cd->ev, &cd->t_tick, 0, CD_TICK_MS);
}

static void
cd_on_connect(struct ev *e, struct ev_timer *t, void *arg)
{
	struct cd *cd = arg;

	(void)e;
	(void)t;
	if (cd->pg == NULL && cd_connect(cd) == 0)
		cd_on_connected(cd);
}

/* Arms a reconnect if the connection was lost without one. */
static void
cd_need_connect(struct cd *cd)
{
	if (cd->pg == NULL && !ev_timer_armed(&cd->t_connect))
		(void)ev_timer_arm(cd->ev, &cd->t_connect, cd->backoff_ms, 0);
}

static void
cd_on_tick(struct ev *e, struct ev_timer *t, void *arg)
{
	struct cd *cd = arg;
	uint64_t   waiting = 0;
	int	   i, n = 0;

	(void)t;
	if (cd->pg == NULL)
		return;
	if (cd_notified(cd) || cd->pull_due)
		cd_pull(cd);
	if (!cd_owner(cd)) /* not this node's row (cluster_node.c) */
		goto out;
	if (cd->pg != NULL && cd_journal_count(cd->sp, &waiting) == 0 &&
	    waiting > 0 &&
	    cpol_publish(cd->pg, cd->sp, cd->node, CD_JOURNAL_MAX) == -1)
		log_warnx("policy publish failed (retried)");
	for (i = 0; i < CD_SHIP_PER_TURN && cd->pg != NULL && cd_owner(cd); i++)
		if ((n = cd_ship_batch(cd)) <= 0)
			break;
	if (n > 0 && !sig_stopping()) /* more to ship: again at once */
		(void)ev_timer_arm(e, &cd->t_tick, 0, CD_TICK_MS);
out:
	cd_need_connect(cd);
}

static void
cd_on_beat(struct ev *e, struct ev_timer *t, void *arg)
{
	struct cd *cd = arg;

	(void)e;
	(void)t;
	if (cd->pg != NULL) {
		(void)cd_heartbeat(cd);
		cd_pull(cd);
	}
	cd_state_write(cd);
	cd_need_connect(cd);
}

static void
cd_on_counts(struct ev *e, struct ev_timer *t, void *arg)
{
	struct cd *cd = arg;

	(void)e;
	(void)t;
	if (cd->pg != NULL && cd_owner(cd))
		(void)cd_counts_publish(cd);
	cd_need_connect(cd);
}

static void
cd_on_maint(struct ev *e, struct ev_timer *t, void *arg)
{
	struct cd *cd = arg;

	(void)e;
	(void)t;
	if (cd->pg != NULL) {
		(void)cd_partitions(cd);
		(void)cd_nodes_retention(cd);
	}
	cd_need_connect(cd);
}

static void
cd_on_resync(struct ev *e, struct ev_timer *t, void *arg)
{
	struct cd *cd = arg;

	(void)e;
	(void)t;
	cd->resync_due = true;
	if (cd->pg != NULL && cpol_resync(cd->pg, cd->sp) == 0)
		cd->resync_due = false;
	cd_need_connect(cd);
}

static void
cd_timers(struct cd *cd)
{
	int64_t resync = (int64_t)cd->cf->cf_cluster_resync_interval * 1000;

	ev_timer_init(&cd->t_connect, cd_on_connect, cd);
	ev_timer_init(&cd->t_tick, cd_on_tick, cd);
	ev_timer_init(&cd->t_beat, cd_on_beat, cd);
	ev_timer_init(&cd->t_counts, cd_on_counts, cd);
	ev_timer_init(&cd->t_maint, cd_on_maint, cd);
	ev_timer_init(&cd->t_resync, cd_on_resync, cd);
	if (ev_timer_arm(cd->ev, &cd->t_connect, 0, 0) == -1 ||
	    ev_timer_arm(cd->ev, &cd->t_tick, CD_TICK_MS, CD_TICK_MS) == -1 ||
	    ev_timer_arm(cd->ev, &cd->t_beat, CD_BEAT_MS, CD_BEAT_MS) == -1 ||
	    ev_timer_arm(cd->ev, &cd->t_counts, CD_COUNTS_MS, CD_COUNTS_MS) ==
		-1 ||
	    ev_timer_arm(cd->ev, &cd->t_maint, CD_MAINT_MS, CD_MAINT_MS) ==
		-1 ||
	    ev_timer_arm(cd->ev, &cd->t_resync, resync, resync) == -1)
		log_fatal("ev_timer_arm");
}

static int
cd_run(struct daemon *d)
{
	struct cd *cd = d->d_arg;
	int	   rc;

	cd->cf = d->d_cf;
	cd->node = cd->cf->cf_cluster_node;
	cd->started = time(NULL);
	cd->live_nodes = 1;
	cd->backoff_ms = CD_BACKOFF_MIN_MS;
	cd->resync_due = cd->counts_full = true;
	if ((rc = spool_open(cd->cf->cf_spool_dir, cd->cf->cf_lmdb_map_size,
		 cd->cf->cf_lmdb_map_max, SPOOL_CLUSTER, &cd->sp)) != 0)
		log_fatalx("spool_open %s: %s", cd->cf->cf_spool_dir,
		    spool_strerror(rc));
	if ((rc = spool_cluster_node_claim(cd->sp, cd->claim)) != 0)
		log_fatalx("%s: meta cluster_node_claim: %s",
		    cd->cf->cf_spool_dir, spool_strerror(rc));
	if ((cd->ev = ev_new(4, 8)) == NULL ||
	    ev_signal(cd->ev, cd_on_signal, cd) == -1)
		log_fatal("ev");
	cd_timers(cd);
	cd_set_connected(cd, false);
	log_info("started: node %s, spool %s, claim %s", cd->node,
	    cd->cf->cf_spool_dir, cd->claim);
	if (!sig_stopping())
		ev_run(cd->ev);
	cd_release(cd);
	cd_disconnect(cd, NULL);
	cd_state_write(cd);
	log_info("stopped");
	ev_free(&cd->ev);
	spool_close(&cd->sp);
	conf_free(&cd->cf);
	return cd->status;
}

int
main(int argc, char **argv)
{
	static struct cd		cd;
	static const struct daemon_spec spec = {
		.ds_name = "clusterd",
		.ds_check = cd_check,
		.ds_spool = spool_tree_create_err,
		.ds_user = cd_user,
		.ds_run = cd_run,
		.ds_arg = &cd,
	};

	daemon_main(argc, argv, &spec);
}
