/*
 * Engagement tracking in the delivery worker (issue 16): each recipient
 * of a tracked message gets a copy of its own, made before DKIM signing
 * from what spoold recorded at filing (spool_track.h): links through
 * https://HOST/c/TOKEN and an open pixel (common/track_html), and, when
 * the account asked for unsubscribe tracking and the message has no
 * List-Unsubscribe of its own, the RFC 8058 one-click headers on top.
 * A message track_html cannot parse goes out as it is (one log line per
 * job). The settings are the record's (the account's at filing time).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "deliverd_track.h"
#include "log.h"
#include "spool.h"
#include "spool_track.h"
#include "track_html.h"
#include "xmem.h"

struct deliverd_track {
	struct spool_track_msg dt_km;
	char		       dt_qid[QID_SIZE];
	uint32_t	       dt_idx; /* the recipient being made */
	bool dt_own_lu;		       /* the message has a List-Unsubscribe */
	bool dt_logged;		       /* "cannot parse" said for this job */
};

/* The tracking key, loaded once per worker (retried until it loads),
 * kept only in a keyed HMAC context reused for every token. */
static struct spool_track_signer *deliverd_track_signer;

void
deliverd_track_init(void)
{
	track_html_init();
}

void
deliverd_track_preload(const char *spool_dir)
{
	unsigned char key[SPOOL_TRACK_KEYLEN];

	if (deliverd_track_signer != NULL ||
	    spool_track_key_load(spool_dir, false, key) != 0)
		return; /* absent yet: deliverd_track_key_ok says it later */
	deliverd_track_signer = spool_track_signer_new(key);
	explicit_bzero(key, sizeof(key));
}

static bool
deliverd_track_key_ok(const char *spool_dir, const char *qid)
{
	unsigned char key[SPOOL_TRACK_KEYLEN];
	int	      rc;

	if (deliverd_track_signer != NULL)
		return true;
	if ((rc = spool_track_key_load(spool_dir, false, key)) != 0) {
		log_warnx("%s: tracking key %s/db/%s: %s: sent untracked", qid,
		    spool_dir, SPOOL_TRACK_KEY_FILE, spool_strerror(rc));
		return false;
	}
	deliverd_track_signer = spool_track_signer_new(key);
	explicit_bzero(key, sizeof(key));
	if (deliverd_track_signer == NULL) {
		log_warnx("%s: tracking key: no HMAC context: sent untracked",
		    qid);
		return false;
	}
	return true;
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
deliverd_track_load(struct spool_txn *txn, const char *spool_dir,
    const struct spool_msg *m, const char *msg, size_t len)
{
	struct deliverd_track *dt;
	int		       rc;

	if (m->sm_sandbox)
		return NULL; /* never leaves the host */
	dt = xcalloc(1, sizeof(*dt));
	if ((rc = spool_track_get(txn, m->sm_qid, &dt->dt_km)) != 0 ||
	    dt->dt_km.km_track == 0 || dt->dt_km.km_host[0] == '\0' ||
	    !deliverd_track_key_ok(spool_dir, m->sm_qid)) {
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

static int
deliverd_track_token(void *arg, int kind, unsigned link, char *out,
    size_t outsz)
{
	struct deliverd_track *dt = arg;
	struct spool_track_ref r;

	memset(&r, 0, sizeof(r));
	r.tk_kind = (enum spool_track_kind)kind;
	(void)str_copy(r.tk_qid, sizeof(r.tk_qid), dt->dt_qid);
	r.tk_idx = dt->dt_idx;
	r.tk_link = (uint16_t)link;
	if (link > UINT16_MAX)
		return -1;
	return spool_track_token_with(deliverd_track_signer, &r, out, outsz);
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

	dt->dt_idx = idx;
	buf_reset(out);
	memset(&o, 0, sizeof(o));
	o.to_host = dt->dt_km.km_host;
	o.to_opens = (f & SPOOL_TRACK_F_OPENS) != 0;
	o.to_clicks = (f & SPOOL_TRACK_F_CLICKS) != 0 &&
	    dt->dt_km.km_nlinks > 0;
	o.to_links = dt->dt_km.km_nlinks; /* trackd knows no other */
	o.to_token = deliverd_track_token;
	o.to_arg = dt;
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
