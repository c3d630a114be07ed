/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KVM vCPUs for the reference VMM (vmig guest --kvm).
 *
 * Guest RAM (the vmig.ko region or the memfd, as the VMM maps it) is KVM
 * memslot 0 at guest-physical 0.  A second, VMM-private slot above it holds
 * what the VMM generates at start: the guest's code and identity page
 * tables (64-bit long mode, 2 MiB pages), a GDT and an IDT whose stubs
 * report any exception by OUT to GUEST_KVM_PORT_EXC.  It is rebuilt the
 * same on a destination, never migrated, never dirty-logged.
 *
 * The guest's loop, per vCPU: IN from GUEST_KVM_PORT_NEXT gives the index
 * of the page to write (0: none, ask again); the guest checks the page
 * against its generation in the table (guest_page.h: the same format as the
 * thread guest), reports a wrong page by OUT to GUEST_KVM_PORT_BAD, writes
 * the next generation and stores it in the table, counts it in r15, and
 * asks again.  So the VMM keeps the pattern and the rate (it chooses the
 * index), and the guest does every access to guest RAM.  Between two
 * guest_kvm_vcpu_touch() calls a vCPU sits at a completed page, which is
 * where it stops for switchover and where its registers are saved.
 */
#ifndef VMIG_GUEST_KVM_H
#define VMIG_GUEST_KVM_H

#include <stdbool.h>
#include <stdint.h>

#define GUEST_KVM_PORT_NEXT	0x10
#define GUEST_KVM_PORT_BAD	0x11
#define GUEST_KVM_PORT_EXC	0x12	/* an exception: the vCPU stops */

struct guest_kvm;
struct guest_kvm_vcpu;

/* Called from a vCPU's thread when the guest found page index wrong. */
typedef void (*guest_kvm_bad_fn)(void *opaque, uint64_t index);

/* KVM's own dirty logs (--dirty-source), and none. */
enum guest_kvm_log {
	GUEST_KVM_LOG_NONE = 0,
	GUEST_KVM_LOG_GET,		/* KVM_GET_DIRTY_LOG: get clears and protects */
	GUEST_KVM_LOG_CLEAR,		/* MANUAL_PROTECT + INITIALLY_SET, CLEAR re-arms */
	GUEST_KVM_LOG_RING,		/* the per-vCPU dirty ring + KVM_RESET_DIRTY_RINGS */
};

/*
 * A VM on ram (size bytes, mapped in this process) with nvcpus vCPUs.  ring:
 * create it with dirty rings (they must exist before the vCPUs; KVM then
 * refuses KVM_GET_DIRTY_LOG).  Returns 0 or -errno, with a reason in err.
 */
int guest_kvm_create(struct guest_kvm **kp, void *ram, uint64_t size, unsigned int nvcpus,
		     bool ring, guest_kvm_bad_fn bad, void *opaque, char *err, size_t errlen);
void guest_kvm_destroy(struct guest_kvm *k);
struct guest_kvm_vcpu *guest_kvm_vcpu(struct guest_kvm *k, unsigned int id);

/*
 * Run the vCPU until it has checked and written page index (its generation
 * in the table too) and asks for the next.  Only the vCPU's own thread.
 * 0, or -errno (the guest stopped in a way it never should: the message is
 * printed).
 */
int guest_kvm_vcpu_touch(struct guest_kvm_vcpu *v, uint64_t index);
/* Pages this vCPU's guest code has written (its r15), 0 before it ran. */
uint64_t guest_kvm_vcpu_count(struct guest_kvm_vcpu *v);

/*
 * The vCPUs' registers as device state ("kvm-vcpus"): saved at switchover,
 * loaded on the destination before it resumes.  The VMM's vCPU threads
 * must be parked (between touches).
 */
struct vmig_vmm;
/* Declare that device ("kvm-vcpus", instance 0) to the VMM's helper. */
int guest_kvm_register_device(struct guest_kvm *k, struct vmig_vmm *vmm);
uint64_t guest_kvm_state_size(const struct guest_kvm *k);
int guest_kvm_state_save(struct guest_kvm *k, void *buf, uint64_t len);
int guest_kvm_state_load(struct guest_kvm *k, const void *buf, uint64_t len);

/*
 * Ground truth for the dirty checks: pages the guest code was told to write
 * since the last guest_kvm_written_take(), with their table pages.  Exact
 * when every vCPU is parked.
 */
void guest_kvm_written_take(struct guest_kvm *k, uint64_t *bitmap);

/* Pages marked written now (table pages included). */
uint64_t guest_kvm_written_count(struct guest_kvm *k);
/* The longest guest_kvm_vcpu_touch() since the last call, in ns (a vCPU's stall). */
uint64_t guest_kvm_stall_take(struct guest_kvm *k);

/* KVM's dirty logging on guest RAM's slot: enable (all clean), harvest, disable. */
int guest_kvm_log_enable(struct guest_kvm *k, enum guest_kvm_log mode);
/*
 * Pages written since the last harvest (or enable) into bitmap, protected
 * again before it returns (clear mode: GET then CLEAR of what it got).
 * Returns the count, or -errno.
 */
long guest_kvm_log_harvest(struct guest_kvm *k, uint64_t *bitmap);
int guest_kvm_log_disable(struct guest_kvm *k);
const char *guest_kvm_log_name(enum guest_kvm_log mode);
int guest_kvm_log_parse(const char *s, enum guest_kvm_log *mode);

#endif
