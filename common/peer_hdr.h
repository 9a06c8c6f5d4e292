/*
 * peer_hdr: the header that both worker protocols, lka_proto.h (the
 * lookup process) and key_proto.h (the key process), put before each
 * message, one message per SOCK_SEQPACKET datagram:
 *
 *   version u8 | type u8 | length u16 BE | id u32 BE | payload[length]
 *
 * Pure and bounded (STYLE R1): no I/O, no allocation, no logging.
 */
#ifndef SG_PEER_HDR_H
#define SG_PEER_HDR_H

#include <stddef.h>
#include <stdint.h>

#define PEER_HDR_LEN 8

struct peer_hdr {
	uint8_t	 ph_type;
	uint32_t ph_id;
	size_t	 ph_len; /* the payload's, after PEER_HDR_LEN */
};

/* Writes the header into p (PEER_HDR_LEN bytes); len fits in a u16. */
void peer_hdr_put(uint8_t *p, uint8_t version, uint8_t type, size_t len,
    uint32_t id);
/*
 * The header of a datagram of exactly len bytes: 0, or -1 if it is
 * shorter than a header, longer than max, of another version or its
 * length differs from the datagram's (h_r is then unspecified).
 */
int peer_hdr_get(const void *buf, size_t len, size_t max, uint8_t version,
    struct peer_hdr *h_r);

#endif
