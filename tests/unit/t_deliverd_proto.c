/* Unit tests for deliverd_proto.c's result line: a round trip with the
 * recipient's address (issue 13: a delivery after spoolctl delete is still
 * reported) and the MX host set (issue 15), the line of an older worker
 * without them, and bad lines; the TLS outcome with and without the
 * connection's addresses (issue 17, RFC 8460 4.4); the unescaping edge
 * cases and the job and signature lines (issue 20). */
#include "config.h"

#include "spool.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "deliverd.h"
#include "tap.h"

static void
t_result_roundtrip(void)
{
	struct deliverd_result r, got;
	struct buf	       b;

	memset(&r, 0, sizeof(r));
	(void)str_copy(r.dr_qid, sizeof(r.dr_qid), "662026CA33B3BB2505E4");
	r.dr_idx = 7;
	(void)str_copy(r.dr_reply, sizeof(r.dr_reply), "250 2.0.0 Ok:\tqueued");
	(void)str_copy(r.dr_relay, sizeof(r.dr_relay), "mx[192.0.2.1]:25");
	(void)str_copy(r.dr_to, sizeof(r.dr_to), "a\\b\tc@dest.test");
	r.dr_stage = BOUNCE_ST_RCPT;
	(void)str_copy(r.dr_mx, sizeof(r.dr_mx), "mx{a.mx.test,b.mx.test}");
	buf_init(&b, DELIVERD_LINE_MAX);
	t_int_eq(deliverd_result_format(&r, &b), 0, "format");
	t_int_eq(deliverd_result_parse(b.data, b.len - 1, &got), 0, "parse");
	t_str_eq(got.dr_qid, r.dr_qid, "qid");
	t_int_eq(got.dr_idx, 7, "idx");
	t_str_eq(got.dr_reply, r.dr_reply, "reply (escaped TAB)");
	t_str_eq(got.dr_relay, r.dr_relay, "relay");
	t_str_eq(got.dr_tls, "", "tls");
	t_str_eq(got.dr_to, r.dr_to, "address (escaped)");
	t_ok(!got.dr_skip, "not a skip");
	t_int_eq(got.dr_stage, BOUNCE_ST_RCPT, "stage (issue 15)");
	t_ok(!got.dr_shared, "not shared");
	t_str_eq(got.dr_mx, r.dr_mx, "MX host set (issue 15)");
	/* h-asupp: a DATA reply to several recipients, "data+" */
	r.dr_stage = BOUNCE_ST_DATA;
	r.dr_shared = true;
	buf_reset(&b);
	t_int_eq(deliverd_result_format(&r, &b), 0, "format shared");
	t_ok(strstr(b.data, "\tdata+\t") != NULL, "data+ on the line");
	t_int_eq(deliverd_result_parse(b.data, b.len - 1, &got), 0,
	    "parse shared");
	t_ok(got.dr_shared && got.dr_stage == BOUNCE_ST_DATA, "shared DATA");
	t_int_eq(deliverd_result_parse("R\t662026CA33B3BB2505E4\t0\t550 x\t\t"
				       "\ta@b\t+\tmx{m}",
		     sizeof("R\t662026CA33B3BB2505E4\t0\t550 x\t\t\ta@b\t+"
			    "\tmx{m}") -
			 1,
		     &got),
	    -1, "a lone + is no stage");
	r.dr_stage = BOUNCE_ST_RCPT;
	r.dr_shared = false;
	t_ok(!got.dr_tlsout.to_set, "no TLS outcome: none on the line");
	r.dr_tlsout.to_set = true;
	r.dr_tlsout.to_verified = TLSRES_V_UNTRUSTED;
	r.dr_tlsout.to_policy = TLSRES_P_STS;
	r.dr_tlsout.to_result = TLSRES_R_CERT_HOST_MISMATCH;
	(void)str_copy(r.dr_tlsout.to_mx, sizeof(r.dr_tlsout.to_mx),
	    "a.mx.test");
	(void)str_copy(r.dr_tlsout.to_pstr, sizeof(r.dr_tlsout.to_pstr),
	    "version: STSv1\nmode: enforce\tx");
	(void)str_copy(r.dr_tlsout.to_mxpat, sizeof(r.dr_tlsout.to_mxpat),
	    "*.mx.test b.test");
	(void)str_copy(r.dr_tlsout.to_sip, sizeof(r.dr_tlsout.to_sip),
	    "2001:db8::2");
	(void)str_copy(r.dr_tlsout.to_rip, sizeof(r.dr_tlsout.to_rip),
	    "192.0.2.1");
	(void)str_copy(r.dr_tlsout.to_helo, sizeof(r.dr_tlsout.to_helo),
	    "a.mx.test");
	buf_reset(&b);
	t_int_eq(deliverd_result_format(&r, &b), 0, "format with TLS");
	t_int_eq(deliverd_result_parse(b.data, b.len - 1, &got), 0,
	    "parse with TLS (issue 17)");
	t_ok(got.dr_tlsout.to_set, "TLS outcome set");
	t_int_eq(got.dr_tlsout.to_verified, TLSRES_V_UNTRUSTED, "verified");
	t_int_eq(got.dr_tlsout.to_policy, TLSRES_P_STS, "policy type");
	t_int_eq(got.dr_tlsout.to_result, TLSRES_R_CERT_HOST_MISMATCH,
	    "result type");
	t_str_eq(got.dr_tlsout.to_mx, "a.mx.test", "TLS MX host");
	t_str_eq(got.dr_tlsout.to_pstr, r.dr_tlsout.to_pstr,
	    "policy strings (escaped)");
	t_str_eq(got.dr_tlsout.to_mxpat, r.dr_tlsout.to_mxpat, "MX patterns");
	t_str_eq(got.dr_tlsout.to_sip, "2001:db8::2", "sending-mta-ip");
	t_str_eq(got.dr_tlsout.to_rip, "192.0.2.1", "receiving-ip");
	t_str_eq(got.dr_tlsout.to_helo, "a.mx.test", "receiving-mx-helo");
	t_str_eq(got.dr_mx, r.dr_mx, "MX set before the TLS fields");
	buf_release(&b);
}

static void
t_result_lines(void)
{
	static const char old[] = "R\t662026CA33B3BB2505E4\t0\t250 ok\t\t";
	static const char many[] =
	    "R\t662026CA33B3BB2505E4\t0\t250 ok\t\t\ta@b\tdata\tmx{m}\tx";
	static const char mx[] =
	    "R\t662026CA33B3BB2505E4\t0\t250 ok\t\t\ta@b\tdata\tmx{m}";
	static const char noverb[] =
	    "R\t662026CA33B3BB2505E4\t0\t550 no\t\t\ta@b";
	static const char stage[] =
	    "R\t662026CA33B3BB2505E4\t0\t550 no\t\t\ta@b\tgreeting";
	static const char badst[] =
	    "R\t662026CA33B3BB2505E4\t0\t550 no\t\t\ta@b\tquit";
	static const char tls[] = "R\t662026CA33B3BB2505E4\t0\t451 no\t\t\ta@b"
				  "\tdata\tmx{m}\tnone\tno-policy-found"
				  "\tstarttls-not-supported\tm\t\t";
	static const char badtls[] =
	    "R\t662026CA33B3BB2505E4\t0\t451 no\t\t\ta@b"
	    "\tdata\tmx{m}\tnone\tno-policy-found\tbogus\tm\t\t";
	static const char shorttls[] =
	    "R\t662026CA33B3BB2505E4\t0\t451 no\t\t\ta@b"
	    "\tdata\tmx{m}\tnone\tno-policy-found";
	static const char addrs[] =
	    "R\t662026CA33B3BB2505E4\t0\t451 no\t\t\ta@b"
	    "\tdata\tmx{m}\tnone\tno-policy-found"
	    "\tstarttls-not-supported\tm\t\t\t127.0.0.2\t::1\tm";
	static const char noaddrs[] =
	    "R\t662026CA33B3BB2505E4\t0\t451 no\t\t\ta@b"
	    "\tdata\tmx{m}\tnone\tno-policy-found"
	    "\tstarttls-not-supported\tm\t\t\t\t\t";
	static const char badip[] =
	    "R\t662026CA33B3BB2505E4\t0\t451 no\t\t\ta@b"
	    "\tdata\tmx{m}\tnone\tno-policy-found"
	    "\tstarttls-not-supported\tm\t\t\t127.0.0.2\tmx.test\tm";
	static const char partaddrs[] =
	    "R\t662026CA33B3BB2505E4\t0\t451 no\t\t\ta@b"
	    "\tdata\tmx{m}\tnone\tno-policy-found"
	    "\tstarttls-not-supported\tm\t\t\t127.0.0.2\t::1";
	static const char      skip[] = "S\t662026CA33B3BB2505E4\t3";
	struct deliverd_result got;

	t_int_eq(deliverd_result_parse(old, sizeof(old) - 1, &got), 0,
	    "a worker's line without the address");
	t_str_eq(got.dr_to, "", "no address");
	t_int_eq(deliverd_result_parse(many, sizeof(many) - 1, &got), -1,
	    "one field too many");
	t_int_eq(deliverd_result_parse(noverb, sizeof(noverb) - 1, &got), 0,
	    "a worker's line without the stage");
	t_int_eq(got.dr_stage, BOUNCE_ST_UNKNOWN, "no stage: unknown");
	t_int_eq(deliverd_result_parse(stage, sizeof(stage) - 1, &got), 0,
	    "with stage");
	t_int_eq(got.dr_stage, BOUNCE_ST_GREETING, "stage greeting");
	t_str_eq(got.dr_mx, "", "no MX set: none");
	t_int_eq(deliverd_result_parse(mx, sizeof(mx) - 1, &got), 0,
	    "with the MX set");
	t_str_eq(got.dr_mx, "mx{m}", "MX set");
	t_int_eq(deliverd_result_parse(badst, sizeof(badst) - 1, &got), -1,
	    "unknown stage");
	t_int_eq(deliverd_result_parse(tls, sizeof(tls) - 1, &got), 0,
	    "with the TLS outcome");
	t_ok(got.dr_tlsout.to_set &&
		got.dr_tlsout.to_result == TLSRES_R_STARTTLS_NOT_SUPPORTED,
	    "starttls-not-supported");
	t_ok(got.dr_tlsout.to_sip[0] == '\0' && got.dr_tlsout.to_rip[0] == '\0',
	    "an older worker's TLS outcome: no addresses");
	t_int_eq(deliverd_result_parse(addrs, sizeof(addrs) - 1, &got), 0,
	    "with the connection's addresses (RFC 8460 4.4)");
	t_ok(strcmp(got.dr_tlsout.to_sip, "127.0.0.2") == 0 &&
		strcmp(got.dr_tlsout.to_rip, "::1") == 0 &&
		strcmp(got.dr_tlsout.to_helo, "m") == 0 &&
		strcmp(got.dr_tlsout.to_mx, "m") == 0,
	    "sending-mta-ip, receiving-ip, receiving-mx-helo");
	t_int_eq(deliverd_result_parse(noaddrs, sizeof(noaddrs) - 1, &got), 0,
	    "addresses unknown (no connection)");
	t_ok(got.dr_tlsout.to_set && got.dr_tlsout.to_rip[0] == '\0',
	    "outcome without addresses");
	t_int_eq(deliverd_result_parse(badip, sizeof(badip) - 1, &got), -1,
	    "receiving-ip not an IP address");
	t_int_eq(deliverd_result_parse(partaddrs, sizeof(partaddrs) - 1, &got),
	    -1, "a partial address part");
	t_int_eq(deliverd_result_parse(badtls, sizeof(badtls) - 1, &got), -1,
	    "unknown result type");
	t_int_eq(deliverd_result_parse(shorttls, sizeof(shorttls) - 1, &got),
	    -1, "a partial TLS outcome");
	t_int_eq(deliverd_result_parse(skip, sizeof(skip) - 1, &got), 0,
	    "skip");
	t_ok(got.dr_skip && got.dr_idx == 3, "skip of recipient 3");
}

static void
t_unesc_edges(void)
{
	char d[8];

	t_int_eq(deliverd_unesc("a\\tb\\nc\\rd", 10, d, sizeof(d)), 0,
	    "\\t \\n \\r");
	t_str_eq(d, "a\tb\nc\rd", "control characters back");
	t_int_eq(deliverd_unesc("\\\\\\x", 4, d, sizeof(d)), 0,
	    "\\\\ and an unknown escape");
	t_str_eq(d, "\\x", "backslash kept, unknown escape is the character");
	t_int_eq(deliverd_unesc("ab\\", 3, d, sizeof(d)), 0,
	    "trailing lone backslash");
	t_str_eq(d, "ab\\", "a trailing backslash is kept");
	t_int_eq(deliverd_unesc("", 0, d, 1), 0, "empty into one byte");
	t_str_eq(d, "", "empty");
	t_int_eq(deliverd_unesc("", 0, d, 0), -1, "no room for the NUL");
	t_int_eq(deliverd_unesc("1234567", 7, d, sizeof(d)), 0, "exactly fits");
	t_int_eq(deliverd_unesc("12345678", 8, d, sizeof(d)), -1,
	    "one byte too long");
	memset(d, 'Z', sizeof(d));
	t_int_eq(deliverd_unesc("\\t\\t\\t\\t", 8, d, 4), -1,
	    "escapes counted unescaped: 4 into 4");
	t_ok(d[4] == 'Z', "nothing written past the buffer");
	t_int_eq(deliverd_unesc("\\t\\t\\t", 6, d, 4), 0,
	    "3 escapes into 4 bytes");
}

static void
t_job_sig_lines(void)
{
	static const char job[] =
	    "J\t42\t662026CA33B3BB2505E4\t1\t[r\\\\x]:25\t0,7";
	static const char nojob[] =
	    "J\t42\t662026CA33B3BB2505E4\t0\tdest.test\t";
	static const char sig[] =
	    "K\t662026CA33B3BB2505E4\tDKIM-Signature: a\\r\\n\\tb\\r\\n";
	static struct deliverd_job j;
	char			   qid[QID_SIZE];
	struct buf		   b;

	t_int_eq(deliverd_job_parse(job, sizeof(job) - 1, &j), 0, "job");
	t_str_eq(j.dj_hop, "[r\\x]:25", "hop unescaped");
	t_ok(j.dj_relay && j.dj_nidx == 2 && j.dj_idx[1] == 7,
	    "relay, two indexes");
	t_int_eq(deliverd_job_parse(nojob, sizeof(nojob) - 1, &j), -1,
	    "a job without recipients");
	buf_init(&b, SPOOL_DKIMSIG_MAX - 1);
	t_int_eq(deliverd_sig_parse(sig, sizeof(sig) - 1, qid, &b), 0,
	    "signature");
	t_str_eq(b.data, "DKIM-Signature: a\r\n\tb\r\n", "CRLF TAB unescaped");
	buf_release(&b);
}

static const struct t_case cases[] = {
	{ "result_roundtrip", t_result_roundtrip },
	{ "result_lines", t_result_lines },
	{ "unesc_edges", t_unesc_edges },
	{ "job_sig_lines", t_job_sig_lines },
};

int
main(void)
{
	return T_RUN(cases);
}
