/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest RAM behind one interface: what a backend provides (uffd: memfds,
 * lib/ram_uffd.c; kmod: vmig.ko regions, lib/ram_kmod.c).  Every backend
 * maps each region into the helper, so reading a page is a pointer;
 * tracking, harvesting and placing go through the ops, and so does all a
 * postcopy destination asks of guest RAM (struct ram_pc_ops): no caller
 * needs to know which backend it has.
 */
#ifndef VMIG_RAM_H
#define VMIG_RAM_H

#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"
#include "vmm_proto.h"

struct ram_region {
	uint8_t *base;		/* the helper's MAP_SHARED view */
	uint64_t pages;
	int fd;			/* memfd or vmig.ko region (owned by the ctl) */
	uint64_t vmm_addr;	/* where the VMM maps it */
	bool no_read;		/* pread of fd failed once: vmig_ram_read_page says so */
};

struct ram_pc_ops;

struct ram_ops {
	const char *name;
	/*
	 * The regions' fds are plain files (memfds, tmpfs, hugetlbfs), whose
	 * pages pread() reads: vmig_ram_read_page().  Not vmig.ko's, whose
	 * read() takes postcopy requests.
	 */
	bool read_file;
	int (*track_start)(struct vmig_ram *ram, enum vmig_track mode, int timeout_ms);
	/* final: vmig_ram_harvest_final() (may skip re-arming; may ignore it). */
	int (*harvest)(struct vmig_ram *ram, vmig_range_fn fn, void *arg, bool final);
	/* Precopy (guest stopped): copy, src NULL: zero; ram_place_copy for both. */
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
	/* Optional (NULL: -ENOTSUP): see vmig_ram_pages_protected(). */
	int (*pages_protected)(struct vmig_ram *ram, uint64_t *pages);

	/* Postcopy destination (NULL: the backend has none; -ENOTSUP). */
	const struct ram_pc_ops *pc;
};

/*
 * A postcopy destination's backend: the vmig_ram_postcopy_* calls, whose
 * contracts are in libvmig.h.  ram_postcopy.c checks the arguments (region
 * and pages in range, destination role) before calling these.
 */
struct ram_pc_ops {
	/* Missing pages fault from now on (NULL: they always do). */
	int (*enable)(struct vmig_ram *ram);
	/* Drop pages: the guest's next touch faults. */
	int (*discard)(struct vmig_ram *ram, unsigned int region, uint64_t first, uint64_t n);
	/* Take the VMM's registration (vmig_ctl_postcopy); -EPROTO if it does not fit. */
	int (*register_vmm)(struct vmig_ram *ram, int timeout_ms);
	/* After a helper died: the faults it had read come again. */
	int (*requeue)(struct vmig_ram *ram);
	/* The fds to poll for requests; how many (at most max). */
	int (*fds)(const struct vmig_ram *ram, int *fds, unsigned int max);
	/* revents of fds[i] meaning no request can come from it any more: -errno. */
	int (*poll_error)(const struct vmig_ram *ram, unsigned int i, short revents);
	/* Read what requests wait, nonblocking, in (region, page) terms. */
	int (*requests)(struct vmig_ram *ram, struct vmig_ram_request *req, unsigned int max);
	/* vmig_ram_postcopy_set_sink; NULL: -EOPNOTSUPP. */
	int (*set_sink)(struct vmig_ram *ram, int fd, const void *rec, uint32_t len,
			uint32_t region_at, uint32_t page_at);
	/* A requested page is here already (NULL: placing woke its threads). */
	void (*wake)(struct vmig_ram *ram, unsigned int region, uint64_t page);
	/* Atomic, never overwriting, waking the waiters: 0 or -EEXIST. */
	int (*place)(struct vmig_ram *ram, unsigned int region, uint64_t page, const void *src);
	/* n pages as one call where the backend can; the count present already. */
	int (*place_batch)(struct vmig_ram *ram, unsigned int region, const uint64_t *pages,
			   uint8_t *const *src, unsigned int n, bool *placed);
	/* Every page is here (NULL: nothing to undo). */
	void (*disable)(struct vmig_ram *ram);
};

/* The backends' postcopy ops (ram_uffd_postcopy.c, ram_kmod_postcopy.c). */
extern const struct ram_pc_ops ram_uffd_pc_ops;
extern const struct ram_pc_ops ram_kmod_pc_ops;

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
	enum vmig_role role;		/* the ctl's: postcopy is the destination's */
	unsigned int nr_regions;
	struct ram_region regions[VMM_MAX_REGIONS];
	enum vmig_track mode;
	struct vmig_ram_stats stats;
	/* VMIG_TRACK_VMM: the VMM's bitmaps, mapped (ram.c: vmm_log_*). */
	const uint64_t *vmm_log;
	size_t vmm_log_len;
	int vmm_log_timeout_ms;		/* each DIRTY_QUERY's (track_start's timeout) */
};

#define RAM_PAGE_SIZE	4096ull
#define RAM_PAGE_SHIFT	12

/*
 * fn for each run of set bits of bm (one bit per page of region, pages bits;
 * bits past pages ignored); the first nonzero fn return ends it.
 */
int ram_for_each_run(const uint64_t *bm, uint64_t pages, unsigned int region,
		     vmig_range_fn fn, void *arg);

/* The region holding the VMM's address addr (its page in *page), or -1. */
int ram_region_of(const struct vmig_ram *ram, uint64_t addr, uint64_t *page);

/*
 * Opening a backend, the parts every backend shares: a ram of @ops with a
 * zeroed private part of @priv_size (NULL, errno ENOMEM); then the ctl's
 * regions mapped into this process (@ram, or NULL with @ram closed through
 * its ops and errno set).
 */
struct vmig_ram *ram_new(const struct ram_ops *ops, size_t priv_size);
struct vmig_ram *ram_open_regions(struct vmig_ram *ram, struct vmig_ctl *ctl);

#endif
