/*
 * arf: feedback-loop reports (ARF, RFC 5965; issue 16 item 5). Pure: the
 * report's bytes in, the facts a complaint needs out. The MIME parsing is
 * GMime 3's (the only file that includes <gmime/gmime.h>); the caller
 * bounds the input (ARF_MAX).
 *
 * Accepted shape: a multipart/report with report-type=feedback-report
 * whose parts include a message/feedback-report (Feedback-Type, and
 * Original-Rcpt-To when the provider gives it) and the original message
 * as message/rfc822 or its header block as text/rfc822-headers. The
 * recipient is Original-Rcpt-To, else the original's To: when it holds
 * exactly one address (providers that redact the report often keep it).
 */
#ifndef SG_ARF_H
#define SG_ARF_H

#include <stddef.h>

#include "qid.h"

#define ARF_MAX	      (4 << 20) /* bytes of report parsed at most */
#define ARF_FIELD_MAX 1000
#define ARF_QID_MAX   4	 /* queue ids of ours named in the original */
#define ARF_TOKEN_MAX 16 /* tracking tokens kept from the original */
#define ARF_TOKEN_LEN 39 /* characters of one (spool_track.h's) */

enum arf_status {
	ARF_OK = 0,
	ARF_EMIME,	/* not a parseable MIME message */
	ARF_ENOTREPORT, /* not multipart/report; report-type=feedback-report */
	ARF_ENOFEEDBACK, /* no message/feedback-report part, or no Feedback-Type */
	ARF_ENOORIGINAL, /* no original message or headers */
	ARF_ENOMSGID,	 /* the original has no Message-ID */
	ARF_ENORCPT,	 /* neither Original-Rcpt-To nor a single To: address */
	ARF_ETOOBIG	 /* more than ARF_MAX bytes */
};

struct arf_report {
	char ar_type[64];	     /* Feedback-Type, lower-cased: "abuse" */
	char ar_rcpt[ARF_FIELD_MAX]; /* the complaining recipient */
	char ar_message_id[ARF_FIELD_MAX]; /* the original's, "<...>" */
	char ar_user_agent[256];	   /* the report's User-Agent or "" */
	char ar_source_ip[64];		   /* Source-IP or "" */
	/* The queue ids our Received lines in the original name ("by HOST
	 * (smtpgate) with ESMTPA id QID", smtpgate-sendmail's "id QID"),
	 * newest first; a forger cannot know them without the copy. */
	char   ar_qid[ARF_QID_MAX][QID_SIZE];
	size_t ar_nqid;
	/*
	 * Candidate tracking tokens of the copy (h-arfauth): the TOKEN of
	 * "/u/TOKEN" in the original's List-Unsubscribe, then of "/o/TOKEN"
	 * and "/c/TOKEN" in its decoded text/html parts (a full original
	 * only), in that order, without repeats; ar_token_kind[i] is the
	 * path's letter. Unverified here: the caller checks them under the
	 * tracking key (spool_track_parse), which says whose copy it was.
	 */
	char   ar_token[ARF_TOKEN_MAX][ARF_TOKEN_LEN + 1];
	char   ar_token_kind[ARF_TOKEN_MAX];
	size_t ar_ntoken;
};

/* The tokens of "/K/TOKEN" (K one of kinds) in s[0, n), added to r:
 * exactly ARF_TOKEN_LEN base64url characters (no more follow). */
void arf_tokens_in(const char *s, size_t n, const char *kinds,
    struct arf_report *r);
/* ARF_OK and r filled, or the reason it is not a usable report (r is
 * then partly filled: whatever was found). Never reads beyond len. */
enum arf_status arf_parse(const char *data, size_t len, struct arf_report *r);
const char     *arf_strerror(enum arf_status);

#endif
