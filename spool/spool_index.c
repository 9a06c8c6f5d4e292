/*
 * The delivery log's secondary keys and the issue date index (layout in
 * spool_index.h), the readers that use them, and the one-time build for
 * a database that predates them.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "spool.h"
#include "spool_index.h"
#include "spool_key.h"
#include "spool_rec.h"
#include "xmem.h"

/* An internal "stop here" from a callback, never returned to a caller. */
#define SPOOL_IDX_STOP (-30990)

static void
spool_idx_type_key(struct spool_key *k, unsigned type, uint64_t seq)
{
	uint8_t b = (uint8_t)type;

	spool_key_init(k);
	spool_key_raw(k, &b, 1);
	spool_key_be64(k, seq);
}

static void
spool_idx_issue_key(struct spool_key *k, uint64_t issue, uint64_t seq)
{
	spool_key_init(k);
	spool_key_be64(k, issue);
	spool_key_be64(k, seq);
}

static void
spool_idx_date_key(struct spool_key *k, const char *date, uint64_t id)
{
	spool_key_init(k);
	spool_key_raw(k, date, 10);
	spool_key_be64(k, id);
}

/* 0, or the error; a key that is already gone is fine. */
static int
spool_idx_del(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k)
{
	int rc = spool_db_del(t, d, k);

	return rc == SPOOL_ENOTFOUND ? 0 : rc;
}

int
spool_index_event_add(struct spool_txn *t, enum spool_ev_type type,
    uint64_t issue, uint64_t seq)
{
	struct spool_key k;
	int		 rc;

	spool_idx_type_key(&k, type, seq);
	if ((rc = spool_db_put(t, SPOOL_DB_DLOG_STATUS, &k, "", 0)) != 0 ||
	    issue == 0)
		return rc;
	spool_idx_issue_key(&k, issue, seq);
	return spool_db_put(t, SPOOL_DB_DLOG_ISSUE, &k, "", 0);
}

int
spool_index_event_del(struct spool_txn *t, const struct spool_index_ev *e,
    uint64_t seq)
{
	struct spool_key k;
	int		 rc;

	spool_key_init(&k);
	spool_key_be64(&k, seq);
	if ((rc = spool_idx_del(t, SPOOL_DB_DLOG, &k)) != 0)
		return rc;
	if (e->ie_qid[0] != '\0') {
		spool_key_init(&k);
		spool_key_raw(&k, e->ie_qid, QID_LEN);
		spool_key_be64(&k, seq);
		if ((rc = spool_idx_del(t, SPOOL_DB_DLOG_QID, &k)) != 0)
			return rc;
	}
	if ((rc = spool_index_acct_del(t, e->ie_login, seq)) != 0 ||
	    (rc = spool_engage_mkey_del(t, e->ie_mkey, seq)) != 0)
		return rc;
	spool_idx_type_key(&k, e->ie_type, seq);
	if ((rc = spool_idx_del(t, SPOOL_DB_DLOG_STATUS, &k)) != 0 ||
	    e->ie_issue == 0)
		return rc;
	spool_idx_issue_key(&k, e->ie_issue, seq);
	return spool_idx_del(t, SPOOL_DB_DLOG_ISSUE, &k);
}

int
spool_index_issue_add(struct spool_txn *t, const struct spool_issue *s)
{
	struct spool_key k;

	if (strlen(s->su_date) != 10)
		return EINVAL;
	spool_idx_date_key(&k, s->su_date, s->su_id);
	return spool_db_put(t, SPOOL_DB_ISSUE_DATE, &k, "", 0);
}

/* ---- the fields of an event's JSON */

/* "YYYY-MM-DDTHH:MM:SSZ" -> unix seconds; -1 if it is not that. */
static int64_t
spool_idx_dt(const char *s)
{
	struct tm   tm;
	const char *end;

	if (s == NULL || strlen(s) != 20)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL ||
	    *end != '\0')
		return -1;
	return (int64_t)timegm(&tm);
}

static int
spool_idx_type(const char *ev, enum spool_ev_type *type_r)
{
	if (ev == NULL)
		return SPOOL_ECORRUPT;
	if (strcmp(ev, "delivered") == 0)
		*type_r = SPOOL_EV_DELIVERED;
	else if (strcmp(ev, "deferred") == 0)
		*type_r = SPOOL_EV_DEFERRED;
	else if (strcmp(ev, "bounced") == 0)
		*type_r = SPOOL_EV_BOUNCED;
	else
		return spool_engage_type_parse(ev, type_r) == 0
		    ? 0
		    : SPOOL_ECORRUPT;
	return 0;
}

static int
spool_idx_fields(const struct json_val *root, struct spool_index_ev *e)
{
	const char *qid;
	int64_t	    id;
	int	    rc;

	if (json_type(root) != JSON_OBJECT ||
	    (rc = spool_idx_type(json_string(json_get(root, "event")),
		 &e->ie_type)) != 0)
		return SPOOL_ECORRUPT;
	if ((e->ie_dt = spool_idx_dt(json_string(json_get(root, "dt")))) < 0)
		return SPOOL_ECORRUPT;
	if (json_integer(json_get(json_get(root, "issue"), "id"), &id) &&
	    id > 0)
		e->ie_issue = (uint64_t)id;
	qid = json_string(json_get(root, "account"));
	if (qid != NULL) /* one that does not fit is indexed under none */
		if (str_copy(e->ie_login, sizeof(e->ie_login), qid) == -1)
			e->ie_login[0] = '\0';
	qid = json_string(json_get(root, "queue_id"));
	if (qid != NULL && qid_ok(qid))
		(void)str_copy(e->ie_qid, sizeof(e->ie_qid),
		    qid); /* QID_LEN fits */
	if (e->ie_type == SPOOL_EV_DELIVERED)
		e->ie_mkey = spool_engage_mkey(json_string(json_get(root,
						   "message_id")),
		    json_string(json_get(root, "to")));
	return 0;
}

int
spool_index_parse(const char *json, size_t len, struct spool_index_ev *e)
{
	struct json_val *root;
	char		 err[128];
	int		 rc;

	memset(e, 0, sizeof(*e));
	if (memchr(json, '\0', len) != NULL)
		return SPOOL_ECORRUPT;
	root = json_parse_n(json, len, err, sizeof(err));
	if (root == NULL)
		return SPOOL_ECORRUPT;
	rc = spool_idx_fields(root, e);
	json_val_free(&root);
	return rc;
}

/* ---- readers */

bool
spool_index_built(struct spool_txn *t, const char *done)
{
	uint64_t v = 0;

	return spool_db_meta_get_u64(t, done, &v) == 0 && v == 1;
}

bool
spool_log_indexed(struct spool_txn *t)
{
	return spool_index_built(t, "records_idx");
}

struct spool_idx_it {
	struct spool_txn *txn;
	size_t		  plen; /* bytes of the prefix */
	uint8_t		  prefix[8];
	int (*cb)(uint64_t, const char *, size_t, void *);
	int (*icb)(const struct spool_issue *, void *);
	void *arg;
};

int
spool_index_log_get(struct spool_txn *t, const uint8_t	    *seqkey,
    int (*cb)(uint64_t, const char *, size_t, void *), void *arg)
{
	struct spool_key k;
	const void	*json;
	size_t		 jlen;
	uint64_t	 seq;
	int		 rc;

	seq = spool_be64_get(seqkey);
	spool_key_init(&k);
	spool_key_be64(&k, seq);
	rc = spool_db_get(t, SPOOL_DB_DLOG, &k, &json, &jlen);
	if (rc == SPOOL_ENOTFOUND)
		return 0; /* log entry pruned */
	return rc != 0 ? rc : cb(seq, json, jlen, arg);
}

/* An index key (prefix, BE64 seq): the event from dlog, if still there. */
static int
spool_idx_log_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_idx_it *it = arg;

	(void)v;
	(void)len;
	if (klen != it->plen + 8 || memcmp(key, it->prefix, it->plen) != 0)
		return SPOOL_IDX_STOP;
	return spool_index_log_get(it->txn, key + it->plen, it->cb, it->arg);
}

/* Every index entry with it->prefix, in seq order or reversed. */
static int
spool_idx_log_iter(struct spool_idx_it *it, enum spool_dbi d, bool reverse)
{
	struct spool_key k;
	int		 rc;

	spool_key_init(&k);
	spool_key_raw(&k, it->prefix, it->plen);
	spool_key_be64(&k, reverse ? UINT64_MAX : 0);
	rc = spool_db_iter(it->txn, d, &k, it->plen, reverse, spool_idx_log_cb,
	    it);
	return rc == SPOOL_IDX_STOP ? 0 : rc;
}

int
spool_log_iter_type(struct spool_txn *t, enum spool_ev_type type, bool reverse,
    int (*cb)(uint64_t, const char *, size_t, void *), void *arg)
{
	struct spool_idx_it it = { .txn = t, .plen = 1, .cb = cb, .arg = arg };

	if (!spool_log_indexed(t))
		return spool_log_iter(t, reverse, 0, cb, arg);
	it.prefix[0] = (uint8_t)type;
	return spool_idx_log_iter(&it, SPOOL_DB_DLOG_STATUS, reverse);
}

int
spool_log_iter_issue(struct spool_txn *t, uint64_t issue, bool reverse,
    int (*cb)(uint64_t, const char *, size_t, void *), void *arg)
{
	struct spool_idx_it it = { .txn = t, .plen = 8, .cb = cb, .arg = arg };

	if (!spool_log_indexed(t))
		return spool_log_iter(t, reverse, 0, cb, arg);
	spool_be64_put(it.prefix, issue);
	return spool_idx_log_iter(&it, SPOOL_DB_DLOG_ISSUE, reverse);
}

/* ---- issues by account or date */

struct spool_idx_ids {
	uint64_t *v;
	size_t	  n;
	bool	  from_value; /* issue_idx: the id is the value */
};

static int
spool_idx_ids_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_idx_ids *ids = arg;

	if (ids->from_value ? len != 8 : klen != 18)
		return SPOOL_ECORRUPT;
	ids->v = xreallocarray(ids->v, ids->n + 1, sizeof(*ids->v));
	ids->v[ids->n++] = spool_be64_get(ids->from_value ? v : key + 10);
	return 0;
}

static int
spool_idx_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
spool_idx_issues_emit(struct spool_txn *t, struct spool_idx_ids *ids,
    int (*cb)(const struct spool_issue *, void *), void		*arg)
{
	struct spool_issue s;
	size_t		   i;
	int		   rc = 0;

	if (ids->n > 1) /* qsort(NULL, 0, …) is undefined */
		qsort(ids->v, ids->n, sizeof(*ids->v), spool_idx_u64_cmp);
	for (i = 0; i < ids->n && rc == 0; i++) {
		rc = spool_issue_get(t, ids->v[i], &s);
		if (rc == 0)
			rc = cb(&s, arg);
		else if (rc == SPOOL_ENOTFOUND)
			rc = 0;
	}
	return rc;
}

int
spool_issue_iter_sel(struct spool_txn *t, const char *login, const char *date,
    int (*cb)(const struct spool_issue *, void *), void *arg)
{
	struct spool_idx_ids ids = { .v = NULL };
	struct spool_key     k;
	int		     rc;

	if (date != NULL && strlen(date) != 10)
		return EINVAL;
	if (login == NULL && (date == NULL || !spool_log_indexed(t)))
		return spool_issue_iter(t, cb, arg);
	spool_key_init(&k);
	if (login != NULL) {
		/* issue_idx: login\0date\0(0 | 1 name\0) -> BE64 id */
		ids.from_value = true;
		spool_key_str(&k, login);
		if (date != NULL)
			spool_key_str(&k, date);
		rc = spool_db_iter(t, SPOOL_DB_ISSUE_IDX, &k, k.k_len, false,
		    spool_idx_ids_cb, &ids);
	} else {
		spool_key_raw(&k, date, 10);
		rc = spool_db_iter(t, SPOOL_DB_ISSUE_DATE, &k, k.k_len, false,
		    spool_idx_ids_cb, &ids);
	}
	if (rc == 0)
		rc = spool_idx_issues_emit(t, &ids, cb, arg);
	free(ids.v);
	return rc;
}

/* ---- building the indexes of an older database */

static int
spool_idx_build_issue(const struct spool_issue *s, void *arg)
{
	return spool_index_issue_add(arg, s);
}

struct spool_idx_build {
	const struct spool_index_build *ib;
	struct spool_txn	       *txn;
	size_t				n;
	uint64_t			next;
};

static int
spool_idx_build_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct spool_idx_build *b = arg;
	struct spool_index_ev	e;

	if (b->n == SPOOL_INDEX_CHUNK)
		return SPOOL_IDX_STOP;
	b->n++;
	b->next = seq + 1;
	/* an event that does not decode cannot be found by its keys anyway */
	if (spool_index_parse(json, len, &e) != 0)
		return 0;
	return b->ib->ib_add(b->txn, &e, seq);
}

/* One chunk; *done_r once every logged event was looked at. */
static int
spool_idx_build_chunk(const struct spool_index_build *ib, struct spool_txn *t,
    bool *done_r)
{
	struct spool_idx_build b = { .ib = ib, .txn = t };
	int		       rc;

	if ((*done_r = spool_index_built(t, ib->ib_done)))
		return 0;
	rc = spool_db_meta_get_u64(t, ib->ib_next, &b.next);
	if (rc == SPOOL_ENOTFOUND) {
		b.next = 0;
		if (ib->ib_first != NULL && (rc = ib->ib_first(t)) != 0)
			return rc;
	} else if (rc != 0)
		return rc;
	rc = spool_log_iter(t, false, b.next, spool_idx_build_cb, &b);
	if (rc != 0 && rc != SPOOL_IDX_STOP)
		return rc;
	*done_r = rc == 0;
	if ((rc = spool_db_meta_put_u64(t, ib->ib_next, b.next)) != 0)
		return rc;
	return *done_r ? spool_db_meta_put_u64(t, ib->ib_done, 1) : 0;
}

int
spool_index_build(struct spool *sp, const struct spool_index_build *ib)
{
	struct spool_txn *t;
	bool		  done = false;
	int		  rc;

	while (!done) {
		if ((rc = spool_begin(sp, true, &t)) != 0)
			return rc;
		if ((rc = spool_idx_build_chunk(ib, t, &done)) != 0) {
			spool_abort(&t);
			return rc;
		}
		if ((rc = spool_commit(&t)) != 0)
			return rc;
	}
	return 0;
}

static int
spool_idx_build_first(struct spool_txn *t)
{
	return spool_issue_iter(t, spool_idx_build_issue, t);
}

static int
spool_idx_build_add(struct spool_txn *t, const struct spool_index_ev *e,
    uint64_t seq)
{
	return spool_index_event_add(t, e->ie_type, e->ie_issue, seq);
}

int
spool_db_migrate_records(struct spool *sp)
{
	static const struct spool_index_build ib = {
		"records_idx",
		"records_idx_next",
		spool_idx_build_first,
		spool_idx_build_add,
	};

	return spool_index_build(sp, &ib);
}
