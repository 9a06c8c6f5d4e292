/*
 * metrics: the shared counter block and the increments (common/metrics.h).
 * The rendering is metrics_render.c.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"

struct metrics_block	  *metrics_shm;
static enum metrics_daemon metrics_self = METRICS_D_OTHER;
static char		  *metrics_view; /* the whole file, mapped read-only */
/* a child's private counters (metrics_private) and what it sent of them */
static struct metrics_block metrics_local, metrics_sent;

static const char *const metrics_codes[METRICS_NCODES] = { "220", "221", "235",
	"250", "251", "252", "334", "354", "421", "450", "451", "452", "454",
	"500", "501", "502", "503", "504", "530", "535", "550", "552", "553",
	"554" };

static const char *const metrics_daemons[METRICS_NDAEMONS] = { "smtpd",
	"spoold", "deliverd", "trackd", "other" };

/* Refusal texts (CONTRACT), matched after the reply code. */
static const struct {
	const char	   *text;
	enum metrics_reason reason;
	const char	   *name;
} metrics_reasons[METRICS_NREASONS] = {
	{ "issue is blocked", METRICS_R_ISSUE_BLOCKED, "issue-blocked" },
	{ "error/sender/unknown", METRICS_R_SENDER_UNKNOWN, "sender-unknown" },
	{ "error/sender/onmoderation", METRICS_R_SENDER_ONMODERATION,
	    "sender-onmoderation" },
	{ "error/sender/prohibited", METRICS_R_SENDER_PROHIBITED,
	    "sender-prohibited" },
	{ "no To:", METRICS_R_NO_TO, "no-to" },
	{ "no From:", METRICS_R_NO_FROM, "no-from" },
	{ "no Subject:", METRICS_R_NO_SUBJECT, "no-subject" },
	{ "no email in From:", METRICS_R_NO_EMAIL_IN_FROM, "no-email-in-from" },
	{ "no Message-Id:", METRICS_R_NO_MESSAGE_ID, "no-message-id" },
	{ "no Date:", METRICS_R_NO_DATE, "no-date" },
	{ "no MIME-Version:", METRICS_R_NO_MIME_VERSION, "no-mime-version" },
	{ "no Content-Type:", METRICS_R_NO_CONTENT_TYPE, "no-content-type" },
	{ "bad X-Campaign-Id", METRICS_R_BAD_CAMPAIGN_ID, "bad-campaign-id" },
	{ "bad X-Letter-Id", METRICS_R_BAD_LETTER_ID, "bad-letter-id" },
	{ "Email has permanent delivery errors", METRICS_R_PERMANENT_ERRORS,
	    "permanent-errors" },
	{ "Email is in the account stoplist", METRICS_R_STOPLIST, "stoplist" },
	{ NULL, METRICS_R_OTHER, "other" },
};

const char *const metrics_age_names[METRICS_NAGES] = { "5m", "10m", "20m",
	"40m", "80m", "160m", "+Inf" };
const int64_t metrics_age_limits[METRICS_NAGES] = { 300, 600, 1200, 2400, 4800,
	9600, INT64_MAX };

static enum metrics_daemon
metrics_daemon_of(const char *name)
{
	size_t i;

	for (i = 0; i < METRICS_D_OTHER; i++)
		if (strcmp(name, metrics_daemons[i]) == 0)
			return (enum metrics_daemon)i;
	return METRICS_D_OTHER;
}

/*
 * The file: a header page, then one page run per daemon (METRICS_NDAEMONS),
 * each a struct metrics_block; a run is a whole number of pages so that a
 * process can map its own and nothing else writable.
 */
static size_t
metrics_stride(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	if (pg < 4096)
		pg = 4096;
	return (sizeof(struct metrics_block) + pg - 1) / pg * pg;
}

static size_t
metrics_file_size(void)
{
	return metrics_stride() * (1 + METRICS_NDAEMONS);
}

/* A regular file of ours, not linked elsewhere, with the current layout
 * (the directory belongs to the spool user: root must not write through
 * a name that user planted). */
static bool
metrics_file_ok(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid() && st.st_nlink == 1 &&
	    (st.st_size == 0 || st.st_size == (off_t)metrics_file_size());
}

static int
metrics_open(int dfd)
{
	int fd, i;

	for (i = 0; i < 2; i++) {
		fd = openat(dfd, METRICS_FILE,
		    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd != -1 && metrics_file_ok(fd))
			return fd;
		if (fd != -1)
			(void)close(fd);
		/* another layout or owner (or a link): start a new file */
		if (unlinkat(dfd, METRICS_FILE, 0) == -1 && errno != ENOENT)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/*
 * The read-only view of the whole file, through a descriptor opened
 * read-only: mprotect() cannot make such a shared mapping writable.
 */
static int
metrics_map_view(int dfd, int fd)
{
	struct stat a, b;
	void	   *v;
	int	    rfd, saved;

	if ((rfd = openat(dfd, METRICS_FILE,
		 O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &a) == -1 || fstat(rfd, &b) == -1 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		(void)close(rfd);
		errno = ESTALE; /* replaced in between */
		return -1;
	}
	v = mmap(NULL, metrics_file_size(), PROT_READ, MAP_SHARED, rfd, 0);
	saved = errno;
	(void)close(rfd);
	if (v == MAP_FAILED) {
		errno = saved;
		return -1;
	}
	metrics_view = v;
	return 0;
}

/* The header page is written with pwrite, never mapped writable. */
static int
metrics_header(int fd)
{
	struct metrics_block h;
	ssize_t		     n;

	if ((n = pread(fd, &h, 3 * sizeof(uint64_t), 0)) ==
		3 * sizeof(uint64_t) &&
	    h.mb_magic == METRICS_MAGIC && h.mb_version == METRICS_VERSION)
		return 0;
	h.mb_magic = METRICS_MAGIC;
	h.mb_version = METRICS_VERSION;
	h.mb_size = metrics_file_size();
	if (pwrite(fd, &h, 3 * sizeof(uint64_t), 0) != 3 * sizeof(uint64_t))
		return -1;
	return 0;
}

/*
 * A child after fork() keeps no writable mapping: a worker that is taken
 * over cannot change what other processes counted. A child that counts
 * (smtpd's workers) does so in private memory (metrics_private) and its
 * master adds the deltas (metrics_delta_*). The read-only view stays
 * (spoold's metrics child renders it).
 */
static void
metrics_atfork_child(void)
{
	if (metrics_shm != NULL && metrics_shm != &metrics_local)
		(void)munmap(metrics_shm, metrics_stride());
	metrics_shm = NULL;
	memset(&metrics_local, 0, sizeof(metrics_local));
	memset(&metrics_sent, 0, sizeof(metrics_sent));
}

static int
metrics_map(int dfd, int fd)
{
	struct metrics_block *b;
	size_t		      stride = metrics_stride();

	/*
	 * Blocks, not a sparse file: a store into a hole of a full file
	 * system would be SIGBUS in whichever process touched it first.
	 */
	if ((errno = posix_fallocate(fd, 0, (off_t)metrics_file_size())) != 0 ||
	    metrics_header(fd) == -1)
		return -1;
	b = mmap(NULL, stride, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    (off_t)(stride * (1 + (size_t)metrics_self)));
	if (b == MAP_FAILED)
		return -1;
	if (metrics_map_view(dfd, fd) == -1) {
		(void)munmap(b, stride);
		return -1;
	}
	b->mb_magic = METRICS_MAGIC;
	b->mb_version = METRICS_VERSION;
	b->mb_size = sizeof(*b);
	metrics_shm = b;
	return 0;
}

int
metrics_attach(const char *spool_dir, const char *daemon)
{
	static bool atfork;
	int	    dfd, fd, rc, saved;

	metrics_self = metrics_daemon_of(daemon);
	if (metrics_shm != NULL)
		return 0;
	if (!atfork && pthread_atfork(NULL, NULL, metrics_atfork_child) != 0)
		return -1;
	atfork = true;
	if ((dfd = open(spool_dir,
		 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	if ((fd = metrics_open(dfd)) == -1) {
		saved = errno;
		(void)close(dfd);
		errno = saved;
		return -1;
	}
	(void)fchmod(fd, 0600);
	rc = metrics_map(dfd, fd);
	saved = errno;
	(void)close(fd);
	(void)close(dfd);
	errno = saved;
	return rc;
}

void
metrics_detach(void)
{
	if (metrics_shm != NULL && metrics_shm != &metrics_local)
		(void)munmap(metrics_shm, metrics_stride());
	if (metrics_view != NULL)
		(void)munmap(metrics_view, metrics_file_size());
	metrics_shm = NULL;
	metrics_view = NULL;
}

struct metrics_block *
metrics_block(void)
{
	return metrics_shm;
}

_Static_assert(sizeof(struct metrics_block) % sizeof(uint64_t) == 0 &&
	METRICS_DEST_MAX % sizeof(uint64_t) == 0,
    "metrics_block: whole words");

#define METRICS_W(f) (offsetof(struct metrics_block, f) / sizeof(uint64_t))

/* Words [lo, hi) of daemon d's block into dst, each read atomically. */
static void
metrics_copy(uint64_t *dst, enum metrics_daemon d, size_t lo, size_t hi)
{
	const uint64_t *s = (const uint64_t *)(const void *)(metrics_view +
	    metrics_stride() * (1 + (size_t)d));

	for (; lo < hi; lo++)
		dst[lo] = __atomic_load_n(&s[lo], __ATOMIC_ACQUIRE);
}

/*
 * Each counter is taken from the block of the daemon that owns it (the
 * field's prefix; restarts by the index): what one daemon wrote into
 * another's fields of its own block is never rendered.
 */
void
metrics_snapshot(struct metrics_block *dst)
{
	uint64_t *d = (uint64_t *)(void *)dst;
	size_t	  i;

	memset(dst, 0, sizeof(*dst));
	if (metrics_view == NULL ||
	    __atomic_load_n((const uint64_t *)(const void *)metrics_view,
		__ATOMIC_ACQUIRE) != METRICS_MAGIC)
		return;
	dst->mb_magic = METRICS_MAGIC;
	dst->mb_version = METRICS_VERSION;
	dst->mb_size = sizeof(*dst);
	metrics_copy(d, METRICS_D_SMTPD, METRICS_W(mb_smtpd_sessions),
	    METRICS_W(mb_spoold_filed));
	metrics_copy(d, METRICS_D_SPOOLD, METRICS_W(mb_spoold_filed),
	    METRICS_W(mb_deliverd_outcomes));
	/* in order, so a destination's state (acquire) precedes its name */
	metrics_copy(d, METRICS_D_DELIVERD, METRICS_W(mb_deliverd_outcomes),
	    METRICS_W(mb_restarts));
	for (i = 0; i < METRICS_NDAEMONS; i++)
		metrics_copy(d, (enum metrics_daemon)i,
		    METRICS_W(mb_restarts[i]), METRICS_W(mb_restarts[i]) + 2);
	for (i = 0; i < METRICS_DESTS; i++)
		dst->mb_dest[i].md_name[METRICS_DEST_MAX - 1] = '\0';
}

void
metrics_private(void)
{
	metrics_atfork_child();
	metrics_shm = &metrics_local;
}

/* smtpd's counters, the ones a worker sends: contiguous in the block */
#define METRICS_DELTA_LO METRICS_W(mb_smtpd_sessions)
_Static_assert(METRICS_W(mb_spoold_filed) - METRICS_W(mb_smtpd_sessions) ==
	METRICS_DELTA_WORDS,
    "metrics_delta: smtpd's counters");

bool
metrics_delta_take(struct metrics_delta *md)
{
	const uint64_t *l = (const uint64_t *)(const void *)&metrics_local;
	uint64_t       *s = (uint64_t *)(void *)&metrics_sent;
	bool		any = false;
	size_t		i;

	if (metrics_shm != &metrics_local)
		return false;
	for (i = 0; i < METRICS_DELTA_WORDS; i++) {
		/* the commit threads count too */
		uint64_t v = __atomic_load_n(&l[METRICS_DELTA_LO + i],
		    __ATOMIC_RELAXED);

		md->mdl_n[i] = v - s[METRICS_DELTA_LO + i];
		s[METRICS_DELTA_LO + i] = v;
		any |= md->mdl_n[i] != 0;
	}
	return any;
}

void
metrics_delta_untake(const struct metrics_delta *md)
{
	uint64_t *s = (uint64_t *)(void *)&metrics_sent;
	size_t	  i;

	for (i = 0; i < METRICS_DELTA_WORDS; i++)
		s[METRICS_DELTA_LO + i] -= md->mdl_n[i];
}

void
metrics_delta_add(const struct metrics_delta *md)
{
	uint64_t *b = (uint64_t *)(void *)metrics_shm;
	size_t	  i;

	if (metrics_shm == NULL || metrics_shm == &metrics_local ||
	    metrics_self != METRICS_D_SMTPD)
		return;
	/*
	 * The master is the block's only writer. Saturating: a worker's
	 * delta may raise smtpd's counters, never wrap them back below what
	 * the other workers counted.
	 */
	for (i = 0; i < METRICS_DELTA_WORDS; i++) {
		uint64_t *c = &b[METRICS_DELTA_LO + i], v, nv;

		v = __atomic_load_n(c, __ATOMIC_RELAXED);
		if (__builtin_add_overflow(v, md->mdl_n[i], &nv))
			nv = UINT64_MAX;
		__atomic_store_n(c, nv, __ATOMIC_RELAXED);
	}
}

void
metrics_smtp_reply(const char *line)
{
	size_t i;

	if (metrics_shm == NULL || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || line[3] == '-')
		return;
	for (i = 0; i < METRICS_NCODES; i++)
		if (memcmp(line, metrics_codes[i], 3) == 0)
			break;
	if (i == METRICS_NCODES) {
		if (line[0] < '2' || line[0] > '5')
			return;
		i = METRICS_NCODES + (size_t)(line[0] - '2');
	}
	metrics_add(&metrics_shm->mb_smtpd_replies[i], 1);
}

enum metrics_reason
metrics_reason_of(const char *text, size_t len)
{
	size_t i, n;

	/* after "NNN X.Y.Z " */
	for (i = 0; metrics_reasons[i].text != NULL; i++) {
		n = strlen(metrics_reasons[i].text);
		if (len >= n &&
		    memmem(text, len, metrics_reasons[i].text, n) != NULL)
			return metrics_reasons[i].reason;
	}
	return METRICS_R_OTHER;
}

void
metrics_spoold_log(const char *line, size_t len)
{
	static const char bounced[] = ", status=bounced (";
	const char	 *colon, *p;

	if (metrics_shm == NULL || (colon = memchr(line, ':', len)) == NULL)
		return;
	len -= (size_t)(colon - line);
	if (len > 8 && memcmp(colon, ": filed,", 8) == 0)
		metrics_inc(mb_spoold_filed);
	else if (len > 14 && memcmp(colon, ": quarantined,", 14) == 0)
		metrics_inc(mb_spoold_quarantined);
	else if ((p = memmem(colon, len, bounced, sizeof(bounced) - 1)) !=
	    NULL) {
		p += sizeof(bounced) - 1;
		metrics_add(&metrics_shm->mb_spoold_refused[metrics_reason_of(p,
				len - (size_t)(p - colon))],
		    1);
	}
}

/* The slot of a destination: found, claimed, or NULL (then "other"). */
static struct metrics_dest *
metrics_dest_slot(const char *dom)
{
	struct metrics_dest *d;
	uint64_t	     free_state;
	size_t		     i, n = strlen(dom);

	if (n == 0 || n >= METRICS_DEST_MAX)
		return NULL;
	for (i = 0; i < METRICS_DESTS; i++) {
		d = &metrics_shm->mb_dest[i];
		switch (__atomic_load_n(&d->md_state, __ATOMIC_ACQUIRE)) {
		case 2:
			if (strcmp(d->md_name, dom) == 0)
				return d;
			continue;
		case 1:
			continue;
		}
		free_state = 0;
		if (!__atomic_compare_exchange_n(&d->md_state, &free_state, 1,
			false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;
		memcpy(d->md_name, dom, n + 1);
		__atomic_store_n(&d->md_state, 2, __ATOMIC_RELEASE);
		return d;
	}
	return NULL;
}

void
metrics_deliverd_state(bool resolver_down, uint64_t suspended)
{
	if (metrics_shm == NULL)
		return;
	__atomic_store_n(&metrics_shm->mb_deliverd_resolver_down,
	    resolver_down ? 1 : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&metrics_shm->mb_deliverd_suspended, suspended,
	    __ATOMIC_RELAXED);
}

void
metrics_delivery(enum metrics_outcome o, enum bounce_cat cat, const char *to,
    bool tls)
{
	struct metrics_dest *d;
	const char	    *at;
	char		     dom[METRICS_DEST_MAX];
	size_t		     i;

	if (metrics_shm == NULL || o >= METRICS_NOUTCOMES)
		return;
	if ((unsigned)cat >= BOUNCE_CAT_COUNT)
		cat = BOUNCE_OTHER;
	metrics_add(&metrics_shm->mb_deliverd_outcomes[o][cat], 1);
	if (o == METRICS_O_DELIVERED) {
		metrics_inc(mb_deliverd_tls[1]);
		if (tls)
			metrics_inc(mb_deliverd_tls[0]);
	}
	dom[0] = '\0';
	if ((at = strrchr(to, '@')) != NULL && strlen(at + 1) < sizeof(dom)) {
		for (i = 0; at[i + 1] != '\0'; i++)
			dom[i] = (char)tolower((unsigned char)at[i + 1]);
		dom[i] = '\0';
	}
	if ((d = metrics_dest_slot(dom)) != NULL)
		metrics_add(&d->md_n[o], 1);
	else
		metrics_add(&metrics_shm->mb_dest_other[o], 1);
}

void
metrics_restart(bool crash)
{
	if (metrics_shm != NULL)
		metrics_add(
		    &metrics_shm->mb_restarts[metrics_self][crash ? 0 : 1], 1);
}

const char *
metrics_reply_code(size_t i)
{
	return i < METRICS_NCODES ? metrics_codes[i] : "other";
}

const char *
metrics_reply_class(size_t i)
{
	static const char *const cls[] = { "2xx", "3xx", "4xx", "5xx" };

	if (i >= METRICS_NCODES)
		return i < METRICS_NREPLY ? cls[i - METRICS_NCODES] : "other";
	return cls[metrics_codes[i][0] - '2'];
}

const char *
metrics_reason_name(enum metrics_reason r)
{
	return (unsigned)r < METRICS_NREASONS ? metrics_reasons[r].name
					      : "other";
}

const char *
metrics_daemon_name(enum metrics_daemon d)
{
	return (unsigned)d < METRICS_NDAEMONS ? metrics_daemons[d] : "other";
}
