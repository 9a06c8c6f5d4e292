/*
 * trigger: the FIFO that wakes deliverd (STYLE M5, qmail's trigger).
 * trigger_pull() writes one byte without blocking and ignores failure on
 * purpose: the reader also rescans on a timer, so a lost wake-up only
 * delays. trigger_open() is the reader side: it creates the FIFO if needed
 * and opens it O_RDWR|O_NONBLOCK (so it never sees EOF); trigger_drain()
 * empties it after poll() says readable. Both refuse a symbolic link and
 * anything but a FIFO with one name (the spool is the daemon user's: root
 * must not write through what it planted).
 */
#ifndef SG_TRIGGER_H
#define SG_TRIGGER_H

void trigger_pull(const char *path);
int  trigger_open(const char *path); /* fd or -1 */
void trigger_drain(int fd);

#endif
