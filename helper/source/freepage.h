/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Free-page hints.  The rule: a hint is taken only after dirty tracking is
 * on, and that holds for the first hint and for every update.  A page the
 * guest frees is in the hint and is skipped by the bulk stage; a hinted
 * page the guest writes after the hint was taken is dirty, so a later
 * round sends it.  Taken before tracking, a page written between the hint
 * and the start of tracking would be lost.
 *
 * Updates: the helper asks again before each slice of the bulk stage (the
 * VMM computes the hint when asked), and that slice skips what the latest
 * hint calls free.  Skipping is safe whenever the hint was taken after
 * tracking started, because no harvest happens during the bulk stage: any
 * write since tracking started shows in the first dirty round.  Hints are
 * never applied to dirty rounds: a page harvested dirty before a hint
 * that arrived later calls it free would be lost.
 */
#ifndef VMIG_FREEPAGE_H
#define VMIG_FREEPAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"
#include "wire.h"

struct freepage {
	unsigned int nr_regions;
	bool have;				/* the VMM gives hints */
	uint64_t *bits[WIRE_MAX_REGIONS];	/* the latest hint; NULL: none */
	uint64_t *first[WIRE_MAX_REGIONS];	/* the first one (counts what updates add) */
	unsigned int hints;			/* taken so far */
	uint64_t skipped;			/* pages left out of the bulk stage */
	uint64_t skipped_updated;		/* of which free only in an update */
};

/* Ask the VMM for the first hint (tracking must be on).  0 (a hint or none), or -errno. */
int freepage_query(struct freepage *fp, struct vmig_ctl *ctl, int timeout_ms);
/* Ask again (tracking on, bulk stage): the latest replaces the last.  0 or -errno. */
int freepage_update(struct freepage *fp, struct vmig_ctl *ctl, int timeout_ms);

/* A vmig_ram_for_each_data callback filter: passes on the runs of pages not hinted free. */
struct freepage_filter {
	struct freepage *fp;
	int (*fn)(void *arg, unsigned int region, uint64_t first, uint64_t n);
	void *arg;
};
int freepage_filter_cb(void *filter, unsigned int region, uint64_t first, uint64_t n);

void freepage_free(struct freepage *fp);

#endif
