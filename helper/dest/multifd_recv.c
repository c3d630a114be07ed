// SPDX-License-Identifier: GPL-2.0
/* Receive one multifd channel's page stream into guest RAM. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "multifd_recv.h"
#include "postcopy_dst.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void recv_chan_init(struct recv_chan *c, unsigned int index, struct stream *s, int timeout_ms,
		    const struct dest_mem *mem, bool zero_pages)
{
	memset(c, 0, sizeof(*c));
	c->index = index;
	stream_move(&c->s, s, timeout_ms);
	c->mem = mem;
	c->zero_pages = zero_pages;
}

/* After the switch: read into the bounce buffer, place the pages atomically. */
static int recv_pages_postcopy(struct recv_chan *c, const struct wire_pages *wp, unsigned int n)
{
	uint64_t pages[WIRE_MAX_BATCH];
	uint8_t *src[WIRE_MAX_BATCH];
	unsigned int i, k = 0;
	int r = n ? stream_readv(&c->s, c->iov, n) : 0;

	if (r)
		return r;
	for (i = 0; i < wp->count; i++) {
		uint64_t e = c->entries[i];
		bool zero = e & WIRE_PAGE_ZERO;

		pages[i] = e & WIRE_PAGE_INDEX_MASK;
		src[i] = zero ? NULL : c->bounce + (size_t)k * WIRE_PAGE_SIZE;
		k += !zero;
		c->zero_pages_rcvd += zero;
	}
	r = pcd_place_batch(c->pc, wp->region, pages, src, wp->count);
	if (r)
		return stream_fail(&c->s, -r, "placing pages failed: %s", strerror(-r));
	c->pages += wp->count;
	c->normal_pages += n;
	return 0;
}

/*
 * Guest RAM not prefaulted (--no-prefault): allocate the batch's pages
 * before reading into them, one call per contiguous run, instead of faulting
 * them in one by one under the copy with the socket locked (issue 19, 1 GiB
 * at 1-4 channels: +7-10 % throughput, -7-9 % CPU; on prefaulted RAM the
 * page walk only costs, so it is skipped there).  A hint: where it does not
 * apply, the copy faults the pages in as before.
 */
static void populate_batch(const struct iovec *iov, unsigned int n)
{
	unsigned int i, j;

	for (i = 0; i < n; i = j) {
		uint8_t *start = iov[i].iov_base;

		for (j = i + 1; j < n && iov[j].iov_base == start + (j - i) * WIRE_PAGE_SIZE; j++)
			;
		madvise(start, (size_t)(j - i) * WIRE_PAGE_SIZE, MADV_POPULATE_WRITE);
	}
}

static int recv_pages(struct recv_chan *c, uint32_t len)
{
	struct wire_pages wp;
	uint64_t need;
	unsigned int i, n = 0;
	uint8_t *base;
	int r = 0;

	if (len < sizeof(wp))
		return stream_fail(&c->s, EPROTO, "truncated PAGES packet: %u bytes", len);
	r = stream_read(&c->s, &wp, sizeof(wp));
	if (r)
		return r;
	if (wp.region >= c->mem->nr_regions)
		return stream_fail(&c->s, EPROTO, "PAGES for region %u (guest has %u)",
				   wp.region, c->mem->nr_regions);
	if (!wp.count || wp.count > WIRE_MAX_BATCH)
		return stream_fail(&c->s, EPROTO, "PAGES with %u pages (1..%u allowed)",
				   wp.count, WIRE_MAX_BATCH);
	if (len < sizeof(wp) + 8ull * wp.count)
		return stream_fail(&c->s, EPROTO, "truncated PAGES packet: %u bytes for %u pages",
				   len, wp.count);
	r = stream_read(&c->s, c->entries, 8ull * wp.count);
	if (r)
		return r;
	base = c->mem->base[wp.region];
	for (i = 0; i < wp.count; i++) {
		uint64_t e = c->entries[i], page = e & WIRE_PAGE_INDEX_MASK;

		if ((e & ~(WIRE_PAGE_INDEX_MASK | WIRE_PAGE_ZERO)) ||
		    page >= c->mem->pages[wp.region])
			return stream_fail(&c->s, EPROTO, "PAGES entry 0x%llx out of range "
					   "(region %u has %llu pages)", (unsigned long long)e,
					   wp.region, (unsigned long long)c->mem->pages[wp.region]);
		if (e & WIRE_PAGE_ZERO) {
			if (!c->zero_pages)
				return stream_fail(&c->s, EPROTO, "zero page sent but zero pages "
						   "were not negotiated");
			continue;
		}
		c->iov[n].iov_base = c->bounce ? c->bounce + (size_t)n * WIRE_PAGE_SIZE :
					       base + page * WIRE_PAGE_SIZE;
		c->iov[n].iov_len = WIRE_PAGE_SIZE;
		n++;
	}
	need = sizeof(wp) + 8ull * wp.count + (uint64_t)n * WIRE_PAGE_SIZE;
	if (len != need)
		return stream_fail(&c->s, EPROTO, "malformed PAGES packet: %u bytes, %llu "
				   "expected for %u pages (%u with data)", len,
				   (unsigned long long)need, wp.count, n);
	if (c->bounce)
		return recv_pages_postcopy(c, &wp, n);
	/* Zero pages: clear only what is not zero already (fresh pages stay unallocated). */
	for (i = 0; i < wp.count; i++) {
		uint64_t e = c->entries[i];

		if (e & WIRE_PAGE_ZERO) {
			uint8_t *p = base + (e & WIRE_PAGE_INDEX_MASK) * WIRE_PAGE_SIZE;

			memset(p, 0, WIRE_PAGE_SIZE);
			c->zero_pages_rcvd++;
		}
	}
	if (n) {
		if (c->mem->populate)
			populate_batch(c->iov, n);
		stream_set_lowat(&c->s, (size_t)n * WIRE_PAGE_SIZE);
		r = stream_readv(&c->s, c->iov, n);
		stream_set_lowat(&c->s, 1);
	}
	if (r)
		return r;
	if (c->pc)	/* postcopy negotiated: keep the received bitmap from the start */
		for (i = 0; i < wp.count; i++)
			pcd_note_received(c->pc, wp.region, c->entries[i] & WIRE_PAGE_INDEX_MASK);
	c->pages += wp.count;
	c->normal_pages += n;
	return 0;
}

int recv_chan_run(struct recv_chan *c)
{
	struct wire_pkt_hdr h;
	struct wire_end end;
	int r;

	if (c->pc && c->bounce)		/* a resumed postcopy: the guest runs here */
		thread_background(c->pc->sched);
	for (;;) {
		r = stream_recv_hdr(&c->s, &h);
		if (r)
			return r;
		switch (h.type) {
		case WIRE_PKT_PAGES:
			r = recv_pages(c, h.len);
			if (r)
				return r;
			break;
		case WIRE_PKT_NOP:
			if (h.len)
				return stream_fail(&c->s, EPROTO, "NOP with %u bytes", h.len);
			break;
		case WIRE_PKT_ERROR:
			return stream_read_error(&c->s, &h);
		case WIRE_PKT_DEVSTATE:
			if (!c->devstate)
				return stream_fail(&c->s, EPROTO, "device state was not announced");
			r = c->devstate(c->devstate_arg, &c->s, h.len);
			if (r)
				return r;
			break;
		case WIRE_PKT_POSTCOPY:
			if (h.len || !c->pc || c->bounce)
				return stream_fail(&c->s, EPROTO, "unexpected POSTCOPY on a multifd "
						   "channel");
			c->bounce = malloc((size_t)WIRE_MAX_BATCH * WIRE_PAGE_SIZE);
			if (!c->bounce)
				return stream_fail(&c->s, ENOMEM, "out of memory");
			if (pcd_channel_switch(c->pc))
				return stream_fail(&c->s, ECANCELED, "postcopy switch abandoned");
			thread_background(c->pc->sched);	/* the guest runs here now */
			break;
		case WIRE_PKT_END:
			if (h.len != sizeof(end))
				return stream_fail(&c->s, EPROTO, "malformed END: %u bytes", h.len);
			r = stream_read(&c->s, &end, sizeof(end));
			if (r)
				return r;
			if (end.pages != c->pages || end.normal_pages != c->normal_pages)
				return stream_fail(&c->s, EPROTO, "END says %llu pages (%llu with "
						   "data) were sent, %llu (%llu) arrived",
						   (unsigned long long)end.pages,
						   (unsigned long long)end.normal_pages,
						   (unsigned long long)c->pages,
						   (unsigned long long)c->normal_pages);
			c->ended = true;
			return 0;
		default:
			return stream_fail(&c->s, EPROTO, "out-of-order packet on multifd "
					   "channel: %s", wire_pkt_name(h.type));
		}
	}
}
