/*
 * Unit tests of trackd's request handling (trackd/trackd.h: trackd_handle)
 * over a real spool, without HTTP: the routes, the 404/405 answers for
 * every kind of bad target or token, the recorded redirect target (never
 * one from the request), the hit records the committer receives through
 * its pipe (HEAD: none), and the unsubscribe: deferred by the backend,
 * committed (stop-list entry and its single event) by the committer's
 * flush, answered from its verdict.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "spool_track.h"
#include "tap.h"
#include "tfix.h"
#include "trackd.h"
#include "trackd_int.h"

#define MAP (INT64_C(64) << 20)

static char		   tdir[64];
static const unsigned char key[SPOOL_TRACK_KEYLEN] =
    "0123456789abcdef0123456789abcde";
static const char qid[] = "6620459CC0C2F0000007";
static char *links[] = { "https://shop.example/a?x=1", "http://example.org/b" };
static char *rcpts[] = { "a@x.test", "b@x.test" };

static struct trackd *
t_setup(struct spool **sp_r, int pfd[2])
{
	struct spool_track_msg km = { .km_track = 7,
		.km_links = links,
		.km_nlinks = 2,
		.km_rcpts = rcpts,
		.km_nrcpts = 2,
		.km_arrival = 1 };
	struct spool_txn      *tx;
	struct trackd	      *t;
	char		       ev[256];

	*sp_r = t_spool_fresh(tdir, sizeof(tdir), "t_trackd_hit", MAP);
	(void)str_copy(km.km_login, sizeof(km.km_login), "acc");
	tx = t_wtxn(*sp_r);
	t_ok(spool_track_put(tx, qid, &km) == 0 && spool_commit(&tx) == 0,
	    "recorded");
	(void)snprintf(ev, sizeof(ev), "%s/events.jsonl", tdir);
	t = trackd_new(*sp_r, key, ev);
	if (pipe2(pfd, O_NONBLOCK) == -1)
		abort();
	trackd_set_pipe(t, pfd[1]);
	return t;
}

static char *
t_tok(char kind, uint32_t idx, uint16_t link, char *buf)
{
	struct spool_track_ref r = { .tk_kind = (enum spool_track_kind)kind,
		.tk_idx = idx,
		.tk_link = link };

	(void)str_copy(r.tk_qid, sizeof(r.tk_qid), qid);
	if (spool_track_token(key, &r, buf, SPOOL_TRACK_TOKEN_MAX) == -1)
		abort();
	return buf;
}

static int
t_req(struct trackd *t, enum trackd_method m, const char *url,
    struct trackd_resp *rs)
{
	struct trackd_req rq = { .rq_method = m,
		.rq_url = url,
		.rq_ua = "ua/1",
		.rq_client = "192.0.2.77",
		.rq_now_ms = 1000 };

	trackd_handle(t, &rq, rs);
	return rs->rs_status;
}

static size_t
t_drain(int fd, struct trackd_hit *last)
{
	size_t n = 0;

	while (read(fd, last, sizeof(*last)) == (ssize_t)sizeof(*last))
		n++;
	return n;
}

static void
t_routes(void)
{
	struct trackd_resp rs;
	struct trackd_hit  h;
	struct spool	  *sp;
	struct trackd	  *t;
	char		   tok[SPOOL_TRACK_TOKEN_MAX], url[512], forged[512];
	int		   p[2];

	t = t_setup(&sp, p);
	(void)snprintf(url, sizeof(url), "/o/%s", t_tok('o', 1, 0, tok));
	t_int_eq(t_req(t, TRACKD_M_GET, url, &rs), 200, "GET /o/");
	t_ok(rs.rs_len == 43 && memcmp(rs.rs_body, "GIF89a", 6) == 0 &&
		rs.rs_nocache,
	    "a 1x1 GIF, no-cache");
	trackd_resp_release(&rs);
	t_int_eq((long long)t_drain(p[0], &h), 1, "one hit record");
	t_ok(h.h_kind == 'o' && h.h_idx == 1 && strcmp(h.h_qid, qid) == 0 &&
		strcmp(h.h_ua, "ua/1") == 0 &&
		strcmp(h.h_client, "192.0.2.0/24") == 0,
	    "the record: kind, recipient, QID, user agent, client cut to /24");
	t_int_eq(t_req(t, TRACKD_M_HEAD, url, &rs), 200, "HEAD /o/");
	trackd_resp_release(&rs);
	t_int_eq((long long)t_drain(p[0], &h), 0, "HEAD records nothing");

	(void)snprintf(url, sizeof(url), "/c/%s", t_tok('c', 0, 1, tok));
	t_int_eq(t_req(t, TRACKD_M_GET, url, &rs), 302, "GET /c/");
	t_str_eq(rs.rs_location, links[1], "Location: the recorded link 1");
	trackd_resp_release(&rs);
	t_ok(t_drain(p[0], &h) == 1 && h.h_kind == 'c' && h.h_link == 1,
	    "a click record");
	(void)snprintf(url, sizeof(url), "/c/%s", t_tok('c', 0, 2, tok));
	t_int_eq(t_req(t, TRACKD_M_GET, url, &rs), 404,
	    "a link number never recorded");
	trackd_resp_release(&rs);
	(void)snprintf(url, sizeof(url), "/o/%s", t_tok('o', 2, 0, tok));
	t_int_eq(t_req(t, TRACKD_M_POST, url, &rs), 405, "POST /o/");
	t_str_eq(rs.rs_allow, "GET, HEAD", "Allow");
	trackd_resp_release(&rs);

	(void)snprintf(url, sizeof(url), "/o/%s", t_tok('o', 0, 0, tok));
	(void)str_copy(forged, sizeof(forged), url);
	forged[10] = forged[10] == 'A' ? 'B' : 'A';
	t_int_eq(t_req(t, TRACKD_M_GET, forged, &rs), 404,
	    "one character changed");
	trackd_resp_release(&rs);
	(void)snprintf(forged, sizeof(forged), "/c/%s", tok);
	t_int_eq(t_req(t, TRACKD_M_GET, forged, &rs), 404,
	    "an open token on /c/");
	trackd_resp_release(&rs);
	forged[strlen(forged) - 2] = '\0';
	t_int_eq(t_req(t, TRACKD_M_GET, forged, &rs), 404, "a truncated token");
	trackd_resp_release(&rs);
	t_int_eq(t_req(t, TRACKD_M_GET, "/c/https://evil.example/", &rs), 404,
	    "a URL in place of a token");
	trackd_resp_release(&rs);
	t_int_eq(t_req(t, TRACKD_M_GET, "/", &rs), 404, "/");
	trackd_resp_release(&rs);
	t_int_eq(t_req(t, TRACKD_M_GET, "/o", &rs), 404, "/o");
	trackd_resp_release(&rs);
	t_int_eq((long long)t_drain(p[0], &h), 0, "no record for any of them");
	trackd_free(&t);
	spool_close(&sp);
	(void)close(p[0]);
	(void)close(p[1]);
}

static bool
t_stopped(struct spool *sp, const char *addr)
{
	struct spool_txn *tx;
	bool		  has;

	if (spool_begin(sp, false, &tx) != 0)
		abort();
	has = spool_stop_has(tx, "acc", addr);
	spool_abort(&tx);
	return has;
}

/* The committer's side of one deferred POST: its commit, its verdict. */
static int
t_unsub_commit(struct trackd *tc, int vfd, const struct trackd_unsub_req *u)
{
	struct trackd_verdict v = { .v_result = -1 };

	t_ok(trackd_unsub_append(tc, &u->ur_hit), "the committer takes it");
	trackd_flush_unsubs(tc);
	t_ok(read(vfd, &v, sizeof(v)) == (ssize_t)sizeof(v) &&
		v.v_tag == u->ur_hit.h_tag,
	    "one verdict, for that socket");
	return v.v_result;
}

static size_t
t_count_events(const char *word)
{
	char   path[128], line[4096];
	FILE  *fp;
	size_t n = 0;

	(void)snprintf(path, sizeof(path), "%s/events.jsonl", tdir);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		n += strstr(line, word) != NULL;
	(void)fclose(fp);
	return n;
}

static void
t_unsubscribe(void)
{
	static const unsigned char nokey[SPOOL_TRACK_KEYLEN];
	struct trackd_unsub_req	   u;
	struct trackd_resp	   rs;
	struct trackd_hit	   h;
	struct spool		  *sp;
	struct trackd		  *t, *tc;
	char			   tok[SPOOL_TRACK_TOKEN_MAX], url[512];
	char			   ev[256];
	int			   p[2], vp[2];

	t = t_setup(&sp, p);
	(void)snprintf(ev, sizeof(ev), "%s/events.jsonl", tdir);
	tc = trackd_new(sp, nokey, ev); /* the committer's */
	if (pipe2(vp, O_NONBLOCK) == -1)
		abort();
	tc->t_reply = vp[1];
	(void)snprintf(url, sizeof(url), "/u/%s", t_tok('u', 1, 0, tok));
	t_int_eq(t_req(t, TRACKD_M_GET, url, &rs), 200, "GET /u/: the page");
	t_ok(strstr(rs.rs_body, "<form method=\"post\">") != NULL &&
		strstr(rs.rs_body, "b***@x.test") != NULL &&
		strstr(rs.rs_body, "<script") == NULL,
	    "a form, the masked address, no script");
	trackd_resp_release(&rs);
	t_ok(!t_stopped(sp, "b@x.test"), "GET changes nothing");

	t_int_eq(t_req(t, TRACKD_M_POST, url, &rs), 0,
	    "POST /u/: no answer before the commit");
	trackd_resp_release(&rs);
	u = t->t_defer;
	u.ur_hit.h_tag = 7;
	t_ok(u.ur_hit.h_kind == 'u' && u.ur_hit.h_idx == 1 &&
		strcmp(u.ur_hit.h_qid, qid) == 0 &&
		strcmp(u.ur_addr, "b@x.test") == 0 &&
		strcmp(u.ur_hit.h_client, "192.0.2.0/24") == 0,
	    "the record: recipient, QID, client cut to /24; the address");
	t_ok(!t_stopped(sp, "b@x.test") && t_drain(p[0], &h) == 0,
	    "the backend writes nothing itself");
	t_int_eq(t_unsub_commit(tc, vp[0], &u), TRACKD_U_ADDED,
	    "verdict: added");
	t_ok(t_stopped(sp, "b@x.test"), "on the stop list when answered");
	t_int_eq((long long)t_count_events("\"unsubscribed\""), 1,
	    "its event in event_log when the flush returns");
	trackd_unsub_answer(&u, TRACKD_U_ADDED, &rs);
	t_ok(rs.rs_status == 200 &&
		strstr(rs.rs_body, "You are unsubscribed") != NULL,
	    "the answer: the done page");
	trackd_resp_release(&rs);

	t_int_eq(t_req(t, TRACKD_M_POST, url, &rs), 0, "a second POST");
	trackd_resp_release(&rs);
	u = t->t_defer;
	t_int_eq(t_unsub_commit(tc, vp[0], &u), TRACKD_U_ALREADY,
	    "verdict: already");
	trackd_unsub_answer(&u, TRACKD_U_ALREADY, &rs);
	t_int_eq(rs.rs_status, 200, "the same answer");
	trackd_resp_release(&rs);
	t_int_eq((long long)t_count_events("\"unsubscribed\""), 1,
	    "and no second event");

	trackd_unsub_answer(&u, TRACKD_U_FAILED, &rs);
	t_int_eq(rs.rs_status, 503, "not committed: 503");
	trackd_resp_release(&rs);
	trackd_unsub_answer(&u, TRACKD_U_GONE, &rs);
	t_int_eq(rs.rs_status, 404, "no longer recorded: 404");
	trackd_resp_release(&rs);
	(void)snprintf(url, sizeof(url), "/u/%s", t_tok('u', 0, 0, tok));
	t_int_eq(t_req(t, TRACKD_M_POST, url, &rs), 0, "POST for a@");
	trackd_resp_release(&rs);
	u = t->t_defer;
	{
		struct spool_txn *tx = t_wtxn(sp);

		t_ok(spool_track_del(tx, qid) == 0 && spool_commit(&tx) == 0,
		    "the record pruned before the commit");
	}
	t_int_eq(t_unsub_commit(tc, vp[0], &u), TRACKD_U_GONE, "verdict: gone");
	t_ok(!t_stopped(sp, "a@x.test"), "nothing added");

	trackd_free(&tc);
	trackd_free(&t);
	spool_close(&sp);
	(void)close(p[0]);
	(void)close(p[1]);
	(void)close(vp[0]);
	(void)close(vp[1]);
}

/* The line (from 1) of event_log where word first is; 0: none. */
static size_t
t_event_line(const char *word)
{
	char   path[128], line[4096];
	FILE  *fp;
	size_t n = 0, at = 0;

	(void)snprintf(path, sizeof(path), "%s/events.jsonl", tdir);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (at == 0 && fgets(line, sizeof(line), fp) != NULL)
		if (++n, strstr(line, word) != NULL)
			at = n;
	(void)fclose(fp);
	return at;
}

/*
 * An unsubscribe that arrives on its pipe while the committer writes a
 * group of opens does not wait for the whole group: the transaction
 * stops at the next TRACKD_FLUSH_CHUNK hits, takes the unsubscribe and
 * is committed (its event right after those opens), and the rest of the
 * group follows; every open is committed once.
 */
static void
t_group_cut(void)
{
	static const unsigned char nokey[SPOOL_TRACK_KEYLEN];
	struct trackd_verdict	   v = { .v_result = -1 };
	struct trackd_hit	   h, u;
	struct spool		  *sp;
	struct trackd		  *t, *tc;
	char			   ev[256];
	size_t			   i, n = 2 * TRACKD_FLUSH_CHUNK + 5;
	_Static_assert(2 * TRACKD_FLUSH_CHUNK + 5 <= SPOOL_ENGAGE_HITS_MAX,
	    "every open recorded");
	int p[2], vp[2], up[2];

	t = t_setup(&sp, p);
	(void)snprintf(ev, sizeof(ev), "%s/events.jsonl", tdir);
	tc = trackd_new(sp, nokey, ev);
	if (pipe2(vp, O_NONBLOCK) == -1 || pipe2(up, O_NONBLOCK) == -1)
		abort();
	tc->t_reply = vp[1];
	tc->t_upipe = up[0];
	memset(&h, 0, sizeof(h));
	(void)str_copy(h.h_qid, sizeof(h.h_qid), qid);
	h.h_kind = SPOOL_TRACK_OPEN;
	h.h_dt = (int64_t)time(NULL);
	for (i = 0; i < n && trackd_hit_append(tc, &h); i++)
		;
	t_int_eq((long long)i, (long long)n, "opens pending");
	u = h;
	u.h_idx = 1;
	u.h_kind = SPOOL_TRACK_UNSUB;
	u.h_tag = 42;
	t_ok(write(up[1], &u, sizeof(u)) == (ssize_t)sizeof(u),
	    "an unsubscribe on its pipe");
	t_int_eq((long long)trackd_flush(tc), (long long)n,
	    "every open committed");
	t_ok(read(vp[0], &v, sizeof(v)) == (ssize_t)sizeof(v) && v.v_tag == 42,
	    "the unsubscribe answered");
	t_int_eq(v.v_result, TRACKD_U_ADDED, "verdict: added");
	t_ok(t_stopped(sp, "b@x.test"), "on the stop list");
	t_int_eq((long long)t_count_events("\"opened\""), (long long)n,
	    "each open once in event_log");
	t_int_eq((long long)t_event_line("\"unsubscribed\""),
	    TRACKD_FLUSH_CHUNK + 1,
	    "the unsubscribe committed after the first chunk of opens");
	t_int_eq((long long)trackd_pending(tc), 0, "nothing left pending");
	trackd_free(&tc);
	trackd_free(&t);
	spool_close(&sp);
	for (i = 0; i < 2; i++) {
		(void)close(p[i]);
		(void)close(vp[i]);
		(void)close(up[i]);
	}
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "routes", t_routes },
		{ "unsubscribe", t_unsubscribe },
		{ "group cut", t_group_cut },
	};

	log_init("t_trackd_hit", LOG_DEST_STDERR);
	return T_RUN_RMTREE(cases, tdir);
}
