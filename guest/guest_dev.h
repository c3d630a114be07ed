/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Emulated devices of the reference VMM (vmig guest --device): state of a
 * set size whose content is a function of (name, instance, offset), saved
 * and loaded at a set rate.  The rate is sleep-based pacing per chunk, as a
 * device's DMA engine would pace it, not CPU work, so devices saved in
 * parallel overlap as they would on real hardware.  The destination checks
 * every byte and the length.  With precopy=PCT% the device declares
 * VMIG_DEV_PRECOPY: its first PCT % goes while the guest runs, the rest at
 * switchover.
 */
#ifndef VMIG_GUEST_DEV_H
#define VMIG_GUEST_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"

#define GUEST_MAX_DEVICES	16

struct guest_dev {
	char name[VMIG_DEV_NAME_MAX];
	uint32_t instance;
	uint64_t size;			/* read and changed atomically (resize) */
	uint64_t resize;		/* vmig guest: on SIGUSR1 the state becomes this big */
	uint64_t save_rate, load_rate;	/* bytes/s, 0: unpaced */
	unsigned int precopy_pct;	/* this much of the state goes before switchover */
	uint64_t precopy_end;		/* bytes the last precopy part took */
	bool fail_save, fail_load;	/* fail half-way (tests) */
	bool verified;
	uint64_t loaded;
};

/*
 * "name=nic0,size=100M[,instance=N][,save-rate=R][,load-rate=R][,precopy=PCT%]
 * [,resize=SIZE][,fail=save|load]"; precopy: the first PCT % of the state is
 * its precopy part.
 */
int guest_dev_parse(const char *spec, struct guest_dev *d, char *err, unsigned int errlen);
/* Declare the device, and its rates to the helper's prediction. */
int guest_dev_register(struct vmig_vmm *vmm, struct guest_dev *d);
/* The state becomes d->resize bytes, and the helper is told; 0 or -errno. */
int guest_dev_resize(struct vmig_vmm *vmm, struct guest_dev *d);

#endif
