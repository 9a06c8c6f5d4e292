/*
 * Unit tests for common/arf (feedback-loop reports, RFC 5965): reports in
 * the shapes providers send (tests/unit/data/arf/: Yahoo's full original
 * with Original-Rcpt-To, Mail.ru's text/rfc822-headers with the recipient
 * in To:, RFC 5965's example with "rfc822;" and a base64 original) and
 * malformed ones, each with its status; every prefix of a good report
 * (a truncated transfer) is parsed without a crash.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arf.h"
#include "tap.h"

static char *
slurp(const char *name, size_t *len_r)
{
	char	 rel[256], *d;

	(void)snprintf(rel, sizeof(rel), "tests/unit/data/arf/%s", name);
	if ((d = t_read_src(rel, len_r)) == NULL)
		abort();
	return d;
}

static enum arf_status
parse(const char *name, struct arf_report *r)
{
	size_t		 len;
	char		*d = slurp(name, &len);
	enum arf_status	 st = arf_parse(d, len, r);

	free(d);
	return st;
}

static void
t_yahoo(void)
{
	struct arf_report	r;

	t_int_eq(parse("yahoo.eml", &r), ARF_OK, "Yahoo: ok");
	t_str_eq(r.ar_type, "abuse", "Feedback-Type");
	t_str_eq(r.ar_rcpt, "ann@dest.example", "Original-Rcpt-To without <>");
	t_str_eq(r.ar_message_id, "<1234.5678@acme.example>", "the original's Message-Id");
	t_str_eq(r.ar_user_agent, "Yahoo!-Mail-Feedback/2.0", "User-Agent");
	t_str_eq(r.ar_source_ip, "192.0.2.1", "Source-IP");
}

static void
t_mailru(void)
{
	struct arf_report	r;

	t_int_eq(parse("mailru.eml", &r), ARF_OK, "Mail.ru: ok");
	t_str_eq(r.ar_rcpt, "bob@dest.example", "no Original-Rcpt-To: the one To:");
	t_str_eq(r.ar_message_id, "<abc@acme.example>", "from text/rfc822-headers");
}

static void
t_rfc5965(void)
{
	struct arf_report	r;

	t_int_eq(parse("rfc5965.eml", &r), ARF_OK, "RFC 5965 example: ok");
	t_str_eq(r.ar_type, "abuse", "Feedback-Type lower-cased");
	t_str_eq(r.ar_rcpt, "Carl@Dest.Example", "\"rfc822;\" dropped");
	t_str_eq(r.ar_message_id, "<1234.5678@acme.example>", "base64 original decoded");
}

static void
t_malformed(void)
{
	struct arf_report	r;

	t_int_eq(parse("not_report.eml", &r), ARF_ENOTREPORT, "text/plain");
	t_int_eq(parse("no_feedback.eml", &r), ARF_ENOFEEDBACK, "no feedback part");
	t_int_eq(parse("no_msgid.eml", &r), ARF_ENOMSGID, "original without Message-Id");
	t_int_eq(parse("truncated.eml", &r), ARF_ENOFEEDBACK, "cut inside the report");
	t_int_eq(arf_parse("", 0, &r), ARF_EMIME, "empty");
	t_int_eq(arf_parse("x", (size_t)ARF_MAX + 1, &r), ARF_ETOOBIG, "too big (not read)");
	t_ok(strcmp(arf_strerror(ARF_ENORCPT), "unknown") != 0, "every status has a text");
}

/* Every prefix of a good report, and the report with bytes flipped. */
static void
t_prefixes(void)
{
	struct arf_report	 r;
	size_t			 len, i, ok = 0;
	char			*d = slurp("yahoo.eml", &len), *copy;

	for (i = 0; i <= len; i += 7)
		ok += arf_parse(d, i, &r) == ARF_OK;
	t_ok(ok < len / 7, "prefixes parse without a crash (%zu complete enough)", ok);
	copy = malloc(len);
	for (i = 0; copy != NULL && i < len; i += 13) {
		memcpy(copy, d, len);
		copy[i] = (char)(copy[i] ^ 0x5a);
		(void)arf_parse(copy, len, &r);
	}
	t_ok(copy != NULL, "flipped bytes parse without a crash");
	free(copy);
	free(d);
}

int
main(void)
{
	static const struct t_case	cases[] = {
		{ "yahoo", t_yahoo },
		{ "mailru", t_mailru },
		{ "rfc5965", t_rfc5965 },
		{ "malformed", t_malformed },
		{ "prefixes", t_prefixes },
	};

	return T_RUN(cases);
}
