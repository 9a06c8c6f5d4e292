/*
 * Queue records in LMDB: issues, messages, recipients and the schedule
 * (spool.h). Keys: issues BE64(id); issue_idx login\0date\0(0 | 1 name\0);
 * messages QID (20 bytes); rcpts QID BE32(idx); sched BE64(due) QID
 * BE32(idx) with an empty value. spool_rcpt_put and spool_msg_hold are the
 * only writers of sched, which keeps it consistent with the recipients.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "json.h"
#include "spool.h"
#include "spool_cluster.h"
#include "spool_index.h"
#include "spool_key.h"
#include "spool_rec.h"
#include "xmem.h"

static int
spool_store(struct spool_txn *t, enum spool_dbi d, const struct spool_key *k,
    struct buf *b, int rc)
{
	if (rc == 0)
		rc = spool_db_put(t, d, k, b->data, b->len);
	buf_release(b);
	return rc;
}

/* ---- issues */

static int
spool_issue_idx_key(struct spool_key *k, const char *login, const char *date,
    const char *name)
{
	if (strlen(date) != 10 ||
	    (name != NULL && strlen(name) >= SPOOL_NAME_MAX) ||
	    strlen(login) >= SPOOL_LOGIN_MAX)
		return EINVAL;
	spool_key_init(k);
	spool_key_str(k, login);
	spool_key_str(k, date);
	spool_key_raw(k, name != NULL ? "\1" : "\0", 1);
	if (name != NULL)
		spool_key_str(k, name);
	return spool_key_ok(k) ? 0 : SPOOL_ETOOBIG;
}

int
spool_issue_get(struct spool_txn *t, uint64_t id, struct spool_issue *s)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	spool_key_init(&k);
	spool_key_be64(&k, id);
	if ((rc = spool_db_get(t, SPOOL_DB_ISSUES, &k, &v, &len)) != 0)
		return rc;
	return spool_rec_dec_issue(v, len, s);
}

int
spool_issue_find(struct spool_txn *t, const char *login, const char *date,
    const char *name, struct spool_issue *s)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	if ((rc = spool_issue_idx_key(&k, login, date, name)) != 0 ||
	    (rc = spool_db_get(t, SPOOL_DB_ISSUE_IDX, &k, &v, &len)) != 0)
		return rc;
	if (len != 8)
		return SPOOL_ECORRUPT;
	return spool_issue_get(t, spool_be64_get(v), s);
}

int
spool_issue_find_or_create(struct spool_txn *t, const char *login,
    const char *date, const char *name, struct spool_issue *s)
{
	struct spool_key k;
	uint8_t		 id[8];
	int		 rc;

	rc = spool_issue_find(t, login, date, name, s);
	if (rc != SPOOL_ENOTFOUND)
		return rc;
	memset(s, 0, sizeof(*s));
	(void)str_copy(s->su_login, sizeof(s->su_login),
	    login); /* checked by idx_key */
	(void)str_copy(s->su_date, sizeof(s->su_date), date);
	s->su_has_name = name != NULL;
	if (name != NULL)
		(void)str_copy(s->su_name, sizeof(s->su_name), name);
	if ((rc = spool_issue_idx_key(&k, login, date, name)) != 0)
		return rc;
	/* cluster mode: the same id on every node (spool_cluster.h) */
	rc = spool_cluster_on(spool_txn_spool(t))
	    ? spool_issue_cluster_pick(t, login, date, name, &s->su_id)
	    : spool_db_meta_next(t, "issue_seq", &s->su_id);
	if (rc != 0)
		return rc;
	spool_be64_put(id, s->su_id);
	if ((rc = spool_db_put(t, SPOOL_DB_ISSUE_IDX, &k, id, sizeof(id))) !=
		0 ||
	    (rc = spool_index_issue_add(t, s)) != 0 ||
	    (rc = spool_issue_day_add(t, login, date, 1)) != 0)
		return rc;
	return spool_issue_put(t, s);
}

/* ---- the issues of an account and day (h-astate): meta
 * "issues_day:LOGIN:DATE", BE64; gone with the day's last issue */

static int
spool_issue_day_name(char *dst, size_t dstsz, const char *login,
    const char *date)
{
	return str_printf(dst, dstsz, "issues_day:%s:%s", login, date) == -1
	    ? SPOOL_ETOOBIG
	    : 0;
}

int
spool_issue_day_count(struct spool_txn *t, const char *login, const char *date,
    uint64_t *n_r)
{
	char name[SPOOL_LOGIN_MAX + 32];
	int  rc;

	*n_r = 0;
	if ((rc = spool_issue_day_name(name, sizeof(name), login, date)) != 0)
		return rc;
	rc = spool_db_meta_get_u64(t, name, n_r);
	return rc == SPOOL_ENOTFOUND ? 0 : rc;
}

int
spool_issue_day_add(struct spool_txn *t, const char *login, const char *date,
    int delta)
{
	struct spool_key k;
	char		 name[SPOOL_LOGIN_MAX + 32];
	uint64_t	 n;
	int		 rc;

	if ((rc = spool_issue_day_count(t, login, date, &n)) != 0 ||
	    (rc = spool_issue_day_name(name, sizeof(name), login, date)) != 0)
		return rc;
	if (delta > 0)
		return spool_db_meta_put_u64(t, name, n + (uint64_t)delta);
	/* issues from before the count have none: nothing below 0 */
	if (n > (uint64_t)-delta)
		return spool_db_meta_put_u64(t, name, n - (uint64_t)-delta);
	spool_key_init(&k);
	spool_key_str(&k, name);
	rc = spool_db_del(t, SPOOL_DB_META, &k);
	return rc == SPOOL_ENOTFOUND ? 0 : rc;
}

int
spool_issue_del(struct spool_txn *t, uint64_t id)
{
	struct spool_issue s;
	struct spool_key   k;
	int		   rc;

	if ((rc = spool_issue_get(t, id, &s)) != 0)
		return rc;
	if ((rc = spool_issue_idx_key(&k, s.su_login, s.su_date,
		 s.su_has_name ? s.su_name : NULL)) != 0)
		return rc;
	if ((rc = spool_db_del(t, SPOOL_DB_ISSUE_IDX, &k)) != 0 &&
	    rc != SPOOL_ENOTFOUND)
		return rc;
	spool_key_init(&k);
	spool_key_raw(&k, s.su_date, 10);
	spool_key_be64(&k, id);
	if ((rc = spool_db_del(t, SPOOL_DB_ISSUE_DATE, &k)) != 0 &&
	    rc != SPOOL_ENOTFOUND)
		return rc;
	if ((rc = spool_issue_day_add(t, s.su_login, s.su_date, -1)) != 0)
		return rc;
	spool_key_init(&k);
	spool_key_be64(&k, id);
	return spool_db_del(t, SPOOL_DB_ISSUES, &k);
}

int
spool_issue_put(struct spool_txn *t, const struct spool_issue *s)
{
	struct spool_key k;
	struct buf	 b;

	if (s->su_id == 0)
		return EINVAL;
	spool_key_init(&k);
	spool_key_be64(&k, s->su_id);
	buf_init(&b, SPOOL_REC_MAX);
	return spool_store(t, SPOOL_DB_ISSUES, &k, &b,
	    spool_rec_enc_issue(s, &b));
}

struct spool_issue_it {
	int (*cb)(const struct spool_issue *, void *);
	void *arg;
};

static int
spool_issue_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_issue_it *it = arg;
	struct spool_issue     s;
	int		       rc;

	(void)key;
	(void)klen;
	if ((rc = spool_rec_dec_issue(v, len, &s)) != 0)
		return rc;
	return it->cb(&s, it->arg);
}

int
spool_issue_iter(struct spool_txn *t,
    int (*cb)(const struct spool_issue *, void *), void *arg)
{
	struct spool_issue_it it = { .cb = cb, .arg = arg };

	return spool_db_iter(t, SPOOL_DB_ISSUES, NULL, 0, false,
	    spool_issue_it_cb, &it);
}

/* ---- keys of messages, recipients and schedule entries */

static int
spool_qkey(struct spool_key *k, const char *qid)
{
	spool_key_init(k);
	if (!qid_ok(qid))
		return EINVAL;
	spool_key_raw(k, qid, QID_LEN);
	return 0;
}

static int
spool_rkey(struct spool_key *k, const char *qid, uint32_t idx)
{
	int rc;

	if ((rc = spool_qkey(k, qid)) != 0)
		return rc;
	spool_key_be32(k, idx);
	return 0;
}

static int
spool_skey(struct spool_key *k, int64_t due, const char *qid, uint32_t idx)
{
	spool_key_init(k);
	if (!qid_ok(qid))
		return EINVAL;
	spool_key_be64(k, due < 0 ? 0 : (uint64_t)due);
	spool_key_raw(k, qid, QID_LEN);
	spool_key_be32(k, idx);
	return 0;
}

static bool
spool_rcpt_pending(const struct spool_rcpt *r)
{
	return r->sr_state == SPOOL_RS_QUEUED ||
	    r->sr_state == SPOOL_RS_DEFERRED;
}

/* ---- messages */

int
spool_msg_get(struct spool_txn *t, const char *qid, struct spool_msg *m)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	if ((rc = spool_qkey(&k, qid)) != 0 ||
	    (rc = spool_db_get(t, SPOOL_DB_MESSAGES, &k, &v, &len)) != 0)
		return rc;
	return spool_rec_dec_msg(v, len, m);
}

int
spool_msg_put(struct spool_txn *t, const struct spool_msg *m)
{
	struct spool_key k;
	struct buf	 b;
	int		 rc;

	if ((rc = spool_qkey(&k, m->sm_qid)) != 0)
		return rc;
	buf_init(&b, SPOOL_REC_MAX);
	return spool_store(t, SPOOL_DB_MESSAGES, &k, &b,
	    spool_rec_enc_msg(m, &b));
}

/* Deletes the schedule entry of one stored recipient record. */
static int
spool_msg_del_sched(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_rcpt r;
	struct spool_key  k;
	int		  rc;

	(void)key;
	(void)klen;
	if ((rc = spool_rec_dec_rcpt(v, len, &r)) != 0 ||
	    (rc = spool_skey(&k, r.sr_next, r.sr_qid, r.sr_idx)) != 0)
		return rc;
	rc = spool_db_del(arg, SPOOL_DB_SCHED, &k);
	return rc == SPOOL_ENOTFOUND ? 0 : rc;
}

int
spool_msg_del(struct spool_txn *t, const char *qid)
{
	struct spool_key k;
	int		 rc;

	if ((rc = spool_qkey(&k, qid)) != 0)
		return rc;
	rc = spool_db_iter(t, SPOOL_DB_RCPTS, &k, k.k_len, false,
	    spool_msg_del_sched, t);
	if (rc != 0 || (rc = spool_db_del_prefix(t, SPOOL_DB_RCPTS, &k)) != 0)
		return rc;
	if ((rc = spool_db_del(t, SPOOL_DB_MESSAGES, &k)) != 0)
		return rc;
	return spool_done_put(t, qid, (int64_t)time(NULL));
}

struct spool_msg_it {
	int (*cb)(const struct spool_msg *, void *);
	void *arg;
};

static int
spool_msg_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_msg_it *it = arg;
	struct spool_msg    *m;
	int		     rc;

	(void)key;
	(void)klen;
	m = xmalloc(sizeof(*m)); /* ~13 KB: keep it off the stack */
	if ((rc = spool_rec_dec_msg(v, len, m)) == 0)
		rc = it->cb(m, it->arg);
	free(m);
	return rc;
}

int
spool_msg_iter(struct spool_txn *t, int (*cb)(const struct spool_msg *, void *),
    void			*arg)
{
	struct spool_msg_it it = { .cb = cb, .arg = arg };

	return spool_db_iter(t, SPOOL_DB_MESSAGES, NULL, 0, false,
	    spool_msg_it_cb, &it);
}

/* ---- recipients */

const char *
spool_rcpt_state_name(enum spool_rcpt_state s)
{
	switch (s) {
	case SPOOL_RS_QUEUED:
		return "queued";
	case SPOOL_RS_DEFERRED:
		return "deferred";
	case SPOOL_RS_DELIVERED:
		return "delivered";
	case SPOOL_RS_BOUNCED:
		return "bounced";
	default:
		return "unknown";
	}
}

int
spool_rcpt_get(struct spool_txn *t, const char *qid, uint32_t idx,
    struct spool_rcpt *r)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	int		 rc;

	if ((rc = spool_rkey(&k, qid, idx)) != 0 ||
	    (rc = spool_db_get(t, SPOOL_DB_RCPTS, &k, &v, &len)) != 0)
		return rc;
	return spool_rec_dec_rcpt(v, len, r);
}

static bool
spool_msg_is_held(struct spool_txn *t, const char *qid)
{
	struct spool_msg *m;
	bool		  held;

	m = xmalloc(sizeof(*m));
	held = spool_msg_get(t, qid, m) == 0 && m->sm_held;
	free(m);
	return held;
}

int
spool_rcpt_put(struct spool_txn *t, const struct spool_rcpt *r)
{
	struct spool_rcpt old;
	struct spool_key  k;
	struct buf	  b;
	int		  rc;

	if ((rc = spool_rcpt_get(t, r->sr_qid, r->sr_idx, &old)) == 0) {
		if ((rc = spool_skey(&k, old.sr_next, old.sr_qid,
			 old.sr_idx)) != 0)
			return rc;
		if ((rc = spool_db_del(t, SPOOL_DB_SCHED, &k)) ==
		    SPOOL_ENOTFOUND)
			rc = 0;
	}
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		return rc;
	if ((rc = spool_rkey(&k, r->sr_qid, r->sr_idx)) != 0)
		return rc;
	buf_init(&b, SPOOL_REC_MAX);
	if ((rc = spool_store(t, SPOOL_DB_RCPTS, &k, &b,
		 spool_rec_enc_rcpt(r, &b))) != 0)
		return rc;
	if (!spool_rcpt_pending(r) || spool_msg_is_held(t, r->sr_qid))
		return 0;
	if ((rc = spool_skey(&k, r->sr_next, r->sr_qid, r->sr_idx)) != 0)
		return rc;
	return spool_db_put(t, SPOOL_DB_SCHED, &k, "", 0);
}

struct spool_rcpt_it {
	int (*cb)(const struct spool_rcpt *, void *);
	void *arg;
};

static int
spool_rcpt_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_rcpt_it *it = arg;
	struct spool_rcpt     r;
	int		      rc;

	(void)key;
	(void)klen;
	if ((rc = spool_rec_dec_rcpt(v, len, &r)) != 0)
		return rc;
	return it->cb(&r, it->arg);
}

int
spool_rcpt_iter(struct spool_txn *t, const char	       *qid,
    int (*cb)(const struct spool_rcpt *, void *), void *arg)
{
	struct spool_rcpt_it it = { .cb = cb, .arg = arg };
	struct spool_key     k;
	int		     rc;

	if ((rc = spool_qkey(&k, qid)) != 0)
		return rc;
	return spool_db_iter(t, SPOOL_DB_RCPTS, &k, k.k_len, false,
	    spool_rcpt_it_cb, &it);
}

struct spool_hold {
	struct spool_txn *hd_txn;
	bool		  hd_hold;
	int64_t		  hd_now;
};

static int
spool_hold_cb(const struct spool_rcpt *r, void *arg)
{
	struct spool_hold *h = arg;
	struct spool_rcpt  c = *r;

	if (!spool_rcpt_pending(r))
		return 0;
	if (!h->hd_hold)
		c.sr_next = h->hd_now;
	/* rcpt_put drops the old entry and adds one only if not held */
	return spool_rcpt_put(h->hd_txn, &c);
}

int
spool_msg_hold(struct spool_txn *t, const char *qid, bool hold, int64_t now)
{
	struct spool_hold h = { .hd_txn = t, .hd_hold = hold, .hd_now = now };
	struct spool_msg *m;
	int		  rc;

	m = xmalloc(sizeof(*m));
	if ((rc = spool_msg_get(t, qid, m)) == 0) {
		m->sm_held = hold;
		rc = spool_msg_put(t, m);
	}
	free(m);
	if (rc != 0)
		return rc;
	return spool_rcpt_iter(t, qid, spool_hold_cb, &h);
}

/* ---- schedule */

struct spool_sched_it {
	int64_t now;
	size_t	max, n;
	bool	stopped;
	int (*cb)(int64_t, const char *, uint32_t, void *);
	void *arg;
};

static int
spool_sched_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_sched_it *it = arg;
	char		       qid[QID_SIZE];
	int64_t		       due;

	(void)v;
	(void)len;
	if (klen != 8 + QID_LEN + 4)
		return SPOOL_ECORRUPT;
	due = (int64_t)spool_be64_get(key);
	if (due > it->now || it->n >= it->max) {
		it->stopped = true;
		return 1;
	}
	memcpy(qid, key + 8, QID_LEN);
	qid[QID_LEN] = '\0';
	it->n++;
	return it->cb(due, qid, spool_be32_get(key + 8 + QID_LEN), it->arg);
}

int
spool_sched_due(struct spool_txn *t, int64_t now, size_t max,
    int (*cb)(int64_t, const char *, uint32_t, void *), void *arg)
{
	struct spool_sched_it it = { .now = now,
		.max = max,
		.cb = cb,
		.arg = arg };
	int		      rc;

	rc = spool_db_iter(t, SPOOL_DB_SCHED, NULL, 0, false, spool_sched_it_cb,
	    &it);
	return it.stopped ? 0 : rc;
}

static int
spool_sched_first(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	(void)v;
	(void)len;
	if (klen < 8)
		return SPOOL_ECORRUPT;
	*(int64_t *)arg = (int64_t)spool_be64_get(key);
	return 1;
}

int
spool_sched_next(struct spool_txn *t, int64_t *due_r)
{
	int rc;

	rc = spool_db_iter(t, SPOOL_DB_SCHED, NULL, 0, false, spool_sched_first,
	    due_r);
	if (rc == 1)
		return 0;
	return rc == 0 ? SPOOL_ENOTFOUND : rc;
}

/* "bounced_by_category": {"bad-mailbox": N, ...}, every category. */
static void
spool_issue_cats_json(struct json_gen *g, const struct spool_issue *si)
{
	int c;

	json_key(g, "bounced_by_category");
	json_obj_begin(g);
	for (c = BOUNCE_NONE + 1; c < BOUNCE_CAT_COUNT; c++)
		json_kv_int(g, bounce_cat_name(c),
		    (int64_t)si->su_bounced_cat[c]);
	json_obj_end(g);
}

/* issue 16: "opens": {"unique": U, "total": T}, "clicks": {...},
 * "unsubscribed": N, "complained": N */
static void
spool_issue_engage_json(struct json_gen *g, const struct spool_issue *si)
{
	json_key(g, "opens");
	json_obj_begin(g);
	json_kv_int(g, "unique", (int64_t)si->su_opens_unique);
	json_kv_int(g, "total", (int64_t)si->su_opens);
	json_obj_end(g);
	json_key(g, "clicks");
	json_obj_begin(g);
	json_kv_int(g, "unique", (int64_t)si->su_clicks_unique);
	json_kv_int(g, "total", (int64_t)si->su_clicks);
	json_obj_end(g);
	json_kv_int(g, "unsubscribed", (int64_t)si->su_unsubscribed);
	json_kv_int(g, "complained", (int64_t)si->su_complained);
}

void
spool_issue_json(struct json_gen *g, const struct spool_issue *si)
{
	json_obj_begin(g);
	json_kv_int(g, "id", (int64_t)si->su_id);
	json_kv_str(g, "date", si->su_date);
	json_kv_str(g, "name", si->su_has_name ? si->su_name : NULL);
	json_kv_str(g, "account", si->su_login);
	json_kv_bool(g, "blocked", si->su_blocked);
	json_kv_int(g, "messages", (int64_t)si->su_msgs);
	json_kv_int(g, "recipients", (int64_t)si->su_rcpts);
	json_kv_int(g, "delivered", (int64_t)si->su_delivered);
	json_kv_int(g, "deferred", (int64_t)si->su_deferred);
	json_key(g, "bounced");
	json_obj_begin(g);
	json_kv_int(g, "policy", (int64_t)si->su_bounced_policy);
	json_kv_int(g, "remote", (int64_t)si->su_bounced_remote);
	json_kv_int(g, "expired", (int64_t)si->su_bounced_expired);
	json_kv_int(g, "admin", (int64_t)si->su_bounced_admin);
	json_obj_end(g);
	spool_issue_cats_json(g, si);
	spool_issue_engage_json(g, si);
	/* issue 18 item 3: retries not sent again (X-Letter-Id) */
	json_kv_int(g, "duplicates", (int64_t)si->su_duplicates);
}
