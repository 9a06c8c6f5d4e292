#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "qid.h"

static pid_t	qid_pid;
static uint32_t qid_seq;
static uint64_t qid_last_us;

void
qid_make(char qid[QID_SIZE])
{
	struct timespec ts;
	uint64_t	us;
	uint32_t	r;

	if (qid_pid != getpid()) {
		/* new process (or fork): a fresh random start for the counter */
		qid_pid = getpid();
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)qid_pid * 2654435761u ^
			    (uint32_t)time(NULL);
		qid_seq = r;
		qid_last_us = 0;
	}
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	qid_seq++;
	/*
	 * IDs of one process only ever increase: a clock stepped back reuses
	 * the last time (the counter keeps them apart), and a counter that
	 * wraps within one microsecond moves to the next.
	 */
	if (us < qid_last_us)
		us = qid_last_us;
	if (us == qid_last_us && (qid_seq & 0xFFFFFFFu) == 0)
		us++;
	qid_last_us = us;
	(void)snprintf(qid, QID_SIZE, "%013llX%07X",
	    (unsigned long long)(us & 0xFFFFFFFFFFFFFULL),
	    (unsigned)(qid_seq & 0xFFFFFFFu));
}

bool
qid_ok(const char *s)
{
	size_t i;

	for (i = 0; i < QID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return s[QID_LEN] == '\0';
}

uint64_t
qid_time_us(const char *s)
{
	uint64_t v = 0;
	size_t	 i;

	for (i = 0; i < 13 && s[i] != '\0'; i++)
		v = v * 16 +
		    (uint64_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'A' + 10);
	return v;
}
