// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ull + t.tv_nsec;
}

void cond_deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int poll_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r ? 0 : -ETIMEDOUT;
}

int read_full(int fd, void *buf, size_t n, int timeout_ms, const _Atomic bool *stop)
{
	while (n) {
		ssize_t k;
		int r = poll_fd(fd, POLLIN, timeout_ms);

		if (r)
			return r;
		if (stop && atomic_load(stop))
			return -ECANCELED;
		k = read(fd, buf, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k ? -errno : -ECONNRESET;
		buf = (char *)buf + k;
		n -= k;
	}
	return 0;
}

int64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 0: break;
	default: return -1;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end || v > (1ull << (62 - shift)))
		return -1;
	return (int64_t)(v << shift);
}

bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

const char *fmt_bytes(double b, char *buf, unsigned int len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned int u = 0;

	while (b >= 1024 && u < 4) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
	return buf;
}

void trace(const char *fmt, ...)
{
	va_list ap;

	if (!getenv("VMIG_TRACE"))
		return;
	fprintf(stderr, "[%.6f] ", now_ns() / 1e9);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

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

const char *thread_urgent(enum urgent_sched want)
{
	struct sched_param sp = { .sched_priority = 1 };

	if (want == URGENT_FIFO && !pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
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

void bad_option_value(const char *cmd, const struct option *opts, int opt,
		      const char *value)
{
	const struct option *o;

	for (o = opts; o->name; o++)
		if (!o->flag && o->val == opt)
			break;
	if (o->name)
		fprintf(stderr, "vmig %s: bad value '%s' for --%s (see --help)\n", cmd, value,
			o->name);
	else
		fprintf(stderr, "vmig %s: bad value '%s' (see --help)\n", cmd, value);
}
