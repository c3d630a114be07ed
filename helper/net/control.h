/* SPDX-License-Identifier: GPL-2.0 */
/* Main-channel messages after the handshake: ROUND, COMPLETE, RESUMED, DEV_LOAD, ERROR, NOP. */
#ifndef VMIG_CONTROL_H
#define VMIG_CONTROL_H

#include <stdbool.h>

#include "stream.h"

struct ctl_event {
	unsigned int type;		/* WIRE_PKT_ROUND, _COMPLETE, _RESUMED, _NOP, _DEVSTATE, ... */
	uint32_t len;			/* DEVSTATE: its payload is still to be read */
	struct wire_round round;
	struct wire_resumed resumed;	/* zero if the destination sent none */
	struct wire_complete complete;
	struct wire_postcopy postcopy;
	struct wire_discard discard;	/* + ranges: first, n pairs */
	uint64_t ranges[2 * WIRE_MAX_DISCARD];
	struct wire_dev_load dev_load;	/* source: + loaded[nr_devices]; dest: the question */
	struct wire_dev_loaded loaded[WIRE_MAX_DEVICES];
};

/*
 * Read the next control packet.  expect_resumed selects the direction:
 * the source waits for RESUMED (DONE after postcopy), the destination for
 * ROUND/COMPLETE (DISCARD/POSTCOPY to switch to postcopy).
 * ERROR and anything out of order become -errno with s->err set.
 */
int control_recv(struct stream *s, bool expect_resumed, struct ctl_event *ev);
/* Source: ask the destination how far its device loads got; ev holds the answer. */
int control_dev_load(struct stream *s, struct ctl_event *ev);

#endif
