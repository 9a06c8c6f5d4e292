/*
 * idn: domain names and address keys in ASCII form (idn.h).
 */
#include "config.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "buf.h"
#include "idn.h"

bool
idn_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/*
 * An address literal in one spelling: "[192.0.2.1]", "[ipv6:2001:db8::1]"
 * (inet_ntop's), whatever case and zero runs it was written with; one
 * that does not parse only lower-cased. 0 or -1 (too small).
 */
static int
idn_literal(const char *lit, char *dst, size_t dstsz)
{
	unsigned char a[sizeof(struct in6_addr)];
	char	      in[64], out[INET6_ADDRSTRLEN];
	size_t	      n = strlen(lit);
	bool	      v6 = strncasecmp(lit, "[ipv6:", 6) == 0;
	const char   *p = lit + (v6 ? 6 : 1);

	if (n >= 3 && lit[n - 1] == ']' &&
	    (size_t)(lit + n - 1 - p) < sizeof(in)) {
		memcpy(in, p, (size_t)(lit + n - 1 - p));
		in[lit + n - 1 - p] = '\0';
		if (inet_pton(v6 ? AF_INET6 : AF_INET, in, a) == 1 &&
		    inet_ntop(v6 ? AF_INET6 : AF_INET, a, out, sizeof(out)) !=
			NULL) {
			if (snprintf(dst, dstsz, "[%s%s]", v6 ? "ipv6:" : "",
				out) >= (int)dstsz) {
				dst[0] = '\0';
				return -1;
			}
			return 0;
		}
	}
	if (str_copy(dst, dstsz, lit) == -1) {
		dst[0] = '\0';
		return -1;
	}
	str_lower(dst);
	return 0;
}

int
idn_domain_ascii(const char *domain, char *dst, size_t dstsz)
{
	char *out = NULL;
	int   rc;

	if (domain[0] == '[')
		return idn_literal(domain, dst, dstsz);
	if (idn_is_ascii(domain)) {
		if (str_copy(dst, dstsz, domain) == -1) {
			dst[0] = '\0';
			return -1;
		}
		str_lower(dst);
		return 0;
	}
	rc = idn2_to_ascii_8z(domain, &out,
	    IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK) {
		/* IDNA2003-era names (symbols) still resolve */
		idn2_free(out);
		out = NULL;
		rc = idn2_to_ascii_8z(domain, &out,
		    IDN2_NFC_INPUT | IDN2_TRANSITIONAL);
	}
	if (rc != IDN2_OK || out == NULL || str_copy(dst, dstsz, out) == -1) {
		idn2_free(out);
		dst[0] = '\0';
		return -1;
	}
	idn2_free(out);
	str_lower(dst);
	return 0;
}

int
idn_addr_key(const char *addr, char *dst, size_t dstsz)
{
	const char *at = strrchr(addr, '@');
	size_t	    lp, i;

	if (at == NULL || (idn_is_ascii(at + 1) && at[1] != '[') ||
	    (lp = (size_t)(at - addr) + 1) >= dstsz ||
	    idn_domain_ascii(at + 1, dst + lp, dstsz - lp) == -1) {
		if (str_copy(dst, dstsz, addr) == -1) {
			dst[0] = '\0';
			return -1;
		}
		str_lower(dst);
		return 0;
	}
	memcpy(dst, addr, lp);
	for (i = 0; i < lp; i++)
		if (dst[i] >= 'A' && dst[i] <= 'Z')
			dst[i] = (char)(dst[i] - 'A' + 'a');
	return 0;
}
