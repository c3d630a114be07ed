// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy under KVM: a real guest whose RAM is a postcopy region.  A
 * vCPU's access to a missing page reaches the region through KVM's own
 * page-fault path (get_user_pages, first with FAULT_FLAG_RETRY_NOWAIT for
 * an asynchronous fault) and must wait for VMIG_PLACE like any fault.
 *
 * The module's nowait_wait_us lets that first attempt wait for the page a
 * while: this guest has no in-kernel local APIC (no KVM_CREATE_IRQCHIP)
 * and runs with interrupts off, so KVM cannot make a fault async and
 * retries it at once without RETRY_NOWAIT, so each
 * missing page costs two faults when the first returns at once and one
 * when it waits and gets the page.
 *
 * Needs /dev/kvm in the guest: VMCHECK_MODULES="irqbypass ccp kvm kvm-amd"
 * make vmcheck (TCG emulates AMD SVM with nested paging); skipped without.
 */
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "vmig_test.h"
#include "kselftest_harness.h"

#define GUEST_PAGES	16

/* Real mode, at 0x1000: read two missing pages, write a third, halt. */
static const unsigned char guest_code[] = {
	0xa0, 0x00, 0x20,		/* mov al, [0x2000] */
	0x8a, 0x1e, 0x05, 0x30,		/* mov bl, [0x3005] */
	0xc6, 0x06, 0x00, 0x40, 0x77,	/* mov byte [0x4000], 0x77 */
	0xf4,				/* hlt */
};

struct pager {
	int fd;
	long ps;
	atomic_int stop;
	unsigned int requested[GUEST_PAGES];
	unsigned int delay_ms;		/* before each PLACE */
	int error;
	pthread_t thread;
};

/* Serve requests: page i is filled with the byte 0x10 + i. */
static void *pager_main(void *arg)
{
	struct pager *pg = arg;
	struct pollfd pfd = { .fd = pg->fd, .events = POLLIN };
	struct vmig_request req;
	struct vmig_place pl;
	char buf[pg->ps];
	uint64_t i;

	while (!atomic_load(&pg->stop)) {
		if (poll(&pfd, 1, 20) <= 0 ||
		    read(pg->fd, &req, sizeof(req)) != sizeof(req))
			continue;
		i = req.offset / pg->ps;
		if (i >= GUEST_PAGES) {
			pg->error = EPROTO;
			break;
		}
		pg->requested[i]++;
		if (pg->delay_ms)
			usleep(pg->delay_ms * 1000);
		memset(buf, 0x10 + i, pg->ps);
		memset(&pl, 0, sizeof(pl));
		pl.offset = req.offset;
		pl.len = pg->ps;
		pl.src = (uintptr_t)buf;
		if (ioctl(pg->fd, VMIG_PLACE, &pl)) {
			pg->error = errno;
			break;
		}
	}
	return NULL;
}

/* The module's nowait_wait_us, put back after each test whatever happens. */
FIXTURE(kvm_pc) {
	long saved;
};

FIXTURE_SETUP(kvm_pc)
{
	self->saved = vmig_param_read("nowait_wait_us");
	ASSERT_LE(0, self->saved) TH_LOG("nowait_wait_us: %s", strerror(-self->saved));
}

FIXTURE_TEARDOWN(kvm_pc)
{
	if (self->saved >= 0)
		EXPECT_EQ(0, vmig_param_write("nowait_wait_us", self->saved));
}

/*
 * Run the guest on a postcopy region whose pages 2-4 are missing, served
 * by a pager that waits @delay_ms before each PLACE, with vmig.ko's
 * nowait_wait_us set to @nowait_us; check what the guest read and wrote
 * and return the region's counters in *@out.
 */
static void run_guest(struct __test_metadata *_metadata, unsigned int nowait_us,
		      unsigned int delay_ms, struct vmig_stats *out)
{

	long ps = vmig_page_size();
	size_t size = GUEST_PAGES * ps;
	struct kvm_userspace_memory_region mem;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct vmig_stats st;
	struct kvm_run *run;
	int kvm, vm, vcpu, dev, run_size, i;
	struct pager pg;
	char *ram, code[ps];

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		SKIP(return, "no /dev/kvm (VMCHECK_MODULES=\"irqbypass ccp kvm kvm-amd\" loads it)");
	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, vmig_param_write("nowait_wait_us", nowait_us));
	memset(&pg, 0, sizeof(pg));
	pg.ps = ps;
	pg.delay_ms = delay_ms;
	pg.fd = vmig_region_new(dev, size, VMIG_REGION_POSTCOPY | VMIG_REGION_NONBLOCK);
	ASSERT_LE(0, pg.fd);
	ram = vmig_region_map(pg.fd, size, 0);
	ASSERT_NE(NULL, ram);

	/* The code page arrived with precopy; pages 2-4 are still missing. */
	memset(code, 0xf4, ps);
	memcpy(code, guest_code, sizeof(guest_code));
	{
		struct vmig_place pl = { .offset = ps, .len = ps, .src = (uintptr_t)code };

		ASSERT_EQ(0, ioctl(pg.fd, VMIG_PLACE, &pl));
	}

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	ASSERT_LE(0, vm);
	mem = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = size,
		.userspace_addr = (uintptr_t)ram,
	};
	ASSERT_EQ(0, ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mem));
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	ASSERT_LE(0, vcpu);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	ASSERT_LT(0, run_size);
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	ASSERT_NE(MAP_FAILED, run);
	ASSERT_EQ(0, ioctl(vcpu, KVM_GET_SREGS, &sregs));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	ASSERT_EQ(0, ioctl(vcpu, KVM_SET_SREGS, &sregs));
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0x1000;
	regs.rflags = 2;
	ASSERT_EQ(0, ioctl(vcpu, KVM_SET_REGS, &regs));

	ASSERT_EQ(0, pthread_create(&pg.thread, NULL, pager_main, &pg));
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, ioctl(vcpu, KVM_RUN, 0)) TH_LOG("KVM_RUN: %s", strerror(errno));
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		/* Anything else is unexpected for this guest. */
		ASSERT_EQ(KVM_EXIT_HLT, run->exit_reason);
	}
	atomic_store(&pg.stop, 1);
	pthread_join(pg.thread, NULL);
	EXPECT_EQ(0, pg.error);

	ASSERT_EQ(0, ioctl(vcpu, KVM_GET_REGS, &regs));
	EXPECT_EQ(0x12, regs.rax & 0xff);
	EXPECT_EQ(0x13, regs.rbx & 0xff);
	EXPECT_EQ(0x77, ram[4 * ps]);
	EXPECT_EQ(0x14, ram[4 * ps + 1]);
	EXPECT_EQ(0, pg.requested[0]);
	EXPECT_EQ(0, pg.requested[1]);
	for (i = 2; i <= 4; i++)
		EXPECT_EQ(1, pg.requested[i]) TH_LOG("page %d", i);
	ASSERT_EQ(0, vmig_region_stats(pg.fd, &st));
	EXPECT_EQ(3, st.requests);
	*out = st;

	munmap(run, run_size);
	close(vcpu);
	close(vm);
	munmap(ram, size);
	close(pg.fd);
	close(dev);
	close(kvm);
}

/*
 * Every pager below waits before it places, so that KVM's synchronous
 * retry finds the page still missing (a page placed in between would be
 * mapped without a fault, and the count would depend on timing).
 */
TEST_F(kvm_pc, kvm_guest_access_to_missing_pages_waits_for_place)
{
	struct vmig_stats st = { 0 };

	/* KVM's first try returns at once: a second, waiting fault a page. */
	run_guest(_metadata, 0, 20, &st);
	if (_metadata->skip)
		return;
	EXPECT_EQ(6, st.missing_faults);
	EXPECT_EQ(0, st.nowait_placed);
	EXPECT_EQ(0, st.nowait_fallbacks);
}

TEST_F(kvm_pc, kvm_first_try_waits_for_its_page_with_nowait_wait_us)
{
	struct vmig_stats st = { 0 };

	/* The first try gets its page and maps it: one fault a page. */
	run_guest(_metadata, 100000, 5, &st);
	if (_metadata->skip)
		return;
	EXPECT_EQ(3, st.missing_faults);
	EXPECT_EQ(3, st.nowait_placed);
	EXPECT_EQ(0, st.nowait_fallbacks);
}

TEST_F(kvm_pc, kvm_first_try_falls_back_when_its_wait_ends)
{
	struct vmig_stats st = { 0 };

	/* Pages come after 200 ms, the first try gives up after 1 ms. */
	run_guest(_metadata, 1000, 200, &st);
	if (_metadata->skip)
		return;
	EXPECT_EQ(6, st.missing_faults);
	EXPECT_EQ(0, st.nowait_placed);
	EXPECT_EQ(3, st.nowait_fallbacks);
}

TEST_F(kvm_pc, kvm_first_try_waits_at_most_100_ms)
{
	struct vmig_stats st = { 0 };

	/* Asked for 10 s, the wait is cut at 100 ms; pages come at 400 ms. */
	run_guest(_metadata, 10000000, 400, &st);
	if (_metadata->skip)
		return;
	EXPECT_EQ(6, st.missing_faults);
	EXPECT_EQ(0, st.nowait_placed);
	EXPECT_EQ(3, st.nowait_fallbacks);
}

TEST_HARNESS_MAIN
