// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy destination: placing pages through the RAM backend (atomic,
 * never overwriting a page present already), marking them received, and
 * answering the requests that wait for them, requested pages first.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "postcopy_int.h"

/*
 * A page was placed (or found placed): answer a waiting request.  t_place:
 * when the call that placed it began (the trace's "B" record: a request
 * the background stream answered).
 */
void pcd_answer(struct pc_dst *pc, uint32_t region, uint64_t page, bool urgent,
		uint64_t t_place)
{
	int i;

	if (!atomic_load_explicit(&pc->npend, memory_order_relaxed) && !urgent)
		return;
	pthread_mutex_lock(&pc->lock);
	i = pcd_pend_find(pc, region, page);
	if (i >= 0) {
		if (!pc->pend[i].served) {
			pcd_lat_add(&pc->lat, pc->pend[i].t_ns, pc->pend[i].t_fault_ns);
			if (!urgent && pct_on(&pc->trace)) {
				uint64_t t = pct_now();

				pct_add(&pc->trace, 'B', region, page, t_place ? t_place : t, t, 0);
			}
		}
		pc->pend[i].served = true;
		/*
		 * The preempt reply closes the request; without preempt, the first
		 * copy does, and so it does once vmig.ko wrote requests: a reply
		 * may then never come (a request it dropped), and a late one is
		 * placed as one never seen (postcopy_fault.c).
		 */
		if (urgent || !pc->preempt || pc->sink_used)
			pcd_pend_remove(pc, i);
	}
	pthread_mutex_unlock(&pc->lock);
}

/* One page, atomically; a page present already is left as it is (counted). */
int pcd_place_one(struct pc_dst *pc, uint32_t region, uint64_t page, const void *src)
{
	int r = vmig_ram_postcopy_place(pc->ram, region, page, src);

	if (r == -EEXIST)
		__atomic_fetch_add(&pc->eexist, 1, __ATOMIC_RELAXED);
	return r == -EEXIST ? 0 : r;
}

/*
 * Place n pages not received yet (as one call where the backend can), then
 * answer the requests waiting for them.
 */
static int place_pages(struct pc_dst *pc, uint32_t region, const uint64_t *pages,
		       uint8_t *const *src, unsigned int n)
{
	uint64_t t = pct_on(&pc->trace) ? pct_now() : 0;
	bool ok[WIRE_MAX_BATCH];
	unsigned int i;
	int r;

	if (!n)
		return 0;
	r = vmig_ram_postcopy_place_batch(pc->ram, region, pages, src, n, ok);
	if (r < 0)
		return pcd_fail(pc, -r, "cannot place page %llu of region %u in the guest%s: %s",
				(unsigned long long)pages[0], region, n > 1 ? " (and what follows)" :
				"", strerror(-r));
	__atomic_fetch_add(&pc->eexist, r, __ATOMIC_RELAXED);
	for (i = 0; i < n; i++)
		set_bits(pc->recv[region], pages[i], 1, true);
	for (i = 0; i < n; i++)
		pcd_answer(pc, region, pages[i], false, t);
	return 0;
}

int pcd_place(struct pc_dst *pc, uint32_t region, uint64_t page, const void *src)
{
	uint8_t *s = (uint8_t *)src;

	if (test_bit(pc->recv[region], page)) {
		pcd_answer(pc, region, page, false, 0);
		return 0;
	}
	return place_pages(pc, region, &page, &s, 1);
}

/*
 * Move the pages a request waits for (not answered yet) to the front of
 * pages/src; returns how many there are.
 */
static unsigned int wanted_first(struct pc_dst *pc, uint32_t region, uint64_t *pages,
				 uint8_t **src, unsigned int n)
{
	unsigned int i, k = 0;

	if (!atomic_load_explicit(&pc->npend, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&pc->lock);
	for (i = 0; i < n; i++) {
		int j = pcd_pend_find(pc, region, pages[i]);
		uint64_t pg = pages[i];
		uint8_t *s = src[i];

		if (j < 0 || pc->pend[j].served)
			continue;
		pages[i] = pages[k];
		src[i] = src[k];
		pages[k] = pg;
		src[k++] = s;
	}
	pthread_mutex_unlock(&pc->lock);
	return k;
}

/*
 * A batch from the background stream, up to 128 pages.  It goes in by
 * chunks of PCD_PLACE_CHUNK, and before each chunk the pages a request waits
 * for move to the front and go in first, in a call of their own: a waiting
 * vCPU, and the request's latency, never wait for the rest of the batch to
 * be copied.  A request read while the batch is being placed is seen at the
 * next chunk.  A request is known answered (latency taken, recv bit set)
 * only when the call that placed it returns: small calls keep that close
 * to the moment the page went in.
 */
int pcd_place_batch(struct pc_dst *pc, uint32_t region, const uint64_t *pages,
		    uint8_t *const *src, unsigned int n)
{
	uint64_t todo[WIRE_MAX_BATCH] = { 0 };
	uint8_t *data[WIRE_MAX_BATCH] = { NULL };
	unsigned int i, k = 0, done = 0, w;
	int r = 0;

	for (i = 0; i < n; i++) {
		if (test_bit(pc->recv[region], pages[i])) {
			pcd_answer(pc, region, pages[i], false, 0);
			continue;
		}
		todo[k] = pages[i];
		data[k++] = src[i];
	}
	while (done < k && !r) {
		w = wanted_first(pc, region, todo + done, data + done, k - done);
		if (!w)
			w = k - done < PCD_PLACE_CHUNK ? k - done : PCD_PLACE_CHUNK;
		r = place_pages(pc, region, todo + done, data + done, w);
		done += w;
	}
	return r;
}

