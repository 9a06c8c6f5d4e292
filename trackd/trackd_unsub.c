/*
 * trackd_unsub: /u/TOKEN (issue 16 item 4). GET shows a small page
 * with one form whose button POSTs back to the same URL; POST (the
 * button, or a mailbox provider's RFC 8058 one-click request with the
 * body List-Unsubscribe=One-Click) puts the recipient on the account's
 * stop list and logs `unsubscribed`, in one LMDB transaction committed
 * before the answer. Idempotent: an address already on the stop list
 * gets the same answer and no second event.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "spool.h"
#include "spool_track.h"
#include "trackd.h"
#include "trackd_int.h"

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
    const struct spool_track_ref *ref, const char *addr)
{
	struct spool_stopent	se;

	memset(&se, 0, sizeof(se));
	(void)str_copy(se.se_reason, sizeof(se.se_reason), "unsubscribed");
	se.se_when = (int64_t)time(NULL);
	(void)str_copy(se.se_qid, sizeof(se.se_qid), ref->tk_qid);
	(void)str_copy(se.se_note, sizeof(se.se_note), "one-click or page");
	return spool_stop_put_why(tx, km->km_login, addr, &se);
}

/* The stop-list entry and its event in one write txn (t_db held). */
static int
trackd_unsub_txn(struct trackd *t, const struct trackd_req *rq,
    const struct spool_track_ref *ref, char addr_r[SPOOL_ADDR_MAX], bool *already_r)
{
	struct spool_track_msg	 km;
	struct spool_event	 ev;
	struct spool_txn	*tx;
	char			 client[SPOOL_CLIENT_MAX], ua[TRACKD_UA_MAX];
	int			 rc;

	if ((rc = spool_begin(t->t_sp, true, &tx)) != 0)
		return rc;
	if ((rc = trackd_msg(tx, ref, &km)) != 0) {
		spool_abort(&tx);
		return rc;
	}
	(void)str_copy(addr_r, SPOOL_ADDR_MAX, km.km_rcpts[ref->tk_idx]);
	*already_r = spool_stop_has(tx, km.km_login, addr_r);
	if (!*already_r) {
		spool_event_init_track(&ev, &km, ref->tk_qid, ref->tk_idx,
		    SPOOL_EV_UNSUBSCRIBED, (int64_t)time(NULL));
		if (rq->rq_ua != NULL) {	/* cut as the opens' and clicks' */
			(void)str_copy(ua, sizeof(ua), rq->rq_ua);
			ev.ev_user_agent = ua;
		}
		if (spool_client_truncate(rq->rq_client, client, sizeof(client)) == 0)
			ev.ev_client = client;
		if ((rc = trackd_unsub_stop(tx, &km, ref, addr_r)) == 0)
			rc = spool_event_add(tx, &ev, NULL);
	}
	spool_track_msg_free(&km);
	if (rc != 0 || *already_r) {
		spool_abort(&tx);
		return rc;
	}
	return spool_commit(&tx);
}

static int
trackd_unsub_commit(struct trackd *t, const struct trackd_req *rq,
    const struct spool_track_ref *ref, char addr_r[SPOOL_ADDR_MAX], bool *already_r)
{
	struct spool_map	m;
	int			rc;

	(void)pthread_mutex_lock(&t->t_db);
	rc = trackd_unsub_txn(t, rq, ref, addr_r, already_r);
	if (rc == SPOOL_EFULL && spool_map_grown(t->t_sp, &m)) {
		log_info("lmdb map grown: from=%lld, to=%lld, max=%lld",
		    (long long)m.mp_grew_from, (long long)m.mp_size, (long long)m.mp_max);
		rc = trackd_unsub_txn(t, rq, ref, addr_r, already_r);
	}
	(void)pthread_mutex_unlock(&t->t_db);
	if (rc == 0 && !*already_r) {
		struct trackd_hit	x = { .h_kind = TRACKD_HIT_EXPORT };

		/* event_log soon; the event is durable in LMDB already, and a
		 * committer that misses this exports at its next commit or start */
		(void)trackd_hit_send(t, &x);
	}
	return rc;
}

static int
trackd_unsub_rcpt(const struct spool_track_msg *km,
    const struct spool_track_ref *ref, void *arg)
{
	(void)str_copy(arg, SPOOL_ADDR_MAX, km->km_rcpts[ref->tk_idx]);
	return 0;
}

/* GET/HEAD: the page needs the address (a short read txn). */
static int
trackd_unsub_addr(struct trackd *t, const struct spool_track_ref *ref,
    char addr_r[SPOOL_ADDR_MAX])
{
	return trackd_msg_read(t, ref, trackd_unsub_rcpt, addr_r);
}

void
trackd_unsub(struct trackd *t, const struct trackd_req *rq,
    const struct spool_track_ref *ref, struct trackd_resp *rs)
{
	char	 addr[SPOOL_ADDR_MAX];
	bool	 post = rq->rq_method == TRACKD_M_POST, already = false;
	int	 rc;

	rc = post ? trackd_unsub_commit(t, rq, ref, addr, &already) :
	    trackd_unsub_addr(t, ref, addr);
	if (rc == SPOOL_ENOTFOUND) {
		trackd_log(ref->tk_qid, rq, "unsubscribe-unknown", ref, 404, "");
		trackd_status(rs, 404, "Not Found\n");
		return;
	}
	if (rc != 0) {
		log_warnx("%s: hit=unsubscribe: %s", ref->tk_qid, spool_strerror(rc));
		trackd_status(rs, 503, trackd_503);
		return;
	}
	if (!post) {
		trackd_page_confirm(rs, addr);
		trackd_log(ref->tk_qid, rq, "unsubscribe-page", ref, 200, "");
		return;
	}
	trackd_page_done(rs, addr);
	trackd_log(ref->tk_qid, rq, "unsubscribe", ref, 200,
	    already ? ", stoplist=already" : ", stoplist=added");
}
