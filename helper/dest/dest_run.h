/* SPDX-License-Identifier: GPL-2.0 */
/* Destination: running an accepted (or resumed) session. */
#ifndef VMIG_DEST_RUN_H
#define VMIG_DEST_RUN_H

#include "dest_state.h"

/*
 * Follow the main channel until COMPLETE, watching the receivers; then
 * wait for every page to be placed, load the devices and, in postcopy,
 * finish it (DONE).
 */
int dest_run(struct dest *d);

#endif
