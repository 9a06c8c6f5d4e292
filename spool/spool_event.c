/*
 * Events (spool.h): the CONTRACT JSON built once, appended to the delivery
 * log (dlog: BE64 seq -> JSON), indexed by message (dlog_qid: QID BE64 seq),
 * queued for the callback sender (outbox_acct, spool_outbox.c) and
 * counted in the issue, all in the caller's transaction; its secondary
 * keys (spool_index.h) too. The export to events.jsonl is in spool_export.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "fsx.h"
#include "json.h"
#include "spool.h"
#include "spool_index.h"
#include "spool_key.h"
#include "spool_rec.h"

/* t in UTC as a date, or a date and time, into dst; the epoch if that fails. */
static void
spool_utc(int64_t t, char *dst, bool with_time)
{
	struct tm tm;
	time_t	  tt = (time_t)t;
	size_t	  len = with_time ? 20 : 10;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(dst, len + 1,
		with_time ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d", &tm) != len)
		(void)str_copy(dst, len + 1,
		    with_time ? "1970-01-01T00:00:00Z" : "1970-01-01");
}

void
spool_date(int64_t t, char dst[11])
{
	spool_utc(t, dst, false);
}

void
spool_dt(int64_t t, char dst[21])
{
	spool_utc(t, dst, true);
}

static const char *
spool_ev_type_name(enum spool_ev_type t)
{
	switch (t) {
	case SPOOL_EV_DELIVERED:
		return "delivered";
	case SPOOL_EV_DEFERRED:
		return "deferred";
	case SPOOL_EV_BOUNCED:
		return "bounced";
	default:
		return spool_engage_type_name(t);
	}
}

static const char *
spool_ev_class_name(enum spool_ev_class c)
{
	switch (c) {
	case SPOOL_CL_POLICY:
		return "policy";
	case SPOOL_CL_REMOTE:
		return "remote";
	case SPOOL_CL_EXPIRED:
		return "expired";
	case SPOOL_CL_ADMIN:
		return "admin";
	default:
		return NULL;
	}
}

_Static_assert(BOUNCE_CAT_COUNT <= SPOOL_CAT_MAX, "si_bounced_cat too small");

/* The category of a deferred or bounced event (NULL for the others). */
static const char *
spool_ev_category(const struct spool_event *ev)
{
	if (ev->ev_type != SPOOL_EV_DEFERRED && ev->ev_type != SPOOL_EV_BOUNCED)
		return NULL;
	if (ev->ev_category != NULL &&
	    bounce_cat_parse(ev->ev_category) != BOUNCE_NONE)
		return ev->ev_category;
	if (ev->ev_type == SPOOL_EV_BOUNCED && ev->ev_class == SPOOL_CL_POLICY)
		return bounce_cat_name(BOUNCE_POLICY);
	if (ev->ev_type == SPOOL_EV_BOUNCED && ev->ev_class == SPOOL_CL_EXPIRED)
		return bounce_cat_name(BOUNCE_EXPIRED);
	return bounce_cat_name(BOUNCE_OTHER);
}

static void
spool_ev_issue_json(struct json_gen *g, const struct spool_issue *is)
{
	json_key(g, "issue");
	json_obj_begin(g);
	json_key(g, "id");
	if (is != NULL)
		json_int(g, (int64_t)is->su_id);
	else
		json_null(g);
	json_kv_str(g, "name",
	    is != NULL && is->su_has_name ? is->su_name : NULL);
	json_kv_str(g, "date", is != NULL ? is->su_date : NULL);
	json_obj_end(g);
}

/* The fields of opened, clicked, unsubscribed and complained (issue 16). */
static void
spool_ev_engage_json(struct json_gen *g, const struct spool_event *ev)
{
	if (ev->ev_type == SPOOL_EV_CLICKED)
		json_kv_str(g, "url", ev->ev_url != NULL ? ev->ev_url : "");
	if (ev->ev_user_agent != NULL)
		json_kv_str(g, "user_agent", ev->ev_user_agent);
	if (ev->ev_client != NULL)
		json_kv_str(g, "client", ev->ev_client);
	if (ev->ev_machine)
		json_kv_bool(g, "machine", true);
}

/* duplicate (issue 18 item 3): msg, sandbox and the first message's QID;
 * no class, attempt or category: nothing was attempted */
static void
spool_ev_duplicate_json(struct json_gen *g, const struct spool_event *ev)
{
	json_kv_str(g, "msg", ev->ev_msg != NULL ? ev->ev_msg : "");
	json_kv_bool(g, "sandbox", ev->ev_sandbox);
	json_kv_str(g, "original_queue_id", ev->ev_original_qid);
}

static void
spool_ev_json(struct json_gen *g, const struct spool_event *ev, const char *id,
    const struct spool_issue *is)
{
	char dt[21];

	spool_dt(ev->ev_dt, dt);
	json_obj_begin(g);
	json_kv_str(g, "id", id);
	json_kv_str(g, "event", spool_ev_type_name(ev->ev_type));
	if (ev->ev_type == SPOOL_EV_BOUNCED)
		json_kv_str(g, "class", spool_ev_class_name(ev->ev_class));
	json_kv_str(g, "dt", dt);
	json_kv_str(g, "account", ev->ev_login);
	json_kv_str(g, "queue_id", ev->ev_qid);
	spool_ev_issue_json(g, is);
	json_key(g, "gate");
	json_obj_begin(g);
	json_kv_str(g, "uniq", ev->ev_uniq);
	json_obj_end(g);
	json_kv_str(g, "from", ev->ev_from != NULL ? ev->ev_from : "");
	json_kv_str(g, "to", ev->ev_to);
	json_kv_str(g, "message_id", ev->ev_message_id);
	if (ev->ev_type == SPOOL_EV_DUPLICATE) {
		spool_ev_duplicate_json(g, ev);
		json_obj_end(g);
		return;
	}
	if (ev->ev_type >= SPOOL_EV_OPENED) {
		spool_ev_engage_json(g, ev);
		json_obj_end(g);
		return;
	}
	json_kv_str(g, "msg", ev->ev_msg != NULL ? ev->ev_msg : "");
	json_kv_int(g, "attempt", ev->ev_attempt);
	json_kv_bool(g, "sandbox", ev->ev_sandbox);
	if (ev->ev_hop != NULL)
		json_kv_str(g, "hop", ev->ev_hop);
	if (ev->ev_tls != NULL)
		json_kv_str(g, "tls", ev->ev_tls);
	/* after the CONTRACT's keys, in their order (issue 15) */
	if (spool_ev_category(ev) != NULL)
		json_kv_str(g, "category", spool_ev_category(ev));
	if (ev->ev_type == SPOOL_EV_DELIVERED && ev->ev_auto_reply != NULL)
		json_kv_str(g, "auto_reply", ev->ev_auto_reply);
	if (ev->ev_tls_verified != NULL)
		json_kv_str(g, "tls_verified", ev->ev_tls_verified);
	json_obj_end(g);
}

static uint64_t *
spool_ev_counter(struct spool_issue *is, const struct spool_event *ev)
{
	if (ev->ev_type == SPOOL_EV_DELIVERED)
		return &is->su_delivered;
	if (ev->ev_type == SPOOL_EV_DEFERRED)
		return &is->su_deferred;
	switch (ev->ev_class) {
	case SPOOL_CL_POLICY:
		return &is->su_bounced_policy;
	case SPOOL_CL_REMOTE:
		return &is->su_bounced_remote;
	case SPOOL_CL_EXPIRED:
		return &is->su_bounced_expired;
	case SPOOL_CL_ADMIN:
		return &is->su_bounced_admin;
	default:
		return NULL;
	}
}

/* The outbox entry, only for an account with a callback URL. */
static int
spool_ev_outbox(struct spool_txn *t, const struct spool_event *ev, uint64_t seq,
    const char *json, size_t len)
{
	struct spool_account a;
	int		     rc;

	if (ev->ev_login == NULL || ev->ev_login[0] == '\0')
		return 0;
	rc = spool_account_get(t, ev->ev_login, &a);
	if (rc == SPOOL_ENOTFOUND || (rc == 0 && a.ac_callback_url[0] == '\0'))
		return 0;
	if (rc != 0)
		return rc;
	return spool_outbox_put(t, ev->ev_login, seq, ev->ev_dt, json, len);
}

/* dlog, dlog_qid and outbox under sequence number seq. */
static int
spool_ev_store(struct spool_txn *t, const struct spool_event *ev, uint64_t seq,
    const char *json, size_t len)
{
	struct spool_key k, q;
	int		 rc;

	spool_key_init(&k);
	spool_key_be64(&k, seq);
	if ((rc = spool_db_put(t, SPOOL_DB_DLOG, &k, json, len)) != 0)
		return rc;
	if (ev->ev_qid != NULL && qid_ok(ev->ev_qid)) {
		spool_key_init(&q);
		spool_key_raw(&q, ev->ev_qid, QID_LEN);
		spool_key_be64(&q, seq);
		if ((rc = spool_db_put(t, SPOOL_DB_DLOG_QID, &q, "", 0)) != 0)
			return rc;
	}
	if ((rc = spool_index_event_add(t, ev->ev_type, ev->ev_issue, seq)) !=
		0 ||
	    (rc = spool_index_acct_add(t, ev->ev_login, seq)) != 0)
		return rc;
	if (ev->ev_type == SPOOL_EV_DELIVERED &&
	    (rc = spool_engage_mkey_add(t,
		 spool_engage_mkey(ev->ev_message_id, ev->ev_to), seq)) != 0)
		return rc;
	return spool_ev_outbox(t, ev, seq, json, len);
}

void
spool_event_init(struct spool_event *ev, const struct spool_msg *m,
    const char *to, int64_t dt)
{
	memset(ev, 0, sizeof(*ev));
	ev->ev_dt = dt;
	ev->ev_login = m->sm_login;
	ev->ev_qid = m->sm_qid;
	ev->ev_issue = m->sm_issue;
	ev->ev_uniq = m->sm_has_letter_id ? m->sm_letter_id : NULL;
	ev->ev_from = m->sm_from;
	ev->ev_to = to;
	ev->ev_message_id = m->sm_message_id[0] != '\0' ? m->sm_message_id
							: NULL;
	ev->ev_sandbox = m->sm_sandbox;
}

int
spool_event_add(struct spool_txn *t, const struct spool_event *ev,
    uint64_t *seq_r)
{
	struct spool_issue is, *isp = NULL;
	struct json_gen	  *g;
	const char	  *json;
	uint64_t	   seq, *ctr;
	size_t		   len;
	char		   inst[9], id[32];
	int		   rc;

	if (ev->ev_issue != 0) {
		if ((rc = spool_issue_get(t, ev->ev_issue, &is)) != 0)
			return rc;
		isp = &is;
	}
	if ((rc = spool_db_instance(t, inst)) != 0 ||
	    (rc = spool_db_meta_next(t, "event_seq", &seq)) != 0)
		return rc;
	(void)snprintf(id, sizeof(id), "%s-%llu", inst,
	    (unsigned long long)seq);
	g = json_gen_new(false);
	spool_ev_json(g, ev, id, isp);
	json = json_gen_result(g, &len);
	rc = spool_ev_store(t, ev, seq, json, len);
	json_gen_free(&g);
	if (rc != 0)
		return rc;
	if (ev->ev_type >= SPOOL_EV_OPENED) {
		/* the first-event set counts hits also without an issue (its
		 * bound, spool_engage_admit, must hold then too) */
		if ((rc = spool_engage_count(t, isp, ev)) != 0 ||
		    (isp != NULL && (rc = spool_issue_put(t, isp)) != 0))
			return rc;
	} else if (isp != NULL && (ctr = spool_ev_counter(isp, ev)) != NULL) {
		(*ctr)++;
		if (ev->ev_type == SPOOL_EV_BOUNCED)
			isp->su_bounced_cat[bounce_cat_parse(
			    spool_ev_category(ev))]++;
		if ((rc = spool_issue_put(t, isp)) != 0)
			return rc;
	}
	if (seq_r != NULL)
		*seq_r = seq;
	return 0;
}

/* ---- reading the log */

struct spool_log_it {
	int (*cb)(uint64_t, const char *, size_t, void *);
	void		 *arg;
	struct spool_txn *txn;
};

static int
spool_log_it_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_log_it *it = arg;

	if (klen != 8)
		return SPOOL_ECORRUPT;
	return it->cb(spool_be64_get(key), v, len, it->arg);
}

int
spool_log_iter(struct spool_txn *t, bool reverse, uint64_t from,
    int (*cb)(uint64_t, const char *, size_t, void *), void *arg)
{
	struct spool_log_it it = { .cb = cb, .arg = arg };
	struct spool_key    k;

	spool_key_init(&k);
	if (from != 0)
		spool_key_be64(&k, from);
	return spool_db_iter(t, SPOOL_DB_DLOG, &k, 0, reverse, spool_log_it_cb,
	    &it);
}

static int
spool_log_qid_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_log_it *it = arg;

	(void)v;
	(void)len;
	if (klen != QID_LEN + 8)
		return SPOOL_ECORRUPT;
	return spool_index_log_get(it->txn, key + QID_LEN, it->cb, it->arg);
}

int
spool_log_iter_qid(struct spool_txn *t, const char	    *qid,
    int (*cb)(uint64_t, const char *, size_t, void *), void *arg)
{
	struct spool_log_it it = { .cb = cb, .arg = arg, .txn = t };
	struct spool_key    k;

	if (!qid_ok(qid))
		return EINVAL;
	spool_key_init(&k);
	spool_key_raw(&k, qid, QID_LEN);
	return spool_db_iter(t, SPOOL_DB_DLOG_QID, &k, k.k_len, false,
	    spool_log_qid_cb, &it);
}

/* ---- clusterd's shipping cursor (issue 19; clusterd/cluster_ship.c) */

static int
spool_meta_or_zero(struct spool_txn *t, const char *name, uint64_t *v_r)
{
	int rc = spool_db_meta_get_u64(t, name, v_r);

	if (rc == SPOOL_ENOTFOUND) {
		*v_r = 0;
		return 0;
	}
	return rc;
}

int
spool_log_shipped_get(struct spool_txn *t, uint64_t *seq_r)
{
	return spool_meta_or_zero(t, "cluster_event_shipped", seq_r);
}

int
spool_log_shipped_put(struct spool_txn *t, uint64_t seq)
{
	return spool_db_meta_put_u64(t, "cluster_event_shipped", seq);
}

int
spool_log_last(struct spool_txn *t, uint64_t *seq_r)
{
	return spool_meta_or_zero(t, "event_seq", seq_r);
}
