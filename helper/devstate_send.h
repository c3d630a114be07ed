/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Device state on the source: the VMM's device list (announced to the
 * destination in DEVICES), and at switchover a bounded pool of saving
 * threads, one device at a time each, reading the device's state from the
 * VMM chunk by chunk and writing each chunk as a DEVSTATE packet on the
 * first free multifd channel (or all on the main channel).
 */
#ifndef VMIG_DEVSTATE_SEND_H
#define VMIG_DEVSTATE_SEND_H

#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"
#include "multifd_send.h"
#include "stream.h"

struct devstate_send {
	struct vmig_ctl *ctl;
	unsigned int nr_devices;
	unsigned int threads;		/* saving pool */
	bool on_main;
	int timeout_ms;
	/* where chunks go */
	struct send_chan *chans;
	unsigned int nr_chans;
	struct stream *main;
	/* results */
	uint64_t bytes, chunks;
	uint64_t save_ns;		/* first request to the last device read */
	char error[200];
};

/* Ask the VMM for its devices; 0 or -errno (msg in ds->error). */
int devstate_send_setup(struct devstate_send *ds, struct vmig_ctl *ctl, unsigned int threads,
			bool on_main, int timeout_ms);
/* Send DEVICES on the main channel. */
int devstate_send_announce(struct devstate_send *ds, struct stream *main);
/* Save and send every device's state; 0 or -errno (ds->error says why). */
int devstate_send_all(struct devstate_send *ds, struct send_chan *chans, unsigned int nr_chans,
		      struct stream *main);

#endif
