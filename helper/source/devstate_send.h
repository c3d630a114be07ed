/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Device state on the source: the VMM's device list (announced to the
 * destination in DEVICES), and at switchover a bounded pool of saving
 * threads, one device at a time each, reading the device's state from the
 * VMM chunk by chunk and writing each chunk as a DEVSTATE packet on the
 * device's own multifd channel, or the next free one while that one is
 * busy (or all on the main channel).  Devices with state to send before
 * switchover get their precopy part saved the same way while the guest
 * runs; their chunk numbers go on at switchover.
 */
#ifndef VMIG_DEVSTATE_SEND_H
#define VMIG_DEVSTATE_SEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"
#include "multifd_send.h"
#include "stream.h"

struct ds_run;

struct devstate_send {
	struct vmig_ctl *ctl;
	unsigned int nr_devices, nr_precopy;	/* nr_precopy: VMIG_DEV_PRECOPY devices */
	unsigned int threads;		/* saving pool */
	bool on_main;
	int timeout_ms;
	uint32_t seq[WIRE_MAX_DEVICES];	/* each device's next chunk number */
	/* where chunks go */
	struct send_chan *chans;
	unsigned int nr_chans;
	struct stream *main;
	struct ds_run *run;		/* the pool at work, if any */
	/* results */
	uint64_t bytes, chunks;		/* all parts */
	uint64_t precopy_bytes;		/* of which before switchover */
	uint64_t save_ns;		/* switchover: first request to the last device read */
	uint64_t precopy_ns;		/* the precopy parts, the same */
	/* each device's precopy part so far: bytes sent, started, took (0: running) */
	_Atomic uint64_t pre_sent[WIRE_MAX_DEVICES];
	_Atomic uint64_t pre_t0[WIRE_MAX_DEVICES];
	_Atomic uint64_t pre_ns[WIRE_MAX_DEVICES];
	char error[200];
};

/* Ask the VMM for its devices; 0 or -errno (msg in ds->error). */
int devstate_send_setup(struct devstate_send *ds, struct vmig_ctl *ctl, unsigned int threads,
			bool on_main, int timeout_ms);
/* Send DEVICES on the main channel. */
int devstate_send_announce(struct devstate_send *ds, struct stream *main);
/*
 * Precopy: start saving the precopy part of every VMIG_DEV_PRECOPY device
 * in the background (the guest runs); its chunks go like the rest.  On the
 * main channel (on_main) nothing else may write there until _wait returns.
 */
int devstate_send_precopy_start(struct devstate_send *ds, struct send_chan *chans,
				unsigned int nr_chans, struct stream *main);
/* Wait for the precopy parts (or, with cancel, stop them); 0 or -errno. */
int devstate_send_precopy_wait(struct devstate_send *ds, bool cancel);
/*
 * Device i's precopy part so far: bytes sent, and the rate its save ran
 * at (bytes/s; 0 until at least 1 MiB went).  Any thread, any time.
 */
void devstate_send_precopy_progress(struct devstate_send *ds, unsigned int i, uint64_t *sent,
				    double *save_rate);
/* Switchover: save and send every device's state (the rest); 0 or -errno. */
int devstate_send_all(struct devstate_send *ds, struct send_chan *chans, unsigned int nr_chans,
		      struct stream *main);

#endif
