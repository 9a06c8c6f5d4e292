/* Unit tests for common/smtp_reply: a case table, the same cases fed one
 * byte at a time, limits, and EHLO keyword lookup. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"
#include "tap.h"

struct rcase {
	const char	      *in; /* raw bytes, CRLF line ends */
	enum smtp_reply_status st;
	int		       code;
	const char	      *enh;
	const char	      *text; /* folded text, NULL = don't check */
};

static const struct rcase cases[] = {
	{ .in = "250 OK\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 250,
	    .enh = "",
	    .text = "250 OK" },
	{ .in = "250 2.0.0 Ok: queued as X\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 250,
	    .enh = "2.0.0",
	    .text = "250 2.0.0 Ok: queued as X" },
	{ .in = "550-5.1.1 The email account that you tried\r\n"
		"550-5.1.1 to reach does not exist.\r\n550 5.1.1 Try again\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 550,
	    .enh = "5.1.1",
	    .text = "550 5.1.1 The email account that you tried to reach does "
		    "not exist. Try again" },
	{ .in = "220\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 220,
	    .enh = "",
	    .text = "220" },
	{ .in = "451 4.7.1 greylisted\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 451,
	    .enh = "4.7.1",
	    .text = "451 4.7.1 greylisted" },
	{ .in = "250-a\r\n250 b\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 250,
	    .enh = "",
	    .text = "250 a b" },
	{ .in = "550 4.1.1 class mismatch\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 550,
	    .enh = "",
	    .text = "550 4.1.1 class mismatch" },
	{ .in = "550 5.1 short\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 550,
	    .enh = "" },
	{ .in = "250-first\r\n", .st = SMTP_REPLY_MORE },
	{ .in = "250-a\r\n251 b\r\n", .st = SMTP_REPLY_SYNTAX },
	{ .in = "hello\r\n", .st = SMTP_REPLY_SYNTAX },
	{ .in = "25\r\n", .st = SMTP_REPLY_SYNTAX },
	{ .in = "2500 x\r\n", .st = SMTP_REPLY_SYNTAX },
	{ .in = "150 x\r\n", .st = SMTP_REPLY_SYNTAX },
	{ .in = "650 x\r\n", .st = SMTP_REPLY_SYNTAX },
	{ .in = "25a x\r\n", .st = SMTP_REPLY_SYNTAX },
	{ .in = "354 End data with <CR><LF>.<CR><LF>\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 354,
	    .enh = "" },
	{ .in = "250 x\ty\r\n",
	    .st = SMTP_REPLY_DONE,
	    .code = 250,
	    .text = "250 x y" },
};

static void
t_check(const struct rcase *c, enum smtp_reply_status st,
    const struct smtp_reply *rp, const char *how)
{
	t_ok(st == c->st, "%s case %d: status %d want %d", how,
	    (int)(c - cases), st, c->st);
	if (st != SMTP_REPLY_DONE || c->st != SMTP_REPLY_DONE)
		return;
	t_int_eq(rp->rp_code, c->code, "code");
	if (c->enh != NULL)
		t_str_eq(rp->rp_enh, c->enh, "enhanced code");
	if (c->text != NULL)
		t_str_eq(rp->rp_text.data, c->text, "folded text");
}

static void
t_table(void)
{
	struct smtp_reply      rp;
	enum smtp_reply_status st;
	size_t		       i, used;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		smtp_reply_init(&rp, NULL);
		st = smtp_reply_feed(&rp, cases[i].in, strlen(cases[i].in),
		    &used);
		t_check(&cases[i], st, &rp, "whole");
		smtp_reply_release(&rp);
	}
}

static void
t_trickle(void)
{
	struct smtp_reply      rp;
	enum smtp_reply_status st = SMTP_REPLY_MORE;
	size_t		       i, j, used, len;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		smtp_reply_init(&rp, NULL);
		len = strlen(cases[i].in);
		for (j = 0; j < len; j++) {
			st = smtp_reply_feed(&rp, cases[i].in + j, 1, &used);
			if (st != SMTP_REPLY_MORE)
				break;
		}
		t_check(&cases[i], st, &rp, "trickle");
		smtp_reply_release(&rp);
	}
}

static void
t_pipelined(void)
{
	struct smtp_reply rp;
	const char	 *in = "250 2.1.0 Ok\r\n550 5.1.1 no\r\n354 go\r\n";
	size_t		  off = 0, used;
	const int	  want[] = { 250, 550, 354 };
	int		  k;

	smtp_reply_init(&rp, NULL);
	for (k = 0; k < 3; k++) {
		t_ok(smtp_reply_feed(&rp, in + off, strlen(in) - off, &used) ==
			SMTP_REPLY_DONE,
		    "pipelined reply %d", k);
		t_int_eq(rp.rp_code, want[k], "pipelined code");
		off += used;
	}
	t_int_eq((long long)off, (long long)strlen(in), "all consumed");
	smtp_reply_release(&rp);
}

static void
t_limits(void)
{
	struct smtp_reply_limits lim = { .max_line = 16,
		.max_lines = 3,
		.max_text = 20 };
	struct smtp_reply	 rp;
	size_t			 used;
	const char		*many = "250-a\r\n250-b\r\n250-c\r\n250 d\r\n";

	smtp_reply_init(&rp, &lim);
	t_ok(smtp_reply_feed(&rp, "250 0123456789abcdefgh\r\n", 24, &used) ==
		SMTP_REPLY_TOOLONG,
	    "line too long");
	smtp_reply_release(&rp);
	smtp_reply_init(&rp, &lim);
	t_ok(smtp_reply_feed(&rp, many, strlen(many), &used) ==
		SMTP_REPLY_TOOMANY,
	    "too many lines");
	smtp_reply_release(&rp);
	smtp_reply_init(&rp, &lim);
	t_ok(smtp_reply_feed(&rp, "250-0123456789\r\n250 0123456789\r\n", 32,
		 &used) == SMTP_REPLY_DONE &&
		rp.rp_cut && rp.rp_text.len <= 20,
	    "text cut at max_text");
	smtp_reply_release(&rp);
}

static void
t_ehlo(void)
{
	struct smtp_reply rp;
	const char	 *in =
	    "250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
	    "250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n";
	const char *arg;
	size_t	    used, al;

	smtp_reply_init(&rp, NULL);
	t_ok(smtp_reply_feed(&rp, in, strlen(in), &used) == SMTP_REPLY_DONE,
	    "ehlo parsed");
	t_ok(smtp_reply_ehlo_has(&rp, "pipelining", NULL, NULL), "PIPELINING");
	t_ok(smtp_reply_ehlo_has(&rp, "SIZE", &arg, &al) && al == 4 &&
		memcmp(arg, "1000", 4) == 0,
	    "SIZE 1000");
	t_ok(smtp_reply_ehlo_has(&rp, "SMTPUTF8", NULL, NULL),
	    "SMTPUTF8 on last line");
	t_ok(!smtp_reply_ehlo_has(&rp, "CHUNKING", NULL, NULL), "no CHUNKING");
	t_ok(!smtp_reply_ehlo_has(&rp, "mx.example", NULL, NULL),
	    "greeting line skipped");
	t_ok(!smtp_reply_ehlo_has(&rp, "8BIT", NULL, NULL),
	    "prefix is not a match");
	t_str_eq(smtp_reply_dsn(&rp), "2.0.0", "default dsn");
	smtp_reply_release(&rp);
}

static void
t_reset_drops_partial(void)
{
	struct smtp_reply rp;
	size_t		  used;

	smtp_reply_init(&rp, NULL);
	/* a peer sends half a line and disconnects */
	t_ok(smtp_reply_feed(&rp, "220-evil", 8, &used) == SMTP_REPLY_MORE,
	    "partial line");
	smtp_reply_reset(&rp);
	t_ok(smtp_reply_feed(&rp, "220 good ESMTP\r\n", 16, &used) ==
		SMTP_REPLY_DONE,
	    "next peer's greeting complete");
	t_str_eq(rp.rp_text.data, "220 good ESMTP", "nothing of the old peer");
	smtp_reply_release(&rp);
}

static const struct t_case t_cases[] = {
	{ "reset_drops_partial", t_reset_drops_partial },
	{ "table", t_table },
	{ "trickle", t_trickle },
	{ "pipelined", t_pipelined },
	{ "limits", t_limits },
	{ "ehlo", t_ehlo },
};

int
main(void)
{
	return T_RUN(t_cases);
}
