/*
 * metrics: the shared counter block and the increments (common/metrics.h).
 * The rendering is metrics_render.c.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"

struct metrics_block	  *metrics_shm;
static enum metrics_daemon metrics_self = METRICS_D_OTHER;

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

/* A regular file of ours, not linked elsewhere, with the current layout
 * (the directory belongs to the spool user: root must not write through
 * a name that user planted). */
static bool
metrics_file_ok(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid() && st.st_nlink == 1 &&
	    (st.st_size == 0 ||
		st.st_size == (off_t)sizeof(struct metrics_block));
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

int
metrics_attach(const char *spool_dir, const char *daemon)
{
	struct metrics_block *b;
	int		      dfd, fd, saved;

	metrics_self = metrics_daemon_of(daemon);
	if (metrics_shm != NULL)
		return 0;
	if ((dfd = open(spool_dir,
		 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	fd = metrics_open(dfd);
	saved = errno;
	(void)close(dfd);
	if (fd == -1) {
		errno = saved;
		return -1;
	}
	(void)fchmod(fd, 0600);
	/*
	 * Blocks, not a sparse file: a store into a hole of a full file
	 * system would be SIGBUS in whichever process touched it first.
	 */
	if ((errno = posix_fallocate(fd, 0, sizeof(*b))) != 0 ||
	    (b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 0)) == MAP_FAILED) {
		saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
	(void)close(fd);
	/* a new file is zeros; two first daemons write the same header */
	if (__atomic_load_n(&b->mb_magic, __ATOMIC_ACQUIRE) != METRICS_MAGIC) {
		b->mb_version = METRICS_VERSION;
		b->mb_size = sizeof(*b);
		__atomic_store_n(&b->mb_magic, METRICS_MAGIC, __ATOMIC_RELEASE);
	}
	metrics_shm = b;
	return 0;
}

struct metrics_block *
metrics_block(void)
{
	return metrics_shm;
}

_Static_assert(sizeof(struct metrics_block) % sizeof(uint64_t) == 0 &&
	METRICS_DEST_MAX % sizeof(uint64_t) == 0,
    "metrics_block: whole words");

void
metrics_snapshot(struct metrics_block *dst)
{
	const uint64_t *s = (const uint64_t *)(void *)metrics_shm;
	uint64_t       *d = (uint64_t *)(void *)dst;
	size_t		i;

	memset(dst, 0, sizeof(*dst));
	if (s == NULL)
		return;
	/* every member is a uint64_t or chars in whole uint64_t words; in
	 * order, so a destination's state (acquire) precedes its name */
	for (i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] = __atomic_load_n(&s[i], __ATOMIC_ACQUIRE);
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
