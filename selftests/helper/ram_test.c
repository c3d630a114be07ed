// SPDX-License-Identifier: GPL-2.0
/*
 * libvmig's uffd backend, both tracking modes: a harvest reports exactly the
 * pages written since the previous one, each once, and re-arms them.  The
 * VMM side (libvmig's vmig_vmm_*) runs in a thread of this process, the
 * helper side (vmig_ctl_*, vmig_ram_*) in the test itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_vmm.h"

#define PAGES	4096
#define PSZ	4096
/*
 * The page write_racing_a_harvest_is_not_lost writes (no other test does):
 * the sync backend's fault thread holds it 200 ms between marking it and
 * letting the write through (VMIG_TEST_WP_HOLD, a test-only knob of
 * lib/ram_uffd.c).
 */
#define RACE_PAGE	4001
#define RACE_HOLD	"4001:200000"

/* Collect harvested ranges as a page bitmap; count reports per page. */
static uint8_t seen[PAGES];

static int note_range(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	(void)arg;
	if (region != 0 || first + n > PAGES)
		return -1;
	while (n--)
		seen[first++]++;
	return 0;
}

static int harvest(struct vmig_ram *ram)
{
	memset(seen, 0, sizeof(seen));
	return vmig_ram_harvest(ram, note_range, NULL);
}

static int count_seen(void)
{
	int i, n = 0;

	for (i = 0; i < PAGES; i++)
		n += seen[i];
	return n;
}

FIXTURE(ram) {
	struct test_vmm vs;
	uint8_t *guest;
	struct vmig_ctl *ctl;
	struct vmig_ram *ram;
};

FIXTURE_VARIANT(ram) {
	enum vmig_track mode;
};

FIXTURE_VARIANT_ADD(ram, async) { .mode = VMIG_TRACK_ASYNC };
FIXTURE_VARIANT_ADD(ram, sync) { .mode = VMIG_TRACK_SYNC };

FIXTURE_SETUP(ram)
{
	struct vmig_uffd_info info;
	int i;

	if (vmig_uffd_probe(&info) || !info.wp_shmem)
		SKIP(return, "no userfaultfd write-protect on shmem here");
	if (variant->mode == VMIG_TRACK_ASYNC && !(info.wp_async && info.pagemap_scan))
		SKIP(return, "no UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN (kernel < 6.7)");
	ASSERT_EQ(test_vmm_start(&self->vs, "ram-test", VMIG_ROLE_SOURCE, PAGES * PSZ), 0);
	self->guest = self->vs.ram;
	for (i = 0; i < PAGES / 2; i++)		/* half written, half holes */
		self->guest[i * PSZ] = 1;
	self->ctl = vmig_ctl_connect(self->vs.path, 5000);
	ASSERT_NE(self->ctl, NULL);
	self->ram = vmig_ram_open_uffd(self->ctl);
	ASSERT_NE(self->ram, NULL);
	setenv("VMIG_TEST_WP_HOLD", RACE_HOLD, 1);
	ASSERT_EQ(vmig_ram_track_start(self->ram, variant->mode, 5000), 0);
	ASSERT_EQ(vmig_ram_track_mode(self->ram), variant->mode);
}

FIXTURE_TEARDOWN(ram)
{
	if (!self->ram)
		return;
	vmig_ctl_error(self->ctl, "test over");	/* the VMM untracks: no more faults */
	test_wait_count(&self->vs.errors, 1);
	vmig_ram_close(self->ram);
	vmig_ctl_close(self->ctl);
	test_vmm_stop(&self->vs);
}

TEST_F(ram, nothing_written_nothing_harvested)
{
	ASSERT_EQ(harvest(self->ram), 0);
	EXPECT_EQ(count_seen(), 0);
}

TEST_F(ram, harvest_reports_exactly_the_written_pages_once)
{
	static const int pages[] = { 0, 3, 100, 101, 102, 103, 2047, 2048, 3000, 4095 };
	unsigned int i;

	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		self->guest[pages[i] * PSZ + 7] = 0x5a;	/* 2048+ were holes */
	self->guest[3 * PSZ + 100] = 0x5b;		/* twice: still one report */
	ASSERT_EQ(harvest(self->ram), 0);
	EXPECT_EQ(count_seen(), (int)(sizeof(pages) / sizeof(pages[0])));
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		EXPECT_EQ(seen[pages[i]], 1);
}

TEST_F(ram, harvest_rearms_protection)
{
	self->guest[10 * PSZ] = 1;
	ASSERT_EQ(harvest(self->ram), 0);
	EXPECT_EQ(seen[10], 1);
	ASSERT_EQ(harvest(self->ram), 0);
	EXPECT_EQ(count_seen(), 0);		/* clean again */
	self->guest[10 * PSZ] = 2;		/* written after the harvest: caught */
	ASSERT_EQ(harvest(self->ram), 0);
	EXPECT_EQ(count_seen(), 1);
	EXPECT_EQ(seen[10], 1);
}

/*
 * The last harvest re-arms nothing: async, the pages it reported are still
 * written at the next scan (not protected again); sync, a write to one of
 * them takes no fault and is not seen.
 */
TEST_F(ram, final_harvest_rearms_nothing)
{
	self->guest[10 * PSZ] = 1;
	self->guest[20 * PSZ] = 1;
	memset(seen, 0, sizeof(seen));
	ASSERT_EQ(vmig_ram_harvest_final(self->ram, note_range, NULL), 0);
	EXPECT_EQ(count_seen(), 2);
	EXPECT_EQ(seen[10], 1);
	EXPECT_EQ(seen[20], 1);
	self->guest[10 * PSZ] = 2;
	ASSERT_EQ(harvest(self->ram), 0);
	if (variant->mode == VMIG_TRACK_ASYNC) {
		EXPECT_EQ(count_seen(), 2);
		EXPECT_EQ(seen[20], 1);
	} else {
		EXPECT_EQ(count_seen(), 0);
	}
}

TEST_F(ram, many_scattered_pages_are_all_found)
{
	int i, n = 0;

	for (i = 0; i < PAGES; i += 3, n++)	/* > 512 regions: the scan must go on */
		self->guest[i * PSZ] ^= 0xff;
	ASSERT_EQ(harvest(self->ram), 0);
	EXPECT_EQ(count_seen(), n);
	for (i = 0; i < PAGES; i++)
		ASSERT_EQ(seen[i], i % 3 == 0);
}

TEST_F(ram, helper_reads_what_the_vmm_wrote)
{
	const uint8_t *p;

	self->guest[42 * PSZ + 1] = 0x77;
	ASSERT_EQ(harvest(self->ram), 0);
	p = vmig_ram_page(self->ram, 0, 42);
	ASSERT_NE(p, NULL);
	EXPECT_EQ(p[1], 0x77);
	EXPECT_EQ(vmig_ram_page(self->ram, 0, PAGES), NULL);	/* out of range */
	EXPECT_EQ(vmig_ram_region_pages(self->ram, 0), PAGES);
}

/*
 * The source's urgent path reads a page from the region's file (postcopy
 * requests: no page fault in the helper's mapping): the same bytes as the
 * mapping, at the right offset, and nothing outside the region.
 */
TEST_F(ram, a_page_read_from_the_file_is_the_mapped_page)
{
	uint8_t buf[PSZ];
	unsigned int i;

	for (i = 0; i < PSZ; i++)
		self->guest[77 * PSZ + i] = (uint8_t)(i * 7 + 3);
	self->guest[78 * PSZ] = 0x55;		/* the next page differs */
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(vmig_ram_read_page(self->ram, 0, 77, buf), 0);
	EXPECT_EQ(memcmp(buf, self->guest + 77 * PSZ, PSZ), 0);
	EXPECT_EQ(memcmp(buf, vmig_ram_page(self->ram, 0, 77), PSZ), 0);
	ASSERT_EQ(vmig_ram_read_page(self->ram, 0, 78, buf), 0);
	EXPECT_EQ(buf[0], 0x55);
	EXPECT_EQ(vmig_ram_read_page(self->ram, 0, PAGES, buf), -EINVAL);
	EXPECT_EQ(vmig_ram_read_page(self->ram, 1, 0, buf), -EINVAL);
}

static void *race_writer(void *arg)
{
	uint8_t *page = arg;

	page[0] = 0xab;		/* faults (sync): held in the window */
	return NULL;
}

/*
 * The precopy invariant with a harvest falling between the fault thread's
 * mark and its un-protect: what the helper read after each harvest that
 * reported the page must end as what the VMM wrote.  Before wp_lock the
 * harvest took the bit, protected the still-protected page, read the old
 * byte; the un-protect then let the write through with no bit left, and
 * the last harvest reported nothing: the write was lost.
 */
TEST_F(ram, write_racing_a_harvest_is_not_lost)
{
	uint8_t *page = self->guest + (size_t)RACE_PAGE * PSZ, copy = page[0];
	const uint8_t *p;
	pthread_t w;

	ASSERT_EQ(copy, 0);
	ASSERT_EQ(pthread_create(&w, NULL, race_writer, page), 0);
	usleep(50000);		/* the writer faulted; the fault thread holds */
	ASSERT_EQ(harvest(self->ram), 0);
	if (seen[RACE_PAGE]) {
		p = vmig_ram_page(self->ram, 0, RACE_PAGE);
		ASSERT_NE(p, NULL);
		copy = p[0];
	}
	pthread_join(w, NULL);
	ASSERT_EQ(harvest(self->ram), 0);	/* the last one: the VMM is done */
	if (seen[RACE_PAGE]) {
		p = vmig_ram_page(self->ram, 0, RACE_PAGE);
		ASSERT_NE(p, NULL);
		copy = p[0];
	}
	EXPECT_EQ(copy, 0xab);
}

TEST_HARNESS_MAIN
