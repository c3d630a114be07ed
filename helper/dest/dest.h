/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The destination: accept a session (main channel + handshake + multifd
 * channels), place pages, resume the guest on COMPLETE.  Connections that
 * are not a valid session start are dropped with a message and the
 * listener keeps waiting; once a session runs, any failure ends it and the
 * partial guest is discarded (the VMM is told ERROR).
 */
#ifndef VMIG_DEST_H
#define VMIG_DEST_H

#include <stdbool.h>

#include "libvmig.h"
#include "report.h"
#include "thread_sched.h"
#include "util.h"

struct dest_opts {
	const char *vmm_path;
	const char *listen;		/* [ADDR:]PORT */
	int timeout_ms;			/* any single wait inside a session */
	int accept_timeout_ms;		/* waiting for a source to appear */
	enum vmig_backend backend;	/* auto: what the VMM's RAM is */
	bool prefault;			/* allocate guest RAM before pages arrive */
	bool no_postcopy;		/* refuse postcopy */
	int spin_us;			/* postcopy: poll for a reply this long before sleeping */
	enum urgent_sched sched;	/* postcopy: the fault thread's scheduling */
	bool cpu_any;			/* postcopy: the fault thread stays unpinned */
	bool progress;
	uint64_t max_device_buffer;	/* bytes of device state buffered at most */
	unsigned int device_threads;	/* loading pool */
	int recovery_timeout_ms;	/* postcopy: wait this long for the source to reconnect */
	bool attach;			/* take over a postcopy whose helper died */
	bool kernel_requests;		/* postcopy: vmig.ko writes requests itself */
};

int dest_receive(const struct dest_opts *o, struct report *rep);

#endif
