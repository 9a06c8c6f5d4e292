/* pwcheck: see pwcheck.h. */
#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "buf.h"
#include "pwcheck.h"
#include "xmem.h"

static char pwcheck_dummy[CRYPT_OUTPUT_SIZE];

/* Compares without an early exit on the first differing byte. */
static bool
pwcheck_ct_eq(const char *a, const char *b)
{
	size_t	      la = strlen(a), lb = strlen(b), i;
	unsigned char d = la != lb;

	for (i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

int
pwcheck_init(void)
{
	unsigned char r[16];
	char	      pw[2 * sizeof(r) + 1], *setting, *out;
	void	     *data = NULL;
	int	      size = 0, rc = -1;
	size_t	      i;

	if (pwcheck_dummy[0] != '\0')
		return 0;
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	for (i = 0; i < sizeof(r); i++) {
		pw[2 * i] = "0123456789abcdef"[r[i] >> 4];
		pw[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
	}
	pw[2 * sizeof(r)] = '\0';
	if ((setting = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL)
		goto done;
	out = crypt_ra(pw, setting, &data, &size);
	if (out != NULL && out[0] == '$' &&
	    str_copy(pwcheck_dummy, sizeof(pwcheck_dummy), out) == 0)
		rc = 0;
	else
		errno = EINVAL;
	free(setting);
done:
	explicit_bzero(pw, sizeof(pw));
	freezero(data, (size_t)size);
	return rc;
}

bool
pwcheck_ok(const char *hash, const char *pass, size_t passlen)
{
	bool	    real = hash != NULL && hash[0] == '$';
	const char *against = real ? hash : pwcheck_dummy;
	char	   *pw, *out;
	void	   *data = NULL;
	int	    size = 0;
	bool	    ok = false;

	if (pwcheck_dummy[0] == '\0' && pwcheck_init() == -1 && !real)
		return false; /* no random source: nothing to hide behind */
	pw = xstrndup(pass, passlen);
	out = crypt_ra(pw, against, &data, &size);
	/* a real hash libxcrypt cannot compute fails at once ("*0"): it is
	 * computed again against the dummy so that it takes as long */
	if (real && (out == NULL || out[0] == '*') &&
	    pwcheck_dummy[0] != '\0') {
		freezero(data, (size_t)size);
		data = NULL;
		size = 0;
		(void)crypt_ra(pw, pwcheck_dummy, &data, &size);
	} else if (real && out != NULL)
		ok = pwcheck_ct_eq(out, hash);
	freezero(pw, passlen + 1);
	freezero(data, (size_t)size);
	return ok;
}
