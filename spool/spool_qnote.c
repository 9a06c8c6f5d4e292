/*
 * spool_qnote: the note beside a quarantined file (see spool_qnote.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsx.h"
#include "spool.h"
#include "spool_qnote.h"

#define SPOOL_QNOTE_MAGIC "smtpgate-quarantine 1\n"

static int
spool_qnote_path(char *dst, size_t dstsz, const char *spool_dir,
    const char *qid, bool dir_only)
{
	char name[300];

	if (qid[0] == '.' || qid[0] == '\0' || strchr(qid, '/') != NULL)
		return EINVAL;
	if (str_printf(name, sizeof(name), ".%s.why", qid) == -1 ||
	    spool_path(dst, dstsz, spool_dir, SPOOL_QUARANTINE,
		dir_only ? NULL : name) == -1)
		return ENAMETOOLONG;
	return 0;
}

int
spool_qnote_write(const char *spool_dir, const char *qid,
    const struct spool_qnote *qn)
{
	char dir[4200], name[300], reason[SPOOL_QNOTE_REASON_MAX + 1],
	    rec[SPOOL_QNOTE_MAX + 64];
	size_t i;
	int    n, rc;

	if ((rc = spool_qnote_path(dir, sizeof(dir), spool_dir, qid, true)) !=
	    0)
		return rc;
	(void)str_copy(reason, sizeof(reason), qn->qn_reason); /* cut */
	for (i = 0; reason[i] != '\0'; i++)
		if ((unsigned char)reason[i] < 0x20 ||
		    (unsigned char)reason[i] > 0x7e)
			reason[i] = '?';
	n = snprintf(rec, sizeof(rec),
	    "%stime %" PRId64 "\ncount %u\nreason %s\n", SPOOL_QNOTE_MAGIC,
	    qn->qn_time, qn->qn_count, reason);
	if (n < 0 || (size_t)n >= sizeof(rec) ||
	    str_printf(name, sizeof(name), ".%s.why", qid) == -1)
		return ENAMETOOLONG;
	return fsx_write_durable(dir, name, rec, (size_t)n, 0600) == -1 ? errno
									: 0;
}

/* "KEY VALUE\n" at *p (advanced past it): VALUE, NUL-terminated in place. */
static char *
spool_qnote_field(char **p, const char *key)
{
	size_t klen = strlen(key);
	char  *v, *nl;

	if (strncmp(*p, key, klen) != 0 || (*p)[klen] != ' ' ||
	    (nl = strchr(*p, '\n')) == NULL)
		return NULL;
	v = *p + klen + 1;
	*nl = '\0';
	*p = nl + 1;
	return v;
}

static int
spool_qnote_parse(char *p, struct spool_qnote *qn)
{
	char *t, *c, *r, *end;

	if (strncmp(p, SPOOL_QNOTE_MAGIC, strlen(SPOOL_QNOTE_MAGIC)) != 0)
		return SPOOL_EFORMAT;
	p += strlen(SPOOL_QNOTE_MAGIC);
	if ((t = spool_qnote_field(&p, "time")) == NULL ||
	    (c = spool_qnote_field(&p, "count")) == NULL ||
	    (r = spool_qnote_field(&p, "reason")) == NULL)
		return SPOOL_EFORMAT;
	errno = 0;
	qn->qn_time = strtoll(t, &end, 10);
	if (errno != 0 || *end != '\0' || end == t)
		return SPOOL_EFORMAT;
	qn->qn_count = (unsigned)strtoul(c, &end, 10);
	if (*end != '\0' || end == c ||
	    str_copy(qn->qn_reason, sizeof(qn->qn_reason), r) == -1)
		return SPOOL_EFORMAT;
	return 0;
}

int
spool_qnote_read(const char *spool_dir, const char *qid,
    struct spool_qnote *qn_r)
{
	char	    path[4200], data[SPOOL_QNOTE_MAX + 1];
	struct stat st;
	ssize_t	    n;
	int	    fd, rc;

	if ((rc = spool_qnote_path(path, sizeof(path), spool_dir, qid,
		 false)) != 0)
		return rc;
	/* root reads a directory spoold's user writes: no link, no FIFO */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) ==
	    -1)
		return errno;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		n = -1;
	else
		n = fsx_read_full(fd, data, SPOOL_QNOTE_MAX);
	(void)close(fd); /* read-only */
	if (n < 0)
		return SPOOL_EFORMAT;
	data[n] = '\0';
	return spool_qnote_parse(data, qn_r);
}

int
spool_qnote_remove(const char *spool_dir, const char *qid)
{
	char path[4200];
	int  rc;

	if ((rc = spool_qnote_path(path, sizeof(path), spool_dir, qid,
		 false)) != 0)
		return rc;
	return unlink(path) == -1 && errno != ENOENT ? errno : 0;
}
