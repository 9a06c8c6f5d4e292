/*
 * spoolctl_cbsecret: account add|set --callback-secret S | none and
 * --callback-secret-file F (issue 18 item 1). Up to SPOOL_CB_SECRETS
 * secrets in the order given (the new one first during a rotation); the
 * options given replace the account's secrets, "none" clears them. A
 * secret is never printed: `account show` gives their number and
 * fingerprints (spool_cbsig.h). Errors are usage errors (exit 2) naming
 * the option, before anything is written.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "spool_cbsig.h"
#include "spoolctl.h"
#include "xmem.h"

#define CTL_CBS_FILE_MAX 4096 /* bytes read from a secret file */

/* static: wiped once applied; ctl_die() may exit at any point */
static struct {
	char   v[SPOOL_CB_SECRETS][SPOOL_CB_SECRET_MAX + 1];
	size_t n;
	bool   given;
	bool   none;
} ctl_cbs;

/* Reads the secret from path ("-": standard input) into dst: its one
 * line, the line break removed. Pipes and /dev/stdin work too. */
static void
ctl_cbsecret_read(const char *path, char *dst, size_t dstsz)
{
	char	data[CTL_CBS_FILE_MAX + 1];
	size_t	len = 0;
	ssize_t n;
	int	fd = STDIN_FILENO;

	if (strcmp(path, "-") != 0 &&
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		ctl_usage("account: --callback-secret-file %s: %s%s", path,
		    strerror(errno), ctl_file_hint(errno));
	while (len < sizeof(data) &&
	    (n = read(fd, data + len, sizeof(data) - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			ctl_usage("account: --callback-secret-file %s: %s",
			    path, strerror(errno));
		len += (size_t)n;
	}
	if (fd != STDIN_FILENO)
		(void)close(fd);
	if (len > CTL_CBS_FILE_MAX)
		ctl_usage("account: --callback-secret-file %s: more than %d "
			  "bytes: one "
			  "secret on one line is expected",
		    path, CTL_CBS_FILE_MAX);
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	data[len] = '\0';
	if (memchr(data, '\n', len) != NULL || memchr(data, '\0', len) != NULL)
		ctl_usage("account: --callback-secret-file %s: one secret on "
			  "one line "
			  "is expected",
		    path);
	if (str_copy(dst, dstsz, data) == -1) {
		explicit_bzero(data, sizeof(data));
		ctl_usage(
		    "account: --callback-secret-file %s: the secret is longer "
		    "than %d bytes",
		    path, SPOOL_CB_SECRET_MAX);
	}
	explicit_bzero(data, sizeof(data));
}

void
ctl_cbsecret_opt(const char *arg, bool from_file)
{
	const char *opt = from_file ? "--callback-secret-file"
				    : "--callback-secret";
	const char *why;
	char	   *dst;

	ctl_cbs.given = true;
	if (!from_file && strcmp(arg, "none") == 0) {
		ctl_cbs.none = true;
	} else if (ctl_cbs.n == SPOOL_CB_SECRETS) {
		ctl_usage(
		    "account: at most %d callback secrets (the new and the old "
		    "one, during a rotation)",
		    SPOOL_CB_SECRETS);
	} else {
		dst = ctl_cbs.v[ctl_cbs.n];
		if (from_file)
			ctl_cbsecret_read(arg, dst, sizeof(ctl_cbs.v[0]));
		else if (strlen(arg) > SPOOL_CB_SECRET_MAX)
			ctl_usage(
			    "account: %s: the secret is longer than %d bytes",
			    opt, SPOOL_CB_SECRET_MAX);
		else
			(void)str_copy(dst, sizeof(ctl_cbs.v[0]), arg);
		if ((why = spool_cbsig_secret_check(dst)) != NULL)
			ctl_usage("account: %s: the secret is %s; a secret is "
				  "%d to %d "
				  "bytes of printable ASCII, e.g. from: "
				  "openssl rand -hex 32",
			    opt, why, SPOOL_CBSIG_SECRET_MIN,
			    SPOOL_CB_SECRET_MAX);
		if (ctl_cbs.n == 1 && strcmp(ctl_cbs.v[0], dst) == 0)
			ctl_usage("account: the same callback secret was given "
				  "twice");
		ctl_cbs.n++;
	}
	if (ctl_cbs.none && ctl_cbs.n > 0)
		ctl_usage("account: --callback-secret none clears the secrets: "
			  "give it "
			  "alone");
}

void
ctl_cbsecret_apply(struct spool_account *sa)
{
	size_t i;

	if (!ctl_cbs.given)
		return;
	for (i = 0; i < SPOOL_CB_SECRETS; i++)
		(void)str_copy(sa->ac_cb_secret[i], sizeof(sa->ac_cb_secret[i]),
		    i < ctl_cbs.n ? ctl_cbs.v[i] : "");
}

void
ctl_cbsecret_wipe(void)
{
	explicit_bzero(&ctl_cbs, sizeof(ctl_cbs));
}

/* ", callback secrets none" or ", callback secrets 2 (fpr1, fpr2)". */
void
ctl_cbsecret_describe(const struct spool_account *sa, FILE *fp)
{
	char   f[SPOOL_CBSIG_FPR_LEN + 1];
	size_t i, k = 0;

	if (spool_cbsig_count(sa) == 0) {
		(void)fputs(", callback secrets none", fp);
		return;
	}
	(void)fprintf(fp, ", callback secrets %zu", spool_cbsig_count(sa));
	for (i = 0; i < SPOOL_CB_SECRETS; i++) {
		if (sa->ac_cb_secret[i][0] == '\0')
			continue;
		if (spool_cbsig_fingerprint(sa->ac_cb_secret[i], f) == -1)
			(void)str_copy(f, sizeof(f), "?");
		(void)fprintf(fp, "%s%s", k++ == 0 ? " (" : ", ", f);
	}
	(void)fputc(')', fp);
}

/* "callback_secrets": N, "callback_secret_fingerprints": [...] */
void
ctl_cbsecret_json(struct json_gen *jg, const struct spool_account *sa)
{
	char   f[SPOOL_CBSIG_FPR_LEN + 1];
	size_t i;

	json_kv_int(jg, "callback_secrets", (int64_t)spool_cbsig_count(sa));
	json_key(jg, "callback_secret_fingerprints");
	json_arr_begin(jg);
	for (i = 0; i < SPOOL_CB_SECRETS; i++)
		if (sa->ac_cb_secret[i][0] != '\0' &&
		    spool_cbsig_fingerprint(sa->ac_cb_secret[i], f) == 0)
			json_str(jg, f);
	json_arr_end(jg);
}
