/* tfix: spool-tree fixtures of the unit tests (see tfix.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "spool.h"
#include "ev.h"
#include "tap.h"
#include "tfix.h"

void
t_rmtree(const char *dir)
{
	char	cmd[1100];

	if (dir[0] == '\0')
		return;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		t_diag("cannot remove %s", dir);
}

void
t_fresh_dir(char *dir, size_t dirsz, const char *name)
{
	t_rmtree(dir);
	if (snprintf(dir, dirsz, "/tmp/%s.XXXXXX", name) >= (int)dirsz ||
	    mkdtemp(dir) == NULL)
		abort();
}

struct spool *
t_spool_fresh(char *dir, size_t dirsz, const char *name, int64_t map)
{
	struct spool	*sp = NULL;
	int		 rc;

	t_fresh_dir(dir, dirsz, name);
	if ((rc = spool_open(dir, map, map, 0, &sp)) != 0) {
		t_diag("spool_open: %s", spool_strerror(rc));
		abort();
	}
	return sp;
}

struct conf *
t_spool_conf(char *dir, size_t dirsz, const char *name)
{
	struct conf	*cf;
	char		 err[256];

	t_fresh_dir(dir, dirsz, name);
	if ((cf = conf_defaults(err, sizeof(err))) == NULL)
		abort();
	free(cf->cf_spool_dir);
	cf->cf_spool_dir = strdup(dir);
	if (geteuid() == 0) {
		free(cf->cf_spoold_user);
		free(cf->cf_deliverd_user);
		free(cf->cf_group);
		cf->cf_spoold_user = strdup("root");
		cf->cf_deliverd_user = strdup("root");
		cf->cf_group = strdup("root");
	}
	return cf;
}

static void
t_woken(struct ev *e, void *arg)
{
	(void)e;
	(void)arg;
}

struct ev *
t_wake_loop(void)
{
	struct ev	*e;

	if ((e = ev_new(4, 1)) == NULL || ev_wakeup_init(e, t_woken, NULL) == -1)
		abort();
	return e;
}

struct spool_txn *
t_wtxn(struct spool *sp)
{
	struct spool_txn	*t;

	if (spool_begin(sp, true, &t) != 0)
		abort();
	return t;
}

int
t_count_rec(const uint8_t *k, size_t kl, const void *v, size_t vl, void *arg)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(size_t *)arg)++;
	return 0;
}
