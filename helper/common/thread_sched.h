/* SPDX-License-Identifier: GPL-2.0 */
/*
 * How the helper's threads are scheduled once a guest runs on the
 * destination in postcopy: the two on the request path (the source's
 * return-path thread, the destination's fault thread) ahead of everything,
 * on the CPU their socket's packets arrive on; the background stream's
 * senders and receivers behind the guest's vCPUs, with short slices.
 */
#ifndef VMIG_THREAD_SCHED_H
#define VMIG_THREAD_SCHED_H

#include <sched.h>

/* How the thread serving postcopy page requests is scheduled (--postcopy-sched). */
enum urgent_sched { URGENT_FIFO, URGENT_NICE, URGENT_NORMAL };
/* "fifo", "nice", "normal": 0, or -1 for anything else. */
int urgent_sched_parse(const char *s, enum urgent_sched *out);
/*
 * The SCHED_FIFO priorities of the two: the destination's above the
 * source's.  When both helpers share a CPU (one host, loopback), the
 * source's thread wakes the destination's with the page it writes; a
 * higher priority lets the woken thread place the page as soon as that
 * write returns, instead of after the source's thread has gone back to
 * sleep (its loop's last calls: ~7 us on the test host, issue 19).  The
 * other way round, a request's writer has nothing left to do but sleep.
 * Between two hosts the order means nothing.
 */
#define URGENT_PRIO_SRC	1
#define URGENT_PRIO_DST	2
/*
 * Put the calling thread ahead of bulk work: SCHED_FIFO priority @prio (or
 * 1, where RLIMIT_RTPRIO allows no more), or nice -10, or left as it is, the
 * first of those at or below @want that the process may set; returns the
 * name of what it got.
 */
const char *thread_urgent(enum urgent_sched want, int prio);
/*
 * Postcopy's bulk threads (the background stream's senders and receivers),
 * once the guest runs on the destination: behind the vCPUs and the request
 * path (nice BULK_NICE), unless @sched is URGENT_NORMAL (nobody ahead).
 * They also ask for a short slice (BULK_SLICE_US; Linux 6.12's EEVDF): a
 * task woken on their CPU, a vCPU whose page just came, otherwise waits
 * for the running bulk thread's whole slice (1.4 ms on a 2-CPU machine)
 * whatever its nice.
 */
#define BULK_NICE	10
#define BULK_SLICE_US	100
void thread_background(enum urgent_sched sched);

/*
 * An urgent thread that follows its socket (--postcopy-cpu follow): it
 * moves to the CPU on which the kernel receives that socket's packets
 * (SO_INCOMING_CPU), once the same other CPU was seen @after times in a
 * row (@then times for each later move), and only within the affinity the
 * thread started with.  The packet's arrival then wakes the thread on the
 * CPU it is on: no interrupt to another CPU, which may be asleep or in the
 * middle of another thread's system call.
 */
struct cpu_follow {
	cpu_set_t allowed;		/* the thread's affinity at cpu_follow_init */
	unsigned int after, then;	/* 0: off */
	int cur;			/* the CPU followed (-1: none yet) */
	int cand;			/* a CPU seen, not followed yet ... */
	unsigned int seen;		/* ... this many times in a row */
	unsigned int moves;
};
/* In the thread to move (keeps f->moves); @after 0 turns following off. */
void cpu_follow_init(struct cpu_follow *f, unsigned int after, unsigned int then);
/* After a read from @fd. */
void cpu_follow_sock(struct cpu_follow *f, int fd);

#endif
