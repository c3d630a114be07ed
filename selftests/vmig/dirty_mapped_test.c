// SPDX-License-Identifier: GPL-2.0
/*
 * Re-protection keeps pages mapped, on every kernel the module builds for:
 * after a harvest has write-protected every page of a fully dirty region,
 * reading the pages takes no page fault at all (the PTEs are still there,
 * read-only), and writing them takes one write fault per page, each
 * reported.  A kernel whose write-protect walk unmapped pages instead would
 * make the guest fault again on every read after every harvest.
 */
#include <sys/resource.h>

#include "vmig_test.h"
#include "dirty_util.h"
#include "kselftest_harness.h"

#define NPAGES	4096

static long minor_faults(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

FIXTURE(mapped) {
	int dev, fd;
	long ps;
	unsigned char *map;
	uint64_t bm[NPAGES / 64];
};

FIXTURE_SETUP(mapped)
{
	self->ps = vmig_page_size();
	self->dev = vmig_dev_open();
	ASSERT_GE(self->dev, 0);
	self->fd = vmig_region_new(self->dev, NPAGES * self->ps, VMIG_REGION_CLOEXEC);
	ASSERT_GE(self->fd, 0);
	self->map = vmig_region_map(self->fd, NPAGES * self->ps, 0);
	ASSERT_NE(self->map, NULL);
	memset(self->map, 1, NPAGES * self->ps);
}

FIXTURE_TEARDOWN(mapped)
{
	munmap(self->map, NPAGES * self->ps);
	close(self->fd);
	close(self->dev);
}

/* Read one byte of every page; returns the minor faults it took. */
static long read_all(unsigned char *map, long ps)
{
	volatile unsigned char *m = map;
	unsigned int sum = 0;
	long before = minor_faults();
	int i;

	for (i = 0; i < NPAGES; i++)
		sum += m[i * ps + 8];
	__asm__ volatile("" : : "r"(sum));
	return minor_faults() - before;
}

TEST_F(mapped, reads_after_a_harvest_take_no_fault_and_each_write_one)
{
	struct vmig_stats st;
	uint64_t dirty;
	long faults;
	int i;

	ASSERT_EQ(vmig_dirty_enable(self->fd, 0), 0);
	for (i = 0; i < NPAGES; i++)
		self->map[i * self->ps + 8] ^= 1;
	/* The harvest write-protects every page again. */
	ASSERT_EQ(vmig_dirty_get(self->fd, 0, NPAGES, self->bm, &dirty), 0);
	ASSERT_EQ(dirty, NPAGES);

	faults = read_all(self->map, self->ps);
	TH_LOG("minor faults reading %d re-protected pages: %ld", NPAGES, faults);
	/* A few for the test's own stack and libc, none per page. */
	EXPECT_LT(faults, NPAGES / 64);

	ASSERT_EQ(vmig_region_stats(self->fd, &st), 0);
	uint64_t before = st.write_faults;

	faults = minor_faults();
	for (i = 0; i < NPAGES; i++)
		self->map[i * self->ps + 8] ^= 1;
	faults = minor_faults() - faults;
	ASSERT_EQ(vmig_region_stats(self->fd, &st), 0);
	TH_LOG("minor faults writing them: %ld, write faults counted: %llu", faults,
	       (unsigned long long)(st.write_faults - before));
	EXPECT_EQ(st.write_faults - before, NPAGES);
	EXPECT_GE(faults, NPAGES);
	EXPECT_LT(faults, NPAGES + NPAGES / 64);
	ASSERT_EQ(vmig_dirty_get(self->fd, 0, NPAGES, self->bm, &dirty), 0);
	EXPECT_EQ(dirty, NPAGES);
	/* And reading after that harvest is fault-free again. */
	EXPECT_LT(read_all(self->map, self->ps), NPAGES / 64);
}

TEST_HARNESS_MAIN
