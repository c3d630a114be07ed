/* SPDX-License-Identifier: GPL-2.0 */
/* Destination: take over a postcopy whose destination helper died. */
#ifndef VMIG_DEST_ATTACH_H
#define VMIG_DEST_ATTACH_H

#include "dest_state.h"

/* Rebuild a paused recovery from the VMM's handover record (setup, --attach). */
int dest_attach(struct dest *d);

#endif
