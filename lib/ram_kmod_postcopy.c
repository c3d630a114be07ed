// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The kmod backend at a postcopy destination: the vmig.ko regions serve the
 * missing pages themselves, so the helper needs nothing from the VMM (its
 * registration only tells it that postcopy began).
 *
 * At the switch (guest stopped, receivers parked): VMIG_POSTCOPY_ENABLE on
 * every region first, then VMIG_DISCARD of the pages that never arrived or
 * were dirtied again (ENABLE before DISCARD: no fault can refill a dropped
 * page with zeroes).  The guest's faults on missing pages queue requests
 * read from the region fds (poll + read of struct vmig_request; the module
 * has coalesced them per page and stamped the first fault's time).  Pages
 * are placed with VMIG_PLACE(_BATCH): atomic, -EEXIST for a page present
 * already (never overwritten), and placing wakes the faulting threads.  A
 * helper taking over from a dead one gets the requests that one had read
 * back with VMIG_REQUEUE.  When every page has arrived,
 * VMIG_POSTCOPY_DISABLE makes the regions ordinary again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vmig.h>

#include "ram.h"

#define KMOD_BATCH	128	/* entries per VMIG_PLACE_BATCH, requests per read() */

/*
 * Requests are read after poll(); a PLACE may take one away meanwhile.  The
 * flag is on the open file the VMM shares, where only a read() of requests
 * would notice it.
 */
static int set_nonblock(int fd)
{
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) ? -errno : 0;
}

static int kmod_pc_enable(struct vmig_ram *ram)
{
	unsigned int i;
	int r;

	for (i = 0; i < ram->nr_regions; i++) {
		struct vmig_postcopy_enable en = { 0 };

		if (ioctl(ram->regions[i].fd, VMIG_POSTCOPY_ENABLE, &en))
			return -errno;
		r = set_nonblock(ram->regions[i].fd);
		if (r)
			return r;
	}
	return 0;
}

static int kmod_pc_discard(struct vmig_ram *ram, unsigned int region, uint64_t first,
			   uint64_t n)
{
	struct vmig_discard d = { .offset = first * RAM_PAGE_SIZE, .len = n * RAM_PAGE_SIZE };

	while (ioctl(ram->regions[region].fd, VMIG_DISCARD, &d)) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* On regions the VMM registers nothing: no userfaultfd may come back. */
static int kmod_pc_register(struct vmig_ram *ram, int timeout_ms)
{
	int fd = vmig_ctl_postcopy(ram->ctl, timeout_ms);

	if (fd > 0) {
		close(fd);
		return -EPROTO;
	}
	return fd;
}

static int kmod_pc_requeue(struct vmig_ram *ram)
{
	unsigned int i;
	int r;

	for (i = 0; i < ram->nr_regions; i++) {
		if (ioctl(ram->regions[i].fd, VMIG_REQUEUE) < 0)
			return -errno;
		r = set_nonblock(ram->regions[i].fd);
		if (r)
			return r;
	}
	return 0;
}

static int kmod_pc_fds(const struct vmig_ram *ram, int *fds, unsigned int max)
{
	unsigned int i;

	for (i = 0; i < ram->nr_regions && i < max; i++)
		fds[i] = ram->regions[i].fd;
	return i;
}

/* EPOLLERR: the region left postcopy mode.  EPOLLHUP (aborted) leaves EOF for read(). */
static int kmod_pc_poll_error(const struct vmig_ram *ram, unsigned int i, short revents)
{
	(void)ram, (void)i;
	return revents & POLLERR ? -EIO : 0;
}

/* Region by region; time_ns is the first fault's. */
static int kmod_pc_requests(struct vmig_ram *ram, struct vmig_ram_request *out,
			    unsigned int max)
{
	struct vmig_request req[KMOD_BATCH];
	unsigned int reg, got = 0;

	for (reg = 0; reg < ram->nr_regions && got < max; reg++) {
		size_t room = max - got < KMOD_BATCH ? max - got : KMOD_BATCH;
		ssize_t n = read(ram->regions[reg].fd, req, room * sizeof(req[0]));
		ssize_t i;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ESHUTDOWN;
		if (n % sizeof(req[0]))
			return -EIO;
		for (i = 0; i < n / (ssize_t)sizeof(req[0]); i++) {
			uint64_t page = req[i].offset / RAM_PAGE_SIZE;

			if (req[i].offset % RAM_PAGE_SIZE || page >= ram->regions[reg].pages)
				return -EFAULT;
			out[got++] = (struct vmig_ram_request){
				.region = reg, .page = page, .fault_ns = req[i].time_ns,
				.sent = req[i].flags & VMIG_REQ_SENT };
		}
	}
	return got;
}

/* Region by region; detaching (fd -1) goes through all of them. */
static int kmod_pc_set_sink(struct vmig_ram *ram, int fd, const void *rec, uint32_t len,
			    uint32_t region_at, uint32_t page_at)
{
	unsigned int i, k;
	int r = 0;

	for (i = 0; i < ram->nr_regions; i++) {
		struct vmig_sink s = { .fd = fd };

		if (fd >= 0) {
			s.len = len;
			s.page_at = page_at;
			memcpy(s.record, rec, len);
			for (k = 0; k < 4; k++)
				s.record[region_at + k] = i >> (8 * k);
		}
		if (ioctl(ram->regions[i].fd, VMIG_POSTCOPY_SET_SINK, &s) && !r)
			r = errno == ENOTTY ? -EOPNOTSUPP : -errno;
	}
	/* Half attached is no use: the caller writes requests itself then. */
	if (r && fd >= 0)
		kmod_pc_set_sink(ram, -1, NULL, 0, 0, 0);
	return r;
}

static struct vmig_place place_entry(uint64_t page, const void *src)
{
	return (struct vmig_place){ .offset = page * RAM_PAGE_SIZE, .len = RAM_PAGE_SIZE,
				    .src = (uintptr_t)src, .flags = src ? 0 : VMIG_PLACE_ZERO };
}

/* One page (a requested one, mostly): VMIG_PLACE, no entry array to copy. */
static int kmod_pc_place(struct vmig_ram *ram, unsigned int region, uint64_t page,
			 const void *src)
{
	struct vmig_place pl = place_entry(page, src);

	return ioctl(ram->regions[region].fd, VMIG_PLACE, &pl) ? -errno : 0;
}

static int kmod_pc_place_batch(struct vmig_ram *ram, unsigned int region,
			       const uint64_t *pages, uint8_t *const *src, unsigned int n,
			       bool *placed)
{
	struct vmig_place ents[KMOD_BATCH];
	unsigned int done, i, k;
	int exist = 0, r;

	if (n == 1) {
		r = kmod_pc_place(ram, region, pages[0], src[0]);
		placed[0] = !r;
		return r == -EEXIST ? 1 : r;
	}
	for (done = 0; done < n; done += k) {
		struct vmig_place_batch b = { .entries = (uintptr_t)ents };

		k = n - done < KMOD_BATCH ? n - done : KMOD_BATCH;
		for (i = 0; i < k; i++)
			ents[i] = place_entry(pages[done + i], src[done + i]);
		b.count = k;
		/* Only a fatal signal interrupts it (-EINTR): no retry then. */
		if (ioctl(ram->regions[region].fd, VMIG_PLACE_BATCH, &b))
			return -errno;
		for (i = 0; i < k; i++)
			placed[done + i] = ents[i].placed == RAM_PAGE_SIZE;
		exist += b.exist;
	}
	return exist;
}

static void kmod_pc_disable(struct vmig_ram *ram)
{
	unsigned int i;

	for (i = 0; i < ram->nr_regions; i++)
		ioctl(ram->regions[i].fd, VMIG_POSTCOPY_DISABLE);
}

const struct ram_pc_ops ram_kmod_pc_ops = {
	.enable = kmod_pc_enable,
	.discard = kmod_pc_discard,
	.register_vmm = kmod_pc_register,
	.requeue = kmod_pc_requeue,
	.fds = kmod_pc_fds,
	.poll_error = kmod_pc_poll_error,
	.requests = kmod_pc_requests,
	.set_sink = kmod_pc_set_sink,
	.place = kmod_pc_place,
	.place_batch = kmod_pc_place_batch,
	.disable = kmod_pc_disable,
};
