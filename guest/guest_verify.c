// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: verification.  Every data page holds a pattern of (index,
 * generation) and the table in guest RAM says which generation it must
 * hold; here a page is checked against it, a wrong one reported, and a
 * verify-all run by every vCPU over the pages it owns.  A verify-all's
 * accesses are not timed (guest_slow.c times the workload's alone).
 */
#include <stdatomic.h>
#include <stdio.h>

#include "guest_int.h"
#include "guest_page.h"
#include "util.h"

void report_bad(struct guest *g, uint64_t i, const char *when)
{
	uint64_t errs = atomic_fetch_add(&g->errors, 1);

	if (errs < 5) {
		uint64_t idx;
		uint32_t gen;

		guest_page_describe(g->ram + i * GUEST_PAGE_SIZE, &idx, &gen);
		fprintf(stderr, "guest: page %llu is wrong (%s): expected generation %u, found "
			"index %llu generation %u\n", (unsigned long long)i, when, g->table[i],
			(unsigned long long)idx, gen);
	}
}

void verify_own(struct vcpu *v)
{
	struct guest *g = v->g;
	uint64_t k, n = owned_pages(g, v->id);

	for (k = 0; k < n; k++) {
		uint64_t i = owned_index(g, v->id, k);

		if (g->table[i] == GUEST_FREE)
			continue;
		if (!guest_page_check(g->ram + i * GUEST_PAGE_SIZE, i, g->table[i]))
			report_bad(g, i, "verify-all");
	}
	atomic_fetch_add(&g->verified, n);
}

/* Every vCPU checks every page it owns; returns the errors found. */
uint64_t verify_all(struct guest *g, const char *what)
{
	uint64_t t0 = now_ns(), e0 = atomic_load(&g->errors), v0 = atomic_load(&g->verified);
	bool was_stopped;

	pthread_mutex_lock(&g->lock);
	was_stopped = g->state == ST_STOP;
	g->verify_done = 0;
	g->verify_req++;
	__atomic_store_n(&g->state, ST_RUN, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&g->cond);
	while (g->verify_done < g->nvcpus)
		pthread_cond_wait(&g->ctl_cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	if (was_stopped)
		stop_vcpus(g);
	fprintf(stderr, "guest: %s: %llu pages verified in %.0f ms, %llu errors\n", what,
		(unsigned long long)(atomic_load(&g->verified) - v0), (now_ns() - t0) / 1e6,
		(unsigned long long)(atomic_load(&g->errors) - e0));
	return atomic_load(&g->errors) - e0;
}
