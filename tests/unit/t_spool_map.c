/*
 * Unit tests for the LMDB environment's lifetime in libspool: the map
 * grows by itself when a write txn fills it (up to the ceiling), another
 * process adopts the grown map in spool_begin/spool_renew, and the reader
 * slot of a process killed inside a read txn is cleared at open.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spool.h"
#include "spool_rec.h" /* raw puts: sizes are what matters here */
#include "tap.h"
#include "tfix.h"

#define KIB INT64_C(1024)
#define NREC \
	110 /* x VALSZ, 2 a page: more than a 256 KiB map holds, well below 512 KiB */
#define VALSZ 1500

static char tdir[64];

static void
fresh_dir(void)
{
	t_fresh_dir(tdir, sizeof(tdir), "t_spool_map");
}

static void
rec_key(struct spool_key *k, const char *tag, int i)
{
	char name[32];

	(void)snprintf(name, sizeof(name), "%s%06d", tag, i);
	spool_key_init(k);
	spool_key_str(k, name);
}

/* One write txn of n records tag0..tagN; returns the first failure. */
static int
fill(struct spool *sp, const char *tag, int n)
{
	struct spool_txn *t;
	struct spool_key  k;
	char		  v[VALSZ];
	int		  i, rc;

	memset(v, 'v', sizeof(v));
	if ((rc = spool_begin(sp, true, &t)) != 0)
		return rc;
	for (i = 0; i < n; i++) {
		rec_key(&k, tag, i);
		if ((rc = spool_db_put(t, SPOOL_DB_MESSAGES, &k, v,
			 sizeof(v))) != 0) {
			spool_abort(&t);
			return rc;
		}
	}
	return spool_commit(&t);
}

/* fill(), retried once after a growth: what every writer does. */
static int
fill_retry(struct spool *sp, const char *tag, int n, int *grown_r)
{
	struct spool_map m;
	int		 rc;

	if ((rc = fill(sp, tag, n)) == SPOOL_EFULL && spool_map_grown(sp, &m)) {
		(*grown_r)++;
		rc = fill(sp, tag, n);
	}
	return rc;
}

static bool
has_rec(struct spool *sp, const char *tag, int i)
{
	struct spool_txn *t;
	struct spool_key  k;
	const void	 *v;
	size_t		  len;
	int		  rc;

	if (spool_begin(sp, false, &t) != 0)
		return false;
	rec_key(&k, tag, i);
	rc = spool_db_get(t, SPOOL_DB_MESSAGES, &k, &v, &len);
	spool_abort(&t);
	return rc == 0 && len == VALSZ;
}

static void
t_grow(void)
{
	struct spool	*sp;
	struct spool_map m;
	char		 tag[8];
	int		 rc = 0, i, grown = 0;

	fresh_dir();
	t_int_eq(spool_open(tdir, 256 * KIB, 1024 * KIB, 0, &sp), 0,
	    "open 256 KiB, max 1 MiB");
	t_int_eq(fill(sp, "a", NREC), SPOOL_EFULL,
	    "a txn larger than the map: SPOOL_EFULL");
	t_ok(spool_map_grown(sp, &m), "the map grew after the abort");
	t_int_eq(m.mp_grew_from, 256 * KIB, "from 256 KiB");
	t_int_eq(m.mp_size, 512 * KIB, "to 512 KiB");
	t_int_eq(m.mp_max, 1024 * KIB, "max reported");
	t_ok(!spool_map_grown(sp, &m), "reported once");
	t_int_eq(fill(sp, "a", NREC), 0, "the same txn retried: committed");
	t_ok(has_rec(sp, "a", NREC - 1), "its last record is there");
	for (i = 0; i < 20 && rc == 0; i++) {
		(void)snprintf(tag, sizeof(tag), "b%d-", i);
		rc = fill_retry(sp, tag, NREC, &grown);
	}
	t_int_eq(rc, SPOOL_EFULL,
	    "at the ceiling: still SPOOL_EFULL after the retry");
	t_int_eq(grown, 1, "one more growth on the way (512 KiB -> 1 MiB)");
	t_ok(!spool_map_grown(sp, &m), "no growth past the ceiling");
	spool_map_info(sp, &m);
	t_int_eq(m.mp_size, 1024 * KIB, "map at lmdb_map_max");
	t_ok(m.mp_stuck, "reported as stuck");
	spool_close(&sp);
	t_int_eq(spool_open(tdir, 256 * KIB, 1024 * KIB, 0, &sp), 0,
	    "reopen with 256 KiB");
	spool_map_info(sp, &m);
	t_int_eq(m.mp_size, 1024 * KIB, "adopts the grown map from the file");
	spool_close(&sp);
}

static void
pipe_put(int fd)
{
	(void)!write(fd, "x", 1); /* a dead peer shows in its exit status */
}

static void
pipe_get(int fd)
{
	char c;

	(void)!read(fd, &c, 1);
}

/* Child: a reader opened on the small map, holding a read txn while the
 * parent grows the map and writes past its end. */
static int
reader_child(int in, int out)
{
	struct spool	 *sp;
	struct spool_txn *t;

	pipe_get(in);
	if (spool_open(tdir, 256 * KIB, 256 * KIB, SPOOL_RDONLY, &sp) != 0 ||
	    spool_begin(sp, false, &t) != 0)
		return 2;
	pipe_put(out);
	pipe_get(in);		 /* the parent grew the map */
	if (spool_renew(t) != 0) /* MDB_MAP_RESIZED on renew */
		return 3;
	spool_abort(&t);
	if (!has_rec(sp, "g", NREC - 1))
		return 4;
	pipe_put(out);
	pipe_get(in); /* grown again: now on begin */
	if (!has_rec(sp, "h", NREC - 1))
		return 5;
	spool_close(&sp);
	return 0;
}

static void
t_other_process(void)
{
	struct spool *sp;
	int	      p2c[2], c2p[2], st, grown = 0;
	pid_t	      pid;

	fresh_dir();
	if (pipe(p2c) == -1 || pipe(c2p) == -1 || (pid = fork()) == -1)
		abort();
	if (pid == 0) {
		(void)close(p2c[1]);
		(void)close(c2p[0]);
		_exit(reader_child(p2c[0], c2p[1]));
	}
	/* only the other side holds each write end: a dead peer ends a read */
	(void)close(p2c[0]);
	(void)close(c2p[1]);
	(void)signal(SIGPIPE, SIG_IGN);
	t_int_eq(spool_open(tdir, 256 * KIB, 4096 * KIB, 0, &sp), 0,
	    "writer opens");
	pipe_put(p2c[1]);
	pipe_get(c2p[0]);
	t_int_eq(fill_retry(sp, "g", NREC, &grown), 0,
	    "writer grows the map and commits");
	t_int_eq(grown, 1, "one growth");
	pipe_put(p2c[1]);
	pipe_get(c2p[0]);
	t_int_eq(fill_retry(sp, "h", NREC, &grown), 0, "grows again");
	pipe_put(p2c[1]);
	(void)close(p2c[1]);
	(void)close(c2p[0]);
	t_ok(waitpid(pid, &st, 0) == pid && WIFEXITED(st), "reader exited");
	t_int_eq(WEXITSTATUS(st), 0,
	    "reader read past its old map (renew, then begin)");
	spool_close(&sp);
}

static off_t
data_size(void)
{
	struct stat st;
	char	    p[128];

	(void)snprintf(p, sizeof(p), "%s/db/data.mdb", tdir);
	return stat(p, &st) == 0 ? st.st_size : -1;
}

/* Forks f(); returns its exit status, or -1 if it did not exit. */
static int
child(int (*f)(void))
{
	pid_t pid;
	int   st;

	if ((pid = fork()) == -1)
		abort();
	if (pid == 0)
		_exit(f());
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st)  ? WEXITSTATUS(st)
	    : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
			      : -1;
}

static int
die_in_read_txn(void)
{
	struct spool	 *sp;
	struct spool_txn *t;

	if (spool_open(tdir, 4096 * KIB, 4096 * KIB, SPOOL_RDONLY, &sp) == 0 &&
	    spool_begin(sp, false, &t) == 0)
		(void)raise(SIGKILL);
	return 1;
}

static int
open_and_count_readers(void)
{
	struct spool	*sp;
	struct spool_map m;

	if (spool_open(tdir, 4096 * KIB, 4096 * KIB, SPOOL_RDONLY, &sp) != 0)
		return 100;
	spool_map_info(sp, &m);
	spool_close(&sp);
	return (int)m.mp_readers;
}

/* A process killed inside a read txn (spoolctl queue | head, a SIGKILLed
 * callback child) must not pin its snapshot for ever. The writer keeps
 * the environment open all along, as the daemons do (the first opener of
 * an unused lock file resets the reader table anyway). */
static void
t_stale_reader(void)
{
	struct spool *sp;
	off_t	      before;
	int	      i, rc = 0;

	fresh_dir();
	t_int_eq(spool_open(tdir, 4096 * KIB, 4096 * KIB, 0, &sp), 0,
	    "writer opens");
	t_int_eq(fill(sp, "s", 20), 0, "some data");
	t_int_eq(child(die_in_read_txn), 128 + SIGKILL,
	    "a reader killed in its txn");
	t_int_eq(child(open_and_count_readers), 1,
	    "the next open clears its slot");
	before = data_size();
	for (i = 0; i < 200 && rc == 0; i++)
		rc = fill(sp, "s", 2); /* rewrite two records, 200 times */
	t_int_eq(rc, 0, "200 small write txns");
	t_ok(data_size() - before < 64 * 4096,
	    "freed pages reused: file grew %lld bytes",
	    (long long)(data_size() - before));
	spool_close(&sp);
}

static const struct t_case cases[] = {
	{ "grow", t_grow },
	{ "other_process", t_other_process },
	{ "stale_reader", t_stale_reader },
};

int
main(void)
{
	return T_RUN_RMTREE(cases, tdir);
}
