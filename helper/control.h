/* SPDX-License-Identifier: GPL-2.0 */
/* Main-channel messages after the handshake: ROUND, COMPLETE, RESUMED, ERROR, NOP. */
#ifndef VMIG_CONTROL_H
#define VMIG_CONTROL_H

#include <stdbool.h>

#include "stream.h"

struct ctl_event {
	unsigned int type;		/* WIRE_PKT_ROUND, _COMPLETE, _RESUMED, _NOP or _DEVSTATE */
	uint32_t len;			/* DEVSTATE: its payload is still to be read */
	struct wire_round round;
	struct wire_resumed resumed;	/* zero if the destination sent none */
	struct wire_complete complete;
};

/*
 * Read the next control packet.  expect_resumed selects the direction:
 * the source waits for RESUMED, the destination for ROUND/COMPLETE.
 * ERROR and anything out of order become -errno with s->err set.
 */
int control_recv(struct stream *s, bool expect_resumed, struct ctl_event *ev);

#endif
