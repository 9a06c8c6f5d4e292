/*
 * Unit tests of the configuration table itself (common/conf_keys.c): the
 * owner column, unique names, aliases that agree, and members that receive
 * their defaults. The member types are checked by the compiler (CONF_OFF).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_keys.h"
#include "log.h"
#include "tap.h"

/* Every key is read by at least one program that exists today, and names
 * only known programs. */
static void
t_owners(void)
{
	size_t i;
	bool   ok = true;

	for (i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];

		if ((k->owner & CONF_SPOOL) == 0 ||
		    (k->owner & ~(unsigned)CONF_ALL) != 0) {
			t_diag("%s: owner 0x%x", k->name, k->owner);
			ok = false;
		}
	}
	t_ok(ok, "every key has a known owner among the programs");
	t_ok(conf_nkeys > 30, "the table has its keys (%zu)", conf_nkeys);
}

static void
t_names(void)
{
	size_t i, j;
	bool   ok = true;

	for (i = 0; i < conf_nkeys; i++)
		for (j = i + 1; j < conf_nkeys; j++)
			if (strcmp(conf_keys[i].name, conf_keys[j].name) == 0) {
				t_diag("%s twice", conf_keys[i].name);
				ok = false;
			}
	t_ok(ok, "key names are unique");
}

/* Two keys on one member (an alias) must agree on everything but the name;
 * a member offset lies inside struct conf and is not cf_path (offset 0). */
static void
t_aliases(void)
{
	size_t i, j;
	bool   ok = true;

	for (i = 0; i < conf_nkeys; i++) {
		const struct conf_key *a = &conf_keys[i];

		if (a->type == CONF_T_LISTEN)
			continue;
		if (a->off == 0 || a->off >= sizeof(struct conf)) {
			t_diag("%s: offset %zu", a->name, a->off);
			ok = false;
		}
		for (j = i + 1; j < conf_nkeys; j++) {
			const struct conf_key *b = &conf_keys[j];

			if (b->type == CONF_T_LISTEN || b->off != a->off)
				continue;
			if (a->type != b->type || a->min != b->min ||
			    a->max != b->max || a->owner != b->owner ||
			    strcmp(a->def, b->def) != 0) {
				t_diag("%s and %s share a member but differ",
				    a->name, b->name);
				ok = false;
			}
		}
	}
	t_ok(ok, "aliases agree; offsets lie inside struct conf");
}

/* Each numeric key's default reaches the member its offset names. */
static void
t_defaults_land(void)
{
	char	     err[512];
	struct conf *cf = conf_defaults(err, sizeof(err));
	size_t	     i;
	bool	     ok = true;
	int64_t	     want;
	time_t	     t;
	bool	     b;

	if (!t_ok(cf != NULL, "defaults load (%s)", cf ? "" : err))
		return;
	for (i = 0; i < conf_nkeys; i++) {
		const struct conf_key *k = &conf_keys[i];
		const char	      *at = (const char *)cf + k->off;

		switch (k->type) {
		case CONF_T_INT:
			want = strtoll(k->def, NULL, 10);
			ok &= *(const int64_t *)at == want;
			break;
		case CONF_T_SIZE:
			ok &= conf_parse_size(k->def, &want) == 0 &&
			    *(const int64_t *)at == want;
			break;
		case CONF_T_DURATION:
			ok &= conf_parse_duration(k->def, &t) == 0 &&
			    *(const time_t *)at == t;
			break;
		case CONF_T_BOOL:
			ok &= conf_parse_bool(k->def, &b) == 0 &&
			    *(const bool *)at == b;
			break;
		case CONF_T_STR:
		case CONF_T_ENUM:
			if (k->def[0] != '@')
				ok &= strcmp(*(char *const *)at, k->def) == 0;
			break;
		default:
			break;
		}
		if (!ok) {
			t_diag("%s: default not in its member", k->name);
			break;
		}
	}
	t_ok(ok, "every default lands in its member");
	conf_free(&cf);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "owners", t_owners },
		{ "names", t_names },
		{ "aliases", t_aliases },
		{ "defaults_land", t_defaults_land },
	};

	log_init("t_conf_keys", LOG_DEST_STDERR);
	return T_RUN(cases);
}
