/*
 * Engagement tracking in the delivery worker (issue 16): each recipient
 * of a tracked message gets a copy of its own, made before DKIM signing
 * from what spoold recorded at filing (spool_track.h): links through
 * https://HOST/c/TOKEN and an open pixel (common/track_html), and, when
 * the account asked for unsubscribe tracking and the message has no
 * List-Unsubscribe of its own, the RFC 8058 one-click headers on top.
 * A message track_html cannot parse goes out as it is (one log line per
 * job). The settings are the record's (the account's at filing time).
 *
 * The tokens come from deliverd's key process (deliverd_key.c,
 * DKEY_Q_TOKENS), one request per recipient's copy: the worker, which
 * talks to hostile MX servers, never holds db/track.key (with it, a
 * worker taken over could make unsubscribes, opens and clicks for every
 * recipient of every account until the key changed). A copy whose tokens
 * do not come (the key process gone, slow or refusing) is not sent at
 * all: deferred, neither untracked nor with a token missing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "deliverd.h"
#include "deliverd_track.h"
#include "dkey_proto.h"
#include "log.h"
#include "spool.h"
#include "spool_track.h"
#include "track_html.h"
#include "xmem.h"

struct deliverd_track {
	struct spool_track_msg dt_km;
	char		       dt_qid[QID_SIZE];
	bool dt_own_lu; /* the message has a List-Unsubscribe */
	bool dt_logged; /* "cannot parse" said for this job */
	/* the current copy's tokens (dkey_proto.h's order): */
	uint8_t	 dt_tok[DKEY_OUT_MAX];
	uint8_t	 dt_what;  /* DKEY_TOK_* asked for */
	unsigned dt_links; /* click tokens */
};

void
deliverd_track_init(void)
{
	track_html_init();
}

/* A List-Unsubscribe field in the header block (not -Post). */
static bool
deliverd_track_has_lu(const char *msg, size_t len)
{
	static const char name[] = "list-unsubscribe";
	const size_t	  nl = sizeof(name) - 1;
	size_t		  at = 0, k;

	while (at < len && msg[at] != '\r' && msg[at] != '\n') {
		if (len - at > nl && strncasecmp(msg + at, name, nl) == 0) {
			for (k = at + nl;
			     k < len && (msg[k] == ' ' || msg[k] == '\t'); k++)
				;
			if (k < len && msg[k] == ':')
				return true;
		}
		while (at < len && msg[at] != '\n')
			at++;
		at++;
	}
	return false;
}

struct deliverd_track *
deliverd_track_load(struct spool_txn *txn, const struct spool_msg *m,
    const char *msg, size_t len)
{
	struct deliverd_track *dt;
	int		       rc;

	if (m->sm_sandbox)
		return NULL; /* never leaves the host */
	dt = xcalloc(1, sizeof(*dt));
	if ((rc = spool_track_get(txn, m->sm_qid, &dt->dt_km)) != 0 ||
	    dt->dt_km.km_track == 0 || dt->dt_km.km_host[0] == '\0') {
		if (rc != 0 && rc != SPOOL_ENOTFOUND)
			log_warnx("%s: tracking record: %s: sent untracked",
			    m->sm_qid, spool_strerror(rc));
		deliverd_track_free(&dt);
		return NULL;
	}
	(void)str_copy(dt->dt_qid, sizeof(dt->dt_qid), m->sm_qid);
	dt->dt_own_lu = deliverd_track_has_lu(msg, len);
	return dt;
}

void
deliverd_track_free(struct deliverd_track **dtp)
{
	if (*dtp == NULL)
		return;
	spool_track_msg_free(&(*dtp)->dt_km);
	free(*dtp);
	*dtp = NULL;
}

/* track_html's token callback: the copy's token from the batch. */
static int
deliverd_track_token(void *arg, int kind, unsigned link, char *out,
    size_t outsz)
{
	struct deliverd_track *dt = arg;
	bool		       open = (dt->dt_what & DKEY_TOK_OPEN) != 0;
	bool		       unsub = (dt->dt_what & DKEY_TOK_UNSUB) != 0;
	size_t		       at;

	if (kind == SPOOL_TRACK_OPEN && open && link == 0)
		at = 0;
	else if (kind == SPOOL_TRACK_UNSUB && unsub && link == 0)
		at = open;
	else if (kind == SPOOL_TRACK_CLICK && link < dt->dt_links)
		at = (size_t)open + unsub + link;
	else
		return -1; /* not asked for: a bug, the copy is not made */
	if (outsz <= SPOOL_TRACK_TOKEN_LEN)
		return -1;
	memcpy(out, dt->dt_tok + at * SPOOL_TRACK_TOKEN_LEN,
	    SPOOL_TRACK_TOKEN_LEN);
	out[SPOOL_TRACK_TOKEN_LEN] = '\0';
	return 0;
}

/* The copy's tokens from the key process, one request. */
static int
deliverd_track_tokens(struct deliverd_track *dt, uint32_t idx)
{
	size_t len = 0;

	if (dt->dt_links > DKEY_LINKS_MAX)
		return -1; /* spool_track_get bounds it */
	return deliverd_key_tokens(dt->dt_qid, idx, dt->dt_what, dt->dt_links,
	    dt->dt_tok, sizeof(dt->dt_tok), &len);
}

static int
deliverd_track_unsub(struct deliverd_track *dt, struct buf *out)
{
	char tok[SPOOL_TRACK_TOKEN_MAX];

	if (deliverd_track_token(dt, SPOOL_TRACK_UNSUB, 0, tok, sizeof(tok)) ==
	    -1)
		return -1;
	return buf_printf(out,
	    "List-Unsubscribe: <https://%s/u/%s>\r\n"
	    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
	    dt->dt_km.km_host, tok);
}

int
deliverd_track_copy(struct deliverd_track *dt, uint32_t idx, const char *msg,
    size_t len, struct buf *out)
{
	struct track_opts o;
	unsigned	  f = dt->dt_km.km_track;
	int		  rc = 0;

	buf_reset(out);
	memset(&o, 0, sizeof(o));
	o.to_host = dt->dt_km.km_host;
	o.to_opens = (f & SPOOL_TRACK_F_OPENS) != 0;
	o.to_clicks = (f & SPOOL_TRACK_F_CLICKS) != 0 &&
	    dt->dt_km.km_nlinks > 0;
	o.to_links = dt->dt_km.km_nlinks; /* trackd knows no other */
	o.to_token = deliverd_track_token;
	o.to_arg = dt;
	dt->dt_what = (uint8_t)((o.to_opens ? DKEY_TOK_OPEN : 0) |
	    ((f & SPOOL_TRACK_F_UNSUB) && !dt->dt_own_lu ? DKEY_TOK_UNSUB : 0));
	dt->dt_links = o.to_clicks ? (unsigned)dt->dt_km.km_nlinks : 0;
	if (dt->dt_what == 0 && dt->dt_links == 0)
		return -1; /* nothing to track in this message */
	if (deliverd_track_tokens(dt, idx) == -1)
		return DELIVERD_TRACK_DEFER;
	if ((f & SPOOL_TRACK_F_UNSUB) && !dt->dt_own_lu &&
	    deliverd_track_unsub(dt, out) == -1)
		goto fail;
	if ((o.to_opens || o.to_clicks) &&
	    (rc = dt->dt_km.km_plan != NULL
		    ? track_plan_apply(msg, len, dt->dt_km.km_plan,
			  dt->dt_km.km_planlen, &o, out)
		    : track_rewrite(msg, len, &o, out)) == -1) {
		if (!dt->dt_logged)
			log_info("%s: tracking: the message's MIME cannot be "
				 "parsed or "
				 "re-encoded: sent unmodified",
			    dt->dt_qid);
		dt->dt_logged = true;
		buf_reset(out);
		return -1;
	}
	if (rc == 0 && out->len == 0)
		return -1; /* nothing to change */
	if (rc == 0 && buf_append(out, msg, len) == -1)
		goto fail;
	return 0;
fail:
	log_warnx("%s: tracking: out of memory: sent unmodified", dt->dt_qid);
	buf_reset(out);
	return -1;
}
