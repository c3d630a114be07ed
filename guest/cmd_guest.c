// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: the reference VMM.  Guest RAM is a memfd; vCPU threads dirty
 * it (random, sequential or not at all, at a set rate), every page
 * self-checking (guest_page.h).  It talks to the helper through libvmig's
 * VMM protocol, exactly as a real VMM would.  This file is the sequencer:
 * options, guest RAM (and the KVM VM over it), the control socket, the
 * vCPUs, then the helpers' sessions or a dirty check; the rooms are named
 * in guest_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cmd.h"
#include "guest_int.h"
#include "guest_kvm_check.h"
#include "guest_page.h"
#include "util.h"


static void kvm_bad(void *opaque, uint64_t i)
{
	report_bad(opaque, i, "checked by the KVM guest code");
}

static int check_stop(void *opaque)
{
	return stop_vcpus(opaque);
}

static void check_resume(void *opaque)
{
	set_state(opaque, ST_RUN);
}

static void check_span(void *opaque, unsigned int pct)
{
	struct guest *g = opaque;

	g->span_pct = pct;
}

/*
 * --mem-path: guest RAM is an unnamed file on a tmpfs, as QEMU's
 * memory-backend-file.  What it buys is the mount's huge= option: the
 * folios are 2 MiB where the tmpfs allows it, whatever the system's
 * shmem_enabled says for memfds, and every mapping of it (ours, the
 * helpers') is PMD-aligned by the tmpfs.  Only a tmpfs: the uffd backend
 * tracks shared memory, and hugetlbfs would make a postcopy place whole
 * huge pages.  The fd, or -1 with the reason said.
 */
static int mem_path_open(const struct guest_args *a)
{
	struct statfs sf;
	int fd;

	fd = open(a->mem_path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "vmig guest: --mem-path %s: %s\n", a->mem_path, strerror(errno));
		return -1;
	}
	if (fstatfs(fd, &sf) || sf.f_type != TMPFS_MAGIC) {
		fprintf(stderr, "vmig guest: --mem-path %s: not a tmpfs (the uffd backend "
			"tracks shared memory: mount -t tmpfs -o huge=always ... %s)\n",
			a->mem_path, a->mem_path);
		close(fd);
		return -1;
	}
	if (ftruncate(fd, a->mem)) {
		fprintf(stderr, "vmig guest: --mem-path %s: cannot size it to %llu bytes: %s\n",
			a->mem_path, (unsigned long long)a->mem, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * How much of guest RAM is mapped here in 2 MiB pages (smaps' PMD-mapped
 * shmem), in MiB; -1 if /proc cannot say.  --mem-path prints it at exit,
 * so an operator (and the tests) see whether the tmpfs gave huge pages.
 */
static long ram_pmd_mapped_mib(const struct guest *g)
{
	unsigned long start, end, kb;
	bool ours = false;
	char line[256];
	long mib = -1;
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)	/* a mapping's first line */
			ours = start == (uintptr_t)g->ram;
		else if (ours && sscanf(line, "ShmemPmdMapped: %lu kB", &kb) == 1)
			mib = kb >> 10;
	}
	fclose(f);
	return mib;
}

/* Guest RAM from the backend asked, mapped; its fd, or -1 (exit status 1). */
static int ram_open(struct guest_args *a, enum vmig_backend *chosen)
{
	struct guest *g = &a->g;
	int fd;

	if (a->mem_path) {
		fd = mem_path_open(a);
		if (fd < 0)
			return -1;
		*chosen = VMIG_BACKEND_UFFD;
	} else {
		fd = vmig_ram_create(a->backend, a->mem, chosen);
	}
	if (fd < 0) {
		fprintf(stderr, "vmig guest: cannot create guest RAM (%s): %s\n",
			vmig_backend_name(a->backend),
			fd == -ENODEV ? "no /dev/vmig, and vmig.ko cannot be loaded" :
			fd == -ENOENT ? "no /dev/vmig, and vmig.ko is not installed (make "
					"install, or vmig module load --ko PATH)" :
			fd == -EPERM ? "no /dev/vmig, and loading vmig.ko needs root" :
			strerror(-fd));
		return -1;
	}
	g->ram = mmap(NULL, a->mem, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (g->ram == MAP_FAILED) {
		perror("vmig guest: mmap");
		return -1;
	}
	g->table = (uint32_t *)g->ram;
	return fd;
}

/* --kvm: the VM over guest RAM, checking --dirty-source first; 0 or the exit status. */
static int kvm_vm_open(struct guest_args *a, int fd, enum vmig_backend chosen)
{
	struct guest *g = &a->g;
	char err[256] = "";
	unsigned int nsrc;
	bool ring = false;
	int r = 0;

	if (a->check_rounds || a->bench_rounds)
		r = guest_kvm_sources_parse(a->sources, chosen == VMIG_BACKEND_KMOD ? fd : -1,
					    &nsrc, &ring, err, sizeof(err));
	if (r) {
		fprintf(stderr, "vmig guest: bad --dirty-source '%s': %s\n", a->sources, err);
		return 2;
	}
	if (g->vmm_log == GUEST_KVM_LOG_RING && !a->check_rounds && !a->bench_rounds)
		ring = true;	/* the ring must exist before the vCPUs */
	r = guest_kvm_create(&g->kvm, g->ram, a->mem, g->nvcpus, ring, kvm_bad, g, err,
			     sizeof(err));
	if (r) {
		fprintf(stderr, "vmig guest: --kvm: %s\n", err);
		return 1;
	}
	return 0;
}

/* --dirty-check or --dirty-bench, instead of waiting for a helper; the exit status. */
static int dirty_check_run(struct guest_args *a, int fd, enum vmig_backend chosen)
{
	struct guest *g = &a->g;
	struct guest_kvm_check_ops ops = {
		.opaque = g, .stop = check_stop, .resume = check_resume,
		.set_span = check_span,
	};
	int kfd = chosen == VMIG_BACKEND_KMOD ? fd : -1;
	int status;

	if (a->check_rounds)
		status = guest_kvm_check(g->kvm, kfd, a->sources, a->check_rounds, g->ram, a->mem,
					 &ops);
	else
		status = guest_kvm_bench(g->kvm, kfd, a->sources, a->bench_rounds, a->mem, &ops);
	if (verify_all(g, "verify-all after the dirty check") && !status)
		status = 1;
	fprintf(stderr, "guest: %llu page writes by the guest code, %llu wrong pages\n",
		(unsigned long long)atomic_load(&g->writes),
		(unsigned long long)atomic_load(&g->errors));
	if (atomic_load(&g->errors) && !status)
		status = 1;
	return status;
}

static int guest_run(int argc, char **argv)
{
	struct guest_args a = {
		.g = { .nvcpus = 2, .pattern = PAT_RANDOM, .fill = true },
		.mem = 256ull << 20, .rate = 64, .run_s = 1, .life_s = 600,
		.sources = "manual-init,kvm-clear", .backend = VMIG_BACKEND_AUTO,
	};
	struct guest *g = &a.g;
	enum vmig_backend chosen = VMIG_BACKEND_UFFD;
	struct vmig_vmm *vmm;
	uint64_t deadline;
	int fd, status;

	status = guest_opts_parse(&a, argc, argv);
	if (status >= 0)
		return status;
	deadline = now_ns() + a.life_s * 1000000000ull;
	g->npages = a.mem / GUEST_PAGE_SIZE;
	g->first_data = guest_table_pages(g->npages);
	if (g->first_data >= g->npages) {
		fprintf(stderr, "vmig guest: --mem too small\n");
		return 2;
	}
	g->pps = a.rate ? a.rate * 256.0 / g->nvcpus : 0;
	if (a.incoming) {
		g->fill = false;
		g->churn_ms = 0;
	}
	g->t_start = now_ns();

	fd = ram_open(&a, &chosen);
	if (fd < 0)
		return 1;
	if (a.kvm) {
		status = kvm_vm_open(&a, fd, chosen);
		if (status)
			return status;
	}
	status = guest_vmm_open(&a, fd, &vmm);
	if (status)
		return status;
	g->state = a.incoming ? ST_STOP : ST_RUN;
	if (guest_vcpus_start(g))
		return 1;
	printf("guest: ready: %llu MiB, %u %svCPUs, pattern %s, dirty rate %llu MiB/s, %s, "
	       "socket %s, RAM %s\n", (unsigned long long)(a.mem >> 20), g->nvcpus,
	       g->kvm ? "KVM " : "", pattern_names[g->pattern], (unsigned long long)a.rate,
	       a.incoming ? "incoming" : "source", a.sock,
	       chosen == VMIG_BACKEND_KMOD ? "vmig.ko region (kmod)" :
	       a.mem_path ? "tmpfs file (uffd)" : "memfd (uffd)");
	fflush(stdout);
	if (a.check_rounds || a.bench_rounds)
		status = dirty_check_run(&a, fd, chosen);
	else
		status = guest_serve(&a, vmm, deadline);
	if (a.mem_path)
		fprintf(stderr, "guest: RAM in 2 MiB mappings at exit: %ld MiB of %llu\n",
			ram_pmd_mapped_mib(g), (unsigned long long)(a.mem >> 20));

	guest_vcpus_join(g);
	vmig_vmm_close(vmm);
	guest_vmm_log_free(g);
	guest_kvm_destroy(g->kvm);
	munmap(g->ram, a.mem);
	close(fd);
	return status;
}

const struct vmig_cmd vmig_cmd_guest = {
	.name = "guest",
	.summary = "the reference VMM: a guest dirtying self-checking pages",
	.run = guest_run,
};
