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
	char rel[256], *d;

	(void)snprintf(rel, sizeof(rel), "tests/unit/data/arf/%s", name);
	if ((d = t_read_src(rel, len_r)) == NULL)
		abort();
	return d;
}

static enum arf_status
parse(const char *name, struct arf_report *r)
{
	size_t		len;
	char	       *d = slurp(name, &len);
	enum arf_status st = arf_parse(d, len, r);

	free(d);
	return st;
}

/* A real report and the fields it must yield (NULL: not checked). */
struct sample {
	const char *file, *what;
	const char *type, *rcpt, *msgid, *ua, *ip;
};

static const struct sample samples[] = {
	{ "yahoo.eml", "Yahoo (Original-Rcpt-To without <>)", "abuse",
	    "ann@dest.example", "<1234.5678@acme.example>",
	    "Yahoo!-Mail-Feedback/2.0", "192.0.2.1" },
	{ "mailru.eml",
	    "Mail.ru (no Original-Rcpt-To: the one To:; the "
	    "Message-Id from text/rfc822-headers)",
	    NULL, "bob@dest.example", "<abc@acme.example>", NULL, NULL },
	{ "rfc5965.eml",
	    "RFC 5965 example (Feedback-Type lower-cased, "
	    "\"rfc822;\" dropped, base64 original decoded)",
	    "abuse", "Carl@Dest.Example", "<1234.5678@acme.example>", NULL,
	    NULL },
};

static void
field(const char *got, const char *want, const struct sample *s,
    const char *name)
{
	char what[128];

	(void)snprintf(what, sizeof(what), "%s: %s", s->file, name);
	if (want != NULL)
		t_str_eq(got, want, what);
}

static void
t_samples(void)
{
	struct arf_report r;
	size_t		  i;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *s = &samples[i];

		if (!t_int_eq(parse(s->file, &r), ARF_OK, s->what))
			continue;
		field(r.ar_type, s->type, s, "Feedback-Type");
		field(r.ar_rcpt, s->rcpt, s, "recipient");
		field(r.ar_message_id, s->msgid, s,
		    "the original's Message-Id");
		field(r.ar_user_agent, s->ua, s, "User-Agent");
		field(r.ar_source_ip, s->ip, s, "Source-IP");
	}
}

static void
t_malformed(void)
{
	struct arf_report r;

	t_int_eq(parse("not_report.eml", &r), ARF_ENOTREPORT, "text/plain");
	t_int_eq(parse("no_feedback.eml", &r), ARF_ENOFEEDBACK,
	    "no feedback part");
	t_int_eq(parse("no_msgid.eml", &r), ARF_ENOMSGID,
	    "original without Message-Id");
	t_int_eq(parse("truncated.eml", &r), ARF_ENOFEEDBACK,
	    "cut inside the report");
	t_int_eq(arf_parse("", 0, &r), ARF_EMIME, "empty");
	t_int_eq(arf_parse("x", (size_t)ARF_MAX + 1, &r), ARF_ETOOBIG,
	    "too big (not read)");
	t_ok(strcmp(arf_strerror(ARF_ENORCPT), "unknown") != 0,
	    "every status has a text");
}

/* Every prefix of a good report, and the report with bytes flipped. */
static void
t_prefixes(void)
{
	struct arf_report r;
	size_t		  len, i, ok = 0;
	char		 *d = slurp("yahoo.eml", &len), *copy;

	for (i = 0; i <= len; i += 7)
		ok += arf_parse(d, i, &r) == ARF_OK;
	t_ok(ok < len / 7,
	    "prefixes parse without a crash (%zu complete enough)", ok);
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

/* h-asupp: the queue ids of our Received lines in the original (newest
 * first); foreign Received lines and malformed ids are not ours. */
static void
t_qids(void)
{
	static const char fmt[] =
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=feedback-report; "
	    "boundary=\"b\"\r\n\r\n"
	    "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
	    "Feedback-Type: abuse\r\nOriginal-Rcpt-To: <bob@example.net>\r\n"
	    "\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
	    "%s"
	    "Message-ID: <m1@shop.example>\r\n\r\n--b--\r\n";
	static const struct {
		const char *hdrs;
		size_t	    n;
		const char *first;
	} cases[] = {
		{ "Received: from mx (mx [192.0.2.7]) by mx.example.net "
		  "(Postfix) with ESMTPS id 4Q1x2Y3z; Mon, 7 Dec 2026\r\n"
		  "Received: from client (unknown [192.0.2.1])\r\n"
		  "\tby gate.example (smtpgate) with ESMTPSA id "
		  "66210840022AC7177044\r\n\tfor <bob@example.net>; Mon, 7 "
		  "Dec 2026\r\n",
		    1, "66210840022AC7177044" },
		{ "Received: by gate.example (smtpgate-sendmail, from userid "
		  "0)\r\n\tid 6621083FFECCD7177040; Mon, 7 Dec 2026\r\n",
		    1, "6621083FFECCD7177040" },
		{ "Received: from a (smtpgate) with ESMTP id "
		  "00000000000000000001; x\r\n"
		  "Received: from b (smtpgate) with ESMTP id "
		  "00000000000000000002; x\r\n",
		    2, "00000000000000000001" },
		{ "Received: from a by b (Postfix) with ESMTP id "
		  "66210840022AC7177044; x\r\n",
		    0, NULL },
		{ "Received: from a (smtpgate) with ESMTP id 66210840022AC71; "
		  "x\r\n",
		    0, NULL },
		{ "Received: from a (smtpgate) with ESMTP id "
		  "66210840022AC7177044FF; x\r\n",
		    0, NULL },
		{ "", 0, NULL },
	};
	struct arf_report *r = calloc(1, sizeof(*r));
	char		   buf[2048];
	size_t		   i;

	for (i = 0; r != NULL && i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)snprintf(buf, sizeof(buf), fmt, cases[i].hdrs);
		t_int_eq(arf_parse(buf, strlen(buf), r), ARF_OK, "parses");
		t_int_eq((long long)r->ar_nqid, (long long)cases[i].n,
		    "number of our queue ids");
		if (cases[i].first != NULL)
			t_str_eq(r->ar_qid[0], cases[i].first, "the first");
	}
	free(r);
}

/* h-arfauth: tracking tokens, a 39-character base64url run after "/K/". */
static void
t_tokens_in(void)
{
	static const char  tok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi-_01";
	struct arf_report *r = calloc(1, sizeof(*r));
	char		   buf[4096];
	size_t		   i;

	if (r == NULL)
		abort();
	t_int_eq((long long)strlen(tok), ARF_TOKEN_LEN, "the sample's length");
	(void)snprintf(buf, sizeof(buf), "<https://t.example/u/%s>", tok);
	arf_tokens_in(buf, strlen(buf), "u", r);
	t_int_eq((long long)r->ar_ntoken, 1, "one in List-Unsubscribe");
	t_str_eq(r->ar_token[0], tok, "the token");
	t_int_eq(r->ar_token_kind[0], 'u', "its kind");
	arf_tokens_in(buf, strlen(buf), "u", r);
	t_int_eq((long long)r->ar_ntoken, 1, "the same token kept once");
	memset(r, 0, sizeof(*r));
	arf_tokens_in(buf, strlen(buf), "oc", r);
	t_int_eq((long long)r->ar_ntoken, 0, "a kind not asked for");
	(void)snprintf(buf, sizeof(buf), "/u/%.38s /u/%sA /u/%s/c/ /x/%s", tok,
	    tok, tok + 1, tok);
	arf_tokens_in(buf, strlen(buf), "ucx", r);
	t_int_eq((long long)r->ar_ntoken, 1,
	    "38 characters, 40 characters, a run cut short: none; /x/ yes");
	t_int_eq(r->ar_token_kind[0], 'x', "only the exact one");
	memset(r, 0, sizeof(*r));
	/* the token at the very end of the bytes (no NUL after it read) */
	(void)snprintf(buf, sizeof(buf), "/o/%sZZZ", tok);
	arf_tokens_in(buf, 3 + ARF_TOKEN_LEN, "o", r);
	t_int_eq((long long)r->ar_ntoken, 1, "a token ending the bytes");
	memset(r, 0, sizeof(*r));
	arf_tokens_in(buf, 2 + ARF_TOKEN_LEN, "o", r);
	t_int_eq((long long)r->ar_ntoken, 0, "one byte short: none");
	memset(r, 0, sizeof(*r));
	buf[0] = '\0';
	for (i = 0; i < ARF_TOKEN_MAX + 4; i++) {
		size_t n = strlen(buf);

		(void)snprintf(buf + n, sizeof(buf) - n, " /c/%.37s%02zu", tok,
		    i);
	}
	arf_tokens_in(buf, strlen(buf), "c", r);
	t_int_eq((long long)r->ar_ntoken, ARF_TOKEN_MAX,
	    "at most ARF_TOKEN_MAX kept");
	free(r);
}

/* The tokens of a whole report: List-Unsubscribe first, then text/html
 * parts decoded (quoted-printable with a soft break inside a token, and
 * base64); text/plain and the report's own parts are not looked at. */
static void
t_tokens_report(void)
{
	static const char fmt[] =
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=feedback-report; "
	    "boundary=\"b\"\r\n\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nsee /o/%s\r\n"
	    "--b\r\nContent-Type: message/feedback-report\r\n\r\n"
	    "Feedback-Type: abuse\r\nOriginal-Rcpt-To: <bob@example.net>\r\n"
	    "\r\n--b\r\nContent-Type: %s\r\n\r\n"
	    "Message-ID: <m1@shop.example>\r\n"
	    "List-Unsubscribe: <mailto:u@shop.example>,\r\n"
	    " <https://t.example/u/%s>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n"
	    "--a\r\nContent-Type: text/plain\r\n\r\nhttps://t.example/c/%s\r\n"
	    "--a\r\nContent-Type: text/html\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "<a href=3D\"https://t.example/c/%.20s=\r\n%s\">x</a>\r\n"
	    "--a\r\nContent-Type: text/html\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n"
	    "--a--\r\n"
	    "\r\n--b--\r\n";
	/* <img src="https://t.example/o/ooooooooooooooooooooooooooooooooooooooo"> */
	static const char b64[] =
	    "PGltZyBzcmM9Imh0dHBzOi8vdC5leGFtcGxlL28vb29vb29vb29vb29vb29vb29v"
	    "b29vb29vb29vb29vb29vb29vb29vIj4=";
	static const char u[] = "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu",
			  c[] = "ccccccccccccccccccccccccccccccccccccccc",
			  p[] = "ppppppppppppppppppppppppppppppppppppppp",
			  o[] = "ooooooooooooooooooooooooooooooooooooooo";
	struct arf_report *r = calloc(1, sizeof(*r));
	char		   buf[4096];

	if (r == NULL)
		abort();
	(void)snprintf(buf, sizeof(buf), fmt, p, "message/rfc822", u, p, c,
	    c + 20, b64);
	t_int_eq(arf_parse(buf, strlen(buf), r), ARF_OK, "full original");
	t_int_eq((long long)r->ar_ntoken, 3, "three tokens");
	t_str_eq(r->ar_token[0], u, "List-Unsubscribe's first");
	t_int_eq(r->ar_token_kind[0], 'u', "kind u");
	t_str_eq(r->ar_token[1], c, "the link, across a soft line break");
	t_int_eq(r->ar_token_kind[1], 'c', "kind c");
	t_str_eq(r->ar_token[2], o, "the pixel of the base64 part");
	t_int_eq(r->ar_token_kind[2], 'o', "kind o");
	/* Mail.ru's shape: the header block alone */
	(void)snprintf(buf, sizeof(buf), fmt, p, "text/rfc822-headers", u, p, c,
	    c + 20, b64);
	(void)snprintf(strstr(buf,
			   "MIME-Version: 1.0\r\nContent-Type: multi"
			   "part/alt"),
	    300, "\r\n--b--\r\n");
	t_int_eq(arf_parse(buf, strlen(buf), r), ARF_OK, "headers only");
	t_int_eq((long long)r->ar_ntoken, 1, "List-Unsubscribe's alone");
	t_str_eq(r->ar_token[0], u, "its token");
	free(r);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "samples", t_samples },
		{ "malformed", t_malformed },
		{ "prefixes", t_prefixes },
		{ "qids", t_qids },
		{ "tokens_in", t_tokens_in },
		{ "tokens_report", t_tokens_report },
	};

	return T_RUN(cases);
}
