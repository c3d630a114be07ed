/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Auto-converge: when dirty rounds stop shrinking, ask the source VMM to
 * slow its vCPUs down (stop them a share of the time), step by step, as
 * QEMU's cpu-throttle does (its trigger: dirtying faster than half the
 * bandwidth; here: a round that did not halve the dirty set, which is the
 * same when each round sends the last one's set).  Without it a guest that dirties memory faster
 * than the link carries it never converges on the kmod backend, whose write
 * tracking costs the guest almost nothing (uffd sync tracking throttles by
 * accident: every first write waits for the helper).
 */
#ifndef VMIG_THROTTLE_H
#define VMIG_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#define THROTTLE_INITIAL	20	/* percent, the first step */
#define THROTTLE_STEP		10	/* added each round that did not shrink */
#define THROTTLE_MAX		95
#define THROTTLE_SHRINK		0.5	/* rounds must at least halve the dirty set */
#define THROTTLE_BULK_SHARE	0.5	/* bulk stage: redirtied / sent above this trips */

struct throttle {
	unsigned int percent;		/* in force */
	uint64_t last_pages;		/* the previous round's dirty set (first: all pages) */
};

/*
 * A round's dirty set is known: the percentage the guest should run at
 * from now (unchanged when the set shrank enough, or at the maximum).
 */
unsigned int throttle_next(struct throttle *t, uint64_t dirty_pages);
/*
 * The bulk stage, one sampling period: sent pages went on the wire and
 * redirtied pages already sent were written again (they go again in round
 * 1).  QEMU's trigger, dirtying more than half of what the link carried,
 * applied here while the bulk stage runs (QEMU can only apply it from the
 * first bitmap sync, after the bulk stage: its dirty bitmap says nothing
 * before; the kmod manual-init write-fault count is live and counts
 * exactly the pages to resend).  When it trips, the throttle goes straight
 * to the share that brings the rate down to the threshold (the measured
 * rate already ran under the current throttle), not THROTTLE_STEP at a
 * time: a step per period would take seconds to catch up with a guest
 * that outruns the link by 2-3x.  Returns the percentage to run at.
 */
unsigned int throttle_bulk(struct throttle *t, uint64_t redirtied, uint64_t sent);
/* At the maximum: further stalls are real. */
bool throttle_maxed(const struct throttle *t);

#endif
