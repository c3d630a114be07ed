// SPDX-License-Identifier: GPL-2.0
/*
 * STOPPED {ran_ns} of the VMM control protocol (lib/vmm_proto.h): a VMM
 * that prepares the switchover with the guest running (vmig qemu: QEMU's
 * migration setup) tells the helper how long the vCPUs ran on after STOP,
 * so the downtime is counted from the real stop; never more than the STOP
 * took.  Helpers and VMMs from before the field keep working both ways.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "kselftest_harness.h"
#include "test_vmm.h"
#include "../../lib/clock.h"
#include "../../lib/vmm_proto.h"

#define RAM_SIZE	(1 << 20)

FIXTURE(stop) {
	struct test_vmm v;
};

FIXTURE_SETUP(stop)
{
	ASSERT_EQ(0, test_vmm_start(&self->v, "stopran", VMIG_ROLE_SOURCE, RAM_SIZE));
}

FIXTURE_TEARDOWN(stop)
{
	test_vmm_stop(&self->v);
}

TEST_F(stop, the_time_the_vcpus_ran_on_reaches_the_helper)
{
	struct vmig_ctl *ctl;
	uint64_t ran = 1;

	self->v.stop_wait_us = 20000;
	self->v.stop_ran_ns = 15000000;		/* of the 20 ms, 15 with the guest running */
	ctl = vmig_ctl_connect(self->v.path, 5000);
	ASSERT_NE(NULL, ctl);
	ASSERT_EQ(0, vmig_ctl_stop_ran(ctl, 5000, &ran));
	EXPECT_EQ(15000000u, ran);
	vmig_ctl_close(ctl);
}

TEST_F(stop, a_vmm_that_claims_more_than_the_stop_took_is_held_to_it)
{
	struct vmig_ctl *ctl;
	uint64_t t0, took, ran;

	self->v.stop_ran_ns = 3600000000000ull;	/* an hour, at once */
	ctl = vmig_ctl_connect(self->v.path, 5000);
	ASSERT_NE(NULL, ctl);
	t0 = now_ns();
	ASSERT_EQ(0, vmig_ctl_stop_ran(ctl, 5000, &ran));
	took = now_ns() - t0;
	EXPECT_GT(ran, 0u);
	EXPECT_LE(ran, took);
	vmig_ctl_close(ctl);
}

TEST_F(stop, a_vmm_from_before_says_nothing_and_the_helper_counts_from_stop)
{
	struct vmig_ctl *ctl;
	uint64_t ran = 1;

	ctl = vmig_ctl_connect(self->v.path, 5000);
	ASSERT_NE(NULL, ctl);
	ASSERT_EQ(0, vmig_ctl_stop_ran(ctl, 5000, &ran));	/* plain vmig_vmm_ack */
	EXPECT_EQ(0u, ran);
	vmig_ctl_close(ctl);
}

/* A helper from before: STOP without payload gets an empty STOPPED. */
TEST(a_helper_from_before_gets_the_stopped_it_knows)
{
	struct test_vmm v;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vmm_msg m;
	unsigned int i;
	int sock;

	ASSERT_EQ(0, test_vmm_start(&v, "stopold", VMIG_ROLE_SOURCE, RAM_SIZE));
	v.stop_ran_ns = 5000000;	/* a VMM that would say it ran 5 ms */
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ASSERT_GE(sock, 0);
	strcpy(sa.sun_path, v.path);
	ASSERT_EQ(0, connect(sock, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, vmm_msg_recv(sock, &m, 5000));	/* HELLO */
	ASSERT_EQ(VMM_HELLO, m.hdr.type);
	for (i = 0; i < m.hdr.nfds; i++)
		close(m.fds[i]);
	ASSERT_EQ(0, vmm_msg_send(sock, VMM_STOP, NULL, 0, NULL, 0));
	ASSERT_EQ(0, vmm_msg_recv(sock, &m, 5000));
	EXPECT_EQ(VMM_STOPPED, m.hdr.type);
	EXPECT_EQ(0u, m.hdr.len);
	close(sock);
	test_vmm_stop(&v);
}

TEST_HARNESS_MAIN
