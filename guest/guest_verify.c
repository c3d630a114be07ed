// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: verification.  Every data page holds a pattern of (index,
 * generation) and the table in guest RAM says which generation it must
 * hold; here a page is checked against it, a wrong one reported, and a
 * verify-all run by every vCPU over the pages it owns.  On the destination
 * each first access is also timed: a slow one was a page fetched on
 * demand, and report_slow sums them up.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "guest_int.h"
#include "guest_page.h"
#include "util.h"

/* Time the first read of a page: what a vCPU feels of a missing page. */
void access_page(struct guest *g, const uint8_t *p)
{
	uint64_t t0, dt, us, max;
	unsigned int b = 0;

	if (!g->measure) {
		(void)*(volatile const uint8_t *)p;
		return;
	}
	t0 = now_ns();
	(void)*(volatile const uint8_t *)p;
	dt = now_ns() - t0;
	if (dt < SLOW_NS)
		return;
	atomic_fetch_add_explicit(&g->slow, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&g->slow_ns, dt, memory_order_relaxed);
	max = atomic_load_explicit(&g->slow_max_ns, memory_order_relaxed);
	while (dt > max && !atomic_compare_exchange_weak(&g->slow_max_ns, &max, dt))
		;
	for (us = dt / 1000; us > 1 && b < SLOW_BUCKETS - 1; us >>= 1)
		b++;
	atomic_fetch_add_explicit(&g->slow_hist[b], 1, memory_order_relaxed);
}

void report_slow(struct guest *g)
{
	uint64_t n = atomic_load(&g->slow);
	unsigned int b;

	if (!g->measure)
		return;
	fprintf(stderr, "guest: %llu slow page accesses (>= %u us)", (unsigned long long)n,
		SLOW_NS / 1000);
	if (n) {
		fprintf(stderr, ": avg %.1f us, max %.1f us; log2-us histogram:",
			atomic_load(&g->slow_ns) / 1e3 / n, atomic_load(&g->slow_max_ns) / 1e3);
		for (b = 0; b < SLOW_BUCKETS; b++)
			if (atomic_load(&g->slow_hist[b]))
				fprintf(stderr, " [%llu us: %llu]", 1ull << b,
					(unsigned long long)atomic_load(&g->slow_hist[b]));
	}
	fprintf(stderr, "\n");
}

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
		access_page(g, g->ram + i * GUEST_PAGE_SIZE);
		if (!guest_page_check(g->ram + i * GUEST_PAGE_SIZE, i, g->table[i]))
			report_bad(g, i, "verify-all");
	}
	atomic_fetch_add(&g->verified, n);
}

/* Every vCPU checks every page it owns: start it ... */
void verify_begin(struct guest *g, struct verify *v)
{
	v->t0 = now_ns();
	v->e0 = atomic_load(&g->errors);
	v->v0 = atomic_load(&g->verified);
	pthread_mutex_lock(&g->lock);
	v->was_stopped = g->state == ST_STOP;
	g->verify_done = 0;
	g->verify_req++;
	__atomic_store_n(&g->state, ST_RUN, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* ... and wait for it; returns the errors found. */
uint64_t verify_end(struct guest *g, struct verify *v, const char *what)
{
	pthread_mutex_lock(&g->lock);
	while (g->verify_done < g->nvcpus)
		pthread_cond_wait(&g->ctl_cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	if (v->was_stopped)
		stop_vcpus(g);
	fprintf(stderr, "guest: %s: %llu pages verified in %.0f ms, %llu errors\n", what,
		(unsigned long long)(atomic_load(&g->verified) - v->v0), (now_ns() - v->t0) / 1e6,
		(unsigned long long)(atomic_load(&g->errors) - v->e0));
	return atomic_load(&g->errors) - v->e0;
}

uint64_t verify_all(struct guest *g, const char *what)
{
	struct verify v;

	verify_begin(g, &v);
	return verify_end(g, &v, what);
}
