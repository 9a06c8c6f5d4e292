/*
 * deliverd_dest: the scheduler's per-destination decisions on a scheduler
 * with no children (workers are table entries): connections, pipelining
 * only behind the same destination, the rate's token bucket, the back-off
 * states and their end, the state file, and the table's bound.
 */
#include "config.h"

#include "spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "deliverd.h"
#include "deliverd_dest.h"
#include "deliverd_dest_int.h"
#include "deliverd_sched.h"
#include "fsx.h"
#include "tap.h"
#include "xmem.h"

#define NW	8

static char	 dir[] = "/tmp/t_deliverd_dest.XXXXXX";

static struct sched *
t_sched(const char *shaping)
{
	struct sched	*s = xcalloc(1, sizeof(*s));
	char		 err[256], path[256];
	FILE		*f;
	size_t		 i;

	s->cf = conf_defaults(err, sizeof(err));
	free(s->cf->cf_spool_dir);
	s->cf->cf_spool_dir = xstrdup(dir);
	if (shaping != NULL) {
		(void)snprintf(path, sizeof(path), "%s/shaping", dir);
		f = fopen(path, "w");
		(void)fputs(shaping, f);
		(void)fclose(f);
		free(s->cf->cf_shaping_file);
		s->cf->cf_shaping_file = xstrdup(path);
	}
	(void)snprintf(path, sizeof(path), "%s/shaping.state", dir);
	(void)unlink(path);
	TAILQ_INIT(&s->queue);
	s->nw = NW;
	s->claims_max = SCHED_CLAIMS_BASE + SCHED_CLAIMS_PER_WORKER * NW;
	s->w = xcalloc(NW, sizeof(*s->w));
	for (i = 0; i < NW; i++) {
		s->w[i].pid = 100 + (pid_t)i;
		s->w[i].to_fd = 1;
	}
	deliverd_dest_init(s);
	return s;
}

static void
t_sched_free(struct sched *s)
{
	size_t	 i, k;

	for (i = 0; i < s->nw; i++)
		for (k = 0; k < s->w[i].njobs; k++)
			free(s->w[i].jobs[k]);
	deliverd_dest_free(s);
	conf_free(&s->cf);
	free(s->w);
	free(s);
}

static struct deliverd_sched_job *
t_job(const char *hop)
{
	struct deliverd_sched_job	*sj = xcalloc(1, sizeof(*sj));

	(void)str_copy(sj->j.dj_hop, sizeof(sj->j.dj_hop), hop);
	sj->j.dj_nidx = 1;
	return sj;
}

/* Dispatches one job for hop as deliverd_sched_dispatch would; the
 * worker's index, or -1 when the destination says no. */
static int
t_dispatch(struct sched *s, const char *hop)
{
	struct deliverd_sched_job	*sj = t_job(hop);
	struct deliverd_sched_worker	*w = deliverd_dest_pick_worker(s, sj);

	if (w == NULL) {
		free(sj);
		return -1;
	}
	w->jobs[w->njobs++] = sj;
	deliverd_dest_dispatched(s, (size_t)(w - s->w), sj);
	return (int)(w - s->w);
}

/* The worker's oldest job ends with this reply for its one recipient. */
static void
t_done(struct sched *s, int wi, const char *reply)
{
	struct deliverd_sched_worker	*w = &s->w[wi];
	struct deliverd_result		 r;

	memset(&r, 0, sizeof(r));
	(void)str_copy(r.dr_reply, sizeof(r.dr_reply), reply);
	(void)str_copy(r.dr_relay, sizeof(r.dr_relay), "mx.example[192.0.2.1]:25");
	deliverd_dest_result(s, (size_t)wi, w->jobs[0], &r);
	deliverd_dest_job_done(s, (size_t)wi, w->jobs[0]);
	free(w->jobs[0]);
	memmove(&w->jobs[0], &w->jobs[1], (w->njobs - 1) * sizeof(w->jobs[0]));
	w->njobs--;
}

static void
t_dest_connections(void)
{
	struct sched	*s = t_sched(NULL);
	bool		 used[NW] = { false };
	int		 i, wi, n = 0, distinct = 0;

	/* 8 workers: a destination gets 4 connections; each of those
	 * workers may queue a second job of it, then nothing more */
	for (i = 0; i < 12; i++) {
		if ((wi = t_dispatch(s, "slow.example")) == -1)
			break;
		n++;
		if (!used[wi])
			distinct++;
		used[wi] = true;
	}
	t_int_eq(distinct, 4, "4 workers for one destination");
	t_int_eq(n, 8, "4 connections x 2 jobs, then no");
	/* another destination gets the other workers, never behind them */
	for (i = 0; i < 4; i++) {
		wi = t_dispatch(s, "other.example");
		t_ok(wi >= 0 && !used[wi], "other.example on a free worker (%d)", wi);
	}
	t_int_eq(t_dispatch(s, "third.example"), -1, "no free worker, none behind another");
	t_sched_free(s);
}

static void
t_dest_backoff(void)
{
	struct sched		*s = t_sched("[default]\nsuspend_after = 3\n");
	struct deliverd_dest	*e;
	char			 path[256], *data = NULL;
	size_t			 len;
	int			 wi, i;

	wi = t_dispatch(s, "busy.example");
	t_done(s, wi, "421 4.7.0 Too many connections, slow down");
	e = deliverd_dest_of(s, "busy.example");
	t_int_eq(e->state, DEST_SLOWED, "421: slowed");
	t_int_eq(deliverd_dest_conns(e), 1, "slowed: one connection");
	deliverd_dest_tick(s);
	(void)snprintf(path, sizeof(path), "%s/shaping.state", dir);
	t_int_eq(fsx_read_file(path, 1 << 20, &data, &len), 0, "state file written");
	t_ok(data != NULL && strstr(data, "busy.example\tslowed\t") != NULL, "slowed in it");
	free(data);
	/* slowed: 60/m, and the first job took this second's token */
	t_int_eq(t_dispatch(s, "busy.example"), -1, "the slowed rate");
	e->tokens = 1;		/* a second later */
	/* one connection while slowed, no second job behind it */
	t_ok(t_dispatch(s, "busy.example") >= 0, "one job while slowed");
	e->tokens = 1;
	t_int_eq(t_dispatch(s, "busy.example"), -1, "not a second");
	for (i = 0; i < 3; i++) {
		wi = t_dispatch(s, "dead.example");
		t_done(s, wi, "451 4.4.1 mx[192.0.2.9]:25: connect: Connection refused");
	}
	e = deliverd_dest_of(s, "dead.example");
	t_int_eq(e->state, DEST_SUSPENDED, "3 connection failures: suspended");
	t_int_eq(t_dispatch(s, "dead.example"), -1, "nothing while suspended");
	/* the suspension ends (its time moved into the past) */
	e->until = deliverd_now() - 1;
	s->dests->next_check = e->until;
	deliverd_dest_tick(s);
	t_int_eq(e->state, DEST_NORMAL, "normal again");
	t_ok(t_dispatch(s, "dead.example") >= 0, "a probe job");
	t_sched_free(s);
}

static void
t_dest_rate(void)
{
	struct sched	*s = t_sched("[r.example]\nrate = 2/s\n");
	int		 n = 0;

	deliverd_dest_claimed(s, "r.example", 8);	/* waiting recipients */
	while (n < 8 && t_dispatch(s, "r.example") >= 0)
		n++;
	t_int_eq(n, 2, "2/s: a burst of two, then wait");
	t_ok(deliverd_dest_wait_ms(s) <= 501, "the next token within 0.5 s");
	t_sched_free(s);
}

static void
t_dest_bound(void)
{
	struct sched	*s = t_sched(NULL);
	char		 name[64];
	size_t		 i;

	for (i = 0; i < DEST_MAX + 500; i++) {
		(void)snprintf(name, sizeof(name), "d%zu.example", i);
		deliverd_dest_claimed(s, name, 1);
		deliverd_dest_released(s, name, 1);
		s->dests->d[s->dests->n - 1].last_ms -= 2 * DEST_IDLE_HOLD_MS;
	}
	t_ok(s->dests->n <= DEST_MAX, "at most DEST_MAX destinations (%zu)", s->dests->n);
	t_sched_free(s);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "connections", t_dest_connections },
		{ "back-off", t_dest_backoff },
		{ "rate", t_dest_rate },
		{ "bound", t_dest_bound },
	};
	char	 path[256];
	int	 rc;

	if (mkdtemp(dir) == NULL)
		return 99;
	rc = T_RUN(cases);
	(void)snprintf(path, sizeof(path), "%s/shaping", dir);
	(void)unlink(path);
	(void)snprintf(path, sizeof(path), "%s/shaping.state", dir);
	(void)unlink(path);
	(void)rmdir(dir);
	return rc;
}
