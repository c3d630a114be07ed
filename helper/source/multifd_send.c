// SPDX-License-Identifier: GPL-2.0
/*
 * One multifd sender thread.  Pages are sent straight from the helper's
 * view of guest RAM (sendmsg with one iovec per page); the ranges it gets
 * were harvested before they were queued, and are write-protected again
 * by the harvest or, chunk by chunk, just before they are read
 * (vmig_ram_prepare_send).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "multifd_send.h"
#include "util.h"
#include "zero.h"

#define KEEPALIVE_MS	1000

/* Send the batch being built (c->entries, c->iov[2..]) as one PAGES packet. */
static int flush_batch(struct send_chan *c)
{
	struct wire_pages wp = { .region = c->b_region, .count = c->b_count };
	struct wire_pkt_hdr h = {
		.type = WIRE_PKT_PAGES,
		.len = sizeof(wp) + 8 * c->b_count + c->b_normal * WIRE_PAGE_SIZE,
	};
	uint8_t hdrbuf[sizeof(h) + sizeof(wp)];
	int r;

	if (!c->b_count)
		return 0;
	c->packets++;
	if (c->corrupt_after && c->packets == c->corrupt_after)
		h.type = 0x7777;	/* injected: a packet type nobody knows */
	memcpy(hdrbuf, &h, sizeof(h));
	memcpy(hdrbuf + sizeof(h), &wp, sizeof(wp));
	c->iov[0].iov_base = hdrbuf;
	c->iov[0].iov_len = sizeof(hdrbuf);
	c->iov[1].iov_base = c->entries;
	c->iov[1].iov_len = 8 * c->b_count;
	ratelimit_wait(&c->rl, sizeof(h) + h.len);
	pthread_mutex_lock(&c->wlock);
	r = stream_writev(&c->s, c->iov, c->b_normal + 2);
	pthread_mutex_unlock(&c->wlock);
	if (r)
		return r;
	c->pages_sent += c->b_count;
	c->normal_pages += c->b_normal;
	c->b_count = c->b_normal = 0;
	return 0;
}

/* Add a range's pages to the batch; scattered pages of many ranges share packets. */
static int send_range(struct send_chan *c, const struct send_work *w)
{
	unsigned int max = atomic_load_explicit(&c->max_batch, memory_order_relaxed);
	uint64_t page;
	int r;

	if (w->flags & SEND_MARK) {
		r = flush_batch(c);
		return r ? r : stream_send_pkt(&c->s, WIRE_PKT_POSTCOPY, NULL, 0);
	}
	if (!max || max > WIRE_MAX_BATCH)
		max = WIRE_MAX_BATCH;
	if (c->b_count && c->b_region != w->region) {
		r = flush_batch(c);
		if (r)
			return r;
	}
	c->b_region = w->region;
	for (page = w->first; page < w->first + w->n; page++) {
		const uint8_t *p = vmig_ram_page(c->ram, w->region, page);

		if (!p)
			return stream_fail(&c->s, EINVAL, "page %llu outside region %u",
					   (unsigned long long)page, w->region);
		if (page_is_zero(p)) {
			c->zero_pages++;
			if (w->flags & SEND_BULK)
				continue;	/* the destination starts zeroed */
			if (c->zero_cap) {
				c->entries[c->b_count++] = page | WIRE_PAGE_ZERO;
				goto added;
			}
			c->zero_pages--;	/* not negotiated: send it whole */
		}
		c->entries[c->b_count++] = page;
		c->iov[2 + c->b_normal].iov_base = (void *)p;
		c->iov[2 + c->b_normal].iov_len = WIRE_PAGE_SIZE;
		c->b_normal++;
added:
		if (c->b_count >= max) {
			r = flush_batch(c);
			if (r)
				return r;
			if (__atomic_load_n(&c->cancel, __ATOMIC_RELAXED))
				return stream_fail(&c->s, ECANCELED, "cancelled");
		}
	}
	atomic_fetch_add(&c->pages_done, w->n);
	return 0;
}

/*
 * Just before reading them: let the backend re-arm the protection of the
 * pages of w[k..] that lie in w[k]'s chunk (kmod manual modes: one CLEAR
 * per chunk).  Ranges never cross a chunk (the engine splits them).
 */
static int prepare_chunk(struct send_chan *c, const struct send_work *w, unsigned int k,
			 unsigned int nw)
{
	uint64_t bm[WIRE_CHUNK_PAGES / 64] = { 0 };
	uint64_t chunk = w[k].first / WIRE_CHUNK_PAGES, base = chunk * WIRE_CHUNK_PAGES;
	uint64_t pages = vmig_ram_region_pages(c->ram, w[k].region), i;
	unsigned int j;
	int r;

	if (base >= pages)
		return 0;	/* send_range reports the bad range */
	for (j = k; j < nw && w[j].region == w[k].region &&
	     w[j].first / WIRE_CHUNK_PAGES == chunk; j++)
		for (i = w[j].first; i < w[j].first + w[j].n && i < base + WIRE_CHUNK_PAGES; i++)
			bm[(i - base) / 64] |= 1ull << ((i - base) % 64);
	if (pages - base > WIRE_CHUNK_PAGES)
		pages = base + WIRE_CHUNK_PAGES;
	r = vmig_ram_prepare_send(c->ram, w[k].region, base, pages - base, bm);
	return r ? stream_fail(&c->s, -r, "cannot re-protect pages before sending them: %s",
			       strerror(-r)) : 0;
}

static void *send_thread(void *arg)
{
	struct send_chan *c = arg;
	struct wire_end end;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct send_work w[WIRE_MAX_BATCH];
		unsigned int k, nw = 0, unit;

		while (!c->q_len && !c->finish && !c->cancel) {
			struct timespec ts;

			cond_deadline_in(&ts, KEEPALIVE_MS);
			if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT &&
			    !c->q_len && !c->finish && !c->cancel) {
				pthread_mutex_unlock(&c->lock);
				pthread_mutex_lock(&c->wlock);
				r = stream_send_pkt(&c->s, WIRE_PKT_NOP, NULL, 0);
				pthread_mutex_unlock(&c->wlock);
				pthread_mutex_lock(&c->lock);
				if (r)
					goto out;
			}
		}
		if (c->cancel) {
			r = stream_fail(&c->s, ECANCELED, "cancelled");
			goto out;
		}
		if (!c->q_len)
			break;		/* finish with an empty queue */
		/*
		 * Bounded units (postcopy): at most one packet's pages at a time, so a
		 * requested page queued at the front waits behind one small packet, not
		 * behind the rest of a range (up to a 2 MiB chunk: ~4 ms at 4 Gbit/s).
		 * The rest of the range stays at the head.
		 */
		unit = atomic_load(&c->max_batch);
		if (unit && !c->bg) {	/* postcopy: the guest runs on the destination */
			thread_background(c->sched);
			c->bg = true;
		}
		if (unit && c->q[c->q_head].n > unit) {
			w[nw] = c->q[c->q_head];
			w[nw++].n = unit;
			c->q[c->q_head].first += unit;
			c->q[c->q_head].n -= unit;
		}
		while (c->q_len && nw < (unit ? 1u : WIRE_MAX_BATCH)) {
			w[nw++] = c->q[c->q_head];
			c->q_head = (c->q_head + 1) % c->q_cap;
			c->q_len--;
		}
		c->busy = true;
		pthread_mutex_unlock(&c->lock);
		for (k = 0; k < nw && !r; k++) {
			if ((!k || w[k].region != w[k - 1].region ||
			     w[k].first / WIRE_CHUNK_PAGES != w[k - 1].first / WIRE_CHUNK_PAGES) &&
			    !atomic_load_explicit(&c->frozen, memory_order_acquire))
				r = prepare_chunk(c, w, k, nw);
			if (!r)
				r = send_range(c, &w[k]);
		}
		if (!r)
			r = flush_batch(c);
		pthread_mutex_lock(&c->lock);
		c->busy = false;
		if (r)
			goto out;
		if (!c->q_len)
			pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	end.pages = c->pages_sent;
	end.normal_pages = c->normal_pages;
	pthread_mutex_lock(&c->wlock);
	r = stream_send_pkt(&c->s, WIRE_PKT_END, &end, sizeof(end));
	pthread_mutex_unlock(&c->wlock);
	pthread_mutex_lock(&c->lock);
out:
	c->result = r;
	c->exited = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int send_chan_start(struct send_chan *c, unsigned int index, struct stream *s, int timeout_ms,
		    struct vmig_ram *ram, bool zero_pages, uint64_t bytes_per_sec)
{
	pthread_condattr_t ca;
	int r;

	c->index = index;
	stream_move(&c->s, s, timeout_ms);
	c->ram = ram;
	c->zero_cap = zero_pages;
	ratelimit_init(&c->rl, bytes_per_sec);
	/*
	 * The kernel paces the socket too: under a cap below the link rate no
	 * burst of bulk pages builds a queue in the qdisc in front of urgent
	 * postcopy pages (TCP small queues then bound it to ~1 ms of the cap).
	 */
	if (bytes_per_sec)
		setsockopt(c->s.fd, SOL_SOCKET, SO_MAX_PACING_RATE, &bytes_per_sec,
			   sizeof(bytes_per_sec));
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->wlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&c->thread, NULL, send_thread, c);
	if (r)
		return -r;
	c->started = true;
	return 0;
}

static int queue_locked(struct send_chan *c, uint32_t region, uint64_t first, uint64_t n,
			uint32_t flags, bool front);

void send_chan_freeze(struct send_chan *c)
{
	atomic_store_explicit(&c->frozen, true, memory_order_release);
}

int send_chan_queue_front(struct send_chan *c, uint32_t region, uint64_t first, uint64_t n)
{
	pthread_mutex_lock(&c->lock);
	return queue_locked(c, region, first, n, 0, true);
}

int send_chan_queue(struct send_chan *c, uint32_t region, uint64_t first, uint64_t n,
		    uint32_t flags)
{
	pthread_mutex_lock(&c->lock);
	return queue_locked(c, region, first, n, flags, false);
}

/* Called locked; unlocks. */
static int queue_locked(struct send_chan *c, uint32_t region, uint64_t first, uint64_t n,
			uint32_t flags, bool front)
{
	if (c->q_len == c->q_cap) {
		size_t cap = c->q_cap ? c->q_cap * 2 : 256, i;
		struct send_work *q = malloc(cap * sizeof(*q));

		if (!q) {
			pthread_mutex_unlock(&c->lock);
			return -ENOMEM;
		}
		for (i = 0; i < c->q_len; i++)
			q[i] = c->q[(c->q_head + i) % c->q_cap];
		free(c->q);
		c->q = q;
		c->q_cap = cap;
		c->q_head = 0;
	}
	if (front) {
		c->q_head = (c->q_head + c->q_cap - 1) % c->q_cap;
		c->q[c->q_head] = (struct send_work){ .region = region, .first = first, .n = n };
	} else {
		c->q[(c->q_head + c->q_len) % c->q_cap] = (struct send_work){
			.region = region, .flags = flags, .first = first, .n = n,
		};
	}
	c->q_len++;
	if (c->q_len == 1)
		pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int send_chan_wait_idle(struct send_chan *c, int timeout_ms)
{
	struct timespec ts;
	int r;

	cond_deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&c->lock);
	while ((c->q_len || c->busy) && !c->exited)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
			break;
	r = c->exited ? (c->result ? c->result : -EPIPE) : (!c->q_len && !c->busy);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int send_chan_finish(struct send_chan *c, int timeout_ms)
{
	struct timespec ts;
	int r;

	cond_deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&c->lock);
	c->finish = true;
	pthread_cond_broadcast(&c->cond);
	while (!c->exited)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
			break;
	r = c->exited ? c->result : stream_fail(&c->s, ETIMEDOUT, "channel did not drain in time");
	pthread_mutex_unlock(&c->lock);
	return r;
}

void send_chan_cancel(struct send_chan *c)
{
	if (!c->started)
		return;
	pthread_mutex_lock(&c->lock);
	c->cancel = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (c->s.fd >= 0)
		shutdown(c->s.fd, SHUT_RDWR);	/* unblocks a send in progress */
}

void send_chan_destroy(struct send_chan *c)
{
	if (c->started) {
		send_chan_cancel(c);
		pthread_join(c->thread, NULL);
		pthread_mutex_destroy(&c->lock);
		pthread_mutex_destroy(&c->wlock);
		pthread_cond_destroy(&c->cond);
	}
	free(c->q);
	c->q = NULL;
	c->started = false;
}
