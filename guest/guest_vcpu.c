// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: the vCPUs.  One thread each fills the data pages it owns
 * (every nvcpus-th page), then accesses them in the --pattern asked, at the
 * --dirty-rate asked, slowed by the helper's throttle (auto-converge):
 * each touch checks the page against the table and writes its next
 * generation (with --kvm, the guest code does both).  The control thread
 * starts, stops, parks and joins them here; between two pages a vCPU also
 * runs a verify-all or a free-set move when asked.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "guest_int.h"
#include "guest_page.h"
#include "util.h"

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void touch(struct vcpu *v, uint64_t i)
{
	struct guest *g = v->g;
	uint8_t *p = g->ram + i * GUEST_PAGE_SIZE;
	uint32_t gen;

	if (v->kvm) {
		/* The guest code checks the page, writes it, updates the table. */
		if (guest_kvm_vcpu_touch(v->kvm, i)) {
			fprintf(stderr, "guest: vCPU %u failed; the guest cannot go on\n", v->id);
			fflush(stderr);
			_exit(1);
		}
		atomic_fetch_add_explicit(&g->checked, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&g->writes, 1, memory_order_relaxed);
		return;
	}

	access_page(g, p);
	gen = g->table[i] + 1;
	if (g->table[i] != GUEST_FREE && !guest_page_check(p, i, g->table[i]))
		report_bad(g, i, "on touch");
	atomic_fetch_add_explicit(&g->checked, 1, memory_order_relaxed);
	if (!gen || gen == GUEST_FREE)
		gen = 1;
	guest_page_write(p, i, gen);
	g->table[i] = gen;
	atomic_fetch_add_explicit(&g->writes, 1, memory_order_relaxed);
}

/*
 * Auto-converge: after each millisecond of running, sleep long enough that
 * the vCPU runs only (100 - throttle) % of the time.  Returns true if it
 * slept (the caller then restarts its rate budget: sleeping earns none).
 */
static bool throttle_vcpu(struct guest *g, uint64_t *run_start)
{
	unsigned int pct = g->vmm ? vmig_vmm_throttle(g->vmm) : 0;
	uint64_t t = now_ns(), ran = t - *run_start;
	unsigned int max;

	if (!pct) {
		*run_start = t;
		return false;
	}
	if (ran < 1000000)
		return false;
	max = atomic_load_explicit(&g->throttled_max, memory_order_relaxed);
	while (pct > max && !atomic_compare_exchange_weak(&g->throttled_max, &max, pct))
		;
	usleep(ran * pct / (100 - pct) / 1000);
	*run_start = now_ns();
	return true;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct guest *g = v->g;
	uint64_t n = owned_pages(g, v->id), t_last = now_ns(), run_start = t_last;
	double budget = 0;

	if (g->fill) {
		uint64_t k;

		for (k = 0; k < n; k++) {
			uint64_t i = owned_index(g, v->id, k);

			guest_page_write(g->ram + i * GUEST_PAGE_SIZE, i, 1);
			g->table[i] = (i - g->first_data) % 100 < g->free_pct ? GUEST_FREE : 1;
		}
	}
	pthread_mutex_lock(&g->lock);
	g->filled++;
	pthread_cond_broadcast(&g->ctl_cond);
	pthread_mutex_unlock(&g->lock);

	for (;;) {
		if (__atomic_load_n(&g->state, __ATOMIC_ACQUIRE) != ST_RUN ||
		    __atomic_load_n(&g->verify_req, __ATOMIC_ACQUIRE) != v->verify_seen) {
			pthread_mutex_lock(&g->lock);
			if (g->state == ST_STOP) {
				g->parked++;
				pthread_cond_broadcast(&g->ctl_cond);
				while (g->state == ST_STOP)
					pthread_cond_wait(&g->cond, &g->lock);
				g->parked--;
			}
			if (g->state == ST_EXIT) {
				pthread_mutex_unlock(&g->lock);
				return NULL;
			}
			if (g->verify_req != v->verify_seen) {
				v->verify_seen = g->verify_req;
				pthread_mutex_unlock(&g->lock);
				verify_own(v);
				pthread_mutex_lock(&g->lock);
				g->verify_done++;
				pthread_cond_broadcast(&g->ctl_cond);
			}
			pthread_mutex_unlock(&g->lock);
			t_last = now_ns();
			continue;
		}
		if (g->churn_ms)
			guest_free_churn(v);
		if (g->pattern == PAT_HOT) {
			/* Every vCPU reads the last page (no writes: they share it). */
			uint64_t i = g->npages - 1;

			access_page(g, g->ram + i * GUEST_PAGE_SIZE);
			if (!guest_page_check(g->ram + i * GUEST_PAGE_SIZE, i, g->table[i]))
				report_bad(g, i, "hot read");
			atomic_fetch_add_explicit(&g->checked, 1, memory_order_relaxed);
			usleep(1000);
			continue;
		}
		if (g->pattern == PAT_IDLE || !n) {
			usleep(5000);
			continue;
		}
		if (throttle_vcpu(g, &run_start))
			t_last = now_ns();
		if (g->pps > 0) {
			uint64_t t = now_ns();

			budget += (t - t_last) * 1e-9 * g->pps;
			t_last = t;
			if (budget > g->pps * 0.01 + 1)
				budget = g->pps * 0.01 + 1;
			if (budget < 1) {
				usleep(1000);
				continue;
			}
			budget -= 1;
		}
		{
			uint64_t m = g->span_pct ? (n * g->span_pct + 99) / 100 : n;

			if (g->pattern == PAT_RANDOM)
				touch(v, owned_index(g, v->id, xorshift(&v->rng) % m));
			else
				touch(v, owned_index(g, v->id, v->seq++ % m));
		}
	}
}

void set_state(struct guest *g, enum run_state st)
{
	pthread_mutex_lock(&g->lock);
	__atomic_store_n(&g->state, st, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Stop the vCPUs and wait until every one is parked (bounded). */
int stop_vcpus(struct guest *g)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&g->lock);
	__atomic_store_n(&g->state, ST_STOP, __ATOMIC_RELEASE);
	while (g->parked < g->nvcpus && !r)
		r = pthread_cond_timedwait(&g->ctl_cond, &g->lock, &ts);
	pthread_mutex_unlock(&g->lock);
	return r ? -ETIMEDOUT : 0;
}

/* Start the vCPUs (in g->state) and wait until each has filled its pages. */
int guest_vcpus_start(struct guest *g)
{
	unsigned int i;

	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	pthread_cond_init(&g->ctl_cond, NULL);
	g->vcpus = calloc(g->nvcpus, sizeof(*g->vcpus));
	for (i = 0; i < g->nvcpus; i++) {
		g->vcpus[i] = (struct vcpu){ .g = g, .id = i,
					    .rng = 0x9e3779b97f4a7c15ull * (i + 1) ^ now_ns(),
					    .kvm = g->kvm ? guest_kvm_vcpu(g->kvm, i) : NULL };
		if (pthread_create(&g->vcpus[i].thread, NULL, vcpu_thread, &g->vcpus[i])) {
			fprintf(stderr, "vmig guest: cannot start vCPU threads\n");
			return -1;
		}
	}
	pthread_mutex_lock(&g->lock);
	while (g->filled < g->nvcpus)
		pthread_cond_wait(&g->ctl_cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* Make every vCPU exit, and wait for it. */
void guest_vcpus_join(struct guest *g)
{
	unsigned int i;

	set_state(g, ST_EXIT);
	for (i = 0; i < g->nvcpus; i++)
		pthread_join(g->vcpus[i].thread, NULL);
	free(g->vcpus);
}
