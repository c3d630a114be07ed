/* SPDX-License-Identifier: GPL-2.0 */
/* Destination: a session whose link broke. */
#ifndef VMIG_DEST_RECOVER_H
#define VMIG_DEST_RECOVER_H

#include "dest_state.h"

/*
 * Postcopy paused (err is why): wait up to --recovery-timeout for the
 * source's RESUME of this session and take the session back.  0 when
 * resumed, or when postcopy had finished here (d->pc_done).
 */
int dest_recover(struct dest *d, int err);
/* The switch broke before the guest ran here: tell a RESUMEing source so. */
void dest_refuse_resume(struct dest *d);

#endif
