/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Postcopy on the destination.  After the switch every page is placed with
 * UFFDIO_COPY (atomic: the running guest never sees half a page; EEXIST:
 * it was placed already, never overwritten) and marked in the received
 * bitmap.  One thread serves the guest: it reads a fault from the uffd,
 * sends the request on the return path, reads the page from the preempt
 * channel and places it (no hand-off between threads on that path).
 * Multifd receivers keep placing the background stream meanwhile.
 */
#ifndef VMIG_POSTCOPY_DST_H
#define VMIG_POSTCOPY_DST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "multifd_recv.h"
#include "pctrace.h"
#include "report.h"
#include "stream.h"
#include "util.h"

#define PCD_MAX_PENDING	1024	/* distinct pages requested and not yet answered */
#define PCD_FAULT_BATCH	32	/* faults read from the uffd at once */
#define PCD_PLACE_CHUNK	4	/* background pages placed per call (see pcd_place_batch) */

struct pcd_pending {
	uint32_t region;
	bool served;			/* placed (latency recorded), reply still due */
	uint64_t page;
	uint64_t t_ns;			/* fault read by the helper (both backends) */
	uint64_t t_fault_ns;		/* kmod: the fault itself (module time stamp); 0 on uffd */
};

struct pc_dst {
	const struct dest_mem *mem;
	bool kmod;			/* vmig.ko regions: requests from memfd[] (postcopy_kmod.c) */
	int uffd;			/* the VMM's MISSING uffd (uffd backend) */
	uint64_t vmm_base[WIRE_MAX_REGIONS];
	int memfd[WIRE_MAX_REGIONS];
	_Atomic uint64_t *recv[WIRE_MAX_REGIONS];	/* received bitmap */
	bool preempt;
	int spin_us;			/* poll the sockets this long before sleeping */
	enum urgent_sched sched;	/* wanted for the fault thread */
	const char *sched_got;		/* what it got (set by the thread) */
	struct stream rp, pre;		/* return path (to src), preempt (from src) */

	/* receivers parking at the POSTCOPY marker */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int parked, nr_chans;
	bool go, abort;

	/* requests: under lock */
	struct pcd_pending pend[PCD_MAX_PENDING];
	_Atomic unsigned int npend;
	uint64_t *lat;			/* fault-read-to-wake samples, ns (both backends) */
	size_t nlat, lat_cap;
	uint64_t *flat;			/* kmod: fault-to-wake samples, ns */
	size_t nflat, flat_cap;
	uint64_t faults, requests, coalesced, urgent_pages, eexist;
	uint64_t resent;		/* requests asked again after a reconnection */

	pthread_t thread;
	bool thread_started;
	int stop_fd;			/* eventfd: finish (drain) */
	_Atomic int state;		/* 0 running, 1 finished, -errno failed */
	struct pctrace trace;		/* debug: VMIG_PC_TRACE */
	char err[192];
};

/* Before the guest runs: bitmaps, memfds.  0 or -errno. */
int pcd_init(struct pc_dst *pc, const struct dest_mem *mem, const int *memfds,
	     const uint64_t *vmm_base, bool preempt, int spin_us);
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
 * Start the fault thread on uffd, then let the receivers go on.  rp, pre:
 * the return path and preempt channel (pre closed without preempt); pc
 * works on views of them (stream_view), the caller keeps and closes them.
 */
int pcd_start(struct pc_dst *pc, int uffd, const struct stream *rp, const struct stream *pre,
	      int timeout_ms);
void pcd_release(struct pc_dst *pc, bool abort);
/* Place one page (src NULL: zero) after the switch; 0 or -errno. */
int pcd_place(struct pc_dst *pc, uint32_t region, uint64_t page, const void *src);
/*
 * The same for n pages of one region (src[i] NULL: zero): the requested
 * ones first, then the rest in chunks (kmod: one ioctl per chunk).
 */
int pcd_place_batch(struct pc_dst *pc, uint32_t region, const uint64_t *pages,
		    uint8_t *const *src, unsigned int n);
/* Everything arrived: end the return path (and drain preempt). 0 or -errno. */
int pcd_finish(struct pc_dst *pc, int timeout_ms);
/* Recovery: a new return path and preempt channel; outstanding requests again. */
int pcd_resume(struct pc_dst *pc, const struct stream *rp, const struct stream *pre,
	       int timeout_ms);
/*
 * Taking over from a dead helper (vmig listen --attach): the VMM's
 * registration (uffd; -1 on vmig.ko regions), its waiters woken to fault
 * again (on regions: the requests it had read queued again).  The thread starts with pcd_resume once the source is back.
 */
int pcd_adopt(struct pc_dst *pc, int uffd);
/* Failure: stop the thread at once. */
void pcd_stop(struct pc_dst *pc);
uint64_t pcd_missing(struct pc_dst *pc);
/* Requests neither answered nor arrived otherwise (the first in *region, *page). */
unsigned int pcd_unanswered(struct pc_dst *pc, uint32_t *region, uint64_t *page);
/* Latency figures and counters into the report. */
void pcd_report(struct pc_dst *pc, struct report *rep);
void pcd_destroy(struct pc_dst *pc);

/* kmod backend (postcopy_kmod.c) */
struct vmig_request;
int pck_enable(struct pc_dst *pc);
/* Taking over: the requests a dead helper had read, queued again. */
int pck_requeue(struct pc_dst *pc);
void pck_disable(struct pc_dst *pc);
int pck_discard(struct pc_dst *pc, uint32_t region, uint64_t first, uint64_t n);
int pck_place_batch(struct pc_dst *pc, uint32_t region, const uint64_t *pages,
		    uint8_t *const *src, unsigned int n, bool *placed, uint64_t *exist);
int pck_read_requests(struct pc_dst *pc, uint32_t region, struct vmig_request *req,
		      unsigned int max);

#endif
