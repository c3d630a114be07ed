/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One running QEMU, driven over QMP for a vmig migration: stop, cont, its
 * run state, and its own migration stream, which with the x-ignore-shared
 * capability holds everything but the shared RAM (CPUs, devices, ROMs,
 * video RAM): saved into a pipe on the source, fed to migrate-incoming on
 * the destination.  Every failure leaves a message naming the step in the
 * caller's err buffer.
 */
#ifndef VMIG_QEMU_VM_H
#define VMIG_QEMU_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qmp.h"

struct qemu_vm {
	struct qmp qmp;
	pid_t pid;			/* QEMU's, from the QMP socket's peer */
	int timeout_ms;			/* per QMP command */
	int state_timeout_ms;		/* a whole save or load */
	/* qemu_vm_stop_migrating: QEMU's migration waits in pre-switchover */
	int pending_fd;			/* our end of its pipe, or -1 */
	int load_fd;			/* qemu_vm_load_begin: the incoming pipe, or -1 */
	char *early;			/* what it wrote before the pause, or all of it */
	size_t early_len, early_cap;
	bool saved;			/* qemu_vm_finish_save: early holds all of it */
	uint64_t save_ns;		/* the last save: from migrate-continue (or migrate) */
	uint64_t load_ns;		/* the last load: from migrate-incoming to completed */
};

/*
 * Connect to QMP at path and switch on x-ignore-shared (and lift the
 * migration bandwidth cap: the stream only carries device state).
 * incoming: QEMU must wait in -incoming defer; it is told not to start
 * the guest by itself once the state is loaded (cont does that).
 */
int qemu_vm_open(struct qemu_vm *vm, const char *qmp_path, bool incoming, int timeout_ms,
		 char *err, size_t len);
void qemu_vm_close(struct qemu_vm *vm);
/* QEMU's run state ("running", "paused", "inmigrate", "postmigrate", ...). */
int qemu_vm_status(struct qemu_vm *vm, char *status, size_t slen, char *err, size_t len);
/* Stop / continue the vCPUs and check that the run state followed. */
int qemu_vm_stop(struct qemu_vm *vm, char *err, size_t len);
int qemu_vm_cont(struct qemu_vm *vm, char *err, size_t len);
/* What qemu_vm_stop_migrating and qemu_vm_finish_save keep in memory at most. */
#define SAVE_AHEAD_MAX	(256ull << 20)

/*
 * Stop for the switchover the way QEMU's own migration does, so that its
 * setup runs while the guest still runs: "migrate" into a pipe with the
 * pause-before-switchover capability, until QEMU has stopped the vCPUs
 * itself and waits in pre-switchover (run state finish-migrate).  What it
 * wrote up to then (the stream's header, setup and RAM blocks other than
 * the shared ones) is kept for qemu_vm_save_state.  *ran_ns: how long the
 * guest ran on after the call began, from QEMU's STOP event (0 if none
 * came, so the downtime is never understated).  On failure QEMU's
 * migration is cancelled (QEMU then runs the guest on) and err says why.
 */
int qemu_vm_stop_migrating(struct qemu_vm *vm, uint64_t *ran_ns, char *err, size_t len);
/*
 * After qemu_vm_stop_migrating: let QEMU save the rest now (migrate-
 * continue) and keep all of it, so that qemu_vm_save_state only hands it
 * on; run while the helper sends the last dirty pages, the save is not
 * downtime of its own.  On failure QEMU's migration failed and QEMU runs
 * the guest on (it was running when the migration began).
 */
int qemu_vm_finish_save(struct qemu_vm *vm, char *err, size_t len);
/*
 * Abandon a migration stopped in pre-switchover: cancel it and wait until
 * QEMU says it ended (QEMU restarts the vCPUs it stopped).  0 if none.
 */
int qemu_vm_cancel_pending(struct qemu_vm *vm, char *err, size_t len);
/* Ask QEMU to exit (best effort, short timeout). */
void qemu_vm_quit(struct qemu_vm *vm);
/* Is QEMU still there?  Drains pending events; false once QMP hung up. */
bool qemu_vm_alive(struct qemu_vm *vm);
/*
 * Is the file open as fd mapped shared by QEMU, over at least size bytes?
 * (its /proc/PID/maps, matched by device and inode)
 */
int qemu_vm_maps_shared(struct qemu_vm *vm, int fd, uint64_t size, char *err, size_t len);
/*
 * Bytes of RAM QEMU would put in its stream: its RAM blocks other than the
 * ones in skip (the shared guest RAM, by size); 0 if it cannot tell.
 */
uint64_t qemu_vm_state_estimate(struct qemu_vm *vm, const uint64_t *skip, unsigned int nskip);

/* The stream's bytes, as they come: 0 or -errno (stops the save). */
typedef int (*qemu_state_sink)(void *arg, const void *buf, size_t len);
/* The next bytes into buf: their count, 0 at the end, or -errno. */
typedef long (*qemu_state_source)(void *arg, void *buf, size_t cap);

/*
 * Source: run QEMU's migration into a pipe and hand its bytes to sink; after
 * qemu_vm_stop_migrating: what it kept, then migrate-continue and the rest.
 */
int qemu_vm_save_state(struct qemu_vm *vm, qemu_state_sink sink, void *arg,
		       uint64_t *bytes, char *err, size_t len);
/*
 * Destination: start migrate-incoming on a pipe now, ahead of the state
 * (QEMU waits for its first bytes), so that the load does not wait for
 * it; a later qemu_vm_load_state feeds that pipe.  0 or -errno with err.
 */
int qemu_vm_load_begin(struct qemu_vm *vm, char *err, size_t len);
/* Destination: feed source's bytes to migrate-incoming until it completes. */
int qemu_vm_load_state(struct qemu_vm *vm, qemu_state_source source, void *arg,
		       uint64_t *bytes, char *err, size_t len);

#endif
