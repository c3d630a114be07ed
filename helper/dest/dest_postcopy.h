/* SPDX-License-Identifier: GPL-2.0 */
/* Destination: postcopy preparation, the switch, the handover record. */
#ifndef VMIG_DEST_POSTCOPY_H
#define VMIG_DEST_POSTCOPY_H

#include "control.h"
#include "dest_state.h"

/* After the handshake: postcopy state, if negotiated (d->pc_ready). */
int dest_pc_prepare(struct dest *d);
/* Leave with the VMM what a helper needs to take this postcopy over. */
int dest_handover_leave(struct dest *d);
/* DISCARD or POSTCOPY on the main channel: the switch; the guest resumes here. */
int dest_pc_event(struct dest *d, const struct ctl_event *ev);

#endif
