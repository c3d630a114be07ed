// SPDX-License-Identifier: GPL-2.0
/* Postcopy on the source: the return-path thread serving page requests. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "postcopy_src.h"
#include "util.h"

void pcs_init(struct pc_src *ps, bool preempt, int spin_us, enum urgent_sched sched,
	      bool follow)
{
	memset(ps, 0, sizeof(*ps));
	ps->follow = follow;
	ps->cpu.cur = -1;
	ps->preempt = preempt;
	ps->spin_us = spin_us;
	ps->sched = sched;
	ps->rp.fd = ps->pre.fd = -1;
	pct_open(&ps->trace, "src");
}

static int open_chan(struct stream *s, uint16_t kind, const char *to, uint64_t session,
		     int timeout_ms, char *err, size_t errlen)
{
	int r = chan_connect(s, to, timeout_ms, timeout_ms, err, errlen);

	if (r)
		return r;
	chan_mark_urgent(s->fd);
	r = chan_send_hdr(s, kind, session, 0);
	if (r)
		snprintf(err, errlen, "%s channel: %s", wire_kind_name(kind), s->err);
	return r;
}

int pcs_connect(struct pc_src *ps, const char *to, uint64_t session, int timeout_ms,
		char *err, size_t errlen)
{
	int r = open_chan(&ps->rp, WIRE_CHAN_RETURN, to, session, timeout_ms, err, errlen);

	if (!r && pct_on(&ps->trace))
		pct_rx_enable(ps->rp.fd);
	if (!r && ps->preempt)
		r = open_chan(&ps->pre, WIRE_CHAN_PREEMPT, to, session, timeout_ms, err, errlen);
	return r;
}

static int rp_fail(struct pc_src *ps, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int rp_fail(struct pc_src *ps, int code, const char *fmt, ...)
{
	va_list ap;

	if (!ps->err[0]) {
		va_start(ap, fmt);
		vsnprintf(ps->err, sizeof(ps->err), fmt, ap);
		va_end(ap);
	}
	return -code;
}

/*
 * The requested page, straight onto the preempt socket: read from the
 * region's file where the backend allows it.  A requested page is one the
 * background stream has not sent, and so most often one this helper has
 * never touched: read through the mapping, the send's copy took a page
 * fault first (~7 us of a ~48 us request on the test host, issue 19).
 */
static int send_urgent(struct pc_src *ps, uint32_t region, uint64_t page)
{
	struct {
		struct wire_pkt_hdr h;
		struct wire_pages wp;
		uint64_t entry;
	} __attribute__((packed)) hdr = {
		.h = { .type = WIRE_PKT_PAGES,
		       .len = sizeof(struct wire_pages) + 8 + WIRE_PAGE_SIZE },
		.wp = { .region = region, .count = 1 },
		.entry = page,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = ps->page_buf, .iov_len = WIRE_PAGE_SIZE },
	};

	if (vmig_ram_read_page(ps->ram, region, page, ps->page_buf))
		iov[1].iov_base = vmig_ram_page(ps->ram, region, page);

	return stream_writev(ps->reply_rp ? &ps->rp : &ps->pre, iov, 2);
}

static int serve_one(struct pc_src *ps)
{
	struct wire_pkt_hdr h;
	struct wire_req q;
	uint64_t t_rx = pct_on(&ps->trace) ? pct_rx_stamp(ps->rp.fd) : 0, t_read;
	int r = stream_recv_hdr(&ps->rp, &h);

	if (r)
		return rp_fail(ps, -r, "return path: %s", ps->rp.err);
	if (h.type == WIRE_PKT_END && !h.len)
		return 1;
	if (h.type == WIRE_PKT_ERROR) {
		stream_read_error(&ps->rp, &h);
		return rp_fail(ps, ECONNABORTED, "return path: %s", ps->rp.err);
	}
	if (h.type != WIRE_PKT_REQ || h.len != sizeof(q))
		return rp_fail(ps, EPROTO, "return path: unexpected %s packet (%u bytes); "
			       "dropping the connection", wire_pkt_name(h.type), h.len);
	r = stream_read(&ps->rp, &q, sizeof(q));
	if (r)
		return rp_fail(ps, -r, "return path: %s", ps->rp.err);
	if (q.reserved || q.region >= vmig_ram_region_count(ps->ram) ||
	    q.page >= vmig_ram_region_pages(ps->ram, q.region))
		return rp_fail(ps, ERANGE, "return path: request for page %llu of region %u, "
			       "outside guest RAM; dropping the connection",
			       (unsigned long long)q.page, q.region);
	ps->requests++;
	if (ps->cut_req && ++ps->inc_requests == ps->cut_req) {
		ps->cut_region = q.region;
		ps->cut_page = q.page;
		atomic_store(&ps->cut_fired, true);
		ps->cut(ps->cut_arg);
		return rp_fail(ps, ECONNRESET, "return path: test cut with page %llu requested "
			       "and not sent", (unsigned long long)q.page);
	}
	if (ps->drop_n && q.region == ps->drop_region && q.page == ps->drop_page)
		return 0;	/* tests: a broken source */
	if (ps->preempt) {
		t_read = pct_on(&ps->trace) ? pct_now() : 0;
		r = send_urgent(ps, q.region, q.page);
		if (r)
			return rp_fail(ps, -r, "%s: %s", ps->reply_rp ? "return path" :
				       "preempt channel", ps->reply_rp ? ps->rp.err : ps->pre.err);
		if (pct_on(&ps->trace))
			pct_add(&ps->trace, 'S', q.region, q.page, t_rx, t_read, pct_now());
		return 0;
	}
	{
		uint64_t chunk = q.page / WIRE_CHUNK_PAGES;

		r = send_chan_queue_front(&ps->chans[(chunk + q.region) % ps->nr_chans], q.region,
					  q.page, 1);
		return r ? rp_fail(ps, -r, "out of memory") : 0;
	}
}

/*
 * Requests read on one CPU in a row before the thread moves there: 2 for
 * the first move, then 1024.  The destination's fault thread moves after
 * 2 replies each time.  When both helpers run on one host, each receives
 * on the CPU the other one runs on, and two threads following each other
 * would chase each other for ever: the scheduler puts a SCHED_FIFO thread
 * woken on a CPU where another one runs (the one that woke it) on the other
 * CPU.  Once this thread stays put, the fault thread comes to it and stays.
 */
#define PCS_FOLLOW_FIRST	2
#define PCS_FOLLOW_THEN		1024

static void *rp_thread(void *arg)
{
	struct pc_src *ps = arg;
	int r = 0;

	ps->sched_got = thread_urgent(ps->sched, URGENT_PRIO_SRC);
	/* Not traced: each request's kernel stamp is read off the socket. */
	if (!pct_on(&ps->trace))
		stream_readahead(&ps->rp, ps->rp_ra, sizeof(ps->rp_ra));
	cpu_follow_init(&ps->cpu, ps->follow && strcmp(ps->sched_got, "normal") ?
			PCS_FOLLOW_FIRST : 0, PCS_FOLLOW_THEN);
	while (!atomic_load(&ps->stop)) {
		struct pollfd p = { .fd = ps->rp.fd, .events = POLLIN };

		if (!stream_ready(&ps->rp)) {
			uint64_t end = now_ns() + ps->spin_us * 1000ull;
			bool ready = false;

			while (ps->spin_us && !ready && now_ns() < end)
				ready = stream_ready(&ps->rp);
			if (!ready) {
				r = poll(&p, 1, 200);
				if (r < 0 && errno != EINTR) {
					r = rp_fail(ps, errno, "poll: %s", strerror(errno));
					break;
				}
				r = 0;
				continue;
			}
		}
		r = serve_one(ps);
		if (r)
			break;
		cpu_follow_sock(&ps->cpu, ps->rp.fd);
	}
	if (r == 1 && ps->preempt) {
		static const struct wire_pkt_hdr end = { .type = WIRE_PKT_END };
		struct stream *out = ps->reply_rp ? &ps->rp : &ps->pre;

		if (stream_write(out, &end, sizeof(end)))
			r = rp_fail(ps, ECONNRESET, "%s: %s", ps->reply_rp ? "return path" :
				    "preempt channel", out->err);
	}
	if (!r)
		r = rp_fail(ps, ECANCELED, "cancelled");
	if (r < 0) {
		/* A bad request or reply: drop both connections, the peer sees why. */
		if (ps->rp.fd >= 0)
			shutdown(ps->rp.fd, SHUT_RDWR);
		if (ps->pre.fd >= 0)
			shutdown(ps->pre.fd, SHUT_RDWR);
	}
	atomic_store(&ps->state, r);
	return NULL;
}

int pcs_start(struct pc_src *ps, struct vmig_ram *ram, struct send_chan *chans,
	      unsigned int nr_chans, uint64_t caps, int timeout_ms)
{
	int r;

	(void)timeout_ms;
	ps->reply_rp = ps->preempt && (caps & WIRE_CAP_REPLY_RETURN);
	ps->ram = ram;
	ps->chans = chans;
	ps->nr_chans = nr_chans;
	r = pthread_create(&ps->thread, NULL, rp_thread, ps);
	if (r)
		return -r;
	ps->started = true;
	return 0;
}

int pcs_wait(struct pc_src *ps, int timeout_ms)
{
	uint64_t deadline = now_ns() + timeout_ms * 1000000ull;
	int st;

	while (!(st = atomic_load(&ps->state)) && now_ns() < deadline)
		usleep(500);
	if (!st)
		return rp_fail(ps, ETIMEDOUT, "return path: the destination did not end it");
	return st == 1 ? 0 : st;
}

void pcs_destroy(struct pc_src *ps)
{
	if (ps->started) {
		atomic_store(&ps->stop, true);
		pthread_join(ps->thread, NULL);
		ps->started = false;
	}
	stream_close(&ps->rp);
	stream_close(&ps->pre);
	pct_close(&ps->trace);
}
