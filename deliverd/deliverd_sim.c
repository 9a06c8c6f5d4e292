/*
 * The simulator (deliverd_sim.h; issue 18 item 4): what a next hop would
 * answer for each simulator address, and what follows a delivery there.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "conf.h"
#include "deliverd.h"
#include "deliverd_sim.h"
#include "spool.h"

/* deferrals of defer@ before it is delivered */
#define DELIVERD_SIM_DEFERRALS 2

enum deliverd_sim_kind {
	SIM_UNKNOWN = 0,
	SIM_DELIVERED,
	SIM_BOUNCE,
	SIM_BOUNCE_POLICY,
	SIM_DEFER,
	SIM_EXPIRE,
	SIM_COMPLAINT,
	SIM_OOTO
};

static const struct {
	const char	      *name;
	enum deliverd_sim_kind kind;
} deliverd_sim_names[] = {
	{ "delivered", SIM_DELIVERED },
	{ "bounce", SIM_BOUNCE },
	{ "bounce-policy", SIM_BOUNCE_POLICY },
	{ "defer", SIM_DEFER },
	{ "expire", SIM_EXPIRE },
	{ "complaint", SIM_COMPLAINT },
	{ "ooto", SIM_OOTO },
};

#define SIM_OK "250 2.0.0 Ok: delivered (simulator)"
#define SIM_AUTO_REPLY \
	"Out of office: I am away until Monday with limited " \
	"access to email (simulator auto-reply)"
#define SIM_UA "smtpgate-simulator"

bool
deliverd_sim_match(const struct conf *cf, const char *addr)
{
	const char *at = strrchr(addr, '@');

	return cf->cf_simulator_domain[0] != '\0' && at != NULL &&
	    strcasecmp(at + 1, cf->cf_simulator_domain) == 0;
}

/* The behaviour the local part names ("bounce+tag" is "bounce"). */
static enum deliverd_sim_kind
deliverd_sim_kind(const char *addr)
{
	const char *at = strrchr(addr, '@'), *plus;
	size_t	    n, i;

	if (at == NULL)
		return SIM_UNKNOWN;
	plus = memchr(addr, '+', (size_t)(at - addr));
	n = (size_t)((plus != NULL ? plus : at) - addr);
	for (i = 0;
	     i < sizeof(deliverd_sim_names) / sizeof(deliverd_sim_names[0]);
	     i++)
		if (strlen(deliverd_sim_names[i].name) == n &&
		    strncasecmp(addr, deliverd_sim_names[i].name, n) == 0)
			return deliverd_sim_names[i].kind;
	return SIM_UNKNOWN;
}

void
deliverd_sim_reply(const struct conf *cf, const char *addr, uint32_t attempts,
    char *reply, size_t replysz, enum bounce_stage *stage_r)
{
	(void)cf;
	*stage_r = BOUNCE_ST_RCPT;
	switch (deliverd_sim_kind(addr)) {
	case SIM_BOUNCE_POLICY:
		*stage_r = BOUNCE_ST_DATA;
		(void)snprintf(reply, replysz,
		    "550 5.7.1 Message rejected by the "
		    "recipient's policy (simulator)");
		return;
	case SIM_DEFER:
		if (attempts < DELIVERD_SIM_DEFERRALS) {
			(void)snprintf(reply, replysz,
			    "451 4.7.1 <%s>: Greylisted, "
			    "try again later (simulator)",
			    addr);
			return;
		}
		break;
	case SIM_EXPIRE:
		(void)snprintf(reply, replysz,
		    "450 4.2.1 <%s>: Mailbox temporarily "
		    "unavailable (simulator)",
		    addr);
		return;
	case SIM_BOUNCE:
	case SIM_UNKNOWN:
		(void)snprintf(reply, replysz,
		    "550 5.1.1 <%s>: Recipient address "
		    "rejected: User unknown (simulator)",
		    addr);
		return;
	case SIM_DELIVERED:
	case SIM_COMPLAINT:
	case SIM_OOTO:
		break;
	}
	*stage_r = BOUNCE_ST_DATA;
	(void)snprintf(reply, replysz, "%s", SIM_OK);
}

bool
deliverd_sim_result(const struct conf *cf, const struct deliverd_result *res)
{
	return strcmp(res->dr_relay, DELIVERD_SIM_RELAY) == 0 &&
	    deliverd_sim_match(cf, res->dr_to);
}

const char *
deliverd_sim_auto_reply(const struct conf *cf,
    const struct deliverd_result	  *res)
{
	if (res->dr_reply[0] != '2' || !deliverd_sim_result(cf, res) ||
	    deliverd_sim_kind(res->dr_to) != SIM_OOTO)
		return NULL;
	return SIM_AUTO_REPLY;
}

int
deliverd_sim_after(const struct conf *cf, struct spool_txn *txn,
    const struct spool_msg *m, const struct deliverd_result *res, int64_t now,
    struct buf *log)
{
	struct spool_event   ev;
	struct spool_stopent se;
	char		     addr[SPOOL_ADDR_MAX];
	int		     rc;

	if (res->dr_reply[0] != '2' || !deliverd_sim_result(cf, res) ||
	    deliverd_sim_kind(res->dr_to) != SIM_COMPLAINT)
		return 0;
	/* the fields of spoold_complaint's event: no msg, attempt, sandbox */
	spool_event_init(&ev, m, res->dr_to, now);
	ev.ev_type = SPOOL_EV_COMPLAINED;
	ev.ev_user_agent = SIM_UA;
	if ((rc = spool_event_add(txn, &ev, NULL)) != 0)
		return rc;
	(void)str_copy(addr, sizeof(addr), res->dr_to);
	str_lower(addr);
	memset(&se, 0, sizeof(se));
	(void)str_copy(se.se_reason, sizeof(se.se_reason), "complained");
	se.se_when = now;
	(void)str_copy(se.se_qid, sizeof(se.se_qid), m->sm_qid);
	(void)str_copy(se.se_note, sizeof(se.se_note), "simulator");
	if ((rc = spool_stop_put_why(txn, m->sm_login, addr, &se)) != 0 &&
	    rc != SPOOL_EEXIST)
		return rc;
	(void)buf_printf(log,
	    "%s: to=<%s>, complaint (simulator), account=%s: "
	    "complained event, added to the stop list\n",
	    m->sm_qid, res->dr_to, m->sm_login);
	return 0;
}
