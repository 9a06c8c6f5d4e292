/* tfix: spool-tree fixtures of the unit tests (see tfix.h). */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fsx.h"
#include "qid.h"
#include "spool.h"
#include "ev.h"
#include "tap.h"
#include "tfix.h"

void
t_rmtree(const char *dir)
{
	char cmd[1100];

	if (dir[0] == '\0')
		return;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		t_diag("cannot remove %s", dir);
}

int
t_run_rmtree(const struct t_case *cases, size_t n, const char *dir)
{
	int rc;

	rc = t_run(cases, n);
	t_rmtree(dir);
	return rc;
}

void
t_fresh_dir(char *dir, size_t dirsz, const char *name)
{
	t_rmtree(dir);
	if (snprintf(dir, dirsz, "/tmp/%s.XXXXXX", name) >= (int)dirsz ||
	    mkdtemp(dir) == NULL)
		abort();
}

struct spool *
t_spool_fresh(char *dir, size_t dirsz, const char *name, int64_t map)
{
	struct spool *sp = NULL;
	int	      rc;

	t_fresh_dir(dir, dirsz, name);
	if ((rc = spool_open(dir, map, map, 0, &sp)) != 0) {
		t_diag("spool_open: %s", spool_strerror(rc));
		abort();
	}
	return sp;
}

struct conf *
t_spool_conf(char *dir, size_t dirsz, const char *name)
{
	struct conf *cf;
	char	     err[256];

	t_fresh_dir(dir, dirsz, name);
	if ((cf = conf_defaults(err, sizeof(err))) == NULL)
		abort();
	free(cf->cf_spool_dir);
	cf->cf_spool_dir = strdup(dir);
	if (geteuid() == 0) {
		free(cf->cf_spoold_user);
		free(cf->cf_deliverd_user);
		free(cf->cf_group);
		cf->cf_spoold_user = strdup("root");
		cf->cf_deliverd_user = strdup("root");
		cf->cf_group = strdup("root");
	}
	return cf;
}

static void
t_woken(struct ev *e, void *arg)
{
	(void)e;
	(void)arg;
}

struct ev *
t_wake_loop(void)
{
	struct ev *e;

	if ((e = ev_new(4, 1)) == NULL ||
	    ev_wakeup_init(e, t_woken, NULL) == -1)
		abort();
	return e;
}

struct spool_txn *
t_wtxn(struct spool *sp)
{
	return t_txn(sp, true);
}

struct spool_txn *
t_txn(struct spool *sp, bool write)
{
	struct spool_txn *t;

	if (spool_begin(sp, write, &t) != 0)
		abort();
	return t;
}

void
t_commit(struct spool_txn **t)
{
	if (spool_commit(t) != 0)
		abort();
}

void
t_mkqid(char *q, int64_t dt, unsigned n)
{
	(void)snprintf(q, QID_SIZE, "%013llX%07X",
	    (unsigned long long)(dt * 1000000) & 0xFFFFFFFFFFFFFULL, n);
}

size_t
t_count(struct spool_txn *t, enum spool_dbi d)
{
	size_t n = 0;

	(void)spool_db_iter(t, d, NULL, 0, false, t_count_rec, &n);
	return n;
}

int
t_seqs_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct t_seqs *l = arg;
	size_t	       o = strlen(l->s);

	(void)json;
	(void)len;
	(void)snprintf(l->s + o, sizeof(l->s) - o, "%llu,",
	    (unsigned long long)seq);
	return ++l->n == l->max ? 1 : 0;
}

void
t_db_forget(const char *dir, int64_t map, const char *const *dbs,
    const char *const *marks)
{
	MDB_env *env;
	MDB_txn *tx;
	MDB_dbi	 d;
	MDB_val	 k;
	char	 db[4096];

	(void)snprintf(db, sizeof(db), "%s/db", dir);
	if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 32) != 0 ||
	    mdb_env_set_mapsize(env, (size_t)map) != 0 ||
	    mdb_env_open(env, db, 0, 0640) != 0 ||
	    mdb_txn_begin(env, NULL, 0, &tx) != 0)
		abort();
	for (; *dbs != NULL; dbs++)
		if (mdb_dbi_open(tx, *dbs, 0, &d) != 0 ||
		    mdb_drop(tx, d, 1) != 0)
			abort();
	if (marks != NULL && mdb_dbi_open(tx, "meta", 0, &d) != 0)
		abort();
	for (; marks != NULL && *marks != NULL; marks++) {
		k.mv_data = (void *)(uintptr_t)*marks;
		k.mv_size = strlen(*marks) + 1;
		(void)mdb_del(tx, d, &k, NULL);
	}
	if (mdb_txn_commit(tx) != 0)
		abort();
	mdb_env_close(env);
}

void
t_spool_old(struct spool **sp, const char *dir, int64_t map,
    const char *const *dbs, const char *const *marks)
{
	struct spool *ro = NULL;

	spool_close(sp);
	t_db_forget(dir, map, dbs, marks);
	t_int_eq(spool_open(dir, map, map, SPOOL_RDONLY, &ro), SPOOL_EVERSION,
	    "a reader before any writer migrated fails clearly");
	if (!t_int_eq(spool_open(dir, map, map, 0, sp), 0,
		"a writer opens and migrates"))
		abort();
}

void
t_spool_reader_opens(struct spool **sp, const char *dir, int64_t map)
{
	struct spool *ro = NULL;

	spool_close(sp);
	t_int_eq(spool_open(dir, map, map, SPOOL_RDONLY, &ro), 0,
	    "a reader opens now");
	spool_close(&ro);
}

void
t_spool_remigrate(struct spool **sp, const char *dir, int64_t map,
    enum spool_dbi d, size_t want)
{
	struct spool_txn *t;

	spool_close(sp);
	if (!t_int_eq(spool_open(dir, map, map, 0, sp), 0,
		"open again: nothing to build"))
		abort();
	t = t_txn(*sp, false);
	t_int_eq((long long)t_count(t, d), (long long)want,
	    "the build is idempotent");
	spool_abort(&t);
	t_spool_reader_opens(sp, dir, map);
}

int
t_count_rec(const uint8_t *k, size_t kl, const void *v, size_t vl, void *arg)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(size_t *)arg)++;
	return 0;
}

void
t_dkim_key(const struct conf *cf, struct spool *sp, const char *login,
    const char *domain, const char *name, bool ed25519, const void *key,
    size_t len)
{
	struct spool_dkim sd = { .dk_default = true };
	struct spool_txn *t;
	char		  keys[4096], why[256] = "";
	int		  rc;

	sd.dk_alg = ed25519 ? SPOOL_DKIM_ED25519 : SPOOL_DKIM_RSA;
	if (spool_tree_create_err(cf, why, sizeof(why)) == -1 ||
	    spool_path(keys, sizeof(keys), cf->cf_spool_dir, SPOOL_KEYS,
		NULL) == -1 ||
	    fsx_write_durable(keys, name, key, len, 0600) == -1) {
		t_diag("key %s: %s %s", name, why, strerror(errno));
		abort();
	}
	(void)str_copy(sd.dk_login, sizeof(sd.dk_login), login);
	(void)str_copy(sd.dk_domain, sizeof(sd.dk_domain), domain);
	(void)str_copy(sd.dk_selector, sizeof(sd.dk_selector), "s1");
	(void)str_copy(sd.dk_keyfile, sizeof(sd.dk_keyfile), name);
	t = t_wtxn(sp);
	if ((rc = spool_dkim_put(t, &sd)) != 0 ||
	    (rc = spool_commit(&t)) != 0) {
		t_diag("spool_dkim_put: %s", spool_strerror(rc));
		abort();
	}
}

void
t_ev_init(struct spool_event *ev, enum spool_ev_type ty, enum spool_ev_class cl,
    const char *login, const char *qid, uint64_t issue)
{
	memset(ev, 0, sizeof(*ev));
	ev->ev_type = ty;
	ev->ev_class = cl;
	ev->ev_dt = 1764432245; /* 2025-11-29T16:04:05Z */
	ev->ev_login = login;
	ev->ev_qid = qid;
	ev->ev_issue = issue;
	ev->ev_from = "s@example.com";
	ev->ev_to = "r@example.org";
	ev->ev_msg = "250 2.0.0 Ok";
	ev->ev_attempt = 1;
}
