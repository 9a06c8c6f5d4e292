/*
 * mailaddr: RFC 5321 path and address syntax (STYLE 4.8). Pure: no I/O, no
 * allocation. Parses the argument of MAIL FROM:/RCPT TO: ("<path> params")
 * into the address (without angle brackets and without a source route)
 * and the parameter text, and iterates ESMTP parameters. Results are
 * copied into caller buffers; a result that does not fit is an error.
 */
#ifndef SG_MAILADDR_H
#define SG_MAILADDR_H

#include <stdbool.h>
#include <stddef.h>

#define MAILADDR_LOCAL_MAX  64	/* RFC 5321 4.5.3.1.1 */
#define MAILADDR_DOMAIN_MAX 255 /* 4.5.3.1.2 */
#define MAILADDR_PATH_MAX   256 /* 4.5.3.1.3, brackets included */

/* flags */
#define MAILADDR_NULL_OK      0x01 /* "<>" allowed (MAIL FROM) */
#define MAILADDR_UTF8	      0x02 /* UTF-8 in local part/domain (SMTPUTF8, RFC 6531) */
#define MAILADDR_NOBRACKET_OK 0x04 /* tolerate a path without <> */

enum mailaddr_status {
	MAILADDR_OK,
	MAILADDR_SYNTAX,  /* not a path: "501 5.1.7"/"501 5.1.3" */
	MAILADDR_TOOLONG, /* a part over its RFC limit */
	MAILADDR_NULL,	  /* "<>" where not allowed */
	MAILADDR_PARAMS,  /* bad parameter syntax after the path */
};

/*
 * Parses "<addr> params" (arg as smtp_cmd gives it, len bytes). On
 * MAILADDR_OK: addr_r holds the address ("" for the null path), params_r
 * the parameter text (blanks trimmed, "" if none, syntax checked).
 * "<postmaster>" (no domain) is accepted; any other address needs
 * local@domain.
 */
enum mailaddr_status mailaddr_parse_path(const char *arg, size_t len,
    unsigned flags, char *addr_r, size_t addrsz, char *params_r,
    size_t paramsz);

/* True if s (NUL-terminated) is local@domain with valid syntax. */
bool mailaddr_ok(const char *s, unsigned flags);
/* Domain (hostname labels or an address literal) syntax. */
bool mailaddr_domain_ok(const char *s, size_t len, unsigned flags);

/*
 * ESMTP parameters: "KEY[=VALUE] KEY[=VALUE]...". Call with *pos = 0 and
 * repeat while it returns 1; it returns 0 at the end, -1 on bad syntax.
 * key/value point into params (not NUL-terminated); vlen 0 and value NULL
 * when there is no "=".
 */
struct mailaddr_param {
	const char *key;
	size_t	    klen;
	const char *value;
	size_t	    vlen;
};
int mailaddr_param_next(const char *params, size_t len, size_t *pos,
    struct mailaddr_param *r);
/* Case-insensitive key comparison. */
bool mailaddr_param_is(const struct mailaddr_param *, const char *key);

#endif
