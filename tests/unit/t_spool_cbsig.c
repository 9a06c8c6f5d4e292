/*
 * Unit tests for spool/spool_cbsig: the X-Smtpgate-Signature header
 * against vectors computed with Python's hmac module, the secret checks
 * and the fingerprint.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "spool_cbsig.h"
#include "tap.h"

#define BODY "{\"events\":[{\"id\":\"a\"}]}"
#define S1   "whsec_0123456789abcdef"
#define S2   "old-secret-ABCDEFGHIJ"
/* hmac.new(S, b"1765000000." + BODY, hashlib.sha256).hexdigest() */
#define H1   "0ec31c4483bef59bf6549c30ca24e8f49e28fa823cda350fc90f264e94419d16"
#define H2   "ec423509de7534cc8584dd0657ac31f41be9cb369ffa2b3826698ea07e7cbc19"
/* the same over an empty body */
#define H1_EMPTY \
	"5ea0f56e778048b742823f9c29870d1e6b70c34033455af8a00c9400cc872219"

static struct spool_account acct;

static void
t_header(void)
{
	char h[SPOOL_CBSIG_HDR_MAX];

	memset(&acct, 0, sizeof(acct));
	t_int_eq(spool_cbsig_header(&acct, 1765000000, BODY, strlen(BODY), h,
		     sizeof(h)),
	    0, "no secret: no header");
	t_str_eq(h, "", "no secret: empty");
	(void)snprintf(acct.ac_cb_secret[0], sizeof(acct.ac_cb_secret[0]), "%s",
	    S1);
	t_int_eq(spool_cbsig_header(&acct, 1765000000, BODY, strlen(BODY), h,
		     sizeof(h)),
	    1, "one secret");
	t_str_eq(h, "X-Smtpgate-Signature: t=1765000000,v1=" H1, "one v1");
	t_int_eq(spool_cbsig_header(&acct, 1765000000, "", 0, h, sizeof(h)), 1,
	    "empty body");
	t_str_eq(h, "X-Smtpgate-Signature: t=1765000000,v1=" H1_EMPTY,
	    "empty body's v1");
	(void)snprintf(acct.ac_cb_secret[1], sizeof(acct.ac_cb_secret[1]), "%s",
	    S2);
	t_int_eq(spool_cbsig_header(&acct, 1765000000, BODY, strlen(BODY), h,
		     sizeof(h)),
	    1, "two secrets");
	t_str_eq(h, "X-Smtpgate-Signature: t=1765000000,v1=" H1 ",v1=" H2,
	    "two v1, in the account's order");
	t_int_eq(spool_cbsig_header(&acct, 1765000000, BODY, strlen(BODY), h,
		     64),
	    -1, "a short buffer is refused");
	t_str_eq(h, "", "and left empty");
	acct.ac_cb_secret[0][0] = '\0';
	t_int_eq(spool_cbsig_header(&acct, 1765000000, BODY, strlen(BODY), h,
		     sizeof(h)),
	    1, "only the second slot");
	t_str_eq(h, "X-Smtpgate-Signature: t=1765000000,v1=" H2,
	    "its v1 alone");
	t_int_eq((long long)spool_cbsig_count(&acct), 1, "count");
}

static void
t_secret_check(void)
{
	char big[SPOOL_CB_SECRET_MAX + 2];

	t_ok(spool_cbsig_secret_check(S1) == NULL, "a good secret");
	t_ok(spool_cbsig_secret_check("0123456789abcde") != NULL,
	    "15 bytes: too short");
	t_ok(spool_cbsig_secret_check("0123456789abcdef") == NULL,
	    "16 bytes: enough");
	t_ok(spool_cbsig_secret_check("0123456789 abcdef") != NULL, "a space");
	t_ok(spool_cbsig_secret_check("0123456789abcdef\n") != NULL,
	    "a line break");
	t_ok(spool_cbsig_secret_check("0123456789abcdef\xc3\xa9") != NULL,
	    "non-ASCII");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	t_ok(spool_cbsig_secret_check(big) != NULL, "257 bytes: too long");
	big[sizeof(big) - 2] = '\0';
	t_ok(spool_cbsig_secret_check(big) == NULL, "256 bytes: fine");
}

static void
t_fingerprint(void)
{
	char f[SPOOL_CBSIG_FPR_LEN + 1];

	/* hashlib.sha256(S1).hexdigest()[:8] */
	t_int_eq(spool_cbsig_fingerprint(S1, f), 0, "fingerprint");
	t_str_eq(f, "b75b1473", "first 8 hex digits of SHA-256");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ .name = "header", .fn = t_header },
		{ .name = "secret_check", .fn = t_secret_check },
		{ .name = "fingerprint", .fn = t_fingerprint },
	};

	return T_RUN(cases);
}
