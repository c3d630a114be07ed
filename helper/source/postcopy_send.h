/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The postcopy source: the switch (stop, DISCARD, markers, POSTCOPY, wait
 * for RESUMED), then the rest of the pages in the background while the
 * return-path thread (postcopy_src.h) serves the destination's requests,
 * then COMPLETE and DONE.  A broken link on the way pauses and recovers
 * (src_recover.h) instead of failing.
 *
 * It owns the return path and what the switch decided (whether the guest
 * may run, or does run, on the destination; whether the VMM holds our
 * handover record); it is passed the source's shared state (src.h), whose
 * dirty set holds the pages the destination still lacks.
 */
#ifndef VMIG_POSTCOPY_SEND_H
#define VMIG_POSTCOPY_SEND_H

#include <stdbool.h>

#include "postcopy_src.h"
#include "src.h"
#include "src_test.h"

struct postcopy {
	struct src *src;
	struct pc_src ps;		/* the return path */
	bool dest_runs;			/* the guest may run on the destination */
	bool switch_confirmed;		/* ... and it does (RESUMED, or recovered) */
	bool handed_over;		/* the VMM holds our handover record */
	struct src_test test;		/* tests: cuts, held pages (zero: none) */
};

/* Nothing switched yet; the return path per s->o (not connected). */
void postcopy_init(struct postcopy *pc, struct src *s);
/*
 * Switch to postcopy (the caller predicted its downtime), send the rest,
 * recover from broken links (o->recovery_timeout_ms).  0 when the
 * destination has every page, or -errno (pc->src->rep says why;
 * pc->dest_runs whether the guest may run there).
 */
int postcopy_switchover(struct postcopy *pc);
/*
 * After the switch (and after each recovery): send what is in the dirty
 * set in the background, end every channel, COMPLETE, DONE.
 */
int postcopy_background(struct postcopy *pc);
/* Stop the return-path thread; before the channels it queues on go. */
void postcopy_destroy(struct postcopy *pc);

#endif
