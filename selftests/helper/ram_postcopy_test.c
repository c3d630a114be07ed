// SPDX-License-Identifier: GPL-2.0
/*
 * libvmig's uffd backend at a postcopy destination, through the calls the
 * helper uses (vmig_ram_postcopy_*): a discarded page faults, its fault is
 * one request in (region, page) terms, placing it lets the waiting thread
 * go with the placed data, a page is never overwritten, batches go in by
 * runs, and a helper taking over gets the faults a dead one had read.  The
 * VMM runs in a thread of the test, its "vCPU" is another thread, the
 * helper is this process's vmig_ctl and vmig_ram.  (The kmod backend's ops are proved in
 * the VM: attach_kmod_dst_test.sh, migrate_kmod_test.sh.)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_vmm.h"

#define PAGES	64
#define PAGE	4096

/* Wait up to 5 s for a request, polling the backend's fds as the fault thread does. */
static int next_request(struct vmig_ram *ram, struct vmig_ram_request *req)
{
	int fds[8], n, i, t, r;

	for (t = 0; t < 50; t++) {
		struct pollfd p[8];

		n = vmig_ram_postcopy_fds(ram, fds, 8);
		if (n <= 0)
			return n < 0 ? n : -ENOENT;
		for (i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(p, n, 100) < 0)
			return -errno;
		for (i = 0; i < n; i++) {
			r = vmig_ram_postcopy_poll_error(ram, i, p[i].revents);
			if (r)
				return r;
		}
		r = vmig_ram_postcopy_requests(ram, req, 1);
		if (r)
			return r;
	}
	return -ETIMEDOUT;
}

static bool stays_waiting(struct vcpu *c)
{
	usleep(100000);
	return !atomic_load(&c->done);
}

static bool joined(struct vcpu *c)
{
	int i;

	for (i = 0; i < 500 && !atomic_load(&c->done); i++)
		usleep(10000);
	return atomic_load(&c->done) && !pthread_join(c->thread, NULL);
}

FIXTURE(ram_pc) {
	struct test_vmm v;
	uint8_t *guest;
	struct vmig_ctl *ctl;
	struct vmig_ram *ram;
	uint8_t page[PAGE];
};

FIXTURE_SETUP(ram_pc)
{
	struct vmig_uffd_info info;
	int i;

	if (vmig_uffd_probe(&info) || !info.missing_shmem)
		SKIP(return, "no userfaultfd MISSING faults on shmem here");
	ASSERT_EQ(0, test_vmm_start(&self->v, "ram-pc", VMIG_ROLE_DEST, PAGES * PAGE));
	self->guest = self->v.ram;
	for (i = 0; i < PAGES; i++)		/* every page arrived in precopy */
		self->guest[i * PAGE] = 0xaa;
	self->ctl = vmig_ctl_connect(self->v.path, 5000);
	ASSERT_NE(NULL, self->ctl);
	self->ram = vmig_ram_open_uffd(self->ctl);
	ASSERT_NE(NULL, self->ram);
	memset(self->page, 0x5c, sizeof(self->page));
	/* The switch: postcopy mode, page 3 dirtied again, the VMM registers. */
	ASSERT_EQ(0, vmig_ram_postcopy_enable(self->ram));
	ASSERT_EQ(0, vmig_ram_postcopy_discard(self->ram, 0, 3, 1));
	ASSERT_EQ(0, vmig_ram_postcopy_register(self->ram, 5000));
}

FIXTURE_TEARDOWN(ram_pc)
{
	if (!self->ram)
		return;
	vmig_ctl_error(self->ctl, "test over");
	test_wait_count(&self->v.errors, 1);
	vmig_ram_close(self->ram);
	vmig_ctl_close(self->ctl);
	test_vmm_stop(&self->v);
}

TEST_F(ram_pc, a_discarded_page_faults_as_one_request_and_the_placed_data_is_what_the_vcpu_reads)
{
	struct vcpu c = { .addr = (volatile uint64_t *)(self->guest + 3 * PAGE) };
	struct vmig_ram_request req;

	ASSERT_EQ(0, pthread_create(&c.thread, NULL, vcpu_main, &c));
	ASSERT_EQ(1, next_request(self->ram, &req));
	EXPECT_EQ(0, req.region);
	EXPECT_EQ(3, req.page);
	EXPECT_TRUE(stays_waiting(&c));
	EXPECT_EQ(0, vmig_ram_postcopy_place(self->ram, 0, 3, self->page));
	ASSERT_TRUE(joined(&c));
	EXPECT_EQ(0x5c5c5c5c5c5c5c5cull, c.seen);
}

TEST_F(ram_pc, a_page_present_already_is_never_overwritten)
{
	uint8_t *src[2] = { self->page, self->page };
	uint64_t pages[2] = { 3, 4 };
	bool placed[2];

	/* Page 4 arrived in precopy; page 3 was discarded. */
	EXPECT_EQ(-EEXIST, vmig_ram_postcopy_place(self->ram, 0, 4, self->page));
	EXPECT_EQ(1, vmig_ram_postcopy_place_batch(self->ram, 0, pages, src, 2, placed));
	EXPECT_TRUE(placed[0]);
	EXPECT_FALSE(placed[1]);
	EXPECT_EQ(0x5c, self->guest[3 * PAGE]);
	EXPECT_EQ(0xaa, self->guest[4 * PAGE]);
	EXPECT_EQ(-EEXIST, vmig_ram_postcopy_place(self->ram, 0, 3, NULL));
	EXPECT_EQ(0x5c, self->guest[3 * PAGE]);
}

/*
 * The background stream's batches go in as runs (pages next to each other,
 * data next to each other): each page gets its own data, a page present
 * already in the middle of a run stays as it was and only it is counted,
 * zero pages come in runs of their own, and a vCPU waiting on a page of a
 * run is woken by it.
 */
TEST_F(ram_pc, a_batch_goes_in_by_runs_and_a_present_page_splits_one)
{
	static uint8_t data[9 * PAGE];	/* the ninth: what a run read past its end would place */
	struct vcpu c = { .addr = (volatile uint64_t *)(self->guest + 16 * PAGE) };
	uint64_t pages[13] = { 10, 11, 12, 13, 14, 15, 16, 17, 20, 21, 22, 30, 31 };
	uint8_t *src[13];
	struct vmig_ram_request req;
	bool placed[13];
	int i;

	ASSERT_EQ(0, vmig_ram_postcopy_discard(self->ram, 0, 10, 31));
	memset(data + 8 * PAGE, 0xee, PAGE);
	for (i = 0; i < 8; i++) {
		memset(data + i * PAGE, 0x10 + i, PAGE);
		src[i] = data + i * PAGE;
	}
	src[8] = src[9] = src[10] = NULL;		/* a run of zero pages */
	src[11] = data + 7 * PAGE;			/* next in the buffer, not in the guest */
	src[12] = data;					/* next in the guest, not in the buffer */
	/* Page 13 came first, by request. */
	EXPECT_EQ(0, vmig_ram_postcopy_place(self->ram, 0, 13, self->page));
	ASSERT_EQ(0, pthread_create(&c.thread, NULL, vcpu_main, &c));
	ASSERT_EQ(1, next_request(self->ram, &req));
	EXPECT_EQ(16, req.page);

	EXPECT_EQ(1, vmig_ram_postcopy_place_batch(self->ram, 0, pages, src, 13, placed));
	for (i = 0; i < 13; i++)
		EXPECT_EQ(i != 3, placed[i]);
	ASSERT_TRUE(joined(&c));
	EXPECT_EQ(0x1616161616161616ull, c.seen);
	for (i = 0; i < 8; i++)
		EXPECT_EQ(i == 3 ? 0x5c : 0x10 + i, self->guest[(10 + i) * PAGE + PAGE - 1]);
	for (i = 20; i < 23; i++)
		EXPECT_EQ(0, self->guest[i * PAGE + 100]);
	EXPECT_EQ(0x17, self->guest[30 * PAGE + 5]);
	EXPECT_EQ(0x10, self->guest[31 * PAGE + 5]);
	/* Nothing past a run's end went in: these are still missing. */
	EXPECT_EQ(0, vmig_ram_postcopy_place(self->ram, 0, 18, self->page));
	EXPECT_EQ(0, vmig_ram_postcopy_place(self->ram, 0, 23, NULL));
	EXPECT_EQ(0, vmig_ram_postcopy_place(self->ram, 0, 32, self->page));
	/* Nothing of a run is placed twice, nor left out. */
	EXPECT_EQ(3, vmig_ram_postcopy_place_batch(self->ram, 0, pages + 8, src + 8, 3, placed));
}

/*
 * The kernel refuses a range that spans two of the VMM's mappings whole
 * (here the guest RAM's mapping split in two by an madvise): such a run
 * goes in page by page, and the batch does not fail.
 */
TEST_F(ram_pc, a_run_across_two_mappings_goes_in_page_by_page)
{
	static uint8_t data[8 * PAGE];
	uint64_t pages[8];
	uint8_t *src[8];
	bool placed[8];
	int i;

	ASSERT_EQ(0, vmig_ram_postcopy_discard(self->ram, 0, 40, 8));
	ASSERT_EQ(0, madvise(self->guest + 44 * PAGE, (PAGES - 44) * PAGE, MADV_DONTFORK));
	for (i = 0; i < 8; i++) {
		memset(data + i * PAGE, 0x40 + i, PAGE);
		pages[i] = 40 + i;
		src[i] = data + i * PAGE;
	}
	EXPECT_EQ(0, vmig_ram_postcopy_place_batch(self->ram, 0, pages, src, 8, placed));
	for (i = 0; i < 8; i++) {
		EXPECT_TRUE(placed[i]);
		EXPECT_EQ(0x40 + i, self->guest[(40 + i) * PAGE + 7]);
	}
}

TEST_F(ram_pc, pages_outside_guest_ram_are_refused)
{
	EXPECT_EQ(-ERANGE, vmig_ram_postcopy_discard(self->ram, 0, PAGES - 1, 2));
	EXPECT_EQ(-ERANGE, vmig_ram_postcopy_discard(self->ram, 1, 0, 1));
	EXPECT_EQ(-ERANGE, vmig_ram_postcopy_place(self->ram, 0, PAGES, self->page));
}

TEST_F(ram_pc, after_a_requeue_the_fault_a_dead_helper_had_read_comes_again)
{
	struct vcpu c = { .addr = (volatile uint64_t *)(self->guest + 3 * PAGE) };
	struct vmig_ram_request req;

	ASSERT_EQ(0, pthread_create(&c.thread, NULL, vcpu_main, &c));
	ASSERT_EQ(1, next_request(self->ram, &req));	/* read, then forgotten */
	EXPECT_EQ(0, vmig_ram_postcopy_requests(self->ram, &req, 1));
	EXPECT_EQ(0, vmig_ram_postcopy_requeue(self->ram));
	ASSERT_EQ(1, next_request(self->ram, &req));
	EXPECT_EQ(3, req.page);
	EXPECT_EQ(0, vmig_ram_postcopy_place(self->ram, 0, 3, self->page));
	ASSERT_TRUE(joined(&c));
}

TEST_HARNESS_MAIN
