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

struct throttle {
	unsigned int percent;		/* in force */
	uint64_t last_pages;		/* the previous round's dirty set (first: all pages) */
};

/*
 * A round's dirty set is known: the percentage the guest should run at
 * from now (unchanged when the set shrank enough, or at the maximum).
 */
unsigned int throttle_next(struct throttle *t, uint64_t dirty_pages);
/* At the maximum: further stalls are real. */
bool throttle_maxed(const struct throttle *t);

#endif
