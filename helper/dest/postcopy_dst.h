/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Postcopy on the destination.  After the switch every page is placed
 * through the RAM backend (vmig_ram_postcopy_place*: atomic, the running
 * guest never sees half a page; a page placed already is never
 * overwritten) and marked in the received bitmap.  One thread serves the
 * guest: it reads a request from the backend, sends it on the return path,
 * reads the page from the preempt channel and places it (no hand-off
 * between threads on that path).  Multifd receivers keep placing the
 * background stream meanwhile.  The lifecycle is postcopy_dst.c, placing
 * postcopy_place.c, the fault thread postcopy_fault.c, the figures
 * postcopy_stats.c.
 */
#ifndef VMIG_POSTCOPY_DST_H
#define VMIG_POSTCOPY_DST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"
#include "multifd_recv.h"
#include "pctrace.h"
#include "postcopy_stats.h"
#include "report.h"
#include "stream.h"
#include "thread_sched.h"
#include "util.h"

#define PCD_MAX_PENDING	1024	/* distinct pages requested and not yet answered */
#define PCD_FAULT_BATCH	32	/* requests read from the backend at once */
#define PCD_REQ_FDS	WIRE_MAX_REGIONS	/* the backend's fds to poll, at most */
#define PCD_PLACE_CHUNK	4	/* background pages placed per call (see pcd_place_batch) */

struct pcd_pending {
	uint32_t region;
	bool served;			/* placed (latency recorded), reply still due */
	uint64_t page;
	uint64_t t_ns;			/* fault read by the helper (both backends) */
	uint64_t t_fault_ns;		/* the fault itself, where the backend stamps it; else 0 */
	bool kernel_sent;		/* vmig.ko wrote it to the return path */
};

struct pc_dst {
	const struct dest_mem *mem;
	struct vmig_ram *ram;		/* requests, placing, discards (vmig_ram_postcopy_*) */
	_Atomic uint64_t *recv[WIRE_MAX_REGIONS];	/* received bitmap */
	bool preempt;
	/* The source answers on the return path (WIRE_CAP_REPLY_RETURN): pre is a view of rp. */
	bool reply_rp;
	unsigned int asked_now;		/* fault thread: requests its last handle_faults wrote */
	int spin_us;			/* poll the sockets this long before sleeping */
	enum urgent_sched sched;	/* wanted for the fault thread */
	const char *sched_got;		/* what it got (set by the thread) */
	bool follow;			/* --postcopy-cpu follow */
	struct cpu_follow cpu;		/* the fault thread's, after the preempt socket */
	struct stream rp, pre;		/* return path (to src), preempt (from src) */
	bool sink_wanted;		/* let the RAM backend write requests to rp */
	bool sink;			/* it does now: nothing else writes to rp */
	bool sink_used;			/* it did on some connection */
	bool rp_ended;			/* END written: the fault thread asks nothing more */
	uint64_t sink_sent;		/* requests it wrote */
	uint64_t urgent_unseen;		/* answers to requests it wrote that we never saw */

	/* receivers parking at the POSTCOPY marker */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int parked, nr_chans;
	bool go, abort;

	/* requests: under lock */
	struct pcd_pending pend[PCD_MAX_PENDING];
	_Atomic unsigned int npend;
	struct pcd_lat lat;		/* request latency (postcopy_stats.c) */
	uint64_t faults, requests, coalesced, urgent_pages, eexist;
	uint64_t resent;		/* requests asked again after a reconnection */

	pthread_t thread;
	bool thread_started;
	int stop_fd;			/* eventfd: finish (drain) */
	_Atomic int state;		/* 0 running, 1 finished, -errno failed */
	struct pctrace trace;		/* debug: VMIG_PC_TRACE */
	char err[192];
	/* pre's read-ahead: a reply (24 bytes and a page) in one read */
	uint8_t pre_ra[4 * (WIRE_PAGE_SIZE + 64)];
};

/* Before the guest runs: bitmaps.  0 or -errno. */
int pcd_init(struct pc_dst *pc, const struct dest_mem *mem, struct vmig_ram *ram,
	     bool preempt, int spin_us);
/* A multifd receiver met POSTCOPY: park until pcd_release (or abort). */
int pcd_channel_switch(struct pc_dst *pc);
/* Wait until nr_chans receivers parked (timeout: -ETIMEDOUT). */
int pcd_wait_parked(struct pc_dst *pc, int timeout_ms);
/* Precopy: a receiver wrote this page (directly into the memfd). */
void pcd_note_received(struct pc_dst *pc, uint32_t region, uint64_t page);
/*
 * With every receiver parked: punch out what never arrived, so it faults;
 * pcd_discard then punches the pages dirtied since they were sent.
 */
int pcd_mark_received(struct pc_dst *pc);
int pcd_discard(struct pc_dst *pc, uint32_t region, uint64_t first, uint64_t n);
/*
 * Start the fault thread (the VMM registered guest RAM:
 * vmig_ram_postcopy_register), then let the receivers go on.  rp, pre:
 * the return path and preempt channel (pre closed without preempt); pc
 * works on views of them (stream_view), the caller keeps and closes them.
 */
int pcd_start(struct pc_dst *pc, const struct stream *rp, const struct stream *pre,
	      int timeout_ms);
void pcd_release(struct pc_dst *pc, bool abort);
/* Place one page (src NULL: zero) after the switch; 0 or -errno. */
int pcd_place(struct pc_dst *pc, uint32_t region, uint64_t page, const void *src);
/*
 * The same for n pages of one region (src[i] NULL: zero): the requested
 * ones first, then the rest in chunks (one backend call each).
 */
int pcd_place_batch(struct pc_dst *pc, uint32_t region, const uint64_t *pages,
		    uint8_t *const *src, unsigned int n);
/* Everything arrived: end the return path (and drain preempt). 0 or -errno. */
int pcd_finish(struct pc_dst *pc, int timeout_ms);
/* Recovery: a new return path and preempt channel; outstanding requests again. */
int pcd_resume(struct pc_dst *pc, const struct stream *rp, const struct stream *pre,
	       int timeout_ms);
/*
 * Taking over from a dead helper (vmig listen --attach), once the VMM has
 * handed over its registration: the requests the dead helper had read come
 * again.  The thread starts with pcd_resume once the source is back.
 */
int pcd_adopt(struct pc_dst *pc);
/* Failure: stop the thread at once. */
void pcd_stop(struct pc_dst *pc);
uint64_t pcd_missing(struct pc_dst *pc);
/* Requests neither answered nor arrived otherwise (the first in *region, *page). */
unsigned int pcd_unanswered(struct pc_dst *pc, uint32_t *region, uint64_t *page);
/* Latency figures and counters into the report. */
void pcd_report(struct pc_dst *pc, struct report *rep);
void pcd_destroy(struct pc_dst *pc);

#endif
