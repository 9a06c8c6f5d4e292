/*
 * trackd's private parts, shared by trackd_hit.c (routing, opens and
 * clicks), trackd_unsub.c (the page and the stop list) and
 * trackd_flush.c (the group commit). Not for the HTTP layer.
 */
#ifndef SG_TRACKD_INT_H
#define SG_TRACKD_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "qid.h"
#include "spool.h"
#include "spool_track.h"
#include "trackd.h"

struct trackd_hit {
	char		 h_qid[QID_SIZE];
	uint32_t	 h_idx;
	uint16_t	 h_link;
	char		 h_kind;	/* SPOOL_TRACK_OPEN or _CLICK */
	bool		 h_machine;
	int64_t		 h_dt;		/* unix seconds */
	int64_t		 h_ms;		/* monotonic ms (the burst rule) */
	char		 h_ua[TRACKD_UA_MAX];
	char		 h_client[SPOOL_CLIENT_MAX];
};

struct trackd {
	struct spool		*t_sp;
	unsigned char		 t_key[SPOOL_TRACK_KEYLEN];
	pthread_mutex_t		 t_db;		/* every use of t_sp */
	pthread_mutex_t		 t_q;		/* t_pend, t_seen */
	struct trackd_hit	*t_pend;	/* answered, not yet committed */
	size_t			 t_npend;
	struct trackd_hit	*t_fl;		/* being committed (t_db held) */
	size_t			 t_nfl;
	struct trackd_seen	*t_seen;
	int			 t_pipe;	/* to the committer, or -1 */
	char			*t_event_log;
	bool			 t_export;	/* events to append (t_db) */
};

extern const char trackd_503[];

void	trackd_status(struct trackd_resp *, int status, const char *text);
/* A page built in rs_buf, sent with status. */
void	trackd_page_resp(struct trackd_resp *, int status);
/* The hit's log line; qid NULL: "NOQUEUE:" with the path. */
void	trackd_log(const char *qid, const struct trackd_req *, const char *what,
	    const struct spool_track_ref *, int status, const char *extra);
/* The recorded message of ref, checked against ref's recipient and link:
 * 0, SPOOL_ENOTFOUND or another SPOOL_E*; free km on 0. */
int	trackd_msg(struct spool_txn *, const struct spool_track_ref *,
	    struct spool_track_msg *km);
/* trackd_msg in a short read txn under t_db, handed to fn; fn's result,
 * or trackd_msg's or the txn's failure. */
int	trackd_msg_read(struct trackd *, const struct spool_track_ref *,
	    int (*fn)(const struct spool_track_msg *,
	    const struct spool_track_ref *, void *), void *arg);
/* A hit record of kind TRACKD_HIT_EXPORT asks the committer to append
 * committed events to event_log (after an unsubscribe). */
#define TRACKD_HIT_EXPORT	'x'
/* One record to the committer's pipe: 0, or -1 (full: not recorded). */
int	trackd_hit_send(struct trackd *, const struct trackd_hit *);
/* The committer's side: onto t_pend; false at TRACKD_PENDING_MAX. */
bool	trackd_hit_append(struct trackd *, const struct trackd_hit *);
/* GET, HEAD and POST /u/ (trackd_unsub.c). */
void	trackd_unsub(struct trackd *, const struct trackd_req *,
	    const struct spool_track_ref *, struct trackd_resp *);

#endif
