// SPDX-License-Identifier: GPL-2.0
/*
 * Hold one KVM VM open for the rest of the boot, so that the guests the
 * tests start and stop are never the first or the last VM.
 *
 * KVM turns the preempt-notifier static branch in __schedule on when its
 * first VM is created and off when its last is destroyed, and the kernel
 * patches that branch through an int3.  Under multi-threaded TCG a vCPU
 * can run a stale translation of that int3 after the patch is done
 * (docs/testing.md).  With this VM held, the branch is patched once, here,
 * before any test runs, instead of at every QEMU start and exit.
 *
 * Runs as the first "test" of a boot: it forks a child that holds the VM
 * and sleeps, and exits 0 once the VM exists.  It prints no TAP: it tests
 * nothing.  No /dev/kvm: it says so and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

int main(void)
{
	int kvm, vm, null;
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
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("# kvm_hold: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid > 0) {
		printf("# kvm_hold: a KVM VM held open by pid %d for the rest of the boot\n",
		       (int)pid);
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
