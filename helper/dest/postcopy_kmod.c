// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy on the destination, kmod backend: the vmig.ko regions serve the
 * missing pages themselves, so the helper needs nothing from the VMM.
 *
 * At the switch (guest stopped, receivers parked): VMIG_POSTCOPY_ENABLE on
 * every region first, then VMIG_DISCARD of the pages that never arrived or
 * were dirtied again (ENABLE before DISCARD: no fault can refill a dropped
 * page with zeroes).  The guest's faults on missing pages queue requests
 * the fault thread reads from the region fds (poll + read of struct
 * vmig_request; the module has coalesced them per page and stamped the
 * first fault's time).  Pages are placed with VMIG_PLACE_BATCH: atomic, and
 * -EEXIST for a page present already (never overwritten).  When every page
 * has arrived, VMIG_POSTCOPY_DISABLE makes the regions ordinary again.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vmig.h>

#include "postcopy_dst.h"

#define PAGE	WIRE_PAGE_SIZE

int pck_enable(struct pc_dst *pc)
{
	unsigned int i;

	for (i = 0; i < pc->mem->nr_regions; i++) {
		struct vmig_postcopy_enable en = { 0 };
		int fd = pc->memfd[i];

		if (ioctl(fd, VMIG_POSTCOPY_ENABLE, &en))
			return -errno;
		/*
		 * Requests are read after poll(); a PLACE may take one away
		 * meanwhile.  The flag is on the open file the VMM shares, where
		 * only a read() of requests would notice it.
		 */
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
			return -errno;
	}
	return 0;
}

int pck_requeue(struct pc_dst *pc)
{
	unsigned int i;

	for (i = 0; i < pc->mem->nr_regions; i++) {
		int fd = pc->memfd[i];

		if (ioctl(fd, VMIG_REQUEUE) < 0)
			return -errno;
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
			return -errno;
	}
	return 0;
}

void pck_disable(struct pc_dst *pc)
{
	unsigned int i;

	for (i = 0; i < pc->mem->nr_regions; i++)
		ioctl(pc->memfd[i], VMIG_POSTCOPY_DISABLE);
}

int pck_discard(struct pc_dst *pc, uint32_t region, uint64_t first, uint64_t n)
{
	struct vmig_discard d = { .offset = first * PAGE, .len = n * PAGE };

	while (ioctl(pc->memfd[region], VMIG_DISCARD, &d)) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * Place n pages of one region: ents[i] is the page, src[i] its data (NULL:
 * zeroes).  placed[i] tells which went in; the others were present already.
 */
int pck_place_batch(struct pc_dst *pc, uint32_t region, const uint64_t *pages,
		    uint8_t *const *src, unsigned int n, bool *placed, uint64_t *exist)
{
	struct vmig_place ents[WIRE_MAX_BATCH];
	struct vmig_place_batch b = { .entries = (uintptr_t)ents, .count = n };
	unsigned int i;

	if (!n)
		return 0;
	if (n > WIRE_MAX_BATCH)
		return -EINVAL;
	if (n == 1) {
		/* One page (a requested one, mostly): VMIG_PLACE, no entry array to copy. */
		struct vmig_place pl = {
			.offset = pages[0] * PAGE, .len = PAGE,
			.src = (uintptr_t)src[0], .flags = src[0] ? 0 : VMIG_PLACE_ZERO };

		placed[0] = !ioctl(pc->memfd[region], VMIG_PLACE, &pl);
		if (!placed[0] && errno != EEXIST)
			return -errno;
		if (!placed[0])
			__atomic_fetch_add(exist, 1, __ATOMIC_RELAXED);
		return 0;
	}
	for (i = 0; i < n; i++)
		ents[i] = (struct vmig_place){
			.offset = pages[i] * PAGE, .len = PAGE,
			.src = (uintptr_t)src[i], .flags = src[i] ? 0 : VMIG_PLACE_ZERO };
	/* Only a fatal signal interrupts it (-EINTR): no retry then. */
	if (ioctl(pc->memfd[region], VMIG_PLACE_BATCH, &b))
		return -errno;
	for (i = 0; i < n; i++)
		placed[i] = ents[i].placed == PAGE;
	__atomic_fetch_add(exist, b.exist, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Read what requests are queued on one region (nonblocking).  Returns the
 * number of records in req, 0 if none, or -errno; -ESHUTDOWN at end of
 * file (the region was aborted or left postcopy mode).
 */
int pck_read_requests(struct pc_dst *pc, uint32_t region, struct vmig_request *req,
		      unsigned int max)
{
	ssize_t n = read(pc->memfd[region], req, max * sizeof(*req));

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ESHUTDOWN;
	if (n % sizeof(*req))
		return -EIO;
	return n / sizeof(*req);
}
