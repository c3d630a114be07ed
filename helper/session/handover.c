// SPDX-License-Identifier: GPL-2.0
/* The handover record (handover.h): its checks. */
#include <string.h>

#include "handover.h"
#include "wire.h"

bool handover_valid(const struct handover *h, size_t len)
{
	return len == sizeof(*h) && h->magic == HANDOVER_MAGIC &&
	       h->wire_version >= WIRE_VERSION_MIN && h->wire_version <= WIRE_VERSION_MAX &&
	       (h->session & 1) && h->nr_chans && h->nr_chans <= WIRE_MAX_CHANNELS &&
	       !(h->flags & ~(HANDOVER_PREEMPT | HANDOVER_DEST)) && h->secret_len <= HANDOVER_SECRET_MAX &&
	       !h->reserved && memchr(h->to, 0, sizeof(h->to)) && h->to[0];
}
