/*
 * spoolctl events, callbacks replay, callbacks status (issue 18 item 2).
 * One account's stored events come from the delivery log through its
 * per-account index (spool_log_iter_account), CTL_EV_CHUNK at a time in
 * short read transactions, so memory and the snapshot held stay bounded
 * whatever the range. --since/--until take an event id (a sequence
 * number: a direct seek) or a UTC time (a binary search of the log).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "spoolctl.h"

#define CTL_EV_CHUNK   1000  /* events per transaction */
#define CTL_REPLAY_MAX 10000 /* more needs --force */

static const char *const ctl_ev_types[] = {
	"delivered",
	"deferred",
	"bounced",
	"opened",
	"clicked",
	"unsubscribed",
	"complained",
	"duplicate",
	NULL,
};

struct ctl_evsel {
	const char *login;
	const char *since, *until; /* as given */
	unsigned    types;	   /* bit i: ctl_ev_types[i]; 0 = all */
	uint64_t    from, to;	   /* sequence numbers, inclusive */
	/* per event */
	int (*fn)(struct ctl_evsel *, uint64_t, const char *, size_t,
	    const struct ctl_event *);
	struct spool_txn *txn;
	struct json_gen	 *jg;
	bool		  json;
	size_t		  n, limit;
	int64_t		  now;
};

/* --type a,b,c -> bits; a usage error for an unknown name. */
static unsigned
ctl_ev_types_parse(const char *cmd, const char *list)
{
	char	*copy = strdup(list), *p, *next;
	unsigned bits = 0, i;

	if (copy == NULL)
		ctl_die("out of memory");
	for (p = copy; p != NULL; p = next) {
		if ((next = strchr(p, ',')) != NULL)
			*next++ = '\0';
		for (i = 0;
		     ctl_ev_types[i] != NULL && strcmp(p, ctl_ev_types[i]) != 0;
		     i++)
			;
		if (ctl_ev_types[i] == NULL)
			ctl_usage("%s: --type %s: not one of delivered, "
				  "deferred, bounced, "
				  "opened, clicked, unsubscribed, complained, "
				  "duplicate",
			    cmd, p);
		bits |= 1u << i;
	}
	free(copy);
	return bits;
}

static bool
ctl_ev_type_ok(const struct ctl_evsel *s, const char *type)
{
	unsigned i;

	if (s->types == 0)
		return true;
	for (i = 0; type != NULL && ctl_ev_types[i] != NULL; i++)
		if (strcmp(type, ctl_ev_types[i]) == 0)
			return (s->types & (1u << i)) != 0;
	return false;
}

/* "2026-12-07T10:00:00Z" or "2026-12-07" (its start; with end, its last
 * second) -> unix seconds; -1 if it is neither. */
static int64_t
ctl_ev_time(const char *s, bool end)
{
	struct tm   tm;
	const char *rest;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) == 20 &&
	    (rest = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) != NULL &&
	    *rest == '\0')
		return (int64_t)timegm(&tm);
	memset(&tm, 0, sizeof(tm));
	if (strlen(s) == 10 && (rest = strptime(s, "%Y-%m-%d", &tm)) != NULL &&
	    *rest == '\0')
		return (int64_t)timegm(&tm) + (end ? 86399 : 0);
	return -1;
}

/* An id or a time -> a sequence number (until: the last one it covers). */
static uint64_t
ctl_ev_bound(struct spool_txn *t, const char *cmd, const char *opt,
    const char *v, bool until)
{
	uint64_t seq;
	int64_t	 dt;
	int	 rc;

	if ((dt = ctl_ev_time(v, until)) >= 0) {
		if ((rc = spool_log_seq_at(t, until ? dt + 1 : dt, &seq)) != 0)
			ctl_die_rc(rc, "delivery log");
		return until ? seq - 1 : seq;
	}
	rc = spool_event_id_seq(t, v, &seq);
	if (rc == EINVAL)
		ctl_usage(
		    "%s: %s %s: not an event id nor YYYY-MM-DD[THH:MM:SSZ]",
		    cmd, opt, v);
	if (rc == SPOOL_ENOTFOUND)
		ctl_die("%s: %s %s: an event id of another spool", cmd, opt, v);
	if (rc != 0)
		ctl_die_rc(rc, "%s", opt);
	return seq;
}

static int
ctl_ev_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct ctl_evsel *s = arg;
	struct ctl_event  ev;
	int		  rc;

	if (ctl_event_parse(json, len, &ev) == -1)
		return 0; /* not an event: nothing to show or send */
	rc = 0;
	if (ev.ce_account != NULL && strcmp(ev.ce_account, s->login) == 0 &&
	    ctl_ev_type_ok(s, ev.ce_event))
		rc = s->fn(s, seq, json, len, &ev);
	ctl_event_free(&ev);
	return rc;
}

/* Every selected event to s->fn, CTL_EV_CHUNK per transaction. */
static void
ctl_ev_run(struct ctl *ctl, struct ctl_evsel *s, bool write)
{
	uint64_t from = s->from, next;
	int	 rc;

	while (from != 0 && from <= s->to && !ctl_out_broken()) {
		s->txn = ctl_begin(ctl, write);
		rc = spool_log_iter_account(s->txn, s->login, from, s->to,
		    CTL_EV_CHUNK, ctl_ev_cb, s, &next);
		if (rc == 1) { /* the callback had enough */
			spool_abort(&s->txn);
			return;
		}
		if (rc != 0)
			ctl_die_rc(rc, "delivery log");
		if (write)
			ctl_commit(&s->txn);
		else
			spool_abort(&s->txn);
		from = next;
	}
}

static int
ctl_ev_print(struct ctl_evsel *s, uint64_t seq, const char *json, size_t len,
    const struct ctl_event *ev)
{
	const char *id = json_string(json_get(ev->ce_tree, "id"));

	(void)seq;
	if (s->json) {
		(void)fwrite(json, 1, len, stdout);
		(void)fputc('\n', stdout);
	} else
		printf("%s  %s  %-9s %s  %s  %s\n", ev->ce_dt ? ev->ce_dt : "?",
		    id ? id : "?", ev->ce_event ? ev->ce_event : "?",
		    ev->ce_to ? ev->ce_to : "-", ev->ce_qid ? ev->ce_qid : "-",
		    ev->ce_msg ? ev->ce_msg : "");
	s->n++;
	return 0;
}

/* Options shared by events and callbacks replay; returns --force. */
static bool
ctl_ev_opts(struct ctl_evsel *s, const char *cmd, int argc, char **argv)
{
	static const struct option lo[] = { { "account", required_argument,
						NULL, 'a' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "type", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
	bool force = false, replay = strcmp(cmd, "events") != 0;
	int  ch;

	while ((ch = ctl_getopt(argc, argv, lo)) != -1) {
		switch (ch) {
		case 'a':
			s->login = optarg;
			break;
		case 's':
			s->since = optarg;
			break;
		case 'u':
			s->until = optarg;
			break;
		case 't':
			s->types = ctl_ev_types_parse(cmd, optarg);
			break;
		case 'j':
			s->json = true;
			break;
		case 'f':
			force = true;
			break;
		}
	}
	ctl_operands(argc, argv, 0, 0, NULL);
	if (s->login == NULL || s->since == NULL)
		ctl_usage("%s: --account and --since are required", cmd);
	if ((replay && s->json) || (!replay && force))
		ctl_usage("%s: --%s is not an option of this command", cmd,
		    replay ? "json" : "force");
	if (!ctl_login_ok(s->login))
		ctl_usage("%s: --account %s: not a login", cmd, s->login);
	return force;
}

static void
ctl_ev_bounds(struct ctl *ctl, struct ctl_evsel *s, const char *cmd)
{
	struct spool_txn *txn = ctl_begin(ctl, false);

	s->from = ctl_ev_bound(txn, cmd, "--since", s->since, false);
	s->to = s->until != NULL
	    ? ctl_ev_bound(txn, cmd, "--until", s->until, true)
	    : UINT64_MAX;
	spool_abort(&txn);
	if (s->from == 0)
		s->from = 1;
}

int
ctl_cmd_events(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_evsel s = { .fn = ctl_ev_print };

	(void)ctl_ev_opts(&s, "events", argc, argv);
	ctl_ev_bounds(ctl, &s, "events");
	ctl_ev_run(ctl, &s, false);
	if (!s.json && s.n == 0 && !ctl_out_broken())
		printf("no events of %s in that range\n", s.login);
	return CTL_OK;
}

/* ---- callbacks replay */

static int
ctl_ev_count(struct ctl_evsel *s, uint64_t seq, const char *json, size_t len,
    const struct ctl_event *ev)
{
	(void)seq;
	(void)json;
	(void)len;
	(void)ev;
	return ++s->n > s->limit ? 1 : 0;
}

/* Queued with the time of the replay: callback_max_age counts from now. */
static int
ctl_ev_queue(struct ctl_evsel *s, uint64_t seq, const char *json, size_t len,
    const struct ctl_event *ev)
{
	int rc;

	(void)ev;
	if ((rc = spool_outbox_replay(s->txn, s->login, seq, s->now, json,
		 len)) != 0)
		ctl_die_rc(rc, "outbox");
	s->n++;
	return 0;
}

static int
ctl_cb_replay(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_evsel     s = { .limit = CTL_REPLAY_MAX, .now = ctl->now };
	struct spool_account a;
	struct spool_txn    *txn;
	bool		     force;
	int		     rc;

	force = ctl_ev_opts(&s, "callbacks replay", argc, argv);
	txn = ctl_begin(ctl, false);
	if ((rc = spool_account_get(txn, s.login, &a)) == SPOOL_ENOTFOUND)
		ctl_die(CTL_NO_ACCOUNT, s.login);
	if (rc != 0)
		ctl_die_rc(rc, "account %s", s.login);
	spool_abort(&txn);
	if (a.ac_callback_url[0] == '\0')
		ctl_die("callbacks replay: account %s has no callback URL "
			"(spoolctl account set %s --callback-url URL)",
		    s.login, s.login);
	ctl_ev_bounds(ctl, &s, "callbacks replay");
	if (!force) {
		s.fn = ctl_ev_count;
		ctl_ev_run(ctl, &s, false);
		if (s.n > s.limit)
			ctl_die("callbacks replay: more than %zu events in "
				"that range; "
				"narrow it (--until, --type) or add --force",
			    s.limit);
	}
	s.n = 0;
	s.fn = ctl_ev_queue;
	ctl_ev_run(ctl, &s, true);
	ctl_wake_deliverd(ctl);
	printf("queued %zu event(s) of %s for %s\n", s.n, s.login,
	    a.ac_callback_url);
	return CTL_OK;
}

/* ---- callbacks status */

struct ctl_cbs {
	struct spool_txn *txn;
	struct json_gen	 *jg;
	int64_t		  now;
	size_t		  n;
};

struct ctl_cbs_acct {
	size_t	backlog;
	int64_t oldest; /* 0: none */
};

static int
ctl_cbs_count(uint64_t seq, int64_t dt, const char *json, size_t len, void *arg)
{
	struct ctl_cbs_acct *b = arg;

	(void)seq;
	(void)json;
	(void)len;
	if (b->backlog++ == 0)
		b->oldest = dt;
	return 0;
}

static void
ctl_cbs_time(struct ctl_cbs *c, const char *key, int64_t t)
{
	char dt[21];

	if (t <= 0) {
		if (c->jg != NULL) {
			json_key(c->jg, key);
			json_null(c->jg);
		}
		return;
	}
	spool_dt(t, dt);
	if (c->jg != NULL)
		json_kv_str(c->jg, key, dt);
}

static void
ctl_cbs_json(struct ctl_cbs *c, const struct spool_account *a,
    const struct ctl_cbs_acct *b, uint64_t dropped,
    const struct spool_cb_state *st)
{
	json_obj_begin(c->jg);
	json_kv_str(c->jg, "account", a->ac_login);
	json_kv_str(c->jg, "callback_url", a->ac_callback_url);
	json_kv_int(c->jg, "backlog", (int64_t)b->backlog);
	ctl_cbs_time(c, "oldest_pending", b->oldest);
	json_key(c->jg, "oldest_pending_age");
	if (b->oldest > 0)
		json_int(c->jg, c->now - b->oldest);
	else
		json_null(c->jg);
	json_kv_int(c->jg, "dropped", (int64_t)dropped);
	ctl_cbs_time(c, "last_success", st->cs_last_ok);
	ctl_cbs_time(c, "last_error", st->cs_last_err);
	json_kv_str(c->jg, "last_error_text",
	    st->cs_last_err > 0 ? st->cs_err : NULL);
	json_obj_end(c->jg);
}

static void
ctl_cbs_text(struct ctl_cbs *c, const struct spool_account *a,
    const struct ctl_cbs_acct *b, uint64_t dropped,
    const struct spool_cb_state *st)
{
	char ok[21] = "never", err[21] = "never", old[21] = "-";

	if (st->cs_last_ok > 0)
		spool_dt(st->cs_last_ok, ok);
	if (st->cs_last_err > 0)
		spool_dt(st->cs_last_err, err);
	if (b->oldest > 0)
		spool_dt(b->oldest, old);
	printf("%s  %s\n  backlog %zu, oldest pending %s", a->ac_login,
	    a->ac_callback_url[0] != '\0' ? a->ac_callback_url
					  : "(no callback URL)",
	    b->backlog, old);
	if (b->oldest > 0)
		printf(" (%llds ago)", (long long)(c->now - b->oldest));
	printf(", dropped %llu\n  last success %s, last error %s%s%s\n",
	    (unsigned long long)dropped, ok, err,
	    st->cs_last_err > 0 ? ": " : "",
	    st->cs_last_err > 0 ? st->cs_err : "");
}

static int
ctl_cbs_cb(const struct spool_account *a, void *arg)
{
	struct ctl_cbs	     *c = arg;
	struct ctl_cbs_acct   b = { .backlog = 0 };
	struct spool_cb_state st;
	uint64_t	      dropped = 0;
	int		      rc;

	if ((rc = spool_outbox_iter(c->txn, a->ac_login, 0, ctl_cbs_count,
		 &b)) != 0 ||
	    (rc = spool_outbox_dropped(c->txn, a->ac_login, &dropped)) != 0 ||
	    ((rc = spool_cb_state_get(c->txn, a->ac_login, &st)) != 0))
		return rc;
	if (a->ac_callback_url[0] == '\0' && b.backlog == 0 && dropped == 0)
		return 0; /* never had callbacks */
	c->n++;
	if (c->jg != NULL)
		ctl_cbs_json(c, a, &b, dropped, &st);
	else
		ctl_cbs_text(c, a, &b, dropped, &st);
	return 0;
}

static int
ctl_cb_status(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_cbs c = { .now = ctl->now };
	int	       rc;

	if (ctl_want_json(argc, argv, NULL, 0, 0))
		c.jg = json_gen_new(false);
	if (c.jg != NULL)
		json_arr_begin(c.jg);
	c.txn = ctl_begin(ctl, false);
	if ((rc = spool_account_iter(c.txn, ctl_cbs_cb, &c)) != 0)
		ctl_die_rc(rc, "callbacks status");
	spool_abort(&c.txn);
	if (c.jg != NULL) {
		json_arr_end(c.jg);
		ctl_json_print(c.jg);
		json_gen_free(&c.jg);
	} else if (c.n == 0)
		printf("no account has a callback URL\n");
	return CTL_OK;
}

int
ctl_cmd_callbacks(struct ctl *ctl, int argc, char **argv)
{
	static const struct ctl_cmd subs[] = {
		{ .name = "replay", .fn = ctl_cb_replay },
		{ .name = "status", .fn = ctl_cb_status },
		{ .name = NULL, .fn = NULL },
	};

	return ctl_dispatch(ctl, subs, argc, argv, NULL);
}
