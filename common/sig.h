/*
 * sig: signals done the same way in every daemon (STYLE M2). Handlers only
 * record the signal and write a byte to a self-pipe; the loop polls
 * sig_fd() and calls sig_take() to learn which signals arrived.
 */
#ifndef SG_SIG_H
#define SG_SIG_H

#include <stdbool.h>

#define SIG_TERM 0x01 /* SIGTERM or SIGINT: stop gracefully */
#define SIG_HUP	 0x02 /* reload configuration */
#define SIG_CHLD 0x04 /* reap children */
#define SIG_USR1 0x08
#define SIG_ALRM 0x10

/* Installs handlers for SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGALRM; ignores SIGPIPE. */
void sig_init(void);
/* In a child after fork that keeps the handlers: a self-pipe of its own
 * (the inherited one is the parent's: draining it would steal the
 * parent's wake-ups). Flags that arrived meanwhile stay pending and the
 * new pipe is made readable for them. */
void sig_child(void);
/* Restores default dispositions (in a child after fork, before exec). */
void sig_reset(void);
int  sig_fd(void); /* read end of the self-pipe */
/* Returns and clears the set of SIG_* flags that arrived; drains the pipe. */
unsigned sig_take(void);
/* True once SIGTERM/SIGINT has arrived (not cleared by sig_take). */
bool sig_stopping(void);

#endif
