/*
 * clusterd's PostgreSQL connection (CLUSTER.md item 1). The DSN is parsed
 * by libpq (key=value or URI) and completed with the bounds it lacks:
 * connect_timeout=5, TCP keepalives, tcp_user_timeout; every session sets
 * statement_timeout 10 s and TimeZone UTC, applies the schema and LISTENs
 * on smtpgate_policy. An outage is logged once when it starts and once
 * when it ends; reconnects back off from 1 s, doubling to 30 s.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clusterd.h"
#include "conf.h"
#include "log.h"
#include "xmem.h"

/* Parameters added when the DSN does not name them. */
static const struct {
	const char *kw, *val;
} cd_pg_defaults[] = {
	{ "connect_timeout", "5" },
	{ "keepalives", "1" },
	{ "keepalives_idle", "10" },
	{ "keepalives_interval", "5" },
	{ "keepalives_count", "3" },
	{ "tcp_user_timeout", "15000" },
	{ "application_name", "smtpgate-clusterd" },
};
#define CD_PG_NDEFAULTS (sizeof(cd_pg_defaults) / sizeof(cd_pg_defaults[0]))

#define CD_SESSION_SQL                                        \
	"SET statement_timeout = '10s'; SET TimeZone = 'UTC'; " \
	"SET client_min_messages = warning"

static char cd_state[6]; /* SQLSTATE of the last failure */

/* libpq's text, one line: newlines become "; ", the end trimmed. */
static void
cd_oneline(char *dst, size_t dstsz, const char *msg)
{
	size_t i, o = 0;

	for (i = 0; msg != NULL && msg[i] != '\0' && o + 3 < dstsz; i++) {
		if (msg[i] == '\n') {
			while (msg[i + 1] == ' ' || msg[i + 1] == '\t')
				i++;
			if (msg[i + 1] != '\0')
				dst[o++] = ';', dst[o++] = ' ';
		} else if (msg[i] != '\r')
			dst[o++] = (unsigned char)msg[i] < 0x20 ? ' ' : msg[i];
	}
	dst[o] = '\0';
}

static void
cd_notice_ignore(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* PQconnectdbParams of the DSN plus cd_pg_defaults; NULL with err. */
static PGconn *
cd_pg_open(const char *dsn, char *err, size_t errsz)
{
	PQconninfoOption *opts, *o;
	const char	**kw, **val;
	size_t		  n = 0, i, max;
	char		 *perr = NULL;
	PGconn		 *pg;

	if ((opts = PQconninfoParse(dsn, &perr)) == NULL) {
		cd_oneline(err, errsz, perr != NULL ? perr : "bad cluster_dsn");
		PQfreemem(perr);
		return NULL;
	}
	for (max = CD_PG_NDEFAULTS + 1, o = opts; o->keyword != NULL; o++)
		max++;
	kw = xcalloc(max, sizeof(*kw));
	val = xcalloc(max, sizeof(*val));
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL)
			kw[n] = o->keyword, val[n++] = o->val;
	for (i = 0; i < CD_PG_NDEFAULTS; i++) {
		for (o = opts; o->keyword != NULL; o++)
			if (strcmp(o->keyword, cd_pg_defaults[i].kw) == 0)
				break;
		if (o->keyword == NULL || o->val == NULL)
			kw[n] = cd_pg_defaults[i].kw,
			val[n++] = cd_pg_defaults[i].val;
	}
	pg = PQconnectdbParams(kw, val, 0);
	free(kw);
	free(val);
	PQconninfoFree(opts);
	if (pg != NULL && PQstatus(pg) == CONNECTION_OK)
		return pg;
	cd_oneline(err, errsz,
	    pg != NULL ? PQerrorMessage(pg) : "out of memory");
	PQfinish(pg);
	return NULL;
}

/* The session: bounds, schema, LISTEN. 0 or -1 with err. */
static int
cd_pg_prepare(PGconn *pg, char *err, size_t errsz)
{
	static const char *steps[] = { CD_SESSION_SQL, NULL,
		"LISTEN smtpgate_policy" };
	struct buf	   sql;
	PGresult	  *res;
	size_t		   i;
	int		   ok;

	(void)PQsetNoticeProcessor(pg, cd_notice_ignore, NULL);
	buf_init(&sql, 1024 * 1024);
	if (buf_printf(&sql, "BEGIN;\n%s\nCOMMIT;", cd_schema_sql) == -1)
		log_fatalx("schema: too long");
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		res = PQexec(pg, steps[i] != NULL ? steps[i] : sql.data);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
		    PQresultStatus(res) == PGRES_TUPLES_OK;
		if (!ok)
			cd_oneline(err, errsz, PQerrorMessage(pg));
		PQclear(res);
		if (!ok) {
			buf_release(&sql);
			return -1;
		}
	}
	buf_release(&sql);
	return 0;
}

static void
cd_backoff(struct cd *cd)
{
	(void)ev_timer_arm(cd->ev, &cd->t_connect, cd->backoff_ms, 0);
	cd->backoff_ms *= 2;
	if (cd->backoff_ms > CD_BACKOFF_MAX_MS)
		cd->backoff_ms = CD_BACKOFF_MAX_MS;
}

static void
cd_connect_failed(struct cd *cd, const char *err)
{
	(void)str_copy(cd->error, sizeof(cd->error), err);
	if (!cd->down_logged)
		log_warnx("PostgreSQL unreachable: %s (node %s keeps running "
			  "on its local copy; retrying every %d s at most)",
		    err, cd->node, CD_BACKOFF_MAX_MS / 1000);
	cd->down_logged = true;
	cd_set_connected(cd, false);
	cd_backoff(cd);
}


int
cd_connect(struct cd *cd)
{
	char	err[sizeof(cd->error)];
	PGconn *pg;

	if ((pg = cd_pg_open(cd->cf->cf_cluster_dsn, err, sizeof(err))) ==
	    NULL) {
		cd_connect_failed(cd, err);
		return -1;
	}
	err[0] = '\0';
	if (cd_pg_prepare(pg, err, sizeof(err)) == -1 ||
	    ev_fd_add(cd->ev, PQsocket(pg), EV_READ, cd_on_socket, cd) == -1) {
		if (err[0] == '\0')
			(void)str_copy(err, sizeof(err), strerror(errno));
		PQfinish(pg);
		cd_connect_failed(cd, err);
		return -1;
	}
	cd->pg = pg;
	cd->pg_fd = PQsocket(pg);
	if (cd->down_logged)
		log_info("PostgreSQL reachable again after %lld s (node %s)",
		    (long long)(time(NULL) - cd->since), cd->node);
	else
		log_info("connected to PostgreSQL (node %s, server %d)",
		    cd->node, PQserverVersion(pg));
	cd->down_logged = false;
	cd->backoff_ms = CD_BACKOFF_MIN_MS;
	cd->ever_connected = true;
	cd_set_connected(cd, true);
	return 0;
}

void
cd_disconnect(struct cd *cd, const char *why)
{
	if (cd->pg == NULL)
		return;
	ev_fd_del(cd->ev, cd->pg_fd);
	PQfinish(cd->pg);
	cd->pg = NULL;
	if (why == NULL) {
		cd_set_connected(cd, false);
		return;
	}
	(void)str_copy(cd->error, sizeof(cd->error), why);
	log_warnx("PostgreSQL connection lost: %s (node %s keeps running on "
		  "its local copy; reconnecting)",
	    why, cd->node);
	cd->down_logged = true;
	cd_set_connected(cd, false);
	cd_backoff(cd);
}

/* A failed statement: recorded, logged unless it repeats the last one;
 * a dead connection is dropped. */
static void
cd_q_failed(struct cd *cd, const char *what, PGresult *res)
{
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char	    msg[sizeof(cd->error)], line[sizeof(cd->error) + 64];

	(void)str_copy(cd_state, sizeof(cd_state), st != NULL ? st : "");
	cd_oneline(msg, sizeof(msg),
	    res != NULL && PQresultErrorMessage(res)[0] != '\0'
		? PQresultErrorMessage(res)
		: PQerrorMessage(cd->pg));
	(void)snprintf(line, sizeof(line), "%s: %s", what, msg);
	if (PQstatus(cd->pg) == CONNECTION_BAD) {
		cd_disconnect(cd, line);
		return;
	}
	if (strncmp(cd->error, line, sizeof(cd->error) - 1) != 0)
		log_warnx("PostgreSQL: %s", line);
	(void)str_copy(cd->error, sizeof(cd->error), line);
}

PGresult *
cd_q(struct cd *cd, const char *what, const char *sql, int n,
    const char *const *vals)
{
	PGresult *res;

	cd_state[0] = '\0';
	if (cd->pg == NULL)
		return NULL;
	res = PQexecParams(cd->pg, sql, n, NULL, vals, NULL, NULL, 0);
	if (res != NULL && (PQresultStatus(res) == PGRES_COMMAND_OK ||
			       PQresultStatus(res) == PGRES_TUPLES_OK))
		return res;
	cd_q_failed(cd, what, res);
	PQclear(res);
	return NULL;
}

int
cd_exec(struct cd *cd, const char *what, const char *sql, int n,
    const char *const *vals)
{
	PGresult *res = cd_q(cd, what, sql, n, vals);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

void
cd_rollback(struct cd *cd)
{
	char saved[sizeof(cd_state)];

	(void)str_copy(saved, sizeof(saved), cd_state);
	if (cd->pg != NULL && PQtransactionStatus(cd->pg) != PQTRANS_IDLE)
		(void)cd_exec(cd, "rollback", "ROLLBACK", 0, NULL);
	(void)str_copy(cd_state, sizeof(cd_state), saved);
}

const char *
cd_sqlstate(const struct cd *cd)
{
	(void)cd;
	return cd_state;
}

bool
cd_notified(struct cd *cd)
{
	PGnotify *nf;
	bool	  got = false;
	char	  err[sizeof(cd->error)];

	if (cd->pg == NULL)
		return false;
	if (PQconsumeInput(cd->pg) == 0) {
		cd_oneline(err, sizeof(err), PQerrorMessage(cd->pg));
		cd_disconnect(cd, err);
		return false;
	}
	while ((nf = PQnotifies(cd->pg)) != NULL) {
		if (strcmp(nf->relname, "smtpgate_policy") == 0)
			got = true;
		PQfreemem(nf);
	}
	return got;
}
