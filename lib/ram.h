/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest RAM behind one interface: what a backend provides (uffd: memfds,
 * lib/ram_uffd.c; kmod: vmig.ko regions, lib/ram_kmod.c).  Every backend
 * maps each region into the helper, so reading a page is a pointer;
 * tracking, harvesting and placing go through the ops.
 */
#ifndef VMIG_RAM_H
#define VMIG_RAM_H

#include <stdint.h>

#include "libvmig.h"
#include "vmm_proto.h"

struct ram_region {
	uint8_t *base;		/* the helper's MAP_SHARED view */
	uint64_t pages;
	int fd;			/* memfd or vmig.ko region (owned by the ctl) */
	uint64_t vmm_addr;	/* where the VMM maps it */
};

struct ram_ops {
	const char *name;
	int (*track_start)(struct vmig_ram *ram, enum vmig_track mode, int timeout_ms);
	int (*harvest)(struct vmig_ram *ram, vmig_range_fn fn, void *arg);
	/* src NULL: zero the pages.  Postcopy backends place atomically here. */
	int (*place)(struct vmig_ram *ram, unsigned int region, uint64_t page,
		     const void *src, uint64_t num_pages);
	void (*close)(struct vmig_ram *ram);
	/* Optional (NULL: memfd holes by SEEK_DATA; no-op; "async"/"sync"). */
	int (*for_each_data)(struct vmig_ram *ram, unsigned int region, vmig_range_fn fn,
			     void *arg);
	int (*prepare_send)(struct vmig_ram *ram, unsigned int region, uint64_t first,
			    uint64_t n, const uint64_t *bitmap);
	const char *(*track_name)(const struct vmig_ram *ram);
	/* Optional (NULL: -ENOTSUP): see vmig_ram_redirtied(). */
	int (*redirtied)(struct vmig_ram *ram, uint64_t *pages);
};

/*
 * A place op for precopy destinations: copy (or zero) through the helper's
 * own mapping.  The destination VMM is stopped and a page may be sent again
 * in a later round, so a plain copy is both enough and required.
 */
int ram_place_copy(struct vmig_ram *ram, unsigned int region, uint64_t page,
		   const void *src, uint64_t num_pages);

struct vmig_ram {
	const struct ram_ops *ops;
	void *priv;
	struct vmig_ctl *ctl;
	unsigned int nr_regions;
	struct ram_region regions[VMM_MAX_REGIONS];
	enum vmig_track mode;
	struct vmig_ram_stats stats;
};

#define RAM_PAGE_SIZE	4096ull
#define RAM_PAGE_SHIFT	12

/* Map the ctl's regions into this process (the part every backend shares). */
int ram_map_regions(struct vmig_ram *ram, struct vmig_ctl *ctl);
void ram_unmap_regions(struct vmig_ram *ram);

#endif
