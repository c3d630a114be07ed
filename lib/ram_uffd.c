// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The uffd backend: guest RAM is the VMM's memfds; writes are tracked by
 * userfaultfd write-protection registered in the VMM (see uffd_track.c) and
 * driven from here through the passed uffd.
 *
 * Async (UFFD_FEATURE_WP_ASYNC): a write to a protected page un-protects it
 * in the kernel without a fault message.  Harvest is PAGEMAP_SCAN on the
 * VMM's /proc/<pid>/pagemap with PM_SCAN_WP_MATCHING: it reports written
 * pages and protects them again in the same walk.  The helper scans (not the
 * VMM on request): one ioctl, no round trip, and the VMM needs no code for it.
 *
 * Sync: each first write to a protected page blocks the writer and queues a
 * fault; the fault thread sets the page's bit, then un-protects and wakes.
 * Harvest exchanges each bitmap word with zero, then protects the pages it
 * took, then reports them.  wp_lock makes "mark, un-protect" (fault thread)
 * and "take, protect" (harvest) one step each against the other: were a
 * harvest to take a bit between the fault thread's mark and its un-protect,
 * its protect would be undone at once and the write after it lost (no bit,
 * no protection).  The bit must come before the un-protect all the same:
 * the last harvest after the VMM stopped has to see every write let through.
 *
 * Correctness rule for both: a harvested range is protected again before
 * it is reported, so its data, read afterwards, is at least as new as the
 * write that dirtied it; a later write is caught by the next harvest.
 * Initially every page is protected once (UFFDIO_WRITEPROTECT), which the
 * scan needs on shmem (an unprotected page reads as written).
 *
 * Postcopy destination: lib/ram_uffd_postcopy.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "clock.h"
#include "ram_uffd.h"

static int uffd_wp(int uffd, uint64_t start, uint64_t len, bool protect)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = start, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	while (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp)) {
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * For the tests only (selftests/helper/ram_test.c, docs/testing.md):
 * VMIG_TEST_WP_HOLD=PAGE:US keeps the fault thread US microseconds between
 * marking page PAGE of region 0 and un-protecting it, to open the window a
 * racing harvest would fall into.
 */
static void test_hold_parse(struct uffd_priv *p)
{
	const char *v = getenv("VMIG_TEST_WP_HOLD");
	unsigned long long page;
	unsigned int us;

	p->test_hold_page = UINT64_MAX;
	if (v && sscanf(v, "%llu:%u", &page, &us) == 2 && us <= 1000000) {
		p->test_hold_page = page;
		p->test_hold_us = us;
	}
}

static void *fault_thread_fn(void *arg)
{
	struct vmig_ram *ram = arg;
	struct uffd_priv *p = ram->priv;
	struct uffd_msg msgs[64];

	for (;;) {
		struct pollfd pf[2] = {
			{ .fd = p->uffd, .events = POLLIN },
			{ .fd = p->stop_fd, .events = POLLIN },
		};
		ssize_t n;
		int i;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		if (pf[0].revents & (POLLERR | POLLHUP))
			break;
		n = read(p->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		pthread_mutex_lock(&p->wp_lock);
		for (i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
			uint64_t addr, page;
			int reg = uffd_msg_page(ram, &msgs[i], &addr, &page);

			if (reg == -2)
				continue;
			if (reg >= 0)
				atomic_fetch_or(&p->dirty[reg][page / 64], 1ull << (page % 64));
			atomic_fetch_add(&p->wp_faults, 1);
			if (reg == 0 && page == p->test_hold_page)
				usleep(p->test_hold_us);
			/* Mark first, then let the write through. */
			uffd_wp(p->uffd, addr, RAM_PAGE_SIZE, false);
		}
		pthread_mutex_unlock(&p->wp_lock);
	}
	return NULL;
}

struct protect_ctx {
	int uffd;
	uint64_t base;
	unsigned int runs;
};

static int count_run(void *arg, unsigned int reg, uint64_t first, uint64_t n)
{
	(void)reg, (void)first, (void)n;
	((struct protect_ctx *)arg)->runs++;
	return 0;
}

static int protect_run(void *arg, unsigned int reg, uint64_t first, uint64_t n)
{
	struct protect_ctx *pc = arg;

	(void)reg;
	return uffd_wp(pc->uffd, pc->base + (first << RAM_PAGE_SHIFT), n << RAM_PAGE_SHIFT, true);
}

/*
 * Take each word's bits (atomic exchange), protect what was taken, then
 * report it.  Many scattered runs: one ioctl over the whole region is
 * cheaper than one per run, and protecting a clean page again is harmless
 * (a write racing with it faults once more and is marked for next time).
 */
static int harvest_sync(struct vmig_ram *ram, vmig_range_fn fn, void *arg, bool final)
{
	struct uffd_priv *p = ram->priv;
	unsigned int reg;

	for (reg = 0; reg < ram->nr_regions; reg++) {
		const struct ram_region *r = &ram->regions[reg];
		uint64_t words = (r->pages + 63) / 64, w;
		struct protect_ctx pc = { .uffd = p->uffd, .base = r->vmm_addr };
		int ret = 0;

		pthread_mutex_lock(&p->wp_lock);
		for (w = 0; w < words; w++)
			p->taken[reg][w] = atomic_exchange(&p->dirty[reg][w], 0);
		ram_for_each_run(p->taken[reg], r->pages, reg, count_run, &pc);
		if (final)
			;	/* the last harvest: nothing to re-arm */
		else if (pc.runs > 64)
			ret = uffd_wp(p->uffd, r->vmm_addr, r->pages << RAM_PAGE_SHIFT, true);
		else if (pc.runs)
			ret = ram_for_each_run(p->taken[reg], r->pages, reg, protect_run, &pc);
		pthread_mutex_unlock(&p->wp_lock);
		if (!pc.runs)
			continue;
		if (!ret)
			ret = ram_for_each_run(p->taken[reg], r->pages, reg, fn, arg);
		if (ret)
			return ret;
	}
	return 0;
}

/* final: scan without write-protecting what it finds (the last harvest). */
static int harvest_async(struct vmig_ram *ram, vmig_range_fn fn, void *arg, bool final)
{
	struct uffd_priv *p = ram->priv;
	unsigned int reg;

	for (reg = 0; reg < ram->nr_regions; reg++) {
		const struct ram_region *r = &ram->regions[reg];
		uint64_t start = r->vmm_addr, end = r->vmm_addr + (r->pages << RAM_PAGE_SHIFT);

		while (start < end) {
			struct pm_scan_arg a = {
				.size = sizeof(a),
				.flags = PM_SCAN_CHECK_WPASYNC |
					 (final ? 0 : PM_SCAN_WP_MATCHING),
				.start = start, .end = end,
				.vec = (uintptr_t)p->vec, .vec_len = SCAN_VEC_LEN,
				.category_mask = PAGE_IS_WRITTEN,
				.return_mask = PAGE_IS_WRITTEN,
			};
			long n = ioctl(p->pagemap, PAGEMAP_SCAN, &a), i;

			if (n < 0) {
				if (errno == EINTR || errno == EAGAIN)
					continue;
				return -errno;
			}
			for (i = 0; i < n; i++) {
				uint64_t s = p->vec[i].start, e = p->vec[i].end;
				int ret;

				if (s < start || e > end || s >= e)
					return -EIO;
				ret = fn(arg, reg, (s - r->vmm_addr) >> RAM_PAGE_SHIFT,
					 (e - s) >> RAM_PAGE_SHIFT);
				if (ret)
					return ret;
			}
			/* walk_end can be wrong when the vector fills: go on from the last region. */
			if (n < SCAN_VEC_LEN)
				break;
			start = p->vec[n - 1].end;
		}
	}
	return 0;
}

static int uffd_harvest(struct vmig_ram *ram, vmig_range_fn fn, void *arg, bool final)
{
	uint64_t t0 = now_ns();
	int ret;

	ret = ram->mode == VMIG_TRACK_ASYNC ? harvest_async(ram, fn, arg, final) :
					      harvest_sync(ram, fn, arg, final);
	ram->stats.harvests++;
	ram->stats.harvest_ns += now_ns() - t0;
	ram->stats.wp_faults = atomic_load(&((struct uffd_priv *)ram->priv)->wp_faults);
	return ret;
}

static int uffd_track_start(struct vmig_ram *ram, enum vmig_track mode, int timeout_ms)
{
	struct uffd_priv *p = ram->priv;
	enum vmig_track chosen;
	unsigned int i;
	int ret;

	if (p->uffd >= 0)
		return -EBUSY;
	if (mode == VMIG_TRACK_AUTO) {
		struct vmig_uffd_info info;

		/* The helper scans, so it decides whether PAGEMAP_SCAN is usable. */
		mode = !vmig_uffd_probe(&info) && info.wp_async && info.pagemap_scan ?
		       VMIG_TRACK_ASYNC : VMIG_TRACK_SYNC;
	}
	if (mode == VMIG_TRACK_ASYNC) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/pagemap", vmig_ctl_vmm_pid(ram->ctl));
		p->pagemap = open(path, O_RDONLY | O_CLOEXEC);
		if (p->pagemap < 0)
			return -errno;
	} else {
		for (i = 0; i < ram->nr_regions; i++) {
			p->dirty[i] = calloc((ram->regions[i].pages + 63) / 64, sizeof(uint64_t));
			p->taken[i] = calloc((ram->regions[i].pages + 63) / 64, sizeof(uint64_t));
			if (!p->dirty[i] || !p->taken[i])
				return -ENOMEM;
		}
		p->stop_fd = eventfd(0, EFD_CLOEXEC);
		if (p->stop_fd < 0)
			return -errno;
		test_hold_parse(p);
	}
	ret = vmig_ctl_track(ram->ctl, mode, timeout_ms, &chosen);
	if (ret < 0)
		return ret;
	p->uffd = ret;
	/* poll() on a blocking userfaultfd reports only EPOLLERR. */
	fcntl(p->uffd, F_SETFL, fcntl(p->uffd, F_GETFL) | O_NONBLOCK);
	if (mode == VMIG_TRACK_SYNC) {
		ret = -pthread_create(&p->fault_thread, NULL, fault_thread_fn, ram);
		if (ret)
			return ret;
		p->fault_thread_running = true;
	}
	for (i = 0; i < ram->nr_regions; i++) {
		ret = uffd_wp(p->uffd, ram->regions[i].vmm_addr,
			      ram->regions[i].pages << RAM_PAGE_SHIFT, true);
		if (ret)
			return ret;
	}
	ram->mode = chosen;
	return 0;
}

static void uffd_close(struct vmig_ram *ram)
{
	struct uffd_priv *p = ram->priv;
	unsigned int i;

	if (p->fault_thread_running) {
		uint64_t one = 1;

		/*
		 * stop_fd is a blocking eventfd we own: the write can only be
		 * interrupted, not lost.  The thread uses p and ram: join it
		 * before either goes (a detached thread would outlive them).
		 */
		while (write(p->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		pthread_join(p->fault_thread, NULL);
	}
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	if (p->pagemap >= 0)
		close(p->pagemap);
	if (p->uffd >= 0)
		close(p->uffd);
	if (p->missing_fd >= 0)
		close(p->missing_fd);
	for (i = 0; i < VMM_MAX_REGIONS; i++) {
		free(p->dirty[i]);
		free(p->taken[i]);
	}
	pthread_mutex_destroy(&p->wp_lock);
	free(p);
}

static const struct ram_ops uffd_ops = {
	.name = "uffd",
	.read_file = true,
	.track_start = uffd_track_start,
	.harvest = uffd_harvest,
	.place = ram_place_copy,
	.close = uffd_close,
	.pc = &ram_uffd_pc_ops,
};

struct vmig_ram *vmig_ram_open_uffd(struct vmig_ctl *ctl)
{
	struct vmig_ram *ram = ram_new(&uffd_ops, sizeof(struct uffd_priv));
	struct uffd_priv *p;

	if (!ram)
		return NULL;
	p = ram->priv;
	p->uffd = p->pagemap = p->stop_fd = p->missing_fd = -1;
	pthread_mutex_init(&p->wp_lock, NULL);
	return ram_open_regions(ram, ctl);
}
