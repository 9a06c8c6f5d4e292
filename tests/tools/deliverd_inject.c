/*
 * deliverd-inject: a test helper (never installed) that files messages,
 * accounts and DKIM keys straight into a spool through the spool API, the
 * way spoold and spoolctl would, so deliverd can be tested on its own.
 *   deliverd-inject -c CONF account LOGIN [sandbox] [URL [stream]]
 *   deliverd-inject -c CONF dkim LOGIN DOMAIN SELECTOR rsa|ed25519 PEMFILE [default]
 *   deliverd-inject -c CONF msg LOGIN ENVFROM FROMHDR FILE COUNT RCPT...
 *   deliverd-inject -c CONF events LOGIN COUNT [AGE_SECONDS]
 * ("events": COUNT delivered events of no message, as deliverd logs them,
 * dated AGE_SECONDS ago: a fast way to fill an account's callback outbox.)
 *   deliverd-inject -c CONF corrupt-issue LOGIN   (today's issue record of
 *       LOGIN without campaign becomes bytes that do not decode: a commit
 *       that counts an event in it fails with SPOOL_ECORRUPT)
 *   deliverd-inject -c CONF tlsrpt DOMAIN COUNT   (COUNT TLS-RPT failures
 *       of today, each from another receiving IP, as deliverd's commit
 *       records them; prints "overflow" when one created the domain's
 *       overflow row)
 *   deliverd-inject -c CONF tlsrpt-old DOMAIN MX COUNT   (a failure row of
 *       today in the format of before the addresses, COUNT sessions)
 *   deliverd-inject -c CONF mtasts-fill N   (N cached MTA-STS policies,
 *       none expired: fill0.test expires first, in an hour)
 * Prints the queue ids of the filed messages, one per line. As root it
 * drops to spoold_user first so every file has the daemons' owner.
 */
#include "config.h"

#include "spool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
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
#include "spool_key.h"
#include "spool_rec.h"
#include "trigger.h"
#include "xmem.h"

static struct conf  *cf;
static struct spool *sp;

static void
inject_die(const char *what, int rc)
{
	(void)fprintf(stderr, "deliverd-inject: %s: %s\n", what,
	    spool_strerror(rc));
	exit(1);
}

static int
inject_account(int argc, char **argv)
{
	struct spool_account a;
	struct spool_txn    *txn;
	int		     rc;

	memset(&a, 0, sizeof(a));
	(void)str_copy(a.ac_login, sizeof(a.ac_login), argv[0]);
	a.ac_created = time(NULL);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "sandbox") == 0)
			a.ac_sandbox = true;
		else if (strcmp(argv[i], "stream") == 0)
			a.ac_callback_format = SPOOL_CB_STREAM;
		else
			(void)str_copy(a.ac_callback_url,
			    sizeof(a.ac_callback_url), argv[i]);
	}
	if ((rc = spool_begin(sp, true, &txn)) != 0 ||
	    (rc = spool_account_put(txn, &a)) != 0 ||
	    (rc = spool_commit(&txn)) != 0)
		inject_die("account", rc);
	return 0;
}

static int
inject_dkim(int argc, char **argv)
{
	struct spool_dkim d;
	struct spool_txn *txn;
	char		 *pem, dir[4096], name[300];
	size_t		  len;
	int		  rc;

	if (argc < 5)
		return 2;
	memset(&d, 0, sizeof(d));
	(void)str_copy(d.dk_login, sizeof(d.dk_login), argv[0]);
	(void)str_copy(d.dk_domain, sizeof(d.dk_domain), argv[1]);
	(void)str_copy(d.dk_selector, sizeof(d.dk_selector), argv[2]);
	d.dk_alg = strcmp(argv[3], "ed25519") == 0 ? SPOOL_DKIM_ED25519
						   : SPOOL_DKIM_RSA;
	d.dk_default = argc > 5 && strcmp(argv[5], "default") == 0;
	d.dk_created = time(NULL);
	(void)snprintf(name, sizeof(name), "%s.%s.%s.pem", argv[0], argv[1],
	    argv[2]);
	/* as spoolctl names them: what deliverd's key process accepts */
	for (char *c = name; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && strchr("@.-_", *c) == NULL)
			*c = '_';
	(void)str_copy(d.dk_keyfile, sizeof(d.dk_keyfile), name);
	if (fsx_read_file(argv[4], 65536, &pem, &len) == -1 ||
	    spool_path(dir, sizeof(dir), cf->cf_spool_dir, SPOOL_KEYS, NULL) ==
		-1 ||
	    fsx_write_durable(dir, name, pem, len, 0600) == -1) {
		(void)fprintf(stderr, "deliverd-inject: key %s: %s\n", argv[4],
		    strerror(errno));
		return 1;
	}
	free(pem);
	if ((rc = spool_begin(sp, true, &txn)) != 0 ||
	    (rc = spool_dkim_put(txn, &d)) != 0 ||
	    (rc = spool_commit(&txn)) != 0)
		inject_die("dkim", rc);
	return 0;
}

/* "{n}" in an address becomes the message's sequence number. */
static void
inject_addr(char *dst, size_t dstsz, const char *tmpl, long seq)
{
	const char *p = strstr(tmpl, "{n}");

	if (p == NULL)
		(void)str_copy(dst, dstsz, tmpl);
	else
		(void)snprintf(dst, dstsz, "%.*s%ld%s", (int)(p - tmpl), tmpl,
		    seq, p + 3);
}

/* One message: queue file (envelope + message), then the records. */
static void
inject_one(struct spool_txn *txn, const char *login, const char *from,
    const char *fromhdr, const char *msg, size_t msglen, char **rcpt, int nrcpt,
    const struct spool_issue *is, bool sandbox, long seq)
{
	struct spool_env  env;
	struct spool_msg *m = xcalloc(1, sizeof(*m));
	struct spool_rcpt r;
	struct buf	  b;
	char		  dir[4096];
	int		  i, rc;

	spool_env_init(&env);
	qid_make(env.pe_qid);
	env.pe_time = time(NULL);
	(void)str_copy(env.pe_account, sizeof(env.pe_account), login);
	(void)str_copy(env.pe_client, sizeof(env.pe_client), "local");
	(void)str_copy(env.pe_from, sizeof(env.pe_from), from);
	/* MAIL FROM parameters as smtpd keeps them (e.g. REQUIRETLS) */
	if (getenv("INJECT_FROM_PARAMS") != NULL)
		(void)str_copy(env.pe_from_params, sizeof(env.pe_from_params),
		    getenv("INJECT_FROM_PARAMS"));
	for (i = 0; i < nrcpt; i++) {
		inject_addr(r.sr_addr, sizeof(r.sr_addr), rcpt[i], seq);
		(void)spool_env_add_rcpt(&env, r.sr_addr);
	}
	buf_init(&b, msglen + 65536);
	if ((rc = spool_env_format(&env, &b)) != 0)
		inject_die("envelope", rc);
	m->sm_body_off = (int64_t)b.len;
	(void)buf_append(&b, msg, msglen);
	if (spool_path(dir, sizeof(dir), cf->cf_spool_dir, SPOOL_QUEUE, NULL) ==
		-1 ||
	    fsx_write_durable(dir, env.pe_qid, b.data, b.len, 0600) == -1) {
		(void)fprintf(stderr, "deliverd-inject: queue file: %s\n",
		    strerror(errno));
		exit(1);
	}
	(void)str_copy(m->sm_qid, sizeof(m->sm_qid), env.pe_qid);
	(void)str_copy(m->sm_login, sizeof(m->sm_login), login);
	m->sm_arrival = env.pe_time;
	m->sm_size = (int64_t)msglen;
	m->sm_issue = is->su_id;
	(void)str_copy(m->sm_from, sizeof(m->sm_from), from);
	(void)str_copy(m->sm_from_hdr, sizeof(m->sm_from_hdr), fromhdr);
	(void)str_copy(m->sm_from_params, sizeof(m->sm_from_params),
	    env.pe_from_params);
	(void)snprintf(m->sm_message_id, sizeof(m->sm_message_id),
	    "<%s@inject>", env.pe_qid);
	m->sm_nrcpt = m->sm_npending = (uint32_t)nrcpt;
	m->sm_sandbox = sandbox;
	if ((rc = spool_msg_put(txn, m)) != 0)
		inject_die("msg", rc);
	for (i = 0; i < nrcpt; i++) {
		memset(&r, 0, sizeof(r));
		(void)str_copy(r.sr_qid, sizeof(r.sr_qid), env.pe_qid);
		r.sr_idx = (uint32_t)i;
		inject_addr(r.sr_addr, sizeof(r.sr_addr), rcpt[i], seq);
		r.sr_state = SPOOL_RS_QUEUED;
		r.sr_next = env.pe_time;
		if ((rc = spool_rcpt_put(txn, &r)) != 0)
			inject_die("rcpt", rc);
	}
	(void)printf("%s\n", env.pe_qid);
	buf_release(&b);
	spool_env_free(&env);
	free(m);
}

static int
inject_msg(int argc, char **argv)
{
	struct spool_txn    *txn;
	struct spool_account a;
	struct spool_issue   is;
	char		    *msg, date[11];
	size_t		     len;
	long		     n, k;
	int		     rc;

	if (argc < 6)
		return 2;
	if (fsx_read_file(argv[3], 64 << 20, &msg, &len) == -1) {
		(void)fprintf(stderr, "deliverd-inject: %s: %s\n", argv[3],
		    strerror(errno));
		return 1;
	}
	n = strtol(argv[4], NULL, 10);
	for (k = 0; k < n;) {
		if ((rc = spool_begin(sp, true, &txn)) != 0)
			inject_die("begin", rc);
		if (spool_account_get(txn, argv[0], &a) != 0)
			memset(&a, 0, sizeof(a));
		spool_date(time(NULL), date);
		if ((rc = spool_issue_find_or_create(txn, argv[0], date, NULL,
			 &is)) != 0)
			inject_die("issue", rc);
		/* 100 messages per transaction, like spoold's group commit */
		for (long j = 0; j < 100 && k < n; j++, k++)
			inject_one(txn, argv[0], argv[1], argv[2], msg, len,
			    argv + 5, argc - 5, &is, a.ac_sandbox, k);
		if ((rc = spool_commit(&txn)) != 0)
			inject_die("commit", rc);
	}
	free(msg);
	return 0;
}

static int
inject_events(int argc, char **argv)
{
	struct spool_event ev;
	struct spool_txn  *txn;
	char		   to[64];
	long		   n, k, j;
	int		   rc;

	if (argc < 2)
		return 2;
	n = strtol(argv[1], NULL, 10);
	memset(&ev, 0, sizeof(ev));
	ev.ev_type = SPOOL_EV_DELIVERED;
	ev.ev_login = argv[0];
	ev.ev_dt = (int64_t)time(NULL) -
	    (argc > 2 ? strtol(argv[2], NULL, 10) : 0);
	ev.ev_from = "filler@example.com";
	ev.ev_to = to;
	ev.ev_msg = "250 2.0.0 Ok";
	ev.ev_attempt = 1;
	for (k = 0; k < n;) {
		if ((rc = spool_begin(sp, true, &txn)) != 0)
			inject_die("begin", rc);
		for (j = 0; j < 10000 && k < n; j++, k++) {
			(void)snprintf(to, sizeof(to), "filler%ld@example.net",
			    k);
			if ((rc = spool_event_add(txn, &ev, NULL)) != 0)
				inject_die("event", rc);
		}
		if ((rc = spool_commit(&txn)) != 0)
			inject_die("commit", rc);
	}
	return 0;
}

static int
inject_corrupt_issue(int argc, char **argv)
{
	struct spool_txn  *txn;
	struct spool_issue is;
	struct spool_key   k;
	char		   date[11];
	int		   rc;

	if (argc != 1)
		return 2;
	spool_date(time(NULL), date);
	if ((rc = spool_begin(sp, true, &txn)) != 0 ||
	    (rc = spool_issue_find_or_create(txn, argv[0], date, NULL, &is)) !=
		0)
		inject_die("issue", rc);
	spool_key_init(&k);
	spool_key_be64(&k, is.su_id);
	if ((rc = spool_db_put(txn, SPOOL_DB_ISSUES, &k, "\377garbage", 8)) !=
		0 ||
	    (rc = spool_commit(&txn)) != 0)
		inject_die("corrupt issue", rc);
	(void)printf("%llu\n", (unsigned long long)is.su_id);
	return 0;
}

static void
inject_tlsrpt_row(struct spool_tlsrpt_row *r, const char *domain)
{
	memset(r, 0, sizeof(*r));
	(void)str_copy(r->tr_domain, sizeof(r->tr_domain), domain);
	(void)str_copy(r->tr_policy, sizeof(r->tr_policy), "no-policy-found");
	(void)str_copy(r->tr_result, sizeof(r->tr_result),
	    "certificate-expired");
	(void)str_copy(r->tr_sip, sizeof(r->tr_sip), "127.0.0.1");
}

static int
inject_tlsrpt(int argc, char **argv)
{
	struct spool_tlsrpt_row r;
	struct spool_txn       *txn;
	long			n, k;
	bool			over;
	int			rc;

	if (argc != 2)
		return 2;
	n = strtol(argv[1], NULL, 10);
	inject_tlsrpt_row(&r, argv[0]);
	if ((rc = spool_begin(sp, true, &txn)) != 0)
		inject_die("begin", rc);
	for (k = 0; k < n; k++) {
		(void)snprintf(r.tr_mx, sizeof(r.tr_mx), "mx%ld.%s", k % 7,
		    argv[0]);
		(void)snprintf(r.tr_rip, sizeof(r.tr_rip), "10.0.%ld.%ld",
		    k / 250, k % 250 + 1);
		if ((rc = spool_tlsrpt_add(txn, (int64_t)time(NULL), &r,
			 &over)) != 0)
			inject_die("tlsrpt", rc);
		if (over)
			(void)printf("overflow\n");
	}
	if ((rc = spool_commit(&txn)) != 0)
		inject_die("commit", rc);
	return 0;
}

/* The bytes spool_tlsrpt.c wrote before the addresses existed. */
static int
inject_tlsrpt_old(int argc, char **argv)
{
	struct spool_txn *txn;
	struct spool_key  k;
	uint8_t		  v[9 + 2];
	int		  rc;

	if (argc != 3)
		return 2;
	spool_key_init(&k);
	spool_key_be32(&k, (uint32_t)(time(NULL) / 86400));
	spool_key_lstr(&k, argv[0]);
	spool_key_str(&k, "no-policy-found");
	spool_key_str(&k, "certificate-expired");
	spool_key_lstr(&k, argv[1]);
	v[0] = 1;
	spool_be64_put(v + 1, (uint64_t)strtoull(argv[2], NULL, 10));
	v[9] = v[10] = '\0'; /* no policy strings, no MX patterns */
	if ((rc = spool_begin(sp, true, &txn)) != 0 ||
	    (rc = spool_db_put(txn, SPOOL_DB_TLSRPT, &k, v, sizeof(v))) != 0 ||
	    (rc = spool_commit(&txn)) != 0)
		inject_die("tlsrpt-old", rc);
	return 0;
}

/* mtasts-fill N: N unexpired policies (fill0.test ...; fill0.test expires
 * first), a full cache for the eviction test (h-astate). */
static int
inject_mtasts_fill(int argc, char **argv)
{
	struct spool_mtasts_rec r;
	struct spool_txn       *txn;
	char			d[64];
	long			i, n;
	int			rc;

	if (argc != 1 || (n = strtol(argv[0], NULL, 10)) <= 0)
		return 2;
	memset(&r, 0, sizeof(r));
	(void)str_copy(r.mr_id, sizeof(r.mr_id), "fill");
	(void)str_copy(r.mr_policy, sizeof(r.mr_policy),
	    "version: STSv1\nmode: testing\nmx: mx.fill.test\nmax_age: "
	    "86400\n");
	if ((rc = spool_begin(sp, true, &txn)) != 0)
		inject_die("begin", rc);
	for (i = 0; i < n; i++) {
		r.mr_fetched = (int64_t)time(NULL);
		r.mr_expires = r.mr_fetched + (i == 0 ? 3600 : 86400 + i);
		(void)snprintf(d, sizeof(d), "fill%ld.test", i);
		if ((rc = spool_mtasts_put(txn, d, &r, r.mr_fetched)) != 0)
			inject_die("mtasts-fill", rc);
	}
	if ((rc = spool_commit(&txn)) != 0)
		inject_die("commit", rc);
	return 0;
}

int
main(int argc, char **argv)
{
	char tpath[4096];
	int  rc;

	log_init("deliverd-inject", LOG_DEST_STDERR);
	if (argc < 4 || strcmp(argv[1], "-c") != 0) {
		(void)fprintf(stderr,
		    "usage: deliverd-inject -c CONF account|dkim|msg ...\n");
		return 2;
	}
	cf = conf_load_or_exit(argv[2]);
	if ((rc = spool_tree_create(cf)) != 0)
		inject_die("spool tree", rc);
	priv_drop(cf->cf_spoold_user, cf->cf_group, NULL);
	if ((rc = spool_open(cf->cf_spool_dir, cf->cf_lmdb_map_size,
		 cf->cf_lmdb_map_max, 0, &sp)) != 0)
		inject_die("spool_open", rc);
	if (strcmp(argv[3], "account") == 0 && argc > 4)
		rc = inject_account(argc - 4, argv + 4);
	else if (strcmp(argv[3], "dkim") == 0)
		rc = inject_dkim(argc - 4, argv + 4);
	else if (strcmp(argv[3], "msg") == 0)
		rc = inject_msg(argc - 4, argv + 4);
	else if (strcmp(argv[3], "events") == 0)
		rc = inject_events(argc - 4, argv + 4);
	else if (strcmp(argv[3], "corrupt-issue") == 0)
		rc = inject_corrupt_issue(argc - 4, argv + 4);
	else if (strcmp(argv[3], "tlsrpt") == 0)
		rc = inject_tlsrpt(argc - 4, argv + 4);
	else if (strcmp(argv[3], "tlsrpt-old") == 0)
		rc = inject_tlsrpt_old(argc - 4, argv + 4);
	else if (strcmp(argv[3], "mtasts-fill") == 0)
		rc = inject_mtasts_fill(argc - 4, argv + 4);
	else
		rc = 2;
	spool_close(&sp);
	if (spool_trigger_path(tpath, sizeof(tpath), cf->cf_spool_dir) == 0)
		trigger_pull(tpath);
	return rc;
}
