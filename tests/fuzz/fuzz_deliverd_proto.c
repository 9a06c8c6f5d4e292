/*
 * libFuzzer target for deliverd_proto.c, the scheduler <-> worker line
 * protocol: the job ("J"), result ("R"/"S") and signature ("K") parsers
 * and deliverd_unesc. The input is one line (without its '\n'). Whatever a
 * parser accepts must survive format -> parse unchanged, and unescaping
 * never writes past its buffer nor reports success without a NUL.
 * Seeds: tests/fuzz/corpus/deliverd_proto/.
 */
#include "config.h"

#include "spool.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "deliverd.h"
#include "log.h"

static void
fuzz_job(const char *line, size_t len, struct buf *b)
{
	struct deliverd_job *j, *k;
	size_t		     i;

	j = calloc(2, sizeof(*j));
	if (j == NULL)
		return;
	k = j + 1;
	buf_reset(b);
	if (deliverd_job_parse(line, len, j) == 0) {
		if (j->dj_nidx == 0 || j->dj_nidx > DELIVERD_JOB_RCPT_MAX ||
		    deliverd_job_format(j, b) == -1 ||
		    deliverd_job_parse(b->data, b->len - 1, k) == -1 ||
		    k->dj_id != j->dj_id || k->dj_relay != j->dj_relay ||
		    strcmp(k->dj_qid, j->dj_qid) != 0 ||
		    strcmp(k->dj_hop, j->dj_hop) != 0 ||
		    k->dj_nidx != j->dj_nidx)
			log_panic("fuzz: job line does not round-trip");
		for (i = 0; i < j->dj_nidx; i++)
			if (k->dj_idx[i] != j->dj_idx[i])
				log_panic("fuzz: job index %zu changed", i);
	}
	free(j);
}

static void
fuzz_result(const char *line, size_t len, struct buf *b)
{
	struct deliverd_result r, s;

	if (deliverd_result_parse(line, len, &r) == -1)
		return;
	buf_reset(b);
	if ((!r.dr_skip && strchr("245", r.dr_reply[0]) == NULL) ||
	    deliverd_result_format(&r, b) == -1 ||
	    deliverd_result_parse(b->data, b->len - 1, &s) == -1 ||
	    s.dr_skip != r.dr_skip || s.dr_idx != r.dr_idx ||
	    strcmp(s.dr_qid, r.dr_qid) != 0 ||
	    strcmp(s.dr_reply, r.dr_reply) != 0 ||
	    strcmp(s.dr_relay, r.dr_relay) != 0 ||
	    strcmp(s.dr_tls, r.dr_tls) != 0 || strcmp(s.dr_to, r.dr_to) != 0 ||
	    s.dr_stage != r.dr_stage || strcmp(s.dr_mx, r.dr_mx) != 0 ||
	    memcmp(&s.dr_tlsout, &r.dr_tlsout, sizeof(s.dr_tlsout)) != 0)
		log_panic("fuzz: result line does not round-trip");
}

static void
fuzz_sig(const char *line, size_t len, struct buf *b)
{
	struct buf sig, sig2;
	char	   qid[QID_SIZE], qid2[QID_SIZE];

	buf_init(&sig, SPOOL_DKIMSIG_MAX - 1);
	buf_init(&sig2, SPOOL_DKIMSIG_MAX - 1);
	if (deliverd_sig_parse(line, len, qid, &sig) == 0) {
		buf_reset(b);
		if (deliverd_sig_format(qid, sig.data != NULL ? sig.data : "",
			b) == -1 ||
		    deliverd_sig_parse(b->data, b->len - 1, qid2, &sig2) ==
			-1 ||
		    strcmp(qid, qid2) != 0 || sig.len != sig2.len ||
		    (sig.len > 0 && memcmp(sig.data, sig2.data, sig.len) != 0))
			log_panic("fuzz: signature line does not round-trip");
	}
	buf_release(&sig);
	buf_release(&sig2);
}

/* The whole input, into buffers of every small size: a result never
 * longer than its input, always NUL-terminated, -1 only when too small. */
static void
fuzz_unesc(const char *in, size_t len)
{
	char   dst[64 + 1];
	size_t sz;
	int    rc;

	for (sz = 0; sz <= 64 && sz <= len + 1; sz++) {
		memset(dst, 'Z', sizeof(dst));
		rc = deliverd_unesc(in, len, dst, sz);
		if (dst[sz] != 'Z' ||
		    (rc == 0 && (sz == 0 || memchr(dst, '\0', sz) == NULL)))
			log_panic(
			    "fuzz: deliverd_unesc overran or lost its NUL");
		if (rc == -1 && sz > len)
			log_panic("fuzz: deliverd_unesc refused room enough");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct buf  b;

	if (size > DELIVERD_LINE_MAX)
		return 0;
	buf_init(&b, 4 * DELIVERD_LINE_MAX);
	fuzz_job(line, size, &b);
	fuzz_result(line, size, &b);
	fuzz_sig(line, size, &b);
	fuzz_unesc(line, size);
	buf_release(&b);
	return 0;
}
