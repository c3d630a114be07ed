// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The uffd backend at a postcopy destination: guest RAM is the VMM's
 * memfds, and the VMM registers them for MISSING faults on a userfaultfd it
 * passes here (vmig_ctl_postcopy).  A page is missing when its memfd has a
 * hole: discarding punches one (the guest is stopped, nothing is
 * registered yet, so nothing needs enabling first).  The guest's faults are
 * read from that uffd as uffd_msg records, in the VMM's addresses; pages
 * go in with UFFDIO_COPY / UFFDIO_ZEROPAGE: atomic, EEXIST for a page
 * present already (never overwritten), waking the faulting threads.  A
 * fault on a page placed meanwhile only needs UFFDIO_WAKE.  Faults a dead
 * helper had read are nowhere but in its memory: a helper taking over wakes
 * every waiter, so each touches its page again and, still missing, faults
 * anew.  Nothing to undo at the end: once every page is here nothing
 * faults.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ram_uffd.h"

#define UFFD_MSGS	64	/* fault messages per read() */

static int uffd_of(const struct vmig_ram *ram)
{
	return ((const struct uffd_priv *)ram->priv)->missing_fd;
}

static int uffd_pc_discard(struct vmig_ram *ram, unsigned int region, uint64_t first,
			   uint64_t n)
{
	if (fallocate(ram->regions[region].fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      first * RAM_PAGE_SIZE, n * RAM_PAGE_SIZE))
		return -errno;
	return 0;
}

static int uffd_pc_register(struct vmig_ram *ram, int timeout_ms)
{
	struct uffd_priv *p = ram->priv;
	int fd = vmig_ctl_postcopy(ram->ctl, timeout_ms);

	if (fd <= 0)
		return fd ? fd : -EPROTO;	/* 0: no uffd, as for vmig.ko regions */
	/* poll() on a blocking userfaultfd reports only EPOLLERR. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (p->missing_fd >= 0)
		close(p->missing_fd);
	p->missing_fd = fd;
	return 0;
}

static int wake(const struct vmig_ram *ram, uint64_t start, uint64_t len)
{
	struct uffdio_range r = { .start = start, .len = len };

	return ioctl(uffd_of(ram), UFFDIO_WAKE, &r) ? -errno : 0;
}

static int uffd_pc_requeue(struct vmig_ram *ram)
{
	unsigned int i;
	int r;

	for (i = 0; i < ram->nr_regions; i++) {
		r = wake(ram, ram->regions[i].vmm_addr, ram->regions[i].pages << RAM_PAGE_SHIFT);
		if (r)
			return r;
	}
	return 0;
}

static int uffd_pc_fds(const struct vmig_ram *ram, int *fds, unsigned int max)
{
	if (!max || uffd_of(ram) < 0)
		return 0;
	fds[0] = uffd_of(ram);
	return 1;
}

static int uffd_pc_poll_error(const struct vmig_ram *ram, unsigned int i, short revents)
{
	(void)ram, (void)i;
	return revents & (POLLERR | POLLHUP) ? -EIO : 0;
}

static int uffd_pc_requests(struct vmig_ram *ram, struct vmig_ram_request *out,
			    unsigned int max)
{
	struct uffd_msg msgs[UFFD_MSGS];
	size_t room = max < UFFD_MSGS ? max : UFFD_MSGS;
	ssize_t n = read(uffd_of(ram), msgs, room * sizeof(msgs[0])), i;
	int got = 0;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
		uint64_t addr, page;
		int reg = uffd_msg_page(ram, &msgs[i], &addr, &page);

		if (reg == -2)
			continue;
		if (reg < 0)
			return -EFAULT;
		out[got++] = (struct vmig_ram_request){ .region = reg, .page = page };
	}
	return got;
}

static void uffd_pc_wake(struct vmig_ram *ram, unsigned int region, uint64_t page)
{
	wake(ram, ram->regions[region].vmm_addr + (page << RAM_PAGE_SHIFT), RAM_PAGE_SIZE);
}

/*
 * n pages from page on, in one UFFDIO_COPY (src: n pages of data) or
 * UFFDIO_ZEROPAGE (src NULL): how many went in from the first, or -errno
 * for the first.  The kernel stops at the first page it cannot place (one
 * present already, or an error); what it placed before that is mapped and
 * its waiters woken, and it reports -EAGAIN with the bytes it did: a short
 * count, and the next call, starting at that page, says why.
 */
static long place_run(struct vmig_ram *ram, unsigned int region, uint64_t page,
		      const void *src, unsigned int n)
{
	uint64_t dst = ram->regions[region].vmm_addr + (page << RAM_PAGE_SHIFT);
	uint64_t len = (uint64_t)n << RAM_PAGE_SHIFT;
	int fd = uffd_of(ram);

	for (;;) {
		int64_t done;
		int r;

		if (src) {
			struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = len };

			r = ioctl(fd, UFFDIO_COPY, &c);
			done = c.copy;
		} else {
			struct uffdio_zeropage z = { .range = { .start = dst, .len = len } };

			r = ioctl(fd, UFFDIO_ZEROPAGE, &z);
			done = z.zeropage;
		}
		if (!r)
			return n;
		if (done > 0)
			return done >> RAM_PAGE_SHIFT;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

static int uffd_pc_place(struct vmig_ram *ram, unsigned int region, uint64_t page,
			 const void *src)
{
	long r = place_run(ram, region, page, src, 1);

	return r < 0 ? (int)r : 0;
}

/*
 * A uffd has no batch of scattered pages, but one call places a run of
 * them: pages that follow each other in the guest, with data that follows
 * each other in the buffer (or all zero).  The background stream sends runs;
 * a call saves most of the cost of a page's own ioctl (issue 19: 1 GiB
 * placed in runs of 4 took 0.43 against 0.59 CPU-s on this host).
 */
static int uffd_pc_place_batch(struct vmig_ram *ram, unsigned int region,
			       const uint64_t *pages, uint8_t *const *src, unsigned int n,
			       bool *placed)
{
	unsigned int i = 0, j, k;
	int exist = 0;

	while (i < n) {
		long r;

		for (j = i + 1; j < n && pages[j] == pages[i] + (j - i) &&
		     (src[i] ? src[j] == src[i] + (size_t)(j - i) * RAM_PAGE_SIZE : !src[j]); j++)
			;
		r = place_run(ram, region, pages[i], src[i], j - i);
		/* A range across two of the VMM's mappings is refused whole. */
		if (r < 0 && r != -EEXIST && j - i > 1)
			r = place_run(ram, region, pages[i], src[i], 1);
		if (r == -EEXIST) {
			placed[i++] = false;
			exist++;
			continue;
		}
		if (r < 0)
			return (int)r;
		for (k = 0; k < r; k++)
			placed[i++] = true;
	}
	return exist;
}

const struct ram_pc_ops ram_uffd_pc_ops = {
	.discard = uffd_pc_discard,
	.register_vmm = uffd_pc_register,
	.requeue = uffd_pc_requeue,
	.fds = uffd_pc_fds,
	.poll_error = uffd_pc_poll_error,
	.requests = uffd_pc_requests,
	.wake = uffd_pc_wake,
	.place = uffd_pc_place,
	.place_batch = uffd_pc_place_batch,
};
