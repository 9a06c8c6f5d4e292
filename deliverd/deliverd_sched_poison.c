/*
 * A message that kills the delivery worker sending it (an abort or
 * SIGSEGV in a library: DKIM signing, the tracking rewrite, TLS), or the
 * whole deliverd (the OOM killer, a crash that takes the scheduler), used
 * to be handed out again for ever: a crash loop that never deferred or
 * bounced it. The scheduler counts, per queue id, the deaths of a worker
 * while that message was the one it was working on (the oldest job in
 * flight; the jobs queued behind it were not started and are only
 * released), and of deliverd itself while a worker was working on it. At
 * SCHED_POISON_DEATHS its recipients still without an outcome get a
 * deferral of our own, committed like a worker's result: they wait for
 * the retry schedule and bounce at max_queue_lifetime, with one log line
 * and a deferred event. Deferred rather than held: a hold needs an
 * operator before the sender ever hears of it; a deferral tells the
 * account (event) and ends in a bounce by itself. After the deferral the
 * count stays one short, so a later retry that kills again is deferred at
 * once (one death per retry). A worker's outcome for the message
 * (delivered, bounced or deferred by the next hop) clears its count.
 *
 * The counts survive a restart: they live in db/deliverd.poison, a file
 * of fixed-size records mapped shared, so a change is a store to memory
 * that outlives the process (not a power loss: nothing is fsynced). It
 * also names, per worker, the message that worker is working on: at
 * start each message named there counts one death of deliverd.
 *
 *	header	"deliverd-poison 1\n", padded to SCHED_PREC_SIZE
 *	counts	SCHED_POISON_SLOTS records: QID NUL-padded, deaths (1 byte)
 *	work	one record per worker: the QID of its oldest job, or empty
 *
 * Bound: SCHED_POISON_SLOTS counts (the fewest deaths replaced when
 * full) and deliverd_workers work records: at most 24 KB.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_sched.h"
#include "log.h"
#include "qid.h"
#include "xmem.h"

#define SCHED_POISON_SLOTS 256
#define SCHED_PREC_SIZE	   32	    /* one record, and the header */
#define SCHED_PREC_DEATHS  QID_SIZE /* offset of the deaths byte */
#define SCHED_PREC_MAGIC   "deliverd-poison 1\n"
#define SCHED_PREC_FILE	   "deliverd.poison" /* in db/ */
#define SCHED_PREC_MAX \
	(SCHED_PREC_SIZE * (1 + SCHED_POISON_SLOTS + SCHED_PREC_WORKERS_MAX))
#define SCHED_PREC_WORKERS_MAX 512 /* deliverd_workers' maximum */

_Static_assert(QID_SIZE + 1 <= SCHED_PREC_SIZE, "a record holds a QID");
_Static_assert(sizeof(SCHED_PREC_MAGIC) <= SCHED_PREC_SIZE, "header");

static struct {
	unsigned char *map; /* header, counts, work */
	size_t	       len, nw;
	size_t	       ncounted; /* count records in use */
} deliverd_prec;

static unsigned char *
deliverd_prec_count_rec(size_t i)
{
	return deliverd_prec.map + SCHED_PREC_SIZE * (1 + i);
}

static unsigned char *
deliverd_prec_work_rec(size_t i)
{
	return deliverd_prec_count_rec(SCHED_POISON_SLOTS + i);
}

/* A record's QID, or NULL when it holds none (or garbage). */
static const char *
deliverd_prec_qid(const unsigned char *rec)
{
	const char *q = (const char *)rec;

	return memchr(q, '\0', QID_SIZE) != NULL && qid_ok(q) ? q : NULL;
}

static void
deliverd_prec_set(unsigned char *rec, const char *qid, unsigned deaths)
{
	memset(rec, 0, SCHED_PREC_SIZE);
	if (qid != NULL)
		(void)str_copy((char *)rec, QID_SIZE, qid);
	rec[SCHED_PREC_DEATHS] = (unsigned char)(deaths > 255 ? 255 : deaths);
}

/* qid's count record, or -1. */
static ssize_t
deliverd_prec_find(const char *qid)
{
	const char *q;
	size_t	    i;

	if (deliverd_prec.ncounted == 0)
		return -1; /* the usual case: no lookup at all */
	for (i = 0; i < SCHED_POISON_SLOTS; i++)
		if ((q = deliverd_prec_qid(deliverd_prec_count_rec(i))) !=
			NULL &&
		    strcmp(q, qid) == 0)
			return (ssize_t)i;
	return -1;
}

/* The deaths so far of qid, one more counted. */
static unsigned
deliverd_sched_poison_count(const char *qid)
{
	unsigned char *rec;
	ssize_t	       f;
	size_t	       i, low = 0;

	if ((f = deliverd_prec_find(qid)) >= 0) {
		rec = deliverd_prec_count_rec((size_t)f);
		deliverd_prec_set(rec, qid, rec[SCHED_PREC_DEATHS] + 1u);
		return rec[SCHED_PREC_DEATHS];
	}
	for (i = 0; i < SCHED_POISON_SLOTS; i++) {
		rec = deliverd_prec_count_rec(i);
		if (deliverd_prec_qid(rec) == NULL)
			break;
		if (rec[SCHED_PREC_DEATHS] <
		    deliverd_prec_count_rec(low)[SCHED_PREC_DEATHS])
			low = i;
	}
	if (i == SCHED_POISON_SLOTS)
		i = low; /* full: the fewest deaths make room */
	else
		deliverd_prec.ncounted++;
	deliverd_prec_set(deliverd_prec_count_rec(i), qid, 1);
	return 1;
}

/* After a deferral of our own: one more death defers it again. */
static void
deliverd_prec_rearm(const char *qid)
{
	ssize_t f;

	if ((f = deliverd_prec_find(qid)) >= 0)
		deliverd_prec_count_rec(
		    (size_t)f)[SCHED_PREC_DEATHS] = SCHED_POISON_DEATHS - 1;
}

void
deliverd_sched_poison_done(const char *qid)
{
	ssize_t f;

	if ((f = deliverd_prec_find(qid)) >= 0) {
		deliverd_prec_set(deliverd_prec_count_rec((size_t)f), NULL, 0);
		deliverd_prec.ncounted--;
	}
}

void
deliverd_sched_poison_work(const struct sched *s,
    const struct deliverd_sched_worker *w, const char *qid)
{
	size_t i = (size_t)(w - s->w);

	if (i < deliverd_prec.nw)
		deliverd_prec_set(deliverd_prec_work_rec(i),
		    qid != NULL	   ? qid
			: w->njobs ? w->jobs[0]->j.dj_qid
				   : NULL,
		    0);
}

static bool
deliverd_sched_has_result(const struct sched *s, const char *qid, uint32_t idx)
{
	size_t i;

	for (i = 0; i < s->nres; i++)
		if (s->res[i].dr_idx == idx &&
		    strcmp(s->res[i].dr_qid, qid) == 0)
			return true;
	return false;
}

/* sj's recipients without an outcome get reply; sj joins the batch's done
 * jobs (its claims go once the batch is committed). */
static void
deliverd_sched_poison_defer(struct sched *s, struct deliverd_sched_job *sj,
    const char *reply)
{
	struct deliverd_result r;
	size_t		       i;

	for (i = 0; i < sj->j.dj_nidx; i++) {
		if (deliverd_sched_has_result(s, sj->j.dj_qid, sj->j.dj_idx[i]))
			continue; /* sent before the death: that outcome stands */
		memset(&r, 0, sizeof(r));
		(void)str_copy(r.dr_qid, sizeof(r.dr_qid), sj->j.dj_qid);
		r.dr_idx = sj->j.dj_idx[i];
		(void)str_copy(r.dr_reply, sizeof(r.dr_reply), reply);
		if (s->nres == s->capres) {
			s->capres = s->capres ? s->capres * 2 : 256;
			s->res = xreallocarray(s->res, s->capres,
			    sizeof(*s->res));
		}
		s->res[s->nres++] = r;
	}
	if (s->ndone == s->capdone) {
		s->capdone = s->capdone ? s->capdone * 2 : 64;
		s->done = xreallocarray(s->done, s->capdone, sizeof(*s->done));
	}
	s->done[s->ndone++] = sj;
}

void
deliverd_sched_poison_check(struct sched *s, struct deliverd_sched_worker *w,
    int status)
{
	struct deliverd_sched_job *sj;
	char			   reply[SPOOL_REPLY_MAX];
	unsigned		   n;

	if (w->njobs == 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
		return; /* a normal exit: no message to blame */
	sj = w->jobs[0];
	if ((n = deliverd_sched_poison_count(sj->j.dj_qid)) <
	    SCHED_POISON_DEATHS)
		return; /* released by the caller: handed out again */
	(void)snprintf(reply, sizeof(reply),
	    "451 4.3.0 delivery worker died while sending it (%u times)", n);
	log_warnx("%s: delivery worker died while sending it (%u times), "
		  "status %d: deferring its recipients",
	    sj->j.dj_qid, n, status);
	deliverd_prec_rearm(sj->j.dj_qid);
	deliverd_sched_poison_defer(s, sj, reply);
	memmove(&w->jobs[0], &w->jobs[1], (w->njobs - 1) * sizeof(w->jobs[0]));
	w->njobs--;
}

bool
deliverd_sched_poison_hold(struct sched *s, struct deliverd_sched_job *sj)
{
	char	 reply[SPOOL_REPLY_MAX];
	ssize_t	 f;
	unsigned n;

	if ((f = deliverd_prec_find(sj->j.dj_qid)) < 0 ||
	    (n = deliverd_prec_count_rec((size_t)f)[SCHED_PREC_DEATHS]) <
		SCHED_POISON_DEATHS)
		return false;
	(void)snprintf(reply, sizeof(reply),
	    "451 4.3.0 deliverd died while sending it (%u times)", n);
	log_warnx("%s: deliverd died while sending it (%u times): deferring "
		  "its recipients",
	    sj->j.dj_qid, n);
	deliverd_prec_rearm(sj->j.dj_qid);
	deliverd_sched_poison_defer(s, sj, reply);
	return true;
}

/* The last run's file (old[0..n)) into the new map: its counts kept, a
 * death counted for each message a worker was working on. */
static void
deliverd_prec_load(const unsigned char *old, size_t n)
{
	const char *q;
	size_t	    i, k = 0;

	memset(deliverd_prec.map, 0, deliverd_prec.len);
	memcpy(deliverd_prec.map, SCHED_PREC_MAGIC, sizeof(SCHED_PREC_MAGIC));
	if (n < SCHED_PREC_SIZE ||
	    memcmp(old, SCHED_PREC_MAGIC, sizeof(SCHED_PREC_MAGIC)) != 0)
		return; /* empty (first start) or damaged: nothing known */
	for (i = 0; i < SCHED_POISON_SLOTS && SCHED_PREC_SIZE * (i + 2) <= n;
	     i++) {
		old += SCHED_PREC_SIZE;
		if ((q = deliverd_prec_qid(old)) == NULL ||
		    old[SCHED_PREC_DEATHS] == 0)
			continue;
		deliverd_prec_set(deliverd_prec_count_rec(k++), q,
		    old[SCHED_PREC_DEATHS]);
		deliverd_prec.ncounted++;
	}
	for (i = 0; SCHED_PREC_SIZE * (SCHED_POISON_SLOTS + i + 2) <= n; i++) {
		old += SCHED_PREC_SIZE;
		if ((q = deliverd_prec_qid(old)) != NULL)
			log_warnx("%s: deliverd died while sending it (%u "
				  "times so far)",
			    q, deliverd_sched_poison_count(q));
	}
}

/*
 * The file mapped shared, its blocks allocated first (a write through the
 * mapping of a hole on a full disk would be a SIGBUS); what it held read
 * into old (*n_r bytes). False, said why, when it cannot be: the counts
 * are then kept in memory only, as before they were kept in a file.
 */
static bool
deliverd_sched_poison_file(const char *path, unsigned char *old, ssize_t *n_r)
{
	struct stat st;
	void	   *map;
	int	    fd, rc;

	/* deliverd's own file: never through a link (issue 14) */
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		 0600)) == -1) {
		log_warn("%s (poison counts in memory only)", path);
		return false;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    st.st_uid != geteuid())
		log_fatalx("refusing %s: not a regular file of deliverd's "
			   "user with one link",
		    path);
	if ((*n_r = pread(fd, old, SCHED_PREC_MAX, 0)) == -1)
		*n_r = 0;
	rc = ftruncate(fd, (off_t)deliverd_prec.len) == -1
	    ? errno
	    : posix_fallocate(fd, 0, (off_t)deliverd_prec.len);
	map = rc != 0 ? MAP_FAILED
		      : mmap(NULL, deliverd_prec.len, PROT_READ | PROT_WRITE,
			    MAP_SHARED, fd, 0);
	if (rc == 0 && map == MAP_FAILED)
		rc = errno;
	(void)close(fd); /* the mapping stays; nothing to fsync */
	if (rc != 0) {
		log_warnx("%s: %s (poison counts in memory only)", path,
		    strerror(rc));
		return false;
	}
	deliverd_prec.map = map;
	return true;
}

void
deliverd_sched_poison_open(const struct sched *s)
{
	unsigned char *old = xcalloc(1, SCHED_PREC_MAX);
	char	       path[4096];
	ssize_t	       n = 0;

	if (str_printf(path, sizeof(path), "%s/db/%s", s->cf->cf_spool_dir,
		SCHED_PREC_FILE) == -1)
		log_fatalx("spool_dir too long: %s", s->cf->cf_spool_dir);
	deliverd_prec.nw = s->nw < SCHED_PREC_WORKERS_MAX
	    ? s->nw
	    : SCHED_PREC_WORKERS_MAX;
	deliverd_prec.len = SCHED_PREC_SIZE *
	    (1 + SCHED_POISON_SLOTS + deliverd_prec.nw);
	if (!deliverd_sched_poison_file(path, old, &n)) {
		deliverd_prec.map = mmap(NULL, deliverd_prec.len,
		    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (deliverd_prec.map == MAP_FAILED)
			log_fatal("mmap");
	}
	/* the workers have no business with it */
	(void)madvise(deliverd_prec.map, deliverd_prec.len, MADV_DONTFORK);
	deliverd_prec_load(old, (size_t)n);
	free(old);
}

void
deliverd_sched_poison_close(void)
{
	if (deliverd_prec.map == NULL)
		return;
	/* a clean stop: whatever the workers were sending is not to blame */
	memset(deliverd_prec_work_rec(0), 0,
	    SCHED_PREC_SIZE * deliverd_prec.nw);
	(void)munmap(deliverd_prec.map, deliverd_prec.len);
	deliverd_prec.map = NULL;
	deliverd_prec.nw = deliverd_prec.ncounted = 0;
}
