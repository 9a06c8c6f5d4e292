/*
 * spoold's part of engagement tracking (issue 16): at filing, in the same
 * transaction, the record deliverd rewrites each recipient's copy from and
 * trackd answers from (spool_track.h). The links come from track_html, so
 * they are numbered exactly as deliverd's rewriter numbers them; a message
 * track_html cannot parse gets a record without links (deliverd sends it
 * unmodified but may still add List-Unsubscribe).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "spoold_file.h"
#include "spool_track.h"
#include "track_html.h"
#include "xmem.h"

_Static_assert(TRACK_LINKS_MAX == SPOOL_TRACK_LINKS_MAX, "one bound on links");

/* cluster_node, for a tracking host with "{node}" in it (set at start) */
static char spoold_track_node[SPOOL_DOMAIN_MAX];

/* The message (header block and body) of the queue copy. */
static int
spoold_track_read(int fd, const struct spool_msg *m, struct buf *b)
{
	ssize_t r;
	off_t	off = (off_t)m->sm_body_off;

	if (fd == -1 || m->sm_size < 0 ||
	    buf_reserve(b, (size_t)m->sm_size + 1) == -1)
		return fd == -1 ? EBADF : ENOMEM;
	while (b->len < (size_t)m->sm_size) {
		r = pread(fd, b->data + b->len, (size_t)m->sm_size - b->len,
		    off + (off_t)b->len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0
			    ? EIO
			    : errno; /* spoold_read_fd saw these bytes */
		b->len += (size_t)r;
	}
	b->data[b->len] = '\0';
	return 0;
}

static void
spoold_track_fill(const struct spool_account *a, const struct spool_msg *m,
    struct spool_track_msg *km)
{
	memset(km, 0, sizeof(*km));
	(void)str_copy(km->km_login, sizeof(km->km_login), m->sm_login);
	km->km_issue = m->sm_issue;
	if (m->sm_has_letter_id)
		(void)str_copy(km->km_uniq, sizeof(km->km_uniq),
		    m->sm_letter_id);
	(void)str_copy(km->km_message_id, sizeof(km->km_message_id),
	    m->sm_message_id);
	(void)str_copy(km->km_from, sizeof(km->km_from), m->sm_from);
	km->km_arrival = m->sm_arrival;
	km->km_track = a->ac_track;
	/* "{node}": this node's own name, so hits come back to its trackd */
	if (a->ac_track_host[0] != '\0' &&
	    conf_node_host(a->ac_track_host, spoold_track_node, km->km_host,
		sizeof(km->km_host)) == -1) {
		log_warnx("%s: tracking host %s with cluster_node \"%s\": not "
			  "a host name: sent untracked",
		    m->sm_qid, a->ac_track_host, spoold_track_node);
		km->km_host[0] = '\0';
	}
}

int
spoold_track_record(struct spool_txn *txn, const struct spool_account *a,
    const struct spool_msg *m, int fd, char **rcpts, uint32_t nrcpt)
{
	struct spool_track_msg km;
	struct track_links     tl;
	struct buf	       b;
	int		       rc = 0;

	spoold_track_fill(a, m, &km);
	memset(&tl, 0, sizeof(tl));
	if (a->ac_track & (SPOOL_TRACK_F_CLICKS | SPOOL_TRACK_F_OPENS)) {
		/* the one HTML parse of the message: deliverd applies the plan */
		buf_init(&b, (size_t)m->sm_size + 1);
		if ((rc = spoold_track_read(fd, m, &b)) == 0)
			(void)track_links_extract(b.data, b.len, &tl);
		buf_release(&b);
		if (rc != 0)
			return rc;
		if (tl.tl_skipped > 0)
			log_info(
			    "%s: tracking: %zu HTML part(s) with svg, math, "
			    "template, select or frameset markup left "
			    "untracked",
			    m->sm_qid, tl.tl_skipped);
	}
	if (a->ac_track & SPOOL_TRACK_F_CLICKS) {
		km.km_links = tl.tl_v;
		km.km_nlinks = tl.tl_n;
	}
	km.km_plan = tl.tl_plan;
	km.km_planlen = tl.tl_planlen;
	km.km_rcpts = rcpts;
	km.km_nrcpts = nrcpt;
	rc = spool_track_put(txn, m->sm_qid, &km);
	track_links_free(&tl);
	return rc;
}

void
spoold_track_init(const char *spool_dir, const char *node)
{
	unsigned char key[SPOOL_TRACK_KEYLEN];
	int	      rc;

	(void)str_copy(spoold_track_node, sizeof(spoold_track_node), node);
	track_html_init();
	/* made here, once, in the spool's group: deliverd and trackd read it */
	if ((rc = spool_track_key_load(spool_dir, true, key)) != 0)
		log_warnx("tracking key %s/db/%s: %s: tracked mail goes out "
			  "untracked",
		    spool_dir, SPOOL_TRACK_KEY_FILE, spool_strerror(rc));
	explicit_bzero(key, sizeof(key));
}
