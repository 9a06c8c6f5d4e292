/*
 * smtpd_sasl: SASL PLAIN and LOGIN through libsasl2, the only file that
 * includes <sasl/sasl.h> (STYLE L2). Passwords are checked by our own
 * SASL_CB_SERVER_USERDB_CHECKPASS callback, which asks the session's check
 * function (the lookup process, smtpd_lka.c: the worker never sees a hash);
 * libsasl2 never touches a password store of its own (NOTES.md).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "buf.h"
#include "log.h"
#include "smtpd.h"
#include "xmem.h"

struct smtpd_sasl {
	sasl_conn_t	    *sx_conn;
	sasl_callback_t	     sx_cb[3];
	smtpd_sasl_check_fn *sx_check;
	void		    *sx_arg;
	char		     sx_user[256];
	bool sx_checked;  /* checkpass ran: any error is a failure */
	bool sx_tempfail; /* the lka could not answer: 454 */
};

static int
smtpd_sasl_getopt(void *ctx, const char *plugin, const char *option,
    const char **result, unsigned *len)
{
	(void)ctx;
	(void)plugin;
	if (strcmp(option, "mech_list") == 0)
		*result = "PLAIN LOGIN";
	else if (strcmp(option, "pwcheck_method") == 0)
		*result = "auxprop";
	else if (strcmp(option, "auxprop_plugin") == 0)
		*result = "none";
	else
		return SASL_FAIL;
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

/* The lka checks the password (smtpd_lka.c): no hash reaches a worker. */
static int
smtpd_sasl_checkpass(sasl_conn_t *conn, void *ctx, const char *user,
    const char *pass, unsigned passlen, struct propctx *propctx)
{
	struct smtpd_sasl *sx = ctx;
	int		   rc;

	(void)conn;
	(void)propctx;
	sx->sx_checked = true;
	rc = sx->sx_check(user, pass, passlen, sx->sx_arg);
	if (rc == -1)
		sx->sx_tempfail = true;
	return rc == 0 ? SASL_OK : rc == -1 ? SASL_UNAVAIL : SASL_BADAUTH;
}

int
smtpd_sasl_init(void)
{
	static sasl_callback_t cb[] = {
		{ SASL_CB_GETOPT,
		    (int (*)(void))(void (*)(void))smtpd_sasl_getopt, NULL },
		{ SASL_CB_LIST_END, NULL, NULL },
	};
	int rc;

	if ((rc = sasl_server_init(cb, "smtpgate")) != SASL_OK) {
		log_warnx("sasl_server_init: %s",
		    sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	return 0;
}

struct smtpd_sasl *
smtpd_sasl_new(const char *hostname, smtpd_sasl_check_fn *check, void *arg)
{
	struct smtpd_sasl	  *sx;
	sasl_security_properties_t sp;
	int			   rc;

	sx = xcalloc(1, sizeof(*sx));
	sx->sx_check = check;
	sx->sx_arg = arg;
	sx->sx_cb[0].id = SASL_CB_GETOPT;
	sx->sx_cb[0].proc = (int (*)(void))(void (*)(void))smtpd_sasl_getopt;
	sx->sx_cb[1].id = SASL_CB_SERVER_USERDB_CHECKPASS;
	sx->sx_cb[1].proc = (int (*)(void))(void (*)(void))smtpd_sasl_checkpass;
	sx->sx_cb[1].context = sx;
	sx->sx_cb[2].id = SASL_CB_LIST_END;
	rc = sasl_server_new("smtp", hostname, NULL, NULL, NULL, sx->sx_cb, 0,
	    &sx->sx_conn);
	if (rc != SASL_OK) {
		log_warnx("sasl_server_new: %s",
		    sasl_errstring(rc, NULL, NULL));
		free(sx);
		return NULL;
	}
	/* PLAIN and LOGIN are plaintext mechanisms: the session decides when
	 * they are offered (only over TLS unless auth_plaintext). */
	memset(&sp, 0, sizeof(sp));
	sp.max_ssf = 0;
	sp.maxbufsize = 0;
	sp.security_flags = SASL_SEC_NOANONYMOUS;
	(void)sasl_setprop(sx->sx_conn, SASL_SEC_PROPS, &sp);
	return sx;
}

void
smtpd_sasl_free(struct smtpd_sasl **sxp)
{
	if (sxp == NULL || *sxp == NULL)
		return;
	sasl_dispose(&(*sxp)->sx_conn);
	free(*sxp);
	*sxp = NULL;
}

/* Encodes a server challenge for a "334 " line. */
static enum smtpd_sasl_rc
smtpd_sasl_challenge(const char *out, unsigned outlen, struct buf *chal_r)
{
	char	 enc[4096];
	unsigned enclen = 0;

	buf_reset(chal_r);
	if (outlen > 0 &&
	    sasl_encode64(out, outlen, enc, sizeof(enc), &enclen) != SASL_OK)
		return SMTPD_SASL_FAIL;
	if (buf_append(chal_r, enc, outlen > 0 ? enclen : 0) == -1)
		return SMTPD_SASL_FAIL;
	return SMTPD_SASL_CONTINUE;
}

static enum smtpd_sasl_rc
smtpd_sasl_result(struct smtpd_sasl *sx, int rc, const char *out,
    unsigned outlen, struct buf *chal_r)
{
	const void *u = NULL;

	if (sx->sx_tempfail)
		return SMTPD_SASL_TEMP;
	switch (rc) {
	case SASL_OK:
		if (sasl_getprop(sx->sx_conn, SASL_USERNAME, &u) != SASL_OK ||
		    u == NULL || strlen(u) >= sizeof(sx->sx_user))
			return SMTPD_SASL_FAIL;
		(void)str_copy(sx->sx_user, sizeof(sx->sx_user), u);
		return SMTPD_SASL_OK;
	case SASL_CONTINUE:
		return smtpd_sasl_challenge(out, outlen, chal_r);
	case SASL_NOMECH:
	case SASL_TOOWEAK:
		/* libsasl2 falls back to other pwcheck methods after a failed
		 * check and ends with NOMECH: that is a wrong password. */
		return sx->sx_checked ? SMTPD_SASL_FAIL : SMTPD_SASL_BADMECH;
	case SASL_BADPROT:
	case SASL_BADPARAM:
		return SMTPD_SASL_BADPROT;
	default:
		return SMTPD_SASL_FAIL;
	}
}

/* Decodes a client base64 response into dec (NUL-terminated); -1 if bad. */
static int
smtpd_sasl_decode(const char *b64, char *dec, size_t decsz, unsigned *declen)
{
	size_t n = strlen(b64);

	*declen = 0;
	if (n == 1 && b64[0] == '=')
		return 0; /* RFC 4954: an empty initial response */
	if (n == 0)
		return 0;
	if (sasl_decode64(b64, (unsigned)n, dec, (unsigned)decsz, declen) !=
	    SASL_OK)
		return -1;
	return 0;
}

enum smtpd_sasl_rc
smtpd_sasl_start(struct smtpd_sasl *sx, const char *mech, const char *initial,
    struct buf *chal_r)
{
	char	    dec[12288];
	const char *out = NULL;
	unsigned    outlen = 0, declen = 0;
	int	    rc;

	if (!str_ieq(mech, "PLAIN") && !str_ieq(mech, "LOGIN"))
		return SMTPD_SASL_BADMECH;
	sx->sx_checked = sx->sx_tempfail = false;
	if (initial != NULL &&
	    smtpd_sasl_decode(initial, dec, sizeof(dec), &declen) == -1)
		return SMTPD_SASL_BADPROT;
	rc = sasl_server_start(sx->sx_conn, mech, initial ? dec : NULL,
	    initial ? declen : 0, &out, &outlen);
	explicit_bzero(dec, sizeof(dec));
	return smtpd_sasl_result(sx, rc, out, outlen, chal_r);
}

enum smtpd_sasl_rc
smtpd_sasl_step(struct smtpd_sasl *sx, const char *resp, struct buf *chal_r)
{
	char	    dec[12288];
	const char *out = NULL;
	unsigned    outlen = 0, declen = 0;
	int	    rc;

	if (smtpd_sasl_decode(resp, dec, sizeof(dec), &declen) == -1)
		return SMTPD_SASL_BADPROT;
	sx->sx_checked = sx->sx_tempfail = false;
	rc = sasl_server_step(sx->sx_conn, dec, declen, &out, &outlen);
	explicit_bzero(dec, sizeof(dec));
	return smtpd_sasl_result(sx, rc, out, outlen, chal_r);
}

const char *
smtpd_sasl_user(const struct smtpd_sasl *sx)
{
	return sx->sx_user;
}
