/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by the helper: clocks, waits on one fd, argument parsing. */
#ifndef VMIG_UTIL_H
#define VMIG_UTIL_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t now_ns(void);
struct timespec;
/*
 * @ms from now on CLOCK_MONOTONIC, for pthread_cond_timedwait() on a
 * condition variable whose clock was set to CLOCK_MONOTONIC.
 */
void cond_deadline_in(struct timespec *ts, int ms);
/*
 * poll() one fd for @events, at most @timeout_ms (-1: unbounded), EINTR
 * retried: 0 once ready, -ETIMEDOUT, or -errno.
 */
int poll_fd(int fd, short events, int timeout_ms);
/*
 * Exactly @n bytes from @fd, each wait bounded by @timeout_ms: 0, -ETIMEDOUT,
 * -ECONNRESET (the peer closed), -ECANCELED once *@stop is set (checked after
 * every wait; NULL: never), or -errno.
 */
int read_full(int fd, void *buf, size_t n, int timeout_ms, const _Atomic bool *stop);
/* "256M", "1G", "4096", "2k": bytes; -1 on a bad string. */
int64_t parse_size(const char *s);
/* A non-negative integer within [min, max]; false if not. */
bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
struct option;
/*
 * "vmig CMD: bad value 'V' for --NAME (see --help)" on stderr, NAME looked up
 * in @opts by the getopt_long() return value @opt.
 */
void bad_option_value(const char *cmd, const struct option *opts, int opt,
		      const char *value);
/* Human-readable bytes ("1.5 GiB") into buf. */
const char *fmt_bytes(double bytes, char *buf, unsigned int len);

/* With VMIG_TRACE set in the environment: a timestamped line on stderr. */
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How the thread serving postcopy page requests is scheduled (--postcopy-sched). */
enum urgent_sched { URGENT_FIFO, URGENT_NICE, URGENT_NORMAL };
/* "fifo", "nice", "normal": 0, or -1 for anything else. */
int urgent_sched_parse(const char *s, enum urgent_sched *out);
/*
 * Put the calling thread ahead of bulk work: SCHED_FIFO priority 1, or
 * nice -10, or left as it is, the first of those at or below @want that
 * the process may set; returns the name of what it got.
 */
const char *thread_urgent(enum urgent_sched want);
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
