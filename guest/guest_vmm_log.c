// SPDX-License-Identifier: GPL-2.0
/*
 * --kvm: KVM's own dirty log, offered to the helper as the VMM's log
 * (vmig_vmm_set_dirty_log; 'vmig migrate --track vmm').  KVM logs what the
 * vCPUs write; what this VMM writes itself from its threads (free-page
 * churn and touches: a data page and its table entry) goes into user_dirty,
 * and each collect hands both over.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "guest_int.h"
#include "guest_page.h"

void guest_user_wrote(struct guest *g, uint64_t i)
{
	_Atomic uint64_t *bm = atomic_load_explicit(&g->user_dirty, memory_order_acquire);
	uint64_t t = i * sizeof(g->table[0]) / GUEST_PAGE_SIZE;	/* its table page */

	if (!bm)
		return;
	atomic_fetch_or_explicit(&bm[i / 64], 1ull << (i % 64), memory_order_release);
	atomic_fetch_or_explicit(&bm[t / 64], 1ull << (t % 64), memory_order_release);
}

static int log_start(void *opaque)
{
	struct guest *g = opaque;
	uint64_t w, words = (g->npages + 63) / 64;
	int r;

	/* One bitmap for the VMM's life: a late mark of an ended session lands in it harmlessly. */
	if (!g->user_dirty_buf)
		g->user_dirty_buf = calloc(words, sizeof(*g->user_dirty_buf));
	if (!g->user_dirty_buf)
		return -ENOMEM;
	for (w = 0; w < words; w++)
		atomic_store_explicit(&g->user_dirty_buf[w], 0, memory_order_relaxed);
	/* Marks count from now: a write before it is in the bulk stage's copy. */
	atomic_store_explicit(&g->user_dirty, g->user_dirty_buf, memory_order_release);
	r = guest_kvm_log_enable(g->kvm, g->vmm_log);
	if (r)
		atomic_store(&g->user_dirty, NULL);
	return r;
}

static int log_collect(void *opaque, unsigned int region, uint64_t *bitmap, uint64_t pages)
{
	struct guest *g = opaque;
	_Atomic uint64_t *user = atomic_load(&g->user_dirty);
	uint64_t w;
	long n;

	if (region || pages != g->npages || !user)
		return -EINVAL;
	n = guest_kvm_log_harvest(g->kvm, bitmap);
	if (n < 0)
		return n;
	for (w = 0; w < (pages + 63) / 64; w++)
		bitmap[w] |= atomic_exchange_explicit(&user[w], 0, memory_order_acquire);
	return 0;
}

/* The session ended: marks stop (one racing this lands in the buffer, unread). */
static void log_stop(void *opaque)
{
	struct guest *g = opaque;

	atomic_store(&g->user_dirty, NULL);
	guest_kvm_log_disable(g->kvm);
}

static const struct vmig_dirty_log_ops log_ops = {
	.start = log_start,
	.collect = log_collect,
	.stop = log_stop,
};

void guest_vmm_log_offer(struct guest *g, struct vmig_vmm *vmm)
{
	if (g->kvm && g->vmm_log != GUEST_KVM_LOG_NONE)
		vmig_vmm_set_dirty_log(vmm, &log_ops, g);
}

void guest_vmm_log_free(struct guest *g)
{
	free((void *)g->user_dirty_buf);
	g->user_dirty_buf = NULL;
}
