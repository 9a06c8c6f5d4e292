/*
 * Unit tests for the engagement events (spool_engage.c, issue 16): the
 * JSON of opened, clicked, unsubscribed and complained (no class, msg,
 * attempt; "machine" only when true), the truncated client address, the
 * per-issue counters (unique against total) and their record, the
 * complaint index (Message-Id + recipient -> the delivered event) and the
 * retention of both.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "spool.h"
#include "spool_index.h"
#include "spool_key.h"
#include "spool_rec.h"
#include "spool_track.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(64) << 20)
#define T0  INT64_C(1798761600) /* 2027-01-01T00:00:00Z */
#define DAY 86400

static char tdir[64];

/* A tracking record of two recipients in a new issue of account "acme". */
struct fix {
	struct spool_track_msg km;
	char		      *rcpts[2];
	char		       qid[QID_SIZE];
};

static void
fix_init(struct fix *f, struct spool_txn *t, int64_t dt, unsigned n)
{
	struct spool_issue is;
	char		   date[11];

	memset(f, 0, sizeof(*f));
	spool_date(dt, date);
	if (spool_issue_find_or_create(t, "acme", date, "spring", &is) != 0)
		abort();
	(void)snprintf(f->km.km_login, sizeof(f->km.km_login), "acme");
	f->km.km_issue = is.su_id;
	(void)snprintf(f->km.km_uniq, sizeof(f->km.km_uniq), "L-1");
	(void)snprintf(f->km.km_message_id, sizeof(f->km.km_message_id),
	    "<m%u@acme>", n);
	(void)snprintf(f->km.km_from, sizeof(f->km.km_from),
	    "news@acme.example");
	f->rcpts[0] = "ann@dest.example";
	f->rcpts[1] = "bob@dest.example";
	f->km.km_rcpts = f->rcpts;
	f->km.km_nrcpts = 2;
	t_mkqid(f->qid, dt, n);
}

static uint64_t
add(struct spool_txn *t, struct fix *f, uint32_t idx, enum spool_ev_type type,
    int64_t dt, bool machine)
{
	struct spool_event ev;
	uint64_t	   seq;

	spool_event_init_track(&ev, &f->km, f->qid, idx, type, dt);
	ev.ev_user_agent = "Mozilla/5.0";
	ev.ev_client = "192.0.2.0/24";
	ev.ev_machine = machine;
	if (type == SPOOL_EV_CLICKED)
		ev.ev_url = "https://acme.example/sale?a=1&b=2";
	if (spool_event_add(t, &ev, &seq) != 0)
		abort();
	return seq;
}

static int
copy_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	(void)seq;
	(void)snprintf(arg, 2048, "%.*s", (int)len, json);
	return 1;
}

/* The logged JSON of event seq, parsed. */
static struct json_val *
logged(struct spool_txn *t, uint64_t seq)
{
	static char s[2048];
	char	    err[64];

	s[0] = '\0';
	(void)spool_log_iter(t, false, seq, copy_cb, s);
	return json_parse(s, err, sizeof(err));
}

static void
t_json(void)
{
	static const enum spool_ev_type types[] = { SPOOL_EV_OPENED,
		SPOOL_EV_CLICKED, SPOOL_EV_UNSUBSCRIBED, SPOOL_EV_COMPLAINED };
	static const char *const	names[] = { "opened", "clicked",
		       "unsubscribed", "complained" };
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_engage",
	    MAP);
	struct spool_txn *t = t_txn(sp, true);
	struct json_val	 *j;
	struct fix	  f;
	uint64_t	  seq;
	bool		  b;
	size_t		  i;

	fix_init(&f, t, T0, 1);
	for (i = 0; i < 4; i++) {
		seq = add(t, &f, 1, types[i], T0 + 60, i == 0);
		if ((j = logged(t, seq)) == NULL) {
			t_ok(false, "%s: the JSON parses", names[i]);
			continue;
		}
		t_str_eq(json_string(json_get(j, "event")), names[i], names[i]);
		t_str_eq(json_string(json_get(j, "account")), "acme",
		    "account");
		t_str_eq(json_string(json_get(j, "queue_id")), f.qid,
		    "queue_id");
		t_str_eq(json_string(json_get(j, "to")), "bob@dest.example",
		    "to (index 1)");
		t_str_eq(json_string(json_get(j, "from")), "news@acme.example",
		    "from");
		t_str_eq(json_string(json_get(j, "message_id")), "<m1@acme>",
		    "message_id");
		t_str_eq(json_string(json_get(j, "dt")), "2027-01-01T00:01:00Z",
		    "dt");
		t_str_eq(json_string(json_get(json_get(j, "gate"), "uniq")),
		    "L-1", "gate.uniq");
		t_str_eq(json_string(json_get(json_get(j, "issue"), "name")),
		    "spring", "issue.name");
		t_str_eq(json_string(json_get(j, "user_agent")), "Mozilla/5.0",
		    "user_agent");
		t_str_eq(json_string(json_get(j, "client")), "192.0.2.0/24",
		    "client");
		t_ok(json_get(j, "msg") == NULL &&
			json_get(j, "attempt") == NULL &&
			json_get(j, "class") == NULL &&
			json_get(j, "category") == NULL,
		    "%s: no msg, attempt, class or category", names[i]);
		if (i == 1)
			t_str_eq(json_string(json_get(j, "url")),
			    "https://acme.example/sale?a=1&b=2",
			    "clicked has the url");
		else
			t_ok(json_get(j, "url") == NULL, "%s has no url",
			    names[i]);
		if (i == 0)
			t_ok(json_boolean(json_get(j, "machine"), &b) && b,
			    "machine: true when set");
		else
			t_ok(json_get(j, "machine") == NULL,
			    "%s: no machine key when false", names[i]);
		json_val_free(&j);
	}
	t_commit(&t);
	spool_close(&sp);
}

static void
t_names(void)
{
	static const char *const names[] = { "delivered", "deferred", "bounced",
		"opened", "clicked", "unsubscribed", "complained" };
	static const enum spool_ev_type types[] = { SPOOL_EV_DELIVERED,
		SPOOL_EV_DEFERRED, SPOOL_EV_BOUNCED, SPOOL_EV_OPENED,
		SPOOL_EV_CLICKED, SPOOL_EV_UNSUBSCRIBED, SPOOL_EV_COMPLAINED };
	enum spool_ev_type		t;
	size_t				i;

	for (i = 0; i < 7; i++)
		t_ok(spool_ev_type_parse(names[i], &t) == 0 && t == types[i],
		    "%s", names[i]);
	t_int_eq(spool_ev_type_parse("read", &t), -1, "unknown name");
	t_int_eq(spool_ev_type_parse(NULL, &t), -1, "NULL");
}

static void
t_client(void)
{
	char buf[SPOOL_CLIENT_MAX];

	t_int_eq(spool_client_truncate("198.51.100.77", buf, sizeof(buf)), 0,
	    "IPv4");
	t_str_eq(buf, "198.51.100.0/24", "IPv4 cut to /24");
	t_int_eq(spool_client_truncate("2001:db8:abcd:12:1:2:3:4", buf,
		     sizeof(buf)),
	    0, "IPv6");
	t_str_eq(buf, "2001:db8:abcd::/48", "IPv6 cut to /48");
	t_int_eq(spool_client_truncate("::ffff:10.1.2.3", buf, sizeof(buf)), 0,
	    "mapped");
	t_str_eq(buf, "::/48",
	    "an IPv4-mapped IPv6 address keeps no host bits");
	t_int_eq(spool_client_truncate("not-an-ip", buf, sizeof(buf)), -1,
	    "garbage");
	t_str_eq(buf, "", "garbage leaves \"\"");
	t_int_eq(spool_client_truncate("10.0.0.1", buf, 8), -1,
	    "too small a buffer");
}

static void
t_counters(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_engage",
	    MAP);
	struct spool_txn  *t = t_txn(sp, true);
	struct spool_issue is;
	struct fix	   f;

	fix_init(&f, t, T0, 1);
	add(t, &f, 0, SPOOL_EV_OPENED, T0 + 1, false);
	add(t, &f, 0, SPOOL_EV_OPENED, T0 + 2, false);
	add(t, &f, 1, SPOOL_EV_OPENED, T0 + 3, true);
	add(t, &f, 0, SPOOL_EV_CLICKED, T0 + 4, false);
	add(t, &f, 0, SPOOL_EV_CLICKED, T0 + 5, false);
	add(t, &f, 0, SPOOL_EV_CLICKED, T0 + 6, false);
	add(t, &f, 1, SPOOL_EV_UNSUBSCRIBED, T0 + 7, false);
	add(t, &f, 1, SPOOL_EV_COMPLAINED, T0 + 8, false);
	t_commit(&t);
	t = t_txn(sp, false);
	if (spool_issue_get(t, f.km.km_issue, &is) != 0)
		abort();
	t_int_eq((long long)is.su_opens, 3, "opens: total");
	t_int_eq((long long)is.su_opens_unique, 2,
	    "opens: unique (two recipients)");
	t_int_eq((long long)is.su_clicks, 3, "clicks: total");
	t_int_eq((long long)is.su_clicks_unique, 1, "clicks: unique");
	t_int_eq((long long)is.su_unsubscribed, 1, "unsubscribes");
	t_int_eq((long long)is.su_complained, 1, "complaints");
	t_int_eq((long long)is.su_delivered + is.su_deferred +
		is.su_bounced_remote,
	    0, "the delivery counters are untouched");
	spool_abort(&t);
	spool_close(&sp);
}

/* An issue record written before issue 16 (no engagement tags) reads as zeros. */
static void
t_old_record(void)
{
	struct spool_issue is, back;
	struct buf	   b, old;
	const uint8_t	  *p;
	size_t		   off, vlen;

	memset(&is, 0, sizeof(is));
	is.su_id = 7;
	is.su_delivered = 4;
	is.su_opens = 5;
	is.su_clicks_unique = 6;
	is.su_complained = 1;
	buf_init(&b, SPOOL_REC_MAX);
	buf_init(&old, SPOOL_REC_MAX);
	if (spool_rec_enc_issue(&is, &b) != 0)
		abort();
	t_int_eq(spool_rec_dec_issue(b.data, b.len, &back), 0, "round trip");
	t_int_eq((long long)back.su_opens, 5, "opens survive the record");
	t_int_eq((long long)back.su_clicks_unique, 6, "unique clicks too");
	t_int_eq((long long)back.su_complained, 1, "complaints too");
	/* the same record without tags 200.. (what an older writer wrote) */
	p = (const uint8_t *)b.data;
	(void)buf_append(&old, p, 1);
	for (off = 1; off + 5 <= b.len; off += 5 + vlen) {
		vlen = (size_t)p[off + 1] << 24 | (size_t)p[off + 2] << 16 |
		    (size_t)p[off + 3] << 8 | p[off + 4];
		if (p[off] < 200)
			(void)buf_append(&old, p + off, 5 + vlen);
	}
	t_ok(old.len < b.len, "the engagement tags were cut");
	t_int_eq(spool_rec_dec_issue(old.data, old.len, &back), 0,
	    "an older record decodes");
	t_int_eq((long long)back.su_delivered, 4, "with its delivery counters");
	t_int_eq((long long)(back.su_opens + back.su_clicks_unique +
		     back.su_complained),
	    0, "and zero engagement counters");
	buf_release(&b);
	buf_release(&old);
}

struct hit {
	char to[128];
	int  n;
};

static int
hit_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct hit	*h = arg;
	struct json_val *j;
	char		 s[2048], err[64];

	(void)seq;
	(void)snprintf(s, sizeof(s), "%.*s", (int)len, json);
	if ((j = json_parse(s, err, sizeof(err))) != NULL) {
		(void)snprintf(h->to, sizeof(h->to), "%s",
		    json_string(json_get(j, "to")) != NULL
			? json_string(json_get(j, "to"))
			: "");
		json_val_free(&j);
	}
	h->n++;
	return 0;
}

static void
delivered(struct spool_txn *t, struct fix *f, uint32_t idx, int64_t dt)
{
	struct spool_event ev;

	spool_event_init_track(&ev, &f->km, f->qid, idx, SPOOL_EV_DELIVERED,
	    dt);
	ev.ev_msg = "250 ok";
	ev.ev_attempt = 1;
	if (spool_event_add(t, &ev, NULL) != 0)
		abort();
}

static int
find(struct spool_txn *t, const char *mid, const char *rcpt, struct hit *h)
{
	memset(h, 0, sizeof(*h));
	return spool_engage_find_delivered(t, mid, rcpt, hit_cb, h);
}

static void
t_complaint_index(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_engage",
	    MAP);
	struct spool_txn *t = t_txn(sp, true);
	struct fix	  f;
	struct hit	  h;

	fix_init(&f, t, T0, 1);
	delivered(t, &f, 0, T0 + 5);
	delivered(t, &f, 1, T0 + 5);
	t_commit(&t);
	t = t_txn(sp, false);
	t_int_eq(find(t, "<m1@acme>", "BOB@Dest.Example", &h), 0,
	    "found, any case");
	t_int_eq(h.n, 1, "one event handed over");
	t_str_eq(h.to, "bob@dest.example", "the right recipient");
	t_int_eq(find(t, "<m1@acme>", "carl@dest.example", &h), SPOOL_ENOTFOUND,
	    "another recipient: not found");
	t_int_eq(find(t, "<m2@acme>", "bob@dest.example", &h), SPOOL_ENOTFOUND,
	    "another Message-Id: not found");
	t_int_eq(find(t, "", "bob@dest.example", &h), SPOOL_ENOTFOUND,
	    "no Message-Id");
	spool_abort(&t);
	spool_close(&sp);
}

static size_t
count(struct spool *sp, enum spool_dbi d)
{
	struct spool_txn *t = t_txn(sp, false);
	size_t		  n = 0;

	(void)spool_db_iter(t, d, NULL, 0, false, t_count_rec, &n);
	spool_abort(&t);
	return n;
}

static void
prune_all(struct spool *sp, int64_t now, size_t budget)
{
	struct spool_retention	 rt = { .rt_dlog = 30 * DAY };
	struct spool_prune_stats ps;

	memset(&ps, 0, sizeof(ps));
	do {
		if (spool_prune(sp, now, &rt, budget, &ps) != 0)
			abort();
	} while (ps.ps_more);
}

static void
t_retention(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_engage",
	    MAP);
	struct spool_txn *t = t_txn(sp, true);
	struct fix	  old, young;
	struct hit	  h;

	fix_init(&old, t, T0, 1);
	fix_init(&young, t, T0 + 40 * DAY, 2);
	delivered(t, &old, 0, T0 + 5);
	delivered(t, &young, 0, T0 + 40 * DAY);
	add(t, &old, 0, SPOOL_EV_OPENED, T0 + 9, false);
	add(t, &old, 1, SPOOL_EV_CLICKED, T0 + 9, false);
	add(t, &young, 0, SPOOL_EV_OPENED, T0 + 40 * DAY + 9, false);
	t_commit(&t);
	t_int_eq((long long)count(sp, SPOOL_DB_ENGAGE_FIRST), 3,
	    "three first events");
	t_int_eq((long long)count(sp, SPOOL_DB_MSGID_RCPT), 2,
	    "two indexed deliveries");
	/* budget 1: every transaction stops after one deletion */
	prune_all(sp, T0 + 45 * DAY, 1);
	t_int_eq((long long)count(sp, SPOOL_DB_ENGAGE_FIRST), 1,
	    "the old message's first events are pruned");
	t_int_eq((long long)count(sp, SPOOL_DB_MSGID_RCPT), 1,
	    "the old delivery's index entry went with its event");
	t = t_txn(sp, false);
	t_int_eq(find(t, "<m1@acme>", "ann@dest.example", &h), SPOOL_ENOTFOUND,
	    "the pruned delivery is not found");
	t_int_eq(find(t, "<m2@acme>", "ann@dest.example", &h), 0,
	    "the young one is");
	spool_abort(&t);
	/* the young message's open is still not unique again */
	t = t_txn(sp, true);
	add(t, &young, 0, SPOOL_EV_OPENED, T0 + 41 * DAY, false);
	t_commit(&t);
	t = t_txn(sp, false);
	{
		struct spool_issue is;

		if (spool_issue_get(t, young.km.km_issue, &is) != 0)
			abort();
		t_int_eq((long long)is.su_opens_unique, 1,
		    "kept entry: not unique twice");
		t_int_eq((long long)is.su_opens, 2, "but counted in the total");
	}
	spool_abort(&t);
	spool_close(&sp);
}

static int
del_cb(const uint8_t *key, size_t klen, const void *v, size_t vlen, void *arg)
{
	struct spool_key k;

	(void)v;
	(void)vlen;
	spool_key_init(&k);
	spool_key_raw(&k, key, klen);
	return spool_db_del(arg, SPOOL_DB_MSGID_RCPT, &k);
}

/* An older database: delivered events without complaint index entries;
 * the next writer's open indexes them (spool_db_migrate_engage). */
static void
t_migrate(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_engage",
	    MAP);
	struct spool_txn *t = t_txn(sp, true);
	struct fix	  f;
	struct hit	  h;
	unsigned	  i;

	for (i = 1; i <= 3; i++) {
		fix_init(&f, t, T0 + i, i);
		delivered(t, &f, 1, T0 + i);
	}
	/* what a database from before issue 16 holds */
	if (spool_db_iter(t, SPOOL_DB_MSGID_RCPT, NULL, 0, false, del_cb, t) !=
		0 ||
	    spool_db_meta_put_u64(t, "engage_idx", 0) != 0 ||
	    spool_db_meta_put_u64(t, "engage_idx_next", 0) != 0)
		abort();
	t_commit(&t);
	t_int_eq((long long)count(sp, SPOOL_DB_MSGID_RCPT), 0,
	    "no index entries");
	spool_close(&sp);
	if (spool_open(tdir, MAP, MAP, 0, &sp) != 0)
		abort();
	t_int_eq((long long)count(sp, SPOOL_DB_MSGID_RCPT), 3,
	    "the writer's open indexed them");
	t = t_txn(sp, false);
	t_int_eq(find(t, "<m2@acme>", "bob@dest.example", &h), 0,
	    "and they are found");
	spool_abort(&t);
	spool_close(&sp);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "json", t_json },
		{ "names", t_names },
		{ "client", t_client },
		{ "counters", t_counters },
		{ "old_record", t_old_record },
		{ "complaint_index", t_complaint_index },
		{ "retention", t_retention },
		{ "migrate", t_migrate },
	};

	return T_RUN_RMTREE(cases, tdir);
}
