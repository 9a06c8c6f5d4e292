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
	char		 h_kind;	/* SPOOL_TRACK_OPEN, _CLICK or _UNSUB */
	uint32_t	 h_tag;		/* _UNSUB: the backend's wait (slot, generation) */
	bool		 h_machine;
	int64_t		 h_dt;		/* unix seconds */
	int64_t		 h_ms;		/* monotonic ms (the burst rule) */
	char		 h_ua[TRACKD_UA_MAX];
	char		 h_client[SPOOL_CLIENT_MAX];
};

/*
 * An unsubscribe (POST /u/) is committed by the committer, with the opens
 * and clicks pending there, before its answer: the backend sends the
 * record (h_kind SPOOL_TRACK_UNSUB, h_tag its wait's slot and generation)
 * and keeps what the answer needs in that slot; the committer answers on
 * its reply pipe, after the commit, with one verdict per unsubscribe. The
 * backend's loop goes on serving every socket meanwhile, and the HTTP
 * process has suspended that one connection: no hit waits behind an
 * unsubscribe's fsync.
 */
enum trackd_unsub_result {
	TRACKD_U_ADDED,	  /* on the stop list now, with its event */
	TRACKD_U_ALREADY, /* it was: the same answer, no second event */
	TRACKD_U_GONE,	  /* the message is no longer recorded: 404 */
	TRACKD_U_FAILED	  /* not committed: 503 (the sender may retry) */
};

struct trackd_verdict {
	uint32_t v_tag;
	int32_t	 v_result; /* enum trackd_unsub_result */
};

#define TRACKD_UNSUB_MAX 1024 /* waiting in the committer; then FAILED */

/* What trackd_handle() left for the backend when it answered 0: the
 * unsubscribe to send to the committer, and what its answer needs. */
struct trackd_unsub_req {
	struct trackd_hit      ur_hit;
	struct spool_track_ref ur_ref;
	char		       ur_addr[SPOOL_ADDR_MAX];
	char		       ur_client[SPOOL_CLIENT_MAX];
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
	size_t			 t_flo;		/* t_fl[0..t_flo) committed already */
	struct trackd_seen	*t_seen;
	int			 t_pipe;	/* to the committer, or -1 */
	char			*t_event_log;
	bool			 t_export;	/* events to append (t_db) */
	struct trackd_unsub_req	 t_defer;	/* the backend's: see trackd_handle */
	/* the committer's: unsubscribes to commit, then verdicts to t_reply */
	struct trackd_hit	*t_un;
	enum trackd_unsub_result *t_unres;	/* each one's, in the txn */
	size_t			 t_nun;
	int			 t_reply;
	/* the unsubscribes' own pipe: the backend's write end, the
	 * committer's read end (non-blocking); -1: they come on t_pipe */
	int			 t_upipe;
};

/* The committer looks for unsubscribes every TRACKD_FLUSH_CHUNK hits of
 * a group it is writing: they ride in that group's transaction, cut
 * there (trackd_flush.c). */
#define TRACKD_FLUSH_CHUNK 32

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
/* GET, HEAD and POST /u/ (trackd_unsub.c); POST answers 0 and fills
 * t_defer (see struct trackd_unsub_req). */
void	trackd_unsub(struct trackd *, const struct trackd_req *,
	    const struct spool_track_ref *, struct trackd_resp *);
/* The backend: the answer to a deferred POST /u/ once its verdict came;
 * logs the hit's line. */
void	trackd_unsub_answer(const struct trackd_unsub_req *,
	    enum trackd_unsub_result, struct trackd_resp *);
/* The committer: an unsubscribe read from the pipe; false when
 * TRACKD_UNSUB_MAX wait already (the caller answers FAILED). */
bool	trackd_unsub_append(struct trackd *, const struct trackd_hit *);
/* The committer: reads what t_upipe holds onto t_un (FAILED verdicts
 * past TRACKD_UNSUB_MAX); at its EOF t_upipe becomes -1. True when
 * unsubscribes wait (t_nun > 0). */
bool	trackd_unsub_poll(struct trackd *);
/* The committer, in the flush's write txn: the stop-list entry and its
 * event; *res_r ADDED, ALREADY or GONE; 0 or the txn's failure. */
int	trackd_unsub_put(struct spool_txn *, const struct trackd_hit *,
	    enum trackd_unsub_result *res_r);
/* The committer: the unsubscribes waiting (t_un) committed in one
 * transaction of their own, each answered, then the events exported
 * (trackd_flush.c). */
void	trackd_flush_unsubs(struct trackd *);
/* The committer: one verdict to the backend (its reply pipe). */
void	trackd_verdict_send(struct trackd *, uint32_t tag,
	    enum trackd_unsub_result);

#endif
