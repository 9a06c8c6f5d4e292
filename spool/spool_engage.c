/*
 * Engagement events (issue 16; spool.h, spool_index.h): the event names
 * after bounced, filling an event from a tracking record, the truncated
 * client address, the per-issue counters with their first-event set
 * (engage_first: QID, BE32 recipient index, u8 event type -> BE32 count
 * of the events recorded, "" before the count meant 1; in QID = arrival
 * order, pruned with the delivery log), and the complaint index
 * (msgid_rcpt: BE64 hash of Message-Id and recipient, BE64 seq -> "", one
 * per delivered event, deleted with the event by spool_index_event_del).
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "json.h"
#include "spool.h"
#include "spool_index.h"
#include "spool_key.h"
#include "spool_rec.h"
#include "spool_track.h"
#include "xmem.h"

#define SPOOL_ENGAGE_STOP     (-30993) /* internal: the walk stops here */
#define SPOOL_ENGAGE_SCAN_MAX 1000     /* entries of one hash looked at */

static const char *const spool_engage_names[] = {
	[SPOOL_EV_OPENED] = "opened",
	[SPOOL_EV_CLICKED] = "clicked",
	[SPOOL_EV_UNSUBSCRIBED] = "unsubscribed",
	[SPOOL_EV_COMPLAINED] = "complained",
	[SPOOL_EV_DUPLICATE] = "duplicate", /* issue 18 item 3 */
};
#define SPOOL_ENGAGE_N \
	(sizeof(spool_engage_names) / sizeof(spool_engage_names[0]))

const char *
spool_engage_type_name(enum spool_ev_type t)
{
	if ((size_t)t >= SPOOL_ENGAGE_N || spool_engage_names[t] == NULL)
		return "bounced"; /* spool_event.c's default */
	return spool_engage_names[t];
}

int
spool_engage_type_parse(const char *s, enum spool_ev_type *t_r)
{
	size_t i;

	for (i = SPOOL_EV_OPENED; s != NULL && i < SPOOL_ENGAGE_N; i++)
		if (strcmp(s, spool_engage_names[i]) == 0) {
			*t_r = (enum spool_ev_type)i;
			return 0;
		}
	return -1;
}

int
spool_ev_type_parse(const char *s, enum spool_ev_type *t_r)
{
	static const struct {
		const char	  *name;
		enum spool_ev_type type;
	} base[] = { { "delivered", SPOOL_EV_DELIVERED },
		{ "deferred", SPOOL_EV_DEFERRED },
		{ "bounced", SPOOL_EV_BOUNCED } };
	size_t i;

	for (i = 0; s != NULL && i < sizeof(base) / sizeof(base[0]); i++)
		if (strcmp(s, base[i].name) == 0) {
			*t_r = base[i].type;
			return 0;
		}
	return spool_engage_type_parse(s, t_r);
}

void
spool_event_init_track(struct spool_event *ev, const struct spool_track_msg *km,
    const char *qid, uint32_t idx, enum spool_ev_type type, int64_t dt)
{
	memset(ev, 0, sizeof(*ev));
	ev->ev_type = type;
	ev->ev_dt = dt;
	ev->ev_login = km->km_login;
	ev->ev_qid = qid;
	ev->ev_issue = km->km_issue;
	ev->ev_uniq = km->km_uniq[0] != '\0' ? km->km_uniq : NULL;
	ev->ev_from = km->km_from;
	ev->ev_message_id = km->km_message_id[0] != '\0' ? km->km_message_id
							 : NULL;
	ev->ev_to = idx < km->km_nrcpts && km->km_rcpts[idx] != NULL
	    ? km->km_rcpts[idx]
	    : "";
	ev->ev_idx = idx;
}

int
spool_client_truncate(const char *addr, char *dst, size_t dstlen)
{
	unsigned char a[16];
	char	      txt[INET6_ADDRSTRLEN];

	if (dstlen > 0)
		dst[0] = '\0';
	if (addr == NULL || dstlen < SPOOL_CLIENT_MAX)
		return -1;
	if (inet_pton(AF_INET, addr, a) == 1) {
		(void)snprintf(dst, dstlen, "%u.%u.%u.0/24", a[0], a[1], a[2]);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, a) != 1)
		return -1;
	memset(a + 6, 0, 10);
	if (inet_ntop(AF_INET6, a, txt, sizeof(txt)) == NULL)
		return -1;
	(void)snprintf(dst, dstlen, "%s/48", txt);
	return 0;
}

/* ---- the first-event set and the counters */

static void
spool_engage_first_key(struct spool_key *k, const char *qid, uint32_t idx,
    enum spool_ev_type type)
{
	uint8_t b = (uint8_t)type;

	spool_key_init(k);
	spool_key_raw(k, qid, QID_LEN);
	spool_key_be32(k, idx);
	spool_key_raw(k, &b, 1);
}

/* The events recorded (the value: BE32; "" from before the count: 1). */
static uint32_t
spool_engage_hits_dec(const void *v, size_t len)
{
	return len == 4 ? spool_be32_get(v) : 1;
}

static int
spool_engage_hits_put(struct spool_txn *t, const struct spool_key *k,
    uint32_t n)
{
	uint8_t b[4];

	spool_be32_put(b, n);
	return spool_db_put(t, SPOOL_DB_ENGAGE_FIRST, k, b, sizeof(b));
}

int
spool_engage_first(struct spool_txn *t, const char *qid, uint32_t idx,
    enum spool_ev_type type, bool *first_r)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	uint32_t	 n;
	int		 rc;

	*first_r = false;
	if (qid == NULL || !qid_ok(qid))
		return EINVAL;
	spool_engage_first_key(&k, qid, idx, type);
	rc = spool_db_get(t, SPOOL_DB_ENGAGE_FIRST, &k, &v, &len);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		return rc;
	*first_r = rc == SPOOL_ENOTFOUND;
	n = rc == 0 ? spool_engage_hits_dec(v, len) : 0;
	return spool_engage_hits_put(t, &k, n == UINT32_MAX ? n : n + 1);
}

int
spool_engage_admit(struct spool_txn *t, const char *qid, uint32_t idx,
    enum spool_ev_type type, bool *ok_r, bool *full_now_r)
{
	struct spool_key k;
	const void	*v;
	size_t		 len;
	uint32_t	 n = 0;
	int		 rc;

	*ok_r = true;
	*full_now_r = false;
	if (qid == NULL || !qid_ok(qid))
		return EINVAL;
	spool_engage_first_key(&k, qid, idx, type);
	rc = spool_db_get(t, SPOOL_DB_ENGAGE_FIRST, &k, &v, &len);
	if (rc != 0 && rc != SPOOL_ENOTFOUND)
		return rc;
	if (rc == 0)
		n = spool_engage_hits_dec(v, len);
	if (n < SPOOL_ENGAGE_HITS_MAX)
		return 0;
	*ok_r = false;
	if (n > SPOOL_ENGAGE_HITS_MAX)
		return 0; /* already marked full: said once */
	*full_now_r = true;
	return spool_engage_hits_put(t, &k, n + 1);
}

int
spool_engage_count(struct spool_txn *t, struct spool_issue *is,
    const struct spool_event *ev)
{
	bool first = false;
	int  rc;

	if ((ev->ev_type == SPOOL_EV_OPENED ||
		ev->ev_type == SPOOL_EV_CLICKED) &&
	    ev->ev_qid != NULL && qid_ok(ev->ev_qid) &&
	    (rc = spool_engage_first(t, ev->ev_qid, ev->ev_idx, ev->ev_type,
		 &first)) != 0)
		return rc;
	if (is == NULL)
		return 0; /* no issue (or pruned): the first-event set only */
	switch (ev->ev_type) {
	case SPOOL_EV_OPENED:
		is->su_opens++;
		is->su_opens_unique += first;
		return 0;
	case SPOOL_EV_CLICKED:
		is->su_clicks++;
		is->su_clicks_unique += first;
		return 0;
	case SPOOL_EV_UNSUBSCRIBED:
		is->su_unsubscribed++;
		return 0;
	case SPOOL_EV_COMPLAINED:
		is->su_complained++;
		return 0;
	case SPOOL_EV_DUPLICATE:
		is->su_duplicates++;
		return 0;
	default:
		return 0;
	}
}

int
spool_engage_prune(struct spool_txn *t, int64_t before, size_t max, size_t *n_r)
{
	return spool_db_prune_qid(t, SPOOL_DB_ENGAGE_FIRST, QID_LEN + 5, before,
	    max, n_r);
}

/* ---- the complaint index */

/* FNV-1a 64 of the Message-Id, a NUL and the lower-cased recipient; 0 if
 * there is no Message-Id (never 0 otherwise). */
uint64_t
spool_engage_mkey(const char *message_id, const char *to)
{
	uint64_t    h = 0xcbf29ce484222325ULL;
	const char *s;

	if (message_id == NULL || message_id[0] == '\0' || to == NULL)
		return 0;
	for (s = message_id; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	h = (h ^ 0) * 0x100000001b3ULL;
	for (s = to; *s != '\0'; s++)
		h = (h ^ (uint8_t)tolower((unsigned char)*s)) *
		    0x100000001b3ULL;
	return h != 0 ? h : 1;
}

static void
spool_engage_mkey_key(struct spool_key *k, uint64_t mkey, uint64_t seq)
{
	spool_key_init(k);
	spool_key_be64(k, mkey);
	spool_key_be64(k, seq);
}

int
spool_engage_mkey_add(struct spool_txn *t, uint64_t mkey, uint64_t seq)
{
	struct spool_key k;

	if (mkey == 0)
		return 0;
	spool_engage_mkey_key(&k, mkey, seq);
	return spool_db_put(t, SPOOL_DB_MSGID_RCPT, &k, "", 0);
}

int
spool_engage_mkey_del(struct spool_txn *t, uint64_t mkey, uint64_t seq)
{
	struct spool_key k;
	int		 rc;

	if (mkey == 0)
		return 0;
	spool_engage_mkey_key(&k, mkey, seq);
	rc = spool_db_del(t, SPOOL_DB_MSGID_RCPT, &k);
	return rc == SPOOL_ENOTFOUND ? 0 : rc;
}

struct spool_engage_find {
	struct spool_txn *txn;
	const char	 *message_id, *rcpt;
	const char	 *qid; /* NULL: any */
	size_t		  looked;
	uint64_t	  seq; /* the newest match, 0 = none */
	int (*cb)(uint64_t, const char *, size_t, void *);
	void *arg;
};

/* Is this logged event the delivered event of (message_id, rcpt)? */
static int
spool_engage_match_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct spool_engage_find *f = arg;
	struct json_val		 *root;
	const char		 *ev, *mid, *to, *qid;
	char			  err[64];

	if (memchr(json, '\0', len) != NULL)
		return 0;
	root = json_parse_n(json, len, err, sizeof(err));
	if (root == NULL)
		return 0;
	ev = json_string(json_get(root, "event"));
	mid = json_string(json_get(root, "message_id"));
	to = json_string(json_get(root, "to"));
	qid = json_string(json_get(root, "queue_id"));
	if (ev != NULL && strcmp(ev, "delivered") == 0 && mid != NULL &&
	    strcmp(mid, f->message_id) == 0 && to != NULL &&
	    strcasecmp(to, f->rcpt) == 0 &&
	    (f->qid == NULL || (qid != NULL && strcmp(qid, f->qid) == 0)))
		f->seq = seq;
	json_val_free(&root);
	return 0;
}

static int
spool_engage_find_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_engage_find *f = arg;

	(void)v;
	(void)len;
	if (klen != 16)
		return SPOOL_ECORRUPT;
	if (++f->looked > SPOOL_ENGAGE_SCAN_MAX)
		return SPOOL_ENGAGE_STOP;
	return spool_index_log_get(f->txn, key + 8, spool_engage_match_cb, f);
}

int
spool_engage_find_delivered(struct spool_txn *t, const char *message_id,
    const char *rcpt, int (*cb)(uint64_t, const char *, size_t, void *),
    void       *arg)
{
	return spool_engage_find_delivered_qid(t, message_id, rcpt, NULL, cb,
	    arg);
}

int
spool_engage_find_delivered_qid(struct spool_txn *t, const char *message_id,
    const char *rcpt, const char			    *qid,
    int (*cb)(uint64_t, const char *, size_t, void *), void *arg)
{
	struct spool_engage_find f = { .txn = t,
		.message_id = message_id,
		.rcpt = rcpt,
		.qid = qid,
		.cb = cb,
		.arg = arg };
	struct spool_key	 k;
	uint8_t			 seqkey[8];
	uint64_t		 mkey;
	int			 rc;

	if ((mkey = spool_engage_mkey(message_id, rcpt)) == 0)
		return SPOOL_ENOTFOUND;
	spool_key_init(&k);
	spool_key_be64(&k, mkey);
	rc = spool_db_iter(t, SPOOL_DB_MSGID_RCPT, &k, 8, false,
	    spool_engage_find_cb, &f);
	if (rc != 0 && rc != SPOOL_ENGAGE_STOP)
		return rc;
	if (f.seq == 0)
		return SPOOL_ENOTFOUND;
	spool_be64_put(seqkey, f.seq);
	return spool_index_log_get(t, seqkey, cb, arg);
}

/* ---- the complaint index of an older database */

static int
spool_engage_build_add(struct spool_txn *t, const struct spool_index_ev *e,
    uint64_t seq)
{
	return spool_engage_mkey_add(t, e->ie_mkey, seq);
}

/*
 * The writer's migration (spool_db.c's spool_db_migrate): indexes the
 * delivered events logged before the complaint index existed, in write
 * transactions of SPOOL_INDEX_CHUNK events, resuming where an interrupted
 * build stopped (meta "engage_idx_next"); meta "engage_idx" is 1 when
 * done. Idempotent. The databases themselves (engage_first, msgid_rcpt)
 * are created by the writer's open; a reader opening an older database
 * before any writer did fails with SPOOL_EVERSION.
 */
int
spool_db_migrate_engage(struct spool *sp)
{
	static const struct spool_index_build ib = {
		"engage_idx",
		"engage_idx_next",
		NULL,
		spool_engage_build_add,
	};

	return spool_index_build(sp, &ib);
}
