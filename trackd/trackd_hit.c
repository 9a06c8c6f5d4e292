/*
 * trackd_hit: what a request means (see trackd.h). Routes:
 *   GET  /o/TOKEN  1x1 GIF, no-cache; an `opened` event (group commit)
 *   GET  /c/TOKEN  302 to link N recorded for the message; `clicked`
 *   GET  /u/TOKEN  the confirmation page (a form POSTing to itself)
 *   POST /u/TOKEN  stop list + `unsubscribed`, committed before the answer
 * HEAD answers as GET and records nothing (scanners probe with it). A
 * token that does not verify, or whose kind is not the path's, or whose
 * message is no longer recorded: 404 and one log line. A known path with
 * another method: 405. Anything else: 404.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "spool.h"
#include "spool_track.h"
#include "trackd.h"
#include "trackd_int.h"
#include "trackd_machine.h"
#include "xmem.h"

/* The 1x1 transparent GIF. */
static const unsigned char trackd_gif[] = {
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
	0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b
};
static const char trackd_404[] = "Not Found\n";
static const char trackd_405[] = "Method Not Allowed\n";
const char trackd_503[] = "Service Unavailable: try again\n";

struct trackd *
trackd_new(struct spool *sp, const unsigned char *key, const char *event_log)
{
	struct trackd	*t = xcalloc(1, sizeof(*t));

	t->t_sp = sp;
	memcpy(t->t_key, key, SPOOL_TRACK_KEYLEN);
	if (pthread_mutex_init(&t->t_db, NULL) != 0 ||
	    pthread_mutex_init(&t->t_q, NULL) != 0)
		log_fatalx("pthread_mutex_init");
	t->t_pend = xcalloc(TRACKD_PENDING_MAX, sizeof(*t->t_pend));
	t->t_fl = xcalloc(TRACKD_PENDING_MAX, sizeof(*t->t_fl));
	if ((t->t_seen = trackd_seen_new(TRACKD_SEEN_MAX)) == NULL)
		log_fatal("trackd_seen_new");
	t->t_event_log = xstrdup(event_log);
	/* events a killed trackd committed but did not append yet */
	t->t_export = true;
	t->t_pipe = -1;
	t->t_reply = -1;
	t->t_upipe = -1;
	return t;
}

void
trackd_free(struct trackd **tp)
{
	struct trackd	*t = *tp;

	if (t == NULL)
		return;
	explicit_bzero(t->t_key, sizeof(t->t_key));
	(void)pthread_mutex_destroy(&t->t_db);
	(void)pthread_mutex_destroy(&t->t_q);
	free(t->t_pend);
	free(t->t_fl);
	free(t->t_un);
	free(t->t_unres);
	free(t->t_event_log);
	trackd_seen_free(&t->t_seen);
	free(t);
	*tp = NULL;
}

void
trackd_resp_release(struct trackd_resp *rs)
{
	buf_release(&rs->rs_buf);
}

void
trackd_status(struct trackd_resp *rs, int status, const char *text)
{
	rs->rs_status = status;
	rs->rs_type = "text/plain; charset=utf-8";
	rs->rs_body = text;
	rs->rs_len = strlen(text);
}

void
trackd_page_resp(struct trackd_resp *rs, int status)
{
	rs->rs_status = status;
	rs->rs_type = "text/html; charset=utf-8";
	rs->rs_body = rs->rs_buf.data;
	rs->rs_len = rs->rs_buf.len;
	rs->rs_nocache = true;
}

/* One line per hit (STYLE G2): "QID: " or "NOQUEUE: ", then key=value. */
void
trackd_log(const char *qid, const struct trackd_req *rq, const char *what,
    const struct spool_track_ref *ref, int status, const char *extra)
{
	char	 path[96], client[SPOOL_CLIENT_MAX];

	if (spool_client_truncate(rq->rq_client, client, sizeof(client)) == -1)
		(void)str_copy(client, sizeof(client), "unknown");
	if (qid == NULL) {
		log_info("NOQUEUE: hit=%s, path=%s, client=%s, status=%d", what,
		    log_vis(path, sizeof(path), rq->rq_url, strlen(rq->rq_url)), client,
		    status);
		return;
	}
	log_info("%s: hit=%s, rcpt=%u, link=%u, client=%s, status=%d%s", qid, what,
	    (unsigned)ref->tk_idx, (unsigned)ref->tk_link, client, status, extra);
}

static void
trackd_not_found(const struct trackd_req *rq, struct trackd_resp *rs, const char *why)
{
	trackd_log(NULL, rq, why, NULL, 404, "");
	trackd_status(rs, 404, trackd_404);
}

/*
 * Hands an open or click to the committer (trackd_commit.c) through its
 * pipe: one write(2) of a whole record (smaller than PIPE_BUF, so never
 * interleaved), non-blocking. A full pipe (the commits cannot keep up)
 * means the hit is answered but not recorded: memory stays bounded and
 * no request waits for the disk.
 */
static bool
trackd_queue(struct trackd *t, const struct trackd_req *rq,
    const struct spool_track_ref *ref, bool *machine)
{
	struct trackd_hit	h;

	memset(&h, 0, sizeof(h));
	(void)pthread_mutex_lock(&t->t_q);
	if (ref->tk_kind == SPOOL_TRACK_CLICK &&
	    trackd_seen_click(t->t_seen, ref->tk_qid, ref->tk_idx, ref->tk_link,
	    rq->rq_now_ms))
		*machine = true;
	(void)pthread_mutex_unlock(&t->t_q);
	(void)str_copy(h.h_qid, sizeof(h.h_qid), ref->tk_qid);
	h.h_idx = ref->tk_idx;
	h.h_link = ref->tk_link;
	h.h_kind = (char)ref->tk_kind;
	h.h_machine = *machine;
	h.h_dt = (int64_t)time(NULL);
	h.h_ms = rq->rq_now_ms;
	if (rq->rq_ua != NULL)
		(void)str_copy(h.h_ua, sizeof(h.h_ua), rq->rq_ua);
	if (spool_client_truncate(rq->rq_client, h.h_client, sizeof(h.h_client)) == -1)
		h.h_client[0] = '\0';
	return trackd_hit_send(t, &h) == 0;
}

int
trackd_hit_send(struct trackd *t, const struct trackd_hit *h)
{
	int fd = h->h_kind == SPOOL_TRACK_UNSUB && t->t_upipe != -1 ? t->t_upipe
								    : t->t_pipe;

	_Static_assert(sizeof(*h) <= PIPE_BUF, "a hit is one atomic pipe write");
	return write(fd, h, sizeof(*h)) == (ssize_t)sizeof(*h) ? 0 : -1;
}

void
trackd_set_pipe(struct trackd *t, int fd)
{
	t->t_pipe = fd;
}

void
trackd_set_unsub_pipe(struct trackd *t, int fd)
{
	t->t_upipe = fd;
}

bool
trackd_hit_append(struct trackd *t, const struct trackd_hit *h)
{
	bool	ok;

	(void)pthread_mutex_lock(&t->t_q);
	if ((ok = t->t_npend < TRACKD_PENDING_MAX))
		t->t_pend[t->t_npend++] = *h;
	(void)pthread_mutex_unlock(&t->t_q);
	return ok;
}

/* The recorded message (t_db held by the caller's txn). */
int
trackd_msg(struct spool_txn *tx, const struct spool_track_ref *ref,
    struct spool_track_msg *km)
{
	int	rc;

	memset(km, 0, sizeof(*km));
	if ((rc = spool_track_get(tx, ref->tk_qid, km)) != 0)
		return rc;
	if (ref->tk_idx >= km->km_nrcpts ||
	    (ref->tk_kind == SPOOL_TRACK_CLICK && ref->tk_link >= km->km_nlinks)) {
		spool_track_msg_free(km);
		return SPOOL_ENOTFOUND;
	}
	return 0;
}

/* An http(s) URL with nothing that could split a header: the rewriter
 * records only those, but a redirect target is checked where it is used. */
static bool
trackd_url_ok(const char *u)
{
	if (!str_iprefix(u, "http://") && !str_iprefix(u, "https://"))
		return false;
	for (; *u != '\0'; u++)
		if ((unsigned char)*u <= 0x20 || *u == 0x7f)
			return false;
	return true;
}

int
trackd_msg_read(struct trackd *t, const struct spool_track_ref *ref,
    int (*fn)(const struct spool_track_msg *, const struct spool_track_ref *,
    void *), void *arg)
{
	struct spool_track_msg	 km;
	struct spool_txn	*tx;
	int			 rc;

	(void)pthread_mutex_lock(&t->t_db);
	if ((rc = spool_begin(t->t_sp, false, &tx)) == 0) {
		if ((rc = trackd_msg(tx, ref, &km)) == 0) {
			rc = fn(&km, ref, arg);
			spool_track_msg_free(&km);
		}
		spool_abort(&tx);
	}
	(void)pthread_mutex_unlock(&t->t_db);
	return rc;
}

/* The Location value lives in rs_buf (up to TRACKD_PAGE_MAX). */
static int
trackd_click_link(const struct spool_track_msg *km,
    const struct spool_track_ref *ref, void *arg)
{
	struct trackd_resp	*rs = arg;
	int			 rc = 0;

	if (!trackd_url_ok(km->km_links[ref->tk_link]) ||
	    buf_puts(&rs->rs_buf, km->km_links[ref->tk_link]) == -1)
		rc = SPOOL_ENOTFOUND;
	rs->rs_location = rs->rs_buf.data;
	return rc;
}

/* GET /c/: the link, read under t_db (a short read txn). */
static void
trackd_click(struct trackd *t, const struct trackd_req *rq,
    const struct spool_track_ref *ref, struct trackd_resp *rs)
{
	int	rc;

	rc = trackd_msg_read(t, ref, trackd_click_link, rs);
	if (rc == SPOOL_ENOTFOUND) {
		trackd_log(ref->tk_qid, rq, "click-unknown", ref, 404, "");
		trackd_status(rs, 404, trackd_404);
		return;
	}
	if (rc != 0) {
		log_warnx("%s: hit=click: %s", ref->tk_qid, spool_strerror(rc));
		trackd_status(rs, 503, trackd_503);
		return;
	}
	rs->rs_status = 302;
	rs->rs_type = "text/plain; charset=utf-8";
	rs->rs_body = "";
	rs->rs_nocache = true;
}

/* GET/HEAD /o/ and /c/. */
static void
trackd_open_click(struct trackd *t, const struct trackd_req *rq,
    const struct spool_track_ref *ref, struct trackd_resp *rs)
{
	bool		 machine = trackd_machine_ua(rq->rq_ua);
	const char	*what = ref->tk_kind == SPOOL_TRACK_OPEN ? "open" : "click";

	if (ref->tk_kind == SPOOL_TRACK_CLICK) {
		trackd_click(t, rq, ref, rs);
		if (rs->rs_status != 302)
			return;
	} else {
		rs->rs_status = 200;
		rs->rs_type = "image/gif";
		rs->rs_body = trackd_gif;
		rs->rs_len = sizeof(trackd_gif);
		rs->rs_nocache = true;
	}
	if (rq->rq_method == TRACKD_M_HEAD) {
		trackd_log(ref->tk_qid, rq, what, ref, rs->rs_status, ", recorded=no (HEAD)");
		return;
	}
	if (!trackd_queue(t, rq, ref, &machine)) {
		trackd_log(ref->tk_qid, rq, what, ref, rs->rs_status,
		    ", recorded=no (the committer is behind)");
		return;
	}
	trackd_log(ref->tk_qid, rq, what, ref, rs->rs_status, machine ? ", machine=yes" : "");
}

static bool
trackd_known_path(const char *url, char *kind_r, const char **tok_r)
{
	if (url[0] != '/' || url[1] == '\0' || url[2] != '/' ||
	    strchr("ocu", url[1]) == NULL)
		return false;
	*kind_r = url[1];
	*tok_r = url + 3;
	return true;
}

void
trackd_handle(struct trackd *t, const struct trackd_req *rq, struct trackd_resp *rs)
{
	struct spool_track_ref	 ref;
	const char		*tok;
	char			 kind;

	memset(rs, 0, sizeof(*rs));
	buf_init(&rs->rs_buf, TRACKD_PAGE_MAX);
	if (strlen(rq->rq_url) > TRACKD_URL_MAX || !trackd_known_path(rq->rq_url, &kind, &tok)) {
		trackd_not_found(rq, rs, "unknown");
		return;
	}
	if (rq->rq_method == TRACKD_M_OTHER ||
	    (rq->rq_method == TRACKD_M_POST && kind != SPOOL_TRACK_UNSUB)) {
		trackd_log(NULL, rq, "bad-method", NULL, 405, "");
		trackd_status(rs, 405, trackd_405);
		rs->rs_allow = kind == SPOOL_TRACK_UNSUB ? "GET, HEAD, POST" : "GET, HEAD";
		return;
	}
	if (spool_track_parse(t->t_key, tok, strlen(tok), &ref) != 0 ||
	    (char)ref.tk_kind != kind) {
		trackd_not_found(rq, rs, "bad-token");
		return;
	}
	if (kind == SPOOL_TRACK_UNSUB)
		trackd_unsub(t, rq, &ref, rs);
	else
		trackd_open_click(t, rq, &ref, rs);
}
