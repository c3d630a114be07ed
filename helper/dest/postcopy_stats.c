// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy destination: request latency, sampled when a request is
 * answered (from the helper reading the fault, alike on both backends; and
 * from the fault itself where the backend stamps it), and the counters and
 * figures that go into the report.
 */
#include <pthread.h>
#include <stdlib.h>

#include "postcopy_int.h"
#include "util.h"

static void lat_push(uint64_t **lat, size_t *n, size_t *cap, uint64_t ns)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 4096;
		uint64_t *v = realloc(*lat, c * sizeof(*v));

		if (!v)
			return;
		*lat = v;
		*cap = c;
	}
	(*lat)[(*n)++] = ns;
}

void pcd_lat_add(struct pcd_lat *l, uint64_t t_read, uint64_t t_fault)
{
	uint64_t t = now_ns();

	lat_push(&l->lat, &l->nlat, &l->lat_cap, t - t_read);
	if (t_fault && t_fault <= t)
		lat_push(&l->flat, &l->nflat, &l->flat_cap, t - t_fault);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void pcd_lat_report(struct pcd_lat *l, struct report_pc *r)
{
	uint64_t sum = 0;
	size_t i;

	r->flat_count = l->nflat;
	if (l->nflat) {
		qsort(l->flat, l->nflat, sizeof(l->flat[0]), cmp_u64);
		for (i = 0; i < l->nflat; i++)
			sum += l->flat[i];
		r->flat_avg_us = sum / 1e3 / l->nflat;
		r->flat_p99_us = l->flat[(l->nflat * 99) / 100] / 1e3;
		sum = 0;
	}
	r->lat_count = l->nlat;
	if (l->nlat) {
		qsort(l->lat, l->nlat, sizeof(l->lat[0]), cmp_u64);
		for (i = 0; i < l->nlat; i++) {
			uint64_t us = l->lat[i] / 1000;
			unsigned int b = 0;

			sum += l->lat[i];
			while (us > 1 && b < REPORT_LAT_BUCKETS - 1) {
				us >>= 1;
				b++;
			}
			r->lat_hist[b]++;
		}
		r->lat_avg_us = sum / 1e3 / l->nlat;
		r->lat_p50_us = l->lat[l->nlat / 2] / 1e3;
		r->lat_p99_us = l->lat[(l->nlat * 99) / 100] / 1e3;
		r->lat_max_us = l->lat[l->nlat - 1] / 1e3;
	}
}

void pcd_lat_free(struct pcd_lat *l)
{
	free(l->lat);
	free(l->flat);
	*l = (struct pcd_lat){ 0 };
}

void pcd_report(struct pc_dst *pc, struct report *rep)
{
	struct report_pc *r = &rep->pc;

	pthread_mutex_lock(&pc->lock);
	r->faults = pc->faults;
	r->requests = pc->requests;
	r->coalesced = pc->coalesced;
	r->kernel_requests = pc->sink_sent;
	r->urgent_pages = pc->urgent_pages;
	r->eexist = pc->eexist;
	r->resent = pc->resent;
	r->sched = pc->sched_got;
	r->cpu = pc->cpu.cur;
	r->cpu_moves = pc->cpu.moves;
	pcd_lat_report(&pc->lat, r);
	pthread_mutex_unlock(&pc->lock);
}
