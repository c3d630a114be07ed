// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the destination's stream parser: whatever bytes
 * arrive, the parser must return an error or succeed, never crash, read out
 * of bounds, or write outside guest RAM.  The first byte picks the entry:
 * a channel header followed by a main channel (handshake + control) or a
 * multifd page stream into a small guest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "control.h"
#include "handshake.h"
#include "multifd_recv.h"

#define GUEST_PAGES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[2][GUEST_PAGES * WIRE_PAGE_SIZE];
	struct dest_mem mem = { .nr_regions = 2, .base = { ram[0], ram[1] },
				.pages = { GUEST_PAGES, GUEST_PAGES / 2 } };
	struct hs_offer local = { .version_min = 1, .version_max = 1, .caps = WIRE_CAPS_V1,
				  .nr_regions = 2, .region_pages = { GUEST_PAGES, GUEST_PAGES / 2 } };
	struct wire_chan_hdr h;
	struct stream s;
	uint8_t mode;

	if (!size)
		return 0;
	mode = data[0];
	stream_init_mem(&s, data + 1, size - 1);
	if (mode & 1) {
		if (chan_recv_hdr(&s, &h))
			return 0;
	}
	if (mode & 2) {
		struct recv_chan *c = malloc(sizeof(*c));

		recv_chan_init(c, 0, &s, 0, &mem, mode & 4);
		c->s = s;
		recv_chan_run(c);
		free(c);
	} else {
		struct hs_offer offer;
		struct hs_result res;
		struct ctl_event ev;
		char msg[WIRE_MAX_MSG];

		if (hs_recv_offer(&s, &offer))
			return 0;
		if (hs_decide(&offer, &local, &res, msg, sizeof(msg)))
			return 0;
		while (!control_recv(&s, mode & 8, &ev) && ev.type != WIRE_PKT_COMPLETE)
			;
	}
	return 0;
}
