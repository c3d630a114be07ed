// SPDX-License-Identifier: GPL-2.0
/* The postcopy threads' scheduling: see thread_sched.h. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "thread_sched.h"

int urgent_sched_parse(const char *s, enum urgent_sched *out)
{
	static const char *const names[] = { "fifo", "nice", "normal" };
	unsigned int i;

	for (i = 0; i < 3; i++) {
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	}
	return -1;
}

const char *thread_urgent(enum urgent_sched want, int prio)
{
	struct sched_param sp = { .sched_priority = prio };

	if (want == URGENT_FIFO && !pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
		return "fifo";
	/* RLIMIT_RTPRIO may allow 1 and no more: the order is lost, FIFO kept. */
	sp.sched_priority = 1;
	if (want == URGENT_FIFO && prio > 1 &&
	    !pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
		return "fifo";
	if (want <= URGENT_NICE && !setpriority(PRIO_PROCESS, gettid(), -10))
		return "nice";
	return "normal";
}

void thread_background(enum urgent_sched sched)
{
	/* struct sched_attr of <linux/sched/types.h>, which clashes with glibc's */
	struct {
		uint32_t size, sched_policy;
		uint64_t sched_flags;
		int32_t sched_nice;
		uint32_t sched_priority;
		uint64_t sched_runtime, sched_deadline, sched_period;
	} a = {
		.size = sizeof(a), .sched_flags = 0x08,	/* SCHED_FLAG_KEEP_POLICY */
		.sched_nice = BULK_NICE, .sched_runtime = BULK_SLICE_US * 1000ull,
	};

	if (sched == URGENT_NORMAL)
		return;
	/*
	 * The slice needs Linux 6.12 (older kernels take the nice alone), the
	 * flag 5.3: before, the call fails and the nice is set alone.
	 */
	if (syscall(SYS_sched_setattr, 0, &a, 0))
		setpriority(PRIO_PROCESS, gettid(), BULK_NICE);
}

void cpu_follow_init(struct cpu_follow *f, unsigned int after, unsigned int then)
{
	/* The moves of the threads before (a recovery starts a new one) count too. */
	*f = (struct cpu_follow){ .after = after, .then = then, .cur = -1, .cand = -1,
				  .moves = f->moves };
	if (after && sched_getaffinity(0, sizeof(f->allowed), &f->allowed))
		f->after = 0;
}

void cpu_follow_sock(struct cpu_follow *f, int fd)
{
	socklen_t len = sizeof(int);
	cpu_set_t one;
	int cpu;

	if (!f->after)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) || cpu < 0 ||
	    cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &f->allowed) || cpu == f->cur) {
		f->seen = 0;
		return;
	}
	if (cpu != f->cand) {
		f->cand = cpu;
		f->seen = 0;
	}
	if (++f->seen < f->after)
		return;
	f->seen = 0;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one)) {
		/* Not permitted (any more): back to where we started, follow no more. */
		sched_setaffinity(0, sizeof(f->allowed), &f->allowed);
		f->after = 0;
		f->cur = -1;
		return;
	}
	f->cur = cpu;
	f->moves++;
	f->after = f->then;
}
