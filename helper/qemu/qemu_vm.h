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

/* Source: run QEMU's migration into a pipe and hand its bytes to sink. */
int qemu_vm_save_state(struct qemu_vm *vm, qemu_state_sink sink, void *arg,
		       uint64_t *bytes, char *err, size_t len);
/* Destination: feed source's bytes to migrate-incoming until it completes. */
int qemu_vm_load_state(struct qemu_vm *vm, qemu_state_source source, void *arg,
		       uint64_t *bytes, char *err, size_t len);

#endif
