/*
 * Unit tests for the tracking pieces of libspool (spool_track.c, issue
 * 16): tokens (round trip, every one-character change and every
 * truncation refused, another key refused), the key file (created 0600,
 * refused when open to the group or others), records (put/get, bounds) and their
 * pruning with the delivery log's retention.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "spool.h"
#include "spool_track.h"
#include "tap.h"
#include "tfix.h"

#define MAP (INT64_C(64) << 20)
#define Q1  "0000000000001AAAAAAA"

static char tdir[64];

static const unsigned char key1[SPOOL_TRACK_KEYLEN] =
    "0123456789abcdef0123456789abcde";
static const unsigned char key2[SPOOL_TRACK_KEYLEN] =
    "0123456789abcdef0123456789abcdX";

static void
t_ref(struct spool_track_ref *r, int kind, const char *qid, uint32_t idx,
    uint16_t link)
{
	memset(r, 0, sizeof(*r));
	r->tk_kind = (enum spool_track_kind)kind;
	(void)str_copy(r->tk_qid, sizeof(r->tk_qid), qid);
	r->tk_idx = idx;
	r->tk_link = link;
}

static void
t_token_roundtrip(void)
{
	static const int       kinds[] = { 'o', 'c', 'u' };
	struct spool_track_ref r, g;
	char		       tok[SPOOL_TRACK_TOKEN_MAX];
	size_t		       i;
	bool		       ok = true;

	for (i = 0; i < 3; i++) {
		t_ref(&r, kinds[i], "0123456789ABCDEF0123", 0xfedcba98u,
		    kinds[i] == 'c' ? 499 : 0);
		if (spool_track_token(key1, &r, tok, sizeof(tok)) != 0 ||
		    spool_track_parse(key1, tok, strlen(tok), &g) != 0 ||
		    g.tk_kind != r.tk_kind || strcmp(g.tk_qid, r.tk_qid) != 0 ||
		    g.tk_idx != r.tk_idx || g.tk_link != r.tk_link)
			ok = false;
		if (strspn(tok,
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			"0123456789-_") != strlen(tok))
			ok = false;
	}
	t_ok(ok,
	    "open, click and unsubscribe tokens round-trip, base64url only");
	t_int_eq((long long)strlen(tok), 39, "39 characters");
	t_ref(&r, 'c', Q1, 1, 2);
	t_ok(spool_track_token(key1, &r, tok, 39) == -1,
	    "no room for the NUL: refused");
	t_ref(&r, 'x', Q1, 1, 0);
	t_ok(spool_track_token(key1, &r, tok, sizeof(tok)) == -1,
	    "unknown kind");
	t_ref(&r, 'o', "", 1, 0);
	t_ok(spool_track_token(key1, &r, tok, sizeof(tok)) == -1, "empty QID");
	t_ref(&r, 'o', "0000000000001aaaaaaa", 1, 0);
	t_ok(spool_track_token(key1, &r, tok, sizeof(tok)) == -1, "not a QID");
	t_ref(&r, 'o', Q1, 1, 3);
	t_ok(spool_track_token(key1, &r, tok, sizeof(tok)) == -1,
	    "a link on an open");
}

/*
 * Tokens made before the keyed context (HMAC() per token) stay valid:
 * these were made by that code. One signer makes many tokens in a row,
 * each the same as spool_track_token's (no state carried over).
 */
static void
t_token_signer(void)
{
	static const char *const old[] = {
		"bwEjRWeJq83vASMAAAAHAADoDv1bh_xZvS5z03o",
		"YwEjRWeJq83vASMAAAAHACq83MWk_7poqdSwZQs",
		"dQEjRWeJq83vASMAAAAHAADY8ULS52Qf6NGmLH8",
	};
	static const int	   kinds[] = { 'o', 'c', 'u' };
	struct spool_track_signer *s = spool_track_signer_new(key1);
	struct spool_track_ref	   r, g;
	char   tok[SPOOL_TRACK_TOKEN_MAX], one[SPOOL_TRACK_TOKEN_MAX];
	size_t i, k, same = 0, known = 0;

	t_ok(s != NULL, "a signer");
	for (k = 0; k < 2; k++) /* twice: the second round reuses it */
		for (i = 0; i < 3; i++) {
			t_ref(&r, kinds[i], "0123456789ABCDEF0123", 7,
			    kinds[i] == 'c' ? 42 : 0);
			if (spool_track_token_with(s, &r, tok, sizeof(tok)) ==
				0 &&
			    strcmp(tok, old[i]) == 0 &&
			    spool_track_parse(key1, tok, strlen(tok), &g) == 0)
				known++;
		}
	t_int_eq((long long)known, 6, "the tokens of before, every time");
	for (i = 0; i < 300; i++) {
		t_ref(&r, 'c', Q1, (uint32_t)i, (uint16_t)(i % 7));
		if (spool_track_token_with(s, &r, tok, sizeof(tok)) == 0 &&
		    spool_track_token(key1, &r, one, sizeof(one)) == 0 &&
		    strcmp(tok, one) == 0)
			same++;
	}
	t_int_eq((long long)same, 300, "300 in a row: as spool_track_token");
	t_ref(&r, 'o', Q1, 1, 3);
	t_ok(spool_track_token_with(s, &r, tok, sizeof(tok)) == -1,
	    "a link on an open: refused");
	spool_track_signer_free(s);
	spool_track_signer_free(NULL);
}

static void
t_token_tamper(void)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"
				    "mnopqrstuvwxyz0123456789-_=+/.%\x80";
	struct spool_track_ref r, g;
	char   tok[SPOOL_TRACK_TOKEN_MAX], bad[SPOOL_TRACK_TOKEN_MAX + 2];
	size_t i, j, len, accepted = 0, tried = 0;

	t_ref(&r, 'c', Q1, 7, 3);
	(void)spool_track_token(key1, &r, tok, sizeof(tok));
	len = strlen(tok);
	for (i = 0; i < len; i++)
		for (j = 0; j < sizeof(alpha) - 1; j++) {
			if (alpha[j] == tok[i])
				continue;
			memcpy(bad, tok, len + 1);
			bad[i] = alpha[j];
			tried++;
			if (spool_track_parse(key1, bad, len, &g) == 0)
				accepted++;
		}
	t_ok(tried > 2000 && accepted == 0,
	    "every one-character change refused "
	    "(%zu of %zu accepted)",
	    accepted, tried);
	for (i = 0, accepted = 0; i < len; i++)
		if (spool_track_parse(key1, tok, i, &g) == 0)
			accepted++;
	t_ok(accepted == 0, "every truncation refused");
	memcpy(bad, tok, len);
	bad[len] = 'A';
	bad[len + 1] = '\0';
	t_ok(spool_track_parse(key1, bad, len + 1, &g) == -1,
	    "one more character refused");
	t_ok(spool_track_parse(key2, tok, len, &g) == -1,
	    "another key's token refused");
	t_ok(spool_track_parse(key1, tok, len, &g) == 0,
	    "the token itself is fine");
}

static void
t_key_file(void)
{
	unsigned char a[SPOOL_TRACK_KEYLEN], b[SPOOL_TRACK_KEYLEN];
	char	      path[256];
	struct stat   st;
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_track",
	    MAP);

	spool_close(&sp);
	(void)snprintf(path, sizeof(path), "%s/db/%s", tdir,
	    SPOOL_TRACK_KEY_FILE);
	t_int_eq(spool_track_key_load(tdir, false, a), ENOENT,
	    "absent, not created");
	t_int_eq(spool_track_key_load(tdir, true, a), 0, "created");
	t_ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 &&
		st.st_size == SPOOL_TRACK_KEYLEN,
	    "0600, 32 bytes");
	t_ok(spool_track_key_load(tdir, true, b) == 0 &&
		memcmp(a, b, sizeof(a)) == 0,
	    "loaded again: the same key");
	(void)chmod(path, 0644);
	t_int_eq(spool_track_key_load(tdir, false, b), EPERM,
	    "readable by others: refused");
	(void)chmod(path, 0660);
	t_int_eq(spool_track_key_load(tdir, false, b), EPERM,
	    "group-writable: refused");
	(void)chmod(path, 0640);
	t_int_eq(spool_track_key_load(tdir, false, b), EPERM,
	    "group-readable (an older spool before its tree is fixed): "
	    "refused");
}

static void
t_msg_fill(struct spool_track_msg *m, size_t nlinks, size_t nrcpts)
{
	char   s[64];
	size_t i;

	memset(m, 0, sizeof(*m));
	(void)str_copy(m->km_login, sizeof(m->km_login), "acme");
	m->km_issue = 17;
	(void)str_copy(m->km_uniq, sizeof(m->km_uniq), "letter-1");
	(void)str_copy(m->km_message_id, sizeof(m->km_message_id), "<a@b>");
	(void)str_copy(m->km_from, sizeof(m->km_from), "from@acme.test");
	m->km_arrival = 1700000000;
	m->km_track = SPOOL_TRACK_F_OPENS | SPOOL_TRACK_F_CLICKS;
	(void)str_copy(m->km_host, sizeof(m->km_host), "t.acme.test");
	m->km_links = calloc(nlinks + 1, sizeof(char *));
	m->km_rcpts = calloc(nrcpts + 1, sizeof(char *));
	for (i = 0; i < nlinks; i++) {
		(void)snprintf(s, sizeof(s), "https://x.test/%zu?a=b&c", i);
		m->km_links[i] = strdup(s);
	}
	for (i = 0; i < nrcpts; i++) {
		(void)snprintf(s, sizeof(s), "r%zu@y.test", i);
		m->km_rcpts[i] = strdup(s);
	}
	m->km_nlinks = nlinks;
	m->km_nrcpts = nrcpts;
}

static void
t_put_get(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_track",
	    MAP);
	struct spool_txn      *t = t_wtxn(sp);
	struct spool_track_msg m, g;

	t_msg_fill(&m, 3, 2);
	t_int_eq(spool_track_get(t, Q1, &g), SPOOL_ENOTFOUND,
	    "not recorded yet");
	t_int_eq(spool_track_put(t, Q1, &m), 0, "put");
	t_int_eq(spool_track_get(t, Q1, &g), 0, "get");
	t_ok(strcmp(g.km_login, "acme") == 0 && g.km_issue == 17 &&
		strcmp(g.km_uniq, "letter-1") == 0 &&
		strcmp(g.km_message_id, "<a@b>") == 0 &&
		strcmp(g.km_from, "from@acme.test") == 0 &&
		g.km_arrival == 1700000000 &&
		g.km_track == (SPOOL_TRACK_F_OPENS | SPOOL_TRACK_F_CLICKS) &&
		strcmp(g.km_host, "t.acme.test") == 0,
	    "fields kept");
	t_ok(g.km_nlinks == 3 &&
		strcmp(g.km_links[2], "https://x.test/2?a=b&c") == 0 &&
		g.km_nrcpts == 2 && strcmp(g.km_rcpts[0], "r0@y.test") == 0 &&
		strcmp(g.km_rcpts[1], "r1@y.test") == 0,
	    "links and recipients in order");
	spool_track_msg_free(&g);
	t_int_eq(spool_track_put(t, "nope", &m), EINVAL, "not a QID");
	spool_track_msg_free(&m);
	t_msg_fill(&m, SPOOL_TRACK_LINKS_MAX + 1, 1);
	t_int_eq(spool_track_put(t, Q1, &m), EINVAL,
	    "more than SPOOL_TRACK_LINKS_MAX links");
	spool_track_msg_free(&m);
	t_int_eq(spool_track_del(t, Q1), 0, "del");
	t_int_eq(spool_track_get(t, Q1, &g), SPOOL_ENOTFOUND, "gone");
	spool_abort(&t);
	spool_close(&sp);
}

/* A QID whose arrival is `when` (seconds). */
static void
t_qid_at(char qid[QID_SIZE], int64_t when, int n)
{
	(void)snprintf(qid, QID_SIZE, "%013llX%07X",
	    (unsigned long long)when * 1000000ULL, (unsigned)n);
}

static void
t_prune(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_track",
	    MAP);
	struct spool_txn	*t = t_wtxn(sp);
	struct spool_retention	 rt = { .rt_dlog = 86400 };
	struct spool_prune_stats ps;
	struct spool_track_msg	 m, g;
	int64_t			 now = time(NULL);
	char			 q[4][QID_SIZE];
	int			 i, rounds = 0;

	t_msg_fill(&m, 1, 1);
	t_qid_at(q[0], now - 3 * 86400, 1);
	t_qid_at(q[1], now - 2 * 86400, 2);
	t_qid_at(q[2], now - 3600, 3);
	t_qid_at(q[3], now - 60, 4);
	for (i = 0; i < 4; i++)
		(void)spool_track_put(t, q[i], &m);
	spool_track_msg_free(&m);
	t_int_eq(spool_commit(&t), 0, "four records");
	memset(&ps, 0, sizeof(ps));
	do
		t_int_eq(spool_prune(sp, now, &rt, 1, &ps), 0,
		    "prune, one at a time");
	while (ps.ps_more && ++rounds < 20);
	t_int_eq((long long)ps.ps_track, 2,
	    "the two older than the retention removed");
	t = t_wtxn(sp);
	t_ok(spool_track_get(t, q[0], &g) == SPOOL_ENOTFOUND &&
		spool_track_get(t, q[1], &g) == SPOOL_ENOTFOUND,
	    "old ones gone");
	t_ok(spool_track_get(t, q[2], &g) == 0, "younger kept");
	spool_track_msg_free(&g);
	t_ok(spool_track_get(t, q[3], &g) == 0, "youngest kept");
	spool_track_msg_free(&g);
	spool_abort(&t);
	rt.rt_dlog = 0;
	memset(&ps, 0, sizeof(ps));
	(void)spool_prune(sp, now + 10 * 86400, &rt, 100, &ps);
	t_int_eq((long long)ps.ps_track, 0, "retention 0 keeps everything");
	spool_close(&sp);
}

/* A record whose message is still queued stays past the retention. */
static void
t_prune_queued(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_track",
	    MAP);
	struct spool_txn	*t = t_wtxn(sp);
	struct spool_retention	 rt = { .rt_dlog = 86400 };
	struct spool_prune_stats ps;
	struct spool_track_msg	 km, g;
	struct spool_msg	*m = calloc(1, sizeof(*m));
	int64_t			 now = time(NULL);
	char			 q[QID_SIZE];

	t_msg_fill(&km, 1, 1);
	t_qid_at(q, now - 5 * 86400, 9);
	(void)str_copy(m->sm_qid, sizeof(m->sm_qid), q);
	(void)str_copy(m->sm_login, sizeof(m->sm_login), "acme");
	m->sm_arrival = now - 5 * 86400;
	m->sm_nrcpt = m->sm_npending = 1;
	t_ok(spool_msg_put(t, m) == 0 && spool_track_put(t, q, &km) == 0,
	    "queued, tracked");
	spool_track_msg_free(&km);
	t_int_eq(spool_commit(&t), 0, "commit");
	memset(&ps, 0, sizeof(ps));
	t_int_eq(spool_prune(sp, now, &rt, 100, &ps), 0, "prune");
	t = t_wtxn(sp);
	t_ok(ps.ps_track == 0 && spool_track_get(t, q, &g) == 0,
	    "kept while its message is queued");
	spool_track_msg_free(&g);
	spool_abort(&t);
	free(m);
	spool_close(&sp);
}

/* An environment from before issue 16: "track" dropped (LMDB). */
static void
t_older_database(void)
{
	struct spool *sp = t_spool_fresh(tdir, sizeof(tdir), "t_spool_track",
	    MAP);
	struct spool_txn	*t;
	struct spool_track_msg	 km, g;
	static const char *const dbs[] = { "track", NULL };

	t_spool_old(&sp, tdir, MAP, dbs, NULL);
	t = t_wtxn(sp);
	t_msg_fill(&km, 2, 1);
	t_ok(spool_track_get(t, Q1, &g) == SPOOL_ENOTFOUND &&
		spool_track_put(t, Q1, &km) == 0,
	    "with an empty track database");
	spool_track_msg_free(&km);
	t_int_eq(spool_commit(&t), 0, "commit");
	t_spool_reader_opens(&sp, tdir, MAP);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "token_roundtrip", t_token_roundtrip },
		{ "token_tamper", t_token_tamper },
		{ "token_signer", t_token_signer },
		{ "key_file", t_key_file },
		{ "put_get", t_put_get },
		{ "prune", t_prune },
		{ "prune_queued", t_prune_queued },
		{ "older_database", t_older_database },
	};

	return T_RUN_RMTREE(cases, tdir);
}
