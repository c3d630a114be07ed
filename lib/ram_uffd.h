/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The uffd backend's state, shared by its tracking (ram_uffd.c) and its
 * postcopy destination (ram_uffd_postcopy.c).
 */
#ifndef VMIG_RAM_UFFD_H
#define VMIG_RAM_UFFD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ram.h"
#include "uffd_compat.h"

#define SCAN_VEC_LEN	1024

struct uffd_priv {
	int uffd;			/* source: the VMM's write-protect uffd */
	int pagemap;			/* async: the VMM's pagemap */
	int stop_fd;			/* sync: eventfd that ends the fault thread */
	bool fault_thread_running;
	pthread_t fault_thread;
	_Atomic uint64_t *dirty[VMM_MAX_REGIONS];	/* sync: one bit per page */
	uint64_t *taken[VMM_MAX_REGIONS];		/* sync: this harvest's bits */
	_Atomic uint64_t wp_faults;
	pthread_mutex_t wp_lock;	/* sync: mark+unprotect against take+protect */
	uint64_t test_hold_page;	/* sync: VMIG_TEST_WP_HOLD (tests only) */
	unsigned int test_hold_us;
	struct page_region vec[SCAN_VEC_LEN];
	int missing_fd;			/* postcopy destination: the VMM's MISSING uffd */
};

/*
 * A message read from a uffd: for a page fault, the faulting page's address
 * in the VMM (*addr) and its region (returned, -1 outside guest RAM; the
 * page in *page); -2 for any other event.
 */
static inline int uffd_msg_page(const struct vmig_ram *ram, const struct uffd_msg *m,
				uint64_t *addr, uint64_t *page)
{
	if (m->event != UFFD_EVENT_PAGEFAULT)
		return -2;
	*addr = m->arg.pagefault.address & ~(RAM_PAGE_SIZE - 1);
	return ram_region_of(ram, *addr, page);
}

#endif
