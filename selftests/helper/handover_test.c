// SPDX-License-Identifier: GPL-2.0
/*
 * The handover record of the VMM control protocol (lib/vmm.c, lib/ctl.c):
 * a postcopy source VMM keeps what its helper left across the helper's
 * death, gives it to the next helper, stays stopped meanwhile (RESUME is
 * refused, tracking too) and forgets it on COMPLETE or an empty handover.
 * The VMM runs in a thread of the test, the helpers are vmig_ctl clients.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "libvmig.h"

#define RAM_SIZE	(1 << 20)

struct vmm_thread {
	struct vmig_vmm *vmm;
	pthread_t thread;
	atomic_bool stop;
	atomic_int sessions, resumes, completes, errors, hangups;
	char path[108];
};

/* The VMM: one helper at a time, every STOP and RESUME acknowledged. */
static void *vmm_main(void *arg)
{
	struct vmm_thread *v = arg;

	while (!atomic_load(&v->stop)) {
		if (vmig_vmm_accept(v->vmm, 100))
			continue;
		atomic_fetch_add(&v->sessions, 1);
		for (;;) {
			int ev = vmig_vmm_poll(v->vmm, 100);

			if (ev == VMIG_VMM_NONE) {
				if (atomic_load(&v->stop))
					break;
				continue;
			}
			if (ev == VMIG_VMM_STOP || ev == VMIG_VMM_RESUME) {
				if (ev == VMIG_VMM_RESUME)
					atomic_fetch_add(&v->resumes, 1);
				vmig_vmm_ack(v->vmm, ev);
				continue;
			}
			if (ev == VMIG_VMM_COMPLETE)
				atomic_fetch_add(&v->completes, 1);
			else if (ev == VMIG_VMM_ERROR)
				atomic_fetch_add(&v->errors, 1);
			else
				atomic_fetch_add(&v->hangups, 1);
			break;
		}
	}
	return NULL;
}

/* Wait until @counter reaches @n (at most 5 s). */
static int wait_count(atomic_int *counter, int n)
{
	int i;

	for (i = 0; i < 500 && atomic_load(counter) < n; i++)
		usleep(10000);
	return atomic_load(counter);
}

FIXTURE(handover) {
	struct vmm_thread v;
	void *ram;
	int memfd;
};

FIXTURE_SETUP(handover)
{
	memset(&self->v, 0, sizeof(self->v));
	snprintf(self->v.path, sizeof(self->v.path), "/tmp/vmig-handover-%d.sock", getpid());
	self->memfd = memfd_create("guest", MFD_CLOEXEC);
	ASSERT_LE(0, self->memfd);
	ASSERT_EQ(0, ftruncate(self->memfd, RAM_SIZE));
	self->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, self->memfd, 0);
	ASSERT_NE(MAP_FAILED, self->ram);
	self->v.vmm = vmig_vmm_listen(self->v.path, VMIG_ROLE_SOURCE);
	ASSERT_NE(NULL, self->v.vmm);
	ASSERT_EQ(0, vmig_vmm_add_region(self->v.vmm, self->memfd, self->ram, RAM_SIZE));
	ASSERT_EQ(0, pthread_create(&self->v.thread, NULL, vmm_main, &self->v));
}

FIXTURE_TEARDOWN(handover)
{
	atomic_store(&self->v.stop, true);
	pthread_join(self->v.thread, NULL);
	vmig_vmm_close(self->v.vmm);
	munmap(self->ram, RAM_SIZE);
	close(self->memfd);
}

static struct vmig_ctl *helper(struct vmm_thread *v)
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
	ASSERT_EQ(1, wait_count(&self->v.hangups, 1));
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
	ASSERT_EQ(2, wait_count(&self->v.hangups, 2));
	EXPECT_EQ(0, atomic_load(&self->v.resumes));
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));

	/* An ERROR from a helper does not end it either. */
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	EXPECT_EQ(0, vmig_ctl_error(ctl, "test: failed"));
	ASSERT_EQ(1, wait_count(&self->v.errors, 1));
	vmig_ctl_close(ctl);
	EXPECT_TRUE(vmig_vmm_handed_over(self->v.vmm));

	/* COMPLETE does. */
	ctl = helper(&self->v);
	ASSERT_NE(NULL, ctl);
	EXPECT_EQ(0, vmig_ctl_complete(ctl));
	ASSERT_EQ(1, wait_count(&self->v.completes, 1));
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
