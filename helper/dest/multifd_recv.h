/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Destination side of one multifd channel: PAGES packets placed straight
 * into guest RAM (payload read into the pages themselves), until END.
 * That is right for precopy only, while the destination VMM is stopped.
 * Postcopy's receiver reads into a buffer and places with vmig_ram_place()
 * (UFFDIO_COPY on the uffd backend), so a faulting vCPU never sees a page
 * half written; the wire format stays the same.
 */
#ifndef VMIG_MULTIFD_RECV_H
#define VMIG_MULTIFD_RECV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "stream.h"

/* Where pages go: one writable view per region. */
struct dest_mem {
	unsigned int nr_regions;
	uint8_t *base[WIRE_MAX_REGIONS];
	uint64_t pages[WIRE_MAX_REGIONS];
	bool populate;			/* not prefaulted: allocate each batch before reading */
};

struct pc_dst;

struct recv_chan {
	unsigned int index;
	struct pc_dst *pc;		/* postcopy negotiated: POSTCOPY switches placement */
	uint8_t *bounce;		/* after the switch: pages land here, then UFFDIO_COPY */
	struct stream s;
	const struct dest_mem *mem;
	bool zero_pages;		/* ZERO entries allowed (negotiated) */
	uint64_t pages, normal_pages, zero_pages_rcvd;
	bool ended;
	/* DEVSTATE packets go here (devstate_recv.c); NULL: refused */
	int (*devstate)(void *arg, struct stream *s, uint32_t len);
	void *devstate_arg;
	uint64_t entries[WIRE_MAX_BATCH];
	struct iovec iov[WIRE_MAX_BATCH];
};

/* A receiver on s's connection (now c->s's). */
void recv_chan_init(struct recv_chan *c, unsigned int index, struct stream *s, int timeout_ms,
		    const struct dest_mem *mem, bool zero_pages);
/* Receive until END: 0, or -errno with c->s.err saying why. */
int recv_chan_run(struct recv_chan *c);

#endif
