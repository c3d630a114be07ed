/* SPDX-License-Identifier: GPL-2.0 */
/* Destination: accepting a session and its channels; the receiver threads. */
#ifndef VMIG_DEST_ACCEPT_H
#define VMIG_DEST_ACCEPT_H

#include "dest_state.h"

/* Wait (--accept-timeout) for a main channel with an acceptable handshake. */
int dest_accept_session(struct dest *d);
/* Take the session's channels (--timeout), a receiver thread per multifd one. */
int dest_accept_channels(struct dest *d);
/* Fail on a receiver that failed; *all_ended when each has ended. */
int dest_rx_check(struct dest *d, bool *all_ended);
/* Pages the receivers have placed so far. */
uint64_t dest_rx_pages(struct dest *d);
/*
 * Wait, at most timeout_ms, until each receiver has parked at its POSTCOPY
 * marker or ended: what its socket held when the session broke is read.
 */
void dest_rx_settle(struct dest *d, int timeout_ms);
/* Release parked receivers, stop and join them (idempotent). */
void dest_rx_stop(struct dest *d);
/*
 * Close the session's channels (receivers stopped, the fault thread too),
 * their counts added to the report.
 */
void dest_close_channels(struct dest *d);
/* A paused postcopy: drop every channel of the broken connection. */
void dest_drop_channels(struct dest *d);

#endif
