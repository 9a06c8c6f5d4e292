#include "config.h"

#include <stddef.h>
#include <string.h>

#include "tlsres.h"

static const char *const tlsres_vnames[TLSRES_V_COUNT] = { "none", "untrusted",
	"verified", "mta-sts", "dane" };
static const char *const tlsres_pnames[TLSRES_P_COUNT] = { "no-policy-found",
	"sts", "tlsa", "relayhost" };
static const char *const tlsres_rnames[TLSRES_R_COUNT] = { "success",
	"starttls-not-supported", "certificate-host-mismatch",
	"certificate-expired", "certificate-not-trusted", "validation-failure",
	"tlsa-invalid", "dnssec-invalid", "dane-required",
	"sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid" };

static const char *
tlsres_name(const char *const *v, size_t n, int i)
{
	return i >= 0 && (size_t)i < n ? v[i] : NULL;
}

static int
tlsres_parse(const char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcmp(s, v[i]) == 0)
			return (int)i;
	return -1;
}

const char *
tlsres_verified_name(enum tlsres_verified v)
{
	return tlsres_name(tlsres_vnames, TLSRES_V_COUNT, (int)v);
}

const char *
tlsres_policy_name(enum tlsres_policy p)
{
	return tlsres_name(tlsres_pnames, TLSRES_P_COUNT, (int)p);
}

const char *
tlsres_result_name(enum tlsres_result r)
{
	return tlsres_name(tlsres_rnames, TLSRES_R_COUNT, (int)r);
}

int
tlsres_verified_parse(const char *s, enum tlsres_verified *r)
{
	int i = tlsres_parse(tlsres_vnames, TLSRES_V_COUNT, s);

	if (i >= 0)
		*r = (enum tlsres_verified)i;
	return i >= 0 ? 0 : -1;
}

int
tlsres_policy_parse(const char *s, enum tlsres_policy *r)
{
	int i = tlsres_parse(tlsres_pnames, TLSRES_P_COUNT, s);

	if (i >= 0)
		*r = (enum tlsres_policy)i;
	return i >= 0 ? 0 : -1;
}

int
tlsres_result_parse(const char *s, enum tlsres_result *r)
{
	int i = tlsres_parse(tlsres_rnames, TLSRES_R_COUNT, s);

	if (i >= 0)
		*r = (enum tlsres_result)i;
	return i >= 0 ? 0 : -1;
}
