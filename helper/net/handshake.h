/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The versioned handshake on the main channel: the source offers a version
 * range, capabilities and the shape of guest RAM; the destination picks the
 * highest common version, accepts a subset of the capabilities, checks the
 * regions against its own VMM's, and answers (with a message on refusal).
 */
#ifndef VMIG_HANDSHAKE_H
#define VMIG_HANDSHAKE_H

#include <stdint.h>

#include "stream.h"

struct hs_offer {
	uint32_t version_min, version_max;
	uint64_t caps;
	uint32_t nr_multifd;
	uint32_t nr_regions;
	uint64_t region_pages[WIRE_MAX_REGIONS];
};

struct hs_result {
	uint32_t version;
	uint64_t caps;
};

int hs_send_offer(struct stream *s, const struct hs_offer *o);
/* Destination: read the offer (bounds-checked). */
int hs_recv_offer(struct stream *s, struct hs_offer *o);
/* ... the same, its packet header ph already read. */
int hs_parse_offer(struct stream *s, const struct wire_pkt_hdr *ph, struct hs_offer *o);
/*
 * Destination: decide.  local describes what this side speaks and holds
 * (version range, caps, regions).  0 and *res filled, or -errno with
 * msg explaining the mismatch.
 */
int hs_decide(const struct hs_offer *offer, const struct hs_offer *local,
	      struct hs_result *res, char *msg, size_t msglen);
int hs_send_reply(struct stream *s, int status, const struct hs_result *res, const char *msg);
/* Source: read the answer; a refusal becomes s->err with the peer's message. */
int hs_recv_reply(struct stream *s, const struct hs_offer *offer, struct hs_result *res);

#endif
