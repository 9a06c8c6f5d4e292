/*
 * mtasts: the pure parts of MTA-STS (RFC 8461): the "_mta-sts" TXT record,
 * the policy file and the matching of an MX host against the policy's mx
 * patterns. No I/O, no logging; deliverd fetches and caches.
 */
#ifndef SG_MTASTS_H
#define SG_MTASTS_H

#include <stdbool.h>
#include <stddef.h>

#define MTASTS_ID_MAX	   33	    /* 1*32 alphanumerics + NUL (3.1) */
#define MTASTS_HOST_MAX	   256	    /* an mx pattern, NUL included */
#define MTASTS_MX_MAX	   16	    /* mx lines kept; more: invalid */
#define MTASTS_MAX_AGE_MAX 31557600 /* one year of seconds (3.2) */
#define MTASTS_BODY_MAX	   65536    /* the policy file's size limit */

enum mtasts_mode {
	MTASTS_MODE_NONE = 0,
	MTASTS_MODE_TESTING,
	MTASTS_MODE_ENFORCE
};

struct mtasts_policy {
	enum mtasts_mode mode;
	unsigned long	 max_age; /* seconds, <= MTASTS_MAX_AGE_MAX */
	size_t		 n_mx;
	char		 mx[MTASTS_MX_MAX][MTASTS_HOST_MAX]; /* lower case */
};

/*
 * One TXT record's text (its strings concatenated). 0 and the id in id_r
 * for a valid "v=STSv1; id=..." record; 1 when the record is not an
 * STSv1 record (to be ignored); -1 when it starts with v=STSv1 but is
 * invalid.
 */
int mtasts_txt_parse(const char *txt, size_t len, char id_r[MTASTS_ID_MAX]);

/*
 * The policy file (CRLF or LF lines "key: value"). 0 on a valid policy;
 * -1 and a reason in err otherwise. Unknown keys are ignored (3.2).
 */
int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *,
    char *err, size_t errsz);

/* true when host (one trailing dot allowed, any case) matches one of the
 * policy's mx patterns; "*.example.com" matches exactly one more label. */
bool mtasts_mx_match(const struct mtasts_policy *, const char *host);

/* The policy as text mtasts_policy_parse reads back: "version: STSv1",
 * mode, the mx lines, max_age, with sep (e.g. '\n') between the lines.
 * 0, or -1 when dst is too small. */
int mtasts_policy_format(const struct mtasts_policy *, char sep, char *dst,
    size_t dstsz);

/* "none", "testing", "enforce"; -1 from parse on anything else. */
const char *mtasts_mode_name(enum mtasts_mode);
int	    mtasts_mode_parse(const char *, size_t len, enum mtasts_mode *);

#endif
