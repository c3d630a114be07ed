// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty logging across the lifetime events of a mapping: fork, munmap and
 * remap, MADV_DONTNEED, closing the fd while mapped, and unloading the
 * module.  Writes stay reported through all of them, and nothing leaks:
 * VMIG_GET_GLOBAL_STATS counts no page once the region is gone.
 */
#include <sys/wait.h>

#include "vmig_test.h"
#include "dirty_util.h"
#include "kselftest_harness.h"

#define NPAGES	256

FIXTURE(life) {
	int dev, fd;
	long ps;
	size_t len;
	unsigned char *map;
	uint64_t bm[NPAGES / 64];
	struct vmig_global_stats g0;
};

FIXTURE_VARIANT(life) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(life, default_mode) {
	.flags = 0,
};

FIXTURE_VARIANT_ADD(life, initially_set) {
	.flags = VMIG_DIRTY_MANUAL_PROTECT | VMIG_DIRTY_INITIALLY_SET,
};

FIXTURE_VARIANT_ADD(life, hwdirty) {
	.flags = VMIG_DIRTY_HWDIRTY,
};

FIXTURE_SETUP(life)
{
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &self->g0));
	self->ps = vmig_page_size();
	self->len = NPAGES * self->ps;
	self->fd = vmig_region_new(self->dev, self->len, 0);
	ASSERT_LE(0, self->fd);
	self->map = vmig_region_map(self->fd, self->len, 0);
	ASSERT_NE(NULL, self->map);
	memset(self->map, 1, self->len);
	ASSERT_EQ(0, vmig_dirty_enable(self->fd, variant->flags));
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					self->bm, NULL));
}

FIXTURE_TEARDOWN(life)
{
	if (self->map)
		munmap(self->map, self->len);
	if (self->fd >= 0)
		close(self->fd);
	close(self->dev);
}

/* Harvest and expect exactly pages @a and @b (b < 0: only a). */
static int harvest_is(struct __test_metadata *_metadata, int fd,
		      uint32_t flags, uint64_t *bm, int a, int b)
{
	uint64_t dirty;

	if (vmig_dirty_harvest(fd, flags, NPAGES, bm, &dirty))
		return -1;
	EXPECT_EQ(b < 0 ? 1 : 2, dirty);
	EXPECT_TRUE(vmig_bit(bm, a));
	if (b >= 0)
		EXPECT_TRUE(vmig_bit(bm, b));
	return 0;
}

TEST_F(life, writes_of_a_forked_child_are_reported)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		self->map[10 * self->ps] = 2;
		self->map[200 * self->ps] = 2;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	ASSERT_EQ(0, harvest_is(_metadata, self->fd, variant->flags, self->bm, 10, 200));
	EXPECT_EQ(2, self->map[200 * self->ps]);
}

TEST_F(life, writes_after_munmap_and_remap_are_reported)
{
	self->map[5 * self->ps] = 2;
	ASSERT_EQ(0, munmap(self->map, self->len));
	self->map = vmig_region_map(self->fd, self->len, 0);
	ASSERT_NE(NULL, self->map);
	self->map[6 * self->ps] = 2;
	ASSERT_EQ(0, harvest_is(_metadata, self->fd, variant->flags, self->bm, 5, 6));
	/* Re-armed in the new mapping too. */
	self->map[6 * self->ps] = 3;
	ASSERT_EQ(0, harvest_is(_metadata, self->fd, variant->flags, self->bm, 6, -1));
}

TEST_F(life, madv_dontneed_keeps_data_and_later_writes_are_reported)
{
	self->map[7 * self->ps] = 2;
	ASSERT_EQ(0, madvise(self->map, self->len, MADV_DONTNEED));
	EXPECT_EQ(2, self->map[7 * self->ps]);
	self->map[8 * self->ps] = 2;
	ASSERT_EQ(0, harvest_is(_metadata, self->fd, variant->flags, self->bm, 7, 8));
	ASSERT_EQ(0, madvise(self->map, self->len, MADV_DONTNEED));
	self->map[9 * self->ps] = 2;
	ASSERT_EQ(0, harvest_is(_metadata, self->fd, variant->flags, self->bm, 9, -1));
}

TEST_F(life, closing_the_fd_while_mapped_and_logging_frees_everything)
{
	struct vmig_global_stats g;

	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	/* The mapping still works and still faults through the module. */
	for (int i = 0; i < NPAGES; i++)
		self->map[i * self->ps] = 5;
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(self->g0.regions + 1, g.regions);
	ASSERT_EQ(0, munmap(self->map, self->len));
	self->map = NULL;
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(self->g0.regions, g.regions);
	EXPECT_EQ(self->g0.pages_allocated, g.pages_allocated);
	EXPECT_EQ(self->g0.reserved_bytes, g.reserved_bytes);
}

TEST_F(life, unload_refused_while_a_logging_region_lives_then_clean)
{
	struct vmig_global_stats g;

	self->map[3 * self->ps] = 2;
	close(self->dev);
	close(self->fd);
	self->fd = -1;
	EXPECT_NE(0, vmig_module_unload());
	self->map[4 * self->ps] = 2;
	ASSERT_EQ(0, munmap(self->map, self->len));
	self->map = NULL;

	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(0, g.regions);
	EXPECT_EQ(0, g.pages_allocated);
	EXPECT_EQ(0, g.reserved_bytes);
	close(self->dev);
	ASSERT_EQ(0, vmig_module_unload());
	ASSERT_EQ(0, vmig_module_load());
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
}

TEST_F(life, disable_keeps_the_data_and_enable_again_starts_clean)
{
	uint64_t dirty;

	self->map[11 * self->ps] = 6;
	ASSERT_EQ(0, vmig_dirty_disable(self->fd));
	self->map[12 * self->ps] = 6;
	EXPECT_EQ(6, self->map[11 * self->ps]);
	ASSERT_EQ(0, vmig_dirty_enable(self->fd, variant->flags));
	if (variant->flags & VMIG_DIRTY_INITIALLY_SET) {
		ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags,
						NPAGES, self->bm, &dirty));
		EXPECT_EQ(NPAGES, dirty);
	}
	self->map[13 * self->ps] = 6;
	ASSERT_EQ(0, harvest_is(_metadata, self->fd, variant->flags, self->bm, 13, -1));
}

TEST_HARNESS_MAIN
