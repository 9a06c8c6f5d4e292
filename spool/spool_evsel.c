/*
 * Stored events by account (issue 18: spoolctl events, callbacks replay):
 * the per-account index of the delivery log (dlog_acct: login NUL, BE64
 * seq -> ""), written with each event (spool_ev_store), removed with it by
 * the pruning (spool_index_event_del: same retention as the log), built
 * once for an older database (spool_db_migrate_ops); the seek from a time
 * to a sequence number; event ids; and the callback sender's per-account
 * record of its last success and last error (meta "callback_state:LOGIN").
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "spool.h"
#include "spool_index.h"
#include "spool_key.h"
#include "spool_rec.h"
#include "xmem.h"

#define SPOOL_EVSEL_STOP   (-30988) /* internal: a callback's "enough" */
#define SPOOL_CBST_VERSION 1

static void
spool_evsel_key(struct spool_key *k, const char *login, uint64_t seq)
{
	spool_key_init(k);
	spool_key_str(k, login);
	spool_key_be64(k, seq);
}

int
spool_index_acct_add(struct spool_txn *t, const char *login, uint64_t seq)
{
	struct spool_key k;

	if (login == NULL || login[0] == '\0' ||
	    strlen(login) >= SPOOL_LOGIN_MAX)
		return 0;
	spool_evsel_key(&k, login, seq);
	return spool_db_put(t, SPOOL_DB_DLOG_ACCT, &k, "", 0);
}

int
spool_index_acct_del(struct spool_txn *t, const char *login, uint64_t seq)
{
	struct spool_key k;
	int		 rc;

	if (login == NULL || login[0] == '\0')
		return 0;
	spool_evsel_key(&k, login, seq);
	rc = spool_db_del(t, SPOOL_DB_DLOG_ACCT, &k);
	return rc == SPOOL_ENOTFOUND ? 0 : rc;
}

bool
spool_log_acct_indexed(struct spool_txn *t)
{
	return spool_index_built(t, "acct_idx");
}

/* ---- one account's events, a bounded chunk at a time */

struct spool_evsel_it {
	struct spool_txn *txn;
	const char	 *login;
	size_t		  plen; /* login + NUL */
	uint64_t	  to;
	size_t		  max, n;
	uint64_t	  next;
	int (*cb)(uint64_t, const char *, size_t, void *);
	void *arg;
};

/* Counts a visited event; SPOOL_EVSEL_STOP past `to` or at the chunk's end. */
static int
spool_evsel_step(struct spool_evsel_it *it, uint64_t seq)
{
	if (seq > it->to) {
		it->next = 0;
		return SPOOL_EVSEL_STOP;
	}
	if (it->n == it->max) {
		it->next = seq;
		return SPOOL_EVSEL_STOP;
	}
	it->n++;
	return 0;
}

static int
spool_evsel_idx_cb(const uint8_t *key, size_t klen, const void *v, size_t len,
    void *arg)
{
	struct spool_evsel_it *it = arg;
	int		       rc;

	(void)v;
	(void)len;
	if (klen != it->plen + 8)
		return SPOOL_ECORRUPT;
	if ((rc = spool_evsel_step(it, spool_be64_get(key + it->plen))) != 0)
		return rc;
	return spool_index_log_get(it->txn, key + it->plen, it->cb, it->arg);
}

/* A database whose index is not built yet: the log itself, filtered. */
static int
spool_evsel_scan_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct spool_evsel_it *it = arg;
	struct spool_index_ev  e;
	int		       rc;

	if ((rc = spool_evsel_step(it, seq)) != 0)
		return rc;
	if (spool_index_parse(json, len, &e) != 0 ||
	    strcmp(e.ie_login, it->login) != 0)
		return 0;
	return it->cb(seq, json, len, it->arg);
}

int
spool_log_iter_account(struct spool_txn *t, const char *login, uint64_t from,
    uint64_t to, size_t max, int (*cb)(uint64_t, const char *, size_t, void *),
    void *arg, uint64_t *next_r)
{
	struct spool_evsel_it it = { .txn = t,
		.login = login,
		.to = to,
		.max = max,
		.cb = cb,
		.arg = arg };
	struct spool_key      k;
	int		      rc;

	*next_r = 0;
	if (login[0] == '\0' || strlen(login) >= SPOOL_LOGIN_MAX || max == 0)
		return EINVAL;
	if (spool_log_acct_indexed(t)) {
		spool_evsel_key(&k, login, from);
		it.plen = k.k_len - 8;
		rc = spool_db_iter(t, SPOOL_DB_DLOG_ACCT, &k, it.plen, false,
		    spool_evsel_idx_cb, &it);
	} else
		rc = spool_log_iter(t, false, from, spool_evsel_scan_cb, &it);
	if (rc == SPOOL_EVSEL_STOP)
		rc = 0;
	*next_r = it.next;
	return rc;
}

/* ---- from a time to a sequence number */

struct spool_evsel_first {
	uint64_t seq;
	int64_t	 dt;
	bool	 found;
};

static int
spool_evsel_first_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct spool_evsel_first *f = arg;
	struct spool_index_ev	  e;

	f->seq = seq;
	f->found = true;
	/* an entry that does not decode sorts as "before everything" */
	f->dt = spool_index_parse(json, len, &e) == 0 ? e.ie_dt : INT64_MIN;
	return SPOOL_EVSEL_STOP;
}

/* The first event at or after seq: found false at the end of the log. */
static int
spool_evsel_first(struct spool_txn *t, uint64_t seq,
    struct spool_evsel_first *f)
{
	int rc;

	memset(f, 0, sizeof(*f));
	rc = spool_log_iter(t, false, seq, spool_evsel_first_cb, f);
	return rc == SPOOL_EVSEL_STOP ? 0 : rc;
}

/*
 * Events are logged with the time they are logged at, so sequence order
 * is time order: a binary search over the sequence numbers, each probe one
 * cursor seek (about 20 for a million events).
 */
int
spool_log_seq_at(struct spool_txn *t, int64_t dt, uint64_t *seq_r)
{
	struct spool_evsel_first f;
	uint64_t		 lo = 1, hi = UINT64_MAX, mid;
	int			 rc;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((rc = spool_evsel_first(t, mid, &f)) != 0)
			return rc;
		if (f.found && f.dt < dt)
			lo = f.seq + 1;
		else
			hi = mid;
	}
	*seq_r = lo;
	return 0;
}

int
spool_event_id_seq(struct spool_txn *t, const char *id, uint64_t *seq_r)
{
	char		   inst[9], *end;
	unsigned long long v;
	int		   rc;

	if ((rc = spool_db_instance(t, inst)) != 0)
		return rc;
	if (strlen(id) < 10 || id[8] != '-' || id[9] < '0' || id[9] > '9')
		return EINVAL;
	if (strncmp(id, inst, 8) != 0)
		return SPOOL_ENOTFOUND; /* another spool's event */
	errno = 0;
	v = strtoull(id + 9, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return EINVAL;
	*seq_r = (uint64_t)v;
	return 0;
}

/* ---- building the index of an older database */

static int
spool_evsel_build_add(struct spool_txn *t, const struct spool_index_ev *e,
    uint64_t seq)
{
	return spool_index_acct_add(t, e->ie_login, seq); /* none: nothing */
}

int
spool_db_migrate_ops(struct spool *sp)
{
	static const struct spool_index_build ib = {
		"acct_idx",
		"acct_idx_next",
		NULL,
		spool_evsel_build_add,
	};

	return spool_index_build(sp, &ib);
}

/* ---- the callback sender's last success and last error per account */

static void
spool_cbst_key(struct spool_key *k, const char *login)
{
	char name[SPOOL_LOGIN_MAX + 32];

	(void)snprintf(name, sizeof(name), "callback_state:%s", login);
	spool_key_init(k);
	spool_key_str(k, name);
}

int
spool_cb_state_get(struct spool_txn *t, const char *login,
    struct spool_cb_state *s)
{
	struct spool_key k;
	const uint8_t	*p;
	const void	*v;
	size_t		 len;
	int		 rc;

	memset(s, 0, sizeof(*s));
	spool_cbst_key(&k, login);
	if ((rc = spool_db_get(t, SPOOL_DB_META, &k, &v, &len)) != 0)
		return rc == SPOOL_ENOTFOUND ? 0 : rc;
	p = v;
	if (len < 17 || p[0] != SPOOL_CBST_VERSION ||
	    len - 17 >= sizeof(s->cs_err))
		return SPOOL_ECORRUPT;
	s->cs_last_ok = (int64_t)spool_be64_get(p + 1);
	s->cs_last_err = (int64_t)spool_be64_get(p + 9);
	memcpy(s->cs_err, p + 17, len - 17);
	s->cs_err[len - 17] = '\0';
	return 0;
}

static int
spool_cbst_put(struct spool_txn *t, const char *login,
    const struct spool_cb_state *s)
{
	struct spool_key k;
	uint8_t		 b[17 + sizeof(s->cs_err)];
	size_t		 n = strnlen(s->cs_err, sizeof(s->cs_err) - 1);

	b[0] = SPOOL_CBST_VERSION;
	spool_be64_put(b + 1, (uint64_t)s->cs_last_ok);
	spool_be64_put(b + 9, (uint64_t)s->cs_last_err);
	memcpy(b + 17, s->cs_err, n);
	spool_cbst_key(&k, login);
	return spool_db_put(t, SPOOL_DB_META, &k, b, 17 + n);
}

int
spool_cb_state_note(struct spool_txn *t, const char *login, int64_t now,
    const char *err)
{
	struct spool_cb_state s;
	int		      rc;

	if ((rc = spool_cb_state_get(t, login, &s)) != 0 &&
	    rc != SPOOL_ECORRUPT)
		return rc;
	if (err == NULL)
		s.cs_last_ok = now;
	else {
		s.cs_last_err = now;
		(void)str_copy(s.cs_err, sizeof(s.cs_err),
		    err); /* truncation is fine */
	}
	return spool_cbst_put(t, login, &s);
}

int
spool_counts(struct spool_txn *t, struct spool_counts *c)
{
	size_t m = 0, r = 0, o = 0;
	int    rc;

	if ((rc = spool_db_count(t, SPOOL_DB_MESSAGES, &m)) != 0 ||
	    (rc = spool_db_count(t, SPOOL_DB_SCHED, &r)) != 0 ||
	    (rc = spool_db_count(t, SPOOL_DB_OUTBOX_ACCT, &o)) != 0)
		return rc;
	c->sc_messages = m;
	c->sc_rcpts_pending = r;
	c->sc_outbox = o;
	return 0;
}

int
spool_outbox_replay(struct spool_txn *t, const char *login, uint64_t seq,
    int64_t dt, const char *json, size_t len)
{
	return spool_outbox_put(t, login, seq, dt, json, len);
}
