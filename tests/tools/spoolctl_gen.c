/*
 * spoolctl-gen: fills a spool with synthetic messages through the spool
 * API, for the `spoolctl queue` benchmark and for spoolctl's black-box
 * tests when the daemons are not wanted (not installed).
 *
 *   spoolctl-gen -c CONF [-n MESSAGES] [-r RCPTS] [-a ACCOUNT] [-s STATE]
 *       [-d DOMAIN] [-t AGE_SECONDS] [-i CAMPAIGN] [-f] [-e]
 *
 * STATE is queued, deferred, delivered, bounced or mixed (the default:
 * recipient k of each message gets state k % 4). -f writes queue/QID
 * (envelope + a small message) so `show --body` works; -e adds the
 * delivery-log events that the states imply (deferred: one deferred event;
 * delivered; bounced: class remote) and exports them to the event log.
 * Prints the QIDs it made, one a line. Commits every 1,000 messages.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fsx.h"
#include "log.h"
#include "priv.h"
#include "qid.h"
#include "spool.h"
#include "xmem.h"

struct gen {
	struct conf  *cf;
	struct spool *sp;
	long	      n, nrcpt;
	const char   *account, *domain, *campaign;
	int	      state; /* -1 mixed */
	int64_t	      age;
	bool	      files, events;
};

static const char *const gen_replies[] = {
	"250 2.0.0 Ok: queued as 4F2A", /* queued: never tried */
	"451 4.3.0 try again later",
	"250 2.0.0 Ok: queued as 4F2A",
	"550 5.1.1 user unknown",
};

static void
gen_die_rc(int rc, const char *what)
{
	(void)fprintf(stderr, "spoolctl-gen: %s: %s\n", what,
	    spool_strerror(rc));
	exit(1);
}

static void
gen_file(struct gen *g, struct spool_msg *sm, char **rcpts, size_t n)
{
	struct spool_env env;
	struct buf	 b;
	char		 dir[4096];
	size_t		 i;
	int		 rc;

	spool_env_init(&env);
	(void)str_copy(env.pe_qid, sizeof(env.pe_qid), sm->sm_qid);
	env.pe_time = sm->sm_arrival;
	(void)str_copy(env.pe_account, sizeof(env.pe_account), sm->sm_login);
	(void)str_copy(env.pe_client, sizeof(env.pe_client), "127.0.0.1:2525");
	(void)str_copy(env.pe_helo, sizeof(env.pe_helo), "gen.test");
	(void)str_copy(env.pe_from, sizeof(env.pe_from), sm->sm_from);
	for (i = 0; i < n; i++)
		(void)spool_env_add_rcpt(&env, rcpts[i]);
	buf_init(&b, 1 << 20);
	if ((rc = spool_env_format(&env, &b)) != 0)
		gen_die_rc(rc, "envelope");
	sm->sm_body_off = (int64_t)b.len;
	(void)buf_printf(&b,
	    "Received: from gen.test by gate.test; spoolctl_gen\r\n"
	    "Message-Id: %s\r\nDate: Sun, 29 Nov 2026 16:04:05 +0000\r\n"
	    "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain\r\nX-Letter-Id: %s\r\n\r\nbody of %s\r\n",
	    sm->sm_message_id, sm->sm_from, rcpts[0], sm->sm_subject,
	    sm->sm_letter_id, sm->sm_qid);
	sm->sm_size = (int64_t)b.len - sm->sm_body_off;
	if (spool_path(dir, sizeof(dir), g->cf->cf_spool_dir, SPOOL_QUEUE,
		NULL) != 0 ||
	    fsx_write_durable(dir, sm->sm_qid, b.data, b.len, 0640) == -1) {
		(void)fprintf(stderr, "spoolctl-gen: write queue/%s: %s\n",
		    sm->sm_qid, strerror(errno));
		exit(1);
	}
	buf_release(&b);
	spool_env_free(&env);
}

static void
gen_event(struct spool_txn *txn, const struct spool_msg *sm,
    const struct spool_rcpt *sr, int64_t when)
{
	struct spool_event ev;
	int		   rc;

	memset(&ev, 0, sizeof(ev));
	ev.ev_type = sr->sr_state == SPOOL_RS_DELIVERED ? SPOOL_EV_DELIVERED
	    : sr->sr_state == SPOOL_RS_DEFERRED		? SPOOL_EV_DEFERRED
							: SPOOL_EV_BOUNCED;
	ev.ev_class = sr->sr_state == SPOOL_RS_BOUNCED ? SPOOL_CL_REMOTE
						       : SPOOL_CL_NONE;
	ev.ev_dt = when;
	ev.ev_login = sm->sm_login;
	ev.ev_qid = sm->sm_qid;
	ev.ev_issue = sm->sm_issue;
	ev.ev_uniq = sm->sm_letter_id;
	ev.ev_from = sm->sm_from;
	ev.ev_to = sr->sr_addr;
	ev.ev_message_id = sm->sm_message_id;
	ev.ev_msg = sr->sr_reply;
	ev.ev_attempt = sr->sr_attempts;
	ev.ev_hop = sr->sr_hop;
	ev.ev_tls = sr->sr_tls;
	if ((rc = spool_event_add(txn, &ev, NULL)) != 0)
		gen_die_rc(rc, "event");
}

static void
gen_rcpt(struct spool_rcpt *sr, const struct spool_msg *sm, long k, int state,
    const char *addr, int64_t now)
{
	memset(sr, 0, sizeof(*sr));
	memcpy(sr->sr_qid, sm->sm_qid, sizeof(sr->sr_qid));
	sr->sr_idx = (uint32_t)k;
	(void)str_copy(sr->sr_addr, sizeof(sr->sr_addr), addr);
	sr->sr_state = (enum spool_rcpt_state)state;
	sr->sr_attempts = state == SPOOL_RS_QUEUED ? 0 : 1;
	sr->sr_last = state == SPOOL_RS_QUEUED ? 0 : now - 60;
	sr->sr_next = state == SPOOL_RS_DEFERRED ? now + 3600 : now;
	if (state != SPOOL_RS_QUEUED) {
		if (state == SPOOL_RS_BOUNCED)
			(void)str_printf(sr->sr_reply, sizeof(sr->sr_reply),
			    "550 5.1.1 <%s>: user unknown", addr);
		else
			(void)str_copy(sr->sr_reply, sizeof(sr->sr_reply),
			    gen_replies[state]);
		(void)str_copy(sr->sr_hop, sizeof(sr->sr_hop),
		    "mx.test[127.0.0.1]:25");
		(void)str_copy(sr->sr_tls, sizeof(sr->sr_tls),
		    "TLSv1.3 TLS_AES_256_GCM_SHA384");
	}
}

static void
gen_message(struct gen *g, struct spool_txn *txn, long i, int64_t now)
{
	static struct spool_msg sm;
	struct spool_issue	si;
	struct spool_rcpt	sr;
	char			date[11], **addrs;
	long			k;
	int			rc, state;

	memset(&sm, 0, sizeof(sm));
	qid_make(sm.sm_qid);
	(void)str_copy(sm.sm_login, sizeof(sm.sm_login), g->account);
	sm.sm_arrival = now - g->age;
	spool_date(sm.sm_arrival, date);
	if ((rc = spool_issue_find_or_create(txn, g->account, date, g->campaign,
		 &si)) != 0)
		gen_die_rc(rc, "issue");
	si.su_msgs++;
	si.su_rcpts += (uint64_t)g->nrcpt;
	if ((rc = spool_issue_put(txn, &si)) != 0)
		gen_die_rc(rc, "issue");
	sm.sm_issue = si.su_id;
	(void)str_printf(sm.sm_from, sizeof(sm.sm_from),
	    "sender%ld@example.com", i % 7);
	(void)str_copy(sm.sm_from_hdr, sizeof(sm.sm_from_hdr), sm.sm_from);
	(void)str_printf(sm.sm_message_id, sizeof(sm.sm_message_id),
	    "<%s@gen.test>", sm.sm_qid);
	(void)str_printf(sm.sm_subject, sizeof(sm.sm_subject), "message %ld",
	    i);
	(void)str_printf(sm.sm_letter_id, sizeof(sm.sm_letter_id), "L%ld", i);
	sm.sm_has_letter_id = true;
	(void)str_copy(sm.sm_client, sizeof(sm.sm_client), "127.0.0.1:2525");
	sm.sm_nrcpt = (uint32_t)g->nrcpt;
	sm.sm_size = 4096;
	addrs = xcalloc((size_t)g->nrcpt, sizeof(*addrs));
	for (k = 0; k < g->nrcpt; k++) {
		addrs[k] = xmalloc(SPOOL_ADDR_MAX);
		(void)snprintf(addrs[k], SPOOL_ADDR_MAX, "rcpt%ld.%ld@%s", i, k,
		    g->domain);
	}
	if (g->files)
		gen_file(g, &sm, addrs, (size_t)g->nrcpt);
	for (k = 0; k < g->nrcpt; k++) {
		state = g->state >= 0 ? g->state : (int)(k % 4);
		gen_rcpt(&sr, &sm, k, state, addrs[k], now);
		sm.sm_npending += state <= SPOOL_RS_DEFERRED;
		if ((rc = spool_rcpt_put(txn, &sr)) != 0)
			gen_die_rc(rc, "recipient");
		if (g->events && state != SPOOL_RS_QUEUED)
			gen_event(txn, &sm, &sr, now - 60);
		free(addrs[k]);
	}
	free(addrs);
	if ((rc = spool_msg_put(txn, &sm)) != 0)
		gen_die_rc(rc, "message");
	printf("%s\n", sm.sm_qid);
}

static int
gen_state(const char *s)
{
	static const char *const names[] = { "queued", "deferred", "delivered",
		"bounced" };
	int			 i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	if (strcmp(s, "mixed") != 0) {
		(void)fprintf(stderr,
		    "spoolctl-gen: -s "
		    "queued|deferred|delivered|bounced|mixed\n");
		exit(2);
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct gen	  g = { .n = 1,
		       .nrcpt = 1,
		       .account = "gen@test",
		       .domain = "example.net",
		       .campaign = NULL,
		       .state = -1 };
	struct spool_txn *txn = NULL;
	const char	 *conf = NULL;
	int64_t		  now = (int64_t)time(NULL);
	long		  i;
	size_t		  nexp;
	int		  ch, rc;

	log_init("spoolctl-gen", LOG_DEST_STDERR);
	while ((ch = getopt(argc, argv, "c:n:r:a:s:d:t:i:fe")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'n':
			g.n = strtol(optarg, NULL, 10);
			break;
		case 'r':
			g.nrcpt = strtol(optarg, NULL, 10);
			break;
		case 'a':
			g.account = optarg;
			break;
		case 's':
			g.state = gen_state(optarg);
			break;
		case 'd':
			g.domain = optarg;
			break;
		case 't':
			g.age = strtoll(optarg, NULL, 10);
			break;
		case 'i':
			g.campaign = optarg;
			break;
		case 'f':
			g.files = true;
			break;
		case 'e':
			g.events = true;
			break;
		default:
			(void)fprintf(stderr,
			    "usage: spoolctl-gen -c CONF [-n N] [-r RCPTS] "
			    "[-a ACCOUNT] [-s STATE] [-d DOMAIN] [-t AGE] [-i "
			    "CAMPAIGN] [-f] [-e]\n");
			return 2;
		}
	}
	if (g.n < 0 || g.nrcpt < 1 || g.nrcpt > 10000)
		return 2;
	g.cf = conf_load_or_exit(conf);
	if ((rc = spool_tree_create(g.cf)) != 0)
		gen_die_rc(rc, "spool tree");
	if (priv_is_root()) /* as spoolctl: files belong to the daemons */
		priv_drop(g.cf->cf_spoold_user, g.cf->cf_group, NULL);
	if ((rc = spool_open(g.cf->cf_spool_dir, g.cf->cf_lmdb_map_size,
		 g.cf->cf_lmdb_map_max, 0, &g.sp)) != 0)
		gen_die_rc(rc, "open");
	for (i = 0; i < g.n; i++) {
		if (txn == NULL && (rc = spool_begin(g.sp, true, &txn)) != 0)
			gen_die_rc(rc, "begin");
		gen_message(&g, txn, i, now);
		if (i % 1000 == 999 && (rc = spool_commit(&txn)) != 0)
			gen_die_rc(rc, "commit");
	}
	if (txn != NULL && (rc = spool_commit(&txn)) != 0)
		gen_die_rc(rc, "commit");
	if (g.events &&
	    (rc = spool_events_export(g.sp, g.cf->cf_event_log, &nexp)) != 0)
		gen_die_rc(rc, "export");
	spool_close(&g.sp);
	conf_free(&g.cf);
	return 0;
}
