// SPDX-License-Identifier: GPL-2.0
/*
 * The handover record of the VMM control protocol (lib/vmm.c, lib/ctl.c):
 * a postcopy source VMM keeps what its helper left across the helper's
 * death, gives it to the next helper, stays stopped meanwhile (RESUME is
 * refused, tracking too) and forgets it on COMPLETE or an empty handover.
 * The VMM runs in a thread of the test, the helpers are vmig_ctl clients.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"
#include "test_vmm.h"

#define RAM_SIZE	(1 << 20)

FIXTURE(handover) {
	struct test_vmm v;
};

FIXTURE_SETUP(handover)
{
	ASSERT_EQ(0, test_vmm_start(&self->v, "handover", VMIG_ROLE_SOURCE, RAM_SIZE));
}

FIXTURE_TEARDOWN(handover)
{
	test_vmm_stop(&self->v);
}

static struct vmig_ctl *helper(struct test_vmm *v)
{
	return vmig_ctl_connect(v->path, 5000);
}

static const char record[] = "session 1234, caps, destination dst:4444, secret";

TEST_F(handover, a_dead_helpers_record_goes_to_the_next_helper_and_the_vmm_stays_stopped)
{
	struct vmig_ctl *ctl = helper(&self->v);
	char got[VMIG_HANDOVER_MAX];
	enum vmig_track chosen;
	int n;

	ASSERT_NE(NULL, ctl);
	ASSERT_EQ(0, vmig_ctl_stop(ctl, 5000));
	ASSERT_EQ(0, vmig_ctl_handover(ctl, record, sizeof(record), 5000));
	vmig_ctl_close(ctl);		/* the helper dies: a hang-up */
	ASSERT_EQ(1, test_wait_count(&self->v.hangups, 1));
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));
	EXPECT_EQ(0, atomic_load(&self->v.resumes));

	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	n = vmig_ctl_handover_query(ctl, got, sizeof(got), 5000);
	ASSERT_EQ((int)sizeof(record), n);
	EXPECT_EQ(0, memcmp(got, record, n));
	/* The guest may run on the destination: no tracking, no RESUME here. */
	EXPECT_EQ(-EBUSY, vmig_ctl_track(ctl, VMIG_TRACK_AUTO, 5000, &chosen));
	EXPECT_NE(0, vmig_ctl_resume(ctl, 5000));
	vmig_ctl_close(ctl);
	ASSERT_EQ(2, test_wait_count(&self->v.hangups, 2));
	EXPECT_EQ(0, atomic_load(&self->v.resumes));
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));

	/* An ERROR from a helper does not end it either. */
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	EXPECT_EQ(0, vmig_ctl_error(ctl, "test: failed"));
	ASSERT_EQ(1, test_wait_count(&self->v.errors, 1));
	vmig_ctl_close(ctl);
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));

	/* COMPLETE does. */
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	EXPECT_EQ(0, vmig_ctl_complete(ctl));
	ASSERT_EQ(1, test_wait_count(&self->v.completes, 1));
	vmig_ctl_close(ctl);
	EXPECT_FALSE(vmig_vmm_handed_over(self->v.vmm));
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	EXPECT_EQ(-ENOENT, vmig_ctl_handover_query(ctl, got, sizeof(got), 5000));
	vmig_ctl_close(ctl);
}

TEST_F(handover, an_empty_handover_drops_the_record_and_resume_works_again)
{
	struct vmig_ctl *ctl = helper(&self->v);
	char got[VMIG_HANDOVER_MAX];

	ASSERT_NE(NULL, ctl);
	ASSERT_EQ(0, vmig_ctl_stop(ctl, 5000));
	ASSERT_EQ(0, vmig_ctl_handover(ctl, record, sizeof(record), 5000));
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));
	/* The destination said it never ran the guest. */
	ASSERT_EQ(0, vmig_ctl_handover(ctl, NULL, 0, 5000));
	EXPECT_FALSE(vmig_vmm_handed_over(self->v.vmm));
	EXPECT_EQ(-ENOENT, vmig_ctl_handover_query(ctl, got, sizeof(got), 5000));
	EXPECT_EQ(0, vmig_ctl_resume(ctl, 5000));
	EXPECT_EQ(1, atomic_load(&self->v.resumes));
	vmig_ctl_close(ctl);
}

TEST_F(handover, records_too_large_are_refused)
{
	static char big[VMIG_HANDOVER_MAX + 1];
	struct vmig_ctl *ctl = helper(&self->v);

	ASSERT_NE(NULL, ctl);
	EXPECT_EQ(-EINVAL, vmig_ctl_handover(ctl, big, sizeof(big), 5000));
	EXPECT_EQ(0, vmig_ctl_handover(ctl, big, sizeof(big) - 1, 5000));
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));
	EXPECT_EQ((int)sizeof(big) - 1, vmig_ctl_handover_query(ctl, big, sizeof(big), 5000));
	EXPECT_EQ(-EMSGSIZE, vmig_ctl_handover_query(ctl, big, 16, 5000));
	vmig_ctl_close(ctl);
}

TEST_HARNESS_MAIN
