// SPDX-License-Identifier: GPL-2.0
/*
 * The handover record on a postcopy destination (lib/vmm.c, lib/ctl.c): a
 * helper that dies while the guest runs leaves the guest running on the
 * same userfaultfd, which goes to the helper that takes the record over;
 * a helper that does not take it over can neither restart the guest (a new
 * registration would let waiting threads read zeros) nor end or discard it.
 * The VMM runs in a thread of the test, its "vCPU" is another thread, the
 * helpers are vmig_ctl clients.
 */
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "test_vmm.h"

#define RAM_SIZE	(1 << 20)
#define PAGE		4096

/* Read one fault from @uffd within 5 s: its address, or 0. */
static uint64_t read_fault(int uffd)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&p, 1, 5000) != 1 || read(uffd, &msg, sizeof(msg)) != sizeof(msg) ||
	    msg.event != UFFD_EVENT_PAGEFAULT)
		return 0;
	return msg.arg.pagefault.address & ~(uint64_t)(PAGE - 1);
}

FIXTURE(handover_dst) {
	struct test_vmm v;
};

FIXTURE_SETUP(handover_dst)
{
	ASSERT_EQ(0, test_vmm_start(&self->v, "handover-dst", VMIG_ROLE_DEST, RAM_SIZE));
}

FIXTURE_TEARDOWN(handover_dst)
{
	test_vmm_stop(&self->v);
}

static struct vmig_ctl *helper(struct test_vmm *v)
{
	return vmig_ctl_connect(v->path, 5000);
}

static const char record[] = "session 1234, caps, listening on :4444, secret";

/*
 * The first helper: postcopy switch (MISSING registration, RESUME), the
 * record, then it reads the fault of a vCPU on page 1 and dies with it.
 */
static struct vmig_ctl *switch_and_die(struct __test_metadata *_metadata,
				       FIXTURE_DATA(handover_dst) *self, struct vcpu *c)
{
	struct vmig_ctl *ctl = helper(&self->v);
	int uffd;

	EXPECT_NE(NULL, ctl);
	if (!ctl)
		return NULL;
	EXPECT_FALSE(vmig_ctl_handed_over(ctl));
	uffd = vmig_ctl_postcopy(ctl, 5000);
	EXPECT_LT(0, uffd);
	EXPECT_EQ(0, vmig_ctl_resume(ctl, 5000));
	EXPECT_EQ(0, vmig_ctl_handover(ctl, record, sizeof(record), 5000));
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));
	c->addr = (volatile uint64_t *)((char *)self->v.ram + PAGE);
	EXPECT_EQ(0, pthread_create(&c->thread, NULL, vcpu_main, c));
	EXPECT_EQ((uint64_t)(uintptr_t)c->addr, read_fault(uffd));
	close(uffd);			/* the fault read is gone with the helper */
	vmig_ctl_close(ctl);		/* kill -9: a hang-up */
	EXPECT_EQ(1, test_wait_count(&self->v.hangups, 1));
	return ctl;
}

/*
 * The helper that took over: wake the waiting vCPU, read its fault again
 * on @uffd and place @page there; the vCPU goes on with what was placed.
 */
static void serve_again(struct __test_metadata *_metadata,
			FIXTURE_DATA(handover_dst) *self, int uffd, struct vcpu *c,
			const uint64_t *page)
{
	struct uffdio_range wake = { .start = (uintptr_t)self->v.ram, .len = RAM_SIZE };
	struct uffdio_copy copy = { .src = (uintptr_t)page, .len = PAGE };

	ASSERT_EQ(0, ioctl(uffd, UFFDIO_WAKE, &wake));
	EXPECT_EQ((uint64_t)(uintptr_t)c->addr, read_fault(uffd));
	copy.dst = (uintptr_t)c->addr;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_COPY, &copy));
	pthread_join(c->thread, NULL);
	EXPECT_EQ(page[0], c->seen);
}

TEST_F(handover_dst, the_next_helper_takes_the_same_uffd_and_the_waiting_vcpu_gets_its_page)
{
	static uint64_t page[PAGE / 8] = { 0x5eed5eed5eed5eedull };
	struct vcpu c = { 0 };
	char got[VMIG_HANDOVER_MAX];
	struct vmig_ctl *ctl;
	int uffd, n;

	ASSERT_NE(NULL, switch_and_die(_metadata, self, &c));
	/* The guest runs on: no ERROR, the record kept, the vCPU still waiting. */
	EXPECT_EQ(0, atomic_load(&self->v.errors));
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));
	EXPECT_TRUE(vmig_vmm_postcopy_active(self->v.vmm));
	usleep(100000);
	EXPECT_FALSE(atomic_load(&c.done));

	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	EXPECT_TRUE(vmig_ctl_handed_over(ctl));
	n = vmig_ctl_handover_query(ctl, got, sizeof(got), 5000);
	ASSERT_EQ((int)sizeof(record), n);
	EXPECT_EQ(0, memcmp(got, record, n));
	uffd = vmig_ctl_postcopy(ctl, 5000);
	ASSERT_LT(0, uffd);
	/* Woken, the vCPU faults again: its fault comes to the new helper. */
	serve_again(_metadata, self, uffd, &c, page);
	EXPECT_EQ(0, vmig_ctl_complete(ctl));
	ASSERT_EQ(1, test_wait_count(&self->v.completes, 1));
	EXPECT_FALSE(vmig_vmm_handed_over(self->v.vmm));
	close(uffd);
	vmig_ctl_close(ctl);
}

TEST_F(handover_dst, a_helper_that_does_not_take_over_can_neither_restart_nor_end_the_guest)
{
	static uint64_t page[PAGE / 8] = { 0x0123456789abcdefull };
	struct vcpu c = { 0 };
	char got[VMIG_HANDOVER_MAX];
	struct vmig_ctl *ctl;
	int uffd;

	ASSERT_NE(NULL, switch_and_die(_metadata, self, &c));

	/* A new registration (before: unregister first) would hand the vCPU zeros. */
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	EXPECT_EQ(-EBUSY, vmig_ctl_postcopy(ctl, 5000));
	vmig_ctl_close(ctl);
	ASSERT_EQ(2, test_wait_count(&self->v.hangups, 2));
	/* ERROR (discard), COMPLETE (resume as migrated), another record: refused. */
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	vmig_ctl_error(ctl, "hostile: discard it");
	ASSERT_EQ(3, test_wait_count(&self->v.hangups, 3));
	vmig_ctl_close(ctl);
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	vmig_ctl_complete(ctl);
	ASSERT_EQ(4, test_wait_count(&self->v.hangups, 4));
	vmig_ctl_close(ctl);
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	EXPECT_NE(0, vmig_ctl_handover(ctl, "mine", 4, 2000));
	vmig_ctl_close(ctl);
	ASSERT_EQ(5, test_wait_count(&self->v.hangups, 5));
	EXPECT_EQ(0, atomic_load(&self->v.errors));
	EXPECT_EQ(0, atomic_load(&self->v.completes));
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));
	EXPECT_FALSE(atomic_load(&c.done));

	/* The record is intact and the guest still on its registration. */
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	ASSERT_EQ((int)sizeof(record), vmig_ctl_handover_query(ctl, got, sizeof(got), 5000));
	EXPECT_EQ(0, memcmp(got, record, sizeof(record)));
	uffd = vmig_ctl_postcopy(ctl, 5000);
	ASSERT_LT(0, uffd);
	serve_again(_metadata, self, uffd, &c, page);
	/* A helper that gives up ends it: ERROR, after taking over, is final. */
	EXPECT_EQ(0, vmig_ctl_error(ctl, "test: gave up"));
	ASSERT_EQ(1, test_wait_count(&self->v.errors, 1));
	EXPECT_FALSE(vmig_vmm_handed_over(self->v.vmm));
	close(uffd);
	vmig_ctl_close(ctl);
}

TEST_F(handover_dst, the_helper_that_left_the_record_completes_as_usual)
{
	struct vmig_ctl *ctl = helper(&self->v);
	int uffd;

	ASSERT_NE(NULL, ctl);
	uffd = vmig_ctl_postcopy(ctl, 5000);
	ASSERT_LT(0, uffd);
	ASSERT_EQ(0, vmig_ctl_resume(ctl, 5000));
	ASSERT_EQ(0, vmig_ctl_handover(ctl, record, sizeof(record), 5000));
	EXPECT_EQ(0, vmig_ctl_complete(ctl));
	ASSERT_EQ(1, test_wait_count(&self->v.completes, 1));
	EXPECT_EQ(0, atomic_load(&self->v.hangups));
	EXPECT_FALSE(vmig_vmm_handed_over(self->v.vmm));
	close(uffd);
	vmig_ctl_close(ctl);
}

TEST_F(handover_dst, no_record_before_the_guest_runs_here)
{
	struct vmig_ctl *ctl = helper(&self->v);

	ASSERT_NE(NULL, ctl);
	EXPECT_NE(0, vmig_ctl_handover(ctl, record, sizeof(record), 2000));
	vmig_ctl_close(ctl);
	ASSERT_EQ(1, test_wait_count(&self->v.hangups, 1));
	EXPECT_FALSE(vmig_vmm_handed_over(self->v.vmm));
}

TEST_HARNESS_MAIN
