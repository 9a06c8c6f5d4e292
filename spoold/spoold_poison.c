/*
 * spoold_poison: the record of the files being filed, and what spoold
 * does at start with the ones its previous run died on (see
 * spoold_poison.h).
 *
 * The record is text, rewritten in place with one pwrite:
 *
 *	spoold-filing 1 -	'-' becomes 'C' when spoold crashes
 *	F CRASHES KILLS QID	being filed now, with its deaths so far
 *	P CRASHES KILLS QID	the last run's, still to be filed alone
 *	.
 *
 * A crash is a fatal signal raised by the code (SIGSEGV, SIGABRT, SIGBUS,
 * SIGILL, SIGFPE): a handler marks the record ('C', one pwrite, which is
 * async-signal-safe) and lets the signal kill the process. Any other
 * death (SIGKILL, the OOM killer, a power loss) leaves '-': it is a kill,
 * maybe not the message's fault. A file is quarantined after
 * SPOOLD_POISON_DEATHS crashes, or SPOOLD_POISON_KILLS deaths of any kind
 * (an innocent file needs three kills while it is filed alone).
 *
 * Anything after the "." line is a longer earlier record's tail. A cut or
 * damaged record is read up to the first bad line: the names before it
 * are still filed alone first, which is safe (filing is idempotent).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "qid.h"
#include "sig.h"
#include "spool.h"
#include "spoold_poison.h"
#include "xmem.h"

#define SPOOLD_POISON_MAGIC "spoold-filing 1 "
#define SPOOLD_POISON_FLAG  16	   /* offset of '-' or 'C' */
#define SPOOLD_POISON_MAX   100000 /* suspects kept: spoold_batch's bound */
#define SPOOLD_POISON_READ  (SPOOLD_POISON_MAX * 40)
#define SPOOLD_POISON_NONE  ((size_t)-1)

struct spoold_suspect {
	char	 ps_qid[QID_SIZE];
	unsigned ps_crashes; /* spoold crashed while filing it */
	unsigned ps_kills;   /* ... or died otherwise */
};

/* For the crash handler: the record and the process it belongs to (the
 * metrics child inherits both). */
static int   spoold_poison_fd = -1;
static pid_t spoold_poison_pid;

struct spoold_poison {
	int		       pn_fd;
	struct spoold_suspect *pn_v; /* the last run's, in filing order */
	size_t		       pn_n, pn_next, pn_max;
	size_t		       pn_died; /* of them, being filed at the death */
	bool		       pn_crashed; /* that death was a crash */
	size_t		       pn_cur;	   /* pn_v[] filed alone now, or NONE */
	struct buf	       pn_rec;
	bool		       pn_warned; /* a failed write was logged */
};

/* A count and the space after it at l[*i]; false if there is none. */
static bool
spoold_poison_num(const char *l, size_t len, size_t *i, unsigned *n)
{
	size_t start = *i;

	for (*n = 0; *i < len && l[*i] >= '0' && l[*i] <= '9'; (*i)++)
		if (*n < 1000)
			*n = *n * 10 + (unsigned)(l[*i] - '0');
	return *i > start && *i < len && l[(*i)++] == ' ';
}

/* One "F|P CRASHES KILLS QID" line into s; false if it is not one. */
static bool
spoold_poison_line(const char *l, size_t len, char *kind,
    struct spoold_suspect *s)
{
	size_t i = 2;

	if (len < 4 || (l[0] != 'F' && l[0] != 'P') || l[1] != ' ')
		return false;
	*kind = l[0];
	if (!spoold_poison_num(l, len, &i, &s->ps_crashes) ||
	    !spoold_poison_num(l, len, &i, &s->ps_kills) || len - i >= QID_SIZE)
		return false;
	memcpy(s->ps_qid, l + i, len - i);
	s->ps_qid[len - i] = '\0';
	return qid_ok(s->ps_qid);
}

/* The last run's record -> suspects: a name being filed counts a death. */
static void
spoold_poison_parse(struct spoold_poison *pn, const char *p, size_t len)
{
	const char	     *end = p + len, *nl;
	struct spoold_suspect s;
	char		      kind;
	bool		      crashed;

	if (len < SPOOLD_POISON_FLAG + 2 ||
	    memcmp(p, SPOOLD_POISON_MAGIC, SPOOLD_POISON_FLAG) != 0 ||
	    p[SPOOLD_POISON_FLAG + 1] != '\n')
		return; /* empty (first start) or not ours: nothing to redo */
	crashed = pn->pn_crashed = p[SPOOLD_POISON_FLAG] == 'C';
	p += SPOOLD_POISON_FLAG + 2;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL &&
	    pn->pn_n < SPOOLD_POISON_MAX) {
		if (!spoold_poison_line(p, (size_t)(nl - p), &kind, &s))
			break; /* "." or damage: the record ends here */
		if (kind == 'F') {
			if (crashed)
				s.ps_crashes++;
			else
				s.ps_kills++;
			pn->pn_died++;
		}
		if (pn->pn_n == pn->pn_max) {
			pn->pn_max = pn->pn_max == 0 ? 64 : pn->pn_max * 2;
			pn->pn_v = xreallocarray(pn->pn_v, pn->pn_max,
			    sizeof(*pn->pn_v));
		}
		pn->pn_v[pn->pn_n++] = s;
		p = nl + 1;
	}
}

static void
spoold_poison_read(struct spoold_poison *pn)
{
	struct stat st;
	size_t	    len;
	ssize_t	    r;
	char	   *p;

	if (fstat(pn->pn_fd, &st) == -1)
		log_fatal("fstat db/%s", SPOOLD_POISON_FILE);
	len = st.st_size > SPOOLD_POISON_READ ? SPOOLD_POISON_READ
					      : (size_t)st.st_size;
	if (len == 0)
		return;
	p = xmalloc(len);
	r = pread(pn->pn_fd, p, len, 0);
	if (r == -1)
		log_warn("read db/%s (previous run not checked)",
		    SPOOLD_POISON_FILE);
	else
		spoold_poison_parse(pn, p, (size_t)r);
	free(p);
}

/* A fatal signal raised by the code: mark the record, then die of it
 * (disposition reset on entry: the signal, blocked here, kills the
 * process on return; a fault raises it again). */
static void
spoold_poison_on_crash(int sig)
{
	if (spoold_poison_fd != -1 && getpid() == spoold_poison_pid &&
	    pwrite(spoold_poison_fd, "C", 1, SPOOLD_POISON_FLAG) != 1)
		(void)sig; /* nothing to do in a dying process */
	(void)raise(sig);
}

static void
spoold_poison_handlers(int fd)
{
	static const int sigs[] = { SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE };
	struct sigaction sa;
	size_t		 i;

	spoold_poison_fd = fd;
	spoold_poison_pid = getpid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = spoold_poison_on_crash;
	sa.sa_flags = (int)SA_RESETHAND;
	(void)sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) == -1)
			log_warn("sigaction %d", sigs[i]);
}

void
spoold_poison_open(struct spoold *sd)
{
	struct spoold_poison *pn = xcalloc(1, sizeof(*pn));
	struct stat	      st;
	char		      path[4096];

	if (str_printf(path, sizeof(path), "%s/db/%s", sd->sd_cf->cf_spool_dir,
		SPOOLD_POISON_FILE) == -1)
		log_fatalx("spool_dir too long: %s", sd->sd_cf->cf_spool_dir);
	/* spoold's own file: never through a link (issue 14) */
	pn->pn_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (pn->pn_fd == -1)
		log_fatal("open %s", path);
	if (fstat(pn->pn_fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1 || st.st_uid != geteuid())
		log_fatalx("refusing %s: not a regular file of spoold's user "
			   "with one link",
		    path);
	pn->pn_cur = SPOOLD_POISON_NONE;
	buf_init(&pn->pn_rec, SPOOLD_POISON_READ);
	sd->sd_poison = pn;
	spoold_poison_read(pn);
	if (pn->pn_n > 0)
		log_warnx(
		    "spoold died while filing %zu file(s) in its last run "
		    "(%s); filing %zu file(s) one at a time first",
		    pn->pn_died, pn->pn_crashed ? "a crash" : "killed",
		    pn->pn_n);
	spoold_poison_clear(sd);
	spoold_poison_handlers(pn->pn_fd);
}

/* The record: names (with cur's deaths when cur, the suspect filed alone,
 * is given; else 0), then the suspects still waiting; written over the
 * old one in one pwrite. */
static void
spoold_poison_write(struct spoold_poison *pn, char (*names)[SPOOLD_NAME_MAX],
    size_t n, const struct spoold_suspect *cur)
{
	const struct spoold_suspect *v;
	struct buf		    *b = &pn->pn_rec;
	size_t			     i;
	int			     rc = 0;

	buf_reset(b);
	rc |= buf_puts(b, SPOOLD_POISON_MAGIC "-\n");
	for (i = 0; i < n; i++)
		if (qid_ok(names[i])) /* other names are never opened */
			rc |= buf_printf(b, "F %u %u %s\n",
			    cur != NULL ? cur->ps_crashes : 0,
			    cur != NULL ? cur->ps_kills : 0, names[i]);
	for (i = pn->pn_next; i < pn->pn_n; i++) {
		v = &pn->pn_v[i];
		if (i != pn->pn_cur)
			rc |= buf_printf(b, "P %u %u %s\n", v->ps_crashes,
			    v->ps_kills, v->ps_qid);
	}
	rc |= buf_puts(b, ".\n");
	if (rc == 0 && pwrite(pn->pn_fd, b->data, b->len, 0) == (ssize_t)b->len)
		return;
	if (!pn->pn_warned) /* filing goes on, without crash detection */
		log_warnx("cannot write db/%s: %s (a message that crashes "
			  "spoold may not be set aside)",
		    SPOOLD_POISON_FILE,
		    rc != 0 ? "record too big" : strerror(errno));
	pn->pn_warned = true;
}

void
spoold_poison_mark(struct spoold *sd, char (*names)[SPOOLD_NAME_MAX], size_t n)
{
	struct spoold_poison *pn = sd->sd_poison;

	if (pn == NULL)
		return;
	spoold_poison_write(pn, names, n,
	    pn->pn_cur != SPOOLD_POISON_NONE ? &pn->pn_v[pn->pn_cur] : NULL);
}

void
spoold_poison_clear(struct spoold *sd)
{
	if (sd->sd_poison != NULL)
		spoold_poison_write(sd->sd_poison, NULL, 0, NULL);
}

/* Its message is in the database (filed or finished): filing only moves it. */
static bool
spoold_poison_filed(struct spoold *sd, const char *qid)
{
	struct spool_txn *txn = NULL;
	struct spool_msg *m = xmalloc(sizeof(*m));
	bool		  filed;

	filed = spool_begin(sd->sd_sp, false, &txn) == 0 &&
	    (spool_msg_get(txn, qid, m) == 0 ||
		spool_done_get(txn, qid, NULL) == 0);
	spool_abort(&txn);
	free(m);
	return filed;
}

static bool
spoold_poison_present(const struct spoold *sd, const char *qid)
{
	struct stat st;
	char	    path[4096];

	return spool_path(path, sizeof(path), sd->sd_cf->cf_spool_dir,
		   SPOOL_NEW, qid) == 0 &&
	    lstat(path, &st) == 0;
}

/* One suspect: quarantined after its last death, else filed alone. */
static int
spoold_poison_one(struct spoold *sd, struct spoold_suspect *s)
{
	char   name[1][SPOOLD_NAME_MAX], why[128];
	size_t bad;
	int    rc;

	if (!spoold_poison_present(sd, s->ps_qid))
		return 0; /* filed and moved before the death */
	if ((s->ps_crashes >= SPOOLD_POISON_DEATHS ||
		s->ps_crashes + s->ps_kills >= SPOOLD_POISON_KILLS) &&
	    !spoold_poison_filed(sd, s->ps_qid)) {
		(void)str_printf(why, sizeof(why),
		    "spoold died while filing it (%u times)",
		    s->ps_crashes + s->ps_kills);
		spoold_quarantine_n(sd, s->ps_qid, why,
		    s->ps_crashes + s->ps_kills);
		return 0;
	}
	(void)str_copy(name[0], sizeof(name[0]), s->ps_qid);
	rc = spoold_file_batch(sd, name, 1, &bad);
	if (rc != 0 && !spoold_error_transient(rc)) {
		spoold_quarantine(sd, name[0], spool_strerror(rc));
		rc = 0;
	}
	return rc;
}

int
spoold_poison_recover(struct spoold *sd)
{
	struct spoold_poison *pn = sd->sd_poison;
	int		      rc = 0;

	if (pn == NULL || pn->pn_next >= pn->pn_n)
		return 0;
	while (pn->pn_next < pn->pn_n && !sig_stopping()) {
		pn->pn_cur = pn->pn_next;
		rc = spoold_poison_one(sd, &pn->pn_v[pn->pn_cur]);
		pn->pn_cur = SPOOLD_POISON_NONE;
		if (rc != 0) {
			log_warnx("filing stopped: %s; files stay in "
				  "incoming/new, retrying",
			    spool_strerror(rc));
			return rc;
		}
		pn->pn_next++;
	}
	if (pn->pn_next < pn->pn_n)
		return 0; /* stopping: the rest stays in the record */
	log_info("filed the last run's %zu file(s) one at a time", pn->pn_n);
	free(pn->pn_v);
	pn->pn_v = NULL;
	pn->pn_n = pn->pn_next = pn->pn_max = 0;
	spoold_poison_clear(sd);
	return 0;
}

void
spoold_poison_close(struct spoold *sd)
{
	struct spoold_poison *pn = sd->sd_poison;

	if (pn == NULL)
		return;
	spoold_poison_clear(sd);
	spoold_poison_fd = -1;
	(void)close(pn->pn_fd); /* no fsync: a crash, not a power loss */
	buf_release(&pn->pn_rec);
	free(pn->pn_v);
	free(pn);
	sd->sd_poison = NULL;
}
