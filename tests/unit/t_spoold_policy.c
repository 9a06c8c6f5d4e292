/*
 * Unit tests for spoold/spoold_policy: a table of header blocks and
 * account settings with the CONTRACT text each must produce, and the
 * per-recipient rules, through a table-backed lookup (no LMDB).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "spoold_policy.h"
#include "tap.h"

#define REQ \
	"Message-Id: <1@x>\r\nDate: Sun, 29 Nov 2026 16:04:05 +0000\r\n" \
	"From: Sender <s@example.com>\r\nTo: r@example.net\r\nSubject: hi\r\n" \
	"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"

#define REQ_NOFROM \
	"Message-Id: <1@x>\r\nDate: Sun, 29 Nov 2026 16:04:05 +0000\r\n" \
	"To: r@example.net\r\nSubject: hi\r\nMIME-Version: 1.0\r\n" \
	"Content-Type: text/plain\r\n"

/* ---- the mock lookup: senders, stoplist, permfail */
static const struct {
	const char		*key;
	enum spool_sender_status st;
} senders[] = {
	{ "ok@example.com", SPOOL_SENDER_APPROVED },
	{ "mod@example.com", SPOOL_SENDER_ONMODERATION },
	{ "bad@example.com", SPOOL_SENDER_PROHIBITED },
	{ "@approved.org", SPOOL_SENDER_APPROVED },
	{ "@moddom.org", SPOOL_SENDER_ONMODERATION },
	{ "@baddom.org", SPOOL_SENDER_PROHIBITED },
	{ "over@baddom.org", SPOOL_SENDER_APPROVED }, /* the address wins */
};

static int
mock_sender(void *arg, const char *key, enum spool_sender_status *st_r)
{
	size_t i;

	(void)arg;
	for (i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		if (str_ieq(senders[i].key, key)) {
			*st_r = senders[i].st;
			return 0;
		}
	}
	return SPOOL_ENOTFOUND;
}

static bool
mock_stop(void *arg, const char *addr)
{
	(void)arg;
	return str_ieq(addr, "stopped@example.net");
}

static bool
mock_permfail(void *arg, const char *addr)
{
	(void)arg;
	return str_ieq(addr, "dead@example.net") ||
	    str_ieq(addr, "stopped@example.net");
}

static const struct spoold_lookup lk = { NULL, mock_sender, mock_stop,
	mock_permfail };

struct pcase {
	const char	  *what;
	const char	  *hdrs;
	enum spool_senders senders;
	const char	  *want; /* NULL = passes */
};

static const struct pcase cases[] = {
	{ "complete", REQ "\r\nbody", SPOOL_SENDERS_ANY, NULL },
	{ "no Message-Id",
	    "Date: x\r\nFrom: a@b.c\r\nTo: d@e.f\r\nSubject: "
	    "s\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no Message-Id:" },
	{ "no Date",
	    "Message-Id: <1@x>\r\nFrom: a@b.c\r\nTo: d@e.f\r\nSubject: "
	    "s\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no Date:" },
	{ "no From",
	    "Message-Id: <1@x>\r\nDate: x\r\nTo: d@e.f\r\nSubject: "
	    "s\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no From:" },
	{ "no To",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: a@b.c\r\nSubject: "
	    "s\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no To:" },
	{ "no Subject",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: a@b.c\r\nTo: "
	    "d@e.f\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no Subject:" },
	{ "no MIME-Version",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: a@b.c\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "Content-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no MIME-Version:" },
	{ "no Content-Type",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: a@b.c\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no Content-Type:" },
	{ "names are case-insensitive",
	    "message-id: <1@x>\r\nDATE: x\r\nfrom: a@b.c\r\nto: "
	    "d@e.f\r\nsubject: s\r\n"
	    "mime-version: 1.0\r\ncontent-type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, NULL },
	{ "first missing wins (To and Subject)",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: a@b.c\r\nMIME-Version: "
	    "1.0\r\n"
	    "Content-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no To:" },
	{ "header in the body does not count",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: a@b.c\r\nSubject: "
	    "s\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain\r\n\r\nTo: d@e.f\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no To:" },
	{ "a second (empty) From", REQ "From: \r\n\r\n", SPOOL_SENDERS_ANY,
	    "635 6.7.8 multiple From:" },
	{ "From without address",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: Just A Name\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no email in From:" },
	{ "From empty value",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom:\r\nTo: d@e.f\r\nSubject: "
	    "s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no email in From:" },
	{ "From <>",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: Name <>\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 no email in From:" },
	{ "good campaign and letter",
	    REQ "X-Campaign-Id: spring_sale-2026\r\n"
		"X-Letter-Id: L-1\r\n\r\n",
	    SPOOL_SENDERS_ANY, NULL },
	{ "bad campaign (space)", REQ "X-Campaign-Id: spring sale\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad X-Campaign-Id" },
	{ "bad campaign (empty)", REQ "X-Campaign-Id:\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad X-Campaign-Id" },
	{ "bad campaign (dot)", REQ "x-campaign-id: a.b\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad X-Campaign-Id" },
	{ "bad letter", REQ "X-Letter-Id: a/b\r\n\r\n", SPOOL_SENDERS_ANY,
	    "635 6.7.8 bad X-Letter-Id" },
	{ "campaign checked before letter",
	    REQ "X-Letter-Id: a/b\r\nX-Campaign-Id: a b\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad X-Campaign-Id" },
	{ "senders any: unknown sender passes", REQ "\r\n", SPOOL_SENDERS_ANY,
	    NULL },
	{ "registered: unknown",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: who@nowhere.org\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 error/sender/unknown" },
	{ "registered: approved address",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: OK <ok@example.com>\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, NULL },
	{ "registered: onmoderation",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: mod@example.com\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 error/sender/onmoderation" },
	{ "registered: prohibited",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: bad@example.com\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 error/sender/prohibited" },
	{ "registered: approved domain",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: any@approved.org\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, NULL },
	{ "registered: domain onmoderation",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: x@MODDOM.org\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 error/sender/onmoderation" },
	{ "registered: domain prohibited",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: x@baddom.org\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 error/sender/prohibited" },
	{ "registered: address beats domain",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: over@baddom.org\r\nTo: "
	    "d@e.f\r\nSubject: s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, NULL },
	/* issue 14 item 3: the whole From: is checked, not its first mailbox */
	{ "registered: two From fields",
	    REQ_NOFROM "From: ok@example.com\r\n"
		       "From: ceo@victim.test\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 multiple From:" },
	{ "registered: two mailboxes, no Sender",
	    REQ_NOFROM "From: ok@example.com, ceo@victim.test\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED,
	    "635 6.7.8 multiple mailboxes in From: without Sender:" },
	{ "registered: address then junk",
	    REQ_NOFROM "From: <ok@example.com> ceo@victim.test\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 bad From:" },
	{ "registered: two angle addresses",
	    REQ_NOFROM "From: Boss <ok@example.com> <ceo@victim.test>\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 bad From:" },
	{ "any: the same forms are refused",
	    REQ_NOFROM "From: Boss <ok@example.com> <ceo@victim.test>\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad From:" },
	{ "an address as the display name",
	    REQ_NOFROM "From: ceo@victim.test <ok@example.com>\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad From:" },
	{ "a group in From", REQ_NOFROM "From: all: ok@example.com;\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad From:" },
	{ "a mailbox without address beside one",
	    REQ_NOFROM "From: boss, ok@example.com\r\n\r\n", SPOOL_SENDERS_ANY,
	    "635 6.7.8 bad From:" },
	{ "two mailboxes with a Sender, both approved",
	    REQ_NOFROM "From: ok@example.com, x@approved.org\r\nSender: "
		       "ok@example.com\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, NULL },
	{ "with a Sender, every From mailbox is checked",
	    REQ_NOFROM "From: ok@example.com, ceo@victim.test\r\nSender: "
		       "ok@example.com\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 error/sender/unknown" },
	{ "with a Sender, the Sender is checked too",
	    REQ_NOFROM "From: ok@example.com, x@approved.org\r\nSender: "
		       "bad@example.com\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 error/sender/prohibited" },
	{ "Sender with two mailboxes",
	    REQ_NOFROM "From: ok@example.com, x@approved.org\r\nSender: "
		       "ok@example.com, x@approved.org"
		       "\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad Sender:" },
	{ "two Sender fields",
	    REQ_NOFROM
	    "From: ok@example.com, x@approved.org\r\nSender: ok@example.com\r\n"
	    "Sender: x@approved.org\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 bad Sender:" },
	{ "one From mailbox: Sender not needed",
	    REQ_NOFROM "From: ok@example.com\r\nSender: junk junk\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, NULL },
	{ "nine From mailboxes",
	    REQ_NOFROM
	    "From: a@approved.org, b@approved.org, "
	    "c@approved.org, d@approved.org, e@approved.org, f@approved.org, "
	    "g@approved.org, "
	    "h@approved.org, i@approved.org\r\nSender: ok@example.com\r\n\r\n",
	    SPOOL_SENDERS_ANY, "635 6.7.8 too many mailboxes in From:" },
	{ "eight From mailboxes, all checked",
	    REQ_NOFROM
	    "From: a@approved.org, "
	    "b@approved.org, c@approved.org, d@approved.org, e@approved.org, "
	    "f@approved.org, "
	    "g@approved.org, h@nowhere.org\r\nSender: ok@example.com\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 error/sender/unknown" },
	{ "registered: header checks come first",
	    "Message-Id: <1@x>\r\nDate: x\r\nFrom: who@nowhere.org\r\nTo: "
	    "d@e.f\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
	    SPOOL_SENDERS_REGISTERED, "635 6.7.8 no Subject:" },
};

static void
t_message(void)
{
	struct spoold_hdrinfo h;
	const char	     *text;
	size_t		      i;
	int		      rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		spoold_hdrinfo_parse(&h, cases[i].hdrs, strlen(cases[i].hdrs),
		    65536);
		rc = spoold_policy_message(&h, cases[i].senders, &lk, &text);
		t_ok(rc == 0, "%s: rc", cases[i].what);
		t_str_eq(text ? text : "(pass)",
		    cases[i].want ? cases[i].want : "(pass)", cases[i].what);
	}
}

static void
t_limits(void)
{
	struct spoold_hdrinfo h;
	const char	     *text;
	char		      big[4096];

	snprintf(big, sizeof(big), REQ "X-Long: %01000d\r\n\r\n", 0);
	spoold_hdrinfo_parse(&h, big, strlen(big), 65536);
	spoold_policy_message(&h, SPOOL_SENDERS_ANY, &lk, &text);
	t_str_eq(text, SPOOLD_T_HDRLINE, "line over 998 bytes");
	spoold_hdrinfo_parse(&h, big, strlen(big), 200);
	spoold_policy_message(&h, SPOOL_SENDERS_ANY, &lk, &text);
	t_str_eq(text, SPOOLD_T_HDRSIZE, "header block over max_header_size");
}

static void
t_facts(void)
{
	struct spoold_hdrinfo h;
	const char	     *m =
	    "Message-Id:  <abc@x.y> \r\nSubject: =?utf-8?q?x?= \x01\xff ok\r\n"
	    "From: \"A, B\" <a@b.c>\r\nFrom: other@x.y\r\nX-Campaign-Id: c1\r\n"
	    "X-Letter-Id: L_9\r\n\r\n";

	spoold_hdrinfo_parse(&h, m, strlen(m), 65536);
	t_str_eq(h.sh_message_id, "<abc@x.y>", "message id trimmed");
	t_str_eq(h.sh_subject, "=?utf-8?q?x?= ?? ok",
	    "subject cleaned for JSON");
	t_str_eq(h.sh_from, "a@b.c", "first From: address");
	t_ok(h.sh_campaign_ok && strcmp(h.sh_campaign, "c1") == 0, "campaign");
	t_ok(h.sh_letter_ok && strcmp(h.sh_letter, "L_9") == 0, "letter");
	t_ok(spoold_name_ok("a", 1) && !spoold_name_ok("", 0),
	    "name length 1..255");
	{
		char n[300];

		memset(n, 'a', sizeof(n));
		t_ok(spoold_name_ok(n, 255) && !spoold_name_ok(n, 256),
		    "255 ok, 256 not");
	}
}

static void
t_rcpt(void)
{
	const char *t;

	t = spoold_policy_rcpt(&lk, "fine@example.net");
	t_ok(t == NULL, "ordinary recipient passes");
	t_str_eq(spoold_policy_rcpt(&lk, "Stopped@Example.NET"),
	    SPOOLD_T_STOPLIST, "stoplist (checked before permfail)");
	t_str_eq(spoold_policy_rcpt(&lk, "dead@example.net"), SPOOLD_T_PERMFAIL,
	    "permanent failures");
}

int
main(void)
{
	static const struct t_case tc[] = {
		{ "message policy table", t_message },
		{ "header limits", t_limits },
		{ "header facts", t_facts },
		{ "recipient policy", t_rcpt },
	};

	return T_RUN(tc);
}
