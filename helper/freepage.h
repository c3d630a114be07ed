/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Free-page hints.  The rule: the hint is taken only after dirty tracking
 * is on.  A page the guest frees is in the hint and is skipped by the bulk
 * stage; a hinted page the guest writes after the hint was taken is dirty,
 * so a later round sends it.  Taken before tracking, a page written
 * between the hint and the start of tracking would be lost.
 */
#ifndef VMIG_FREEPAGE_H
#define VMIG_FREEPAGE_H

#include <stdint.h>

#include "libvmig.h"
#include "wire.h"

struct freepage {
	unsigned int nr_regions;
	uint64_t *bits[WIRE_MAX_REGIONS];	/* NULL: no hint */
	uint64_t skipped;			/* pages left out of the bulk stage */
};

/* Ask the VMM (tracking must be on).  0 (a hint or none), or -errno. */
int freepage_query(struct freepage *fp, struct vmig_ctl *ctl, int timeout_ms);

/* A vmig_ram_for_each_data callback filter: passes on the runs of pages not hinted free. */
struct freepage_filter {
	struct freepage *fp;
	int (*fn)(void *arg, unsigned int region, uint64_t first, uint64_t n);
	void *arg;
};
int freepage_filter_cb(void *filter, unsigned int region, uint64_t first, uint64_t n);

void freepage_free(struct freepage *fp);

#endif
