/*
 * peer_hdr: the worker protocols' common header (peer_hdr.h).
 */
#include "config.h"

#include "peer_hdr.h"

void
peer_hdr_put(uint8_t *p, uint8_t version, uint8_t type, size_t len, uint32_t id)
{
	p[0] = version;
	p[1] = type;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[4] = (uint8_t)(id >> 24);
	p[5] = (uint8_t)(id >> 16);
	p[6] = (uint8_t)(id >> 8);
	p[7] = (uint8_t)id;
}

int
peer_hdr_get(const void *buf, size_t len, size_t max, uint8_t version,
    struct peer_hdr *h_r)
{
	const uint8_t *p = buf;

	if (len < PEER_HDR_LEN || len > max || p[0] != version)
		return -1;
	h_r->ph_len = (size_t)p[2] << 8 | p[3];
	if (h_r->ph_len != len - PEER_HDR_LEN)
		return -1;
	h_r->ph_type = p[1];
	h_r->ph_id = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
	    (uint32_t)p[6] << 8 | p[7];
	return 0;
}
