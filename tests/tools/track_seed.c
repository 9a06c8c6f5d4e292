/*
 * track-seed: test helper (built for `make check`, never installed) that
 * records what spoold records for a tracked message (spool_track_put:
 * the account, the recipients, the links) and prints the tokens deliverd
 * would write into each recipient's copy, as one JSON object:
 *   track-seed -c FILE QID LOGIN RCPT[,RCPT...] [LINK...]
 *   {"open":[TOK,...],"unsub":[TOK,...],"click":[[TOK,...],...]}
 * (one entry per recipient; click: one token per link). When QID names a
 * filed message, the issue, X-Letter-Id, Message-Id, sender and arrival
 * come from it, so the events look like that message's; otherwise the
 * arrival is the time the QID encodes.
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
#include "qid.h"
#include "spool.h"
#include "spool_track.h"
#include "xmem.h"

static void
seed_from_msg(struct spool *sp, const char *qid, struct spool_track_msg *km)
{
	struct spool_txn *txn;
	struct spool_msg  m;

	/* no such message: the arrival its QID encodes */
	km->km_arrival = qid_ok(qid) ? (int64_t)(qid_time_us(qid) / 1000000)
				     : (int64_t)time(NULL);
	if (spool_begin(sp, false, &txn) != 0)
		return;
	if (spool_msg_get(txn, qid, &m) == 0) {
		km->km_issue = m.sm_issue;
		km->km_arrival = m.sm_arrival;
		(void)str_copy(km->km_uniq, sizeof(km->km_uniq),
		    m.sm_letter_id);
		(void)str_copy(km->km_message_id, sizeof(km->km_message_id),
		    m.sm_message_id);
		(void)str_copy(km->km_from, sizeof(km->km_from), m.sm_from);
	}
	spool_abort(&txn);
}

static void
seed_print(const unsigned char *key, const char *qid,
    const struct spool_track_msg *km)
{
	struct spool_track_ref r = { .tk_kind = SPOOL_TRACK_OPEN };
	char		       tok[SPOOL_TRACK_TOKEN_MAX];
	const char	      *kinds[] = { "open", "unsub" };
	size_t		       i, j, k;

	(void)str_copy(r.tk_qid, sizeof(r.tk_qid), qid);
	(void)printf("{");
	for (k = 0; k < 2; k++) {
		r.tk_kind = k == 0 ? SPOOL_TRACK_OPEN : SPOOL_TRACK_UNSUB;
		(void)printf("\"%s\":[", kinds[k]);
		for (i = 0; i < km->km_nrcpts; i++) {
			r.tk_idx = (uint32_t)i;
			if (spool_track_token(key, &r, tok, sizeof(tok)) == -1)
				log_fatalx("spool_track_token");
			(void)printf("%s\"%s\"", i > 0 ? "," : "", tok);
		}
		(void)printf("],");
	}
	(void)printf("\"click\":[");
	r.tk_kind = SPOOL_TRACK_CLICK;
	for (i = 0; i < km->km_nrcpts; i++) {
		(void)printf("%s[", i > 0 ? "," : "");
		for (j = 0; j < km->km_nlinks; j++) {
			r.tk_idx = (uint32_t)i;
			r.tk_link = (uint16_t)j;
			if (spool_track_token(key, &r, tok, sizeof(tok)) == -1)
				log_fatalx("spool_track_token");
			(void)printf("%s\"%s\"", j > 0 ? "," : "", tok);
		}
		(void)printf("]");
	}
	(void)printf("]}\n");
}

int
main(int argc, char **argv)
{
	struct spool_track_msg km;
	struct conf	      *cf = NULL;
	struct spool	      *sp = NULL;
	struct spool_txn      *txn = NULL;
	unsigned char	       key[SPOOL_TRACK_KEYLEN];
	char		      *rc_list, *p, *save = NULL;
	int		       ch, rc;

	log_init("track-seed", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:")) != -1)
		if (ch != 'c' || (cf = conf_load_or_exit(optarg)) == NULL)
			return 2;
	argc -= optind;
	argv += optind;
	if (cf == NULL || argc < 3) {
		(void)fprintf(stderr,
		    "usage: track-seed -c FILE QID LOGIN RCPT[,RCPT...] "
		    "[LINK...]\n");
		return 2;
	}
	memset(&km, 0, sizeof(km));
	(void)str_copy(km.km_login, sizeof(km.km_login), argv[1]);
	km.km_track = SPOOL_TRACK_F_OPENS | SPOOL_TRACK_F_CLICKS |
	    SPOOL_TRACK_F_UNSUB;
	(void)str_copy(km.km_host, sizeof(km.km_host), "track.test");
	rc_list = xstrdup(argv[2]);
	for (p = strtok_r(rc_list, ",", &save); p != NULL;
	     p = strtok_r(NULL, ",", &save)) {
		km.km_rcpts = xreallocarray(km.km_rcpts, km.km_nrcpts + 1,
		    sizeof(char *));
		km.km_rcpts[km.km_nrcpts++] = xstrdup(p);
	}
	km.km_links = argv + 3;
	km.km_nlinks = (size_t)(argc - 3);
	if ((rc = spool_tree_create(cf)) != 0 ||
	    (rc = spool_open(cf->cf_spool_dir, cf->cf_lmdb_map_size,
		 cf->cf_lmdb_map_max, 0, &sp)) != 0 ||
	    (rc = spool_track_key_load(cf->cf_spool_dir, true, key)) != 0)
		log_fatalx("%s: %s", cf->cf_spool_dir, spool_strerror(rc));
	seed_from_msg(sp, argv[0], &km);
	if ((rc = spool_begin(sp, true, &txn)) != 0 ||
	    (rc = spool_track_put(txn, argv[0], &km)) != 0 ||
	    (rc = spool_commit(&txn)) != 0) {
		spool_abort(&txn);
		log_fatalx("spool_track_put %s: %s", argv[0],
		    spool_strerror(rc));
	}
	spool_close(&sp);
	seed_print(key, argv[0], &km);
	return 0;
}
