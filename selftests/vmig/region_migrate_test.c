// SPDX-License-Identifier: GPL-2.0
/*
 * Page migration of region pages.  Region pages come from movable memory
 * (the mapping's gfp mask has __GFP_MOVABLE) and are always dirty (born
 * dirty, there is no backing store), so the kernel can only move them -
 * compaction, memory offlining, CMA, soft offline - through the mapping's
 * ->migrate_folio.  MADV_SOFT_OFFLINE (root) migrates one page on request
 * and fails if the page cannot move, which makes the case testable on one
 * NUMA node: the page must land on a new frame with its data, and dirty
 * logging must still see the writes that come after (or, for HWDIRTY, that
 * came before) the move.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

#include "vmig_test.h"
#include "dirty_util.h"
#include "postcopy_util.h"
#include "kselftest_harness.h"

#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE	101
#endif

#define NPAGES	64

/* The page frame behind @addr (root reads PFNs from pagemap), 0 if none. */
static uint64_t pfn_of(const void *addr)
{
	uint64_t ent = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &ent, sizeof(ent),
		  (uintptr_t)addr / vmig_page_size() * sizeof(ent)) != sizeof(ent))
		ent = 0;
	close(fd);
	return (ent >> 63) ? ent & ((1ULL << 55) - 1) : 0;
}

/* Migrate the page at @addr to a new frame; 0 or -errno. */
static int migrate_page(void *addr)
{
	return madvise(addr, vmig_page_size(), MADV_SOFT_OFFLINE) ? -errno : 0;
}

/* A kernel without CONFIG_MEMORY_FAILURE has no MADV_SOFT_OFFLINE. */
#define MIGRATE_OR_SKIP(addr)						\
	do {								\
		int __ret = migrate_page(addr);				\
		if (__ret == -EINVAL)					\
			SKIP(return, "no MADV_SOFT_OFFLINE here");	\
		ASSERT_EQ(0, __ret) TH_LOG("the page could not move");	\
	} while (0)

FIXTURE(migrate) {
	int dev, fd;
	long ps;
	char *m;
};

FIXTURE_SETUP(migrate)
{
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	self->ps = vmig_page_size();
	self->fd = vmig_region_new(self->dev, NPAGES * self->ps, 0);
	ASSERT_LE(0, self->fd);
	self->m = vmig_region_map(self->fd, NPAGES * self->ps, 0);
	ASSERT_NE(NULL, self->m);
}

FIXTURE_TEARDOWN(migrate)
{
	munmap(self->m, NPAGES * self->ps);
	close(self->fd);
	close(self->dev);
}

TEST_F(migrate, written_and_placed_pages_move_to_new_frames_with_their_data)
{
	struct vmig_stats st;
	uint64_t before, after;

	/* Page 0 written through the mapping, page 1 placed and only read. */
	vmig_pattern_fill(self->m, 0, 7);
	ASSERT_EQ(0, vmig_place_page(self->fd, 1, 7));
	ASSERT_EQ(0, vmig_pattern_errors(self->m + self->ps, 1, 7, 0));

	for (int i = 0; i < 2; i++) {
		char *p = self->m + i * self->ps;

		before = pfn_of(p);
		ASSERT_NE(0, before) TH_LOG("no PFN in pagemap (not root?)");
		MIGRATE_OR_SKIP(p);
		after = pfn_of(p);
		EXPECT_NE(0, after);
		EXPECT_NE(before, after) TH_LOG("page %d did not move", i);
		EXPECT_EQ(0, vmig_pattern_errors(p, i, 7, 0));
	}
	/* One page replaced another: the region still holds two. */
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(2, st.pages_present);
}

TEST_F(migrate, dirty_logging_sees_writes_after_a_move)
{
	uint64_t bm[vmig_bm_words(NPAGES)], dirty;

	for (int i = 0; i < 4; i++)
		vmig_pattern_fill(self->m + i * self->ps, i, 1);
	ASSERT_EQ(0, vmig_dirty_enable(self->fd, 0));
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, 0, NPAGES, bm, &dirty));

	/* Write-protected by the harvest, moved, then written: reported. */
	MIGRATE_OR_SKIP(self->m);
	self->m[8] = 1;
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, 0, NPAGES, bm, &dirty));
	EXPECT_EQ(1, dirty);
	EXPECT_EQ(1, vmig_bit(bm, 0));

	/* And still protected after that harvest. */
	self->m[16] = 2;
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, 0, NPAGES, bm, &dirty));
	EXPECT_EQ(1, vmig_bit(bm, 0));
	ASSERT_EQ(0, vmig_dirty_disable(self->fd));
}

TEST_F(migrate, hwdirty_keeps_a_write_made_before_the_move)
{
	uint64_t bm[vmig_bm_words(NPAGES)], dirty;

	for (int i = 0; i < 4; i++)
		vmig_pattern_fill(self->m + i * self->ps, i, 1);
	ASSERT_EQ(0, vmig_dirty_enable(self->fd, VMIG_DIRTY_HWDIRTY));
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, VMIG_DIRTY_HWDIRTY, NPAGES,
					bm, &dirty));
	self->m[self->ps + 8] = 1;	/* page 1: a dirty PTE, then a move */
	MIGRATE_OR_SKIP(self->m + self->ps);
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, VMIG_DIRTY_HWDIRTY, NPAGES,
					bm, &dirty));
	EXPECT_EQ(1, vmig_bit(bm, 1));
	ASSERT_EQ(0, vmig_dirty_disable(self->fd));
}

TEST_HARNESS_MAIN
