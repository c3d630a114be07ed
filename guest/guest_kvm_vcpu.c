// SPDX-License-Identifier: GPL-2.0
/*
 * The reference VMM's KVM vCPUs: their setup (CPUID, long-mode segments and
 * registers at the code's start), the run loop and its exits
 * (vcpu_run_to_next(): a request answered, a bad page reported, an
 * exception reported with the vCPU's dump), one page's touch with the
 * ground truth and the stall it took, and the vCPUs' registers as device
 * state ("kvm-vcpus"), saved at switchover and loaded on the destination.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "guest_kvm_int.h"
#include "libvmig.h"
#include "util.h"

#define STATE_MAGIC	0x4b564d53u	/* "KVMS" */

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.dpl = 0, .db = !code, .s = 1, .l = code, .g = 1,
	};
}

/* Long mode, paging on, at the code's start; r15 = 0. */
int vcpu_reset(struct guest_kvm_vcpu *v)
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

int vcpu_cpuid(struct guest_kvm *k, int fd)
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
int vcpu_run_to_next(struct guest_kvm_vcpu *v)
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

uint64_t guest_kvm_vcpu_count(struct guest_kvm_vcpu *v)
{
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs))
		return 0;
	return regs.r15;
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
