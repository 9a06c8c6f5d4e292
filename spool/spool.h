/*
 * spool: every on-disk format and all LMDB state (DESIGN "Spool layout",
 * STYLE E2). Functions return 0, a positive errno, or a negative SPOOL_E*
 * code; spool_strerror() turns either into text. The library never logs
 * and never exits: callers add the queue id and log.
 *
 * Tree under spool_dir (spool_tree_create sets owners and modes as root):
 *   incoming/tmp/  incoming/new/   0770 spoold_user:group  (smtpd writes, in group)
 *   queue/         0700 spoold_user   message files after filing
 *   quarantine/    0700 spoold_user   files spoold could not parse
 *   keys/          0700 deliverd_user DKIM private keys (copied in by spoolctl)
 *   db/            0750 spoold_user:group  LMDB (data.mdb 0640, lock.mdb 0660)
 *   trigger        FIFO 0660 spoold_user:group, wakes deliverd
 *
 * A message file (incoming/tmp/QID -> incoming/new/QID -> queue/QID) is an
 * envelope (see spool_env_format) followed by the message exactly as
 * received, CRLF line ends, dot-unstuffed, with our Received: prepended.
 */
#ifndef SG_SPOOL_H
#define SG_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "cidr.h"
#include "qid.h"

struct conf;

/* ---- errors (negative; positive values are errno) */
#define SPOOL_ENOTFOUND (-30901) /* no such record */
#define SPOOL_EEXIST	(-30902) /* record exists */
#define SPOOL_EFULL	(-30903) /* LMDB map full at lmdb_map_max (or the disk) */
#define SPOOL_EVERSION	(-30904) /* database schema version mismatch */
#define SPOOL_ECORRUPT	(-30905) /* a record does not decode */
#define SPOOL_EFORMAT	(-30906) /* an envelope does not parse */
#define SPOOL_ETOOBIG	(-30907) /* a value exceeds its field */
#define SPOOL_EDB	(-30908) /* other LMDB error (see errno text) */
#define SPOOL_EUNSAFE	(-30920) /* a link or a foreign file where root works */
const char *spool_strerror(int);

/* ---- sizes (protocol-bounded fields, STYLE S3) */
#define SPOOL_LOGIN_MAX	    256
#define SPOOL_ADDR_MAX	    512 /* an address or path, NUL included */
#define SPOOL_PARAMS_MAX    512
#define SPOOL_DOMAIN_MAX    256
#define SPOOL_REPLY_MAX	    1024 /* remote reply text, folded into one line */
#define SPOOL_URL_MAX	    2048
#define SPOOL_MAX_IPS	    64
#define SPOOL_CB_SECRETS    2	/* signing secrets per account (rotation) */
#define SPOOL_CB_SECRET_MAX 256 /* bytes */
#define SPOOL_NAME_MAX	    256 /* X-Campaign-Id, X-Letter-Id: 255 + NUL */
#define SPOOL_MSGID_MAX	    1000
#define SPOOL_DKIMSIG_MAX   8192

/* ===================================================================
 * Directory tree and message files
 */
enum spool_area {
	SPOOL_TMP,
	SPOOL_NEW,
	SPOOL_QUEUE,
	SPOOL_QUARANTINE,
	SPOOL_KEYS,
	SPOOL_DB,
	SPOOL_MAILDROP
};

/* Creates the tree if missing; as root also sets owners/modes from cf.
 * Nothing below spool_dir is followed through a symbolic link or changed
 * unless it has the expected type, one name and a root or daemon owner:
 * anything else is SPOOL_EUNSAFE. why_r (may be NULL) gets one line naming
 * the path on any failure ("refusing PATH: it is a symbolic link"). */
int spool_tree_create_err(const struct conf *cf, char *why_r, size_t whysz);
int spool_tree_create(const struct conf *cf); /* the same, no why */
/* An O_DIRECTORY fd of spool_dir/area, no symbolic link followed below
 * spool_dir; -1 with errno (ELOOP or ENOTDIR for a link). */
int spool_area_open(const char *spool_dir, enum spool_area);
/* dst = spool_dir/area[/name]; -1 ENAMETOOLONG. name may be NULL. */
int spool_path(char *dst, size_t dstsz, const char *spool_dir, enum spool_area,
    const char *name);
/* spool_dir/trigger */
int spool_trigger_path(char *dst, size_t dstsz, const char *spool_dir);

/* Writing an incoming message (smtpd, smtpgate-sendmail). */
struct spool_in {
	int   sn_fd;
	char  sn_qid[QID_SIZE];
	char  sn_tmp[4096];
	char  sn_new[4096];
	char  sn_newdir[4096];
	off_t sn_size; /* bytes written so far */
};
/* Makes a fresh QID and creates incoming/tmp/QID (O_EXCL, 0640). */
int spool_in_create(const char *spool_dir, struct spool_in *);
/* The same in maildrop/ (smtpgate-sendmail): maildrop/.QID, committed to
 * maildrop/QID; spoold copies it (spoold_maildrop.c). */
int spool_drop_create(const char *spool_dir, struct spool_in *);
int spool_in_write(struct spool_in *, const void *, size_t);
/* fsync file, close, rename into incoming/new, fsync the directory. Only
 * after 0 may the message be acknowledged. On error the tmp file is gone. */
int spool_in_commit(struct spool_in *);
/*
 * The same in two steps, for a caller that covers several renames with one
 * directory fsync (smtpd's commit pool): spool_in_commit_file() fsyncs,
 * closes and renames (on error the tmp file is gone); the message may be
 * acknowledged only after an fsync of sn_newdir that began after it
 * returned 0. If that fsync fails, spool_in_uncommit() removes the file.
 */
int  spool_in_commit_file(struct spool_in *);
void spool_in_uncommit(struct spool_in *);
/* Closes and unlinks the tmp file; safe to call twice or after commit. */
void spool_in_abort(struct spool_in *);

/* Scanning and moving (spoold). Names are QIDs; the callback returns 0 to
 * go on, non-zero to stop (that value is returned). Sorted by name. */
int spool_scan(const char *spool_dir, enum spool_area,
    int (*cb)(const char *name, void *), void *arg);
/* The same in directory order, one name at a time, without listing the
 * directory first: linear in its size, bounded memory. A name renamed
 * away during the scan may still be reported, one added may be missed.
 * cb's name is valid during the call only. */
int spool_scan_stream(const char *spool_dir, enum spool_area,
    int (*cb)(const char *name, void *), void *arg);
/* rename area_from/name -> area_to/name; no fsync (see spool_sync). */
int spool_move(const char *spool_dir, const char *name, enum spool_area from,
    enum spool_area to);
/* fsync an area's directory (after a batch of moves). */
int spool_sync(const char *spool_dir, enum spool_area);
int spool_unlink(const char *spool_dir, enum spool_area, const char *name);
/*
 * The free-space watermark (spool_space.c): spool_space_min() is
 * min_free_space, or 1.5 x max_message_size when it is 0 (Postfix's
 * rule). spool_space_check() returns 0 if the file system of spool_dir
 * has at least min_free bytes free for an unprivileged writer, ENOSPC if
 * not, or statvfs's errno; *avail_r = the free bytes. The figure is
 * cached for up to a second per process (one calling thread only).
 */
int64_t spool_space_min(const struct conf *);
int	spool_space_check(const char *spool_dir, int64_t min_free,
	int64_t *avail_r);
/* Unlinks incoming/tmp files older than max_age seconds; *n_r = count. */
int spool_tmp_cleanup(const char *spool_dir, time_t max_age, size_t *n_r);

/* ---- envelope tags (spool_tag.c): HMAC-SHA256(key, account) in hex. The
 * key is db/envelope.key (32 random bytes, 0600, created by whichever of
 * smtpd's lookup process and spoold needs it first); smtpd workers never
 * see it, so an envelope's account is the one the lookup process vouched
 * for. spool_tag_load returns 0 or an errno. */
#define SPOOL_TAG_KEYLEN 32
#define SPOOL_TAG_HEX	 65
int spool_tag_load(const char *spool_dir, unsigned char key[SPOOL_TAG_KEYLEN]);
/* When the key was made (its mtime): files changed before cannot carry a tag. */
int  spool_tag_made(const char *spool_dir, time_t *made_r);
void spool_tag_make(const unsigned char key[SPOOL_TAG_KEYLEN],
    const char *account, char hex_r[SPOOL_TAG_HEX]);
bool spool_tag_ok(const unsigned char key[SPOOL_TAG_KEYLEN],
    const char *account, const char *hex);

/* ---- the envelope: "SMTPGATE 1\n", then "key value\n" lines, then "\n".
 * Keys: qid, time (unix s), account, client, helo, tls, auth, from (the
 * MAIL FROM path without <>, verbatim), from_params, rcpt (repeated; the
 * address without <>), and for rcpt parameters "rcpt_params", and "tag"
 * (spool_tag_make of the account). Unknown keys
 * are ignored (newer writer). Values never contain CR, LF or NUL. */
struct spool_env {
	char	pe_qid[QID_SIZE];
	int64_t pe_time;
	char	pe_account[SPOOL_LOGIN_MAX];
	char	pe_client[128]; /* "ADDR:PORT" or "local" */
	char	pe_helo[256];
	char	pe_tls[128];		  /* "" or "TLSv1.3 CIPHER" */
	char	pe_auth[SPOOL_LOGIN_MAX]; /* SASL user, "" if IP-pinned */
	char	pe_from[SPOOL_ADDR_MAX];  /* "" for the null sender */
	char	pe_from_params[SPOOL_PARAMS_MAX];
	char	pe_tag[SPOOL_TAG_HEX]; /* spool_tag_make(account), "" if none */
	char  **pe_rcpt;	       /* heap, pe_nrcpt entries */
	size_t	pe_nrcpt;
	size_t	pe_hdrlen; /* bytes of envelope: the message starts here */
};
void spool_env_init(struct spool_env *);
void spool_env_free(struct spool_env *); /* frees pe_rcpt */
int  spool_env_add_rcpt(struct spool_env *, const char *addr);
/* Appends the envelope text to out. SPOOL_EFORMAT if a value holds CR/LF/NUL. */
int spool_env_format(const struct spool_env *, struct buf *out);
/* Pure parser over the first len bytes of a file (fuzzed). Needs the whole
 * envelope in data; SPOOL_EFORMAT on anything malformed or truncated.
 * It initialises the struct itself; on error nothing is left to free. */
int spool_env_parse(const char *data, size_t len, struct spool_env *);
/* Reads and parses the envelope at the start of an open file (at most
 * max bytes of envelope, else SPOOL_ETOOBIG). Leaves the file offset at
 * the message. */
int spool_env_read(int fd, size_t max, struct spool_env *);

/* ===================================================================
 * LMDB: one environment in spool_dir/db. Writers: spoold, deliverd,
 * spoolctl. smtpd's lookup process opens it read-only; its workers never
 * do. Never carry a handle across fork().
 */
struct spool;
struct spool_txn;

#define SPOOL_RDONLY  0x01
/* cluster_dsn is set: journal policy writes, deterministic issue ids
 * (spool_cluster.h) */
#define SPOOL_CLUSTER 0x02
/*
 * map_size is the initial map (lmdb_map_size); the map grows by itself up
 * to map_max (lmdb_map_max) when full, see spool_map_grown(). Every open
 * clears the reader slots of dead processes, and so does a writer's
 * spool_begin at most once a minute (spool_map_info reports the count).
 */
int  spool_open(const char *spool_dir, int64_t map_size, int64_t map_max,
     unsigned flags, struct spool **);
void spool_close(struct spool **);
int  spool_begin(struct spool *, bool write, struct spool_txn **);
int  spool_commit(struct spool_txn **); /* frees the txn either way */
void spool_abort(struct spool_txn **);	/* accepts NULL */
/* Returns a read txn to its snapshot start (cheap re-read for long runs). */
int spool_renew(struct spool_txn *);

/*
 * The map. A write txn that fails with SPOOL_EFULL marks it full; when
 * the txn has ended (spool_abort, or the failed spool_commit) and no other
 * txn of this process is live, the library doubles the map, capped at
 * map_max and by the free space of the file system. spool_map_grown()
 * returns true once per growth (filling m_r, mp_grew_from is the old
 * size): the caller logs it and retries the whole txn once. Other
 * processes adopt the new size in spool_begin/spool_renew (EBUSY if one
 * of their txns is still live then). mp_stuck: the last SPOOL_EFULL could
 * not grow it (ceiling or disk). mp_readers: stale reader slots cleared
 * since the last report. spool_map_info() reports and resets the counts.
 */
struct spool_map {
	int64_t	 mp_size;
	int64_t	 mp_max;
	int64_t	 mp_grew_from;
	bool	 mp_stuck;
	unsigned mp_readers;
};
bool spool_map_grown(struct spool *, struct spool_map *m_r);
/* Grows the map now, as after SPOOL_EFULL (for a process that closed the
 * spool on it, e.g. spoolctl's retry); true and m_r filled if it grew. */
bool spool_map_grow(struct spool *, struct spool_map *m_r);
/* A writer's spool_map_info also runs the reader check when a minute has
 * passed, so a daemon that calls it periodically keeps slots clean. */
void spool_map_info(struct spool *, struct spool_map *m_r);

/* ---- accounts (spoolctl writes; smtpd, spoold, deliverd read) */
enum spool_cb_format { SPOOL_CB_JSON = 0, SPOOL_CB_STREAM = 1 };
enum spool_senders { SPOOL_SENDERS_ANY = 0, SPOOL_SENDERS_REGISTERED = 1 };

struct spool_account {
	char	    ac_login[SPOOL_LOGIN_MAX];
	char	    ac_pwhash[256]; /* crypt(3) text; "" = no password login */
	struct cidr ac_ips[SPOOL_MAX_IPS];
	size_t	    ac_nips;
	bool	    ac_sandbox;
	char	    ac_callback_url[SPOOL_URL_MAX];
	enum spool_cb_format ac_callback_format;
	enum spool_senders   ac_senders;
	int64_t		     ac_created;
	/* issue 15 item 6: "ADDR [HELO-NAME]" or a source_pool name
	 * (common/srcaddr.h), "" = source_address */
	char ac_source[320];
	/* issue 16: engagement tracking (SPOOL_TRACK_F_* of spool_track.h)
	 * and the host its links point at; 0 / "" = off */
	unsigned ac_track;
	char	 ac_track_host[SPOOL_DOMAIN_MAX];
	/* issue 18 item 1: callback signing secrets (spool_cbsig.h), the
	 * current one first; "" = unused. Never printed. */
	char ac_cb_secret[SPOOL_CB_SECRETS][SPOOL_CB_SECRET_MAX + 1];
};
int spool_account_get(struct spool_txn *, const char *login,
    struct spool_account *);
int spool_account_put(struct spool_txn *, const struct spool_account *);
/* Deletes the account and its senders, DKIM entries, stoplist and
 * suppression list. */
int spool_account_del(struct spool_txn *, const char *login);
int spool_account_iter(struct spool_txn *,
    int (*cb)(const struct spool_account *, void *), void *);
/* The first account (by login order) with an --ip range matching addr
 * (numeric text), or SPOOL_ENOTFOUND. */
int spool_account_by_ip(struct spool_txn *, const char *addr,
    struct spool_account *);

/* ---- senders: key is an address or "@domain", lower-cased by the library */
enum spool_sender_status {
	SPOOL_SENDER_APPROVED = 1,
	SPOOL_SENDER_ONMODERATION = 2,
	SPOOL_SENDER_PROHIBITED = 3
};
const char *spool_sender_status_name(
    enum spool_sender_status); /* "approved" ... */
int spool_sender_put(struct spool_txn *, const char *login, const char *key,
    enum spool_sender_status);
int spool_sender_get(struct spool_txn *, const char *login, const char *key,
    enum spool_sender_status *);
int spool_sender_del(struct spool_txn *, const char *login, const char *key);
int spool_sender_iter(struct spool_txn *, const char *login,
    int (*cb)(const char *key, enum spool_sender_status, void *), void *);

/* ---- DKIM keys: the PEM lives in keys/ (readable by deliverd only) */
enum spool_dkim_alg { SPOOL_DKIM_RSA = 1, SPOOL_DKIM_ED25519 = 2 };
struct spool_dkim {
	char		    dk_login[SPOOL_LOGIN_MAX];
	char		    dk_domain[SPOOL_DOMAIN_MAX]; /* lower case */
	char		    dk_selector[64];
	enum spool_dkim_alg dk_alg;
	char		    dk_keyfile[256]; /* name inside keys/ */
	bool		    dk_default;	     /* the account's default domain */
	int64_t		    dk_created;
};
int spool_dkim_put(struct spool_txn *, const struct spool_dkim *);
/* selector NULL: every selector of the domain. */
int spool_dkim_del(struct spool_txn *, const char *login, const char *domain,
    const char *selector);
/* All keys of an account (domain NULL) or of one domain. */
int spool_dkim_iter(struct spool_txn *, const char *login, const char *domain,
    int (*cb)(const struct spool_dkim *, void *), void *);

/* ---- stoplist and permanent failures (addresses lower-cased) */
/*
 * Why an address is on an account's stop list (h-asupp): se_reason
 * "unsubscribed", "complained" or "manual", when, the queue id of the
 * message it came from and a note (the complaint report's queue id and
 * Feedback-Type, ...). Entries written before carry none: "" and 0.
 */
struct spool_stopent {
	char	se_reason[32];
	int64_t se_when;
	char	se_qid[QID_SIZE];
	char	se_note[256];
};
/* The entry with its why (NULL: none recorded); an address listed
 * already keeps its first why (the entry is written again). */
int  spool_stop_put_why(struct spool_txn *, const char *login, const char *addr,
     const struct spool_stopent *);
int  spool_stop_get(struct spool_txn *, const char *login, const char *addr,
     struct spool_stopent *);
int  spool_stop_put(struct spool_txn *, const char *login, const char *addr);
int  spool_stop_del(struct spool_txn *, const char *login, const char *addr);
bool spool_stop_has(struct spool_txn *, const char *login, const char *addr);
int  spool_stop_iter(struct spool_txn *, const char *login,
     int (*cb)(const char *addr, void *), void *);
int  spool_permfail_put(struct spool_txn *, const char *login, const char *addr,
     int64_t when, const char *reply);
bool spool_permfail_has(struct spool_txn *, const char *login,
    const char *addr);
int spool_permfail_del(struct spool_txn *, const char *login, const char *addr);
/*
 * A suppression entry (the permanent-failure record, issue 15): why and
 * when the address was added. Records written before these fields existed
 * decode with pf_reason, pf_qid empty and pf_issue 0. pf_login and
 * pf_addr come from the key (spool_permfail_set ignores them but for the
 * key itself).
 */
#define SPOOL_PF_REASON_MAX 32
struct spool_permfail {
	char	 pf_login[SPOOL_LOGIN_MAX];
	char	 pf_addr[SPOOL_ADDR_MAX]; /* lower case */
	int64_t	 pf_when;
	char	 pf_reply[SPOOL_REPLY_MAX];	 /* the source reply, or "" */
	char	 pf_reason[SPOOL_PF_REASON_MAX]; /* category or "manual" */
	char	 pf_qid[QID_SIZE];		 /* "" when added by hand */
	uint64_t pf_issue;			 /* 0: none */
};
int spool_permfail_set(struct spool_txn *, const struct spool_permfail *);
/* SPOOL_ENOTFOUND if absent. */
int spool_permfail_get(struct spool_txn *, const char *login, const char *addr,
    struct spool_permfail *);
/*
 * Entries of one account (login; NULL: every account) in key order,
 * starting after (login, after) when after is not NULL. Non-zero from cb
 * stops the walk and is returned.
 */
int spool_permfail_iter(struct spool_txn *, const char *login,
    const char *after, int (*cb)(const struct spool_permfail *, void *),
    void *);

/* bounce categories counted per issue (common/bounce.h's BOUNCE_CAT_COUNT fits) */
#define SPOOL_CAT_MAX 16

/* ---- issues (mailings): an account's messages of one UTC day with one
 * X-Campaign-Id (or none). Counters are changed only by spool_issue_put by
 * spoold (n_msgs, n_rcpts) and by spool_event_add (the rest), in the same
 * transaction as the state change they count. */
struct spool_issue {
	uint64_t su_id;
	char	 su_login[SPOOL_LOGIN_MAX];
	char	 su_date[11];		  /* YYYY-MM-DD */
	char	 su_name[SPOOL_NAME_MAX]; /* X-Campaign-Id */
	bool	 su_has_name;		  /* false: name is null */
	bool	 su_blocked;
	uint64_t su_msgs, su_rcpts; /* accepted (filed) */
	uint64_t su_delivered;	    /* delivered events */
	uint64_t su_deferred;	    /* deferred events (attempts) */
	uint64_t su_bounced_policy, su_bounced_remote;
	uint64_t su_bounced_expired, su_bounced_admin;
	/* bounced events by category (index: enum bounce_cat, common/bounce.h;
	 * 0 unused); records written before issue 15 read as zeros */
	uint64_t su_bounced_cat[SPOOL_CAT_MAX];
	/* engagement (issue 16): unique = the first of a recipient of a
	 * message; older records read as zeros */
	uint64_t su_opens, su_opens_unique;
	uint64_t su_clicks, su_clicks_unique;
	uint64_t su_unsubscribed, su_complained;
	/* issue 18 item 3: duplicate events; older records read as zero */
	uint64_t su_duplicates;
};
int spool_issue_get(struct spool_txn *, uint64_t id, struct spool_issue *);
/* name NULL = no X-Campaign-Id. SPOOL_ENOTFOUND if none yet. */
int spool_issue_find(struct spool_txn *, const char *login, const char *date,
    const char *name, struct spool_issue *);
/* find, else create with a new id (ids count up from 1). */
int spool_issue_find_or_create(struct spool_txn *, const char *login,
    const char *date, const char *name, struct spool_issue *);
int spool_issue_put(struct spool_txn *, const struct spool_issue *);
/*
 * The issues an account has on a day (h-astate: spoold files a message
 * into the day's issue without a campaign once max_issues_per_day are
 * there). Counted by spool_issue_find_or_create and spool_issue_del;
 * issues made before the count existed are not in it.
 */
int spool_issue_day_count(struct spool_txn *, const char *login,
    const char *date, uint64_t *n_r);
int spool_issue_day_add(struct spool_txn *, const char *login, const char *date,
    int delta);
struct json_gen;
/* The issue as `spoolctl issues --json` prints it, its object left open
 * (the caller may add keys, then json_obj_end): spoolctl and clusterd's
 * issue_counts.counters. */
void spool_issue_json(struct json_gen *, const struct spool_issue *);
int  spool_issue_iter(struct spool_txn *,
     int (*cb)(const struct spool_issue *, void *), void *);

/* ---- messages and recipients */
struct spool_msg {
	char	 sm_qid[QID_SIZE];
	char	 sm_login[SPOOL_LOGIN_MAX];
	int64_t	 sm_arrival; /* unix seconds (envelope time) */
	int64_t	 sm_size;    /* message bytes (without envelope) */
	uint64_t sm_issue;
	char	 sm_from[SPOOL_ADDR_MAX]; /* envelope sender, verbatim */
	char	 sm_from_params[SPOOL_PARAMS_MAX];
	char	 sm_from_hdr[SPOOL_ADDR_MAX]; /* address in From: */
	char	 sm_message_id[SPOOL_MSGID_MAX];
	char	 sm_subject[256];	       /* for listings; cut */
	char	 sm_letter_id[SPOOL_NAME_MAX]; /* X-Letter-Id */
	bool	 sm_has_letter_id;
	char	 sm_client[128];
	char	 sm_auth[SPOOL_LOGIN_MAX];
	uint32_t sm_nrcpt;
	uint32_t sm_npending; /* recipients not yet final */
	bool	 sm_held;
	bool	 sm_sandbox;
	bool	 sm_dkim_done; /* signing attempted */
	char	 sm_dkim
	    [SPOOL_DKIMSIG_MAX]; /* DKIM-Signature header lines, CRLF-ended, or "" */
	int64_t sm_body_off; /* where the message starts in queue/QID */
};
enum spool_rcpt_state {
	SPOOL_RS_QUEUED = 0,
	SPOOL_RS_DEFERRED = 1,
	SPOOL_RS_DELIVERED = 2,
	SPOOL_RS_BOUNCED = 3
};
const char *spool_rcpt_state_name(enum spool_rcpt_state); /* "queued" ... */
struct spool_rcpt {
	char		      sr_qid[QID_SIZE];
	uint32_t	      sr_idx;
	char		      sr_addr[SPOOL_ADDR_MAX];
	enum spool_rcpt_state sr_state;
	uint32_t	      sr_attempts;
	int64_t		      sr_next;	/* due time while queued/deferred */
	int64_t		      sr_last;	/* last attempt, 0 = never */
	char sr_reply[SPOOL_REPLY_MAX]; /* last reply, verbatim */
	char sr_hop[256];		/* last next hop "host[addr]:port" */
	char sr_tls[128];		/* last TLS facts or "" */
	char sr_category[24]; /* last failure's category or "" (issue 15) */
};
int spool_msg_get(struct spool_txn *, const char *qid, struct spool_msg *);
/* Does not touch the schedule: change sm_held only with spool_msg_hold. */
int spool_msg_put(struct spool_txn *, const struct spool_msg *);
/* Deletes the message record, its recipients and their schedule entries. */
int spool_msg_del(struct spool_txn *, const char *qid);
/* In QID (= arrival) order. */
int spool_msg_iter(struct spool_txn *,
    int (*cb)(const struct spool_msg *, void *), void *);
int spool_rcpt_get(struct spool_txn *, const char *qid, uint32_t idx,
    struct spool_rcpt *);
/* Writes the recipient and keeps the schedule index consistent: an entry at
 * sr_next exists iff the state is queued/deferred and the message is not
 * held. */
int spool_rcpt_put(struct spool_txn *, const struct spool_rcpt *);
int spool_rcpt_iter(struct spool_txn *, const char *qid,
    int (*cb)(const struct spool_rcpt *, void *), void *);
/* Hold or release: sets sm_held and removes/re-adds schedule entries
 * (release makes pending recipients due now). */
int spool_msg_hold(struct spool_txn *, const char *qid, bool hold, int64_t now);

/*
 * Finished messages. spool_msg_del, and spoold for a message refused whole
 * at filing (which gets no records), leave a marker under the QID: a file
 * that a power loss brings back into incoming/new after its message was
 * finished is recognised and not filed again. spool_done_get: 0 or
 * SPOOL_ENOTFOUND. spool_done_prune deletes at most max markers of
 * messages that arrived (QID time) before `before`, oldest first.
 */
int spool_done_put(struct spool_txn *, const char *qid, int64_t when);
int spool_done_get(struct spool_txn *, const char *qid, int64_t *when_r);
int spool_done_prune(struct spool_txn *, int64_t before, size_t max,
    size_t *n_r);

/* ---- schedule: (due time, qid, idx), ordered by time */
/* Calls cb for each entry with due <= now, in time order, at most max. */
int spool_sched_due(struct spool_txn *, int64_t now, size_t max,
    int (*cb)(int64_t due, const char *qid, uint32_t idx, void *), void *);
/* Earliest due time, or SPOOL_ENOTFOUND when nothing is scheduled. */
int spool_sched_next(struct spool_txn *, int64_t *due_r);

/* ---- events: the delivery log (time-ordered), the callback outbox and
 * events.jsonl. spool_event_add builds the CONTRACT JSON (with yajl),
 * appends it to the log, to the outbox when the account has a callback
 * URL, and bumps the issue's counter, in the caller's transaction. */
enum spool_ev_type {
	SPOOL_EV_DELIVERED = 0,
	SPOOL_EV_DEFERRED = 1,
	SPOOL_EV_BOUNCED = 2,
	/* engagement (issue 16; spool_engage.c) */
	SPOOL_EV_OPENED = 3,
	SPOOL_EV_CLICKED = 4,
	SPOOL_EV_UNSUBSCRIBED = 5,
	SPOOL_EV_COMPLAINED = 6,
	/* idempotent submission (issue 18 item 3; spool_dedupe.c) */
	SPOOL_EV_DUPLICATE = 7
};
enum spool_ev_class {
	SPOOL_CL_NONE = 0,
	SPOOL_CL_POLICY,
	SPOOL_CL_REMOTE,
	SPOOL_CL_EXPIRED,
	SPOOL_CL_ADMIN
};
struct spool_event {
	enum spool_ev_type  ev_type;
	enum spool_ev_class ev_class; /* NONE unless bounced */
	int64_t		    ev_dt;    /* unix seconds */
	const char	   *ev_login;
	const char	   *ev_qid;
	uint64_t    ev_issue; /* 0 = none (name/date looked up from it) */
	const char *ev_uniq;  /* X-Letter-Id or NULL */
	const char *ev_from;
	const char *ev_to;
	const char *ev_message_id; /* NULL allowed */
	const char *ev_msg;	   /* the reply or policy text */
	uint32_t    ev_attempt;
	bool	    ev_sandbox;
	const char *ev_hop; /* extra fields, NULL to omit */
	const char *ev_tls;
	/* deferred and bounced: a category name from common/bounce.h; NULL
	 * takes it from the class (policy, expired; else "other") */
	const char *ev_category;
	/* engagement events (issue 16): NULL/false to omit; no class, msg,
	 * attempt or sandbox on those */
	const char *ev_url; /* clicked: the recorded link */
	const char *ev_user_agent;
	const char *ev_client;	/* spool_client_truncate's form */
	bool	    ev_machine; /* "machine": true only when set */
	/* duplicate (issue 18 item 3): the first message's QID */
	const char *ev_original_qid;
	uint32_t    ev_idx; /* opened/clicked: recipient index
						 * (unique counts) */
	/* delivered (issue 18 item 4, the simulator's ooto@): the
	 * auto-reply note, "auto_reply"; NULL to omit */
	const char *ev_auto_reply;
	/* delivered, deferred, bounced (issue 17 item 6): how the next hop
	 * was authenticated, "tls_verified" (common/tlsres.h's names:
	 * none, untrusted, verified, mta-sts, dane); NULL to omit */
	const char *ev_tls_verified;
};
/*
 * Zeroes ev, then fills what comes from message m (login, qid, issue,
 * X-Letter-Id, from, Message-Id, sandbox), the recipient and the time.
 * The caller sets type, class, msg, attempt, hop and tls.
 */
void spool_event_init(struct spool_event *, const struct spool_msg *m,
    const char *to, int64_t dt);
/* seq_r (may be NULL) receives the event's log sequence number. */
int spool_event_add(struct spool_txn *, const struct spool_event *,
    uint64_t *seq_r);
/* Delivery log, oldest first (reverse: newest first), from sequence `from`
 * (0 = the end it starts at). cb gets the event JSON (not NUL-terminated). */
int spool_log_iter(struct spool_txn *, bool reverse, uint64_t from,
    int (*cb)(uint64_t seq, const char *json, size_t len, void *), void *);
/* Events of one message, oldest first. */
int spool_log_iter_qid(struct spool_txn *, const char *qid,
    int (*cb)(uint64_t seq, const char *json, size_t len, void *), void *);
/*
 * Callback outbox, one key range per account: (login, seq) -> event time
 * and JSON. spool_outbox_next_account gives the first account after
 * `after` ("" or NULL: the first) that has entries and the event time of
 * its oldest entry (dt_r may be NULL), else SPOOL_ENOTFOUND.
 * spool_outbox_iter gives one account's entries from `from` (inclusive),
 * oldest first. spool_outbox_drop_old deletes at most max of the account's
 * oldest entries whose event time is before `before` (it stops at the
 * first younger one), sets *n_r and adds it to the counters that
 * spool_outbox_dropped reads (login NULL: all accounts).
 */
int spool_outbox_next_account(struct spool_txn *, const char *after,
    char login_r[SPOOL_LOGIN_MAX], int64_t *dt_r);
int spool_outbox_iter(struct spool_txn *, const char *login, uint64_t from,
    int (*cb)(uint64_t seq, int64_t dt, const char *json, size_t len, void *),
    void *);
int spool_outbox_del(struct spool_txn *, const char *login, uint64_t seq);
int spool_outbox_drop_old(struct spool_txn *, const char *login, int64_t before,
    size_t max, size_t *n_r);
int spool_outbox_dropped(struct spool_txn *, const char *login, uint64_t *n_r);
/* Appends logged events not yet exported to the JSON-lines file at path
 * (O_APPEND, fdatasync), then records the cursor and the file's length in
 * a short write transaction of its own; the file is written with no
 * transaction open. Exporters serialise on flock(2) of db/export.lock. Lines
 * that a crash left past the recorded length are cut before they are
 * written again, so each event appears once (at least once if the file was
 * rotated meanwhile). _some exports one batch of at most max events (and
 * 8 MB); spool_events_export exports everything, SPOOL_EXPORT_BATCH at a
 * time. *n_r: the number exported. */
#define SPOOL_EXPORT_BATCH 5000
int spool_events_export_some(struct spool *, const char *path, size_t max,
    size_t *n_r);
int spool_events_export(struct spool *, const char *path, size_t *n_r);

/* ---- delivery-log indexes (spool_index.c): the same callbacks and order
 * as spool_log_iter, but only the events of one type or one issue, at a
 * cost that grows with them, not with the log. On a database whose
 * indexes are still being built (spool_log_indexed false) they scan the
 * whole log instead, so the callback must still check what it gets. */
bool spool_log_indexed(struct spool_txn *);
int  spool_log_iter_type(struct spool_txn *, enum spool_ev_type, bool reverse,
     int (*cb)(uint64_t seq, const char *json, size_t len, void *), void *);
int  spool_log_iter_issue(struct spool_txn *, uint64_t issue, bool reverse,
     int (*cb)(uint64_t seq, const char *json, size_t len, void *), void *);
/* Issues of one account (login; date may narrow it) or of one date (login
 * NULL), in id order; both NULL: every issue (spool_issue_iter). */
int spool_issue_iter_sel(struct spool_txn *, const char *login,
    const char *date, int (*cb)(const struct spool_issue *, void *), void *);
/* Deletes an issue record and its index entries (retention). */
int spool_issue_del(struct spool_txn *, uint64_t id);

/* ---- one account's stored events (spool_evsel.c, issue 18 item 2) */
/* dlog_acct is built (else spool_log_iter_account scans the log). */
bool spool_log_acct_indexed(struct spool_txn *);
/*
 * The events of login with from <= seq <= to, oldest first, at most max
 * of them visited per call (bounded read transactions: call again with
 * *next_r, 0 when nothing is left). cb as for spool_log_iter.
 */
int spool_log_iter_account(struct spool_txn *, const char *login, uint64_t from,
    uint64_t to, size_t max,
    int (*cb)(uint64_t seq, const char *json, size_t len, void *), void *,
    uint64_t *next_r);
/* The sequence number of the first event logged at or after dt (unix
 * seconds; one past the last event if none): a binary search, the log's
 * sequence order being its time order. */
int spool_log_seq_at(struct spool_txn *, int64_t dt, uint64_t *seq_r);
/* An event "id" ("INSTANCE-SEQ") -> SEQ; EINVAL if it is not one,
 * SPOOL_ENOTFOUND if it is another spool's. */
int spool_event_id_seq(struct spool_txn *, const char *id, uint64_t *seq_r);
/* The callback sender's last success and last error of an account (meta
 * "callback_state:LOGIN", written by deliverd_callback.c; 0 = never). */
struct spool_cb_state {
	int64_t cs_last_ok;
	int64_t cs_last_err;
	char	cs_err[256];
};
int spool_cb_state_get(struct spool_txn *, const char *login,
    struct spool_cb_state *);
/* Records a success at now (err NULL) or an error with its text. */
int spool_cb_state_note(struct spool_txn *, const char *login, int64_t now,
    const char *err);
/* Queues a logged event (its log seq and JSON) into login's callback
 * outbox again, aging from t (callback_max_age); an entry still pending
 * under seq is simply rewritten (spoolctl callbacks replay). */
int spool_outbox_replay(struct spool_txn *, const char *login, uint64_t seq,
    int64_t t, const char *json, size_t len);
/* Record counts (LMDB's, no walk): messages, recipients scheduled,
 * callback outbox entries. */
struct spool_counts {
	uint64_t sc_messages;
	uint64_t sc_rcpts_pending;
	uint64_t sc_outbox;
};
int spool_counts(struct spool_txn *, struct spool_counts *);
/* Bytes of the map in use (last page) and the map's size. */
void spool_map_used(struct spool *, int64_t *used_r, int64_t *size_r);

/* ---- retention (spool_prune.c). Ages in seconds; 0 keeps forever. */
struct spool_retention {
	int64_t rt_dlog;     /* delivery log, its indexes, dlog_qid */
	int64_t rt_issues;   /* issue records and counters */
	int64_t rt_permfail; /* permanent failures (suppression_ttl) */
	int64_t rt_dedupe;   /* X-Letter-Id index (dedupe_window) */
};
struct spool_prune_stats {
	size_t ps_dlog;	      /* events removed */
	size_t ps_kept;	      /* old events kept: message still queued */
	size_t ps_unexported; /* removed before events.jsonl had them */
	size_t ps_issues;
	size_t ps_permfail;
	size_t ps_txns;
	size_t ps_engage; /* first-open/click entries (issue 16) */
	bool   ps_more;	  /* the budget ran out: call again */
	/* where the pass is: zero the whole struct to start a pass */
	int	 ps_phase;
	uint64_t ps_dlog_next;
	uint8_t	 ps_pf_key[512];
	size_t	 ps_pf_len;
	/* issue 16: tracking records (spool_track.h) removed, and where */
	size_t ps_track;
	char   ps_track_qid[21];
	/* issue 18 item 3: X-Letter-Id index entries removed, and where */
	size_t ps_dedupe;
	struct spool_dedupe_cursor {
		uint8_t dc_key[512];
		size_t	dc_len;
	} ps_dedupe_cur;
	/* NXDOMAIN sightings (spool_nxdom.c) removed, and where */
	size_t			   ps_nxdom;
	struct spool_dedupe_cursor ps_nxdom_cur;
};
/*
 * One write transaction of a pruning pass: removes what is older than
 * now minus each retention, at most budget records (and examines at most
 * four times that, for at most SPOOL_PRUNE_TXN_MS before the commit),
 * adds the counts to *ps and sets ps_more when the pass is not finished. Events of messages still in the queue are kept, and so
 * are issues from the day before the oldest queued message on. Callers
 * repeat it (ps_more) between other work: never one long lock.
 */
#define SPOOL_PRUNE_TXN_MS 100
int spool_prune(struct spool *, int64_t now, const struct spool_retention *,
    size_t budget, struct spool_prune_stats *);

/* ---- idempotent submission (issue 18 item 3; spool_dedupe.c): the
 * X-Letter-Id values an account used and the QID of the message that
 * first used each one, with its filing time. get: SPOOL_ENOTFOUND if
 * none; put replaces. SPOOL_ETOOBIG when login and id together exceed
 * LMDB's key (both near 255 bytes): such a message is not deduplicated.
 * spool_dedupe_prune deletes entries filed before `before`, at most max,
 * looking at most 4 x max, from the cursor on (zero it to start a walk);
 * *done_r is true when the walk reached the end. */
struct spool_dedupe_cursor;
int spool_dedupe_get(struct spool_txn *, const char *login, const char *letter,
    int64_t *filed_r, char qid_r[QID_SIZE]);
int spool_dedupe_put(struct spool_txn *, const char *login, const char *letter,
    const char *qid, int64_t filed);
int spool_dedupe_dec(const void *, size_t, int64_t *filed_r,
    char qid_r[QID_SIZE]);
int spool_dedupe_prune(struct spool_txn *, int64_t before,
    struct spool_dedupe_cursor *, size_t max, size_t *n_r, bool *done_r);

/* ---- NXDOMAIN confirmation (spool_nxdom.c): the recipient domains that
 * deliverd saw NXDOMAIN (or without MX and address records), each with
 * when the current run of such answers began and when it was last seen.
 * deliverd suppresses an address for such a domain only once the run is
 * nxdomain_confirm old. spool_nxdom_seen records a sighting at now and
 * gives the run's start (now for a new domain, or for one not seen for
 * SPOOL_NXDOM_KEEP); ENOSPC, nothing recorded, when SPOOL_NXDOM_MAX
 * domains are kept. spool_nxdom_forget ends the run (the domain resolves
 * again): SPOOL_ENOTFOUND when there was none. spool_nxdom_prune deletes
 * the entries last seen before `before`, as spool_dedupe_prune does
 * (spool_prune: before = now - SPOOL_NXDOM_KEEP). Keys are the
 * lower-cased domain. */
#define SPOOL_NXDOM_MAX	 100000
#define SPOOL_NXDOM_KEEP (30 * 86400)
int spool_nxdom_seen(struct spool_txn *, const char *domain, int64_t now,
    int64_t *first_r);
int spool_nxdom_forget(struct spool_txn *, const char *domain);
int spool_nxdom_prune(struct spool_txn *, int64_t before,
    struct spool_dedupe_cursor *, size_t max, size_t *n_r, bool *done_r);

/* ---- pauses (issue 15 item 7; spool_pause.c): deliveries to a recipient
 * domain, of one account or of all, wait without attempts. spoolctl writes
 * them, deliverd reads them where it claims recipients. Domains are
 * lower-cased by the library. */
#define SPOOL_PAUSE_MAX 10000
struct spool_pause {
	char	pz_domain[SPOOL_DOMAIN_MAX];
	char	pz_login[SPOOL_LOGIN_MAX]; /* "" = every account */
	int64_t pz_since;
};
/* SPOOL_EEXIST if that pause exists (it keeps its time); EDQUOT when
 * SPOOL_PAUSE_MAX pauses exist already. */
int spool_pause_put(struct spool_txn *, const struct spool_pause *);
/* SPOOL_ENOTFOUND if there is no such pause. */
int spool_pause_del(struct spool_txn *, const char *domain, const char *login);
/* That very pause (login "": the domain-wide one); SPOOL_ENOTFOUND. */
int spool_pause_get(struct spool_txn *, const char *domain, const char *login,
    struct spool_pause *pz_r);
/* The pause that holds mail of login to domain: the account's own, else
 * the domain's; SPOOL_ENOTFOUND if none. */
int spool_pause_find(struct spool_txn *, const char *domain, const char *login,
    struct spool_pause *pz_r);
int spool_pause_count(struct spool_txn *, size_t *n_r);
/* By domain, the domain-wide pause before the accounts' ones. */
int spool_pause_iter(struct spool_txn *,
    int (*cb)(const struct spool_pause *, void *), void *);
/* After a pause of domain (and login; "" or NULL: the domain-wide one) is
 * gone: its pending recipients become due at now (spool_resume.c; its own
 * transactions, 1,000 messages each). *nrcpt_r: how many. */
int spool_pause_release(struct spool *, const char *domain, const char *login,
    int64_t now, size_t *nrcpt_r);
/* The domain and login of a pauses key: 0 or SPOOL_ECORRUPT. */
int spool_pause_key_parse(const void *key, size_t klen, char *domain,
    size_t dsz, char *login, size_t lsz);

/* ---- engagement events (issue 16; spool_engage.c) */
/* An event name ("delivered" ... "complained") to its type; -1 if unknown. */
int spool_ev_type_parse(const char *, enum spool_ev_type *);
struct spool_track_msg; /* spool_track.h */
/*
 * Zeroes ev and fills it for recipient idx of a tracked message from its
 * tracking record alone (the message itself may be finished and gone):
 * login, qid, issue, X-Letter-Id, from, Message-Id, the recipient. The
 * strings point into km and qid. ev_to is "" if idx is out of range.
 */
void spool_event_init_track(struct spool_event *,
    const struct spool_track_msg *km, const char *qid, uint32_t idx,
    enum spool_ev_type, int64_t dt);
/*
 * A client address cut for privacy: IPv4 to its /24 ("192.0.2.0/24"),
 * IPv6 to its /48 ("2001:db8:1::/48"). -1 (and dst "") if addr is not an
 * address or dst too small; SPOOL_CLIENT_MAX is always enough.
 */
#define SPOOL_CLIENT_MAX 64
int spool_client_truncate(const char *addr, char *dst, size_t dstlen);
/*
 * The first-open / first-click set: spool_event_add consults it (in the
 * caller's transaction) to count unique opens and clicks. Key: QID,
 * recipient index, kind; pruned with the delivery log. *first_r: true if
 * this recipient had no such event before (it is recorded now).
 */
int spool_engage_first(struct spool_txn *, const char *qid, uint32_t idx,
    enum spool_ev_type, bool *first_r);
/*
 * The bound on one recipient's copy (h-astate): at most
 * SPOOL_ENGAGE_HITS_MAX opened and as many clicked events are recorded
 * for it, so a tracking URL fetched in a loop cannot grow the delivery
 * log, event_log and the callbacks without end. *ok_r: this one may be
 * recorded (spool_event_add then counts it); else *full_now_r is true
 * the first time only (a marker is written: the caller logs once).
 */
#define SPOOL_ENGAGE_HITS_MAX 100
int spool_engage_admit(struct spool_txn *, const char *qid, uint32_t idx,
    enum spool_ev_type, bool *ok_r, bool *full_now_r);
/*
 * Complaint matching: the delivered event of (Message-Id, recipient),
 * indexed when it is logged and pruned with it. 0 and cb called with the
 * newest such event still in the log, SPOOL_ENOTFOUND if none. The
 * recipient compares without case.
 */
int spool_engage_find_delivered(struct spool_txn *, const char *message_id,
    const char *rcpt,
    int (*cb)(uint64_t seq, const char *json, size_t len, void *), void *);
/* The same, and the event's queue_id must be qid (h-asupp: a complaint
 * names the queue id of the copy we delivered). */
int spool_engage_find_delivered_qid(struct spool_txn *, const char *message_id,
    const char *rcpt, const char *qid,
    int (*cb)(uint64_t seq, const char *json, size_t len, void *), void *);

/* ---- small helpers shared by the daemons */
/* "YYYY-MM-DD" of a unix time, UTC. */
void spool_date(int64_t t, char dst[11]);
/* "2026-11-29T16:04:05Z" */
void spool_dt(int64_t t, char dst[21]);

/* ---- TLS reporting (issue 17 item 4, RFC 8460; spool_tlsrpt.c): per UTC
 * day, recipient domain, policy type, result type and MX host, the number
 * of sessions, with the policy's strings ('\n' between them) and MX
 * patterns. add counts one session of time now (deliverd's commit); a day
 * keeps at most SPOOL_TLSRPT_DAY_MAX rows (more are not counted); a new
 * day deletes the days before the last SPOOL_TLSRPT_DAYS (today counts).
 * iter calls cb for the rows of the day containing day_start (of domain,
 * unless NULL), in key order; non-zero from cb stops and is returned.
 * A failure row is also per sending and receiving IP and the MX's EHLO
 * name (RFC 8460 4.4; "" when unknown, always "" in "success" rows: those
 * are counted per MX host only). A domain keeps at most
 * SPOOL_TLSRPT_DETAIL_MAX failure rows a day; the failures that would
 * make more are counted in the domain's overflow row of their policy and
 * result types (tr_overflow; no MX host, no IPs), and add sets
 * *overflow_r (may be NULL) when it creates that row. A row stored
 * before these fields decodes with them "". */
#define SPOOL_TLSRPT_DAY_MAX	10000
#define SPOOL_TLSRPT_DAYS	31
#define SPOOL_TLSRPT_DETAIL_MAX 100
struct spool_tlsrpt_row {
	char	 tr_domain[256];
	char	 tr_policy[24]; /* tlsres_policy_name() */
	char	 tr_result[40]; /* tlsres_result_name(): "success" counts OK */
	char	 tr_mx[256];
	char	 tr_pstr[1024];
	char	 tr_mxpat[512];
	uint64_t tr_count;     /* iter: the sessions; add: ignored */
	char	 tr_sip[48];   /* sending-mta-ip */
	char	 tr_rip[48];   /* receiving-ip */
	char	 tr_helo[256]; /* receiving-mx-helo */
	bool	 tr_overflow;  /* iter: past SPOOL_TLSRPT_DETAIL_MAX */
};
int spool_tlsrpt_add(struct spool_txn *, int64_t now,
    const struct spool_tlsrpt_row *, bool	*overflow_r);
int spool_tlsrpt_iter(struct spool_txn *, int64_t day_start, const char *domain,
    int (*cb)(const struct spool_tlsrpt_row *, void *), void *arg);
/*
 * spool_mtasts.c (issue 17 item 2): the MTA-STS policy cache, one record
 * per lower-cased domain: when it expires and was fetched (unix seconds),
 * the TXT id and the policy text (common/mtasts parses it). Written by
 * deliverd's scheduler, read by its workers. At most SPOOL_MTASTS_MAX
 * records: a put of a new domain into a full cache first drops the
 * expired ones, then fails with ENOSPC (deliverd then evicts the record
 * that expires first, spool_mtasts_evict, and puts again).
 */
#define SPOOL_MTASTS_MAX 4096
struct spool_mtasts_rec {
	int64_t mr_expires, mr_fetched;
	char	mr_id[40];
	char	mr_policy[2048];
};
int spool_mtasts_put(struct spool_txn *, const char *domain,
    const struct spool_mtasts_rec *, int64_t	     now);
/* SPOOL_ENOTFOUND if absent (expired records are returned as they are). */
int spool_mtasts_get(struct spool_txn *, const char *domain,
    struct spool_mtasts_rec *);
/* Drops the records expired at now; their number in *n_r. */
int spool_mtasts_prune(struct spool_txn *, int64_t now, size_t *n_r);
/* h-astate: drops the record that expires first (its domain, cut to dsz,
 * in domain_r unless NULL), for a full cache's ENOSPC: deliverd then
 * stores the new policy. SPOOL_ENOTFOUND if the cache is empty. */
int spool_mtasts_evict(struct spool_txn *, char *domain_r, size_t dsz);

/* ---- cluster mode (issue 19): clusterd's event shipping cursor, LMDB
 * meta cluster_event_shipped (0: nothing shipped yet), and the last event
 * logged (meta event_seq, 0: none); spoolctl status shows the lag. */
int spool_log_shipped_get(struct spool_txn *, uint64_t *seq_r);
int spool_log_shipped_put(struct spool_txn *, uint64_t seq);
int spool_log_last(struct spool_txn *, uint64_t *seq_r);

/* ---- TLS reports sent (spoolctl tls-report --send; spool_tlsrpt_sent.c):
 * per UTC day (the day containing day_start), recipient domain and report
 * URI, when the report went there. get: 0 (and *when_r, may be NULL) or
 * SPOOL_ENOTFOUND. put records now; it and prune delete the records of the
 * days before the last SPOOL_TLSRPT_DAYS (a bounded number per call).
 * EINVAL for an empty domain or uri, SPOOL_ETOOBIG past the key size. */
int spool_tlsrpt_sent_get(struct spool_txn *, int64_t day_start,
    const char *domain, const char *uri, int64_t *when_r);
int spool_tlsrpt_sent_put(struct spool_txn *, int64_t now, int64_t day_start,
    const char *domain, const char *uri);
int spool_tlsrpt_sent_prune(struct spool_txn *, int64_t now);

#endif
