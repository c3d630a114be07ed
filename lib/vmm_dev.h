/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device state and free-page hints: the internals shared by vmm.c and ctl.c. */
#ifndef VMIG_VMM_DEV_H
#define VMIG_VMM_DEV_H

#include "libvmig.h"
#include "uffd_track.h"
#include "vmm_proto.h"

struct vmm_devs;

/* VMM side. */
int vmm_devs_add(struct vmm_devs **devs, const char *name, uint32_t instance, uint64_t size,
		 uint32_t flags, const struct vmig_dev_ops *ops, void *opaque);
/* Change a device's size and/or rates (NULL: keep); 0 or -ENOENT. */
int vmm_devs_update(struct vmm_devs *devs, const char *name, uint32_t instance,
		    const uint64_t *size, const uint64_t *save_rate, const uint64_t *load_rate);
void vmm_devs_set_hint(struct vmm_devs **devs, vmig_free_hint_fn fn, void *opaque);
/*
 * Serve a DEV_* or FREE_* request m (owns its fds).  0 served, -EPROTO
 * malformed, -ENOMSG not such a request, else -errno from the socket.
 */
int vmm_devs_serve(struct vmm_devs **devs, int conn, struct vmm_msg *m,
		   const struct uffd_span *spans, unsigned int nr_regions);
/* Wait (bounded) for running save/load threads, then free. */
void vmm_devs_free(struct vmm_devs *devs);

/* Helper side: what ctl.c lends to vmm_dev.c. */
int vmig_ctl_sock_(const struct vmig_ctl *ctl);
struct vmm_msg *vmig_ctl_msg_(struct vmig_ctl *ctl);
void **vmig_ctl_devstate_(struct vmig_ctl *ctl);
void vmm_ctl_devs_free(void *p);

#endif
