/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dirty tracking under KVM, checked and measured inside the reference VMM
 * (vmig guest --kvm --dirty-check / --dirty-bench): vmig.ko's modes on the
 * guest-RAM region and KVM's own logs on its memslot, side by side on the
 * same running guest.
 */
#ifndef VMIG_GUEST_KVM_CHECK_H
#define VMIG_GUEST_KVM_CHECK_H

#include <stdint.h>

#include "guest_kvm.h"

/* What the check borrows from the VMM: parking and restarting its vCPUs. */
struct guest_kvm_check_ops {
	void *opaque;
	int (*stop)(void *opaque);	/* every vCPU parked between two pages */
	void (*resume)(void *opaque);
	/* the vCPUs write this share of the data pages (percent), 0: as they do */
	void (*set_span)(void *opaque, unsigned int pct);
};

/*
 * A dirty source: one of vmig.ko's modes ("protect", "manual",
 * "manual-init", "hwdirty") on region_fd, or KVM's ("kvm-get",
 * "kvm-clear", "kvm-ring").
 */
struct dirty_source;

/*
 * Parse a comma-separated list of sources.  Refuses what cannot work on
 * this guest, with the reason in err: a vmig mode without a vmig.ko region,
 * hwdirty at all (KVM's writes never reach the page-table dirty bits it
 * reads), or more than one KVM source (ring is set for kvm-ring: the VM
 * must then be created with rings).
 */
int guest_kvm_sources_parse(const char *list, int region_fd, unsigned int *count,
			    bool *ring, char *err, size_t errlen);

/*
 * The exactness check: rounds intervals with the vCPUs stopped at both ends
 * (every source's harvest == the pages the guest wrote), then rounds
 * harvests with the vCPUs writing (a shadow copy per source, refreshed from
 * each harvest, equals guest RAM at the end: no lost write).  0 if every
 * check held, 1 if not, 2 if a source failed.
 */
int guest_kvm_check(struct guest_kvm *k, int region_fd, const char *sources,
		    unsigned int rounds, uint8_t *ram, uint64_t size,
		    const struct guest_kvm_check_ops *ops);

/*
 * The benchmark: for each source, harvest cost per dirty page at 1, 10 and
 * 100 % of the pages written, and the longest vCPU stall (a page write
 * that took longest) while harvests run.  Prints a table; 0 or 2.
 */
int guest_kvm_bench(struct guest_kvm *k, int region_fd, const char *sources,
		    unsigned int rounds, uint64_t size, const struct guest_kvm_check_ops *ops);

#endif
