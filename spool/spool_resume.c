/*
 * Resuming (spool.h, issue 15 item 7): when a pause goes, the pending
 * recipients it held become due at once, so that mail flows now rather
 * than at the next due time the pause pushed on (up to an hour). Used by
 * spoolctl resume, and by clusterd when another node's resume reaches
 * this node's copy of the pauses (issue 19).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spool.h"
#include "xmem.h"

#define SPOOL_RESUME_BATCH 1000 /* messages per write transaction */

struct spool_resume {
	const char *domain;
	const char *login; /* "" or NULL: every account */
	char (*qids)[QID_SIZE];
	size_t		  n, cap;
	int64_t		  now;
	size_t		  nrcpt;
	struct spool_txn *txn;
};

static int
spool_resume_msg_cb(const struct spool_msg *sm, void *arg)
{
	struct spool_resume *cr = arg;

	if (sm->sm_held || sm->sm_npending == 0 ||
	    (cr->login != NULL && cr->login[0] != '\0' &&
		strcmp(sm->sm_login, cr->login) != 0))
		return 0;
	if (cr->n == cr->cap) {
		cr->cap = cr->cap ? cr->cap * 2 : 1024;
		cr->qids = xreallocarray(cr->qids, cr->cap, sizeof(*cr->qids));
	}
	memcpy(cr->qids[cr->n++], sm->sm_qid, QID_SIZE);
	return 0;
}

static int
spool_resume_rcpt_cb(const struct spool_rcpt *r, void *arg)
{
	struct spool_resume *cr = arg;
	struct spool_rcpt    due;
	const char	    *at = strrchr(r->sr_addr, '@');
	int		     rc;

	if ((r->sr_state != SPOOL_RS_QUEUED &&
		r->sr_state != SPOOL_RS_DEFERRED) ||
	    at == NULL || strcasecmp(at + 1, cr->domain) != 0 ||
	    r->sr_next <= cr->now)
		return 0;
	due = *r;
	due.sr_next = cr->now;
	if ((rc = spool_rcpt_put(cr->txn, &due)) != 0)
		return rc;
	cr->nrcpt++;
	return 0;
}

/* The messages first (one read transaction), then their recipients,
 * SPOOL_RESUME_BATCH messages per write transaction. */
static int
spool_resume_walk(struct spool *sp, struct spool_resume *cr)
{
	size_t i;
	int    rc;

	if ((rc = spool_begin(sp, false, &cr->txn)) != 0)
		return rc;
	rc = spool_msg_iter(cr->txn, spool_resume_msg_cb, cr);
	spool_abort(&cr->txn);
	for (i = 0; rc == 0 && i < cr->n; i++) {
		if (cr->txn == NULL &&
		    (rc = spool_begin(sp, true, &cr->txn)) != 0)
			break;
		rc = spool_rcpt_iter(cr->txn, cr->qids[i], spool_resume_rcpt_cb,
		    cr);
		if (rc == SPOOL_ENOTFOUND) /* delivered meanwhile */
			rc = 0;
		if (rc == 0 && i % SPOOL_RESUME_BATCH == SPOOL_RESUME_BATCH - 1)
			rc = spool_commit(&cr->txn);
	}
	if (rc == 0 && cr->txn != NULL)
		rc = spool_commit(&cr->txn);
	spool_abort(&cr->txn);
	return rc;
}

int
spool_pause_release(struct spool *sp, const char *domain, const char *login,
    int64_t now, size_t *nrcpt_r)
{
	struct spool_resume cr;
	int		    rc;

	memset(&cr, 0, sizeof(cr));
	cr.domain = domain;
	cr.login = login;
	cr.now = now;
	rc = spool_resume_walk(sp, &cr);
	free(cr.qids);
	*nrcpt_r = cr.nrcpt;
	return rc;
}

int
spool_pause_key_parse(const void *key, size_t klen, char *domain, size_t dsz,
    char *login, size_t lsz)
{
	const char *k = key, *nul;
	size_t	    dl, ll;

	if (klen < 2 || (nul = memchr(k, '\0', klen)) == NULL)
		return SPOOL_ECORRUPT;
	dl = (size_t)(nul - k);
	if (klen < dl + 2)
		return SPOOL_ECORRUPT;
	ll = klen - dl - 2; /* "domain\0login\0" */
	if (dl == 0 || dl >= dsz || ll >= lsz || k[klen - 1] != '\0' ||
	    memchr(nul + 1, '\0', ll) != NULL)
		return SPOOL_ECORRUPT;
	memcpy(domain, k, dl + 1);
	memcpy(login, nul + 1, ll + 1);
	return 0;
}
