/*
 * smtpd_limits: the per-address session count and stress state shared by
 * every worker, and the workers' retirement notices (see smtpd_limits.h).
 *
 * The table is open addressing with linear probing over 16-byte keys (an
 * IPv4 address as ::ffff:a.b.c.d), a keyed hash seeded at start so that a
 * client cannot aim its addresses at one chain, at most three quarters
 * full, and backward-shift deletion (no tombstones). Every change happens
 * under one process-shared robust mutex, the ledger entry together with
 * the table, so the ledgers of the live workers always add up to the table
 * except while a process that died holding the mutex left it half done;
 * the master rebuilds the table whenever it reaps a worker.
 *
 * The notice pipe carries records of at most PIPE_BUF bytes (each write is
 * whole): 'R' (retiring), or 'M' and a struct metrics_delta (what the
 * worker counted since its last record). A record of any other kind, or
 * cut short, ends what the master reads from that worker.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "smtpd_limits.h"
#include "xmem.h"

#define SMTPD_LIMITS_MIN_BUCKETS 64
#define SMTPD_LIMITS_MAX_BUCKETS (UINT32_C(1) << 20)
#define SMTPD_LIMITS_LOCK_S	 2 /* longer: a wedged mutex */
#define SMTPD_LIMITS_WARN_S	 60
#define SMTPD_LIMITS_KEY	 16

struct smtpd_limits_bucket {
	uint8_t	 lb_ip[SMTPD_LIMITS_KEY];
	uint32_t lb_count; /* 0: empty */
};

/* One session a worker holds: the address it was counted under. */
struct smtpd_limits_held {
	uint8_t	 lh_ip[SMTPD_LIMITS_KEY];
	uint32_t lh_used;
};

struct smtpd_limits_shm {
	pthread_mutex_t ls_mutex;
	uint64_t	ls_sessions; /* counted sessions, all workers */
	uint32_t	ls_used;     /* buckets in use */
	atomic_int	ls_stress;
	struct smtpd_limits_bucket ls_b[];
};

/* Per worker slot; the master's copy is authoritative for sizes and fds. */
struct smtpd_limits_worker {
	struct smtpd_limits_held *lw_held; /* shared ledger; NULL: none */
	size_t			  lw_n;
	int			  lw_rfd;  /* master: notices and counters */
	int			  lw_wfd;  /* worker: its end */
	int64_t			  lw_sent; /* worker: last counters sent, ms */
};

struct smtpd_limits {
	struct smtpd_limits_shm *lm_shm;
	uint32_t		 lm_mask; /* buckets - 1, never read from shm */
	uint64_t		 lm_seed;
	struct smtpd_limits_worker *lm_w;
	size_t			    lm_nw;
	size_t	 lm_self; /* a worker's slot; SIZE_MAX: master */
	uint64_t lm_per_ip;
	uint64_t lm_capacity;
	unsigned lm_threshold;
	unsigned lm_v6bits; /* IPv6 prefix counted as one */
	time_t	 lm_warned;
};

/* ---- the table (callers hold the mutex) */

static uint32_t
smtpd_limits_hash(const struct smtpd_limits *lm, const uint8_t *k)
{
	uint64_t a, b, h;

	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	h = (lm->lm_seed ^ a) * UINT64_C(0x9e3779b97f4a7c15);
	h = (h ^ (h >> 29) ^ b) * UINT64_C(0xbf58476d1ce4e5b9);
	h = (h ^ (h >> 31)) * UINT64_C(0x94d049bb133111eb);
	return (uint32_t)(h ^ (h >> 32));
}

/* k's bucket (found) or the empty one where it would go; UINT32_MAX: full. */
static uint32_t
smtpd_limits_find(const struct smtpd_limits *lm, const uint8_t *k,
    bool *found_r)
{
	const struct smtpd_limits_bucket *b = lm->lm_shm->ls_b;
	uint32_t i = smtpd_limits_hash(lm, k) & lm->lm_mask, n;

	*found_r = false;
	for (n = 0; n <= lm->lm_mask; n++, i = (i + 1) & lm->lm_mask) {
		if (b[i].lb_count == 0)
			return i;
		if (memcmp(b[i].lb_ip, k, SMTPD_LIMITS_KEY) == 0) {
			*found_r = true;
			return i;
		}
	}
	return UINT32_MAX;
}

/* One more session from k; max 0 = no limit (a rebuild). */
static enum smtpd_limits_rc
smtpd_limits_add(struct smtpd_limits *lm, const uint8_t *k, uint64_t max)
{
	struct smtpd_limits_shm *shm = lm->lm_shm;
	uint32_t		 i;
	bool			 found;

	i = smtpd_limits_find(lm, k, &found);
	if (found) {
		if (max != 0 && shm->ls_b[i].lb_count >= max)
			return SMTPD_LIMITS_OVER;
		shm->ls_b[i].lb_count++;
		return SMTPD_LIMITS_OK;
	}
	if (i == UINT32_MAX || shm->ls_used >= (lm->lm_mask + 1) / 4 * 3)
		return SMTPD_LIMITS_UNTRACKED;
	memcpy(shm->ls_b[i].lb_ip, k, SMTPD_LIMITS_KEY);
	shm->ls_b[i].lb_count = 1;
	shm->ls_used++;
	return SMTPD_LIMITS_OK;
}

/* Empties bucket i and moves later entries of its chain back (Knuth R). */
static void
smtpd_limits_drop(struct smtpd_limits *lm, uint32_t i)
{
	struct smtpd_limits_bucket *b = lm->lm_shm->ls_b;
	uint32_t		    j = i, home, n;

	b[i].lb_count = 0;
	lm->lm_shm->ls_used--;
	for (n = 0; n < lm->lm_mask; n++) {
		j = (j + 1) & lm->lm_mask;
		if (b[j].lb_count == 0)
			return;
		home = smtpd_limits_hash(lm, b[j].lb_ip) & lm->lm_mask;
		/* b[j] may move to i unless its home lies in (i, j] */
		if (i < j ? (home <= i || home > j) : (home <= i && home > j)) {
			b[i] = b[j];
			b[j].lb_count = 0;
			i = j;
		}
	}
}

static void
smtpd_limits_sub(struct smtpd_limits *lm, const uint8_t *k)
{
	uint32_t i;
	bool	 found;

	i = smtpd_limits_find(lm, k, &found);
	if (!found)
		return; /* a rebuild already forgot it */
	if (--lm->lm_shm->ls_b[i].lb_count == 0)
		smtpd_limits_drop(lm, i);
}

static void
smtpd_limits_stress_eval(struct smtpd_limits *lm)
{
	struct smtpd_limits_shm *shm = lm->lm_shm;
	uint64_t		 on, off;

	if (lm->lm_capacity == 0)
		return;
	on = (lm->lm_capacity * lm->lm_threshold + 99) / 100;
	if (on == 0)
		on = 1;
	off = on - on / 4; /* hysteresis: one line per episode */
	if (!atomic_load(&shm->ls_stress) && shm->ls_sessions >= on) {
		atomic_store(&shm->ls_stress, 1);
		log_info("stress: begin, sessions=%llu, capacity=%llu",
		    (unsigned long long)shm->ls_sessions,
		    (unsigned long long)lm->lm_capacity);
	} else if (atomic_load(&shm->ls_stress) && shm->ls_sessions < off) {
		atomic_store(&shm->ls_stress, 0);
		log_info("stress: end, sessions=%llu, capacity=%llu",
		    (unsigned long long)shm->ls_sessions,
		    (unsigned long long)lm->lm_capacity);
	}
}

/* Recounts everything from the ledgers of the live workers. */
static void
smtpd_limits_rebuild(struct smtpd_limits *lm)
{
	struct smtpd_limits_shm *shm = lm->lm_shm;
	size_t			 s, e;

	memset(shm->ls_b, 0, ((size_t)lm->lm_mask + 1) * sizeof(shm->ls_b[0]));
	shm->ls_used = 0;
	shm->ls_sessions = 0;
	for (s = 0; s < lm->lm_nw; s++)
		for (e = 0; lm->lm_w[s].lw_held != NULL && e < lm->lm_w[s].lw_n;
		     e++)
			if (lm->lm_w[s].lw_held[e].lh_used &&
			    smtpd_limits_add(lm, lm->lm_w[s].lw_held[e].lh_ip,
				0) == SMTPD_LIMITS_OK)
				shm->ls_sessions++;
	smtpd_limits_stress_eval(lm);
}

/* ---- locking */

static bool
smtpd_limits_warn_due(struct smtpd_limits *lm)
{
	time_t now = time(NULL);

	if (now - lm->lm_warned < SMTPD_LIMITS_WARN_S)
		return false;
	lm->lm_warned = now;
	return true;
}

static int
smtpd_limits_lock(struct smtpd_limits *lm)
{
	struct timespec ts;
	int		rc;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += SMTPD_LIMITS_LOCK_S;
	rc = pthread_mutex_timedlock(&lm->lm_shm->ls_mutex, &ts);
	if (rc == EOWNERDEAD) {
		/* Its owner died mid-change; the master rebuilds on reaping it. */
		(void)pthread_mutex_consistent(&lm->lm_shm->ls_mutex);
		if (lm->lm_self == SIZE_MAX)
			smtpd_limits_rebuild(lm);
		return 0;
	}
	if (rc != 0) {
		if (smtpd_limits_warn_due(lm))
			log_warnx("session limits: mutex: %s", strerror(rc));
		errno = rc;
		return -1;
	}
	return 0;
}

static void
smtpd_limits_unlock(struct smtpd_limits *lm)
{
	(void)pthread_mutex_unlock(&lm->lm_shm->ls_mutex);
}

/* ---- set-up (master) */

static void
smtpd_limits_seed(struct smtpd_limits *lm)
{
	if (getrandom(&lm->lm_seed, sizeof(lm->lm_seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(lm->lm_seed))
		lm->lm_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

struct smtpd_limits *
smtpd_limits_new(size_t nslots, uint64_t capacity)
{
	struct smtpd_limits *lm;
	pthread_mutexattr_t  ma;
	uint32_t	     nb = SMTPD_LIMITS_MIN_BUCKETS;
	size_t		     i, sz;

	while (nb < SMTPD_LIMITS_MAX_BUCKETS && nb / 2 < capacity)
		nb *= 2;
	sz = sizeof(struct smtpd_limits_shm) +
	    (size_t)nb * sizeof(struct smtpd_limits_bucket);
	lm = xcalloc(1, sizeof(*lm));
	lm->lm_shm = mmap(NULL, sz, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (lm->lm_shm == MAP_FAILED) {
		free(lm);
		return NULL;
	}
	lm->lm_mask = nb - 1;
	lm->lm_self = SIZE_MAX;
	lm->lm_v6bits = 128;
	lm->lm_nw = nslots;
	lm->lm_w = xcalloc(nslots, sizeof(*lm->lm_w));
	for (i = 0; i < nslots; i++)
		lm->lm_w[i].lw_rfd = lm->lm_w[i].lw_wfd = -1;
	smtpd_limits_seed(lm);
	if (pthread_mutexattr_init(&ma) != 0 ||
	    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&lm->lm_shm->ls_mutex, &ma) != 0)
		log_fatalx("session limits: process-shared mutex unavailable");
	(void)pthread_mutexattr_destroy(&ma);
	return lm;
}

void
smtpd_limits_configure(struct smtpd_limits *lm, uint64_t per_ip,
    unsigned v6bits, uint64_t capacity, unsigned threshold)
{
	lm->lm_per_ip = per_ip > 0 ? per_ip : 1;
	lm->lm_v6bits = v6bits < 128 ? v6bits : 128;
	lm->lm_capacity = capacity;
	lm->lm_threshold = threshold;
}

void
smtpd_limits_conf(struct smtpd_limits *lm, const struct conf *cf)
{
	uint64_t cap, per_ip;

	cap = (uint64_t)cf->cf_smtpd_workers *
	    (uint64_t)cf->cf_smtpd_max_sessions;
	per_ip = cf->cf_smtpd_max_sessions_per_ip > 0
	    ? (uint64_t)cf->cf_smtpd_max_sessions_per_ip
	    : cap / 2;
	smtpd_limits_configure(lm, per_ip,
	    (unsigned)cf->cf_smtpd_client_ipv6_prefix_length, cap,
	    (unsigned)cf->cf_smtpd_stress_threshold);
}

int
smtpd_limits_spawn(struct smtpd_limits *lm, size_t slot, size_t nsessions)
{
	struct smtpd_limits_worker *w = &lm->lm_w[slot];
	int			    fds[2];
	void			   *p;

	smtpd_limits_reaped(lm, slot);
	p = mmap(NULL, nsessions * sizeof(*w->lw_held), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) {
		(void)munmap(p, nsessions * sizeof(*w->lw_held));
		return -1;
	}
	w->lw_held = p;
	w->lw_n = nsessions;
	w->lw_rfd = fds[0];
	w->lw_wfd = fds[1];
	return 0;
}

void
smtpd_limits_spawned(struct smtpd_limits *lm, size_t slot)
{
	struct smtpd_limits_worker *w = &lm->lm_w[slot];

	if (w->lw_wfd != -1)
		(void)close(w->lw_wfd);
	w->lw_wfd = -1;
}

static void
smtpd_limits_forget(struct smtpd_limits_worker *w)
{
	if (w->lw_rfd != -1)
		(void)close(w->lw_rfd);
	if (w->lw_wfd != -1)
		(void)close(w->lw_wfd);
	if (w->lw_held != NULL)
		(void)munmap(w->lw_held, w->lw_n * sizeof(*w->lw_held));
	w->lw_rfd = w->lw_wfd = -1;
	w->lw_held = NULL;
	w->lw_n = 0;
}

void
smtpd_limits_free(struct smtpd_limits **lmp)
{
	struct smtpd_limits *lm;
	size_t		     i;

	if (lmp == NULL || (lm = *lmp) == NULL)
		return;
	for (i = 0; i < lm->lm_nw; i++)
		smtpd_limits_forget(&lm->lm_w[i]);
	(void)munmap(lm->lm_shm,
	    sizeof(struct smtpd_limits_shm) +
		(size_t)(lm->lm_mask + 1) * sizeof(struct smtpd_limits_bucket));
	free(lm->lm_w);
	free(lm);
	*lmp = NULL;
}

void
smtpd_limits_reaped(struct smtpd_limits *lm, size_t slot)
{
	bool held = lm->lm_w[slot].lw_held != NULL;
	bool retire;

	/* the counters it sent before it exited */
	if (lm->lm_w[slot].lw_rfd != -1)
		(void)smtpd_limits_notice(lm, slot, &retire);
	smtpd_limits_forget(&lm->lm_w[slot]);
	if (!held)
		return;
	if (smtpd_limits_lock(lm) == -1)
		return;
	smtpd_limits_rebuild(lm);
	smtpd_limits_unlock(lm);
}

int
smtpd_limits_notice_fd(const struct smtpd_limits *lm, size_t slot)
{
	return slot < lm->lm_nw ? lm->lm_w[slot].lw_rfd : -1;
}

/* One record: 1 read it, 0 nothing waiting, -1 the end (EOF, or junk). */
static int
smtpd_limits_record(int fd, bool *retire_r)
{
	struct metrics_delta md;
	ssize_t		     r;
	char		     c;

	r = read(fd, &c, 1);
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r != 1)
		return -1;
	if (c == 'R') {
		*retire_r = true;
		return 1;
	}
	/* the rest of a record is in the pipe already (one write) */
	if (c != 'M' || read(fd, &md, sizeof(md)) != (ssize_t)sizeof(md))
		return -1;
	metrics_delta_add(&md);
	return 1;
}

int
smtpd_limits_notice(struct smtpd_limits *lm, size_t slot, bool *retire_r)
{
	struct smtpd_limits_worker *w;
	int			    rc, n;

	*retire_r = false;
	if (slot >= lm->lm_nw || (w = &lm->lm_w[slot])->lw_rfd == -1)
		return 1;
	/* a bound per wake-up: a worker cannot keep the master reading */
	for (n = 0; n < 64; n++)
		if ((rc = smtpd_limits_record(w->lw_rfd, retire_r)) != 1)
			break;
	if (n == 64 || rc == 0)
		return 0;
	(void)close(w->lw_rfd);
	w->lw_rfd = -1;
	return 1;
}

/* ---- the worker's side */

void
smtpd_limits_child(struct smtpd_limits *lm, size_t slot)
{
	size_t s;

	for (s = 0; s < lm->lm_nw; s++) {
		if (lm->lm_w[s].lw_rfd != -1)
			(void)close(lm->lm_w[s].lw_rfd);
		lm->lm_w[s].lw_rfd = -1;
		if (s != slot)
			smtpd_limits_forget(&lm->lm_w[s]);
	}
	lm->lm_self = slot;
	metrics_private(); /* sent to the master: smtpd_limits_flush */
}

void
smtpd_limits_retire(struct smtpd_limits *lm)
{
	struct smtpd_limits_worker *w = &lm->lm_w[lm->lm_self];

	/* the pipe stays open: the counters of the sessions it finishes */
	if (w->lw_wfd != -1 && write(w->lw_wfd, "R", 1) != 1)
		log_warn("retirement notice");
}

void
smtpd_limits_flush(struct smtpd_limits *lm, int64_t now, bool force)
{
	struct smtpd_limits_worker *w = &lm->lm_w[lm->lm_self];
	char			    rec[1 + sizeof(struct metrics_delta)];
	struct metrics_delta	    md;

	_Static_assert(sizeof(rec) <= PIPE_BUF, "one write, one record");
	if (w->lw_wfd == -1 || (!force && now - w->lw_sent < 1000))
		return;
	w->lw_sent = now;
	if (!metrics_delta_take(&md))
		return;
	rec[0] = 'M';
	memcpy(rec + 1, &md, sizeof(md));
	/* a full pipe (a busy master): sent with the next record */
	if (write(w->lw_wfd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		metrics_delta_untake(&md);
}

/*
 * An IPv6 client owns a whole prefix (a /64 at least): its addresses
 * count as one, as Postfix's smtpd_client_ipv6_prefix_length does.
 */
static void
smtpd_limits_mask(uint8_t *k, unsigned bits)
{
	unsigned i;

	for (i = 0; i<SMTPD_LIMITS_KEY; i++, bits = bits> 8 ? bits - 8 : 0)
		if (bits < 8)
			k[i] &= (uint8_t)(0xff00 >> bits);
}

static int
smtpd_limits_key(const struct smtpd_limits *lm, const struct sockaddr *sa,
    uint8_t *k)
{
	static const uint8_t	   v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	const struct sockaddr_in  *sin;
	const struct sockaddr_in6 *sin6;

	memset(k, 0, SMTPD_LIMITS_KEY);
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		k[10] = k[11] =
		    0xff; /* as ::ffff:a.b.c.d, its IPv4-mapped form */
		memcpy(k + 12, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(k, &sin6->sin6_addr, SMTPD_LIMITS_KEY);
		if (memcmp(k, v4mapped, sizeof(v4mapped)) != 0)
			smtpd_limits_mask(k, lm->lm_v6bits);
		return 0;
	}
	return -1;
}

static enum smtpd_limits_rc
smtpd_limits_untracked(struct smtpd_limits *lm, const char *why)
{
	if (smtpd_limits_warn_due(lm))
		log_warnx("session limits: %s: sessions admitted without a "
			  "per-address count",
		    why);
	return SMTPD_LIMITS_UNTRACKED;
}

enum smtpd_limits_rc
smtpd_limits_admit(struct smtpd_limits *lm, const struct sockaddr *sa,
    int *idx_r)
{
	struct smtpd_limits_worker *w = &lm->lm_w[lm->lm_self];
	uint8_t			    k[SMTPD_LIMITS_KEY];
	enum smtpd_limits_rc	    rc;
	size_t			    e;

	*idx_r = -1;
	if (smtpd_limits_key(lm, sa, k) == -1)
		return SMTPD_LIMITS_UNTRACKED;
	for (e = 0; e < w->lw_n && w->lw_held[e].lh_used; e++)
		;
	if (e == w->lw_n)
		return smtpd_limits_untracked(lm, "ledger full");
	if (smtpd_limits_lock(lm) == -1)
		return SMTPD_LIMITS_UNTRACKED;
	rc = smtpd_limits_add(lm, k, lm->lm_per_ip);
	if (rc == SMTPD_LIMITS_OK) {
		memcpy(w->lw_held[e].lh_ip, k, SMTPD_LIMITS_KEY);
		w->lw_held[e].lh_used = 1;
		lm->lm_shm->ls_sessions++;
		smtpd_limits_stress_eval(lm);
		*idx_r = (int)e;
	}
	smtpd_limits_unlock(lm);
	if (rc == SMTPD_LIMITS_UNTRACKED)
		return smtpd_limits_untracked(lm, "address table full");
	return rc;
}

void
smtpd_limits_release(struct smtpd_limits *lm, int idx)
{
	struct smtpd_limits_worker *w = &lm->lm_w[lm->lm_self];
	bool			    locked;

	if (idx < 0 || (size_t)idx >= w->lw_n || !w->lw_held[idx].lh_used)
		return;
	locked = smtpd_limits_lock(lm) == 0;
	if (locked) {
		smtpd_limits_sub(lm, w->lw_held[idx].lh_ip);
		if (lm->lm_shm->ls_sessions > 0)
			lm->lm_shm->ls_sessions--;
		smtpd_limits_stress_eval(lm);
	}
	w->lw_held[idx].lh_used = 0;
	if (locked)
		smtpd_limits_unlock(lm);
}

bool
smtpd_limits_stress(const struct smtpd_limits *lm)
{
	return atomic_load_explicit(&lm->lm_shm->ls_stress,
		   memory_order_relaxed) != 0;
}

uint64_t
smtpd_limits_sessions(const struct smtpd_limits *lm)
{
	return lm->lm_shm->ls_sessions;
}

uint32_t
smtpd_limits_count(struct smtpd_limits *lm, const struct sockaddr *sa)
{
	uint8_t	 k[SMTPD_LIMITS_KEY];
	uint32_t i, n = 0;
	bool	 found;

	if (smtpd_limits_key(lm, sa, k) == -1 || smtpd_limits_lock(lm) == -1)
		return 0;
	i = smtpd_limits_find(lm, k, &found);
	if (found)
		n = lm->lm_shm->ls_b[i].lb_count;
	smtpd_limits_unlock(lm);
	return n;
}
