/*
 * spoold-seed: test helper (built for `make check`, never installed) that
 * writes the policy records spoolctl has no command for: permanent
 * failures, which deliverd records after a hard bounce.
 *   spoold-seed -c FILE permfail LOGIN ADDRESS [AGE_SECONDS]
 * AGE_SECONDS backdates the entry (suppression_ttl tests).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "spool.h"

int
main(int argc, char **argv)
{
	struct conf	 *cf;
	struct spool	 *sp = NULL;
	struct spool_txn *txn = NULL;
	const char	 *path = NULL;
	char		  addr[SPOOL_ADDR_MAX], *end;
	long long	  age = 0;
	int		  ch, rc;

	log_init("spoold-seed", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		if (ch != 'c') {
			(void)fprintf(stderr,
			    "usage: spoold-seed -c FILE permfail LOGIN ADDRESS "
			    "[AGE_SECONDS]\n");
			return 2;
		}
		path = optarg;
	}
	argc -= optind;
	argv += optind;
	if (argc == 4 && (age = strtoll(argv[3], &end, 10)) >= 0 &&
	    *end == '\0' && end != argv[3])
		argc--;
	if (argc != 3 || strcmp(argv[0], "permfail") != 0) {
		(void)fprintf(stderr,
		    "usage: spoold-seed -c FILE permfail LOGIN ADDRESS "
		    "[AGE_SECONDS]\n");
		return 2;
	}
	cf = conf_load_or_exit(path);
	(void)str_copy(addr, sizeof(addr), argv[2]);
	str_lower(addr);
	if ((rc = spool_tree_create(cf)) != 0 ||
	    (rc = spool_open(cf->cf_spool_dir, cf->cf_lmdb_map_size,
		 cf->cf_lmdb_map_max, 0, &sp)) != 0 ||
	    (rc = spool_begin(sp, true, &txn)) != 0 ||
	    (rc = spool_permfail_put(txn, argv[1], addr,
		 (int64_t)time(NULL) - age, "550 5.1.1 test: user unknown")) !=
		0 ||
	    (rc = spool_commit(&txn)) != 0) {
		spool_abort(&txn);
		spool_close(&sp);
		log_fatalx("permfail %s %s: %s", argv[1], addr,
		    spool_strerror(rc));
	}
	spool_close(&sp);
	conf_free(&cf);
	return 0;
}
