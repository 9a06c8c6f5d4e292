/*
 * Unit tests for common/pwcheck: right and wrong passwords, and that the
 * unknown-user path hashes as much as a real check (issue 14 item 6).
 * crypt_ra is replaced at link time (STYLE T3) by a wrapper that counts
 * the calls and records the setting, then calls libcrypt's.
 */
#define _GNU_SOURCE 1
#include "config.h"

#include <crypt.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pwcheck.h"
#include "tap.h"

static unsigned crypt_calls;
static char	last_setting[CRYPT_OUTPUT_SIZE];

char *
crypt_ra(const char *phrase, const char *setting, void **data, int *size)
{
	static char *(*real)(const char *, const char *, void **, int *);

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "crypt_ra");
	crypt_calls++;
	(void)snprintf(last_setting, sizeof(last_setting), "%s", setting);
	return real(phrase, setting, data, size);
}

/* "$y$j9T$": the scheme and cost parameters of a yescrypt hash. */
static size_t
params_len(const char *h)
{
	const char *p = strchr(h + 3, '$');

	return p != NULL ? (size_t)(p - h) + 1 : 0;
}

static void
t_paths_cost_the_same(void)
{
	char	*setting, real[CRYPT_OUTPUT_SIZE];
	void	*data = NULL;
	int	 size = 0;
	unsigned before;

	setting = crypt_gensalt_ra("$y$", 0, NULL, 0); /* as spoolctl does */
	t_ok(setting != NULL &&
		crypt_ra("right", setting, &data, &size) != NULL,
	    "a real yescrypt hash");
	(void)snprintf(real, sizeof(real), "%s", (char *)data);
	free(setting);
	free(data);
	t_ok(pwcheck_init() == 0, "pwcheck_init");

	before = crypt_calls;
	t_ok(pwcheck_ok(real, "right", 5), "right password");
	t_int_eq(crypt_calls - before, 1, "one hash for a known user");
	before = crypt_calls;
	t_ok(!pwcheck_ok(real, "wrong", 5), "wrong password");
	t_int_eq(crypt_calls - before, 1, "one hash for a wrong password");
	before = crypt_calls;
	t_ok(!pwcheck_ok(NULL, "right", 5), "unknown user refused");
	t_int_eq(crypt_calls - before, 1, "one hash for an unknown user");
	t_ok(params_len(last_setting) > 0 &&
		params_len(last_setting) == params_len(real) &&
		strncmp(last_setting, real, params_len(real)) == 0,
	    "the dummy has the real hashes' scheme and cost (%.*s)",
	    (int)params_len(real), real);
	before = crypt_calls;
	t_ok(!pwcheck_ok("", "", 0), "no password: refused, even an empty one");
	t_int_eq(crypt_calls - before, 1,
	    "one hash for an account without a password");
	before = crypt_calls;
	t_ok(!pwcheck_ok("*", "*", 1) && !pwcheck_ok("!locked", "x", 1),
	    "locked hashes refused");
	t_int_eq(crypt_calls - before, 2, "one hash each for locked hashes");
	before = crypt_calls;
	t_ok(!pwcheck_ok("$y$garbage", "x", 1), "an unusable hash refused");
	t_ok(crypt_calls - before == 2 &&
		strcmp(last_setting, "$y$garbage") != 0,
	    "an unusable hash is followed by the dummy");
}

int
main(void)
{
	static const struct t_case tc[] = {
		{ "every path hashes", t_paths_cost_the_same },
	};

	return T_RUN(tc);
}
