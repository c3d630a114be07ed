// SPDX-License-Identifier: GPL-2.0
/*
 * KVM for the reference VMM: the VM and its memslots (guest RAM as slot 0,
 * the VMM-private slot above it), its creation with the vCPUs and its
 * teardown, the ground truth of pages written, and KVM's own dirty logs
 * as dirty sources (dirty log, clear log, dirty ring).  The generated code
 * is in guest_kvm_code.c, the vCPUs in guest_kvm_vcpu.c; see guest_kvm.h
 * for the guest's loop and the memory layout.
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

#include "guest_kvm_int.h"

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

/* --- ground truth and KVM's dirty logs ----------------------------------- */

void guest_kvm_written_take(struct guest_kvm *k, uint64_t *bitmap)
{
	uint64_t w;

	for (w = 0; w < (k->npages + 63) / 64; w++)
		bitmap[w] = __atomic_exchange_n(&k->written[w], 0, __ATOMIC_RELAXED);
}

uint64_t guest_kvm_written_count(struct guest_kvm *k)
{
	uint64_t w, n = 0;

	for (w = 0; w < (k->npages + 63) / 64; w++)
		n += __builtin_popcountll(__atomic_load_n(&k->written[w], __ATOMIC_RELAXED));
	return n;
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

void ring_collect(struct guest_kvm_vcpu *v)
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
