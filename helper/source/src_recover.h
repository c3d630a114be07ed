/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Recovery of the postcopy source: after a broken link (the guest runs on
 * the destination, this side holds every page it lacks), and after a
 * helper crash (the handover record the VMM keeps, handover.h; vmig
 * migrate --attach).  The wire side of it (RESUME, RECEIVED, the control
 * socket) is session/recovery.h; this is the source's use of it, on the
 * postcopy source's state (postcopy_send.h).
 */
#ifndef VMIG_SRC_RECOVER_H
#define VMIG_SRC_RECOVER_H

#include "postcopy_send.h"

/*
 * Pause after err broke the session, then reconnect it: close every
 * channel; listen on the control socket (vmig migrate --resume); reconnect
 * with backoff until o->recovery_timeout_ms; leave in the dirty set what
 * the destination lacks.  0 resumed (the channels and return path run
 * again), 1 the destination had finished, 2 it never switched, or -errno.
 */
int postcopy_recover(struct postcopy *pc, int err);
/*
 * Leave with the source VMM what a helper needs to take this postcopy over
 * if we die: from then on the VMM stays stopped even if we vanish.
 */
int handover_leave(struct postcopy *pc);
/* The destination never ran the guest: take the record back, so the VMM may resume. */
void handover_drop(struct postcopy *pc);

#endif
