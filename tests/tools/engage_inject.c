/*
 * engage-inject: test helper (built for `make check`, never installed)
 * that adds an engagement event (issue 16) for a recipient of a message
 * that has delivery events in the log, the way trackd does: from a
 * tracking record (struct spool_track_msg) built here out of the logged
 * events, through spool_event_init_track and spool_event_add.
 *   engage-inject -c FILE [-m] QID RCPT opened|clicked|unsubscribed|complained
 *       [URL]
 * -m marks the event "machine": true.
 * The recipient index is RCPT's position among the message's logged
 * recipients (first appearance).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "json.h"
#include "log.h"
#include "spool.h"
#include "spool_track.h"
#include "xmem.h"

#define INJ_RCPTS 64

struct inj {
	struct spool_track_msg km;
	char		      *rcpts[INJ_RCPTS];
	const char	      *want;
	long		       idx;
};

static void
inj_str(char *dst, size_t dstsz, const struct json_val *v)
{
	if (json_string(v) != NULL)
		(void)str_copy(dst, dstsz, json_string(v));
}

static int
inj_cb(uint64_t seq, const char *json, size_t len, void *arg)
{
	struct inj	*in = arg;
	struct json_val *j;
	const char	*to;
	char		 err[64];
	int64_t		 id;
	size_t		 i;

	(void)seq;
	j = json_parse_n(json, len, err, sizeof(err));
	if (j == NULL)
		return 0;
	inj_str(in->km.km_login, sizeof(in->km.km_login),
	    json_get(j, "account"));
	inj_str(in->km.km_uniq, sizeof(in->km.km_uniq),
	    json_get(json_get(j, "gate"), "uniq"));
	inj_str(in->km.km_message_id, sizeof(in->km.km_message_id),
	    json_get(j, "message_id"));
	inj_str(in->km.km_from, sizeof(in->km.km_from), json_get(j, "from"));
	if (json_integer(json_get(json_get(j, "issue"), "id"), &id) && id > 0)
		in->km.km_issue = (uint64_t)id;
	if ((to = json_string(json_get(j, "to"))) != NULL) {
		for (i = 0;
		     i < in->km.km_nrcpts && strcasecmp(in->rcpts[i], to) != 0;
		     i++)
			;
		if (i == in->km.km_nrcpts && i < INJ_RCPTS)
			in->rcpts[in->km.km_nrcpts++] = xstrdup(to);
		if (strcasecmp(to, in->want) == 0)
			in->idx = (long)i;
	}
	json_val_free(&j);
	return 0;
}

static void
inj_usage(void)
{
	(void)fprintf(stderr,
	    "usage: engage-inject -c FILE [-m] QID RCPT "
	    "opened|clicked|unsubscribed|complained [URL]\n");
	exit(2);
}

static enum spool_ev_type
inj_type(const char *s)
{
	static const char *const names[] = { "opened", "clicked",
		"unsubscribed", "complained" };
	size_t			 i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return (enum spool_ev_type)(SPOOL_EV_OPENED + i);
	inj_usage();
	return SPOOL_EV_OPENED;
}

int
main(int argc, char **argv)
{
	struct inj	   in;
	struct spool_event ev;
	struct conf	  *cf;
	struct spool	  *sp = NULL;
	struct spool_txn  *txn = NULL;
	const char	  *path = NULL;
	bool		   machine = false;
	int		   ch, rc;

	log_init("engage-inject", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:m")) != -1) {
		if (ch == 'm')
			machine = true;
		else if (ch == 'c')
			path = optarg;
		else
			inj_usage();
	}
	argc -= optind;
	argv += optind;
	if (argc != 3 && argc != 4)
		inj_usage();
	memset(&in, 0, sizeof(in));
	in.km.km_rcpts = in.rcpts;
	in.want = argv[1];
	in.idx = -1;
	cf = conf_load_or_exit(path);
	if ((rc = spool_open(cf->cf_spool_dir, cf->cf_lmdb_map_size,
		 cf->cf_lmdb_map_max, 0, &sp)) != 0 ||
	    (rc = spool_begin(sp, true, &txn)) != 0 ||
	    (rc = spool_log_iter_qid(txn, argv[0], inj_cb, &in)) != 0)
		log_fatalx("%s: %s", argv[0], spool_strerror(rc));
	if (in.idx < 0)
		log_fatalx("%s: no logged event for %s", argv[0], argv[1]);
	spool_event_init_track(&ev, &in.km, argv[0], (uint32_t)in.idx,
	    inj_type(argv[2]), (int64_t)time(NULL));
	ev.ev_url = argc == 4 ? argv[3] : NULL;
	ev.ev_user_agent = "engage-inject";
	ev.ev_client = "127.0.0.0/24";
	ev.ev_machine = machine;
	if ((rc = spool_event_add(txn, &ev, NULL)) != 0 ||
	    (rc = spool_commit(&txn)) != 0)
		log_fatalx("%s: %s", argv[0], spool_strerror(rc));
	spool_close(&sp);
	while (in.km.km_nrcpts > 0)
		free(in.rcpts[--in.km.km_nrcpts]);
	conf_free(&cf);
	return 0;
}
