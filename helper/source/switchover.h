/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The switchover's prediction: each part of the downtime that the report
 * measures (stop, final dirty pages, device state save, transfer, load,
 * resume), predicted before the switch from what is known then.  Pure
 * computation: precopy.c gathers the inputs each round and switches only
 * when the predicted total fits --downtime-limit.
 *
 * The model:
 * - stop, resume: one control round trip to the VMM, measured on this VMM
 *   (the device list query at setup, then the device status query before
 *   each decision).  A VMM cannot stop and resume its vCPUs as a probe
 *   while the guest runs, so the time its vCPUs take to park is not in it.
 * - final dirty pages: one harvest (the last one's cost) plus the dirty
 *   bytes over the bandwidth.
 * - device state: each device sends what is left (its size less what its
 *   precopy part sent), at most at its save and its load rate (declared by
 *   the VMM, else measured on its precopy part, else unlimited), all of them
 *   sharing the bandwidth fairly (max-min; the best rate a round reached,
 *   since the device stream is large sequential chunks while dirty rounds
 *   are often too small to fill the link), as many at once as there are
 *   saving threads (one on the main channel), in the order the pool takes
 *   them.  Device save is when the last device is read (saves ahead of
 *   slower loads are buffered on the destination), load is how much later
 *   the last load ends, transfer is the last chunk's flight.
 * - a load that lags: a device with a precopy part is loading on the
 *   destination already, and its load may have begun well after its save
 *   (its first chunks queued behind the bulk stage's pages).  Loading at
 *   most at its load rate since it began (asked of the destination just
 *   before: DEV_LOAD, wire.h), it cannot end before its start plus its
 *   size at that rate: what its precopy part sent beyond that is a backlog
 *   that goes before the rest; so is what waits on the destination, if
 *   more (a load slower than its rate, starved of CPU).  The load part is
 *   how much later than the save and transfer that end is, if later.  The
 *   load rate: declared, or else measured on the destination while the
 *   load lagged its arrivals.
 */
#ifndef VMIG_SWITCHOVER_H
#define VMIG_SWITCHOVER_H

#include <stdbool.h>
#include <stdint.h>

struct wire_dev_loaded;

struct sw_device {
	uint64_t remaining;		/* bytes its save at switchover will send */
	double save_rate, load_rate;	/* bytes/s; 0: unknown (only the link limits it) */
	uint64_t backlog;		/* sent, and more than its load can have taken */
};

struct sw_inputs {
	uint64_t dirty_bytes;		/* what the final round sends */
	double bandwidth;		/* bytes/s over every channel, for pages */
	double dev_bandwidth;		/* ... for device state (0: the same) */
	double harvest_ms;		/* one harvest */
	double ctl_rtt_ms;		/* a control round trip to the VMM */
	unsigned int nr_devices;
	const struct sw_device *dev;
	unsigned int threads;		/* device saving pool */
	bool on_main;			/* device state in order on the main channel */
	bool postcopy;			/* a postcopy switch: pages are not in the downtime */
};

/* Milliseconds, predicted or measured. */
struct sw_parts {
	double stop, pages, dev_save, transfer, load, resume;
};

void sw_predict(const struct sw_inputs *in, struct sw_parts *out);

/*
 * Into a device's inputs, from the destination's DEV_LOAD answer l and the
 * bytes its precopy part sent so far: what its load lags behind and, if d
 * has no load rate, the one its load ran at there while it lagged.  With
 * VMIG_SWITCHOVER_NO_LOAD_LAG set in the environment it does nothing: the
 * prediction as it was before (bench/devstate_bench.sh compares the two).
 */
void sw_dest_load_apply(const struct wire_dev_loaded *l, uint64_t sent, struct sw_device *d);

double sw_total(const struct sw_parts *p);
/* The name of the largest part ("device state save", ...). */
const char *sw_largest(const struct sw_parts *p);
double sw_largest_ms(const struct sw_parts *p);

#endif
