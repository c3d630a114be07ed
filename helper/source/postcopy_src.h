/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Postcopy on the source: the return-path thread.  It reads each page
 * request and writes that page itself on the preempt channel (no queue, no
 * hand-off to another thread); without a preempt channel it puts the page
 * at the head of its multifd channel's queue instead.
 */
#ifndef VMIG_POSTCOPY_SRC_H
#define VMIG_POSTCOPY_SRC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "libvmig.h"
#include "multifd_send.h"
#include "pctrace.h"
#include "stream.h"
#include "thread_sched.h"
#include "util.h"

struct pc_src {
	struct vmig_ram *ram;
	struct send_chan *chans;
	unsigned int nr_chans;
	bool preempt;
	/* Pages on the return-path connection (WIRE_CAP_REPLY_RETURN), not pre. */
	bool reply_rp;
	int spin_us;
	enum urgent_sched sched;	/* wanted for the return-path thread */
	const char *sched_got;		/* what it got (set by the thread) */
	bool follow;			/* --postcopy-cpu follow */
	struct cpu_follow cpu;		/* the thread's, after the rp socket */
	struct stream rp, pre;		/* fd -1: not connected */
	pthread_t thread;
	bool started;
	_Atomic bool stop;
	_Atomic int state;		/* 0 running, 1 the destination ended it, -errno */
	uint64_t requests;
	/* tests: on the cut_req-th request of this connection, call cut (all links down) */
	unsigned int cut_req, inc_requests;
	void (*cut)(void *arg);
	void *cut_arg;
	_Atomic bool cut_fired;
	struct pctrace trace;		/* debug: VMIG_PC_TRACE */
	uint32_t cut_region;		/* the request the cut left unanswered */
	uint64_t cut_page;
	/* tests: a page never to send, even on request (drop_n of them) */
	unsigned int drop_n;
	uint32_t drop_region;
	uint64_t drop_page;
	char err[192];
	/* The page being sent, read from the region's file (vmig_ram_read_page). */
	uint8_t page_buf[WIRE_PAGE_SIZE];
	uint8_t rp_ra[1024];		/* rp's read-ahead: requests are 24 bytes */
};

void pcs_init(struct pc_src *ps, bool preempt, int spin_us, enum urgent_sched sched,
	      bool follow);
/* Open the return path (and preempt channel) of the session. */
int pcs_connect(struct pc_src *ps, const char *to, uint64_t session, int timeout_ms,
		char *err, size_t errlen);
/* caps: the session's (WIRE_CAP_REPLY_RETURN: where the pages go). */
int pcs_start(struct pc_src *ps, struct vmig_ram *ram, struct send_chan *chans,
	      unsigned int nr_chans, uint64_t caps, int timeout_ms);
/* Wait up to timeout_ms for the destination's END; 0 or -errno (ps->err). */
int pcs_wait(struct pc_src *ps, int timeout_ms);
void pcs_destroy(struct pc_src *ps);

#endif
