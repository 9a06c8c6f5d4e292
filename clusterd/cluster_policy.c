/*
 * Policy in cluster mode (cluster_policy.h): the journal into
 * smtpgate.policy, its rows back into LMDB, the full resync and the
 * export. Keys and values travel as binary bytea, exactly the LMDB bytes.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "cluster_policy.h"
#include "log.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spool_rec.h"
#include "trigger.h"
#include "xmem.h"

#define CPOL_LOCK "LOCK TABLE smtpgate.policy IN EXCLUSIVE MODE"
#define CPOL_UPSERT_HEAD \
	"INSERT INTO smtpgate.policy (kind, key, value, origin) VALUES "
#define CPOL_UPSERT_TAIL                                       \
	" ON CONFLICT (kind, key) DO UPDATE SET "              \
	"value = EXCLUDED.value, "                             \
	"version = nextval('smtpgate.policy_version'), "       \
	"origin = EXCLUDED.origin, changed = now()"
#define CPOL_ROWS_STMT 200 /* rows per INSERT of a publish */
#define CPOL_INSERT                                               \
	"INSERT INTO smtpgate.policy (kind, key, value, origin) " \
	"VALUES ($1, $2, $3, $4) ON CONFLICT (kind, key) DO NOTHING"
_Static_assert(SPOOL_CK_N <= 8, "struct cpol_counts holds 8 kinds");
/* origin of the rows a node's first resync adds (it knows no node name) */
#define CPOL_FIRST_ORIGIN "first-resync"

/* ---- libpq */

PGresult *
cpol_q(PGconn *pg, const char *what, const char *sql, int n,
    const char *const *vals, const int *lens, const int *bin, int resbin)
{
	PGresult *res;

	res = PQexecParams(pg, sql, n, NULL, vals, lens, bin, resbin);
	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	log_warnx("cluster policy: %s: %s", what,
	    res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(pg));
	PQclear(res);
	return NULL;
}

static int
cpol_exec(PGconn *pg, const char *what, const char *sql)
{
	PGresult *res = cpol_q(pg, what, sql, 0, NULL, NULL, NULL, 0);

	PQclear(res);
	return res != NULL ? 0 : -1;
}

static void
cpol_rollback(PGconn *pg)
{
	if (PQstatus(pg) == CONNECTION_OK &&
	    PQtransactionStatus(pg) != PQTRANS_IDLE)
		PQclear(PQexec(pg, "ROLLBACK"));
}

/* BEGIN and the lock that orders versions (cluster_policy.h). */
static int
cpol_begin(PGconn *pg)
{
	if (cpol_exec(pg, "BEGIN", "BEGIN") == -1)
		return -1;
	if (cpol_exec(pg, "lock smtpgate.policy", CPOL_LOCK) == 0)
		return 0;
	cpol_rollback(pg);
	return -1;
}

/* One row, INSERT or upsert; the number of rows it touched or -1. */
static int
cpol_put(PGconn *pg, const char *sql, const struct spool_centry *e,
    const char *node)
{
	const char *vals[4] = { spool_ckind_name(e->ce_kind),
		(const char *)e->ce_key, (const char *)e->ce_val, node };
	int	    lens[4] = { 0, (int)e->ce_klen, (int)e->ce_vlen, 0 };
	const int   bin[4] = { 0, 1, 1, 0 };
	struct buf  sealed;
	PGresult   *res;
	int	    n = -1;

	buf_init(&sealed, SIZE_MAX / 2);
	if (e->ce_val != NULL && e->ce_vlen == 0)
		vals[2] = ""; /* an empty value, not NULL */
	if (e->ce_val != NULL && cseal_on()) {
		if (cseal_seal(e, &sealed) == -1) {
			log_warnx("cluster policy: sealing a %s row failed",
			    spool_ckind_name(e->ce_kind));
			goto out;
		}
		vals[2] = sealed.data;
		lens[2] = (int)sealed.len;
	}
	if ((res = cpol_q(pg, "store a row", sql, 4, vals, lens, bin, 0)) ==
	    NULL)
		goto out;
	n = (int)strtol(PQcmdTuples(res), NULL, 10); /* "" for none: 0 */
	PQclear(res);
out:
	buf_release(&sealed);
	return n;
}

PGconn *
cpol_connect(const char *dsn, char *err, size_t errsz)
{
	const char *kw[] = { "connect_timeout", "application_name", "dbname",
		NULL };
	const char *val[] = { "5", "smtpgate-spoolctl", dsn, NULL };
	PGconn	   *pg;

	pg = PQconnectdbParams(kw, val, 1); /* the DSN's own words win */
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
		(void)str_copy(err, errsz,
		    pg != NULL ? PQerrorMessage(pg) : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfinish(pg);
		return NULL;
	}
	if (cpol_exec(pg, "statement_timeout",
		"SET statement_timeout = '10s'") == -1) {
		(void)str_copy(err, errsz, "SET statement_timeout failed");
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

/* ---- publish */

struct cpol_ent {
	enum spool_ckind kind;
	size_t		 koff, klen, voff, vlen;
	uint64_t	 seq;
	bool		 del;
	bool		 stale; /* a later entry of the batch has its key */
};

struct cpol_batch {
	struct cpol_ent *e;
	size_t		 n, max;
	struct buf	 data;
	uint64_t	 last; /* seq of the last entry */
	bool		 match; /* the journal continues the mark */
};

static int
cpol_batch_cb(uint64_t seq, const struct spool_centry *e, void *arg)
{
	struct cpol_batch *b = arg;
	struct cpol_ent	  *x = &b->e[b->n];

	x->kind = e->ce_kind;
	x->seq = seq;
	x->koff = b->data.len;
	x->klen = e->ce_klen;
	x->del = e->ce_val == NULL;
	if (buf_append(&b->data, e->ce_key, e->ce_klen) == -1)
		return ENOMEM;
	x->voff = b->data.len;
	x->vlen = e->ce_vlen;
	if (!x->del && buf_append(&b->data, e->ce_val, e->ce_vlen) == -1)
		return ENOMEM;
	b->last = seq;
	return ++b->n == b->max ? 1 : 0;
}

/* The journal's first max entries into b; whether it continues the mark
 * m when the mark covers some of them. */
static int
cpol_batch_read(struct spool *sp, struct cpol_batch *b,
    const struct cpol_mark *m)
{
	struct spool_txn *t;
	int		  rc;

	if ((rc = spool_begin(sp, false, &t)) != 0)
		return rc;
	if ((rc = spool_cjournal_iter(t, 0, b->max, cpol_batch_cb, b)) == 1)
		rc = 0;
	if (rc == 0 && m->have && b->n > 0 && b->e[0].seq <= m->last)
		rc = cpol_mark_check(t, m, &b->match);
	spool_abort(&t);
	return rc;
}

/* The digest of the batch's last entry (the mark's). */
static int
cpol_batch_digest(const struct cpol_batch *b, uint8_t md[SPOOL_CJ_DIGEST])
{
	const struct cpol_ent *x = &b->e[b->n - 1];
	const uint8_t	      *d = (const uint8_t *)b->data.data;
	struct spool_centry    e = { .ce_kind = x->kind,
		   .ce_key = d + x->koff,
		   .ce_klen = x->klen,
		   .ce_val = x->del ? NULL : d + x->voff,
		   .ce_vlen = x->vlen };

	return spool_centry_digest(x->seq, &e, md);
}

/* qsort has no argument: the batch being sorted (one thread) */
static const struct cpol_batch *cpol_sorting;

/* By kind and key, then journal order. */
static int
cpol_ent_cmp(const void *x, const void *y)
{
	const struct cpol_ent *a = *(const struct cpol_ent *const *)x,
			      *b = *(const struct cpol_ent *const *)y;
	const uint8_t	      *d = (const uint8_t *)cpol_sorting->data.data;
	int		       c;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if ((c = spool_cluster_keycmp(d + a->koff, a->klen, d + b->koff,
		 b->klen)) != 0)
		return c;
	return a < b ? -1 : a > b;
}

/* Marks the entries from from on that a later one of the same key
 * supersedes: one INSERT may not touch a row twice, and only the last
 * value counts. */
static void
cpol_batch_dedupe(struct cpol_batch *b, size_t from)
{
	struct cpol_ent **v = xcalloc(b->n - from, sizeof(*v));
	size_t		  i, n = b->n - from;

	for (i = 0; i < n; i++)
		v[i] = &b->e[from + i];
	cpol_sorting = b;
	qsort(v, n, sizeof(*v), cpol_ent_cmp);
	for (i = 0; i + 1 < n; i++)
		v[i]->stale = v[i]->kind == v[i + 1]->kind &&
		    spool_cluster_keycmp((const uint8_t *)b->data.data +
			    v[i]->koff,
			v[i]->klen,
			(const uint8_t *)b->data.data + v[i + 1]->koff,
			v[i + 1]->klen) == 0;
	free(v);
}

/* One multi-row upsert of the n entries at v; $1 is the node. */
/* A batch entry's value sealed into out; 0 or -1 (logged). */
static int
cpol_seal_ent(const struct cpol_batch *b, const struct cpol_ent *x,
    struct buf *out)
{
	const struct spool_centry e = { .ce_kind = x->kind,
		.ce_key = (const uint8_t *)b->data.data + x->koff,
		.ce_klen = x->klen,
		.ce_val = (const uint8_t *)b->data.data + x->voff,
		.ce_vlen = x->vlen };

	if (cseal_seal(&e, out) == 0)
		return 0;
	log_warnx("cluster policy: sealing a %s row failed",
	    spool_ckind_name(x->kind));
	return -1;
}

static int
cpol_rows_send(PGconn *pg, const struct cpol_batch *b,
    const struct cpol_ent *const *v, size_t n, const char *node)
{
	const char *vals[1 + 3 * CPOL_ROWS_STMT];
	int	    lens[1 + 3 * CPOL_ROWS_STMT], bin[1 + 3 * CPOL_ROWS_STMT];
	struct buf  sql, sealed[CPOL_ROWS_STMT];
	PGresult   *res;
	size_t	    i, k;
	int	    rc = 0;

	for (i = 0; i < n; i++)
		buf_init(&sealed[i], SIZE_MAX / 2);
	buf_init(&sql, SIZE_MAX / 2);
	(void)buf_puts(&sql, CPOL_UPSERT_HEAD);
	vals[0] = node, lens[0] = 0, bin[0] = 0;
	for (i = 0; i < n; i++) {
		k = 1 + 3 * i;
		(void)buf_printf(&sql, "%s($%zu, $%zu, $%zu, $1)",
		    i > 0 ? ", " : "", k + 1, k + 2, k + 3);
		vals[k] = spool_ckind_name(v[i]->kind);
		lens[k] = 0, bin[k] = 0;
		vals[k + 1] = b->data.data + v[i]->koff;
		lens[k + 1] = (int)v[i]->klen, bin[k + 1] = 1;
		vals[k + 2] = v[i]->del	       ? NULL
		    : v[i]->vlen == 0 ? ""
				      : b->data.data + v[i]->voff;
		lens[k + 2] = (int)v[i]->vlen, bin[k + 2] = 1;
		if (!v[i]->del && cseal_on() &&
		    (rc = cpol_seal_ent(b, v[i], &sealed[i])) == 0) {
			vals[k + 2] = sealed[i].data;
			lens[k + 2] = (int)sealed[i].len;
		}
	}
	(void)buf_puts(&sql, CPOL_UPSERT_TAIL);
	res = rc != 0 ? NULL
		      : cpol_q(pg, "publish", sql.data, (int)(1 + 3 * n), vals,
			    lens, bin, 0);
	buf_release(&sql);
	for (i = 0; i < n; i++)
		buf_release(&sealed[i]);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

/* The entries from from on, and the mark to the last, in one transaction. */
static int
cpol_batch_send(PGconn *pg, struct cpol_batch *b, size_t from, const char *node,
    const struct cpol_mark *m)
{
	const struct cpol_ent *v[CPOL_ROWS_STMT];
	uint8_t		       md[SPOOL_CJ_DIGEST];
	size_t		       i, n = 0;

	if (cpol_batch_digest(b, md) != 0)
		return -1;
	cpol_batch_dedupe(b, from);
	if (cpol_begin(pg) == -1)
		return -1;
	if (cpol_mark_put(pg, node, m, b->last, md, from > 0) == -1) {
		cpol_rollback(pg);
		return -1;
	}
	for (i = from; i < b->n; i++) {
		if (!b->e[i].stale)
			v[n++] = &b->e[i];
		if ((n == CPOL_ROWS_STMT || (i + 1 == b->n && n > 0)) &&
		    cpol_rows_send(pg, b, v, n, node) == -1) {
			cpol_rollback(pg);
			return -1;
		}
		if (n == CPOL_ROWS_STMT)
			n = 0;
	}
	return cpol_exec(pg, "COMMIT", "COMMIT");
}

static int  cpol_push_all(PGconn *, struct spool *, const char *node,
     struct cpol_counts *);
static int  cpol_overflow_take(struct spool *, bool *);
static void cpol_overflow_again(struct spool *);

/*
 * This node's publishers (clusterd, spoolctl) one at a time, from reading
 * the journal to dropping what was sent: two would send the same entries
 * twice, and the second copy could overwrite another node's newer row.
 */
static int
cpol_node_lock(PGconn *pg, const char *node, bool lock)
{
	const char *vals[1] = { node };
	PGresult   *res;

	res = cpol_q(pg, lock ? "lock the journal" : "unlock the journal",
	    lock ? "SELECT pg_advisory_lock(hashtext('smtpgate.journal:' || $1))"
		 : "SELECT pg_advisory_unlock(hashtext('smtpgate.journal:' || "
		   "$1))",
	    1, vals, NULL, NULL, 0);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

static int cpol_publish_locked(PGconn *, struct spool *, const char *node,
    size_t max);

/*
 * Entries up to the mark reached PostgreSQL before (their drop did not
 * happen): skipped, not published again. The rest and the mark in one
 * transaction, then the drop of all. The number published, or -1.
 */
static int
cpol_publish_batch(PGconn *pg, struct spool *sp, const char *node,
    struct cpol_batch *b, struct cpol_mark *m)
{
	size_t skip = 0;
	int    rc;

	while (m->have && skip < b->n && b->e[skip].seq <= m->last)
		skip++;
	if (skip > 0 && !b->match) {
		log_warnx("cluster policy: the journal does not continue its "
			  "mark (entry %llu is not the one published; its LMDB "
			  "copied back from an older state?): its entries are "
			  "published under a new journal instance",
		    (unsigned long long)m->last);
		if (cpol_mark_renew(sp, m) == -1)
			return -1;
		skip = 0;
	}
	if (b->n == 0 ||
	    (skip < b->n && cpol_batch_send(pg, b, skip, node, m) == -1))
		return b->n == 0 ? 0 : -1;
	if (skip > 0)
		log_warnx("cluster policy: %zu journal entries (up to %llu) "
			  "were already published: dropped, not published "
			  "again; policy rows after version %llu read again",
		    skip, (unsigned long long)m->last,
		    (unsigned long long)m->version);
	if ((rc = cpol_mark_drop(sp, b->last, m, skip > 0)) != 0)
		log_warnx("cluster policy: dropping %zu published entries: %s "
			  "(the journal's mark keeps them from being "
			  "published again)",
		    b->n, spool_strerror(rc));
	return (int)(b->n - skip);
}

int
cpol_publish(PGconn *pg, struct spool *sp, const char *node, size_t max)
{
	int rc;

	if (max == 0 || cpol_node_lock(pg, node, true) == -1)
		return max == 0 ? 0 : -1;
	rc = cpol_publish_locked(pg, sp, node, max);
	cpol_rollback(pg);
	if (PQstatus(pg) == CONNECTION_OK)
		(void)cpol_node_lock(pg, node, false);
	return rc;
}

static int
cpol_publish_locked(PGconn *pg, struct spool *sp, const char *node,
    size_t max)
{
	struct cpol_batch b = { .max = max };
	struct cpol_mark  m;
	bool		  over = false;
	int		  rc;

	if (cpol_overflow_take(sp, &over) != 0)
		return -1;
	if (over && cpol_push_all(pg, sp, node, NULL) == -1) {
		cpol_overflow_again(sp);
		return -1;
	}
	if (cpol_mark_get(pg, sp, node, &m) == -1)
		return -1;
	b.e = xcalloc(max, sizeof(*b.e));
	buf_init(&b.data, SIZE_MAX / 2);
	if ((rc = cpol_batch_read(sp, &b, &m)) != 0) {
		log_warnx("cluster policy: reading the journal: %s",
		    spool_strerror(rc));
		rc = -1;
	} else
		rc = cpol_publish_batch(pg, sp, node, &b, &m);
	free(b.e);
	buf_release(&b.data);
	return rc;
}

/* ---- pull */

static int
cpol_meta_u64(struct spool *sp, const char *name, uint64_t *v_r)
{
	struct spool_txn *t;
	int		  rc;

	*v_r = 0;
	if ((rc = spool_begin(sp, false, &t)) != 0)
		return rc;
	rc = spool_cluster_meta_get(t, name, v_r);
	spool_abort(&t);
	return rc;
}

/* PostgreSQL's meta value name as a number (0 if absent), or -1. */
static int
cpol_pg_meta(PGconn *pg, const char *name, uint64_t *v_r)
{
	const char *vals[1] = { name };
	PGresult   *res;

	*v_r = 0;
	if ((res = cpol_q(pg, "read smtpgate.meta",
		 "SELECT value FROM smtpgate.meta WHERE name = $1", 1, vals,
		 NULL, NULL, 0)) == NULL)
		return -1;
	if (PQntuples(res) == 1)
		*v_r = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/* A row of a binary result as an entry; -1 for a kind this node does
 * not know (a newer node's). */
static int
cpol_row(const PGresult *res, int i, int kcol, struct spool_centry *e)
{
	memset(e, 0, sizeof(*e));
	if (spool_ckind_parse(PQgetvalue(res, i, kcol),
		(size_t)PQgetlength(res, i, kcol), &e->ce_kind) != 0)
		return -1;
	e->ce_key = (const uint8_t *)PQgetvalue(res, i, kcol + 1);
	e->ce_klen = (size_t)PQgetlength(res, i, kcol + 1);
	if (!PQgetisnull(res, i, kcol + 2)) {
		e->ce_val = (const uint8_t *)PQgetvalue(res, i, kcol + 2);
		e->ce_vlen = (size_t)PQgetlength(res, i, kcol + 2);
	}
	return 0;
}

static uint64_t
cpol_be64(const char *p)
{
	uint64_t v = 0;
	int	 i;

	for (i = 0; i < 8; i++)
		v = v << 8 | (uint8_t)p[i];
	return v;
}

/*
 * Pauses that another node's resume removed from this node's copy. As
 * spoolctl resume does, their held recipients become due at once, after
 * the mirror's transaction is committed (else they wait for the due time
 * the pause pushed on, up to an hour). At most SPOOL_PAUSE_MAX, which is
 * as many pauses as there can be.
 */
static struct {
	size_t n, cap;
	char (*domain)[SPOOL_DOMAIN_MAX];
	char (*login)[SPOOL_LOGIN_MAX];
} cpol_resumed;

/* A pause key whose row is about to go: noted if this node has it. */
static int
cpol_resumed_note(struct spool_txn *t, const struct spool_centry *e)
{
	char		   domain[SPOOL_DOMAIN_MAX], login[SPOOL_LOGIN_MAX];
	struct spool_pause pz;
	int		   rc;

	if (e->ce_kind != SPOOL_CK_PAUSES || e->ce_val != NULL ||
	    cpol_resumed.n == SPOOL_PAUSE_MAX ||
	    spool_pause_key_parse(e->ce_key, e->ce_klen, domain,
		sizeof(domain), login, sizeof(login)) != 0)
		return 0;
	if ((rc = spool_pause_get(t, domain, login, &pz)) != 0)
		return rc == SPOOL_ENOTFOUND ? 0 : rc;
	if (cpol_resumed.n == cpol_resumed.cap) { /* as resumes come */
		cpol_resumed.cap = cpol_resumed.cap ? cpol_resumed.cap * 2 : 8;
		if (cpol_resumed.cap > SPOOL_PAUSE_MAX)
			cpol_resumed.cap = SPOOL_PAUSE_MAX;
		cpol_resumed.domain = xreallocarray(cpol_resumed.domain,
		    cpol_resumed.cap, sizeof(*cpol_resumed.domain));
		cpol_resumed.login = xreallocarray(cpol_resumed.login,
		    cpol_resumed.cap, sizeof(*cpol_resumed.login));
	}
	memcpy(cpol_resumed.domain[cpol_resumed.n], domain, sizeof(domain));
	memcpy(cpol_resumed.login[cpol_resumed.n++], login, sizeof(login));
	return 0;
}

/* After the commit (committed false: after an abort, forgotten). */
static void
cpol_resumed_release(struct spool *sp, bool committed)
{
	char   path[4096];
	size_t i, due, total = 0;
	int    rc;

	for (i = 0; committed && i < cpol_resumed.n; i++) {
		due = 0;
		rc = spool_pause_release(sp, cpol_resumed.domain[i],
		    cpol_resumed.login[i], (int64_t)time(NULL), &due);
		log_info("cluster policy: domain=%s%s%s resumed on another "
			 "node: %zu recipient(s) due now%s%s",
		    cpol_resumed.domain[i],
		    cpol_resumed.login[i][0] != '\0' ? ", account=" : "",
		    cpol_resumed.login[i], due, rc != 0 ? ", stopped: " : "",
		    rc != 0 ? spool_strerror(rc) : "");
		total += due;
	}
	if (total > 0 &&
	    str_printf(path, sizeof(path), "%s/../trigger", spool_db_dir(sp)) !=
		-1)
		trigger_pull(path); /* deliverd takes them now */
	cpol_resumed.n = 0;
}

/* Applies e unless the journal holds a newer local change of its key
 * (counted in *n). 0 or an error; SPOOL_ECORRUPT is logged and skipped. */
static int
cpol_apply_open(struct spool_txn *t, const struct spool_centry *e,
    bool pending, int *n)
{
	bool has = false;
	int  rc;

	if (pending && (rc = spool_cjournal_has(t, e->ce_kind, e->ce_key,
			    e->ce_klen, &has)) != 0)
		return rc;
	if (has)
		return 0;
	if ((rc = cpol_resumed_note(t, e)) != 0)
		return rc;
	if ((rc = spool_cluster_apply(t, e)) == SPOOL_ECORRUPT) {
		log_warnx("cluster policy: a %s row that does not decode, "
			  "skipped",
		    spool_ckind_name(e->ce_kind));
		return 0;
	}
	if (rc > 0 && e->ce_kind == SPOOL_CK_DKIM_KEY) {
		/* a file in keys/: the rest of the policy still mirrors */
		log_warnx("cluster policy: DKIM key file %.*s: %s (skipped; "
			  "the next resync tries again)",
		    (int)e->ce_klen, (const char *)e->ce_key, strerror(rc));
		return 0;
	}
	if (rc == 0)
		(*n)++;
	return rc;
}

/* cpol_apply_open on a row as PostgreSQL has it: opened first
 * (cluster_seal.c); a row that does not open is logged and skipped. */
static int
cpol_apply(struct spool_txn *t, const struct spool_centry *row, bool pending,
    int *n)
{
	struct spool_centry  open = *row, *e = &open;
	struct buf	     plain;
	char		     why[160];
	char		     kv[128];
	int		     rc;

	buf_init(&plain, SIZE_MAX / 2);
	plain.secret = true; /* keys, hashes, secrets: wiped */
	if (cseal_open(&open, &plain, why, sizeof(why)) == -1) {
		log_warnx("cluster policy: a %s row (key %s): %s: skipped",
		    spool_ckind_name(row->ce_kind),
		    log_vis(kv, sizeof(kv), (const char *)row->ce_key,
			row->ce_klen),
		    why);
		buf_release(&plain);
		return 0;
	}
	rc = cpol_apply_open(t, e, pending, n);
	buf_release(&plain);
	return rc;
}

/* A write txn of the mirror: nothing it writes is journaled. */
static int
cpol_mirror_begin(struct spool *sp, struct spool_txn **t_r, bool *pending_r)
{
	size_t n = 0;
	int    rc;

	if ((rc = spool_begin(sp, true, t_r)) != 0)
		return rc;
	spool_txn_nojournal(*t_r);
	if ((rc = spool_cjournal_count(*t_r, &n)) != 0)
		spool_abort(t_r);
	*pending_r = n > 0;
	return rc;
}

/* Stores the version mirrored, to, unless it went below from meanwhile: a
 * publish that skipped entries already published (spoolctl's, beside
 * clusterd) wants the rows after that lower version read again. */
static int
cpol_mirrored_set(struct spool_txn *t, uint64_t from, uint64_t to)
{
	uint64_t cur = 0;
	int	 rc = spool_cluster_meta_get(t, CPOL_V_MIRRORED, &cur);

	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		return rc;
	return cur < from ? 0 : spool_cluster_meta_put(t, CPOL_V_MIRRORED, to);
}

static int
cpol_pull_apply(struct spool *sp, const PGresult *res, uint64_t *ver_r,
    int *n)
{
	struct spool_centry e;
	struct spool_txn   *t;
	uint64_t	    from = *ver_r;
	bool		    pending;
	int		    i, rc;

	if ((rc = cpol_mirror_begin(sp, &t, &pending)) != 0)
		return rc;
	for (i = 0; i < PQntuples(res); i++) {
		*ver_r = cpol_be64(PQgetvalue(res, i, 3));
		if (cpol_row(res, i, 0, &e) == -1)
			continue; /* a kind of a newer node */
		if ((rc = cpol_apply(t, &e, pending, n)) != 0) {
			spool_abort(&t);
			cpol_resumed_release(sp, false);
			return rc;
		}
	}
	if ((rc = cpol_mirrored_set(t, from, *ver_r)) != 0) {
		spool_abort(&t);
		cpol_resumed_release(sp, false);
		return rc;
	}
	rc = spool_commit(&t);
	cpol_resumed_release(sp, rc == 0);
	return rc;
}

int
cpol_pull(PGconn *pg, struct spool *sp, size_t max)
{
	char	    vbuf[24], mbuf[24];
	const char *vals[2] = { vbuf, mbuf };
	uint64_t    ver, purged;
	size_t	    pending = 0;
	struct spool_txn *t;
	PGresult   *res;
	int	    n = 0, rc;

	rc = cpol_meta_u64(sp, CPOL_V_MIRRORED, &ver);
	if (rc == SPOOL_ENOTFOUND)
		return cpol_resync(pg, sp) == 0 ? 0 : -1; /* never mirrored */
	if (rc != 0 || cpol_pg_meta(pg, "policy_purged", &purged) == -1)
		return -1;
	if (ver < purged) /* tombstones it never saw are gone */
		return cpol_resync(pg, sp) == 0 ? 0 : -1;
	if (spool_begin(sp, false, &t) == 0) {
		(void)spool_cjournal_count(t, &pending);
		spool_abort(&t);
	}
	if (pending > CPOL_PENDING_MAX)
		return 0; /* publish drains it first */
	(void)snprintf(vbuf, sizeof(vbuf), "%llu", (unsigned long long)ver);
	(void)snprintf(mbuf, sizeof(mbuf), "%zu", max);
	if ((res = cpol_q(pg, "pull",
		 "SELECT kind, key, value, version FROM smtpgate.policy "
		 "WHERE version > $1 ORDER BY version LIMIT $2",
		 2, vals, NULL, NULL, 1)) == NULL)
		return -1;
	rc = PQntuples(res) > 0 ? cpol_pull_apply(sp, res, &ver, &n) : 0;
	PQclear(res);
	if (rc != 0) {
		log_warnx("cluster policy: applying pulled rows: %s",
		    spool_strerror(rc));
		return -1;
	}
	return n;
}

/* ---- resync */

struct cpol_page {
	const PGresult	 *res;
	struct spool_txn *t;
	bool		  pending;
	int		  changed;
	enum spool_ckind  kind;
};

/* A local key within the page's range: gone unless PostgreSQL has it. */
static int
cpol_local_cb(const uint8_t *key, size_t klen, void *arg)
{
	struct cpol_page   *p = arg;
	struct spool_centry e = { .ce_kind = p->kind,
		.ce_key = key,
		.ce_klen = klen };
	int		    lo = 0, hi = PQntuples(p->res) - 1, mid, c;

	while (lo <= hi) {
		mid = lo + (hi - lo) / 2;
		c = spool_cluster_keycmp(key, klen,
		    (const uint8_t *)PQgetvalue(p->res, mid, 0),
		    (size_t)PQgetlength(p->res, mid, 0));
		if (c == 0)
			return 0;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return cpol_apply(p->t, &e, p->pending, &p->changed);
}

/* One page of a kind: rows (key, value) after lo, the last page when
 * last (then up to the last local key). Rows changed added to *changed. */
static int
cpol_page_apply(struct spool *sp, enum spool_ckind kind, const PGresult *res,
    const uint8_t *lo, size_t lolen, bool last, int *changed)
{
	struct cpol_page    p = { .res = res, .kind = kind };
	struct spool_centry e = { .ce_kind = kind };
	int		    i, n = PQntuples(res), rc;

	if ((rc = cpol_mirror_begin(sp, &p.t, &p.pending)) != 0)
		return rc;
	/* issue blocks and key files are only applied, never deleted */
	if (kind < SPOOL_CK_ISSUE_BLOCK &&
	    (rc = spool_cluster_range(p.t, kind, lo, lolen,
		 last ? NULL : (const uint8_t *)PQgetvalue(res, n - 1, 0),
		 last ? 0 : (size_t)PQgetlength(res, n - 1, 0), cpol_local_cb,
		 &p)) != 0)
		goto fail;
	for (i = 0; i < n; i++) {
		e.ce_key = (const uint8_t *)PQgetvalue(res, i, 0);
		e.ce_klen = (size_t)PQgetlength(res, i, 0);
		e.ce_val = PQgetisnull(res, i, 1)
		    ? NULL
		    : (const uint8_t *)PQgetvalue(res, i, 1);
		e.ce_vlen = (size_t)PQgetlength(res, i, 1);
		if ((rc = cpol_apply(p.t, &e, p.pending, &p.changed)) != 0)
			goto fail;
	}
	if ((rc = spool_commit(&p.t)) == 0)
		*changed += p.changed;
	cpol_resumed_release(sp, rc == 0);
	return rc;
fail:
	spool_abort(&p.t);
	cpol_resumed_release(sp, false);
	return rc;
}

static int
cpol_resync_kind(PGconn *pg, struct spool *sp, enum spool_ckind kind,
    int *changed)
{
	uint8_t	    lo[512];
	size_t	    lolen = 0;
	char	    nbuf[16];
	const char *vals[3] = { spool_ckind_name(kind), (const char *)lo, nbuf };
	int	    lens[3] = { 0, 0, 0 }, bin[3] = { 0, 1, 0 };
	PGresult   *res;
	bool	    last;
	int	    n, rc;

	(void)snprintf(nbuf, sizeof(nbuf), "%d", CPOL_PAGE);
	do {
		lens[1] = (int)lolen;
		if ((res = cpol_q(pg, "resync",
			 "SELECT key, value FROM smtpgate.policy WHERE kind = "
			 "$1 "
			 "AND key > $2 ORDER BY key LIMIT $3",
			 3, vals, lens, bin, 1)) == NULL)
			return -1;
		n = PQntuples(res);
		last = n < CPOL_PAGE;
		rc = cpol_page_apply(sp, kind, res, lo, lolen, last, changed);
		if (rc == 0 && n > 0 && PQgetlength(res, n - 1, 0) <= 511) {
			lolen = (size_t)PQgetlength(res, n - 1, 0);
			memcpy(lo, PQgetvalue(res, n - 1, 0), lolen);
		}
		PQclear(res);
		if (rc != 0) {
			log_warnx("cluster policy: resync of %s: %s",
			    spool_ckind_name(kind), spool_strerror(rc));
			return -1;
		}
	} while (!last);
	return 0;
}

/* Deletes old tombstones and records the highest version deleted. */
static int
cpol_purge(PGconn *pg)
{
	static const char sql[] =
	    "WITH gone AS (DELETE FROM smtpgate.policy WHERE value IS NULL "
	    "AND changed < now() - interval '30 days' RETURNING version) "
	    "INSERT INTO smtpgate.meta (name, value) "
	    "SELECT 'policy_purged', max(version)::text FROM gone "
	    "HAVING max(version) IS NOT NULL "
	    "ON CONFLICT (name) DO UPDATE SET value = GREATEST("
	    "smtpgate.meta.value::bigint, EXCLUDED.value::bigint)::text";

	if (cpol_exec(pg, "purge tombstones", sql) == -1)
		return -1;
	return cpol_mark_purge(pg);
}

static int
cpol_overflow_take(struct spool *sp, bool *over_r)
{
	struct spool_txn *t;
	int		  rc;

	if ((rc = spool_begin(sp, true, &t)) != 0)
		return rc;
	if ((rc = spool_cjournal_overflowed(t, over_r)) == 0 && *over_r)
		rc = spool_cjournal_set_overflow(t, false);
	if (rc != 0 || !*over_r) {
		spool_abort(&t);
		return rc;
	}
	if ((rc = spool_commit(&t)) == 0)
		log_warnx("cluster policy: the journal overflowed (%d entries)"
			  ": pushing every local policy row that PostgreSQL "
			  "lacks",
		    SPOOL_CJ_MAX);
	return rc;
}

/* A push of every row failed after the flag was taken: set it again. */
static void
cpol_overflow_again(struct spool *sp)
{
	struct spool_txn *t;

	if (spool_begin(sp, true, &t) != 0)
		return;
	if (spool_cjournal_set_overflow(t, true) != 0 ||
	    spool_commit(&t) != 0)
		spool_abort(&t);
}

int
cpol_resync(PGconn *pg, struct spool *sp)
{
	uint64_t	  ver = 0, top = 0;
	unsigned	  k;
	int		  changed = 0, rc;
	struct spool_txn *t;
	PGresult	 *res;

	bool		  over = false;

	rc = cpol_meta_u64(sp, CPOL_V_MIRRORED, &ver);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		return -1;
	/* never mirrored, or changes the journal could not hold: this
	 * node's rows join the cluster's before any local row is deleted */
	if (cpol_overflow_take(sp, &over) != 0)
		return -1;
	if ((rc == SPOOL_ENOTFOUND || over) &&
	    cpol_push_all(pg, sp, CPOL_FIRST_ORIGIN, NULL) == -1) {
		if (over)
			cpol_overflow_again(sp);
		return -1;
	}
	if (cpol_purge(pg) == -1 ||
	    (res = cpol_q(pg, "resync",
		 "SELECT coalesce(max(version), 0) FROM smtpgate.policy", 0,
		 NULL, NULL, NULL, 0)) == NULL)
		return -1;
	top = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	for (k = 0; k < SPOOL_CK_N; k++)
		if (cpol_resync_kind(pg, sp, (enum spool_ckind)k, &changed) ==
		    -1)
			return -1;
	if ((rc = spool_begin(sp, true, &t)) != 0)
		return -1;
	rc = cpol_mirrored_set(t, ver, top > ver ? top : ver);
	if (rc != 0 || (rc = spool_commit(&t)) != 0) {
		spool_abort(&t);
		return -1;
	}
	log_info("cluster policy: resync done, %d local rows changed, "
		 "version %llu",
	    changed, (unsigned long long)(top > ver ? top : ver));
	return 0;
}

/* ---- for cluster.state */

/* Also logs, once per overflow, that the journal is full (the writers
 * cannot log: libspool does not). */
int
cd_journal_count(struct spool *sp, uint64_t *n_r)
{
	static bool	  logged;
	struct spool_txn *t;
	size_t		  n = 0;
	bool		  over = false;
	int		  rc;

	*n_r = 0;
	if ((rc = spool_begin(sp, false, &t)) != 0)
		return rc;
	if ((rc = spool_cjournal_count(t, &n)) == 0)
		rc = spool_cjournal_overflowed(t, &over);
	spool_abort(&t);
	if (over && !logged)
		log_warnx("cluster policy: the journal is full (%d entries): "
			  "policy changes are no longer journaled; every local "
			  "row is pushed when PostgreSQL is reachable",
		    SPOOL_CJ_MAX);
	logged = over;
	*n_r = n;
	return rc;
}

int
cd_policy_version(struct spool *sp, uint64_t *v_r)
{
	int rc = cpol_meta_u64(sp, CPOL_V_MIRRORED, v_r);

	return rc == SPOOL_ENOTFOUND ? 0 : rc;
}

/* ---- export: every local row, ON CONFLICT DO NOTHING */

struct cpol_push {
	PGconn		   *pg;
	const char	   *node;
	struct cpol_counts *c;
	size_t		    in_txn;
	int		    failed;
};

static int
cpol_push_cb(const struct spool_centry *e, void *arg)
{
	struct cpol_push *p = arg;
	int		  n;

	if (p->in_txn == 0 && cpol_begin(p->pg) == -1)
		return p->failed = 1;
	if ((n = cpol_put(p->pg, CPOL_INSERT, e, p->node)) == -1) {
		cpol_rollback(p->pg);
		p->in_txn = 0;
		return p->failed = 1;
	}
	if (p->c != NULL && e->ce_kind < 8) {
		if (n > 0)
			p->c->added[e->ce_kind]++;
		else
			p->c->present[e->ce_kind]++;
	}
	if (++p->in_txn < CPOL_PAGE)
		return 0;
	p->in_txn = 0;
	return cpol_exec(p->pg, "COMMIT", "COMMIT") == 0 ? 0 : (p->failed = 1);
}

static int
cpol_push_all(PGconn *pg, struct spool *sp, const char *node,
    struct cpol_counts *c)
{
	struct cpol_push  p = { .pg = pg, .node = node, .c = c };
	struct spool_txn *t;
	unsigned	  k;
	int		  rc = 0;

	if (spool_begin(sp, false, &t) != 0)
		return -1;
	for (k = 0; k < SPOOL_CK_N && rc == 0; k++)
		rc = spool_cluster_iter(t, (enum spool_ckind)k, cpol_push_cb,
		    &p);
	spool_abort(&t);
	if (rc == 0 && p.in_txn > 0 &&
	    cpol_exec(pg, "COMMIT", "COMMIT") == -1)
		rc = -1;
	if (rc != 0 && !p.failed)
		log_warnx("cluster policy: reading local policy: %s",
		    spool_strerror(rc));
	return rc == 0 ? 0 : -1;
}

int
cpol_export(PGconn *pg, struct spool *sp, const char *node,
    struct cpol_counts *c)
{
	memset(c, 0, sizeof(*c));
	return cpol_push_all(pg, sp, node, c);
}

/* Where the seal's walk is: the last (kind, key) looked at. */
struct cpol_seal_cursor {
	char	   kind[32];
	struct buf key;
};

/* What one row needs: 0 none, 1 sealing (in clear), 2 sealing again
 * (opens only with the accepted key), -1 opens with neither. */
static int
cpol_seal_need(const struct spool_centry *row)
{
	struct spool_centry e = *row;
	struct buf	    plain;
	char		    why[160], kv[128];
	int		    rc;

	if (!cseal_is_sealed(row->ce_val, row->ce_vlen))
		return 1;
	buf_init(&plain, SIZE_MAX / 2);
	plain.secret = true;
	rc = cseal_open(&e, &plain, why, sizeof(why));
	buf_release(&plain);
	if (rc == -1)
		log_warnx("cluster seal: a %s row (key %s): %s: left as it is",
		    spool_ckind_name(row->ce_kind),
		    log_vis(kv, sizeof(kv), (const char *)row->ce_key,
			row->ce_klen),
		    why);
	return rc == -1 ? -1 : rc == 1 ? 2 : 0;
}

/* The value to write for row (need 1 or 2) into sealed. 0/-1. */
static int
cpol_seal_value(const struct spool_centry *row, int need, struct buf *plain,
    struct buf *sealed)
{
	struct spool_centry e = *row;
	char		    why[160];

	if (need == 2 && cseal_open(&e, plain, why, sizeof(why)) != 1)
		return -1;
	return cseal_seal(&e, sealed);
}

/* One page of the walk in one transaction under the lock: the rows in
 * clear sealed, those that open only with the accepted key sealed again.
 * The rows looked at (0: the walk is over), or -1. */
static long
cpol_seal_page(PGconn *pg, const char *kinds, struct cpol_seal_cursor *cur,
    struct cpol_seal_counts *cnt)
{
	static const char upd[] =
	    "UPDATE smtpgate.policy SET value = $3, "
	    "version = nextval('smtpgate.policy_version'), changed = now() "
	    "WHERE kind = $1 AND key = $2";
	const char	   *vals[3] = { kinds, cur->kind,
		  cur->key.data != NULL ? cur->key.data : "" };
	int		    lens[3] = { 0, 0, (int)cur->key.len },
		  bin[3] = { 0, 0, 1 };
	struct spool_centry e;
	struct buf	    sealed, plain;
	PGresult	   *res, *r2;
	long		    i, n;
	int		    need;

	if (cpol_begin(pg) == -1)
		return -1;
	res = cpol_q(pg, "policy rows",
	    "SELECT kind, key, value FROM smtpgate.policy "
	    "WHERE value IS NOT NULL AND kind = ANY($1::text[]) AND "
	    "(kind, key) > ($2, $3) ORDER BY kind, key LIMIT 2000",
	    3, vals, lens, bin, 1);
	if (res == NULL) {
		cpol_rollback(pg);
		return -1;
	}
	n = PQntuples(res);
	buf_init(&sealed, SIZE_MAX / 2);
	buf_init(&plain, SIZE_MAX / 2);
	plain.secret = true;
	for (i = 0; i < n; i++) {
		if (cpol_row(res, (int)i, 0, &e) == -1)
			break;
		if ((need = cpol_seal_need(&e)) <= 0) {
			cnt->unopened += need == -1;
			continue;
		}
		if (cpol_seal_value(&e, need, &plain, &sealed) == -1)
			break;
		vals[0] = PQgetvalue(res, (int)i, 0);
		vals[1] = (const char *)e.ce_key;
		vals[2] = sealed.data;
		lens[0] = 0, lens[1] = (int)e.ce_klen, lens[2] = (int)sealed.len;
		bin[0] = 0, bin[1] = 1, bin[2] = 1;
		if ((r2 = cpol_q(pg, "seal a row", upd, 3, vals, lens, bin, 0)) ==
		    NULL)
			break;
		PQclear(r2);
		if (need == 1)
			cnt->sealed++;
		else
			cnt->resealed++;
	}
	buf_release(&sealed);
	buf_release(&plain);
	if (i < n || cpol_exec(pg, "COMMIT", "COMMIT") == -1) {
		PQclear(res);
		cpol_rollback(pg);
		return -1;
	}
	if (n > 0) {
		(void)str_copy(cur->kind, sizeof(cur->kind),
		    PQgetvalue(res, (int)n - 1, 0));
		buf_reset(&cur->key);
		(void)buf_append(&cur->key, PQgetvalue(res, (int)n - 1, 1),
		    (size_t)PQgetlength(res, (int)n - 1, 1));
	}
	PQclear(res);
	return n;
}

int
cpol_seal_all(PGconn *pg, struct cpol_seal_counts *cnt)
{
	struct cpol_seal_cursor cur = { .kind = "" };
	struct buf		kinds;
	unsigned		k;
	long			n;

	memset(cnt, 0, sizeof(*cnt));
	if (!cseal_on())
		return -1;
	buf_init(&kinds, 1024);
	buf_init(&cur.key, SIZE_MAX / 2);
	for (k = 0; k < SPOOL_CK_N; k++) /* the kinds this node knows */
		(void)buf_printf(&kinds, "%c%s", k > 0 ? ',' : '{',
		    spool_ckind_name((enum spool_ckind)k));
	(void)buf_putc(&kinds, '}');
	while ((n = cpol_seal_page(pg, kinds.data, &cur, cnt)) > 0)
		;
	buf_release(&kinds);
	buf_release(&cur.key);
	return n == -1 ? -1 : 0;
}
