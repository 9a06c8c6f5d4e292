/*
 * The classification corpus (issue 15): every real-world reply in
 * tests/data/bounce-corpus is classified with the shipped
 * contrib/bounce-rules and must get the category the corpus names. Prints
 * the table: category x count, then one row per provider.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "tap.h"

#define CORPUS_PROVIDERS 32

struct corpus {
	struct bounce_rules *rules;
	size_t		     n, bad;
	size_t		     bycat[BOUNCE_CAT_COUNT];
	char		     prov[CORPUS_PROVIDERS][32];
	size_t		     provcat[CORPUS_PROVIDERS][BOUNCE_CAT_COUNT];
	size_t		     nprov;
};

static size_t
corpus_provider(struct corpus *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nprov; i++)
		if (strcmp(c->prov[i], name) == 0)
			return i;
	if (c->nprov == CORPUS_PROVIDERS)
		return CORPUS_PROVIDERS - 1;
	(void)snprintf(c->prov[c->nprov], sizeof(c->prov[0]), "%s", name);
	return c->nprov++;
}

/* "provider \t stage \t category \t reply" */
static void
corpus_line(struct corpus *c, char *line, size_t lineno)
{
	char		 *f[4], *p = line;
	size_t		  i;
	enum bounce_stage st;
	enum bounce_cat	  want, got;

	line[strcspn(line, "\r\n")] = '\0';
	if (line[0] == '#' || line[0] == '\0')
		return;
	for (i = 0; i < 4; i++) {
		f[i] = p;
		if (i < 3 && (p = strchr(p, '\t')) != NULL)
			*p++ = '\0';
		if (p == NULL) {
			t_ok(false,
			    "corpus line %zu: not 4 TAB-separated fields",
			    lineno);
			return;
		}
	}
	st = bounce_stage_parse(f[1]);
	want = bounce_cat_parse(f[2]);
	if (!t_ok(st != BOUNCE_ST_UNKNOWN && want != BOUNCE_NONE,
		"corpus line %zu: stage \"%s\", category \"%s\"", lineno, f[1],
		f[2]))
		return;
	got = bounce_classify(c->rules, st, f[3]);
	c->n++;
	c->bycat[got]++;
	c->provcat[corpus_provider(c, f[0])][got]++;
	if (got != want) {
		c->bad++;
		t_ok(false, "corpus line %zu (%s, %s): got %s, want %s: %s",
		    lineno, f[0], f[1],
		    got == BOUNCE_NONE ? "none" : bounce_cat_name(got), f[2],
		    f[3]);
	}
}

static void
corpus_table(const struct corpus *c)
{
	size_t i, j;
	int    k;

	t_diag("%-18s %5s", "category", "count");
	for (k = BOUNCE_NONE + 1; k < BOUNCE_CAT_COUNT; k++)
		t_diag("%-18s %5zu", bounce_cat_name(k), c->bycat[k]);
	t_diag("%-18s %5zu", "total", c->n);
	t_diag("per provider (bm bd in qu po sp vi ro pr na rd ex ot):");
	for (i = 0; i < c->nprov; i++) {
		char   row[128];
		size_t off = 0;

		for (j = BOUNCE_NONE + 1; j < BOUNCE_CAT_COUNT; j++)
			off += (size_t)snprintf(row + off, sizeof(row) - off,
			    " %2zu", c->provcat[i][j]);
		t_diag("%-12s%s", c->prov[i], row);
	}
}

static void
t_corpus(void)
{
	const char    *src = getenv("SMTPGATE_SRCDIR");
	char	       path[4096], err[512], line[4096];
	struct corpus *c = calloc(1, sizeof(*c));
	FILE	      *fp;
	size_t	       lineno = 0;

	if (c == NULL)
		return;
	(void)snprintf(path, sizeof(path), "%s/contrib/bounce-rules",
	    src ? src : ".");
	c->rules = bounce_rules_load(path, err, sizeof(err));
	if (!t_ok(c->rules != NULL, "the shipped rules load: %s",
		c->rules ? path : err))
		goto out;
	(void)snprintf(path, sizeof(path), "%s/tests/data/bounce-corpus",
	    src ? src : ".");
	if (!t_ok((fp = fopen(path, "r")) != NULL, "open %s", path))
		goto out;
	while (fgets(line, sizeof(line), fp) != NULL)
		corpus_line(c, line, ++lineno);
	(void)fclose(fp);
	corpus_table(c);
	t_ok(c->n >= 100, "at least 100 real replies (%zu)", c->n);
	t_ok(c->bad == 0, "every reply gets its category (%zu wrong)", c->bad);
out:
	bounce_rules_free(c->rules);
	free(c);
}

int
main(void)
{
	static const struct t_case cases[] = {
		{ "corpus", t_corpus },
	};

	return T_RUN(cases);
}
