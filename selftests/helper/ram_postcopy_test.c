// SPDX-License-Identifier: GPL-2.0
/*
 * libvmig's uffd backend at a postcopy destination, through the calls the
 * helper uses (vmig_ram_postcopy_*): a discarded page faults, its fault is
 * one request in (region, page) terms, placing it lets the waiting thread
 * go with the placed data, a page is never overwritten, and a helper
 * taking over gets the faults a dead one had read.  The VMM runs in a
 * thread of the test, its "vCPU" is another thread, the helper is this
 * process's vmig_ctl and vmig_ram.  (The kmod backend's ops are proved in
 * the VM: attach_kmod_dst_test.sh, migrate_kmod_test.sh.)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
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
