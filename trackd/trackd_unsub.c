/*
 * trackd_unsub: /u/TOKEN (issue 16 item 4). GET shows a small page
 * with one form whose button POSTs back to the same URL; POST (the
 * button, or a mailbox provider's RFC 8058 one-click request with the
 * body List-Unsubscribe=One-Click) puts the recipient on the account's
 * stop list and logs `unsubscribed`, in one LMDB transaction committed
 * before the answer: by the committer (trackd_int.h, struct
 * trackd_unsub_req), so that no other hit waits for that commit.
 * Idempotent: an address already on the stop list gets the same answer
 * and no second event.
 */
#include "config.h"

#include <errno.h>
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
#include "xmem.h"

static const char trackd_page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<meta name=\"robots\" content=\"noindex\">\n"
	"<title>%s</title>\n<style>body{font-family:system-ui,sans-serif;"
	"max-width:34em;margin:3em auto;padding:0 1em;line-height:1.5;color:#111;"
	"background:#fff}button{font-size:1.1em;padding:.6em 1.4em;cursor:pointer}"
	"button:focus{outline:3px solid #1a5fb4;outline-offset:2px}</style>\n"
	"</head>\n<body>\n<main>\n<h1>%s</h1>\n";
static const char trackd_page_tail[] = "</main>\n</body>\n</html>\n";

/* HTML-escaped; the address is client data of a sort (any bytes). */
static void
trackd_html_esc(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '<': (void)buf_puts(b, "&lt;"); break;
		case '>': (void)buf_puts(b, "&gt;"); break;
		case '&': (void)buf_puts(b, "&amp;"); break;
		case '"': (void)buf_puts(b, "&quot;"); break;
		case '\'': (void)buf_puts(b, "&#39;"); break;
		default: (void)buf_putc(b, *s); break;
		}
}

/* "j***@example.com": enough to recognise, not to harvest from a link
 * that was forwarded. */
static void
trackd_masked(struct buf *b, const char *addr)
{
	const char	*at = strrchr(addr, '@');
	char		 first[2] = { addr[0], '\0' };

	trackd_html_esc(b, first);
	(void)buf_puts(b, "***");
	if (at != NULL)
		trackd_html_esc(b, at);
}

static void
trackd_page_confirm(struct trackd_resp *rs, const char *addr)
{
	struct buf	*b = &rs->rs_buf;

	(void)buf_printf(b, trackd_page_head, "Unsubscribe", "Unsubscribe");
	(void)buf_puts(b, "<p>Stop receiving these emails at <strong>");
	trackd_masked(b, addr);
	(void)buf_puts(b, "</strong>?</p>\n<form method=\"post\">\n"
	    "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n"
	    "<button type=\"submit\" id=\"unsubscribe\">Unsubscribe</button>\n"
	    "</form>\n");
	(void)buf_puts(b, trackd_page_tail);
	trackd_page_resp(rs, 200);
}

static void
trackd_page_done(struct trackd_resp *rs, const char *addr)
{
	struct buf	*b = &rs->rs_buf;

	(void)buf_printf(b, trackd_page_head, "Unsubscribed", "You are unsubscribed");
	(void)buf_puts(b, "<p role=\"status\" id=\"done\"><strong>");
	trackd_masked(b, addr);
	(void)buf_puts(b, "</strong> will not receive these emails any more.</p>\n");
	(void)buf_puts(b, trackd_page_tail);
	trackd_page_resp(rs, 200);
}

/* The stop-list entry with its why: unsubscribed from that message. */
static int
trackd_unsub_stop(struct spool_txn *tx, const struct spool_track_msg *km,
    const struct spool_track_ref *ref, const char *addr, int64_t when)
{
	struct spool_stopent se;

	memset(&se, 0, sizeof(se));
	(void)str_copy(se.se_reason, sizeof(se.se_reason), "unsubscribed");
	se.se_when = when;
	(void)str_copy(se.se_qid, sizeof(se.se_qid), ref->tk_qid);
	(void)str_copy(se.se_note, sizeof(se.se_note), "one-click or page");
	return spool_stop_put_why(tx, km->km_login, addr, &se);
}

/*
 * The committer, in its flush's write txn: the stop-list entry and its
 * event for one unsubscribe record (its recipient is checked against the
 * recorded message again: the record may have been pruned since).
 */
int
trackd_unsub_put(struct spool_txn *tx, const struct trackd_hit *h,
    enum trackd_unsub_result *res_r)
{
	struct spool_track_ref ref = { .tk_kind = SPOOL_TRACK_UNSUB,
		.tk_idx = h->h_idx };
	struct spool_track_msg km;
	struct spool_event     ev;
	const char	      *addr;
	int		       rc;

	(void)str_copy(ref.tk_qid, sizeof(ref.tk_qid), h->h_qid);
	if ((rc = trackd_msg(tx, &ref, &km)) == SPOOL_ENOTFOUND) {
		*res_r = TRACKD_U_GONE;
		return 0;
	}
	if (rc != 0)
		return rc;
	addr = km.km_rcpts[ref.tk_idx];
	*res_r = TRACKD_U_ALREADY;
	if (!spool_stop_has(tx, km.km_login, addr)) {
		spool_event_init_track(&ev, &km, ref.tk_qid, ref.tk_idx,
		    SPOOL_EV_UNSUBSCRIBED, h->h_dt);
		ev.ev_user_agent = h->h_ua[0] != '\0' ? h->h_ua : NULL;
		ev.ev_client = h->h_client[0] != '\0' ? h->h_client : NULL;
		if ((rc = trackd_unsub_stop(tx, &km, &ref, addr, h->h_dt)) ==
			0 &&
		    (rc = spool_event_add(tx, &ev, NULL)) == 0)
			*res_r = TRACKD_U_ADDED;
	}
	spool_track_msg_free(&km);
	return rc;
}

bool
trackd_unsub_append(struct trackd *t, const struct trackd_hit *h)
{
	if (t->t_un == NULL) {
		t->t_un = xcalloc(TRACKD_UNSUB_MAX, sizeof(*t->t_un));
		t->t_unres = xcalloc(TRACKD_UNSUB_MAX, sizeof(*t->t_unres));
	}
	if (t->t_nun == TRACKD_UNSUB_MAX)
		return false;
	t->t_un[t->t_nun++] = *h;
	return true;
}

bool
trackd_unsub_poll(struct trackd *t)
{
	struct trackd_hit h[16];
	ssize_t		  n = -1;
	size_t		  i;

	while (t->t_upipe != -1 && t->t_nun < TRACKD_UNSUB_MAX &&
	    (n = read(t->t_upipe, h, sizeof(h))) != 0) {
		if (n == -1) {
			if (errno != EINTR && errno != EAGAIN)
				log_warn("committer: reading unsubscribes");
			if (errno != EINTR)
				break;
			continue;
		}
		if ((size_t)n % sizeof(h[0]) != 0)
			log_panic("committer: a partial unsubscribe record "
				  "(%zd bytes)",
			    n);
		for (i = 0; i < (size_t)n / sizeof(h[0]); i++)
			if (!trackd_unsub_append(t, &h[i])) {
				log_warnx("%s: hit=unsubscribe: %d wait for "
					  "their commit already: 503",
				    h[i].h_qid, TRACKD_UNSUB_MAX);
				trackd_verdict_send(t, h[i].h_tag,
				    TRACKD_U_FAILED);
			}
	}
	if (t->t_upipe != -1 && n == 0)
		t->t_upipe = -1; /* EOF: the backend is done */
	return t->t_nun > 0;
}

void
trackd_verdict_send(struct trackd *t, uint32_t tag,
    enum trackd_unsub_result res)
{
	struct trackd_verdict v = { .v_tag = tag, .v_result = (int32_t)res };

	/* a backend that is gone cannot be answered; its socket is closed */
	if (write(t->t_reply, &v, sizeof(v)) != (ssize_t)sizeof(v))
		log_warn("committer: answering an unsubscribe");
}

static int
trackd_unsub_rcpt(const struct spool_track_msg *km,
    const struct spool_track_ref *ref, void *arg)
{
	(void)str_copy(arg, SPOOL_ADDR_MAX, km->km_rcpts[ref->tk_idx]);
	return 0;
}

/* GET/HEAD, and a POST before its commit: the address (a short read
 * txn; the backend never writes). */
static int
trackd_unsub_addr(struct trackd *t, const struct spool_track_ref *ref,
    char addr_r[SPOOL_ADDR_MAX])
{
	return trackd_msg_read(t, ref, trackd_unsub_rcpt, addr_r);
}

/* POST: what the committer needs and what the answer will need. */
static void
trackd_unsub_defer(struct trackd *t, const struct trackd_req *rq,
    const struct spool_track_ref *ref)
{
	struct trackd_unsub_req *u = &t->t_defer;
	struct trackd_hit	*h = &u->ur_hit;

	memset(h, 0, sizeof(*h));
	(void)str_copy(h->h_qid, sizeof(h->h_qid), ref->tk_qid);
	h->h_idx = ref->tk_idx;
	h->h_kind = SPOOL_TRACK_UNSUB;
	h->h_dt = (int64_t)time(NULL);
	h->h_ms = rq->rq_now_ms;
	if (rq->rq_ua != NULL) /* cut as the opens' and clicks' */
		(void)str_copy(h->h_ua, sizeof(h->h_ua), rq->rq_ua);
	if (spool_client_truncate(rq->rq_client, h->h_client,
		sizeof(h->h_client)) == -1)
		h->h_client[0] = '\0';
	u->ur_ref = *ref;
	(void)str_copy(u->ur_client, sizeof(u->ur_client), rq->rq_client);
}

void
trackd_unsub(struct trackd *t, const struct trackd_req *rq,
    const struct spool_track_ref *ref, struct trackd_resp *rs)
{
	char addr[SPOOL_ADDR_MAX];
	int  rc;

	rc = trackd_unsub_addr(t, ref, addr);
	if (rc == SPOOL_ENOTFOUND) {
		trackd_log(ref->tk_qid, rq, "unsubscribe-unknown", ref, 404,
		    "");
		trackd_status(rs, 404, "Not Found\n");
		return;
	}
	if (rc != 0) {
		log_warnx("%s: hit=unsubscribe: %s", ref->tk_qid,
		    spool_strerror(rc));
		trackd_status(rs, 503, trackd_503);
		return;
	}
	if (rq->rq_method != TRACKD_M_POST) {
		trackd_page_confirm(rs, addr);
		trackd_log(ref->tk_qid, rq, "unsubscribe-page", ref, 200, "");
		return;
	}
	trackd_unsub_defer(t, rq, ref);
	(void)str_copy(t->t_defer.ur_addr, sizeof(t->t_defer.ur_addr), addr);
	rs->rs_status = 0; /* answered by trackd_unsub_answer */
}

void
trackd_unsub_answer(const struct trackd_unsub_req *u,
    enum trackd_unsub_result res, struct trackd_resp *rs)
{
	char		  url[8] = "/u/";
	struct trackd_req rq = { .rq_method = TRACKD_M_POST,
		.rq_url = url,
		.rq_client = u->ur_client };

	memset(rs, 0, sizeof(*rs));
	buf_init(&rs->rs_buf, TRACKD_PAGE_MAX);
	switch (res) {
	case TRACKD_U_ADDED:
	case TRACKD_U_ALREADY:
		trackd_page_done(rs, u->ur_addr);
		trackd_log(u->ur_ref.tk_qid, &rq, "unsubscribe", &u->ur_ref,
		    200,
		    res == TRACKD_U_ALREADY ? ", stoplist=already"
					    : ", stoplist=added");
		return;
	case TRACKD_U_GONE:
		trackd_log(u->ur_ref.tk_qid, &rq, "unsubscribe-unknown",
		    &u->ur_ref, 404, "");
		trackd_status(rs, 404, "Not Found\n");
		return;
	default:
		log_warnx("%s: hit=unsubscribe, rcpt=%u: not committed: 503",
		    u->ur_ref.tk_qid, (unsigned)u->ur_ref.tk_idx);
		trackd_status(rs, 503, trackd_503);
		return;
	}
}
