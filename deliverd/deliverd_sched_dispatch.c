/*
 * Handing jobs to workers (at most dest_concurrency per next hop, at most
 * SCHED_DEPTH per worker counting outcomes not yet committed) and reading
 * their results into the batch that deliverd_sched_commit records. While
 * a commit is pending nothing is handed out: the batch is then bounded by
 * what was in flight.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_sched.h"
#include "log.h"
#include "spool.h"
#include "xmem.h"

/* ---- handing out jobs */

static size_t
deliverd_sched_hop_busy(const struct sched *s, const char *hop)
{
	size_t	 i, k, n = 0;

	for (i = 0; i < s->nw; i++)
		for (k = 0; k < s->w[i].njobs; k++)
			n += strcmp(s->w[i].jobs[k]->j.dj_hop, hop) == 0;
	return n;
}

static struct deliverd_sched_worker *
deliverd_sched_idle_worker(struct sched *s, const char *hop)
{
	struct deliverd_sched_worker	*any = NULL;
	size_t			 i;

	/* the least loaded worker; among equals one that may still hold a
	 * connection to this hop */
	for (i = 0; i < s->nw; i++) {
		/* a job whose outcome is not committed yet still counts: a
		 * kill -9 repeats at most SCHED_DEPTH transactions per worker */
		if (s->w[i].pid == -1 || s->w[i].to_fd == -1 ||
		    s->w[i].njobs + s->w[i].nuncommitted >= SCHED_DEPTH)
			continue;
		if (any == NULL || s->w[i].njobs < any->njobs ||
		    (s->w[i].njobs == any->njobs && strcmp(s->w[i].last_hop, hop) == 0))
			any = &s->w[i];
	}
	return any;
}

void
deliverd_sched_dispatch(struct sched *s)
{
	struct deliverd_sched_job	*sj, *next;
	struct deliverd_sched_worker	*w;
	struct buf		 line;

	if (s->retry.pending)
		return;		/* nothing new until the outcomes are recorded */
	buf_init(&line, DELIVERD_LINE_MAX);
	for (sj = TAILQ_FIRST(&s->queue); sj != NULL && !s->stopping; sj = next) {
		next = TAILQ_NEXT(sj, link);
		if (deliverd_sched_hop_busy(s, sj->j.dj_hop) >= (size_t)s->cf->cf_dest_concurrency)
			continue;
		if ((w = deliverd_sched_idle_worker(s, sj->j.dj_hop)) == NULL)
			break;
		buf_reset(&line);
		(void)deliverd_job_format(&sj->j, &line);
		if (deliverd_pipe_write(w->to_fd, line.data, line.len) == -1) {
			log_warn("write to worker %ld", (long)w->pid);
			(void)close(w->to_fd);
			w->to_fd = -1;
			continue;
		}
		TAILQ_REMOVE(&s->queue, sj, link);
		s->nqueue--;
		w->jobs[w->njobs++] = sj;
		(void)str_copy(w->last_hop, sizeof(w->last_hop), sj->j.dj_hop);
	}
	buf_release(&line);
}

/* ---- results from workers */

static void
deliverd_sched_add_result(struct sched *s, const struct deliverd_result *r)
{
	if (s->nres == s->capres) {
		s->capres = s->capres ? s->capres * 2 : 256;
		s->res = xreallocarray(s->res, s->capres, sizeof(*s->res));
	}
	s->res[s->nres++] = *r;
}

struct deliverd_sched_line_ctx {
	struct sched		*s;
	struct deliverd_sched_worker	*w;
};

static void
deliverd_sched_line(const char *line, size_t len, void *arg)
{
	struct deliverd_sched_line_ctx	*c = arg;
	struct sched		*s = c->s;
	struct deliverd_result	 r;
	struct buf		 sig;
	char			 qid[QID_SIZE];

	if (len > 0 && line[0] == 'D') {
		if (c->w->njobs == 0) {
			log_warnx("worker %ld: unexpected D line", (long)c->w->pid);
			return;
		}
		if (s->ndone == s->capdone) {
			s->capdone = s->capdone ? s->capdone * 2 : 64;
			s->done = xreallocarray(s->done, s->capdone, sizeof(*s->done));
		}
		s->done[s->ndone++] = c->w->jobs[0];
		memmove(&c->w->jobs[0], &c->w->jobs[1],
		    (c->w->njobs - 1) * sizeof(c->w->jobs[0]));
		c->w->njobs--;
		c->w->nuncommitted++;
	} else if (len > 0 && line[0] == 'K') {
		buf_init(&sig, SPOOL_DKIMSIG_MAX * 2);
		if (deliverd_sig_parse(line, len, qid, &sig) == 0) {
			if (s->nsigs == s->capsigs) {
				s->capsigs = s->capsigs ? s->capsigs * 2 : 32;
				s->sigs = xreallocarray(s->sigs, s->capsigs, sizeof(*s->sigs));
			}
			(void)str_copy(s->sigs[s->nsigs].qid, QID_SIZE, qid);
			s->sigs[s->nsigs++].sig = xstrdup(sig.data ? sig.data : "");
		}
		buf_release(&sig);
	} else if (deliverd_result_parse(line, len, &r) == 0)
		deliverd_sched_add_result(s, &r);
	else
		log_warnx("worker %ld: bad result line", (long)c->w->pid);
}

void
deliverd_sched_read_worker(struct sched *s, struct deliverd_sched_worker *w)
{
	struct deliverd_sched_line_ctx	 c = { s, w };

	if (deliverd_pipe_read(w->from_fd, &w->in, deliverd_sched_line, &c) == -1) {
		/* EOF: the worker exited; its results so far are in the batch */
		(void)close(w->from_fd);
		w->from_fd = -1;
	}
}
