// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy on the destination: received bitmap, page placement with
 * UFFDIO_COPY, the one fault thread (fault -> request -> page -> place),
 * request latency.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <linux/vmig.h>

#include "postcopy_dst.h"
#include "util.h"

#define PAGE	WIRE_PAGE_SIZE

static int pc_fail(struct pc_dst *pc, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int pc_fail(struct pc_dst *pc, int code, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&pc->lock);
	if (!pc->err[0]) {
		va_start(ap, fmt);
		vsnprintf(pc->err, sizeof(pc->err), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&pc->lock);
	return -code;
}

int pcd_init(struct pc_dst *pc, const struct dest_mem *mem, const int *memfds,
	     const uint64_t *vmm_base, bool preempt, int spin_us)
{
	unsigned int i;

	memset(pc, 0, sizeof(*pc));
	pc->mem = mem;
	pc->uffd = -1;
	pc->stop_fd = -1;
	pc->rp.fd = pc->pre.fd = -1;
	pc->preempt = preempt;
	pc->spin_us = spin_us;
	pthread_mutex_init(&pc->lock, NULL);
	pthread_cond_init(&pc->cond, NULL);
	pct_open(&pc->trace, "dst");
	for (i = 0; i < mem->nr_regions; i++) {
		pc->memfd[i] = memfds[i];
		pc->vmm_base[i] = vmm_base[i];
		pc->recv[i] = calloc((mem->pages[i] + 63) / 64, sizeof(uint64_t));
		if (!pc->recv[i])
			return -ENOMEM;
	}
	return 0;
}

int pcd_channel_switch(struct pc_dst *pc)
{
	bool go;

	pthread_mutex_lock(&pc->lock);
	pc->parked++;
	pthread_cond_broadcast(&pc->cond);
	while (!pc->go && !pc->abort)
		pthread_cond_wait(&pc->cond, &pc->lock);
	go = pc->go;
	pthread_mutex_unlock(&pc->lock);
	return go ? 0 : -ECANCELED;
}

int pcd_wait_parked(struct pc_dst *pc, int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pc->lock);
	while (pc->parked < pc->nr_chans && !r)
		r = pthread_cond_timedwait(&pc->cond, &pc->lock, &ts);
	pthread_mutex_unlock(&pc->lock);
	return r ? -ETIMEDOUT : 0;
}

void pcd_release(struct pc_dst *pc, bool abort)
{
	pthread_mutex_lock(&pc->lock);
	if (abort)
		pc->abort = true;
	else
		pc->go = true;
	pthread_cond_broadcast(&pc->cond);
	pthread_mutex_unlock(&pc->lock);
}

static void set_bits(_Atomic uint64_t *bm, uint64_t first, uint64_t n, bool on)
{
	uint64_t p;

	for (p = first; p < first + n; p++) {
		if (on)
			atomic_fetch_or(&bm[p / 64], 1ull << (p % 64));
		else
			atomic_fetch_and(&bm[p / 64], ~(1ull << (p % 64)));
	}
}

static bool test_bit(_Atomic uint64_t *bm, uint64_t p)
{
	return atomic_load_explicit(&bm[p / 64], memory_order_acquire) & (1ull << (p % 64));
}

void pcd_note_received(struct pc_dst *pc, uint32_t region, uint64_t page)
{
	set_bits(pc->recv[region], page, 1, true);
}

/* Make pages missing: a hole in the memfd, or dropped from the region. */
static int punch(struct pc_dst *pc, uint32_t region, uint64_t first, uint64_t n)
{
	if (pc->kmod)
		return pck_discard(pc, region, first, n);
	if (fallocate(pc->memfd[region], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      first * PAGE, n * PAGE))
		return -errno;
	return 0;
}

/*
 * Pages that never arrived in precopy (holes the source skipped, or pages
 * prefaulted here) are punched out, so the guest's first touch faults.
 * kmod: the regions enter postcopy mode first (see postcopy_kmod.c).
 */
int pcd_mark_received(struct pc_dst *pc)
{
	unsigned int i;
	int r;

	if (pc->kmod) {
		r = pck_enable(pc);
		if (r)
			return r;
	}
	for (i = 0; i < pc->mem->nr_regions; i++) {
		uint64_t p = 0, n = pc->mem->pages[i];

		while (p < n) {
			uint64_t q;

			if (test_bit(pc->recv[i], p)) {
				p++;
				continue;
			}
			for (q = p; q < n && !test_bit(pc->recv[i], q); q++)
				;
			r = punch(pc, i, p, q - p);
			if (r)
				return r;
			p = q;
		}
	}
	return 0;
}

int pcd_discard(struct pc_dst *pc, uint32_t region, uint64_t first, uint64_t n)
{
	int r;

	if (region >= pc->mem->nr_regions || first > pc->mem->pages[region] ||
	    n > pc->mem->pages[region] - first)
		return -ERANGE;
	if (!n)
		return 0;
	r = punch(pc, region, first, n);
	if (r)
		return r;
	set_bits(pc->recv[region], first, n, false);
	return 0;
}

uint64_t pcd_missing(struct pc_dst *pc)
{
	uint64_t miss = 0, p;
	unsigned int i;

	for (i = 0; i < pc->mem->nr_regions; i++)
		for (p = 0; p < pc->mem->pages[i]; p++)
			miss += !test_bit(pc->recv[i], p);
	return miss;
}

unsigned int pcd_unanswered(struct pc_dst *pc, uint32_t *region, uint64_t *page)
{
	unsigned int i, n = 0;

	pthread_mutex_lock(&pc->lock);
	for (i = 0; i < atomic_load(&pc->npend); i++) {
		if (pc->pend[i].served || test_bit(pc->recv[pc->pend[i].region], pc->pend[i].page))
			continue;
		if (!n++) {
			*region = pc->pend[i].region;
			*page = pc->pend[i].page;
		}
	}
	pthread_mutex_unlock(&pc->lock);
	return n;
}

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

/*
 * A request answered: its latency from the helper reading the fault (alike
 * on both backends), and on kmod also from the fault itself.  Returns now.
 */
static uint64_t lat_add(struct pc_dst *pc, const struct pcd_pending *p)
{
	uint64_t t = now_ns();

	lat_push(&pc->lat, &pc->nlat, &pc->lat_cap, t - p->t_ns);
	if (p->t_fault_ns && p->t_fault_ns <= t)
		lat_push(&pc->flat, &pc->nflat, &pc->flat_cap, t - p->t_fault_ns);
	return t;
}

/* Under lock: the pending entry for (region, page), or -1. */
static int pend_find(struct pc_dst *pc, uint32_t region, uint64_t page)
{
	unsigned int i, n = atomic_load(&pc->npend);

	for (i = 0; i < n; i++)
		if (pc->pend[i].page == page && pc->pend[i].region == region)
			return i;
	return -1;
}

static void pend_remove(struct pc_dst *pc, int i)
{
	unsigned int n = atomic_load(&pc->npend) - 1;

	pc->pend[i] = pc->pend[n];
	atomic_store(&pc->npend, n);
}

/*
 * A page was placed (or found placed): answer a waiting request.  t_place:
 * when the call that placed it began (the trace's "B" record: a request
 * the background stream answered).
 */
static void placed(struct pc_dst *pc, uint32_t region, uint64_t page, bool urgent,
		   uint64_t t_place)
{
	int i;

	if (!atomic_load_explicit(&pc->npend, memory_order_relaxed) && !urgent)
		return;
	pthread_mutex_lock(&pc->lock);
	i = pend_find(pc, region, page);
	if (i >= 0) {
		if (!pc->pend[i].served) {
			lat_add(pc, &pc->pend[i]);
			if (!urgent && pct_on(&pc->trace)) {
				uint64_t t = pct_now();

				pct_add(&pc->trace, 'B', region, page, t_place ? t_place : t, t, 0);
			}
		}
		pc->pend[i].served = true;
		/* The preempt reply closes the request; without preempt, the first copy does. */
		if (urgent || !pc->preempt)
			pend_remove(pc, i);
	}
	pthread_mutex_unlock(&pc->lock);
}

static int place_raw(struct pc_dst *pc, uint32_t region, uint64_t page, const void *src)
{
	uint64_t dst = pc->vmm_base[region] + page * PAGE;

	if (pc->kmod) {
		uint8_t *s = (uint8_t *)src;
		bool ok;

		return pck_place_batch(pc, region, &page, &s, 1, &ok, &pc->eexist);
	}

	for (;;) {
		int r;

		if (src) {
			struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src, .len = PAGE };

			r = ioctl(pc->uffd, UFFDIO_COPY, &c);
		} else {
			struct uffdio_zeropage z = { .range = { .start = dst, .len = PAGE } };

			r = ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z);
		}
		if (!r)
			return 0;
		if (errno == EEXIST) {
			__atomic_fetch_add(&pc->eexist, 1, __ATOMIC_RELAXED);
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

/*
 * Place n pages not received yet (kmod: one VMIG_PLACE_BATCH; uffd: page by
 * page), then answer the requests waiting for them.
 */
static int place_pages(struct pc_dst *pc, uint32_t region, const uint64_t *pages,
		       uint8_t *const *src, unsigned int n)
{
	uint64_t t = pct_on(&pc->trace) ? pct_now() : 0;
	bool ok[WIRE_MAX_BATCH];
	unsigned int i;
	int r = 0;

	if (!n)
		return 0;
	if (pc->kmod) {
		r = pck_place_batch(pc, region, pages, src, n, ok, &pc->eexist);
		if (r)
			return pc_fail(pc, -r, "cannot place %u pages of region %u in the guest: %s",
				       n, region, strerror(-r));
		for (i = 0; i < n; i++)
			set_bits(pc->recv[region], pages[i], 1, true);
		for (i = 0; i < n; i++)
			placed(pc, region, pages[i], false, t);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (i && pct_on(&pc->trace))
			t = pct_now();
		r = place_raw(pc, region, pages[i], src[i]);
		if (r)
			return pc_fail(pc, -r, "cannot place page %llu of region %u in the guest: %s",
				       (unsigned long long)pages[i], region, strerror(-r));
		set_bits(pc->recv[region], pages[i], 1, true);
		placed(pc, region, pages[i], false, t);
	}
	return 0;
}

int pcd_place(struct pc_dst *pc, uint32_t region, uint64_t page, const void *src)
{
	uint8_t *s = (uint8_t *)src;

	if (test_bit(pc->recv[region], page)) {
		placed(pc, region, page, false, 0);
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
		int j = pend_find(pc, region, pages[i]);
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
 * next chunk.  On kmod, a request is known answered (latency taken, recv
 * bit set) only when the VMIG_PLACE_BATCH call that placed it returns:
 * small calls keep that close to the moment the page went in, as on uffd,
 * where each page is placed and answered on its own.
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
			placed(pc, region, pages[i], false, 0);
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

/* --- the fault thread ----------------------------------------------------- */

static int find_region(struct pc_dst *pc, uint64_t addr, uint64_t *page)
{
	unsigned int i;

	for (i = 0; i < pc->mem->nr_regions; i++) {
		if (addr >= pc->vmm_base[i] && addr - pc->vmm_base[i] < pc->mem->pages[i] * PAGE) {
			*page = (addr - pc->vmm_base[i]) / PAGE;
			return i;
		}
	}
	return -1;
}

struct req_pkt {
	struct wire_pkt_hdr h;
	struct wire_req q;
} __attribute__((packed));

/*
 * A fault on (reg, page) read at time t (t_fault: when it happened, if
 * known): a request on the return path unless one is out.
 */
static int note_fault(struct pc_dst *pc, uint32_t reg, uint64_t page, uint64_t t,
		      uint64_t t_fault, struct req_pkt *out, unsigned int *nreq)
{
	int k;

	pc->faults++;
	if (test_bit(pc->recv[reg], page)) {
		struct uffdio_range wr = { .start = pc->vmm_base[reg] + page * PAGE, .len = PAGE };

		/* kmod: placing the page woke the faulting threads already. */
		if (!pc->kmod)
			ioctl(pc->uffd, UFFDIO_WAKE, &wr);
		return 0;
	}
	pthread_mutex_lock(&pc->lock);
	k = pend_find(pc, reg, page);
	if (k >= 0 || atomic_load(&pc->npend) == PCD_MAX_PENDING) {
		pc->coalesced += k >= 0;
		pthread_mutex_unlock(&pc->lock);
		if (k < 0)
			return pc_fail(pc, EOVERFLOW, "more than %d pages requested at once",
				       PCD_MAX_PENDING);
		return 0;
	}
	pc->pend[atomic_load(&pc->npend)] = (struct pcd_pending){
		.region = reg, .page = page, .t_ns = t, .t_fault_ns = t_fault };
	atomic_fetch_add(&pc->npend, 1);
	pc->requests++;
	pthread_mutex_unlock(&pc->lock);
	out[*nreq].h = (struct wire_pkt_hdr){ .type = WIRE_PKT_REQ, .len = sizeof(struct wire_req) };
	out[*nreq].q = (struct wire_req){ .region = reg, .page = page };
	(*nreq)++;
	return 0;
}

static int read_uffd_faults(struct pc_dst *pc, struct req_pkt *out, unsigned int *nreq,
			    bool *got)
{
	struct uffd_msg msgs[PCD_FAULT_BATCH];
	ssize_t n = read(pc->uffd, msgs, sizeof(msgs));
	uint64_t t = now_ns();
	unsigned int i;
	int r;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 :
		       pc_fail(pc, errno, "reading guest faults: %s", strerror(errno));
	*got = n > 0;
	for (i = 0; i < n / sizeof(msgs[0]); i++) {
		uint64_t addr = msgs[i].arg.pagefault.address & ~(uint64_t)(PAGE - 1), page;
		int reg;

		if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		reg = find_region(pc, addr, &page);
		if (reg < 0)
			return pc_fail(pc, EFAULT, "guest fault at 0x%llx outside guest RAM",
				       (unsigned long long)addr);
		r = note_fault(pc, reg, page, t, 0, out, nreq);
		if (r)
			return r;
	}
	return 0;
}

/* kmod: the regions' request queues; time_ns is the first fault's (CLOCK_MONOTONIC). */
static int read_region_requests(struct pc_dst *pc, struct req_pkt *out, unsigned int *nreq,
				bool *got)
{
	struct vmig_request req[PCD_FAULT_BATCH];
	unsigned int reg;
	uint64_t t;
	int n, i, r;

	for (reg = 0; reg < pc->mem->nr_regions && *nreq < PCD_FAULT_BATCH; reg++) {
		n = pck_read_requests(pc, reg, req, PCD_FAULT_BATCH - *nreq);
		t = now_ns();
		if (n == -ESHUTDOWN)
			return pc_fail(pc, ESHUTDOWN, "region %u left postcopy mode with pages "
				       "missing", reg);
		if (n < 0)
			return pc_fail(pc, -n, "reading page requests of region %u: %s", reg,
				       strerror(-n));
		*got |= n > 0;
		for (i = 0; i < n; i++) {
			uint64_t page = req[i].offset / PAGE;

			if (req[i].offset % PAGE || page >= pc->mem->pages[reg])
				return pc_fail(pc, EFAULT, "region %u: request for offset 0x%llx",
					       reg, (unsigned long long)req[i].offset);
			r = note_fault(pc, reg, page, t, req[i].time_ns, out, nreq);
			if (r)
				return r;
		}
	}
	return 0;
}

static int handle_faults(struct pc_dst *pc, bool *got)
{
	struct req_pkt out[PCD_FAULT_BATCH];
	unsigned int i, nreq = 0;
	uint64_t t_read = pct_on(&pc->trace) ? pct_now() : 0;
	int r;

	*got = false;
	r = pc->kmod ? read_region_requests(pc, out, &nreq, got) :
		       read_uffd_faults(pc, out, &nreq, got);
	if (r)
		return r;
	if (nreq)
		trace("dst: %u requests, first page %llu", nreq, (unsigned long long)out[0].q.page);
	if (nreq && stream_write(&pc->rp, out, nreq * sizeof(out[0])))
		return pc_fail(pc, ECONNRESET, "return path: %s", pc->rp.err);
	if (nreq && pct_on(&pc->trace)) {
		uint64_t t_sent = pct_now(), to_rt = t_sent - now_ns();

		for (i = 0; i < nreq; i++) {
			uint64_t t_fault = 0;
			int k;

			pthread_mutex_lock(&pc->lock);
			k = pend_find(pc, out[i].q.region, out[i].q.page);
			if (k >= 0 && pc->pend[k].t_fault_ns)
				t_fault = pc->pend[k].t_fault_ns + to_rt;
			pthread_mutex_unlock(&pc->lock);
			pct_add(&pc->trace, 'R', out[i].q.region, out[i].q.page, t_read, t_sent,
				t_fault);
		}
	}
	return 0;
}

/* One PAGES packet (or END) from the preempt channel. */
static int handle_preempt(struct pc_dst *pc, uint8_t *buf, bool *ended)
{
	struct wire_pkt_hdr h;
	struct wire_pages wp;
	uint64_t entries[WIRE_MAX_BATCH];
	unsigned int i, n = 0;
	uint64_t t_rx = pct_on(&pc->trace) ? pct_rx_stamp(pc->pre.fd) : 0, t_read;
	int r;

	r = stream_recv_hdr(&pc->pre, &h);
	if (r)
		return pc_fail(pc, -r, "preempt channel: %s", pc->pre.err);
	if (h.type == WIRE_PKT_END) {
		*ended = true;
		return h.len ? pc_fail(pc, EPROTO, "preempt channel: END with %u bytes", h.len) : 0;
	}
	if (h.type == WIRE_PKT_ERROR) {
		stream_read_error(&pc->pre, &h);
		return pc_fail(pc, ECONNABORTED, "preempt channel: %s", pc->pre.err);
	}
	if (h.type == WIRE_PKT_NOP && !h.len)
		return 0;
	if (h.type != WIRE_PKT_PAGES || h.len < sizeof(wp))
		return pc_fail(pc, EPROTO, "preempt channel: unexpected %s packet (%u bytes)",
			       wire_pkt_name(h.type), h.len);
	r = stream_read(&pc->pre, &wp, sizeof(wp));
	if (!r && (!wp.count || wp.count > WIRE_MAX_BATCH || wp.region >= pc->mem->nr_regions ||
		   h.len < sizeof(wp) + 8ull * wp.count))
		return pc_fail(pc, EPROTO, "preempt channel: malformed PAGES (region %u, %u pages)",
			       wp.region, wp.count);
	if (!r)
		r = stream_read(&pc->pre, entries, 8ull * wp.count);
	if (r)
		return pc_fail(pc, -r, "preempt channel: %s", pc->pre.err);
	for (i = 0; i < wp.count; i++) {
		uint64_t page = entries[i] & WIRE_PAGE_INDEX_MASK;

		if ((entries[i] & ~(WIRE_PAGE_INDEX_MASK | WIRE_PAGE_ZERO)) ||
		    page >= pc->mem->pages[wp.region])
			return pc_fail(pc, EPROTO, "preempt channel: page entry 0x%llx out of range",
				       (unsigned long long)entries[i]);
		n += !(entries[i] & WIRE_PAGE_ZERO);
	}
	if (h.len != sizeof(wp) + 8ull * wp.count + (uint64_t)n * PAGE)
		return pc_fail(pc, EPROTO, "preempt channel: malformed PAGES (%u bytes)", h.len);
	r = stream_read(&pc->pre, buf, (size_t)n * PAGE);
	if (r)
		return pc_fail(pc, -r, "preempt channel: %s", pc->pre.err);
	t_read = pct_on(&pc->trace) ? pct_now() : 0;
	for (i = 0, n = 0; i < wp.count; i++) {
		uint64_t page = entries[i] & WIRE_PAGE_INDEX_MASK;
		bool zero = entries[i] & WIRE_PAGE_ZERO;
		int k;

		pthread_mutex_lock(&pc->lock);
		k = pend_find(pc, wp.region, page);
		pthread_mutex_unlock(&pc->lock);
		if (k < 0)
			return pc_fail(pc, EPROTO, "preempt channel: page %llu of region %u was "
				       "never requested; dropping the connection",
				       (unsigned long long)page, wp.region);
		if (!test_bit(pc->recv[wp.region], page)) {
			r = place_raw(pc, wp.region, page, zero ? NULL : buf + (size_t)n * PAGE);
			if (r)
				return pc_fail(pc, -r, "cannot place page %llu of region %u: %s",
					       (unsigned long long)page, wp.region, strerror(-r));
			set_bits(pc->recv[wp.region], page, 1, true);
		}
		pc->urgent_pages++;
		placed(pc, wp.region, page, true, 0);
		if (pct_on(&pc->trace))
			pct_add(&pc->trace, 'P', wp.region, page, t_rx, t_read, pct_now());
		trace("dst: urgent page %llu placed", (unsigned long long)page);
		n += !zero;
	}
	return 0;
}

/* Data waiting on a socket, without blocking. */
static bool sock_ready(int fd)
{
	char b;

	if (recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
		return true;	/* data, or the end: reading will say which */
	return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void *fault_thread(void *arg)
{
	struct pc_dst *pc = arg;
	uint8_t *buf = malloc((size_t)WIRE_MAX_BATCH * PAGE);
	bool finishing = false, ended = false, got;
	int r = buf ? 0 : pc_fail(pc, ENOMEM, "out of memory");

	pc->sched_got = thread_urgent(pc->sched);
	while (!r) {
		/* stop, preempt, then the guest's faults: the uffd or each region */
		struct pollfd p[2 + WIRE_MAX_REGIONS] = {
			{ .fd = pc->stop_fd, .events = POLLIN },
			{ .fd = pc->preempt ? pc->pre.fd : -1, .events = POLLIN },
		};
		unsigned int np = 2, i;
		uint64_t spin_end;
		/*
		 * No room for another batch of faults: leave them in the uffd (their
		 * threads wait there anyway) until replies close requests.  With a
		 * preempt channel a request stays open until its reply comes, even
		 * when the background stream placed the page first, so a guest that
		 * faults fast can run ahead of the replies.
		 */
		bool full = atomic_load(&pc->npend) > PCD_MAX_PENDING - PCD_FAULT_BATCH;

		if (!finishing && !full) {
			r = handle_faults(pc, &got);
			if (r)
				break;
		}
		if (pc->preempt && sock_ready(pc->pre.fd)) {
			r = handle_preempt(pc, buf, &ended);
			if (r || ended)
				break;
			continue;
		}
		/* Bounded spin while a reply is due: a sleep/wake costs more than the wait. */
		if (pc->preempt && pc->spin_us && atomic_load(&pc->npend)) {
			spin_end = now_ns() + pc->spin_us * 1000ull;
			while (now_ns() < spin_end && !sock_ready(pc->pre.fd))
				;
			if (sock_ready(pc->pre.fd))
				continue;
		}
		if (!finishing && !full && pc->kmod) {
			for (i = 0; i < pc->mem->nr_regions; i++)
				p[np++] = (struct pollfd){ .fd = pc->memfd[i], .events = POLLIN };
		} else if (!finishing && !full) {
			p[np++] = (struct pollfd){ .fd = pc->uffd, .events = POLLIN };
		}
		r = poll(p, np, full ? 1 : 1000);
		if (r < 0 && errno != EINTR) {
			r = pc_fail(pc, errno, "poll: %s", strerror(errno));
			break;
		}
		r = 0;
		if (p[0].revents && !finishing) {
			static const struct wire_pkt_hdr end = { .type = WIRE_PKT_END };

			finishing = true;
			if (stream_write(&pc->rp, &end, sizeof(end))) {
				r = pc_fail(pc, ECONNRESET, "return path: %s", pc->rp.err);
				break;
			}
			if (!pc->preempt)
				break;
		}
		for (i = 2; i < np && !r; i++) {
			/* kmod: EPOLLHUP (aborted) leaves EOF for read: handle_faults says it. */
			if ((p[i].revents & POLLERR) && pc->kmod)
				r = pc_fail(pc, EIO, "region %u left postcopy mode", i - 2);
			else if (p[i].revents & POLLERR)
				r = pc_fail(pc, EIO, "the guest's userfaultfd failed");
			else if (!pc->kmod && (p[i].revents & POLLHUP))
				r = pc_fail(pc, EIO, "the guest's userfaultfd failed");
		}
	}
	free(buf);
	atomic_store(&pc->state, r ? r : 1);
	return NULL;
}

int pcd_start(struct pc_dst *pc, int uffd, int rp_fd, int pre_fd, int timeout_ms)
{
	int r;

	pc->uffd = uffd;
	if (uffd >= 0)
		fcntl(uffd, F_SETFL, fcntl(uffd, F_GETFL) | O_NONBLOCK);
	stream_init_fd(&pc->rp, rp_fd, timeout_ms);
	stream_init_fd(&pc->pre, pre_fd, timeout_ms);
	if (pct_on(&pc->trace) && pre_fd >= 0)
		pct_rx_enable(pre_fd);
	pc->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pc->stop_fd < 0)
		return -errno;
	r = pthread_create(&pc->thread, NULL, fault_thread, pc);
	if (r)
		return -r;
	pc->thread_started = true;
	return 0;
}

int pcd_adopt(struct pc_dst *pc, int uffd)
{
	struct uffdio_range range;
	unsigned int i;

	pc->uffd = uffd;
	pc->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pc->stop_fd < 0)
		return -errno;
	if (pc->kmod)
		return pck_requeue(pc);
	fcntl(uffd, F_SETFL, fcntl(uffd, F_GETFL) | O_NONBLOCK);
	/*
	 * Faults the dead helper had read are nowhere but in its memory: wake
	 * every waiter, so that each touches its page again and, still
	 * missing, queues a fresh fault for us.
	 */
	for (i = 0; i < pc->mem->nr_regions; i++) {
		range.start = pc->vmm_base[i];
		range.len = pc->mem->pages[i] * PAGE;
		if (ioctl(uffd, UFFDIO_WAKE, &range))
			return -errno;
	}
	return 0;
}

/*
 * After a reconnection: the old thread is gone (pcd_stop).  Requests whose
 * page arrived meanwhile are closed; the others are asked again on the new
 * return path (their fault-read time kept, so the pause counts in the
 * latency); faults queued in the uffd while paused are read as usual.
 */
int pcd_resume(struct pc_dst *pc, int rp_fd, int pre_fd, int timeout_ms)
{
	uint64_t junk;
	unsigned int i;
	int r;

	if (read(pc->stop_fd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
		return -errno;
	stream_init_fd(&pc->rp, rp_fd, timeout_ms);
	stream_init_fd(&pc->pre, pre_fd, timeout_ms);
	if (pct_on(&pc->trace) && pre_fd >= 0)
		pct_rx_enable(pre_fd);
	pthread_mutex_lock(&pc->lock);
	pc->err[0] = 0;
	for (i = 0; i < atomic_load(&pc->npend);) {
		struct pcd_pending *q = &pc->pend[i];

		if (q->served || test_bit(pc->recv[q->region], q->page)) {
			pend_remove(pc, i);
			continue;
		}
		i++;
	}
	for (i = 0, r = 0; i < atomic_load(&pc->npend) && !r; i++) {
		struct {
			struct wire_pkt_hdr h;
			struct wire_req q;
		} __attribute__((packed)) out = {
			.h = { .type = WIRE_PKT_REQ, .len = sizeof(struct wire_req) },
			.q = { .region = pc->pend[i].region, .page = pc->pend[i].page },
		};

		r = stream_write(&pc->rp, &out, sizeof(out));
	}
	pc->resent += i;
	pthread_mutex_unlock(&pc->lock);
	if (r)
		return r;
	atomic_store(&pc->state, 0);
	r = pthread_create(&pc->thread, NULL, fault_thread, pc);
	if (r)
		return -r;
	pc->thread_started = true;
	return 0;
}

int pcd_finish(struct pc_dst *pc, int timeout_ms)
{
	uint64_t one = 1, deadline = now_ns() + timeout_ms * 1000000ull;
	int st;

	if (!pc->thread_started)
		return 0;
	if (write(pc->stop_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	while (!(st = atomic_load(&pc->state)) && now_ns() < deadline)
		usleep(200);
	if (!st) {
		pcd_stop(pc);
		return pc_fail(pc, ETIMEDOUT, "preempt channel did not end in time");
	}
	pthread_join(pc->thread, NULL);
	pc->thread_started = false;
	/* kmod: every page is here; the regions become ordinary again. */
	if (st > 0 && pc->kmod && !pcd_missing(pc))
		pck_disable(pc);
	return st < 0 ? st : 0;
}

void pcd_stop(struct pc_dst *pc)
{
	uint64_t one = 1;

	if (!pc->thread_started)
		return;
	if (pc->pre.fd >= 0)
		shutdown(pc->pre.fd, SHUT_RDWR);
	if (pc->rp.fd >= 0)
		shutdown(pc->rp.fd, SHUT_RDWR);
	if (write(pc->stop_fd, &one, sizeof(one)) < 0)
		perror("vmig listen: eventfd");
	pthread_join(pc->thread, NULL);
	pc->thread_started = false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void pcd_report(struct pc_dst *pc, struct report *rep)
{
	struct report_pc *r = &rep->pc;
	uint64_t sum = 0;
	size_t i;

	pthread_mutex_lock(&pc->lock);
	r->faults = pc->faults;
	r->requests = pc->requests;
	r->coalesced = pc->coalesced;
	r->urgent_pages = pc->urgent_pages;
	r->eexist = pc->eexist;
	r->resent = pc->resent;
	r->sched = pc->sched_got;
	r->flat_count = pc->nflat;
	if (pc->nflat) {
		qsort(pc->flat, pc->nflat, sizeof(pc->flat[0]), cmp_u64);
		for (i = 0; i < pc->nflat; i++)
			sum += pc->flat[i];
		r->flat_avg_us = sum / 1e3 / pc->nflat;
		r->flat_p99_us = pc->flat[(pc->nflat * 99) / 100] / 1e3;
		sum = 0;
	}
	r->lat_count = pc->nlat;
	if (pc->nlat) {
		qsort(pc->lat, pc->nlat, sizeof(pc->lat[0]), cmp_u64);
		for (i = 0; i < pc->nlat; i++) {
			uint64_t us = pc->lat[i] / 1000;
			unsigned int b = 0;

			sum += pc->lat[i];
			while (us > 1 && b < REPORT_LAT_BUCKETS - 1) {
				us >>= 1;
				b++;
			}
			r->lat_hist[b]++;
		}
		r->lat_avg_us = sum / 1e3 / pc->nlat;
		r->lat_p50_us = pc->lat[pc->nlat / 2] / 1e3;
		r->lat_p99_us = pc->lat[(pc->nlat * 99) / 100] / 1e3;
		r->lat_max_us = pc->lat[pc->nlat - 1] / 1e3;
	}
	pthread_mutex_unlock(&pc->lock);
}

void pcd_destroy(struct pc_dst *pc)
{
	unsigned int i;

	pcd_stop(pc);
	for (i = 0; i < WIRE_MAX_REGIONS; i++)
		free(pc->recv[i]);
	free(pc->lat);
	free(pc->flat);
	pct_close(&pc->trace);
	if (pc->stop_fd >= 0)
		close(pc->stop_fd);
	if (pc->uffd >= 0)
		close(pc->uffd);
	pthread_mutex_destroy(&pc->lock);
	pthread_cond_destroy(&pc->cond);
}
