/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Source side of one multifd channel: one thread, its own queue of page
 * ranges, its own socket, counters and rate limit.  Nothing is shared
 * between channels; the engine only queues work and waits for idle.
 */
#ifndef VMIG_MULTIFD_SEND_H
#define VMIG_MULTIFD_SEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "libvmig.h"
#include "ratelimit.h"
#include "stream.h"
#include "thread_sched.h"
#include "util.h"

/* Bulk stage: zero pages need not travel at all (the destination starts zeroed). */
#define SEND_BULK	1u
/* Not pages: flush, then send the POSTCOPY marker (first and n unused). */
#define SEND_MARK	2u

struct send_work {
	uint32_t region;
	uint32_t flags;
	uint64_t first, n;
};

struct send_chan {
	unsigned int index;
	struct stream s;
	struct vmig_ram *ram;
	bool zero_cap;			/* negotiated: dirty zero pages go as a flag */
	struct ratelimit rl;
	unsigned int corrupt_after;	/* failure injection: corrupt the Nth packet (0: never) */
	bool bg;			/* postcopy: reniced (thread_background) */
	enum urgent_sched sched;	/* postcopy: --postcopy-sched, set with max_batch */
	_Atomic unsigned int max_batch;	/* pages per PAGES packet (0: WIRE_MAX_BATCH) */
	atomic_bool frozen;		/* the guest is stopped for good: re-arm nothing */

	pthread_t thread;
	bool started;
	pthread_mutex_t wlock;		/* held around every write on s (device state shares it) */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* work queued / state changed */
	struct send_work *q;
	size_t q_head, q_len, q_cap;
	bool busy, finish, cancel, exited;
	int result;			/* 0, or -errno (s.err says why) */

	_Atomic uint64_t pages_done;	/* processed, for progress */
	uint64_t pages_sent, normal_pages, zero_pages;	/* zero: detected, not sent whole */
	unsigned int packets;

	/* the PAGES packet being built */
	uint32_t b_region;
	unsigned int b_count, b_normal;
	uint64_t entries[WIRE_MAX_BATCH];
	struct iovec iov[WIRE_MAX_BATCH + 2];
};

/* Start sending on s's connection (now c->s's, whatever the result). */
int send_chan_start(struct send_chan *c, unsigned int index, struct stream *s, int timeout_ms,
		    struct vmig_ram *ram, bool zero_pages, uint64_t bytes_per_sec);
/* Queue pages [first, first+n) of region. */
int send_chan_queue(struct send_chan *c, uint32_t region, uint64_t first, uint64_t n,
		    uint32_t flags);
/* Queue pages at the head (postcopy without preempt: a requested page). */
int send_chan_queue_front(struct send_chan *c, uint32_t region, uint64_t first, uint64_t n);
/*
 * The source's guest is stopped and never runs here again (it resumes on
 * the destination, or the migration fails and tracking ends): pages are read
 * without re-arming their protection first, which would only cost (vmig.ko:
 * a page-table walk, the MMU notifiers and a TLB flush per chunk) inside the
 * downtime and, in postcopy, in the way of requested pages.
 */
void send_chan_freeze(struct send_chan *c);
/* Wait up to timeout_ms for the queue to drain: 1 idle, 0 still busy, -errno failed. */
int send_chan_wait_idle(struct send_chan *c, int timeout_ms);
/* Drain, send END, end the thread; 0 or -errno. */
int send_chan_finish(struct send_chan *c, int timeout_ms);
/* Stop at once (failure elsewhere): wakes the thread out of any wait. */
void send_chan_cancel(struct send_chan *c);
void send_chan_destroy(struct send_chan *c);

#endif
