/*
 * Handing jobs to workers (within each destination's limits, see
 * deliverd_dest.h, at most SCHED_DEPTH per worker counting outcomes not
 * yet committed) and reading
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
#include "deliverd_mtasts.h"
#include "deliverd_dest.h"
#include "deliverd_sched.h"
#include "log.h"
#include "spool.h"
#include "xmem.h"

/* ---- handing out jobs */

void
deliverd_sched_dispatch(struct sched *s)
{
	struct deliverd_sched_job    *sj, *next;
	struct deliverd_sched_worker *w;
	struct buf		      line;

	if (s->retry.pending)
		return; /* nothing new until the outcomes are recorded */
	buf_init(&line, DELIVERD_LINE_MAX);
	for (sj = TAILQ_FIRST(&s->queue); sj != NULL && !s->stopping;
	     sj = next) {
		next = TAILQ_NEXT(sj, link);
		if (!deliverd_dest_room(s))
			break;
		if (deliverd_sched_poison_hold(s, sj)) {
			TAILQ_REMOVE(&s->queue, sj, link);
			s->nqueue--;
			continue;
		}
		/* the destination decides: its connections, rate and state */
		if ((w = deliverd_dest_pick_worker(s, sj)) == NULL)
			continue;
		buf_reset(&line);
		(void)deliverd_job_format(&sj->j, &line);
		if (w->njobs == 0) /* named before the worker can die on it */
			deliverd_sched_poison_work(s, w, sj->j.dj_qid);
		if (deliverd_pipe_write(w->to_fd, line.data, line.len) == -1) {
			log_warn("write to worker %ld", (long)w->pid);
			(void)close(w->to_fd);
			w->to_fd = -1;
			deliverd_sched_poison_work(s, w, NULL);
			continue;
		}
		TAILQ_REMOVE(&s->queue, sj, link);
		s->nqueue--;
		w->jobs[w->njobs++] = sj;
		(void)str_copy(w->last_hop, sizeof(w->last_hop), sj->j.dj_hop);
		deliverd_dest_dispatched(s, (size_t)(w - s->w), sj);
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
	struct sched		     *s;
	struct deliverd_sched_worker *w;
};

static void
deliverd_sched_line(const char *line, size_t len, void *arg)
{
	struct deliverd_sched_line_ctx *c = arg;
	struct sched		       *s = c->s;
	struct deliverd_result		r;
	struct buf			sig;
	char				qid[QID_SIZE];

	if (len > 0 && line[0] == 'D') {
		if (c->w->njobs == 0) {
			log_warnx("worker %ld: unexpected D line",
			    (long)c->w->pid);
			return;
		}
		if (s->ndone == s->capdone) {
			s->capdone = s->capdone ? s->capdone * 2 : 64;
			s->done = xreallocarray(s->done, s->capdone,
			    sizeof(*s->done));
		}
		deliverd_dest_job_done(s, (size_t)(c->w - s->w), c->w->jobs[0]);
		deliverd_sched_poison_done(c->w->jobs[0]->j.dj_qid);
		s->done[s->ndone++] = c->w->jobs[0];
		memmove(&c->w->jobs[0], &c->w->jobs[1],
		    (c->w->njobs - 1) * sizeof(c->w->jobs[0]));
		c->w->njobs--;
		deliverd_sched_poison_work(s, c->w, NULL);
		c->w->nuncommitted++;
	} else if (len > 0 && line[0] == 'K') {
		buf_init(&sig, SPOOL_DKIMSIG_MAX * 2);
		if (deliverd_sig_parse(line, len, qid, &sig) == 0) {
			if (s->nsigs == s->capsigs) {
				s->capsigs = s->capsigs ? s->capsigs * 2 : 32;
				s->sigs = xreallocarray(s->sigs, s->capsigs,
				    sizeof(*s->sigs));
			}
			(void)str_copy(s->sigs[s->nsigs].qid, QID_SIZE, qid);
			s->sigs[s->nsigs++].sig = xstrdup(
			    sig.data ? sig.data : "");
		}
		buf_release(&sig);
	} else if (len > 0 && line[0] == 'P') {
		/* a fetched MTA-STS policy for the shared cache (issue 17) */
		(void)deliverd_mtasts_store_line(s->sp, line, len);
	} else if (deliverd_result_parse(line, len, &r) == 0) {
		if (c->w->njobs > 0)
			deliverd_dest_result(s, (size_t)(c->w - s->w),
			    c->w->jobs[0], &r);
		deliverd_sched_add_result(s, &r);
	} else
		log_warnx("worker %ld: bad result line", (long)c->w->pid);
}

void
deliverd_sched_read_worker(struct sched *s, struct deliverd_sched_worker *w)
{
	struct deliverd_sched_line_ctx c = { s, w };

	if (deliverd_pipe_read(w->from_fd, &w->in, deliverd_sched_line, &c) ==
	    -1) {
		/* EOF: the worker exited; its results so far are in the batch */
		(void)close(w->from_fd);
		w->from_fd = -1;
	}
}
