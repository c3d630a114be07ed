// SPDX-License-Identifier: GPL-2.0
/*
 * KVM vCPUs for the reference VMM: the VM, its generated guest code, the
 * vCPUs' register state as device state, and KVM's own dirty logs.  See
 * guest_kvm.h for the guest's loop and the memory layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest_kvm.h"
#include "guest_page.h"
#include "libvmig.h"
#include "util.h"

#define SLOT_RAM	0
#define SLOT_FW		1
#define FW_ALIGN	(2ull << 20)
#define GIB		(1ull << 30)
#define PAGE		4096ull
#define RING_ENTRIES	32768u		/* per vCPU; full rings make the vCPU harvest */
#define STATE_MAGIC	0x4b564d53u	/* "KVMS" */

/*
 * The guest's code, 64-bit, position independent.  Registers: rbx the page
 * index, ecx its generation, rdi the page, r8 its first word, r9 the seed,
 * r10 the word step, r11 the step of word i, r15 pages written.  The
 * pattern is guest_page_write()'s: w[0] = index << 32 | gen, w[i] = seed ^
 * i * step, seed = w[0] * 0xd6e8feb86659fd93.  No stack, no calls: the
 * guest writes nothing but the page and its table entry.  An exception or
 * interrupt (none should ever come: IF is clear) goes through the IDT to
 * a stub that reports it, instead of a triple fault: on AMD, KVM answers a
 * shutdown by INITing the vCPU, so its registers would be lost.
 */
extern const unsigned char guest_kvm_code[], guest_kvm_exc[], guest_kvm_code_end[];
__asm__(
	"	.pushsection .rodata\n"
	"	.globl guest_kvm_code, guest_kvm_exc, guest_kvm_code_end\n"
	"guest_kvm_code:\n"
	"1:	movw $0x10, %dx\n"			/* GUEST_KVM_PORT_NEXT */
	"	inl %dx, %eax\n"
	"	testl %eax, %eax\n"
	"	jz 1b\n"
	"	movl %eax, %ebx\n"
	"	movl 0(,%rbx,4), %ecx\n"		/* the table at guest-physical 0 */
	"	movq %rbx, %rdi\n"
	"	shlq $12, %rdi\n"
	"	cmpl $0xffffffff, %ecx\n"		/* free: nothing to check */
	"	je 5f\n"
	"	testl %ecx, %ecx\n"
	"	jnz 3f\n"
	"	xorl %esi, %esi\n"			/* generation 0: all zero */
	"2:	cmpq $0, (%rdi,%rsi,8)\n"
	"	jne 4f\n"
	"	incl %esi\n"
	"	cmpl $512, %esi\n"
	"	jb 2b\n"
	"	jmp 5f\n"
	"3:	movq %rbx, %r8\n"
	"	shlq $32, %r8\n"
	"	orq %rcx, %r8\n"
	"	cmpq %r8, (%rdi)\n"
	"	jne 4f\n"
	"	movabsq $0xd6e8feb86659fd93, %r9\n"
	"	imulq %r8, %r9\n"
	"	movabsq $0x9e3779b97f4a7c15, %r10\n"
	"	movq %r10, %r11\n"
	"	movl $1, %esi\n"
	"6:	movq %r9, %rax\n"
	"	xorq %r11, %rax\n"
	"	cmpq %rax, (%rdi,%rsi,8)\n"
	"	jne 4f\n"
	"	addq %r10, %r11\n"
	"	incl %esi\n"
	"	cmpl $512, %esi\n"
	"	jb 6b\n"
	"	jmp 5f\n"
	"4:	movl %ebx, %eax\n"
	"	movw $0x11, %dx\n"			/* GUEST_KVM_PORT_BAD */
	"	outl %eax, %dx\n"
	"5:	incl %ecx\n"				/* the next generation, never 0 or free */
	"	jz 7f\n"
	"	cmpl $0xffffffff, %ecx\n"
	"	jne 8f\n"
	"7:	movl $1, %ecx\n"
	"8:	movq %rbx, %r8\n"
	"	shlq $32, %r8\n"
	"	orq %rcx, %r8\n"
	"	movq %r8, (%rdi)\n"
	"	movabsq $0xd6e8feb86659fd93, %r9\n"
	"	imulq %r8, %r9\n"
	"	movabsq $0x9e3779b97f4a7c15, %r10\n"
	"	movq %r10, %r11\n"
	"	movl $1, %esi\n"
	"9:	movq %r9, %rax\n"
	"	xorq %r11, %rax\n"
	"	movq %rax, (%rdi,%rsi,8)\n"
	"	addq %r10, %r11\n"
	"	incl %esi\n"
	"	cmpl $512, %esi\n"
	"	jb 9b\n"
	"	movl %ecx, 0(,%rbx,4)\n"
	"	incq %r15\n"
	"	jmp 1b\n"
	/*
	 * Exception stubs, 16 bytes apart: vector n's pushes an error code of
	 * 0 where the CPU pushes none, then n; the one after vector 31's
	 * catches every interrupt (n = 256).  The common part saves rax and
	 * rdx, reports the vector by OUT to GUEST_KVM_PORT_EXC (the VMM reads
	 * the frame at rsp) and stops there.
	 */
	"	.macro guest_kvm_stub n, err\n"
	"	.balign 16\n"
	"	.if \\err == 0\n"
	"	pushq $0\n"
	"	.endif\n"
	"	pushq $\\n\n"
	"	jmp 20f\n"
	"	.endm\n"
	"	.balign 16\n"
	"guest_kvm_exc:\n"
	"	guest_kvm_stub 0, 0\n	guest_kvm_stub 1, 0\n	guest_kvm_stub 2, 0\n"
	"	guest_kvm_stub 3, 0\n	guest_kvm_stub 4, 0\n	guest_kvm_stub 5, 0\n"
	"	guest_kvm_stub 6, 0\n	guest_kvm_stub 7, 0\n	guest_kvm_stub 8, 1\n"
	"	guest_kvm_stub 9, 0\n	guest_kvm_stub 10, 1\n	guest_kvm_stub 11, 1\n"
	"	guest_kvm_stub 12, 1\n	guest_kvm_stub 13, 1\n	guest_kvm_stub 14, 1\n"
	"	guest_kvm_stub 15, 0\n	guest_kvm_stub 16, 0\n	guest_kvm_stub 17, 1\n"
	"	guest_kvm_stub 18, 0\n	guest_kvm_stub 19, 0\n	guest_kvm_stub 20, 0\n"
	"	guest_kvm_stub 21, 1\n	guest_kvm_stub 22, 0\n	guest_kvm_stub 23, 0\n"
	"	guest_kvm_stub 24, 0\n	guest_kvm_stub 25, 0\n	guest_kvm_stub 26, 0\n"
	"	guest_kvm_stub 27, 0\n	guest_kvm_stub 28, 0\n	guest_kvm_stub 29, 1\n"
	"	guest_kvm_stub 30, 1\n	guest_kvm_stub 31, 0\n	guest_kvm_stub 256, 0\n"
	"	.purgem guest_kvm_stub\n"
	"20:	pushq %rax\n"
	"	pushq %rdx\n"
	"	movl 16(%rsp), %eax\n"		/* the vector */
	"	movw $0x12, %dx\n"			/* GUEST_KVM_PORT_EXC */
	"	outl %eax, %dx\n"
	"21:	hlt\n"
	"	jmp 21b\n"
	"guest_kvm_code_end:\n"
	"	.popsection\n");

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

static void errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static int set_slot(struct guest_kvm *k, unsigned int slot, uint64_t gpa, void *hva,
		    uint64_t size, uint32_t flags)
{
	struct kvm_userspace_memory_region m = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};

	return ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, &m) ? -errno : 0;
}

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

static void fw_build(struct guest_kvm *k, uint8_t *fw)
{
	uint64_t *pml4 = (uint64_t *)(fw + FW_PML4), *pdpt = (uint64_t *)(fw + FW_PDPT);
	uint64_t *gdt = (uint64_t *)(fw + FW_GDT), *idt = (uint64_t *)(fw + FW_IDT(k));
	uint64_t i;

	memcpy(fw, guest_kvm_code, guest_kvm_code_end - guest_kvm_code);
	gdt[0] = 0;
	gdt[1] = 0x00209b0000000000ull;	/* present, code, long mode */
	gdt[2] = 0x00cf93000000ffffull;	/* present, data, writable, 4 GiB */
	/* present, writable, accessed; PDEs also dirty and 2 MiB */
	pml4[0] = (k->fw_base + FW_PDPT) | 0x23;
	for (i = 0; i < k->npd; i++) {
		uint64_t *pd = (uint64_t *)(fw + FW_PD(i));
		unsigned int j;

		pdpt[i] = (k->fw_base + FW_PD(i)) | 0x23;
		for (j = 0; j < 512; j++)
			pd[j] = (i * GIB + j * FW_ALIGN) | 0xe3;
	}
	/* 64-bit interrupt gates: vectors 0-31 to their stubs, the rest to the 33rd. */
	for (i = 0; i < 256; i++) {
		uint64_t h = k->fw_base + (guest_kvm_exc - guest_kvm_code) + 16 * (i < 32 ? i : 32);

		idt[2 * i] = (h & 0xffff) | 8ull << 16 | 0x8eull << 40 | (h >> 16 & 0xffff) << 48;
		idt[2 * i + 1] = h >> 32;
	}
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.dpl = 0, .db = !code, .s = 1, .l = code, .g = 1,
	};
}

/* Long mode, paging on, at the code's start; r15 = 0. */
static int vcpu_reset(struct guest_kvm_vcpu *v)
{
	struct guest_kvm *k = v->k;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs))
		return -errno;
	seg(&sregs.cs, 8, 11, true);
	seg(&sregs.ds, 16, 3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = k->fw_base + FW_GDT;
	sregs.gdt.limit = 23;
	sregs.idt.base = k->fw_base + FW_IDT(k);
	sregs.idt.limit = 256 * 16 - 1;
	sregs.cr0 = 0x80050033;		/* PG, AM, WP, NE, ET, MP, PE */
	sregs.cr3 = k->fw_base + FW_PML4;
	sregs.cr4 = 0x20;		/* PAE */
	sregs.efer = 0x500;		/* LMA, LME */
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs))
		return -errno;
	memset(&regs, 0, sizeof(regs));
	regs.rip = k->fw_base;
	regs.rsp = k->fw_base + FW_STACK_TOP(k, v->id);
	regs.rflags = 2;
	return ioctl(v->fd, KVM_SET_REGS, &regs) ? -errno : 0;
}

static int vcpu_cpuid(struct guest_kvm *k, int fd)
{
	struct kvm_cpuid2 *c;
	int n = 256, r;

	for (;;) {
		c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (!ioctl(k->kvm, KVM_GET_SUPPORTED_CPUID, c))
			break;
		r = -errno;
		free(c);
		if (r != -E2BIG || n > 4096)
			return r;
		n *= 2;
	}
	r = ioctl(fd, KVM_SET_CPUID2, c) ? -errno : 0;
	free(c);
	return r;
}

static void ring_collect(struct guest_kvm_vcpu *v);

/*
 * A vCPU stopped where it never should: print its registers, its pending
 * events, and whether the VMM-private slot (code, GDT, page tables, IDT)
 * still holds what fw_build() wrote.
 */
static void vcpu_dump(struct guest_kvm_vcpu *v)
{
	struct guest_kvm *k = v->k;
	uint64_t len = FW_IDT(k) + PAGE;
	struct kvm_vcpu_events ev;
	struct kvm_sregs s;
	struct kvm_regs r;
	uint8_t *fw = calloc(1, len);

	if (!ioctl(v->fd, KVM_GET_REGS, &r))
		fprintf(stderr, "guest: vCPU %u: rip %#llx rsp %#llx rflags %#llx rax %#llx "
			"rbx %#llx rcx %#llx rdx %#llx rsi %#llx rdi %#llx r8 %#llx r15 %llu\n",
			v->id, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
			r.r8, r.r15);
	if (!ioctl(v->fd, KVM_GET_SREGS, &s))
		fprintf(stderr, "guest: vCPU %u: cr0 %#llx cr2 %#llx cr3 %#llx cr4 %#llx efer "
			"%#llx cs %#x/l%u ds %#x ss %#x gdt %#llx+%u idt %#llx+%u\n", v->id,
			s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.l,
			s.ds.selector, s.ss.selector, s.gdt.base, s.gdt.limit, s.idt.base,
			s.idt.limit);
	if (!ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev))
		fprintf(stderr, "guest: vCPU %u: exception inj %u pend %u nr %u err %#x; "
			"interrupt inj %u nr %u; nmi inj %u pend %u\n", v->id,
			ev.exception.injected, ev.exception.pending, ev.exception.nr,
			ev.exception.error_code, ev.interrupt.injected, ev.interrupt.nr,
			ev.nmi.injected, ev.nmi.pending);
	if (fw) {
		uint64_t i, bad = 0, first = 0;

		fw_build(k, fw);
		for (i = 0; i < len; i++)
			if (fw[i] != k->fw[i] && !bad++)
				first = i;
		fprintf(stderr, "guest: vCPU %u: private slot (code, GDT, page tables, IDT): "
			"%s%llu bytes differ, first at %#llx\n", v->id, bad ? "" : "intact, ",
			(unsigned long long)bad, (unsigned long long)first);
		free(fw);
	}
	fflush(stderr);
}

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "?", "#TS", "#NP",
	"#SS", "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

/* The guest took an exception or interrupt: its stub's frame is at rsp. */
static void vcpu_exception(struct guest_kvm_vcpu *v)
{
	struct guest_kvm *k = v->k;
	struct kvm_sregs s = { 0 };
	struct kvm_regs r;
	uint64_t f[9];		/* rdx, rax, vector, error, rip, cs, rflags, rsp, ss */

	if (ioctl(v->fd, KVM_GET_REGS, &r) || r.rsp < k->fw_base ||
	    r.rsp - k->fw_base > k->fw_size - sizeof(f)) {
		fprintf(stderr, "guest: vCPU %u: took an exception, its frame is lost\n", v->id);
		return;
	}
	memcpy(f, k->fw + (r.rsp - k->fw_base), sizeof(f));
	ioctl(v->fd, KVM_GET_SREGS, &s);
	fprintf(stderr, "guest: vCPU %u: guest %s %llu (%s), error code %#llx, at rip %#llx "
		"(code+%#llx), rflags %#llx, rax %#llx, rdx %#llx, cr2 %#llx\n", v->id,
		f[2] < 32 ? "exception" : "interrupt", (unsigned long long)f[2],
		f[2] >= 32 ? "external" : exc_names[f[2]] ? exc_names[f[2]] : "reserved",
		(unsigned long long)f[3],
		(unsigned long long)f[4], (unsigned long long)(f[4] - k->fw_base),
		(unsigned long long)f[6], (unsigned long long)f[1], (unsigned long long)f[0],
		(unsigned long long)s.cr2);
}

/* Run until the guest stops at the IN of PORT_NEXT again. */
static int vcpu_run_to_next(struct guest_kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	int err;

	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0)) {
			err = errno;
			if (err == EINTR || err == EAGAIN)
				continue;
			fprintf(stderr, "guest: vCPU %u: KVM_RUN: %s\n", v->id, strerror(err));
			vcpu_dump(v);
			return -err;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.port == GUEST_KVM_PORT_NEXT &&
			    run->io.direction == KVM_EXIT_IO_IN && run->io.size == 4) {
				v->pending_in = true;
				return 0;
			}
			if (run->io.port == GUEST_KVM_PORT_BAD &&
			    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4) {
				uint32_t idx;

				memcpy(&idx, (char *)run + run->io.data_offset, 4);
				if (v->k->bad)
					v->k->bad(v->k->opaque, idx);
				continue;
			}
			if (run->io.port == GUEST_KVM_PORT_EXC) {
				vcpu_exception(v);
				vcpu_dump(v);
				return -EFAULT;
			}
			fprintf(stderr, "guest: vCPU %u: unexpected I/O port 0x%x\n", v->id,
				run->io.port);
			vcpu_dump(v);
			return -EPROTO;
		case KVM_EXIT_DIRTY_RING_FULL:
			ring_collect(v);
			continue;
		case KVM_EXIT_INTR:
			continue;
		case KVM_EXIT_SHUTDOWN:
			/* On AMD, KVM has INITed the vCPU: the registers are gone. */
			fprintf(stderr, "guest: vCPU %u: shut down (a triple fault)\n", v->id);
			vcpu_dump(v);
			return -EPROTO;
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "guest: vCPU %u: KVM internal error, suberror %u\n", v->id,
				run->internal.suberror);
			vcpu_dump(v);
			return -EPROTO;
		case KVM_EXIT_FAIL_ENTRY:
			fprintf(stderr, "guest: vCPU %u: entry failed, reason %#llx\n", v->id,
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			vcpu_dump(v);
			return -EPROTO;
		default:
			fprintf(stderr, "guest: vCPU %u: unexpected exit %u\n", v->id,
				run->exit_reason);
			vcpu_dump(v);
			return -EPROTO;
		}
	}
}

/* Answer the pending IN; the next KVM_RUN completes it. */
static void vcpu_answer(struct guest_kvm_vcpu *v, uint32_t index)
{
	memcpy((char *)v->run + v->run->io.data_offset, &index, 4);
	v->pending_in = false;
}

/* Complete a pending IN (answer: no page) without entering the guest. */
static int vcpu_settle(struct guest_kvm_vcpu *v)
{
	int r;

	if (!v->pending_in)
		return 0;
	vcpu_answer(v, 0);
	v->run->immediate_exit = 1;
	r = ioctl(v->fd, KVM_RUN, 0);
	v->run->immediate_exit = 0;
	if (!r || errno != EINTR)
		return r ? -errno : -EPROTO;
	return 0;
}

static void mark(uint64_t *bm, uint64_t i)
{
	__atomic_fetch_or(&bm[i / 64], 1ull << (i % 64), __ATOMIC_RELAXED);
}

int guest_kvm_vcpu_touch(struct guest_kvm_vcpu *v, uint64_t index)
{
	struct guest_kvm *k = v->k;

	int r;

	if (!index || index >= k->npages)
		return -EINVAL;
	/* Settled by a save whose migration then failed: back to its request. */
	if (!v->pending_in) {
		r = vcpu_run_to_next(v);
		if (r)
			return r;
	}
	uint64_t t0, dt, max;

	mark(k->written, index);
	mark(k->written, index * 4 / PAGE);
	vcpu_answer(v, index);
	t0 = now_ns();
	r = vcpu_run_to_next(v);
	dt = now_ns() - t0;
	max = __atomic_load_n(&k->stall_max_ns, __ATOMIC_RELAXED);
	while (dt > max && !__atomic_compare_exchange_n(&k->stall_max_ns, &max, dt, true,
							 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	return r;
}

uint64_t guest_kvm_stall_take(struct guest_kvm *k)
{
	return __atomic_exchange_n(&k->stall_max_ns, 0, __ATOMIC_RELAXED);
}

uint64_t guest_kvm_written_count(struct guest_kvm *k)
{
	uint64_t w, n = 0;

	for (w = 0; w < (k->npages + 63) / 64; w++)
		n += __builtin_popcountll(__atomic_load_n(&k->written[w], __ATOMIC_RELAXED));
	return n;
}

uint64_t guest_kvm_vcpu_count(struct guest_kvm_vcpu *v)
{
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs))
		return 0;
	return regs.r15;
}

struct guest_kvm_vcpu *guest_kvm_vcpu(struct guest_kvm *k, unsigned int id)
{
	return id < k->nvcpus ? &k->vcpus[id] : NULL;
}

int guest_kvm_create(struct guest_kvm **kp, void *ram, uint64_t size, unsigned int nvcpus,
		     bool ring, guest_kvm_bad_fn bad, void *opaque, char *err, size_t errlen)
{
	struct guest_kvm *k;
	unsigned int i;
	int r;

	*kp = NULL;
	if (size % PAGE || size > 256 * GIB || size / PAGE > 0xffffffffull) {
		errf(err, errlen, "guest RAM must be whole pages, at most 256 GiB");
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->ram = ram;
	k->size = size;
	k->npages = size / PAGE;
	k->nvcpus = nvcpus;
	k->bad = bad;
	k->opaque = opaque;
	k->ring = ring;
	k->vm = -1;
	pthread_mutex_init(&k->ring_lock, NULL);
	k->fw_base = (size + FW_ALIGN - 1) / FW_ALIGN * FW_ALIGN;
	k->npd = (k->fw_base + FW_ALIGN) / GIB + 1;
	k->fw_size = FW_STACK_TOP(k, nvcpus - 1);
	if (k->fw_size > FW_ALIGN || nvcpus < 1 ||
	    (uint64_t)(guest_kvm_code_end - guest_kvm_code) > FW_GDT) {
		errf(err, errlen, "%u vCPUs do not fit the VMM's private slot", nvcpus);
		r = -EINVAL;
		goto fail;
	}
	k->written = calloc((k->npages + 63) / 64, 8);
	k->ring_dirty = calloc((k->npages + 63) / 64, 8);
	k->vcpus = calloc(nvcpus, sizeof(*k->vcpus));
	k->fw = mmap(NULL, k->fw_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!k->written || !k->ring_dirty || !k->vcpus || k->fw == MAP_FAILED) {
		if (k->fw == MAP_FAILED)
			k->fw = NULL;
		r = -ENOMEM;
		goto fail;
	}
	fw_build(k, k->fw);

	k->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm < 0) {
		r = -errno;
		errf(err, errlen, "/dev/kvm: %s%s", strerror(errno), errno == ENOENT ?
		     " (no KVM here: load kvm and kvm-amd or kvm-intel)" : "");
		goto fail;
	}
	k->vm = ioctl(k->kvm, KVM_CREATE_VM, 0);
	k->run_size = ioctl(k->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->vm < 0 || k->run_size <= 0) {
		r = -errno;
		errf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	if (ring) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_DIRTY_LOG_RING,
					      .args[0] = RING_ENTRIES *
							 sizeof(struct kvm_dirty_gfn) };
		int max = ioctl(k->kvm, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);

		if (max <= 0 || (uint64_t)max < cap.args[0]) {
			r = -EOPNOTSUPP;
			errf(err, errlen, "this kernel's KVM has no dirty ring of %u entries "
			     "(KVM_CAP_DIRTY_LOG_RING: %d bytes)", RING_ENTRIES, max);
			goto fail;
		}
		if (ioctl(k->vm, KVM_ENABLE_CAP, &cap)) {
			r = -errno;
			errf(err, errlen, "KVM_CAP_DIRTY_LOG_RING: %s", strerror(errno));
			goto fail;
		}
	}
	r = set_slot(k, SLOT_RAM, 0, ram, size, 0);
	if (!r)
		r = set_slot(k, SLOT_FW, k->fw_base, k->fw, k->fw_size, 0);
	if (r) {
		errf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(-r));
		goto fail;
	}
	for (i = 0; i < nvcpus; i++) {
		struct guest_kvm_vcpu *v = &k->vcpus[i];

		v->k = k;
		v->id = i;
		v->fd = ioctl(k->vm, KVM_CREATE_VCPU, i);
		if (v->fd < 0) {
			r = -errno;
			errf(err, errlen, "KVM_CREATE_VCPU %u: %s", i, strerror(errno));
			goto fail;
		}
		v->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			r = -errno;
			errf(err, errlen, "mmap of vCPU %u: %s", i, strerror(errno));
			goto fail;
		}
		if (ring) {
			v->ring = mmap(NULL, RING_ENTRIES * sizeof(struct kvm_dirty_gfn),
				       PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
				       KVM_DIRTY_LOG_PAGE_OFFSET * PAGE);
			if (v->ring == MAP_FAILED) {
				v->ring = NULL;
				r = -errno;
				errf(err, errlen, "mmap of vCPU %u's dirty ring: %s", i,
				     strerror(errno));
				goto fail;
			}
		}
		r = vcpu_cpuid(k, v->fd);
		if (!r)
			r = vcpu_reset(v);
		if (!r)
			r = vcpu_run_to_next(v);
		if (r) {
			errf(err, errlen, "vCPU %u does not start: %s", i, strerror(-r));
			goto fail;
		}
	}
	*kp = k;
	return 0;
fail:
	guest_kvm_destroy(k);
	return r;
}

void guest_kvm_destroy(struct guest_kvm *k)
{
	unsigned int i;

	if (!k)
		return;
	for (i = 0; k->vcpus && i < k->nvcpus; i++) {
		struct guest_kvm_vcpu *v = &k->vcpus[i];

		if (v->ring)
			munmap(v->ring, RING_ENTRIES * sizeof(struct kvm_dirty_gfn));
		if (v->run)
			munmap(v->run, k->run_size);
		if (v->fd > 0)
			close(v->fd);
	}
	if (k->vm >= 0)
		close(k->vm);
	if (k->kvm > 0)
		close(k->kvm);
	if (k->fw)
		munmap(k->fw, k->fw_size);
	free(k->vcpus);
	free(k->written);
	free(k->ring_dirty);
	pthread_mutex_destroy(&k->ring_lock);
	free(k);
}

/* --- register state as device state ------------------------------------- */

struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
};

struct state_hdr {
	uint32_t magic, nvcpus;
	uint64_t ram_size;
};

uint64_t guest_kvm_state_size(const struct guest_kvm *k)
{
	return sizeof(struct state_hdr) + k->nvcpus * sizeof(struct vcpu_state);
}

int guest_kvm_state_save(struct guest_kvm *k, void *buf, uint64_t len)
{
	struct state_hdr h = { .magic = STATE_MAGIC, .nvcpus = k->nvcpus, .ram_size = k->size };
	struct vcpu_state *s = (struct vcpu_state *)((char *)buf + sizeof(h));
	unsigned int i;
	int r;

	if (len != guest_kvm_state_size(k))
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	for (i = 0; i < k->nvcpus; i++) {
		struct guest_kvm_vcpu *v = &k->vcpus[i];

		/* Complete the pending IN (answer: no page) so the state is whole. */
		r = vcpu_settle(v);
		if (r)
			return r;
		if (ioctl(v->fd, KVM_GET_REGS, &s[i].regs) ||
		    ioctl(v->fd, KVM_GET_SREGS, &s[i].sregs))
			return -errno;
	}
	return 0;
}

int guest_kvm_state_load(struct guest_kvm *k, const void *buf, uint64_t len)
{
	const struct vcpu_state *s = (const struct vcpu_state *)((const char *)buf +
								  sizeof(struct state_hdr));
	struct state_hdr h;
	unsigned int i;
	int r;

	if (len != guest_kvm_state_size(k))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != STATE_MAGIC || h.nvcpus != k->nvcpus || h.ram_size != k->size)
		return -EINVAL;
	for (i = 0; i < k->nvcpus; i++) {
		struct guest_kvm_vcpu *v = &k->vcpus[i];

		r = vcpu_settle(v);
		if (r)
			return r;
		if (ioctl(v->fd, KVM_SET_SREGS, &s[i].sregs) ||
		    ioctl(v->fd, KVM_SET_REGS, &s[i].regs))
			return -errno;
		/* The loaded guest goes on from there: to its next request. */
		r = vcpu_run_to_next(v);
		if (r)
			return r;
	}
	return 0;
}

static int dev_save(void *opaque, struct vmig_dev_io *io)
{
	struct guest_kvm *k = opaque;
	uint64_t len = guest_kvm_state_size(k);
	void *buf = malloc(len);
	int r;

	if (!buf)
		return -ENOMEM;
	r = guest_kvm_state_save(k, buf, len);
	if (!r)
		r = vmig_dev_put(io, buf, len);
	free(buf);
	return r;
}

static int dev_load(void *opaque, struct vmig_dev_io *io)
{
	struct guest_kvm *k = opaque;
	uint64_t len = guest_kvm_state_size(k);
	char *buf = malloc(2 * VMIG_DEV_CHUNK_MAX);
	long n, got = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	/* One chunk is expected; take whatever comes so the helper never hangs. */
	while ((n = vmig_dev_get(io, buf + (got < VMIG_DEV_CHUNK_MAX ? got : 0),
				 VMIG_DEV_CHUNK_MAX)) > 0)
		got += n;
	if (n < 0)
		r = n;
	else if ((uint64_t)got != len)
		r = -EINVAL;
	else
		r = guest_kvm_state_load(k, buf, len);
	if (r)
		fprintf(stderr, "guest: kvm-vcpus: cannot load the vCPUs' state (%ld bytes, "
			"%llu expected): %s\n", got, (unsigned long long)len, strerror(-r));
	else
		fprintf(stderr, "guest: kvm-vcpus: %u vCPUs loaded, their guest code goes on "
			"(vCPU 0 wrote %llu pages before)\n", k->nvcpus,
			(unsigned long long)guest_kvm_vcpu_count(&k->vcpus[0]));
	free(buf);
	return r;
}

static const struct vmig_dev_ops dev_ops = { .save = dev_save, .load = dev_load };

int guest_kvm_register_device(struct guest_kvm *k, struct vmig_vmm *vmm)
{
	if (guest_kvm_state_size(k) > VMIG_DEV_CHUNK_MAX)
		return -E2BIG;
	return vmig_vmm_add_device(vmm, "kvm-vcpus", 0, guest_kvm_state_size(k), 0, &dev_ops, k);
}

/* --- ground truth and KVM's dirty logs ----------------------------------- */

void guest_kvm_written_take(struct guest_kvm *k, uint64_t *bitmap)
{
	uint64_t w;

	for (w = 0; w < (k->npages + 63) / 64; w++)
		bitmap[w] = __atomic_exchange_n(&k->written[w], 0, __ATOMIC_RELAXED);
}

static const char *const log_names[] = {
	[GUEST_KVM_LOG_NONE] = "none",
	[GUEST_KVM_LOG_GET] = "kvm-get",
	[GUEST_KVM_LOG_CLEAR] = "kvm-clear",
	[GUEST_KVM_LOG_RING] = "kvm-ring",
};

const char *guest_kvm_log_name(enum guest_kvm_log mode)
{
	return (unsigned int)mode <= GUEST_KVM_LOG_RING ? log_names[mode] : NULL;
}

int guest_kvm_log_parse(const char *s, enum guest_kvm_log *mode)
{
	unsigned int i;

	for (i = 0; i <= GUEST_KVM_LOG_RING; i++)
		if (!strcmp(s, log_names[i])) {
			*mode = i;
			return 0;
		}
	return -EINVAL;
}

/* Move this vCPU's dirty entries into ring_dirty and let KVM re-arm them. */
static void ring_collect_locked(struct guest_kvm_vcpu *v)
{
	struct guest_kvm *k = v->k;

	for (;;) {
		struct kvm_dirty_gfn *e = &v->ring[v->ring_next % RING_ENTRIES];

		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY))
			break;
		if (e->slot == SLOT_RAM && e->offset < k->npages)
			k->ring_dirty[e->offset / 64] |= 1ull << (e->offset % 64);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		v->ring_next++;
	}
}

static void ring_collect(struct guest_kvm_vcpu *v)
{
	struct guest_kvm *k = v->k;

	pthread_mutex_lock(&k->ring_lock);
	ring_collect_locked(v);
	ioctl(k->vm, KVM_RESET_DIRTY_RINGS, 0);
	pthread_mutex_unlock(&k->ring_lock);
}

int guest_kvm_log_enable(struct guest_kvm *k, enum guest_kvm_log mode)
{
	int r;

	if (k->log != GUEST_KVM_LOG_NONE || mode == GUEST_KVM_LOG_NONE)
		return -EBUSY;
	if ((mode == GUEST_KVM_LOG_RING) != k->ring)
		return -EOPNOTSUPP;	/* the ring is chosen at creation */
	if (mode == GUEST_KVM_LOG_GET && k->manual)
		return -EOPNOTSUPP;	/* GET would no longer clear */
	if (mode == GUEST_KVM_LOG_CLEAR && !k->manual) {
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
				   KVM_DIRTY_LOG_INITIALLY_SET,
		};

		if (ioctl(k->vm, KVM_ENABLE_CAP, &cap))
			return -errno;
		k->manual = true;
	}
	r = set_slot(k, SLOT_RAM, 0, k->ram, k->size, KVM_MEM_LOG_DIRTY_PAGES);
	if (r)
		return r;
	k->log = mode;
	/* Every page starts clean: INITIALLY_SET's bits are taken now. */
	if (mode == GUEST_KVM_LOG_CLEAR) {
		uint64_t *bm = calloc((k->npages + 63) / 64, 8);
		long n;

		if (!bm)
			return -ENOMEM;
		n = guest_kvm_log_harvest(k, bm);
		free(bm);
		if (n < 0)
			return n;
	}
	return 0;
}

int guest_kvm_log_disable(struct guest_kvm *k)
{
	int r;

	if (k->log == GUEST_KVM_LOG_NONE)
		return -ENOENT;
	r = set_slot(k, SLOT_RAM, 0, k->ram, k->size, 0);
	k->log = GUEST_KVM_LOG_NONE;
	return r;
}

static long count_bits(const uint64_t *bm, uint64_t words)
{
	long n = 0;
	uint64_t w;

	for (w = 0; w < words; w++)
		n += __builtin_popcountll(bm[w]);
	return n;
}

long guest_kvm_log_harvest(struct guest_kvm *k, uint64_t *bitmap)
{
	uint64_t words = (k->npages + 63) / 64;
	struct kvm_dirty_log get = { .slot = SLOT_RAM, .dirty_bitmap = bitmap };
	struct kvm_clear_dirty_log clr = { .slot = SLOT_RAM, .first_page = 0,
					   .num_pages = k->npages, .dirty_bitmap = bitmap };
	unsigned int i;

	switch (k->log) {
	case GUEST_KVM_LOG_GET:
		if (ioctl(k->vm, KVM_GET_DIRTY_LOG, &get))
			return -errno;
		return count_bits(bitmap, words);
	case GUEST_KVM_LOG_CLEAR:
		if (ioctl(k->vm, KVM_GET_DIRTY_LOG, &get) ||
		    ioctl(k->vm, KVM_CLEAR_DIRTY_LOG, &clr))
			return -errno;
		return count_bits(bitmap, words);
	case GUEST_KVM_LOG_RING:
		pthread_mutex_lock(&k->ring_lock);
		for (i = 0; i < k->nvcpus; i++)
			ring_collect_locked(&k->vcpus[i]);
		ioctl(k->vm, KVM_RESET_DIRTY_RINGS, 0);
		memcpy(bitmap, k->ring_dirty, words * 8);
		memset(k->ring_dirty, 0, words * 8);
		pthread_mutex_unlock(&k->ring_lock);
		return count_bits(bitmap, words);
	default:
		return -ENOENT;
	}
}
