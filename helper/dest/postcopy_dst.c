// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy on the destination, its lifecycle: the receivers parked at the
 * switch, the received bitmap and the discards, the fault thread started,
 * resumed after a reconnection, adopted from a dead helper, finished.
 * Placing is postcopy_place.c, the fault thread postcopy_fault.c, the
 * figures postcopy_stats.c (postcopy_int.h: what they share).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "postcopy_int.h"
#include "util.h"

int pcd_fail(struct pc_dst *pc, int code, const char *fmt, ...)
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

int pcd_init(struct pc_dst *pc, const struct dest_mem *mem, struct vmig_ram *ram,
	     bool preempt, int spin_us)
{
	pthread_condattr_t ca;
	unsigned int i;

	memset(pc, 0, sizeof(*pc));
	pc->mem = mem;
	pc->ram = ram;
	pc->stop_fd = -1;
	pc->rp.fd = pc->pre.fd = -1;
	pc->cpu.cur = -1;
	pc->preempt = preempt;
	pc->spin_us = spin_us;
	pthread_mutex_init(&pc->lock, NULL);
	/* pcd_wait_parked's deadline is on CLOCK_MONOTONIC (cond_deadline_in). */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pc->cond, &ca);
	pthread_condattr_destroy(&ca);
	pct_open(&pc->trace, "dst");
	for (i = 0; i < mem->nr_regions; i++) {
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

	cond_deadline_in(&ts, timeout_ms);
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

void pcd_note_received(struct pc_dst *pc, uint32_t region, uint64_t page)
{
	set_bits(pc->recv[region], page, 1, true);
}

/*
 * Pages that never arrived in precopy (holes the source skipped, or pages
 * prefaulted here) are punched out, so the guest's first touch faults.
 * Guest RAM enters postcopy mode first: no fault can refill a dropped page.
 */
int pcd_mark_received(struct pc_dst *pc)
{
	unsigned int i;
	int r;

	r = vmig_ram_postcopy_enable(pc->ram);
	if (r)
		return r;
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
			r = vmig_ram_postcopy_discard(pc->ram, i, p, q - p);
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
	r = vmig_ram_postcopy_discard(pc->ram, region, first, n);
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

int pcd_start(struct pc_dst *pc, const struct stream *rp, const struct stream *pre,
	      int timeout_ms)
{
	int r;

	stream_view(&pc->rp, rp, timeout_ms);
	stream_view(&pc->pre, pc->reply_rp ? rp : pre, timeout_ms);
	if (pct_on(&pc->trace) && pc->pre.fd >= 0)
		pct_rx_enable(pc->pre.fd);
	pc->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pc->stop_fd < 0)
		return -errno;
	pcd_sink_on(pc);
	r = pthread_create(&pc->thread, NULL, pcd_fault_thread, pc);
	if (r) {
		pcd_sink_off(pc);
		return -r;
	}
	pc->thread_started = true;
	return 0;
}

int pcd_adopt(struct pc_dst *pc)
{
	pc->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pc->stop_fd < 0)
		return -errno;
	/* The dead helper's return path, if vmig.ko still writes to it. */
	vmig_ram_postcopy_set_sink(pc->ram, -1, NULL, 0, 0, 0);
	return vmig_ram_postcopy_requeue(pc->ram);
}

/*
 * After a reconnection: the old thread is gone (pcd_stop).  Requests whose
 * page arrived meanwhile are closed; the others are asked again on the new
 * return path (their fault-read time kept, so the pause counts in the
 * latency); faults queued while paused are read as usual.
 */
int pcd_resume(struct pc_dst *pc, const struct stream *rp, const struct stream *pre,
	       int timeout_ms)
{
	struct {
		struct wire_pkt_hdr h;
		struct wire_req q;
	} __attribute__((packed)) *out = malloc(PCD_MAX_PENDING * sizeof(*out));
	uint64_t junk;
	unsigned int i, n;
	int r;

	if (!out)
		return -ENOMEM;
	if (read(pc->stop_fd, &junk, sizeof(junk)) < 0 && errno != EAGAIN) {
		r = -errno;
		free(out);
		return r;
	}
	/*
	 * What vmig.ko wrote to the old return path may be lost with it: the
	 * requests come back unsent (VMIG_REQUEUE); the open ones are asked
	 * below, the rest when read.
	 */
	if (pc->sink_used) {
		r = vmig_ram_postcopy_requeue(pc->ram);
		if (r < 0) {
			free(out);
			return r;
		}
	}
	stream_view(&pc->rp, rp, timeout_ms);
	stream_view(&pc->pre, pc->reply_rp ? rp : pre, timeout_ms);
	if (pct_on(&pc->trace) && pc->pre.fd >= 0)
		pct_rx_enable(pc->pre.fd);
	pthread_mutex_lock(&pc->lock);
	pc->err[0] = 0;
	pc->rp_ended = false;
	for (i = 0; i < atomic_load(&pc->npend);) {
		struct pcd_pending *q = &pc->pend[i];

		if (q->served || test_bit(pc->recv[q->region], q->page)) {
			pcd_pend_remove(pc, i);
			continue;
		}
		i++;
	}
	/* The requests to send again, copied: no write under the lock. */
	n = atomic_load(&pc->npend);
	for (i = 0; i < n; i++) {
		out[i].h = (struct wire_pkt_hdr){ .type = WIRE_PKT_REQ,
						  .len = sizeof(struct wire_req) };
		out[i].q = (struct wire_req){ .region = pc->pend[i].region,
					      .page = pc->pend[i].page };
		pc->pend[i].kernel_sent = false;
	}
	pc->resent += n;
	pthread_mutex_unlock(&pc->lock);
	r = n ? stream_write(&pc->rp, out, n * sizeof(out[0])) : 0;
	free(out);
	if (r)
		return r;
	pcd_sink_on(pc);
	atomic_store(&pc->state, 0);
	r = pthread_create(&pc->thread, NULL, pcd_fault_thread, pc);
	if (r) {
		pcd_sink_off(pc);
		return -r;
	}
	pc->thread_started = true;
	return 0;
}

int pcd_finish(struct pc_dst *pc, int timeout_ms)
{
	uint64_t one = 1;
	struct timespec ts;
	int st;

	if (!pc->thread_started)
		return 0;
	if (write(pc->stop_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	/* The fault thread ends with the preempt channel's END: sleep until then. */
	cond_deadline_in(&ts, timeout_ms);
	if (pthread_clockjoin_np(pc->thread, NULL, CLOCK_MONOTONIC, &ts)) {
		pcd_stop(pc);
		return pcd_fail(pc, ETIMEDOUT, "preempt channel did not end in time");
	}
	pc->thread_started = false;
	st = atomic_load(&pc->state);
	pcd_sink_off(pc);
	/* Every page is here: guest RAM leaves postcopy mode. */
	if (st > 0 && !pcd_missing(pc))
		vmig_ram_postcopy_disable(pc->ram);
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
	/* vmig.ko lets the old return path go. */
	pcd_sink_off(pc);
}

void pcd_destroy(struct pc_dst *pc)
{
	unsigned int i;

	pcd_stop(pc);
	for (i = 0; i < WIRE_MAX_REGIONS; i++)
		free(pc->recv[i]);
	pcd_lat_free(&pc->lat);
	pct_close(&pc->trace);
	if (pc->stop_fd >= 0)
		close(pc->stop_fd);
	pthread_mutex_destroy(&pc->lock);
	pthread_cond_destroy(&pc->cond);
}
