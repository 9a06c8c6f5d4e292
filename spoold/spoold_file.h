/*
 * spoold_file: filing messages from incoming/new into LMDB and queue/
 * (DESIGN step 2). One batch = one LMDB write transaction (group commit);
 * only after it commits are the events exported and the files moved
 * (queue/), deleted (every recipient already final) or set aside
 * (quarantine/). Filing a file whose message record exists (a crash
 * between commit and move) only moves it; one whose message is finished
 * (a finished marker: refused whole, or delivered and then brought back
 * by a power loss that undid its rename) is removed, not filed again.
 *
 * spoold never files the writer's file itself: it accepts only a regular
 * file with one link, owned by smtpd_user (or by itself: a maildrop copy),
 * copies it into queue/.QID.in (its own; one syncfs per batch), and parses, files and
 * delivers that copy; a writer that kept a link or a descriptor changes
 * nothing. The envelope's account must carry the lookup process's tag
 * (spool_tag_ok), so a worker can file mail only under an account that
 * authenticated through it. Log lines are written after
 * the commit, so the log never shows a message that was not filed.
 */
#ifndef SG_SPOOLD_FILE_H
#define SG_SPOOLD_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/stat.h>

#include "spool.h"

struct conf;
struct spool;
struct spoold_poison;

#define SPOOLD_NAME_MAX 256

struct spoold {
	struct conf  *sd_cf; /* current configuration (SIGHUP swaps it) */
	struct spool *sd_sp; /* LMDB, opened read-write */
	char	      sd_trigger[4096];
	/* counters since start (for the pass log line and tests) */
	size_t sd_filed, sd_quarantined, sd_moved_again;
	bool   sd_export_pending; /* the last events export failed */
	bool   sd_dirty_queue, sd_dirty_quar, sd_dirty_new; /* dirs to fsync */
	bool   sd_pass_done;   /* incoming/new was filed through once */
	bool   sd_sync_failed; /* the last directory fsync failed */
	/* who may have written incoming/new (issue 14): smtpd_user's workers
	 * and spoold itself (maildrop copies); one uid when not root */
	uid_t	      sd_smtpd_uid, sd_self_uid;
	unsigned char sd_key[SPOOL_TAG_KEYLEN]; /* envelope tags */
	time_t	      sd_key_made; /* older files came from an untagged smtpd */
	struct spoold_poison *sd_poison; /* files being filed (spoold_poison.h) */
};

/*
 * Files names[0..n) (QIDs in incoming/new) in one transaction. Returns 0,
 * or a spool error: then nothing was committed, no file was touched, and
 * *bad_r is the index of the file it happened on (n: at commit).
 */
int spoold_file_batch(struct spoold *, char (*names)[SPOOLD_NAME_MAX], size_t n,
    size_t *bad_r);
/* Errors worth retrying later (map full, disk full, I/O, memory, LMDB). */
bool spoold_error_transient(int rc);
#define SPOOLD_ENV_SLACK 65536 /* envelope and Received: beyond the limits */

/* spoold_copy.c: why the writer's file may not be copied, or NULL. */
const char *spoold_file_refused(const struct spoold *, const struct stat *);
/* Copies n bytes from in's offset to out (then fsyncs out if sync); -1
 * with errno (EAGAIN: in had fewer bytes). */
int spoold_copy_fd(int in, int out, off_t n, bool sync);
/* Copies size bytes of fd into queue/.NAME.in and returns it open for
 * reading at offset 0 (not fsynced: spoold_sync_copies); -1 with errno. */
int spoold_copy(const struct spoold *, const char *name, int fd, off_t size);
/* Renames queue/.NAME.in to its queue name (keep) or removes it; 0 or errno. */
int spoold_copy_done(const struct spoold *, const char *name, bool keep);
/* One syncfs(2) for a batch's copies; -1 logged. */
int spoold_sync_copies(const struct spoold *);
/* maildrop/ (spoold_maildrop.c): copies each injected file into
 * incoming/new under sendmail_account, with spoold's tag; refuses links,
 * symlinks and oversized files. 0, or a transient error. */
int spoold_maildrop_pass(struct spoold *);
/* Removes queue/.QID.in copies older than stale_tmp_age (a crash between
 * copy and rename; the next pass copies again); their count. */
size_t spoold_clean_copies(const struct spoold *);
/* Last resort for a file that makes its transaction fail: set it aside. */
void spoold_quarantine(struct spoold *, const char *name, const char *why);
/* The same with the deaths that made it a poison file: the note beside it
 * (spool_qnote.h) keeps why, count and when for spoolctl quarantine list. */
void spoold_quarantine_n(struct spoold *, const char *name, const char *why,
    unsigned count);
/*
 * Prunes the finished markers (spool_done_*) of messages that arrived
 * more than SPOOLD_DONE_KEEP ago, in short transactions. A marker matters
 * only until the rename that filed its message is durable, i.e. until the
 * directory fsync after that batch: so only once incoming/new was filed
 * through since start (sd_pass_done) and while no fsync failed.
 */
void spoold_prune_done(struct spoold *);
/*
 * Engagement tracking (issue 16; spoold_track.c): records, in the filing
 * transaction, what m's tracked copies link to (spool_track_put): the
 * account's settings, the http/https links of the message read from fd
 * (the queue copy: envelope, then the message at m->sm_body_off), in
 * track_html's numbering, and the recipients by index. 0 or a spool error.
 */
/* At start: GMime, db/track.key made if missing (a failure is logged:
 * filing goes on), and node (cluster_node) for "{node}" in tracking hosts. */
void spoold_track_init(const char *spool_dir, const char *node);
int  spoold_track_record(struct spool_txn *, const struct spool_account *,
     const struct spool_msg *m, int fd, char **rcpts, uint32_t nrcpt);

#endif
