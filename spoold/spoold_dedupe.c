/*
 * spoold_dedupe: idempotent submission (see spoold_dedupe.h).
 */
#include "config.h"

#include <string.h>

#include "conf.h"
#include "spool.h"
#include "spoold_dedupe.h"

static bool
spoold_dedupe_on(const struct conf *cf, const struct spool_msg *m)
{
	return cf->cf_dedupe_window > 0 && m->sm_has_letter_id &&
	    m->sm_letter_id[0] != '\0';
}

int
spoold_dedupe_find(struct spool_txn *t, const struct conf *cf,
    const struct spool_msg *m, int64_t now, char orig_r[QID_SIZE],
    struct buf *log)
{
	int64_t filed;
	int	rc;

	if (!spoold_dedupe_on(cf, m))
		return SPOOL_ENOTFOUND;
	rc = spool_dedupe_get(t, m->sm_login, m->sm_letter_id, &filed, orig_r);
	if (rc == SPOOL_ETOOBIG || rc == SPOOL_ECORRUPT) {
		/* not looked up: delivered, as without the index */
		(void)buf_printf(log,
		    "%s: X-Letter-Id not checked for duplicates: %s\n",
		    m->sm_qid, spool_strerror(rc));
		return SPOOL_ENOTFOUND;
	}
	if (rc != 0)
		return rc;
	/* older than the window (not yet pruned), or the message itself */
	if (filed < now - (int64_t)cf->cf_dedupe_window ||
	    strcmp(orig_r, m->sm_qid) == 0)
		return SPOOL_ENOTFOUND;
	return 0;
}

int
spoold_dedupe_note(struct spool_txn *t, const struct conf *cf,
    const struct spool_msg *m, int64_t now)
{
	int rc;

	if (!spoold_dedupe_on(cf, m))
		return 0;
	rc = spool_dedupe_put(t, m->sm_login, m->sm_letter_id, m->sm_qid, now);
	/* login and id too long for one key: find said so, the message goes */
	return rc == SPOOL_ETOOBIG ? 0 : rc;
}

int
spoold_dedupe_file(struct spool_txn *t, const struct spool_msg *m,
    const char *orig, const char *to, int64_t now, struct buf *log)
{
	struct spool_event ev;
	char		   text[128];
	int		   rc;

	if ((rc = spool_done_put(t, m->sm_qid, now)) != 0)
		return rc;
	(void)str_printf(text, sizeof(text),
	    "duplicate X-Letter-Id: first queued as %s", orig);
	spool_event_init(&ev, m, to, now);
	ev.ev_type = SPOOL_EV_DUPLICATE;
	ev.ev_msg = text;
	ev.ev_original_qid = orig;
	if ((rc = spool_event_add(t, &ev, NULL)) != 0)
		return rc;
	(void)buf_printf(log,
	    "%s: duplicate of %s, account=%s, letter_id=%s, nrcpt=%u, "
	    "status=duplicate (not delivered again)\n",
	    m->sm_qid, orig, m->sm_login, m->sm_letter_id, m->sm_nrcpt);
	return 0;
}
