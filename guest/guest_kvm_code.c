// SPDX-License-Identifier: GPL-2.0
/*
 * The reference VMM's generated guest (vmig guest --kvm): the guest's code
 * and exception stubs, and fw_build(), which lays them out in the
 * VMM-private slot with the GDT, the identity page tables and the IDT.
 * Nothing here touches KVM; the same bytes are built on a destination and
 * by a vCPU's dump, which compares them with the slot.
 */
#include <stdint.h>
#include <string.h>

#include "guest_kvm_int.h"

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

void fw_build(struct guest_kvm *k, uint8_t *fw)
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
