// SPDX-License-Identifier: GPL-2.0
/*
 * Regions: creation and its argument checks, shared mappings, zero fill on
 * first touch, fault-around, the memory cap, and freeing pages with the
 * last reference.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/wait.h>

#include "vmig_test.h"
#include "kselftest_harness.h"

FIXTURE(region) {
	int dev;
	long ps;
};

FIXTURE_SETUP(region)
{
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	self->ps = vmig_page_size();
}

FIXTURE_TEARDOWN(region)
{
	close(self->dev);
}

TEST_F(region, create_rejects_bad_arguments)
{
	struct vmig_region_create c;

	EXPECT_EQ(-EINVAL, vmig_region_new(self->dev, 0, 0));
	EXPECT_EQ(-EINVAL, vmig_region_new(self->dev, self->ps + 1, 0));
	EXPECT_EQ(-EINVAL, vmig_region_new(self->dev, self->ps, 1U << 31));
	EXPECT_EQ(-ENOMEM, vmig_region_new(self->dev, -(uint64_t)self->ps, 0));

	memset(&c, 0, sizeof(c));
	c.size = self->ps;
	c.reserved2[1] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, VMIG_CREATE_REGION, &c));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(region, cap_refuses_with_enomem_and_frees_on_close)
{
	struct vmig_api api;
	uint64_t half;
	int a, b;

	ASSERT_EQ(0, ioctl(self->dev, VMIG_GET_API, &api));
	half = (api.max_region_bytes / 2 + self->ps) & ~(uint64_t)(self->ps - 1);
	a = vmig_region_new(self->dev, half, 0);
	ASSERT_LE(0, a);
	/* Reserving does not allocate: the second half no longer fits. */
	EXPECT_EQ(-ENOMEM, vmig_region_new(self->dev, half, 0));
	close(a);
	b = vmig_region_new(self->dev, half, 0);
	EXPECT_LE(0, b);
	close(b);
}

TEST_F(region, private_mapping_is_refused)
{
	int r = vmig_region_new(self->dev, 4 * self->ps, 0);

	ASSERT_LE(0, r);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->ps, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE, r, 0));
	EXPECT_EQ(EINVAL, errno);
	close(r);
}

TEST_F(region, mapping_past_the_end_is_refused)
{
	int r = vmig_region_new(self->dev, 4 * self->ps, 0);

	ASSERT_LE(0, r);
	EXPECT_EQ(NULL, vmig_region_map(r, 5 * self->ps, 0));
	EXPECT_EQ(NULL, vmig_region_map(r, self->ps, 4 * self->ps));
	EXPECT_NE(NULL, vmig_region_map(r, self->ps, 3 * self->ps));
	close(r);
}

TEST_F(region, pages_start_zero_and_are_shared_between_mappings)
{
	size_t len = 256 * self->ps;
	int r = vmig_region_new(self->dev, len, 0);
	unsigned char *a, *b;
	size_t i;

	ASSERT_LE(0, r);
	a = vmig_region_map(r, len, 0);
	b = vmig_region_map(r, len, 0);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	for (i = 0; i < len; i += 97)
		ASSERT_EQ(0, b[i]);
	for (i = 0; i < len; i += self->ps)
		a[i + 5] = (unsigned char)(i / self->ps + 1);
	for (i = 0; i < len; i += self->ps)
		ASSERT_EQ((unsigned char)(i / self->ps + 1), b[i + 5]);
	munmap(a, len);
	munmap(b, len);
	close(r);
}

TEST_F(region, a_second_process_sees_the_same_pages)
{
	size_t len = 16 * self->ps;
	int r = vmig_region_new(self->dev, len, 0);
	volatile unsigned char *p;
	int status;
	pid_t pid;

	ASSERT_LE(0, r);
	p = vmig_region_map(r, len, 0);
	ASSERT_NE(NULL, p);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		unsigned char *q = vmig_region_map(r, len, 0);

		if (!q)
			_exit(2);
		q[7 * self->ps] = 0xab;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0xab, p[7 * self->ps]);
	close(r);
}

TEST_F(region, pages_counted_and_freed_with_last_reference)
{
	struct vmig_global_stats g0, g;
	struct vmig_stats st;
	size_t len = 100 * self->ps;
	int r = vmig_region_new(self->dev, len, 0);
	char *p;
	size_t i;

	ASSERT_LE(0, r);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g0));
	p = vmig_region_map(r, len, 0);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 40; i++)
		p[i * self->ps] = 1;
	/* Reads allocate too: the page must exist to be mapped. */
	for (i = 40; i < 50; i++)
		ASSERT_EQ(0, ((volatile char *)p)[i * self->ps]);
	ASSERT_EQ(0, vmig_region_stats(r, &st));
	EXPECT_EQ(len, st.size);
	EXPECT_EQ(50, st.pages_present);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(g0.pages_allocated + 50, g.pages_allocated);

	/* MADV_DONTNEED on shared memory keeps the data. */
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	EXPECT_EQ(1, p[3 * self->ps]);

	close(r);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(g0.pages_allocated + 50, g.pages_allocated);
	munmap(p, len);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(g0.pages_allocated, g.pages_allocated);
	EXPECT_EQ(g0.regions - 1, g.regions);
}

/* Is the page at @addr mapped in this process (/proc/self/pagemap)? */
static int page_mapped(const void *addr, long ps)
{
	uint64_t ent;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, &ent, sizeof(ent), (uintptr_t)addr / ps * sizeof(ent));
	close(fd);
	return n == sizeof(ent) ? !!(ent >> 63) : -1;
}

/*
 * A read fault maps the present neighbours too (fault-around, 16 pages by
 * default), so a VMM reading placed or written pages takes one fault per
 * block, not per page; a page not in the region yet is not mapped.
 */
TEST_F(region, read_fault_maps_present_neighbours)
{
	size_t len = 16 * self->ps, blk = 64 * 1024;
	int r = vmig_region_new(self->dev, len, 0);
	unsigned char *a, *b, *area;
	volatile unsigned char v;
	int i;

	ASSERT_LE(0, r);
	a = vmig_region_map(r, len, 0);
	ASSERT_NE(NULL, a);
	for (i = 0; i < 12; i++)	/* pages 12..15 never touched */
		a[i * self->ps] = 1;
	/* The second mapping on a 64 KiB boundary: one fault-around window. */
	area = mmap(NULL, len + blk, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	b = (unsigned char *)(((uintptr_t)area + blk - 1) & ~(uintptr_t)(blk - 1));
	ASSERT_EQ(b, mmap(b, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r, 0));
	EXPECT_EQ(0, page_mapped(b + self->ps, self->ps));
	v = b[0];
	(void)v;
	for (i = 0; i < 12; i++)
		EXPECT_EQ(1, page_mapped(b + i * self->ps, self->ps)) TH_LOG("page %d", i);
	for (i = 12; i < 16; i++)
		EXPECT_EQ(0, page_mapped(b + i * self->ps, self->ps)) TH_LOG("page %d", i);
	munmap(area, len + blk);
	munmap(a, len);
	close(r);
}

TEST_HARNESS_MAIN
