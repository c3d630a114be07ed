// SPDX-License-Identifier: GPL-2.0
/*
 * VMIG_REQUEUE, what a destination helper replacing a dead one relies on:
 * a request already read whose page is still missing is read again after
 * it, its fault keeps waiting and gets the page placed later; an unread
 * request is not doubled; a placed page is not asked again; outside
 * postcopy mode it fails.  And the presence the new helper rebuilds its
 * received bitmap from: mincore on a mapping of the region shows exactly
 * the placed pages.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "vmig_test.h"
#include "postcopy_util.h"
#include "kselftest_harness.h"

static long ps;

static long requeue(int fd)
{
	long n = ioctl(fd, VMIG_REQUEUE);

	return n < 0 ? -errno : n;
}

FIXTURE(requeue) {
	int dev, fd;
	uint64_t npages;
	char *map;
};

FIXTURE_SETUP(requeue)
{
	struct vmig_api api;

	ps = vmig_page_size();
	self->fd = -1;
	self->map = NULL;
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, ioctl(self->dev, VMIG_GET_API, &api));
	if (!(api.features & VMIG_FEATURE_REQUEUE))
		SKIP(return, "the module does not offer VMIG_FEATURE_REQUEUE");
	self->npages = 16;
	self->fd = vmig_region_new(self->dev, self->npages * ps,
				   VMIG_REGION_POSTCOPY | VMIG_REGION_NONBLOCK);
	ASSERT_LE(0, self->fd);
	self->map = vmig_region_map(self->fd, self->npages * ps, 0);
	ASSERT_NE(NULL, self->map);
}

FIXTURE_TEARDOWN(requeue)
{
	if (self->map)
		munmap(self->map, self->npages * ps);
	if (self->fd >= 0)
		close(self->fd);
	close(self->dev);
}

TEST_F(requeue, a_read_request_is_read_again_and_its_fault_gets_the_page)
{
	struct vmig_request req;
	struct pc_toucher t;
	uint64_t want[512];

	pc_toucher_start(&t, self->map + 3 * ps);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(3 * ps, req.offset);
	/* The helper that read it died: nothing else would ask for page 3. */
	EXPECT_EQ(1, requeue(self->fd));
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(3 * ps, req.offset);
	EXPECT_EQ(0, atomic_load(&t.done));
	ASSERT_EQ(0, vmig_place_page(self->fd, 3, 7));
	pthread_join(t.thread, NULL);
	vmig_pattern_fill(want, 3, 7);
	EXPECT_EQ(want[0], t.value);
	/* Placed: nothing left to ask for. */
	EXPECT_EQ(0, requeue(self->fd));
	EXPECT_EQ(-1, read(self->fd, &req, sizeof(req)));
	EXPECT_EQ(EAGAIN, errno);
}

TEST_F(requeue, an_unread_request_is_not_doubled)
{
	struct vmig_request req;
	struct pc_toucher t;

	pc_toucher_start(&t, self->map + 5 * ps);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(5 * ps, req.offset);
	EXPECT_EQ(1, requeue(self->fd));
	EXPECT_EQ(0, requeue(self->fd));	/* queued, not read yet */
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(5 * ps, req.offset);
	EXPECT_EQ(-1, read(self->fd, &req, sizeof(req)));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, vmig_place_page(self->fd, 5, 1));
	pthread_join(t.thread, NULL);
}

TEST_F(requeue, mincore_shows_exactly_the_placed_pages)
{
	unsigned char vec[16];
	uint64_t i;

	ASSERT_EQ(0, vmig_place_page(self->fd, 1, 1));
	ASSERT_EQ(0, vmig_place_page(self->fd, 2, 1));
	ASSERT_EQ(0, vmig_place(self->fd, 9 * ps, ps, NULL, VMIG_PLACE_ZERO, NULL));
	ASSERT_EQ(0, mincore(self->map, self->npages * ps, vec));
	for (i = 0; i < self->npages; i++)
		EXPECT_EQ(i == 1 || i == 2 || i == 9, vec[i] & 1);
}

TEST_F(requeue, outside_postcopy_mode_it_fails)
{
	ASSERT_EQ(0, ioctl(self->fd, VMIG_POSTCOPY_DISABLE));
	EXPECT_EQ(-EINVAL, requeue(self->fd));
	EXPECT_EQ(-ENOTTY, ioctl(self->dev, VMIG_REQUEUE) ? -errno : 0);
}

TEST_HARNESS_MAIN
