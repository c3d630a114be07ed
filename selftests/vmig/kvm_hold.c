// SPDX-License-Identifier: GPL-2.0
/*
 * Hold one KVM VM open for the rest of the boot, so that the guests the
 * tests start and stop never flip one of KVM's static branches.
 *
 * The kernel patches a static branch through an int3, and under
 * multi-threaded TCG a vCPU can run a stale translation of that int3
 * after the patch is done (docs/testing.md).  KVM flips three of them as
 * its guests come and go:
 *  - the preempt notifiers' branch in __schedule: on with the first VM,
 *    off with the last;
 *  - apic_sw_disabled: on while any vCPU's local APIC is software-disabled
 *    (every vCPU from its creation until its guest enables the APIC; an
 *    incoming QEMU's vCPU until it runs), off a second after the last;
 *  - apic_hw_disabled: on while any vCPU's APIC is disabled in its
 *    APIC-base MSR.
 * The local APIC's two are tested inline in the interrupt path every vCPU
 * runs (__apic_accept_irq); a CI boot of 2026-12-07 froze with one inner
 * guest's vCPU there and QEMU's main thread stuck on the other CPU, right
 * after a destination QEMU whose vCPU had never run was killed: its APIC
 * took the last software-disabled count with it.
 *
 * This VM keeps each count above zero: it exists, and it has an in-kernel
 * local APIC on a vCPU that never runs (software-disabled from reset), whose
 * APIC-base MSR it sets to disabled.  So each branch is patched once, here,
 * before any test runs.
 *
 * Runs as the first "test" of a boot: it forks a child that holds the VM
 * and sleeps, and exits 0 once the VM exists.  It prints no TAP: it tests
 * nothing.  No /dev/kvm: it says so and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#define MSR_IA32_APICBASE	0x1b
#define APIC_DEFAULT_BASE	0xfee00000ULL	/* the ENABLE bit (11) clear */

/* A vCPU with an in-kernel local APIC, disabled both ways; -errno. */
static int hold_apic(int vm)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} msrs = {
		.hdr.nmsrs = 1,
		.e = { .index = MSR_IA32_APICBASE, .data = APIC_DEFAULT_BASE },
	};
	int vcpu;

	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return -errno;
	if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 1)
		return errno ? -errno : -EINVAL;
	return 0;
}

int main(void)
{
	int kvm, vm, null, r;
	pid_t pid;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("# kvm_hold: no /dev/kvm (%s): nothing to hold\n", strerror(errno));
		return 0;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		printf("# kvm_hold: KVM_CREATE_VM: %s\n", strerror(errno));
		return 1;
	}
	r = hold_apic(vm);
	if (r) {
		printf("# kvm_hold: a vCPU with a disabled local APIC: %s\n", strerror(-r));
		return 1;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("# kvm_hold: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid > 0) {
		printf("# kvm_hold: a KVM VM with a disabled local APIC held open by pid %d "
		       "for the rest of the boot\n", (int)pid);
		return 0;
	}
	/* The child: off the console and out of the test's session. */
	setsid();
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	for (;;)
		pause();
}
