/* Unit tests for spool/spool_tag: the envelope key and account tags. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"

static char dir[64];

static void
t_key(void)
{
	unsigned char k1[SPOOL_TAG_KEYLEN], k2[SPOOL_TAG_KEYLEN];
	char	      db[128], path[160];
	struct stat   st;

	(void)snprintf(db, sizeof(db), "%s/db", dir);
	(void)snprintf(path, sizeof(path), "%s/envelope.key", db);
	t_ok(mkdir(db, 0700) == 0, "mkdir db");
	t_int_eq(spool_tag_load(dir, k1), 0, "first load makes the key");
	t_ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 &&
		st.st_size == SPOOL_TAG_KEYLEN,
	    "0600, %d bytes", SPOOL_TAG_KEYLEN);
	t_int_eq(spool_tag_load(dir, k2), 0, "second load reads it");
	t_ok(memcmp(k1, k2, sizeof(k1)) == 0, "the same key");
	t_ok(chmod(path, 0644) == 0, "chmod 0644");
	t_int_eq(spool_tag_load(dir, k2), EPERM,
	    "a key others can read is refused");
	t_ok(unlink(path) == 0 && symlink("/etc/hostname", path) == 0,
	    "symlink");
	t_int_eq(spool_tag_load(dir, k2), ELOOP, "a symlinked key is refused");
	(void)unlink(path);
	(void)rmdir(db);
}

static void
t_tags(void)
{
	unsigned char key[SPOOL_TAG_KEYLEN], other[SPOOL_TAG_KEYLEN];
	char	      a[SPOOL_TAG_HEX], b[SPOOL_TAG_HEX], long_login[600];

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	spool_tag_make(key, "acme", a);
	spool_tag_make(key, "acme2", b);
	t_int_eq((long long)strlen(a), SPOOL_TAG_HEX - 1, "64 hex digits");
	t_ok(strcmp(a, b) != 0, "accounts get different tags");
	t_ok(spool_tag_ok(key, "acme", a), "its own tag verifies");
	t_ok(!spool_tag_ok(key, "acme2", a), "another account's tag does not");
	t_ok(!spool_tag_ok(other, "acme", a), "another key's tag does not");
	t_ok(!spool_tag_ok(key, "acme", ""), "an empty tag does not");
	a[5] = a[5] == '0' ? '1' : '0';
	t_ok(!spool_tag_ok(key, "acme", a), "a changed digit does not");
	memset(long_login, 'x', sizeof(long_login) - 1);
	long_login[sizeof(long_login) - 1] = '\0';
	spool_tag_make(key, long_login, a);
	t_ok(a[0] == '\0' && !spool_tag_ok(key, long_login, a),
	    "an over-long login gets no tag and never verifies");
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "key", t_key },
		{ "tags", t_tags },
	};
	int rc;

	(void)snprintf(dir, sizeof(dir), "/tmp/t_spool_tag.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	rc = T_RUN(cases);
	(void)rmdir(dir);
	return rc;
}
