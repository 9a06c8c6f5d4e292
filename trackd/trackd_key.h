/*
 * trackd_key: the key process for tls=implicit (smtpd's smtpd-key for
 * trackd) and the HTTP process's side of it. trackd_key_start() forks it
 * as root before anything else: it reads tls_key (checked against
 * tls_cert), says so, and drops to trackd_user in an empty directory that
 * no longer exists, not dumpable; then it answers key_proto.h requests
 * (one digest or PSS block per request, tls_key_sign's checks: never a
 * raw RSA decryption) on one socket per HTTP thread. The HTTP process
 * never reads the key: its TLS context has the certificate chain and an
 * external private key (trackd_tls.h) whose signatures trackd_key_sign()
 * asks for.
 *
 * trackd_key_sign waits TRACKD_KEY_TIMEOUT_MS at most: no answer (hung,
 * gone, refused) fails that handshake and calls the lost callback, which
 * stops trackd as a lost backend does (systemd restarts it, and with it
 * the key process). Errors: the start exits 2 with the reason (a bad
 * key); the others return -1.
 */
#ifndef SG_TRACKD_KEY_H
#define SG_TRACKD_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"
#include "tls_key.h"

#define TRACKD_KEY_TIMEOUT_MS 5000 /* a signature, then the handshake fails */

struct trackd_key;

/* As root, first: the key process, nsock sockets to it. close_fd (-1:
 * none) is closed in the child. Exits 2 when the key does not load. */
struct trackd_key *trackd_key_start(struct conf *, unsigned nsock,
    int close_fd);
pid_t		   trackd_key_pid(const struct trackd_key *);
/* Its exit was collected (SIGCHLD): not to be waited for again. */
void trackd_key_forget(struct trackd_key *);
/* In another child (the backend): its copies of the sockets. */
void trackd_key_close_fds(const struct trackd_key *);
/* Called (from a TLS thread) when the key process does not answer. */
void trackd_key_on_lost(struct trackd_key *, void (*)(void *), void *);
/* The signer (from any thread): 0 and the signature, or -1. */
int trackd_key_sign(void *key, const struct tls_sign *, uint8_t *sig,
    size_t sigsz, size_t *siglen_r);
/* Closes the sockets (the key process exits at EOF) and waits for it a
 * little; it runs as another user: not ours to kill. */
void trackd_key_stop(struct trackd_key **);
/* Into an empty directory under spool_dir made, entered and removed
 * (nothing can be created in it): the jail of the HTTP and key processes. */
void trackd_key_void(const struct conf *);

#endif
