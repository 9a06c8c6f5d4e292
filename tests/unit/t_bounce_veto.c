/*
 * Which failed replies put a recipient on the suppression list: each
 * real-world reply below is classified with the shipped contrib/bounce-rules
 * (and with the built-in fallbacks only, as with an empty
 * bounce_rules_file), then bounce_suppress_veto decides. Only a
 * permanent, recipient-specific failure suppresses; policy, reputation,
 * content, size, quota, sender and connection refusals never do, whatever
 * category a rule gives them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "tap.h"

#define FROM "news@shop.example"
#define RCPT "bob@example.net"
#define SRC  "192.0.2.25"

struct vcase {
	enum bounce_stage st;
	bool		  shared; /* a DATA reply to several recipients */
	bool		  want;	  /* suppresses */
	const char	 *reply;
};

/* Sources: tests/data/bounce-corpus's providers, Postfix/Exim/Sendmail
 * sources, KumoMTA's published bounce classifier facts. */
static const struct vcase vcases[] = {
	/* recipient-level permanent failures: suppress */
	{ BOUNCE_ST_RCPT, false, true,
	    "550-5.1.1 The email account that you tried to reach does not "
	    "exist. Please try double-checking the recipient's email address "
	    "for typos or unnecessary spaces. For more information, go to "
	    "https://support.google.com/mail/?p=NoSuchUser - gsmtp" },
	{ BOUNCE_ST_RCPT, false, true,
	    "550 5.2.1 The email account that you tried to reach is "
	    "disabled. - gsmtp" },
	{ BOUNCE_ST_RCPT, false, true,
	    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
	    "bob@example.net not found by SMTP address lookup" },
	{ BOUNCE_ST_RCPT, false, true,
	    "550 5.1.1 <bob@example.net>: Recipient address rejected: User "
	    "unknown in virtual mailbox table" },
	{ BOUNCE_ST_RCPT, false, true,
	    "550 5.1.1 <bob@example.net>: Recipient address rejected: User "
	    "unknown in relay recipient table" },
	{ BOUNCE_ST_RCPT, false, true,
	    "550 5.2.1 <bob@example.net>... Addressee unknown, "
	    "relay=[192.0.2.25]" },
	{ BOUNCE_ST_RCPT, false, true, "550 No Such User Here" },
	{ BOUNCE_ST_RCPT, false, true,
	    "550 sorry, no mailbox here by that name. (#5.1.1)" },
	{ BOUNCE_ST_RCPT, false, true,
	    "550 Message was not accepted -- invalid mailbox.  Local mailbox "
	    "bob@mail.ru is unavailable: user not found" },
	{ BOUNCE_ST_DATA, false, true,
	    "554 delivery error: dd This user doesn't have a yahoo.com "
	    "account (bob@yahoo.com) [-5] - mta123.mail.mud.yahoo.com" },
	{ BOUNCE_ST_CONNECT, false, true,
	    "550 5.1.2 Host or domain name not found: example.net: NXDOMAIN" },
	/* policy, reputation, relaying: never */
	{ BOUNCE_ST_RCPT, false, false,
	    "554 5.7.1 Service unavailable; Client host [192.0.2.25] blocked "
	    "using zen.spamhaus.org" },
	{ BOUNCE_ST_RCPT, false, false,
	    "550 5.7.1 <bob@example.net>: Recipient address rejected: "
	    "Access denied" },
	{ BOUNCE_ST_RCPT, false, false,
	    "554 5.7.1 <bob@example.net>: Relay access denied" },
	{ BOUNCE_ST_RCPT, false, false, "554 Relay access denied" },
	{ BOUNCE_ST_RCPT, false, false, "550 relaying denied" },
	{ BOUNCE_ST_DATA, false, false,
	    "550 5.7.26 Unauthenticated email from shop.example is not "
	    "accepted due to domain's DMARC policy." },
	{ BOUNCE_ST_RCPT, false, false, "550 5.7.1 No such user!" },
	{ BOUNCE_ST_RCPT, false, false,
	    "550 5.7.606 Access denied, banned sending IP [192.0.2.25]." },
	/* the sender, at RCPT (Postfix delays sender checks to RCPT) */
	{ BOUNCE_ST_RCPT, false, false,
	    "550 5.1.0 <news@shop.example>: Sender address rejected: User "
	    "unknown in local recipient table" },
	{ BOUNCE_ST_RCPT, false, false,
	    "553 5.1.8 <news@shop.example>: Sender address rejected: Domain "
	    "not found" },
	{ BOUNCE_ST_RCPT, false, false,
	    "550 5.1.1 news@shop.example: user unknown" },
	{ BOUNCE_ST_RCPT, false, false,
	    "550 5.1.1 Unknown user; mail from 192.0.2.25 refused" },
	{ BOUNCE_ST_RCPT, false, false,
	    "550 User unknown - envelope sender news@shop.example does not "
	    "exist" },
	/* content, size, quota */
	{ BOUNCE_ST_DATA, false, false,
	    "550 5.7.1 Message rejected as spam by content filter" },
	{ BOUNCE_ST_DATA, false, false,
	    "554 5.6.0 Message contains invalid header" },
	{ BOUNCE_ST_DATA, false, false,
	    "552 5.3.4 Message size exceeds fixed limit" },
	{ BOUNCE_ST_RCPT, false, false,
	    "552 5.2.2 <bob@example.net>: Recipient address rejected: "
	    "Mailbox full" },
	{ BOUNCE_ST_RCPT, false, false,
	    "550 5.2.2 The email account that you tried to reach is over "
	    "quota." },
	{ BOUNCE_ST_RCPT, false, false,
	    "552 Requested mail action aborted: exceeded storage allocation" },
	{ BOUNCE_ST_RCPT, false, false,
	    "550 5.1.1 User unknown; mailbox temporarily disabled, try again "
	    "later" },
	/* the whole message at end of data */
	{ BOUNCE_ST_DATA, true, false,
	    "550 5.1.1 <bob@example.net>: Recipient address rejected: User "
	    "unknown" },
	{ BOUNCE_ST_DATA, true, false,
	    "554 delivery error: dd This user doesn't have a yahoo.com "
	    "account (bob@yahoo.com) [-5] - mta123.mail.mud.yahoo.com" },
	/* a mailbox-unknown text at MAIL FROM, HELO or the greeting */
	{ BOUNCE_ST_MAIL, false, false, "550 5.1.1 User unknown" },
	{ BOUNCE_ST_GREETING, false, false, "554 5.1.1 No such user" },
	{ BOUNCE_ST_HELO, false, false, "550 5.1.1 User unknown" },
	/* temporary and expired */
	{ BOUNCE_ST_RCPT, false, false,
	    "450 4.1.1 <bob@example.net>: Recipient address rejected: User "
	    "unknown" },
	{ BOUNCE_ST_RCPT, false, false,
	    "554 5.4.7 Message expired after 432000 seconds in the queue; "
	    "last reply: 450 4.2.1 mailbox unavailable" },
};

static void
t_table(const struct bounce_rules *rs, const char *what)
{
	struct bounce_ctx   bc = { .bc_rcpt = RCPT,
		  .bc_sender = FROM,
		  .bc_srcip = SRC };
	const struct vcase *c;
	enum bounce_cat	    cat;
	const char	   *why;
	size_t		    i;

	for (i = 0; i < sizeof(vcases) / sizeof(vcases[0]); i++) {
		c = &vcases[i];
		bc.bc_shared = c->shared;
		cat = bounce_classify(rs, c->st, c->reply);
		why = bounce_suppress_veto(cat, c->st, c->reply, &bc);
		if (!c->want && why == NULL)
			t_ok(false,
			    "%s: suppressed (category %s, stage %s): %s", what,
			    bounce_cat_name(cat), bounce_stage_name(c->st),
			    c->reply);
		else if (c->want && rs != NULL)
			t_ok(why == NULL, "%s: suppresses (%s): %s", what,
			    why ? why : "ok", c->reply);
		else
			t_ok(true, "%s: %s", what, c->reply);
	}
}

static void
t_shipped(void)
{
	const char	    *src = getenv("SMTPGATE_SRCDIR");
	char		     path[4096], err[512];
	struct bounce_rules *rs;

	(void)snprintf(path, sizeof(path), "%s/contrib/bounce-rules",
	    src ? src : ".");
	rs = bounce_rules_load(path, err, sizeof(err));
	if (!t_ok(rs != NULL, "the shipped rules load: %s", rs ? path : err))
		return;
	t_table(rs, "shipped rules");
	bounce_rules_free(rs);
}

/* Without rules nothing that must not suppress may (the fallbacks know
 * less, so some recipient failures are only "other": not checked). */
static void
t_fallbacks(void)
{
	t_table(NULL, "fallbacks");
}

/* An operator's rule that calls anything bad-mailbox cannot lift a veto. */
static void
t_rule_cannot_lift(void)
{
	static const char    text[] = "bad-mailbox code=5xx\n";
	struct bounce_ctx    bc = { .bc_rcpt = RCPT, .bc_sender = FROM };
	struct bounce_rules *rs;
	char		     err[128];
	const char	    *r1 = "554 5.7.1 Message refused by policy";
	const char	    *r2 = "550 Your IP is on our block list";

	rs = bounce_rules_parse(text, sizeof(text) - 1, "t", err, sizeof(err));
	if (!t_ok(rs != NULL, "parse: %s", rs ? "ok" : err))
		return;
	t_int_eq(bounce_classify(rs, BOUNCE_ST_RCPT, r1), BOUNCE_BAD_MAILBOX,
	    "the rule matches");
	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT, r1,
		 &bc) != NULL,
	    "5.7.1 still vetoed");
	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT, r2,
		 &bc) != NULL,
	    "block list still vetoed");
	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT,
		 "550 5.1.1 user unknown", &bc) == NULL,
	    "a plain 5.1.1 suppresses");
	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT,
		 "550 5.1.1 user unknown", NULL) == NULL,
	    "no context");
	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT, "",
		 &bc) != NULL,
	    "empty reply");
	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT, NULL,
		 &bc) != NULL,
	    "NULL reply");
	bounce_rules_free(rs);
}

/* The reply names the recipient as well as our address: the recipient. */
static void
t_names(void)
{
	struct bounce_ctx bc = { .bc_rcpt = "Bob@Example.NET",
		.bc_sender = "News@Shop.Example",
		.bc_srcip = SRC };

	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT,
		 "550 5.1.1 unknown: NEWS@shop.example", &bc) != NULL,
	    "sender named in another case");
	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT,
		 "550 5.1.1 bob@example.net unknown (from 192.0.2.25)",
		 &bc) == NULL,
	    "recipient and our address named");
	t_ok(bounce_suppress_veto(BOUNCE_BAD_MAILBOX, BOUNCE_ST_RCPT,
		 "550 5.1.1 unknown (from 192.0.2.25)", &bc) != NULL,
	    "only our address named");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "shipped", t_shipped },
		{ "fallbacks", t_fallbacks },
		{ "rule_cannot_lift", t_rule_cannot_lift },
		{ "names", t_names },
	};

	return T_RUN(cases);
}
