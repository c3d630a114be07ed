/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the KVM rooms of the reference VMM share, and nothing else uses:
 * the VM and vCPU structures, the memslots, the VMM-private slot's layout,
 * the generated code's bounds, and the few functions one room calls in
 * another.  guest_kvm_code.c generates the guest's code and its tables,
 * guest_kvm_vcpu.c sets up, runs and saves the vCPUs, guest_kvm.c holds
 * the VM, its memslots and the dirty sources.  The public interface is
 * guest_kvm.h.
 */
#ifndef VMIG_GUEST_KVM_INT_H
#define VMIG_GUEST_KVM_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest_kvm.h"

#define SLOT_RAM	0
#define SLOT_FW		1
#define FW_ALIGN	(2ull << 20)
#define GIB		(1ull << 30)
#define PAGE		4096ull
#define RING_ENTRIES	32768u		/* per vCPU; full rings make the vCPU harvest */

/*
 * The private slot, in pages: the code (its last bytes the GDT), PML4,
 * PDPT, one page directory per GiB identity-mapping everything below the
 * slot's end with 2 MiB pages, the IDT, then one stack page per vCPU (used
 * only to report an exception).  fw_build() writes all but the stacks.
 */
#define FW_GDT		(PAGE - 32)	/* null, 64-bit code (selector 8), data (16) */
#define FW_PML4		(1 * PAGE)
#define FW_PDPT		(2 * PAGE)
#define FW_PD(i)	((3 + (i)) * PAGE)
#define FW_IDT(k)	FW_PD((k)->npd)
#define FW_STACK_TOP(k, id)	(FW_IDT(k) + (2 + (id)) * PAGE)

/* The guest's code and its exception stubs (guest_kvm_code.c). */
extern const unsigned char guest_kvm_code[], guest_kvm_exc[], guest_kvm_code_end[];

struct guest_kvm_vcpu {
	struct guest_kvm *k;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	struct kvm_dirty_gfn *ring;
	uint32_t ring_next;		/* next entry to collect */
	bool pending_in;		/* stopped at the IN of PORT_NEXT */
};

struct guest_kvm {
	int kvm, vm;
	uint8_t *ram, *fw;
	uint64_t size, npages, fw_base, fw_size, npd;
	unsigned int nvcpus;
	int run_size;
	guest_kvm_bad_fn bad;
	void *opaque;
	struct guest_kvm_vcpu *vcpus;

	uint64_t *written;		/* ground truth, atomic bits */
	uint64_t stall_max_ns;		/* the longest touch since guest_kvm_stall_take() */
	enum guest_kvm_log log;
	bool ring;
	bool manual;			/* MANUAL_PROTECT is on: for good, for the whole VM */
	pthread_mutex_t ring_lock;	/* the rings' collect indexes, ring_dirty */
	uint64_t *ring_dirty;		/* collected since the last harvest */
};

/* guest_kvm_code.c: the private slot's code, GDT, page tables and IDT into fw. */
void fw_build(struct guest_kvm *k, uint8_t *fw);

/* guest_kvm_vcpu.c: a new vCPU's CPUID and registers, and its run loop. */
int vcpu_cpuid(struct guest_kvm *k, int fd);
int vcpu_reset(struct guest_kvm_vcpu *v);
int vcpu_run_to_next(struct guest_kvm_vcpu *v);

/* guest_kvm.c: a full dirty ring, harvested from its vCPU's thread. */
void ring_collect(struct guest_kvm_vcpu *v);

#endif
