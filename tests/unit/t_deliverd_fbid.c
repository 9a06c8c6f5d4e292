/* Unit tests for deliverd_fbid.c: what an identifier may hold in the
 * Feedback-ID field (a colon, whitespace, CR/LF, non-ASCII, length), when a
 * message has a field of its own, and the line made for a message. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "deliverd_fbid.h"
#include "spool.h"
#include "tap.h"

static void
t_fbid_field(void)
{
	static const struct {
		const char *in, *want;
	} c[] = {
		{ "acc", "acc" },
		{ "Acc.9_x-y", "Acc.9_x-y" },
		{ "a:b", "a_b" },
		{ "a b\tc", "a_b_c" },
		{ "x\r\nFeedback-ID: 1:2:3", "x__Feedback-ID__1_2_3" },
		{ "caf\xc3\xa9", "caf__" },
		{ "u@example.com", "u_example.com" },
		{ "", "_" },
		{ "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"
		  "LL"
		  "LLLLLLLLLL",
		    "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"
		    "LL"
		    "LLLL" },
	};
	char   out[DELIVERD_FBID_FIELD_MAX + 1], small[4], what[32];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		deliverd_fbid_field(c[i].in, out, sizeof(out));
		(void)snprintf(what, sizeof(what), "case %zu", i);
		t_str_eq(out, c[i].want, what);
	}
	deliverd_fbid_field("abcdef", small, sizeof(small));
	t_str_eq(small, "abc", "cut to the buffer");
}

static void
t_fbid_present(void)
{
	static const struct {
		const char *msg;
		bool	    present;
	} c[] = {
		{ "From: a@b\r\nFeedback-ID: 1:2:x\r\n\r\nbody\r\n", true },
		{ "From: a@b\r\nfeedback-id : 1:2:x\r\n\r\nbody\r\n", true },
		{ "FEEDBACK-ID:\r\n 1:2:x\r\nFrom: a@b\r\n\r\n", true },
		{ "From: a@b\r\nX-Feedback-ID: 1\r\n\r\nbody\r\n", false },
		{ "From: a@b\r\nSubject: Feedback-ID: 1\r\n\r\nbody\r\n",
		    false },
		{ "From: a@b\r\n\r\nFeedback-ID: 1:2:x\r\n", false },
		{ "From: a@b\nFeedback-ID: 1:2:x\n\nbody\n", true },
		{ "From: a@b\r\n", false },
	};
	char   big[3000];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		t_ok(deliverd_fbid_present(c[i].msg, strlen(c[i].msg), 1024) ==
			c[i].present,
		    "case %zu: %s", i, c[i].present ? "present" : "absent");
	/* a header block over the limit: as good as present (no second) */
	memset(big, 'x', sizeof(big));
	memcpy(big, "X-Long: ", 8);
	memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
	t_ok(deliverd_fbid_present(big, sizeof(big), 1024),
	    "a block over max_header_size counts as present");
}

static void
t_fbid_line(void)
{
	static const char msg[] = "From: a@b\r\nSubject: s\r\n\r\nbody\r\n";
	static const char own[] = "Feedback-ID: a:b\r\n\r\nbody\r\n";
	struct spool_msg  m;
	char		  line[DELIVERD_FBID_LINE_MAX];

	memset(&m, 0, sizeof(m));
	m.sm_issue = UINT64_MAX;
	(void)str_copy(m.sm_login, sizeof(m.sm_login), "x:y\r\nZ: 1");
	deliverd_fbid_line("gw", &m, msg, strlen(msg), 1024, line,
	    sizeof(line));
	t_str_eq(line, "Feedback-ID: 18446744073709551615:x_y__Z__1:gw\r\n",
	    "issue:login:sender, CRLF");
	deliverd_fbid_line("", &m, msg, strlen(msg), 1024, line, sizeof(line));
	t_str_eq(line, "", "no sender: no field");
	deliverd_fbid_line("gw", &m, own, strlen(own), 1024, line,
	    sizeof(line));
	t_str_eq(line, "", "the message's own field: no second");
	memset(m.sm_login, 'L', sizeof(m.sm_login) - 1);
	m.sm_login[sizeof(m.sm_login) - 1] = '\0';
	deliverd_fbid_line("gw", &m, msg, strlen(msg), 1024, line,
	    sizeof(line));
	t_ok(strlen(line) ==
		strlen("Feedback-ID: 18446744073709551615::gw\r\n") +
		    DELIVERD_FBID_FIELD_MAX,
	    "the longest login fits (%zu bytes)", strlen(line));
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "field", t_fbid_field },
		{ "present", t_fbid_present },
		{ "line", t_fbid_line },
	};

	return T_RUN(cases);
}
