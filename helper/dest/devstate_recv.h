/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Device state on the destination.  DEVSTATE chunks arrive on any channel;
 * each is buffered until it is its device's next one, then a loading
 * thread (bounded pool, serving whichever device has its next chunk ready,
 * one thread per device at a time) hands it to the VMM's load.  The bytes
 * buffered are capped: a receive thread waits for room before it reads a
 * chunk (back-pressure through TCP).  Room for one more chunk is kept for
 * any device's next chunk, so a full buffer of out-of-order chunks can
 * never block the chunk everyone waits for.  The end of each device's
 * stream is held back until devstate_recv_finish(), i.e. until guest RAM
 * can be read: every page placed (precopy) or the regions in postcopy mode
 * with requests served.  A VMM whose load reads guest RAM (QEMU's does)
 * waits for the end before it loads.
 *
 * What a hostile source can cost: each chunk is charged its payload plus
 * DS_CHUNK_OVERHEAD against the cap; an empty chunk that is not the last,
 * a duplicate, one already loaded, one past the last, or one DS_WINDOW or
 * more ahead of the next to load is refused (wire.h).  Chunks wait in a
 * per-device ring indexed by sequence number: O(1) per chunk.
 */
#ifndef VMIG_DEVSTATE_RECV_H
#define VMIG_DEVSTATE_RECV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"
#include "stream.h"

struct ds_chunk;

#define DS_WINDOW		WIRE_DEVSTATE_WINDOW
#define DS_CHUNK_OVERHEAD	128u	/* charged per chunk: its header, the allocator's */

struct ds_dev {
	struct wire_device w;
	unsigned int local;		/* the destination VMM's index */
	struct ds_chunk **ring;		/* DS_WINDOW slots, by seq (allocated on first use) */
	uint32_t next_seq;		/* next to load */
	uint32_t last_seq;		/* UINT32_MAX: not seen yet */
	bool busy, done;
	int fd;
	uint64_t bytes;			/* loaded */
	uint64_t received;		/* arrived (loaded or waiting) */
	uint64_t load_t0, load_ns;	/* its load began; took (0: running) */
};

struct devstate_recv {
	struct vmig_ctl *ctl;
	int timeout_ms;
	uint64_t cap;			/* --max-device-buffer */
	unsigned int threads;		/* loading pool */
	unsigned int nr_devices, ndone;
	bool on_main;
	uint32_t chunk_max;
	struct ds_dev *dev;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, started;
	bool ram_ready;			/* finish() called: ends of streams may go */
	int err;
	char error[200];
	uint64_t buffered, peak, bytes;
	pthread_t *workers;
	unsigned int nr_workers;
};

/* Before the session: the VMM's device list. */
int devstate_recv_init(struct devstate_recv *ds, struct vmig_ctl *ctl, uint64_t cap,
		       unsigned int threads, int timeout_ms);
/* Read DEVICES from the main channel, match the VMM's devices, start the pool. */
int devstate_recv_setup(struct devstate_recv *ds, struct stream *main);
/* One DEVSTATE packet (header read, len bytes to come) from s. */
int devstate_recv_chunk(void *ds, struct stream *s, uint32_t len);
/*
 * Once guest RAM is readable (precopy: after COMPLETE and every page placed;
 * postcopy: with the fault service running): end every device's stream and
 * wait until every device is loaded; 0 or -errno.
 */
int devstate_recv_finish(struct devstate_recv *ds);
/*
 * Answer the source's DEV_LOAD on main (wire.h): how far each device's load
 * got (no device if none was announced).  The main channel's thread.
 */
int devstate_recv_report(struct devstate_recv *ds, struct stream *main);
/* Failure elsewhere: wake every waiter (receive threads waiting for room). */
void devstate_recv_cancel(struct devstate_recv *ds);
void devstate_recv_destroy(struct devstate_recv *ds);

#endif
