// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: how slow the destination's page accesses were.  Each access
 * the workload makes is timed (a verify-all's are not); one of SLOW_NS or
 * more goes to one of two figures, chosen when the access starts:
 *
 *  - in postcopy (g->postcopy: set by the session before the vCPUs resume
 *    on a registration for missing pages, cleared once every page is
 *    here): the page may have been missing and fetched on demand while
 *    the vCPU waited (a uffd MISSING fault, a vmig.ko postcopy fault);
 *  - other: every page was here.  Measured (thread rusage, mincore): such
 *    accesses are the first touch of a present page not yet mapped into
 *    the VMM (a minor fault: tens of us under TCG, where they are most of
 *    them) and vCPU threads descheduled mid-access (up to tens of ms on a
 *    loaded host).
 *
 * Whether a postcopy access did fault a missing page is not told apart:
 * the kernel's own accounting of such faults (major or minor) differs
 * between versions, and asking per access would slow the workload.
 *
 * Each figure keeps a count, sum, maximum, a log2 histogram of microseconds
 * (printed) and a log-linear one of nanoseconds (SLOW_SUB sub-buckets per
 * power of two: a bucket is at most 1/8 of its lower edge wide), whose
 * bucket ends are the percentiles printed: at most 12.5 % above the true
 * value, and never above the maximum.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "guest_int.h"
#include "util.h"

static unsigned int slow_bucket(uint64_t ns)
{
	unsigned int o, b;

	if (ns < SLOW_SUB)
		return ns;
	o = 63 - __builtin_clzll(ns);
	b = (o - SLOW_SUB_BITS + 1) * SLOW_SUB + ((ns >> (o - SLOW_SUB_BITS)) & (SLOW_SUB - 1));
	return b < SLOW_HIST ? b : SLOW_HIST - 1;
}

/* The first value past bucket b (its upper edge). */
static uint64_t slow_bucket_end(unsigned int b)
{
	unsigned int o, sub;

	if (b < SLOW_SUB)
		return b + 1;
	o = b / SLOW_SUB + SLOW_SUB_BITS - 1;
	sub = b % SLOW_SUB;
	return (uint64_t)(SLOW_SUB + sub + 1) << (o - SLOW_SUB_BITS);
}

static void slow_add(struct slow_stats *s, uint64_t dt)
{
	uint64_t max = atomic_load_explicit(&s->max_ns, memory_order_relaxed), us;
	unsigned int b = 0;

	atomic_fetch_add_explicit(&s->n, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns, dt, memory_order_relaxed);
	while (dt > max && !atomic_compare_exchange_weak(&s->max_ns, &max, dt))
		;
	atomic_fetch_add_explicit(&s->hist[slow_bucket(dt)], 1, memory_order_relaxed);
	for (us = dt / 1000; us > 1 && b < SLOW_LOG2 - 1; us >>= 1)
		b++;
	atomic_fetch_add_explicit(&s->log2_us[b], 1, memory_order_relaxed);
}

/* Time the first read of a page: what the vCPU feels of a missing page. */
void access_page(struct guest *g, const uint8_t *p)
{
	uint64_t t0, dt;
	bool pc;

	if (!g->measure) {
		(void)*(volatile const uint8_t *)p;
		return;
	}
	pc = atomic_load_explicit(&g->postcopy, memory_order_acquire);
	t0 = now_ns();
	(void)*(volatile const uint8_t *)p;
	dt = now_ns() - t0;
	if (dt < SLOW_NS)
		return;
	slow_add(pc ? &g->slow_fetch : &g->slow_other, dt);
}

/* The value at or below which pct % of the accesses were: its bucket's end, at most max. */
static uint64_t slow_pct(struct slow_stats *s, uint64_t n, unsigned int pct)
{
	uint64_t want = (n * pct + 99) / 100, seen = 0, max = atomic_load(&s->max_ns);
	unsigned int b;

	for (b = 0; b < SLOW_HIST; b++) {
		seen += atomic_load(&s->hist[b]);
		if (seen >= want)
			break;
	}
	return b < SLOW_HIST && slow_bucket_end(b) - 1 < max ? slow_bucket_end(b) - 1 : max;
}

/* "N <label>: avg, max, p50/p90/p99 us; log2-us histogram", one line (no ':' in label). */
static void slow_print(struct slow_stats *s, const char *label)
{
	uint64_t n = atomic_load(&s->n);
	unsigned int b;

	fprintf(stderr, "guest: %llu %s", (unsigned long long)n, label);
	if (n) {
		fprintf(stderr, ": avg %.1f us, max %.1f us, p50 %.1f us, p90 %.1f us, "
			"p99 %.1f us; log2-us histogram:", atomic_load(&s->sum_ns) / 1e3 / n,
			atomic_load(&s->max_ns) / 1e3, slow_pct(s, n, 50) / 1e3,
			slow_pct(s, n, 90) / 1e3, slow_pct(s, n, 99) / 1e3);
		for (b = 0; b < SLOW_LOG2; b++)
			if (atomic_load(&s->log2_us[b]))
				fprintf(stderr, " [%llu us: %llu]", 1ull << b,
					(unsigned long long)atomic_load(&s->log2_us[b]));
	}
	fprintf(stderr, "\n");
}

void report_slow(struct guest *g)
{
	char fetch[128], other[160];

	if (!g->measure)
		return;
	snprintf(fetch, sizeof(fetch), "slow page accesses (>= %u us) in postcopy (pages "
		 "fetched on demand)", SLOW_NS / 1000);
	snprintf(other, sizeof(other), "other page accesses >= %u us (no page missing, so "
		 "a present page's first mapping or a descheduled vCPU)", SLOW_NS / 1000);
	slow_print(&g->slow_fetch, fetch);
	slow_print(&g->slow_other, other);
}
