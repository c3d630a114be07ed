/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the files of the postcopy destination share, and nothing else of
 * the helper needs: the received bitmap's bits, the table of open requests
 * (under pc->lock), the first-error-wins failure, and the calls between
 * them.  postcopy_dst.c: the lifecycle (switch, start, resume, finish) and
 * the received bitmap; postcopy_place.c: placing pages and answering the
 * requests waiting for them; postcopy_fault.c: the fault thread (requests
 * out, urgent pages in); postcopy_stats.c: latency samples and the report.
 */
#ifndef VMIG_POSTCOPY_INT_H
#define VMIG_POSTCOPY_INT_H

#include <stdatomic.h>

#include "postcopy_dst.h"

#define PAGE	WIRE_PAGE_SIZE

static inline void set_bits(_Atomic uint64_t *bm, uint64_t first, uint64_t n, bool on)
{
	uint64_t p;

	for (p = first; p < first + n; p++) {
		if (on)
			atomic_fetch_or(&bm[p / 64], 1ull << (p % 64));
		else
			atomic_fetch_and(&bm[p / 64], ~(1ull << (p % 64)));
	}
}

static inline bool test_bit(_Atomic uint64_t *bm, uint64_t p)
{
	return atomic_load_explicit(&bm[p / 64], memory_order_acquire) & (1ull << (p % 64));
}

/* Under lock: the pending entry for (region, page), or -1. */
static inline int pcd_pend_find(struct pc_dst *pc, uint32_t region, uint64_t page)
{
	unsigned int i, n = atomic_load(&pc->npend);

	for (i = 0; i < n; i++)
		if (pc->pend[i].page == page && pc->pend[i].region == region)
			return i;
	return -1;
}

static inline void pcd_pend_remove(struct pc_dst *pc, int i)
{
	unsigned int n = atomic_load(&pc->npend) - 1;

	pc->pend[i] = pc->pend[n];
	atomic_store(&pc->npend, n);
}

/* The first failure's message wins (pc->err); returns -code. */
int pcd_fail(struct pc_dst *pc, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* postcopy_place.c */
void pcd_answer(struct pc_dst *pc, uint32_t region, uint64_t page, bool urgent,
		uint64_t t_place);
int pcd_place_one(struct pc_dst *pc, uint32_t region, uint64_t page, const void *src);

/* postcopy_fault.c: the thread pcd_start and pcd_resume start. */
void *pcd_fault_thread(void *arg);
/* Let the RAM backend write requests to rp (where it can), take that back. */
void pcd_sink_on(struct pc_dst *pc);
int pcd_sink_off(struct pc_dst *pc);

#endif
