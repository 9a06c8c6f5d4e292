/*
 * The policy journal's high-water mark (cluster_policy.h, clusterd(8)
 * "Policy"). A publish sets smtpgate.journal_marks' row of (node, the
 * LMDB journal's instance) to its last entry in the same PostgreSQL
 * transaction as the rows, so entries that reached PostgreSQL but were
 * not dropped from the journal afterwards (the process killed between
 * the COMMIT and the drop, or the drop failing) are skipped and dropped
 * at the next publish instead of being published again: again they
 * would get a newer version than another node's later change of the same
 * key and overwrite it everywhere.
 *
 * The row names its entry by seq and digest: a journal whose entry at the
 * mark is another one (its LMDB put back from an older copy: sequence
 * numbers given out again) does not continue the mark; it gets a new
 * instance, and its waiting entries are published, as before marks.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_policy.h"
#include "log.h"
#include "spool.h"
#include "spool_cluster.h"

_Static_assert(CPOL_TOMBSTONE_DAYS == 30, "cpol_mark_purge's interval");

static int
cpol_mark_instance(struct spool *sp, char *inst)
{
	struct spool_txn *t;
	int		  rc;

	if ((rc = spool_begin(sp, false, &t)) == 0) {
		rc = spool_cjournal_instance(t, false, inst);
		spool_abort(&t);
	}
	if (rc != SPOOL_ENOTFOUND)
		return rc;
	if ((rc = spool_begin(sp, true, &t)) != 0)
		return rc;
	if ((rc = spool_cjournal_instance(t, true, inst)) != 0) {
		spool_abort(&t);
		return rc;
	}
	return spool_commit(&t);
}

static int
cpol_unhex(const char *s, uint8_t *dst, size_t n)
{
	unsigned x;
	size_t	 i;

	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		if (sscanf(s + 2 * i, "%2x", &x) != 1)
			return -1;
		dst[i] = (uint8_t)x;
	}
	return 0;
}

int
cpol_mark_get(PGconn *pg, struct spool *sp, const char *node,
    struct cpol_mark *m)
{
	const char *vals[2] = { node, m->inst };
	PGresult   *res;
	int	    rc;

	memset(m, 0, sizeof(*m));
	if ((rc = cpol_mark_instance(sp, m->inst)) != 0) {
		log_warnx("cluster policy: the journal's instance: %s",
		    spool_strerror(rc));
		return -1;
	}
	if ((res = cpol_q(pg, "read the journal's mark",
		 "SELECT last_seq, encode(digest, 'hex'), version "
		 "FROM smtpgate.journal_marks WHERE node = $1 AND instance = "
		 "$2",
		 2, vals, NULL, NULL, 0)) == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		m->have = true;
		m->last = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		m->version = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
		if (cpol_unhex(PQgetvalue(res, 0, 1), m->md, sizeof(m->md)) ==
		    -1)
			memset(m->md, 0, sizeof(m->md)); /* matches nothing */
	}
	PQclear(res);
	return 0;
}

struct cpol_mark_find {
	const struct cpol_mark *m;
	bool			match;
};

static int
cpol_mark_find_cb(uint64_t seq, const struct spool_centry *e, void *arg)
{
	struct cpol_mark_find *f = arg;
	uint8_t		       md[SPOOL_CJ_DIGEST];

	f->match = seq == f->m->last && spool_centry_digest(seq, e, md) == 0 &&
	    memcmp(md, f->m->md, sizeof(md)) == 0;
	return 1;
}

int
cpol_mark_check(struct spool_txn *t, const struct cpol_mark *m, bool *match_r)
{
	struct cpol_mark_find f = { .m = m };
	int		      rc;

	*match_r = false;
	if (!m->have || m->last == 0)
		return 0;
	rc = spool_cjournal_iter(t, m->last - 1, 1, cpol_mark_find_cb, &f);
	*match_r = f.match;
	return rc == 1 ? 0 : rc;
}

int
cpol_mark_renew(struct spool *sp, struct cpol_mark *m)
{
	struct spool_txn *t;
	int		  rc;

	if ((rc = spool_begin(sp, true, &t)) == 0 &&
	    (rc = spool_cjournal_instance_new(t, m->inst)) != 0)
		spool_abort(&t);
	if (rc == 0)
		rc = spool_commit(&t);
	if (rc != 0) {
		log_warnx("cluster policy: a new journal instance: %s",
		    spool_strerror(rc));
		return -1;
	}
	m->have = false;
	return 0;
}

int
cpol_mark_put(PGconn *pg, const char *node, const struct cpol_mark *m,
    uint64_t last, const uint8_t md[SPOOL_CJ_DIGEST], bool keep)
{
	char	    seq[24];
	const char *vals[5] = { node, m->inst, seq, (const char *)md,
		keep ? "true" : "false" };
	const int   lens[5] = { 0, 0, 0, SPOOL_CJ_DIGEST, 0 };
	const int   bin[5] = { 0, 0, 0, 1, 0 };
	PGresult   *res;

	(void)snprintf(seq, sizeof(seq), "%llu", (unsigned long long)last);
	res = cpol_q(pg, "set the journal's mark",
	    "INSERT INTO smtpgate.journal_marks "
	    "(node, instance, last_seq, digest, version, updated) "
	    "VALUES ($1, $2, $3, $4, (SELECT coalesce(max(version), 0) "
	    "FROM smtpgate.policy), now()) "
	    "ON CONFLICT (node, instance) DO UPDATE SET "
	    "last_seq = EXCLUDED.last_seq, digest = EXCLUDED.digest, "
	    "version = CASE WHEN $5::boolean THEN "
	    "smtpgate.journal_marks.version "
	    "ELSE EXCLUDED.version END, updated = now()",
	    5, vals, lens, bin, 0);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

int
cpol_mark_drop(struct spool *sp, uint64_t upto, const struct cpol_mark *m,
    bool reread)
{
	struct spool_txn *t;
	uint64_t	  v = 0;
	int		  rc;

	if ((rc = spool_begin(sp, true, &t)) != 0)
		return rc;
	if ((rc = spool_cjournal_drop(t, upto)) == 0 && reread &&
	    (rc = spool_cluster_meta_get(t, CPOL_V_MIRRORED, &v)) == 0 &&
	    v > m->version)
		rc = spool_cluster_meta_put(t, CPOL_V_MIRRORED, m->version);
	if (rc == SPOOL_ENOTFOUND) /* never mirrored: the resync reads all */
		rc = 0;
	if (rc != 0) {
		spool_abort(&t);
		return rc;
	}
	return spool_commit(&t);
}

int
cpol_mark_purge(PGconn *pg)
{
	PGresult *res;

	res = cpol_q(pg, "purge superseded journal marks",
	    "DELETE FROM smtpgate.journal_marks m WHERE m.updated < now() - "
	    "interval '30 days' AND EXISTS "
	    "(SELECT 1 FROM smtpgate.journal_marks n WHERE n.node = m.node "
	    "AND n.updated > m.updated)",
	    0, NULL, NULL, NULL, 0);
	PQclear(res);
	return res != NULL ? 0 : -1;
}
