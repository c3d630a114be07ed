// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: the free set.  With --free PCT a share of the data pages is
 * marked free in the table after the fill (content moot); the helper asks
 * for them as a free-page hint and need not send them.  With --free-churn
 * the set moves on over time, each vCPU moving its own pages, so a hint
 * can go stale the way a real guest's does.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "guest_int.h"
#include "guest_page.h"
#include "util.h"

#define FREE_SHIFT	2	/* --free-churn: of every 100 data pages, this many change */

/*
 * --free-churn: every churn_ms the free set moves on by FREE_SHIFT pages of
 * every 100.  Pages leaving it are written first (their content matters
 * again, after whatever hint called them free); pages joining it are given
 * up.  Each vCPU does its own pages, so no other vCPU races it.
 */
void guest_free_churn(struct vcpu *v)
{
	struct guest *g = v->g;
	uint64_t epoch = (now_ns() - g->t_start) / (g->churn_ms * 1000000ull);
	uint64_t k, n = owned_pages(g, v->id), freed = 0, unfreed = 0, max;

	if (epoch == v->epoch)
		return;
	v->epoch = epoch;
	for (k = 0; k < n; k++) {
		uint64_t i = owned_index(g, v->id, k);
		bool want = (i - g->first_data + epoch * FREE_SHIFT) % 100 < g->free_pct;

		if (want == (g->table[i] == GUEST_FREE))
			continue;
		if (want) {
			__atomic_store_n(&g->table[i], GUEST_FREE, __ATOMIC_RELAXED);
			guest_user_wrote(g, i);
			freed++;
		} else {
			guest_page_write(g->ram + i * GUEST_PAGE_SIZE, i, 1);
			__atomic_store_n(&g->table[i], 1, __ATOMIC_RELAXED);
			guest_user_wrote(g, i);
			unfreed++;
		}
	}
	atomic_fetch_add(&g->churn_freed, freed);
	atomic_fetch_add(&g->churn_unfreed, unfreed);
	max = atomic_load(&g->churn_epochs);
	while (epoch > max && !atomic_compare_exchange_weak(&g->churn_epochs, &max, epoch))
		;
}

/*
 * The free-page hint: pages whose table entry says free.  With --free-touch
 * the guest then writes some of them at once, after the bitmap was taken:
 * they must still arrive (the helper tracks writes before it asks).
 */
int guest_free_hint(void *opaque, unsigned int region, uint64_t *bitmap, uint64_t pages)
{
	struct guest *g = opaque;
	uint64_t i, touched = 0;

	memset(bitmap, 0, (pages + 63) / 64 * 8);
	for (i = g->first_data; i < pages && region == 0; i++)
		if (__atomic_load_n(&g->table[i], __ATOMIC_RELAXED) == GUEST_FREE)
			bitmap[i / 64] |= 1ull << (i % 64);
	for (i = g->first_data; i < pages && region == 0 && touched < g->free_touch; i += 7) {
		if (g->table[i] != GUEST_FREE)
			continue;
		guest_page_write(g->ram + i * GUEST_PAGE_SIZE, i, 1);
		g->table[i] = 1;
		guest_user_wrote(g, i);
		touched++;
	}
	if (touched)
		fprintf(stderr, "guest: wrote %llu hinted-free pages after the hint\n",
			(unsigned long long)touched);
	return 0;
}
