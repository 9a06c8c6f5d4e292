/*
 * trackd_machine: see trackd_machine.h. The LRU is one array of entries
 * (allocated once: the bound), a hash of chains over it and a doubly
 * linked recency list; eviction reuses the tail.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "qid.h"
#include "trackd_machine.h"

/* Rule 1: substrings, compared without case. */
static const char *const trackd_bot_ua[] = {
	"googleimageproxy", "ggpht.com", "yahoomailproxy", "yahoo! slurp",
	"bot", "crawler", "spider", "preview", "scanner", "headlesschrome",
	"phantomjs", "curl/", "wget/", "python-requests", "python-urllib",
	"aiohttp", "go-http-client", "java/", "okhttp", "libwww-perl",
	"apache-httpclient", "node-fetch", "axios/", "barracuda", "mimecast",
	"proofpoint", "forcepoint", "symantec", "trendmicro", "fortiguard",
	"sophos", "ironport", "safelinks", "facebookexternalhit",
};

static bool
trackd_icontains(const char *s, const char *needle)
{
	size_t	n = strlen(needle);

	for (; *s != '\0'; s++)
		if (str_iprefix(s, needle))
			return true;
	return n == 0;
}

bool
trackd_machine_ua(const char *ua)
{
	size_t	i;

	if (ua == NULL || ua[0] == '\0')
		return true;
	/* Apple Mail Privacy Protection fetches with exactly this */
	if (strcmp(ua, "Mozilla/5.0") == 0)
		return true;
	for (i = 0; i < sizeof(trackd_bot_ua) / sizeof(trackd_bot_ua[0]); i++)
		if (trackd_icontains(ua, trackd_bot_ua[i]))
			return true;
	return false;
}

bool
trackd_machine_early(int64_t now, int64_t delivered)
{
	return delivered > 0 && now >= delivered && now - delivered < TRACKD_EARLY_S;
}

struct trackd_seen_ent {
	char		 se_qid[QID_SIZE];
	uint32_t	 se_idx;
	uint16_t	 se_link;	/* the last click's link */
	int64_t		 se_last;	/* the last click, ms */
	int64_t		 se_scan_until;	/* rule 3 holds until, ms */
	size_t		 se_next;	/* hash chain */
	size_t		 se_prev_lru, se_next_lru;
	bool		 se_used;
};

#define SEEN_NIL	((size_t)-1)

struct trackd_seen {
	struct trackd_seen_ent	*s_ent;
	size_t			*s_bucket;
	size_t			 s_nbucket;
	size_t			 s_max, s_used;
	size_t			 s_head, s_tail;	/* most, least recent */
};

struct trackd_seen *
trackd_seen_new(size_t max)
{
	struct trackd_seen	*s;
	size_t			 i;

	if (max == 0 || (s = calloc(1, sizeof(*s))) == NULL) {
		errno = max == 0 ? EINVAL : ENOMEM;
		return NULL;
	}
	s->s_max = max;
	s->s_nbucket = max * 2;
	s->s_ent = calloc(max, sizeof(*s->s_ent));
	s->s_bucket = calloc(s->s_nbucket, sizeof(*s->s_bucket));
	if (s->s_ent == NULL || s->s_bucket == NULL) {
		trackd_seen_free(&s);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < s->s_nbucket; i++)
		s->s_bucket[i] = SEEN_NIL;
	s->s_head = s->s_tail = SEEN_NIL;
	return s;
}

void
trackd_seen_free(struct trackd_seen **sp)
{
	if (*sp == NULL)
		return;
	free((*sp)->s_ent);
	free((*sp)->s_bucket);
	free(*sp);
	*sp = NULL;
}

size_t
trackd_seen_count(const struct trackd_seen *s)
{
	return s->s_used;
}

static size_t
trackd_seen_hash(const struct trackd_seen *s, const char *qid, uint32_t idx)
{
	uint64_t	h = 1469598103934665603ULL;

	for (; *qid != '\0'; qid++)
		h = (h ^ (unsigned char)*qid) * 1099511628211ULL;
	h = (h ^ idx) * 1099511628211ULL;
	return (size_t)(h % s->s_nbucket);
}

static void
trackd_lru_unlink(struct trackd_seen *s, size_t i)
{
	struct trackd_seen_ent	*e = &s->s_ent[i];

	if (e->se_prev_lru != SEEN_NIL)
		s->s_ent[e->se_prev_lru].se_next_lru = e->se_next_lru;
	else
		s->s_head = e->se_next_lru;
	if (e->se_next_lru != SEEN_NIL)
		s->s_ent[e->se_next_lru].se_prev_lru = e->se_prev_lru;
	else
		s->s_tail = e->se_prev_lru;
}

static void
trackd_lru_front(struct trackd_seen *s, size_t i)
{
	struct trackd_seen_ent	*e = &s->s_ent[i];

	e->se_prev_lru = SEEN_NIL;
	e->se_next_lru = s->s_head;
	if (s->s_head != SEEN_NIL)
		s->s_ent[s->s_head].se_prev_lru = i;
	s->s_head = i;
	if (s->s_tail == SEEN_NIL)
		s->s_tail = i;
}

/* Takes entry i out of its hash chain. */
static void
trackd_chain_unlink(struct trackd_seen *s, size_t i)
{
	size_t	*pp = &s->s_bucket[trackd_seen_hash(s, s->s_ent[i].se_qid,
		    s->s_ent[i].se_idx)];

	while (*pp != i)
		pp = &s->s_ent[*pp].se_next;
	*pp = s->s_ent[i].se_next;
}

/* A free slot: the next unused one, else the least recently used. */
static size_t
trackd_seen_slot(struct trackd_seen *s)
{
	size_t	i;

	if (s->s_used < s->s_max)
		return s->s_used++;
	i = s->s_tail;
	trackd_lru_unlink(s, i);
	trackd_chain_unlink(s, i);
	return i;
}

static struct trackd_seen_ent *
trackd_seen_get(struct trackd_seen *s, const char *qid, uint32_t idx, bool *fresh_r)
{
	size_t	h = trackd_seen_hash(s, qid, idx), i;

	for (i = s->s_bucket[h]; i != SEEN_NIL; i = s->s_ent[i].se_next)
		if (s->s_ent[i].se_idx == idx && strcmp(s->s_ent[i].se_qid, qid) == 0) {
			trackd_lru_unlink(s, i);
			trackd_lru_front(s, i);
			*fresh_r = false;
			return &s->s_ent[i];
		}
	i = trackd_seen_slot(s);
	memset(&s->s_ent[i], 0, sizeof(s->s_ent[i]));
	(void)str_copy(s->s_ent[i].se_qid, sizeof(s->s_ent[i].se_qid), qid);
	s->s_ent[i].se_idx = idx;
	s->s_ent[i].se_used = true;
	s->s_ent[i].se_next = s->s_bucket[h];
	s->s_bucket[h] = i;
	trackd_lru_front(s, i);
	*fresh_r = true;
	return &s->s_ent[i];
}

bool
trackd_seen_click(struct trackd_seen *s, const char *qid, uint32_t idx,
    uint16_t link, int64_t now_ms)
{
	struct trackd_seen_ent	*e;
	bool			 fresh, machine;

	e = trackd_seen_get(s, qid, idx, &fresh);
	machine = !fresh && now_ms < e->se_scan_until;
	if (!fresh && link != e->se_link && now_ms - e->se_last < TRACKD_BURST_MS) {
		machine = true;
		e->se_scan_until = now_ms + TRACKD_SCAN_HOLD_MS;
	}
	e->se_link = link;
	e->se_last = now_ms;
	return machine;
}

static int
trackd_click_cmp(const void *a, const void *b)
{
	const struct trackd_click	*x = a, *y = b;
	int				 c = strcmp(x->tc_qid, y->tc_qid);

	if (c != 0)
		return c;
	if (x->tc_idx != y->tc_idx)
		return x->tc_idx < y->tc_idx ? -1 : 1;
	return x->tc_ms < y->tc_ms ? -1 : x->tc_ms > y->tc_ms;
}

static bool
trackd_click_same(const struct trackd_click *a, const struct trackd_click *b)
{
	return a->tc_idx == b->tc_idx && strcmp(a->tc_qid, b->tc_qid) == 0;
}

void
trackd_machine_bursts(struct trackd_click *v, size_t n)
{
	size_t	i, j;

	if (n < 2)
		return;
	qsort(v, n, sizeof(*v), trackd_click_cmp);
	/* within one recipient, time order: compare each with the later ones
	 * inside the window (a burst is short, so the inner loop is too) */
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n && trackd_click_same(&v[i], &v[j]) &&
		    v[j].tc_ms - v[i].tc_ms < TRACKD_BURST_MS; j++)
			if (v[j].tc_link != v[i].tc_link)
				*v[i].tc_machine = *v[j].tc_machine = true;
}
