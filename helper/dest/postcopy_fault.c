// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy destination: the one fault thread.  It reads the guest's
 * requests from the RAM backend, sends them on the return path, reads the
 * urgent pages from the preempt channel and places them (no hand-off
 * between threads on that path); a stop eventfd makes it end the return
 * path and drain the preempt channel.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "postcopy_int.h"
#include "util.h"

struct req_pkt {
	struct wire_pkt_hdr h;
	struct wire_req q;
} __attribute__((packed));

/*
 * Requests written by the RAM backend (vmig.ko's sink): the fault's own
 * CPU writes each to the return path as it is queued, and no thread of
 * ours wakes for it.  On plain TCP only (the module cannot write inside a
 * TLS stream), and while it is attached nothing else writes to rp: we
 * detach before we write ourselves (pcd_sink_off), for good on this
 * connection.
 */
void pcd_sink_on(struct pc_dst *pc)
{
	struct req_pkt rec = {
		.h = { .type = WIRE_PKT_REQ, .len = sizeof(struct wire_req) },
	};
	int r;

	/* Without preempt the fault thread must read requests to count them. */
	if (!pc->sink_wanted || !pc->preempt || pc->rp.tls || pc->rp.fd < 0)
		return;
	r = vmig_ram_postcopy_set_sink(pc->ram, pc->rp.fd, &rec, sizeof(rec),
				       offsetof(struct req_pkt, q.region),
				       offsetof(struct req_pkt, q.page));
	pc->sink = !r;
	/*
	 * A backend with a sink may have let a region write requests before
	 * another refused; one without (uffd, an older vmig.ko) never did.
	 */
	pc->sink_used |= r != -EOPNOTSUPP;
}

int pcd_sink_off(struct pc_dst *pc)
{
	int r;

	if (!pc->sink)
		return 0;
	pc->sink = false;
	r = vmig_ram_postcopy_set_sink(pc->ram, -1, NULL, 0, 0, 0);
	return r ? pcd_fail(pc, -r, "cannot take the return path back from vmig.ko: %s",
			    strerror(-r)) : 0;
}

/*
 * A fault on (reg, page) read at time t (t_fault: when it happened, if
 * known): a request on the return path unless one is out (or the backend
 * wrote it: sent).
 */
static int note_fault(struct pc_dst *pc, uint32_t reg, uint64_t page, uint64_t t,
		      uint64_t t_fault, bool sent, struct req_pkt *out, unsigned int *nreq)
{
	int k;

	pc->faults++;
	if (test_bit(pc->recv[reg], page)) {
		vmig_ram_postcopy_wake(pc->ram, reg, page);
		return 0;
	}
	pthread_mutex_lock(&pc->lock);
	k = pcd_pend_find(pc, reg, page);
	/* The backend gave back a request it had taken: ours to write now. */
	if (k >= 0 && !sent && pc->pend[k].kernel_sent) {
		pc->pend[k].kernel_sent = false;
		pthread_mutex_unlock(&pc->lock);
		goto write;
	}
	if (k >= 0 || atomic_load(&pc->npend) == PCD_MAX_PENDING) {
		pc->coalesced += k >= 0;
		/* Written already: its answer is placed as one we never saw. */
		if (k < 0 && sent) {
			pc->requests++;
			pc->sink_sent++;
			k = 0;
		}
		pthread_mutex_unlock(&pc->lock);
		if (k < 0)
			return pcd_fail(pc, EOVERFLOW, "more than %d pages requested at once",
					PCD_MAX_PENDING);
		return 0;
	}
	/* One the backend wrote left at the fault: we read it late, if at all. */
	pc->pend[atomic_load(&pc->npend)] = (struct pcd_pending){
		.region = reg, .page = page, .t_ns = sent && t_fault ? t_fault : t,
		.t_fault_ns = t_fault, .kernel_sent = sent };
	atomic_fetch_add(&pc->npend, 1);
	pc->requests++;
	pc->sink_sent += sent;
	pthread_mutex_unlock(&pc->lock);
	if (sent)
		return 0;
write:
	out[*nreq].h = (struct wire_pkt_hdr){ .type = WIRE_PKT_REQ, .len = sizeof(struct wire_req) };
	out[*nreq].q = (struct wire_req){ .region = reg, .page = page };
	(*nreq)++;
	return 0;
}

/* The guest's requests; t_fault where the backend stamps the fault itself. */
static int read_requests(struct pc_dst *pc, struct req_pkt *out, unsigned int *nreq)
{
	struct vmig_ram_request req[PCD_FAULT_BATCH];
	int n = vmig_ram_postcopy_requests(pc->ram, req, PCD_FAULT_BATCH), i, r;
	uint64_t t = now_ns();

	if (n == -ESHUTDOWN)
		return pcd_fail(pc, ESHUTDOWN, "guest RAM left postcopy mode with pages missing");
	if (n == -EFAULT)
		return pcd_fail(pc, EFAULT, "a guest page request outside guest RAM");
	if (n < 0)
		return pcd_fail(pc, -n, "reading the guest's page requests: %s", strerror(-n));
	for (i = 0; i < n; i++) {
		r = note_fault(pc, req[i].region, req[i].page, t, req[i].fault_ns, req[i].sent,
			       out, nreq);
		if (r)
			return r;
	}
	return 0;
}

/* The guest's new faults: their requests written; 0, or -errno (pc->err). */
static int handle_faults(struct pc_dst *pc)
{
	struct req_pkt out[PCD_FAULT_BATCH];
	unsigned int i, nreq = 0;
	uint64_t t_read = pct_on(&pc->trace) ? pct_now() : 0;
	int r;

	r = read_requests(pc, out, &nreq);
	if (r)
		return r;
	if (nreq)
		trace("dst: %u requests, first page %llu", nreq, (unsigned long long)out[0].q.page);
	/* After END (finishing: every page is here) nothing more is asked. */
	if (pc->rp_ended)
		nreq = 0;
	if (nreq && pcd_sink_off(pc))
		return -EIO;
	if (nreq && stream_write(&pc->rp, out, nreq * sizeof(out[0])))
		return pcd_fail(pc, ECONNRESET, "return path: %s", pc->rp.err);
	pc->asked_now = nreq;
	if (nreq && pct_on(&pc->trace)) {
		uint64_t t_sent = pct_now(), to_rt = t_sent - now_ns();

		for (i = 0; i < nreq; i++) {
			uint64_t t_fault = 0;
			int k;

			pthread_mutex_lock(&pc->lock);
			k = pcd_pend_find(pc, out[i].q.region, out[i].q.page);
			if (k >= 0 && pc->pend[k].t_fault_ns)
				t_fault = pc->pend[k].t_fault_ns + to_rt;
			pthread_mutex_unlock(&pc->lock);
			pct_add(&pc->trace, 'R', out[i].q.region, out[i].q.page, t_read, t_sent,
				t_fault);
		}
	}
	return 0;
}

/* One PAGES packet (or END) of answers: the preempt channel's, or the return path's. */
static int handle_preempt(struct pc_dst *pc, uint8_t *buf, bool *ended)
{
	struct wire_pkt_hdr h;
	struct wire_pages wp;
	uint64_t entries[WIRE_MAX_BATCH];
	unsigned int i, n = 0;
	uint64_t t_rx = pct_on(&pc->trace) ? pct_rx_stamp(pc->pre.fd) : 0, t_read;
	const char *ch = pc->reply_rp ? "return path" : "preempt channel";
	int r;

	r = stream_recv_hdr(&pc->pre, &h);
	if (r)
		return pcd_fail(pc, -r, "%s: %s", ch, pc->pre.err);
	if (h.type == WIRE_PKT_END) {
		*ended = true;
		return h.len ? pcd_fail(pc, EPROTO, "%s: END with %u bytes", ch, h.len) : 0;
	}
	if (h.type == WIRE_PKT_ERROR) {
		stream_read_error(&pc->pre, &h);
		return pcd_fail(pc, ECONNABORTED, "%s: %s", ch, pc->pre.err);
	}
	if (h.type == WIRE_PKT_NOP && !h.len)
		return 0;
	if (h.type != WIRE_PKT_PAGES || h.len < sizeof(wp))
		return pcd_fail(pc, EPROTO, "%s: unexpected %s packet (%u bytes)", ch,
				wire_pkt_name(h.type), h.len);
	r = stream_read(&pc->pre, &wp, sizeof(wp));
	if (!r && (!wp.count || wp.count > WIRE_MAX_BATCH || wp.region >= pc->mem->nr_regions ||
		   h.len < sizeof(wp) + 8ull * wp.count))
		return pcd_fail(pc, EPROTO, "%s: malformed PAGES (region %u, %u pages)", ch,
				wp.region, wp.count);
	if (!r)
		r = stream_read(&pc->pre, entries, 8ull * wp.count);
	if (r)
		return pcd_fail(pc, -r, "%s: %s", ch, pc->pre.err);
	for (i = 0; i < wp.count; i++) {
		uint64_t page = entries[i] & WIRE_PAGE_INDEX_MASK;

		if ((entries[i] & ~(WIRE_PAGE_INDEX_MASK | WIRE_PAGE_ZERO)) ||
		    page >= pc->mem->pages[wp.region])
			return pcd_fail(pc, EPROTO, "%s: page entry 0x%llx out of range", ch,
					(unsigned long long)entries[i]);
		n += !(entries[i] & WIRE_PAGE_ZERO);
	}
	if (h.len != sizeof(wp) + 8ull * wp.count + (uint64_t)n * PAGE)
		return pcd_fail(pc, EPROTO, "%s: malformed PAGES (%u bytes)", ch, h.len);
	r = stream_read(&pc->pre, buf, (size_t)n * PAGE);
	if (r)
		return pcd_fail(pc, -r, "%s: %s", ch, pc->pre.err);
	t_read = pct_on(&pc->trace) ? pct_now() : 0;
	for (i = 0, n = 0; i < wp.count; i++) {
		uint64_t page = entries[i] & WIRE_PAGE_INDEX_MASK;
		bool zero = entries[i] & WIRE_PAGE_ZERO;
		int k;

		pthread_mutex_lock(&pc->lock);
		k = pcd_pend_find(pc, wp.region, page);
		pthread_mutex_unlock(&pc->lock);
		/*
		 * A request the backend wrote is queued for us before it left,
		 * but nothing woke us for it: read what is queued, look again.
		 * Without the sink every request is written after we read it,
		 * so an answer to one not read yet was never asked for.
		 */
		if (k < 0 && pc->sink_used &&
		    atomic_load(&pc->npend) <= PCD_MAX_PENDING - PCD_FAULT_BATCH) {
			r = handle_faults(pc);
			if (r)
				return r;
			pthread_mutex_lock(&pc->lock);
			k = pcd_pend_find(pc, wp.region, page);
			pthread_mutex_unlock(&pc->lock);
		}
		/*
		 * Or the background stream placed the page first: the module
		 * then dropped the request unread (or we read it with the page
		 * here and kept nothing open).  Such an answer is placed if the
		 * page is still missing (never over a present page) and closes
		 * nothing; so the check below holds only without the sink.
		 */
		if (k < 0 && pc->sink_used) {
			if (!test_bit(pc->recv[wp.region], page)) {
				r = pcd_place_one(pc, wp.region, page,
						  zero ? NULL : buf + (size_t)n * PAGE);
				if (r)
					return pcd_fail(pc, -r, "cannot place page %llu of region "
							"%u: %s", (unsigned long long)page,
							wp.region, strerror(-r));
				set_bits(pc->recv[wp.region], page, 1, true);
			}
			pc->urgent_unseen++;
			n += !zero;
			continue;
		}
		if (k < 0)
			return pcd_fail(pc, EPROTO, "%s: page %llu of region %u was "
					"never requested; dropping the connection", ch,
					(unsigned long long)page, wp.region);
		if (!test_bit(pc->recv[wp.region], page)) {
			r = pcd_place_one(pc, wp.region, page, zero ? NULL : buf + (size_t)n * PAGE);
			if (r)
				return pcd_fail(pc, -r, "cannot place page %llu of region %u: %s",
						(unsigned long long)page, wp.region, strerror(-r));
			set_bits(pc->recv[wp.region], page, 1, true);
		}
		pc->urgent_pages++;
		pcd_answer(pc, wp.region, page, true, 0);
		if (pct_on(&pc->trace))
			pct_add(&pc->trace, 'P', wp.region, page, t_rx, t_read, pct_now());
		trace("dst: urgent page %llu placed", (unsigned long long)page);
		n += !zero;
	}
	cpu_follow_sock(&pc->cpu, pc->pre.fd);	/* after the placing: not on its path */
	return 0;
}

/*
 * Replies read on one CPU in a row before the fault thread moves there,
 * each time (the source's return-path thread settles: see PCS_FOLLOW_THEN).
 */
#define PCD_FOLLOW_AFTER	2

void *pcd_fault_thread(void *arg)
{
	struct pc_dst *pc = arg;
	uint8_t *buf = malloc((size_t)WIRE_MAX_BATCH * PAGE);
	bool finishing = false, ended = false;
	/* The guest's request fds may have something: false after a poll() said not. */
	bool asked = true;
	int r = buf ? 0 : pcd_fail(pc, ENOMEM, "out of memory");

	pc->sched_got = thread_urgent(pc->sched, URGENT_PRIO_DST);
	/* Not traced: each reply's kernel stamp is read off the socket. */
	if (!pct_on(&pc->trace))
		stream_readahead(&pc->pre, pc->pre_ra, sizeof(pc->pre_ra));
	cpu_follow_init(&pc->cpu, pc->follow && strcmp(pc->sched_got, "normal") ?
			PCD_FOLLOW_AFTER : 0, PCD_FOLLOW_AFTER);
	while (!r) {
		/* stop, preempt, then the guest's requests: the backend's fds */
		struct pollfd p[2 + PCD_REQ_FDS] = {
			/* once finishing, the stop event stays readable: poll it no more */
			{ .fd = finishing ? -1 : pc->stop_fd, .events = POLLIN },
			{ .fd = pc->preempt ? pc->pre.fd : -1, .events = POLLIN },
		};
		int fds[PCD_REQ_FDS], nfds = 0, i;
		uint64_t spin_end;
		/*
		 * No room for another batch of faults: leave them queued (their
		 * threads wait there anyway) until replies close requests.  With a
		 * preempt channel a request stays open until its reply comes, even
		 * when the background stream placed the page first, so a guest that
		 * faults fast can run ahead of the replies.
		 */
		bool full = atomic_load(&pc->npend) > PCD_MAX_PENDING - PCD_FAULT_BATCH;

		pc->asked_now = 0;
		if (!finishing && !full && asked) {
			r = handle_faults(pc);
			if (r)
				break;
		}
		asked = true;
		/*
		 * Requests just written: their answers cannot be here yet (on one
		 * host the source's thread runs once this one sleeps).  Straight
		 * to poll() then, which sees them come; only what was read ahead
		 * needs a look first.
		 */
		if (pc->preempt && (pc->asked_now ? stream_buffered(&pc->pre) :
				    stream_ready(&pc->pre))) {
			r = handle_preempt(pc, buf, &ended);
			if (r || ended)
				break;
			continue;
		}
		/* Bounded spin while a reply is due: a sleep/wake costs more than the wait. */
		if (pc->preempt && pc->spin_us && atomic_load(&pc->npend)) {
			spin_end = now_ns() + pc->spin_us * 1000ull;
			while (now_ns() < spin_end && !stream_ready(&pc->pre))
				;
			if (stream_ready(&pc->pre))
				continue;
		}
		if (!finishing && !full)
			nfds = vmig_ram_postcopy_fds(pc->ram, fds, PCD_REQ_FDS);
		for (i = 0; i < nfds; i++)
			p[2 + i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		r = poll(p, 2 + (nfds > 0 ? nfds : 0), full ? 1 : 1000);
		if (r < 0 && errno != EINTR) {
			r = pcd_fail(pc, errno, "poll: %s", strerror(errno));
			break;
		}
		/* Woken by a reply alone: place it before reading the request fds. */
		asked = r <= 0 || nfds <= 0;
		for (i = 0; i < nfds; i++)
			asked |= p[2 + i].revents != 0;
		r = 0;
		if (p[0].revents && !finishing) {
			static const struct wire_pkt_hdr end = { .type = WIRE_PKT_END };

			finishing = true;
			if (pcd_sink_off(pc)) {
				r = -EIO;
				break;
			}
			pc->rp_ended = true;
			if (stream_write(&pc->rp, &end, sizeof(end))) {
				r = pcd_fail(pc, ECONNRESET, "return path: %s", pc->rp.err);
				break;
			}
			if (!pc->preempt)
				break;
		}
		for (i = 0; i < nfds && !r; i++) {
			r = vmig_ram_postcopy_poll_error(pc->ram, i, p[2 + i].revents);
			if (r)
				r = pcd_fail(pc, -r, "guest RAM serves no more page requests "
					     "(its request fd %d: %s)", i, strerror(-r));
		}
	}
	free(buf);
	atomic_store(&pc->state, r ? r : 1);
	return NULL;
}

