/*
 * dlog-soak: the delivery log at scale, through the spool API (never
 * installed; bench/README.md "Delivery log: indexes and retention").
 *
 *   dlog-soak fill DIR EVENTS [BOUNCE_EVERY]
 *	a fresh spool under DIR holding EVENTS events of the last 30 days
 *	(one in BOUNCE_EVERY bounced, default 10; 10 % deferred, the rest
 *	delivered; an issue per account and day), written with spool_event_add
 *	in large transactions, so every index is maintained as in production.
 *   dlog-soak prune DIR RETENTION_DAYS
 *	one full pruning pass at the real time over a filled spool (the
 *	same retention for log and permfail, twice it for issues): counts,
 *	seconds and the longest write transaction.
 *   dlog-soak rebuild DIR
 *	drops the log's indexes (LMDB directly, as if the spool predated
 *	them) and times the spool_open that builds them again.
 *   dlog-soak soak DIR EVENTS DAYS RETENTION_DAYS MAP_MB [check]
 *	a fresh spool with a MAP_MB map; EVENTS events spread over DAYS
 *	simulated days (stepped clock: the events' times and the pruning's
 *	"now" advance one simulated hour per transaction); after every hour a
 *	full pruning pass (spool_prune, 1,000 deletions per transaction) with
 *	delivery_log_retention = suppression_ttl = RETENTION_DAYS and
 *	issue_retention = 2 x RETENTION_DAYS. Prints data.mdb's size after each
 *	simulated week. With "check": exit 1 unless the size after the last
 *	week is at most the size one week after the retention was reached
 *	plus 10 % + 1 MB (the plateau), and no transaction failed.
 *
 * Exit 0, 1 on failure, 2 on usage.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "spool.h"

#define SOAK_DAY      86400
#define SOAK_T0	      INT64_C(1798761600) /* 2027-01-01T00:00:00Z */
#define SOAK_FILL_TXN 5000		  /* events per fill transaction */
#define SOAK_ACCOUNTS 3

struct soak {
	struct spool *sp;
	char	      dir[4096];
	uint64_t      n; /* events so far */
	uint64_t      bounce_every;
	uint64_t      issue[SOAK_ACCOUNTS];
	char	      issue_date[SOAK_ACCOUNTS][11];
};

static const char *const soak_login[SOAK_ACCOUNTS] = { "shop", "news",
	"alerts" };

static __attribute__((noreturn)) void
soak_die(const char *what, int rc)
{
	(void)fprintf(stderr, "dlog-soak: %s: %s\n", what, spool_strerror(rc));
	exit(1);
}

static __attribute__((noreturn)) void
soak_usage(void)
{
	(void)fprintf(stderr,
	    "usage: dlog-soak fill DIR EVENTS [BOUNCE_EVERY]\n"
	    "       dlog-soak prune DIR RETENTION_DAYS\n"
	    "       dlog-soak rebuild DIR\n"
	    "       dlog-soak soak DIR EVENTS DAYS RETENTION_DAYS MAP_MB "
	    "[check]\n");
	exit(2);
}

static uint64_t
soak_num(const char *s)
{
	char		  *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v == 0)
		soak_usage();
	return (uint64_t)v;
}

static void
soak_open(struct soak *so, const char *dir, int64_t map)
{
	int rc;

	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		soak_die(dir, errno);
	(void)str_copy(so->dir, sizeof(so->dir), dir);
	if ((rc = spool_open(dir, map, map, 0, &so->sp)) != 0)
		soak_die("spool_open", rc);
}

static void
soak_accounts(struct soak *so)
{
	struct spool_account a;
	struct spool_txn    *t;
	size_t		     i;
	int		     rc;

	if ((rc = spool_begin(so->sp, true, &t)) != 0)
		soak_die("begin", rc);
	for (i = 0; i < SOAK_ACCOUNTS; i++) {
		memset(&a, 0, sizeof(a));
		(void)str_copy(a.ac_login, sizeof(a.ac_login), soak_login[i]);
		if ((rc = spool_account_put(t, &a)) != 0)
			soak_die("account", rc);
	}
	if ((rc = spool_commit(&t)) != 0)
		soak_die("commit", rc);
}

/* The account's issue of the day of dt (created on its first event). */
static uint64_t
soak_issue(struct soak *so, struct spool_txn *t, size_t acct, int64_t dt)
{
	struct spool_issue is;
	char		   date[11];
	int		   rc;

	spool_date(dt, date);
	if (so->issue[acct] != 0 && strcmp(date, so->issue_date[acct]) == 0)
		return so->issue[acct];
	rc = spool_issue_find_or_create(t, soak_login[acct], date,
	    acct == 1 ? "weekly-digest" : NULL, &is);
	if (rc != 0)
		soak_die("issue", rc);
	so->issue[acct] = is.su_id;
	(void)str_copy(so->issue_date[acct], sizeof(so->issue_date[acct]),
	    date);
	return is.su_id;
}

/* Event number so->n at time dt: realistic sizes, one in bounce_every
 * bounced. */
static void
soak_event(struct soak *so, struct spool_txn *t, int64_t dt)
{
	struct spool_event ev;
	uint64_t	   n = so->n++;
	size_t		   acct = n % SOAK_ACCOUNTS;
	char		   qid[QID_SIZE], to[96], msg[256], mid[96];
	int		   rc;

	(void)snprintf(qid, sizeof(qid), "%013" PRIX64 "%07" PRIX64,
	    (uint64_t)dt * 1000000u & UINT64_C(0xFFFFFFFFFFFFF),
	    n & 0xFFFFFFFu);
	(void)snprintf(to, sizeof(to),
	    "user%" PRIu64 "@dest%" PRIu64 ".example", n, n % 977);
	(void)snprintf(mid, sizeof(mid),
	    "<%" PRIu64 ".%" PRId64 "@mail.%s.example>", n, dt,
	    soak_login[acct]);
	memset(&ev, 0, sizeof(ev));
	ev.ev_dt = dt;
	ev.ev_login = soak_login[acct];
	ev.ev_qid = qid;
	ev.ev_issue = soak_issue(so, t, acct, dt);
	ev.ev_from = "bounce@mail.example";
	ev.ev_to = to;
	ev.ev_message_id = mid;
	ev.ev_attempt = 1;
	ev.ev_hop = "mx1.dest.example[192.0.2.25]:25";
	ev.ev_tls = "TLSv1.3 TLS_AES_256_GCM_SHA384";
	if (n % so->bounce_every == 3 % so->bounce_every) {
		ev.ev_type = SPOOL_EV_BOUNCED;
		ev.ev_class = SPOOL_CL_REMOTE;
		(void)snprintf(msg, sizeof(msg),
		    "550 5.1.1 <%s>: Recipient address "
		    "rejected: User unknown in virtual mailbox table",
		    to);
		if ((rc = spool_permfail_put(t, ev.ev_login, to, dt, msg)) != 0)
			soak_die("permfail", rc);
	} else if (n % 10 == 7) {
		ev.ev_type = SPOOL_EV_DEFERRED;
		(void)snprintf(msg, sizeof(msg),
		    "451 4.7.1 Greylisted, please try "
		    "again in 300 seconds");
	} else {
		ev.ev_type = SPOOL_EV_DELIVERED;
		(void)snprintf(msg, sizeof(msg),
		    "250 2.0.0 Ok: queued as 4F2%06" PRIX64, n & 0xFFFFFF);
	}
	ev.ev_msg = msg;
	if ((rc = spool_event_add(t, &ev, NULL)) != 0)
		soak_die("event", rc);
}

/* count events at times spread evenly over [from, from + span). */
static void
soak_add(struct soak *so, uint64_t count, int64_t from, int64_t span)
{
	struct spool_txn *t;
	uint64_t	  i;
	int		  rc;

	if ((rc = spool_begin(so->sp, true, &t)) != 0)
		soak_die("begin", rc);
	for (i = 0; i < count; i++)
		soak_event(so, t, from + (int64_t)((uint64_t)span * i / count));
	if ((rc = spool_commit(&t)) != 0)
		soak_die("commit", rc);
}

static int
soak_fill(char **argv)
{
	struct soak	so;
	uint64_t	total = soak_num(argv[1]), done = 0, n;
	int64_t		now = (int64_t)time(NULL), span = 30 * SOAK_DAY;
	struct timespec t0, t1;

	memset(&so, 0, sizeof(so));
	so.bounce_every = argv[2] != NULL ? soak_num(argv[2]) : 10;
	soak_open(&so, argv[0], INT64_C(8) << 30);
	soak_accounts(&so);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done < total) {
		n = total - done < SOAK_FILL_TXN ? total - done : SOAK_FILL_TXN;
		soak_add(&so, n,
		    now - span + (int64_t)((uint64_t)span * done / total),
		    (int64_t)((uint64_t)span * n / total) + 1);
		done += n;
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("filled %" PRIu64 " events in %.1f s\n", total,
	    (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	spool_close(&so.sp);
	return 0;
}

static int64_t
soak_db_size(const struct soak *so)
{
	struct stat st;
	char	    path[4200];

	(void)snprintf(path, sizeof(path), "%s/db/data.mdb", so->dir);
	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static double
soak_since(const struct timespec *t0)
{
	struct timespec t1;

	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A whole pass at simulated time now; the longest transaction in *max_r. */
static void
soak_prune(struct soak *so, int64_t now, const struct spool_retention *rt,
    struct spool_prune_stats *total, double *max_r)
{
	struct spool_prune_stats ps;
	struct timespec		 t0;
	int			 rc;

	memset(&ps, 0, sizeof(ps));
	do {
		(void)clock_gettime(CLOCK_MONOTONIC, &t0);
		if ((rc = spool_prune(so->sp, now, rt, 1000, &ps)) != 0)
			soak_die("prune", rc);
		if (soak_since(&t0) > *max_r)
			*max_r = soak_since(&t0);
	} while (ps.ps_more);
	total->ps_dlog += ps.ps_dlog;
	total->ps_issues += ps.ps_issues;
	total->ps_permfail += ps.ps_permfail;
	total->ps_txns += ps.ps_txns;
}

/* prune DIR RETENTION_DAYS: one pass at the real time over a filled spool. */
static int
soak_prune_once(char **argv)
{
	struct soak		 so;
	struct spool_prune_stats tot;
	struct spool_retention	 rt;
	struct timespec		 t0;
	double			 max = 0;

	memset(&so, 0, sizeof(so));
	memset(&tot, 0, sizeof(tot));
	rt.rt_dlog = rt.rt_permfail = (int64_t)soak_num(argv[1]) * SOAK_DAY;
	rt.rt_issues = 2 * rt.rt_dlog;
	soak_open(&so, argv[0], INT64_C(8) << 30);
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	soak_prune(&so, (int64_t)time(NULL), &rt, &tot, &max);
	printf(
	    "pruned events=%zu, permfail=%zu, issues=%zu in %zu transactions, "
	    "%.1f s; longest transaction %.1f ms\n",
	    tot.ps_dlog, tot.ps_permfail, tot.ps_issues, tot.ps_txns,
	    soak_since(&t0), max * 1000);
	spool_close(&so.sp);
	return 0;
}

static int
soak_soak(int argc, char **argv)
{
	struct soak		 so;
	struct spool_prune_stats tot;
	struct spool_retention	 rt;
	uint64_t total = soak_num(argv[1]), hours, h, per, done = 0;
	uint64_t days = soak_num(argv[2]), ret = soak_num(argv[3]);
	int64_t	 sz, sz_plateau = -1, now = SOAK_T0;
	double	 max_txn = 0;
	bool	 check = argc > 5 && strcmp(argv[5], "check") == 0;

	memset(&so, 0, sizeof(so));
	memset(&tot, 0, sizeof(tot));
	so.bounce_every = 10;
	rt.rt_dlog = rt.rt_permfail = (int64_t)ret * SOAK_DAY;
	rt.rt_issues = 2 * rt.rt_dlog;
	soak_open(&so, argv[0], (int64_t)soak_num(argv[4]) << 20);
	soak_accounts(&so);
	hours = days * 24;
	printf(
	    "week  sim_date    events_total  pruned_events  pruned_permfail  "
	    "pruned_issues  db_bytes\n");
	for (h = 0; h < hours; h++) {
		per = total * (h + 1) / hours - done;
		soak_add(&so, per, now, 3600);
		done += per;
		now += 3600;
		soak_prune(&so, now, &rt, &tot, &max_txn);
		if ((h + 1) % (7 * 24) != 0 && h + 1 != hours)
			continue;
		sz = soak_db_size(&so);
		{
			char date[11];

			spool_date(now, date);
			printf("%4" PRIu64 "  %s  %12" PRIu64
			       "  %13zu  %15zu  %13zu  %" PRId64 "\n",
			    (h + 1 + 7 * 24 - 1) / (7 * 24), date, done,
			    tot.ps_dlog, tot.ps_permfail, tot.ps_issues, sz);
		}
		(void)fflush(stdout);
		/* one week after the retention was reached: the plateau's level */
		if (sz_plateau < 0 &&
		    (int64_t)(h + 1) >= (int64_t)(ret + 7) * 24)
			sz_plateau = sz;
	}
	spool_close(&so.sp);
	printf("longest pruning transaction: %.1f ms\n", max_txn * 1000);
	if (!check)
		return 0;
	sz = soak_db_size(&so);
	if (sz_plateau < 0 || sz > sz_plateau + sz_plateau / 10 + (1 << 20)) {
		printf("FAIL: no plateau: %" PRId64
		       " bytes at the end, %" PRId64
		       " one week after the retention was reached\n",
		    sz, sz_plateau);
		return 1;
	}
	printf("plateau: %" PRId64 " bytes at the end, %" PRId64
	       " a week after the "
	       "retention was reached\n",
	    sz, sz_plateau);
	return 0;
}

/*
 * rebuild DIR: makes the spool look like one from before the log's indexes
 * (LMDB directly: the index databases dropped, the build markers gone),
 * then times the spool_open that builds them again.
 */
static int
soak_rebuild(char **argv)
{
	static const char *const dbs[] = { "dlog_status", "dlog_issue",
		"issue_date" };
	static const char *const marks[] = { "records_idx",
		"records_idx_next" };
	struct soak		 so;
	struct timespec		 t0;
	MDB_env			*env;
	MDB_txn			*tx;
	MDB_dbi			 d;
	MDB_val			 k;
	char			 dir[4200];
	size_t			 i;

	(void)snprintf(dir, sizeof(dir), "%s/db", argv[0]);
	if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0 ||
	    mdb_env_set_mapsize(env, (size_t)8 << 30) != 0 ||
	    mdb_env_open(env, dir, 0, 0640) != 0 ||
	    mdb_txn_begin(env, NULL, 0, &tx) != 0)
		soak_die("lmdb", SPOOL_EDB);
	for (i = 0; i < 3; i++)
		if (mdb_dbi_open(tx, dbs[i], 0, &d) != 0 ||
		    mdb_drop(tx, d, 1) != 0)
			soak_die(dbs[i], SPOOL_EDB);
	if (mdb_dbi_open(tx, "meta", 0, &d) != 0)
		soak_die("meta", SPOOL_EDB);
	for (i = 0; i < 2; i++) {
		k.mv_data = (void *)(uintptr_t)marks[i];
		k.mv_size = strlen(marks[i]) + 1;
		(void)mdb_del(tx, d, &k, NULL);
	}
	if (mdb_txn_commit(tx) != 0)
		soak_die("lmdb commit", SPOOL_EDB);
	mdb_env_close(env);
	memset(&so, 0, sizeof(so));
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	soak_open(&so, argv[0], INT64_C(8) << 30);
	printf("built the indexes of an older database in %.1f s\n",
	    soak_since(&t0));
	spool_close(&so.sp);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "fill") == 0)
		return soak_fill(argv + 2);
	if (argc >= 7 && strcmp(argv[1], "soak") == 0)
		return soak_soak(argc - 2, argv + 2);
	if (argc == 4 && strcmp(argv[1], "prune") == 0)
		return soak_prune_once(argv + 2);
	if (argc == 3 && strcmp(argv[1], "rebuild") == 0)
		return soak_rebuild(argv + 2);
	soak_usage();
}
