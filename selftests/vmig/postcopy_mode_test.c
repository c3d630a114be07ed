// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy mode switched on an ordinary region, as a destination does at
 * the postcopy switch: pages written during precopy stay, VMIG_DISCARD
 * makes pages missing again, VMIG_POSTCOPY_ENABLE turns missing-page
 * faults into requests, VMIG_POSTCOPY_DISABLE makes the region ordinary
 * again (waiters get a zero page); ENABLE is a barrier against faults that
 * were zero-filling under the old mode; bad input changes nothing.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "vmig_test.h"
#include "postcopy_util.h"
#include "kselftest_harness.h"

static long ps;

static bool all_zero(const void *p)
{
	const volatile uint64_t *w = p;
	size_t i;

	for (i = 0; i < ps / 8; i++)
		if (w[i])
			return false;
	return true;
}

static int pc_enable(int fd)
{
	struct vmig_postcopy_enable en = { 0 };

	return ioctl(fd, VMIG_POSTCOPY_ENABLE, &en) ? -errno : 0;
}

static int pc_disable(int fd)
{
	return ioctl(fd, VMIG_POSTCOPY_DISABLE) ? -errno : 0;
}

static int discard(int fd, uint64_t offset, uint64_t len, uint64_t *dropped)
{
	struct vmig_discard d = { .offset = offset, .len = len, .discarded = 77 };
	int ret = ioctl(fd, VMIG_DISCARD, &d) ? -errno : 0;

	if (dropped)
		*dropped = d.discarded;
	return ret;
}

static struct vmig_stats stats(int fd)
{
	struct vmig_stats st;

	vmig_region_stats(fd, &st);
	return st;
}

/* Wait (at most 20 s) until @n missing faults were counted. */
static int wait_missing(int fd, uint64_t n)
{
	int i;

	for (i = 0; i < 20000; i++) {
		if (stats(fd).missing_faults >= n)
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

FIXTURE(pcmode) {
	int dev, fd;
	uint64_t npages;
	char *map;
};

FIXTURE_SETUP(pcmode)
{
	struct vmig_api api;
	uint64_t i;

	ps = vmig_page_size();
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, ioctl(self->dev, VMIG_GET_API, &api));
	if (!(api.features & VMIG_FEATURE_POSTCOPY_MODE))
		SKIP(return, "the module does not offer VMIG_FEATURE_POSTCOPY_MODE");
	self->npages = 64;
	/* An ordinary region, filled through its mapping as precopy does. */
	self->fd = vmig_region_new(self->dev, self->npages * ps, VMIG_REGION_NONBLOCK);
	ASSERT_LE(0, self->fd);
	self->map = vmig_region_map(self->fd, self->npages * ps, 0);
	ASSERT_NE(NULL, self->map);
	for (i = 0; i < self->npages; i++)
		vmig_pattern_fill(self->map + i * ps, i, 1);
}

FIXTURE_TEARDOWN(pcmode)
{
	if (self->map)
		munmap(self->map, self->npages * ps);
	if (self->fd >= 0)
		close(self->fd);
	close(self->dev);
}

TEST_F(pcmode, discarded_pages_become_requests_and_the_rest_stays)
{
	struct vmig_request req;
	struct pc_toucher t;
	uint64_t dropped = 0, i;
	struct vmig_stats st;

	ASSERT_EQ(0, pc_enable(self->fd));
	st = stats(self->fd);
	EXPECT_EQ(1, st.postcopy_on);
	ASSERT_EQ(0, discard(self->fd, 10 * ps, 3 * ps, &dropped));
	EXPECT_EQ(3, dropped);
	EXPECT_EQ(3, stats(self->fd).pages_discarded);
	EXPECT_EQ(self->npages - 3, stats(self->fd).pages_present);

	/* Pages not discarded keep their precopy data and fault no request. */
	for (i = 0; i < self->npages; i++)
		if (i < 10 || i > 12)
			EXPECT_EQ(0, vmig_pattern_errors(self->map + i * ps, i, 1, 0));
	EXPECT_EQ(0, stats(self->fd).requests);

	/* A discarded page is missing: the fault waits and one request comes. */
	pc_toucher_start(&t, self->map + 11 * ps + 8);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(11 * ps, req.offset);
	EXPECT_EQ(0, atomic_load(&t.done));
	ASSERT_EQ(0, vmig_place_page(self->fd, 11, 2));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 11 * ps, 11, 2, 0));
	/* A present page is never overwritten. */
	EXPECT_EQ(-EEXIST, vmig_place_page(self->fd, 11, 3));
	EXPECT_EQ(-EEXIST, vmig_place_page(self->fd, 20, 3));
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 20 * ps, 20, 1, 0));
	EXPECT_EQ(0, vmig_place_page(self->fd, 10, 2));
	EXPECT_EQ(0, vmig_place_page(self->fd, 12, 2));

	/* Every page there: back to an ordinary region, data kept. */
	ASSERT_EQ(0, pc_disable(self->fd));
	st = stats(self->fd);
	EXPECT_EQ(0, st.postcopy_on);
	EXPECT_EQ(1, st.requests);
	EXPECT_EQ(self->npages, st.pages_present);
	for (i = 10; i <= 12; i++)
		EXPECT_EQ(0, vmig_pattern_errors(self->map + i * ps, i, 2, 0));
}

TEST_F(pcmode, disable_wakes_a_waiting_fault_with_a_zero_page)
{
	struct vmig_request req;
	struct pc_toucher t;

	ASSERT_EQ(0, pc_enable(self->fd));
	ASSERT_EQ(0, discard(self->fd, 5 * ps, ps, NULL));
	pc_toucher_start(&t, self->map + 5 * ps + 16);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(5 * ps, req.offset);
	ASSERT_EQ(0, wait_missing(self->fd, 1));
	EXPECT_EQ(0, atomic_load(&t.done));
	ASSERT_EQ(0, pc_disable(self->fd));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, t.value);
	EXPECT_TRUE(all_zero(self->map + 5 * ps));
	EXPECT_EQ(0, stats(self->fd).postcopy_on);
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 6 * ps, 6, 1, 0));
}

TEST_F(pcmode, disable_then_ordinary_faults_zero_fill_without_requests)
{
	struct vmig_request req;

	ASSERT_EQ(0, pc_enable(self->fd));
	ASSERT_EQ(0, discard(self->fd, 0, 4 * ps, NULL));
	ASSERT_EQ(0, pc_disable(self->fd));
	EXPECT_TRUE(all_zero(self->map + 2 * ps));
	self->map[3 * ps] = 9;
	EXPECT_EQ(9, self->map[3 * ps]);
	EXPECT_EQ(0, stats(self->fd).requests);
	EXPECT_EQ(0, stats(self->fd).missing_faults);
	/* read() and ABORT belong to postcopy mode. */
	EXPECT_EQ(-1, read(self->fd, &req, sizeof(req)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_ABORT));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(pcmode, discard_in_an_ordinary_region_reads_back_zero)
{
	uint64_t dropped;

	ASSERT_EQ(0, discard(self->fd, 7 * ps, 2 * ps, &dropped));
	EXPECT_EQ(2, dropped);
	EXPECT_TRUE(all_zero(self->map + 7 * ps));
	EXPECT_TRUE(all_zero(self->map + 8 * ps));
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 9 * ps, 9, 1, 0));
	/* Discarding missing pages drops nothing. */
	ASSERT_EQ(0, discard(self->fd, 30 * ps, ps, NULL));
	ASSERT_EQ(0, discard(self->fd, 30 * ps, ps, &dropped));
	EXPECT_EQ(0, dropped);
}

TEST_F(pcmode, abort_then_enable_again_serves_requests)
{
	struct vmig_request req;
	struct pc_toucher t;

	ASSERT_EQ(0, pc_enable(self->fd));
	ASSERT_EQ(0, ioctl(self->fd, VMIG_ABORT));
	ASSERT_EQ(0, pc_disable(self->fd));
	ASSERT_EQ(0, pc_enable(self->fd));
	ASSERT_EQ(0, discard(self->fd, 40 * ps, ps, NULL));
	pc_toucher_start(&t, self->map + 40 * ps);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(40 * ps, req.offset);
	ASSERT_EQ(0, vmig_place_page(self->fd, 40, 5));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 40 * ps, 40, 5, 0));
}

TEST_F(pcmode, bad_input_is_refused_and_changes_nothing)
{
	struct vmig_postcopy_enable en = { 0 };
	struct vmig_discard d = { 0 };
	struct vmig_dirty_enable de = { 0 };
	uint64_t size = self->npages * ps, i;

	en.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_POSTCOPY_ENABLE, &en));
	EXPECT_EQ(EINVAL, errno);
	en.flags = 0;
	en.reserved = 1;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_POSTCOPY_ENABLE, &en));
	EXPECT_EQ(EINVAL, errno);
	en.reserved = 0;
	en.reserved2 = 1;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_POSTCOPY_ENABLE, &en));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_POSTCOPY_ENABLE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, stats(self->fd).postcopy_on);
	EXPECT_EQ(-ENOENT, pc_disable(self->fd));

	ASSERT_EQ(0, pc_enable(self->fd));
	EXPECT_EQ(-EBUSY, pc_enable(self->fd));

	EXPECT_EQ(-EINVAL, discard(self->fd, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, discard(self->fd, 1, ps, NULL));
	EXPECT_EQ(-EINVAL, discard(self->fd, 0, ps + 1, NULL));
	EXPECT_EQ(-EINVAL, discard(self->fd, size, ps, NULL));
	EXPECT_EQ(-EINVAL, discard(self->fd, size - ps, 2 * ps, NULL));
	EXPECT_EQ(-EINVAL, discard(self->fd, ps, UINT64_MAX & ~(ps - 1), NULL));
	EXPECT_EQ(-EINVAL, discard(self->fd, UINT64_MAX & ~(ps - 1), 2 * ps, NULL));
	d.len = ps;
	d.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_DISCARD, &d));
	EXPECT_EQ(EINVAL, errno);
	d.flags = 0;
	d.reserved = 1;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_DISCARD, &d));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_DISCARD, (void *)8));
	EXPECT_EQ(EFAULT, errno);

	/* Region ioctls on the device and vice versa. */
	EXPECT_EQ(-1, ioctl(self->dev, VMIG_POSTCOPY_ENABLE, &en));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->dev, VMIG_POSTCOPY_DISABLE));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->dev, VMIG_DISCARD, &d));
	EXPECT_EQ(ENOTTY, errno);

	/* Nothing was dropped by any of them. */
	EXPECT_EQ(0, stats(self->fd).pages_discarded);
	EXPECT_EQ(self->npages, stats(self->fd).pages_present);
	ASSERT_EQ(0, pc_disable(self->fd));

	/* Dirty logging on: DISCARD would change data behind the log. */
	ASSERT_EQ(0, ioctl(self->fd, VMIG_DIRTY_ENABLE, &de));
	EXPECT_EQ(-EBUSY, discard(self->fd, 0, ps, NULL));
	ASSERT_EQ(0, ioctl(self->fd, VMIG_DIRTY_DISABLE));
	for (i = 0; i < self->npages; i++)
		EXPECT_EQ(0, vmig_pattern_errors(self->map + i * ps, i, 1, 0));
}

/* --- ENABLE is a barrier against zero-filling faults --------------------- */

struct filler {
	char *map;
	uint64_t npages;
	atomic_int stop;
	pthread_t thread;
};

/* Touch page after page, so most touches zero-fill a missing page. */
static void *filler_main(void *arg)
{
	struct filler *f = arg;
	uint64_t i = 0;

	while (!atomic_load(&f->stop)) {
		(void)*(volatile char *)(f->map + (i % f->npages) * ps);
		i += 7;
	}
	return NULL;
}

TEST(enable_leaves_no_zero_page_behind_a_later_discard)
{
	uint64_t npages = 2048, iter, leaked = 0;
	struct filler f[2];
	int dev, fd, k;
	char *map;

	ps = vmig_page_size();
	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, npages * ps, VMIG_REGION_NONBLOCK);
	ASSERT_LE(0, fd);
	map = vmig_region_map(fd, npages * ps, 0);
	ASSERT_NE(NULL, map);
	for (iter = 0; iter < 30; iter++) {
		for (k = 0; k < 2; k++) {
			memset(&f[k], 0, sizeof(f[k]));
			f[k].map = map + k * ps;
			f[k].npages = npages - 1;
			ASSERT_EQ(0, pthread_create(&f[k].thread, NULL, filler_main, &f[k]));
		}
		usleep(2000);
		ASSERT_EQ(0, pc_enable(fd));
		ASSERT_EQ(0, discard(fd, 0, npages * ps, NULL));
		/* In postcopy mode nothing but PLACE may make a page present. */
		usleep(1000);
		leaked += stats(fd).pages_present;
		for (k = 0; k < 2; k++)
			atomic_store(&f[k].stop, 1);
		/* The fillers wait for pages; DISABLE lets them zero-fill. */
		ASSERT_EQ(0, pc_disable(fd));
		for (k = 0; k < 2; k++)
			pthread_join(f[k].thread, NULL);
		ASSERT_EQ(0, discard(fd, 0, npages * ps, NULL));
	}
	EXPECT_EQ(0, leaked);
	munmap(map, npages * ps);
	close(fd);
	close(dev);
}

TEST_HARNESS_MAIN
