/*
 * spoolctl queue --summary [--json]: pending recipients by domain x age
 * (Postfix's qshape), each domain with its destination's shaping: the
 * limits that apply (shaping_file, or the built-in defaults) and the
 * back-off state that deliverd writes to SPOOL/shaping.state (normal,
 * slowed until, suspended until), then every suspended destination with
 * its reason and deliverd's resolver-down hold. In cluster mode the limits are this
 * node's share (as deliverd takes it: divided by live_nodes of
 * cluster.state), the cluster-wide ones beside them. Held messages are
 * not counted (they
 * wait for `spoolctl release`); the footer counts them. Memory grows
 * with the number of domains in the queue, never with its recipients.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "fsx.h"
#include "json.h"
#include "shaping.h"
#include "spoolctl.h"
#include "xmem.h"

#define SUM_NBUCKETS  7
#define SUM_TEXT_ROWS 100 /* the text table's top rows (--json: all) */
#define SUM_STATE_MAX \
	((8192 + 4096) * 1024 + 64) /* deliverd's DEST_STATE_FILE_MAX */
#define SUM_STATE_FILE "shaping.state"
#define SUM_STATE_VER  "SMTPGATE-SHAPING 1"
/* deliverd's DEST_RESOLVER_NAME: the resolver-down line */
#define SUM_RESOLVER   "(resolver)"

static const char *const sum_bucket_names[SUM_NBUCKETS] = { "0-5m", "5-10m",
	"10-20m", "20-40m", "40-80m", "80-160m", "160m+" };

struct sum_row {
	char   domain[SPOOL_DOMAIN_MAX];
	size_t total;
	size_t n[SUM_NBUCKETS];
};

/* A destination's back-off state from the state file (strings borrowed
 * from the file's text). */
struct sum_state {
	const char *name, *state, *conns, *rate, *why;
	int64_t	    until;
};

struct sum {
	struct ctl	 *ctl;
	struct spool_txn *txn;
	int64_t		  arrival; /* of the message being counted */
	struct sum_row	 *rows;
	size_t		  nrows, cap;
	size_t		 *idx; /* open addressing: row + 1, 0 = empty */
	size_t		  nidx;
	struct sum_row	  all;
	size_t		  held;
	struct shaping	 *sh;
	uint32_t	  live; /* live nodes sharing the limits (1: alone) */
	char		 *stext;
	struct sum_state *st;
	size_t		  nst;
	/* the resolver-down line (strings borrowed from stext), or NULL */
	const char *rsv_since, *rsv_probe, *rsv_name, *rsv_probes, *rsv_why;
};

static int
sum_bucket(int64_t age)
{
	int64_t lim = 5 * 60;
	int	b;

	for (b = 0; b < SUM_NBUCKETS - 1; b++, lim *= 2)
		if (age < lim)
			return b;
	return SUM_NBUCKETS - 1;
}

static size_t
sum_hash(const char *s)
{
	size_t h = 5381;

	for (; *s != '\0'; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

static void
sum_reindex(struct sum *sm)
{
	size_t i, h;

	free(sm->idx);
	sm->nidx = sm->cap * 2;
	sm->idx = xcalloc(sm->nidx, sizeof(*sm->idx));
	for (i = 0; i < sm->nrows; i++) {
		for (h = sum_hash(sm->rows[i].domain) % sm->nidx;
		     sm->idx[h] != 0; h = (h + 1) % sm->nidx)
			;
		sm->idx[h] = i + 1;
	}
}

static struct sum_row *
sum_row(struct sum *sm, const char *domain)
{
	size_t h;

	for (h = sm->nidx ? sum_hash(domain) % sm->nidx : 0;
	     sm->nidx && sm->idx[h] != 0; h = (h + 1) % sm->nidx)
		if (strcmp(sm->rows[sm->idx[h] - 1].domain, domain) == 0)
			return &sm->rows[sm->idx[h] - 1];
	if (sm->nrows == sm->cap) {
		sm->cap = sm->cap ? sm->cap * 2 : 64;
		sm->rows = xreallocarray(sm->rows, sm->cap, sizeof(*sm->rows));
	}
	memset(&sm->rows[sm->nrows], 0, sizeof(sm->rows[0]));
	(void)str_copy(sm->rows[sm->nrows].domain, SPOOL_DOMAIN_MAX, domain);
	sm->nrows++;
	sum_reindex(sm); /* amortised: only when a domain is new */
	return &sm->rows[sm->nrows - 1];
}

static int
sum_rcpt_cb(const struct spool_rcpt *sr, void *arg)
{
	struct sum     *sm = arg;
	const char     *at = strrchr(sr->sr_addr, '@');
	char		dom[SPOOL_DOMAIN_MAX] = "";
	struct sum_row *r;
	size_t		i;
	int		b;

	if (sr->sr_state != SPOOL_RS_QUEUED &&
	    sr->sr_state != SPOOL_RS_DEFERRED)
		return 0;
	for (i = 0; at != NULL && at[i + 1] != '\0' && i + 1 < sizeof(dom); i++)
		dom[i] = (char)tolower((unsigned char)at[i + 1]);
	dom[at != NULL ? i : 0] = '\0';
	b = sum_bucket(sm->ctl->now - sm->arrival);
	r = sum_row(sm, dom);
	r->n[b]++;
	r->total++;
	sm->all.n[b]++;
	sm->all.total++;
	return 0;
}

static int
sum_msg_cb(const struct spool_msg *m, void *arg)
{
	struct sum *sm = arg;
	int	    rc;

	if (m->sm_npending == 0)
		return 0;
	if (m->sm_held) {
		sm->held++;
		return 0;
	}
	sm->arrival = m->sm_arrival;
	if ((rc = spool_rcpt_iter(sm->txn, m->sm_qid, sum_rcpt_cb, sm)) != 0 &&
	    rc != SPOOL_ENOTFOUND)
		ctl_die_rc(rc, "%s: recipients", m->sm_qid);
	return 0;
}

/* ---- shaping: the file's limits and deliverd's states */

static void
sum_load_shaping(struct sum *sm)
{
	const struct conf *cf = sm->ctl->cf;
	char		   why[1024];

	if (cf->cf_shaping_file[0] == '\0')
		return;
	sm->sh = xcalloc(1, sizeof(*sm->sh));
	if (shaping_load(cf->cf_shaping_file, sm->sh, why, sizeof(why)) == -1) {
		ctl_warn("shaping_file: %s (showing the built-in limits)", why);
		free(sm->sh);
		sm->sh = NULL;
	}
}

/* SPOOL/shaping.state: "SMTPGATE-SHAPING 1", then name, state, until,
 * connections, rate, failures, reason (TAB-separated); while the resolver
 * is down a line "(resolver)", "down", since, next probe, resolver,
 * probes, reason. */
static void
sum_load_states(struct sum *sm)
{
	char   path[4096], *line, *next, *f[7];
	size_t len, k;

	if (snprintf(path, sizeof(path), "%s/%s", sm->ctl->cf->cf_spool_dir,
		SUM_STATE_FILE) >= (int)sizeof(path) ||
	    fsx_read_file(path, SUM_STATE_MAX, &sm->stext, &len) == -1)
		return; /* none yet: every destination is normal */
	if (strncmp(sm->stext, SUM_STATE_VER "\n", sizeof(SUM_STATE_VER)) !=
	    0) {
		ctl_warn("%s: not a state file of this version: ignored", path);
		return;
	}
	for (line = strchr(sm->stext, '\n') + 1; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		next = next ? (*next = '\0', next + 1) : line + strlen(line);
		for (k = 0, f[0] = line;
		     k < 6 && (f[k + 1] = strchr(f[k], '\t')) != NULL; k++)
			*f[k + 1]++ = '\0';
		if (k != 6)
			continue;
		if (strcmp(f[0], SUM_RESOLVER) == 0) {
			sm->rsv_since = f[2];
			sm->rsv_probe = f[3];
			sm->rsv_name = f[4];
			sm->rsv_probes = f[5];
			sm->rsv_why = f[6];
			continue;
		}
		sm->st = xreallocarray(sm->st, sm->nst + 1, sizeof(*sm->st));
		sm->st[sm->nst++] = (struct sum_state){ .name = f[0],
			.state = f[1],
			.until = strtoll(f[2], NULL, 10),
			.conns = f[3],
			.rate = f[4],
			.why = f[6] };
	}
}

/* What applies to a domain's destination. */
struct sum_dest {
	char		      name[SPOOL_DOMAIN_MAX + 8];
	const char	     *state; /* normal, slowed, suspended */
	int64_t		      until;
	struct shaping_limits lim;
	char		      conns[16], rate[32];
	char		      cconns[16], crate[32]; /* cluster-wide */
	const char	     *why;
};

static int
sum_rule(const struct shaping *sh, const char *name)
{
	size_t i;

	for (i = 0; sh != NULL && i < sh->sh_nrules; i++)
		if (strcmp(sh->sh_rules[i].sr_name, name) == 0)
			return (int)i;
	return shaping_match(sh, name);
}

static void
sum_dest(const struct sum *sm, const char *domain, struct sum_dest *d)
{
	const struct conf *cf = sm->ctl->cf;
	bool		   relay = cf->cf_relayhost[0] != '\0';
	uint32_t	   nw = (uint32_t)cf->cf_deliverd_workers;
	size_t		   i;

	if (relay)
		(void)str_copy(d->name, sizeof(d->name), cf->cf_relayhost);
	else
		shaping_dest_name(sm->sh, domain, d->name, sizeof(d->name));
	/* a domain deliverd found under a rule by its MX host */
	for (i = 0; !relay && shaping_match(sm->sh, domain) < 0 && i < sm->nst;
	     i++)
		if (strcmp(sm->st[i].state, "via") == 0 &&
		    strcmp(sm->st[i].name, domain) == 0)
			(void)str_copy(d->name, sizeof(d->name), sm->st[i].why);
	shaping_effective(sm->sh, sum_rule(sm->sh, d->name), nw,
	    (uint32_t)cf->cf_max_msgs_per_connection, 500, &d->lim);
	if (relay && sum_rule(sm->sh, d->name) < 0)
		d->lim.sl_conns = nw; /* as deliverd: the only destination */
	if (d->lim.sl_conns > (uint64_t)cf->cf_dest_concurrency)
		d->lim.sl_conns = (uint32_t)cf->cf_dest_concurrency;
	d->state = "normal";
	d->until = 0;
	d->why = NULL;
	(void)snprintf(d->cconns, sizeof(d->cconns), "%u", d->lim.sl_conns);
	shaping_rate_format(&d->lim.sl_rate, d->crate, sizeof(d->crate));
	shaping_share(&d->lim, sm->live); /* deliverd's own share */
	(void)snprintf(d->conns, sizeof(d->conns), "%u", d->lim.sl_conns);
	shaping_rate_format(&d->lim.sl_rate, d->rate, sizeof(d->rate));
	for (i = 0; i < sm->nst; i++) {
		if (strcmp(sm->st[i].name, d->name) != 0 ||
		    sm->st[i].until <= sm->ctl->now ||
		    strcmp(sm->st[i].state, "via") == 0)
			continue; /* ended: deliverd clears it on its next round */
		d->state = sm->st[i].state;
		d->until = sm->st[i].until;
		d->why = sm->st[i].why;
		(void)str_copy(d->conns, sizeof(d->conns), sm->st[i].conns);
		(void)str_copy(d->rate, sizeof(d->rate), sm->st[i].rate);
	}
}

/* ---- output */

static int
sum_cmp(const void *a, const void *b)
{
	const struct sum_row *x = a, *y = b;

	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->domain, y->domain);
}

/* "cluster": the cluster-wide limits this node has a share of, or null
 * when it is not one of several live nodes. */
static void
sum_json_cluster(struct json_gen *jg, uint32_t live, const struct sum_dest *d)
{
	json_key(jg, "cluster");
	if (live <= 1) {
		json_null(jg);
		return;
	}
	json_obj_begin(jg);
	json_kv_int(jg, "live_nodes", live);
	json_kv_int(jg, "connections", strtoll(d->cconns, NULL, 10));
	json_kv_str(jg, "rate", d->crate);
	json_obj_end(jg);
}

static void
sum_json_row(struct json_gen *jg, const struct sum_row *r,
    const struct sum_dest *d, uint32_t live)
{
	char dt[21];
	int  b;

	json_obj_begin(jg);
	if (d != NULL) {
		json_kv_str(jg, "domain", r->domain);
		json_kv_str(jg, "destination", d->name);
	}
	json_kv_int(jg, "total", (int64_t)r->total);
	json_key(jg, "counts");
	json_arr_begin(jg);
	for (b = 0; b < SUM_NBUCKETS; b++)
		json_int(jg, (int64_t)r->n[b]);
	json_arr_end(jg);
	if (d != NULL) {
		json_kv_str(jg, "state", d->state);
		json_key(jg, "until");
		if (d->until > 0) {
			spool_dt(d->until, dt);
			json_str(jg, dt);
		} else
			json_null(jg);
		json_kv_int(jg, "connections", strtoll(d->conns, NULL, 10));
		json_kv_str(jg, "rate", d->rate);
		json_kv_int(jg, "messages_per_connection",
		    d->lim.sl_msgs_per_conn);
		json_kv_int(jg, "recipients_per_transaction",
		    d->lim.sl_rcpt_per_tx);
		json_kv_str(jg, "reason", d->why);
		sum_json_cluster(jg, live, d);
	}
	json_obj_end(jg);
}

/* "resolver": {"state": "up"}, or "down" with since, next_probe,
 * resolver, probes and reason (deliverd's resolver-down hold). */
static void
sum_json_resolver(struct json_gen *jg, const struct sum *sm)
{
	char dt[21];

	json_key(jg, "resolver");
	json_obj_begin(jg);
	json_kv_str(jg, "state", sm->rsv_since != NULL ? "down" : "up");
	if (sm->rsv_since != NULL) {
		spool_dt(strtoll(sm->rsv_since, NULL, 10), dt);
		json_kv_str(jg, "since", dt);
		spool_dt(strtoll(sm->rsv_probe, NULL, 10), dt);
		json_kv_str(jg, "next_probe", dt);
		json_kv_str(jg, "resolver", sm->rsv_name);
		json_kv_int(jg, "probes", strtoll(sm->rsv_probes, NULL, 10));
		json_kv_str(jg, "reason", sm->rsv_why);
	}
	json_obj_end(jg);
}

/* "suspended": every destination suspended now, queued mail or not. */
static void
sum_json_suspended(struct json_gen *jg, const struct sum *sm)
{
	char   dt[21];
	size_t i;

	json_key(jg, "suspended");
	json_arr_begin(jg);
	for (i = 0; i < sm->nst; i++) {
		if (strcmp(sm->st[i].state, "suspended") != 0 ||
		    sm->st[i].until <= sm->ctl->now)
			continue;
		json_obj_begin(jg);
		json_kv_str(jg, "destination", sm->st[i].name);
		spool_dt(sm->st[i].until, dt);
		json_kv_str(jg, "until", dt);
		json_kv_str(jg, "reason", sm->st[i].why);
		json_obj_end(jg);
	}
	json_arr_end(jg);
}

static void
sum_json(struct sum *sm)
{
	struct json_gen *jg = json_gen_new(false);
	struct sum_dest	 d;
	size_t		 i;
	int		 b;

	json_obj_begin(jg);
	json_key(jg, "buckets");
	json_arr_begin(jg);
	for (b = 0; b < SUM_NBUCKETS; b++)
		json_str(jg, sum_bucket_names[b]);
	json_arr_end(jg);
	json_key(jg, "total");
	sum_json_row(jg, &sm->all, NULL, sm->live);
	json_kv_int(jg, "held_messages", (int64_t)sm->held);
	sum_json_resolver(jg, sm);
	sum_json_suspended(jg, sm);
	json_key(jg, "destinations");
	json_arr_begin(jg);
	for (i = 0; i < sm->nrows; i++) {
		sum_dest(sm, sm->rows[i].domain, &d);
		sum_json_row(jg, &sm->rows[i], &d, sm->live);
	}
	json_arr_end(jg);
	json_obj_end(jg);
	ctl_json_print(jg);
	json_gen_free(&jg);
}

static void
sum_text_row(const char *name, const struct sum_row *r,
    const struct sum_dest *d, uint32_t live)
{
	char t[20];
	int  b;

	printf("%-32.32s %7zu", name, r->total);
	for (b = 0; b < SUM_NBUCKETS; b++)
		printf(" %7zu", r->n[b]);
	if (d == NULL) {
		printf("\n");
		return;
	}
	printf("  %s", d->state);
	if (d->until > 0) {
		ctl_time(d->until, t);
		printf(" until %s", t);
	}
	printf(" conns=%s rate=%s", d->conns, d->rate);
	if (live > 1)
		printf(" (this node's share; cluster-wide conns=%s rate=%s, %u "
		       "live nodes)",
		    d->cconns, d->crate, live);
	if (strcmp(d->name, r->domain) != 0)
		printf(" dest=%s", d->name);
	printf("\n");
}

/* A reason as text: deliverd escaped TAB, CR, LF and backslash; any
 * other control byte (a peer's text) is shown as '?'. */
static void
sum_text_why(const char *why)
{
	for (; *why != '\0'; why++)
		putchar(
		    (unsigned char)*why < 0x20 || *why == 0x7f ? '?' : *why);
}

/* The resolver-down hold and the suspended destinations, below the table. */
static void
sum_text_states(const struct sum *sm)
{
	char   t[20];
	size_t i;

	if (sm->rsv_since != NULL) {
		ctl_time(strtoll(sm->rsv_since, NULL, 10), t);
		printf(
		    "-- resolver %s: down since %s, %s probes: delivery that "
		    "needs DNS is held (",
		    sm->rsv_name, t, sm->rsv_probes);
		sum_text_why(sm->rsv_why);
		printf(")\n");
	}
	for (i = 0; i < sm->nst; i++) {
		if (strcmp(sm->st[i].state, "suspended") != 0 ||
		    sm->st[i].until <= sm->ctl->now)
			continue;
		ctl_time(sm->st[i].until, t);
		printf("-- suspended: %s until %s: ", sm->st[i].name, t);
		sum_text_why(sm->st[i].why);
		printf("\n");
	}
}

static void
sum_text(struct sum *sm)
{
	struct sum_dest d;
	size_t		i;
	int		b;

	printf("%-32s %7s", "DOMAIN", "TOTAL");
	for (b = 0; b < SUM_NBUCKETS; b++)
		printf(" %7s", sum_bucket_names[b]);
	printf("  SHAPING\n");
	sum_text_row("TOTAL", &sm->all, NULL, sm->live);
	for (i = 0; i < sm->nrows && i < SUM_TEXT_ROWS; i++) {
		sum_dest(sm, sm->rows[i].domain, &d);
		sum_text_row(sm->rows[i].domain, &sm->rows[i], &d, sm->live);
	}
	if (sm->nrows > SUM_TEXT_ROWS)
		printf("-- %zu more domains (--json lists all)\n",
		    sm->nrows - SUM_TEXT_ROWS);
	sum_text_states(sm);
	if (sm->held > 0)
		printf("-- %zu held message%s not counted\n", sm->held,
		    sm->held == 1 ? "" : "s");
}

/* As deliverd: live_nodes of cluster.state in cluster mode, else 1. */
static uint32_t
sum_live_nodes(struct ctl *ctl, struct spool_txn *txn)
{
	struct ctl_cluster c;

	if (!ctl_cluster_wanted(ctl->cf))
		return 1;
	memset(&c, 0, sizeof(c));
	ctl_cluster_gather(ctl, txn, &c);
	if (!c.have || c.live_nodes < 1 || c.live_nodes > 1000)
		return 1;
	return (uint32_t)c.live_nodes;
}

int
ctl_queue_summary(struct ctl *ctl, bool json)
{
	struct sum sm;
	int	   rc;

	memset(&sm, 0, sizeof(sm));
	sm.ctl = ctl;
	sum_load_shaping(&sm);
	sum_load_states(&sm);
	sm.txn = ctl_begin(ctl, false);
	sm.live = sum_live_nodes(ctl, sm.txn);
	if ((rc = spool_msg_iter(sm.txn, sum_msg_cb, &sm)) != 0)
		ctl_die_rc(rc, "messages");
	spool_abort(&sm.txn);
	if (sm.nrows > 0)
		qsort(sm.rows, sm.nrows, sizeof(sm.rows[0]), sum_cmp);
	if (json)
		sum_json(&sm);
	else
		sum_text(&sm);
	free(sm.rows);
	free(sm.idx);
	free(sm.sh);
	free(sm.st);
	free(sm.stext);
	return CTL_OK;
}
